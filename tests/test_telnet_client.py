"""The telnet adapter (telnetlib3 + TelnetStream) over a real socket: chunking never changes what comes out.

The game's bytes are sent in arbitrary pieces (each drained, with a pause, so
that most become separate reads); the events the adapter reports, and the
answers telnetlib3 sends back, must be those of the same bytes in one piece.
"""

from __future__ import annotations

import asyncio
import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import parse_config
from gateway.telnet import client as telnet
from gateway.telnet.stream import EchoMode, Gmcp, Prompt, Text
from tests.fakemud import FakeMud

IAC, WILL, WONT, DO, SB, SE, GA = 255, 251, 252, 253, 250, 240, 249


class Recorder:
    def __init__(self) -> None:
        self.events: list = []
        self.closed = asyncio.get_running_loop().create_future()

    def on_events(self, events) -> None:
        self.events.extend(events)

    def on_game_closed(self, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)

    def on_mssp(self, variables) -> None:
        pass


def gmcp(module: str, data) -> bytes:
    return bytes([IAC, SB, 201]) + f"{module} {json.dumps(data)}".encode() + bytes([IAC, SE])


pieces = st.one_of(
    st.sampled_from([
        "Hello, wörld ☕\r\n".encode(), b"\x1b[1;31mred\x1b[0m ", b"\x1b[38;2;10;20;30mtc\x1b[0m\r\n",
        b"Name: " + bytes([IAC, GA]), bytes([IAC, WILL, 1]), bytes([IAC, WONT, 1]),
        bytes([IAC, WILL, 3]), bytes([IAC, DO, 24]), bytes([IAC, SB, 24, 1, IAC, SE]),
        bytes([IAC, WILL, 99]), bytes([IAC, DO, 31]), b"\r\n", b"line\n\r",
    ]),
    st.builds(gmcp, st.sampled_from(["Char.Vitals", "Room.Info"]),
              st.dictionaries(st.sampled_from(["hp", "mp", "name"]), st.integers(0, 999), max_size=3)),
)


async def play(stream_bytes: bytes, cuts: list[int]) -> tuple[list, bytes]:
    mud = await FakeMud().start()
    try:
        game = parse_config(f"games: [{{name: g, host: 127.0.0.1, port: {mud.port}, prompt_flush_ms: 60000}}]").games[0]
        sink = Recorder()
        client = await telnet.connect(game, sink)
        conn = await mud.next_connection()
        points = sorted({c % (len(stream_bytes) + 1) for c in cuts})
        for a, b in zip([0, *points], [*points, len(stream_bytes)]):
            if b > a:
                conn.send(stream_bytes[a:b])
                await conn.drain()
                await asyncio.sleep(0.001)
        conn.send(b"END\r\n")
        await conn.drain()
        for _ in range(500):
            if "".join(e.message for e in sink.events if type(e) is Text).endswith("END\n"):
                break
            await asyncio.sleep(0.005)
        client.close("test over")
        await asyncio.wait_for(sink.closed, 5)
        return sink.events, bytes(conn.received)
    finally:
        await mud.close()


def summary(events: list) -> tuple[str, list]:
    text = "".join(e.message for e in events if type(e) in (Text, Prompt))
    kinds: list = []
    for e in events:
        item = ("text",) if type(e) is Text else (
            ("prompt", e.message) if type(e) is Prompt else
            ("gmcp", e.module, msgspec.json.decode(msgspec.json.encode(e.data))) if type(e) is Gmcp else
            ("echo", e.echo) if type(e) is EchoMode else None)
        if item is None or (item == ("text",) and kinds and kinds[-1] == ("text",)):
            continue
        kinds.append(item)
    return text, kinds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pieces, min_size=1, max_size=25), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_chunking_through_the_adapter_gives_the_same_events_and_answers(items, cuts):
    data = b"".join(items)
    whole_events, whole_answers = asyncio.run(play(data, []))
    cut_events, cut_answers = asyncio.run(play(data, cuts))
    assert summary(cut_events) == summary(whole_events)
    assert cut_answers == whole_answers
