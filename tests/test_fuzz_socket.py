"""Whatever a browser sends, the socket answers every message that carries a ref, once, and goes on."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.routes import create_app
from tests.conftest import make_config

TOPIC = "telnet:11111111-2222-3333-4444-555555555555"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
events = st.sampled_from(["recv", "gmcp", "naws", "heartbeat", "phx_leave", "nope", "", "phx_reply"])
topics = st.sampled_from(["phoenix", TOPIC, "telnet:bad", "other:x", ""])
payloads = st.one_of(
    json_values,
    st.fixed_dictionaries({"message": st.one_of(st.text(max_size=50), json_values)}),
    st.fixed_dictionaries({"module": st.one_of(st.text(max_size=20), json_values), "data": json_values}),
    st.fixed_dictionaries({"width": json_values, "height": json_values}),
)


@st.composite
def frames(draw) -> tuple[str, str | None]:
    """A text frame, and the ref the gateway must answer (None: no answer is due)."""
    ref = draw(st.none() | st.text(min_size=1, max_size=6))
    shape = draw(st.sampled_from(["v2", "short", "junk", "wrongtypes"]))
    if shape == "v2":
        msg = ["1", ref, draw(topics), draw(events), draw(payloads)]
        return json.dumps(msg), ref
    if shape == "short":
        return json.dumps(["1", ref, draw(topics)]), ref
    if shape == "wrongtypes":
        return json.dumps(["1", ref, 5, draw(events), {}]), ref
    return draw(st.sampled_from(["{", "[1,", "null", "42", '"x"', "[]", "{}"])), None


async def run(batch: list[tuple[str, str | None]], mud_port: int) -> None:
    app = create_app(make_config(mud_port, extra="limits: {input_lines_per_second: 1000, input_burst: 1000}"))
    async with TestClient(TestServer(app)) as client:
        ws = await client.ws_connect("/socket/websocket?vsn=2.0.0")
        await ws.send_str(json.dumps(["1", "join", TOPIC, "phx_join", {}]))
        expected = ["join"]
        for frame, ref in batch:
            await ws.send_str(frame)
            if ref is not None:
                expected.append(ref)
        await ws.send_str(json.dumps([None, "last", "phoenix", "heartbeat", {}]))
        expected.append("last")
        got: list[str] = []
        while len(got) < len(expected):  # the join's reply may come last: it waits for the game
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            f = json.loads(msg.data)
            if f[3] == "phx_reply":
                got.append(f[1])
                assert f[4]["status"] in ("ok", "error")
        assert sorted(map(str, got)) == sorted(map(str, expected))
        # ... and nothing more.
        try:
            extra = await ws.receive(timeout=0.05)
        except asyncio.TimeoutError:
            extra = None
        assert extra is None or json.loads(extra.data)[3] != "phx_reply", extra
        await ws.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames(), max_size=30))
def test_every_ref_is_answered_once(batch):
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        try:
            await run(batch, server.sockets[0].getsockname()[1])
        finally:
            server.close()
    asyncio.run(main())
