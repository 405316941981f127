"""Whatever a browser sends, the socket answers every message that carries a ref, once, and goes on;
whatever frames it sends, it gets the close code RFC 6455 and our limits give them, and the gateway
holds no more for it than its bound."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import termios
import zlib

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.routes import SOCKETS, create_app
from gateway.transport.frames import BINARY, CLOSE, NO_STATUS, PING, PONG, TEXT
from gateway.transport.websocket import HIGH_WATER
from tests.conftest import EVENTUALLY, make_config, queued, until
from tests.fuzz.websocket_frames import Frame, ended_streams, expect
from tests.test_frame_bounds import held

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
            msg = await ws.receive(timeout=EVENTUALLY)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            f = json.loads(msg.data)
            if f[3] == "phx_reply":
                got.append(f[1])
                assert f[4]["status"] in ("ok", "error")
        assert sorted(map(str, got)) == sorted(map(str, expected))
        # ... and nothing more: no reply before the one to a heartbeat sent now.
        await ws.send_str(json.dumps([None, "after", "phoenix", "heartbeat", {}]))
        while True:
            msg = await ws.receive(timeout=EVENTUALLY)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            f = json.loads(msg.data)
            if f[3] == "phx_reply":
                assert f[1] == "after", f
                break
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


# -- the frame layer over a real socket ---------------------------------------------------------

UPGRADE = ("GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n")


def socket_outcome(frames: list[Frame], want) -> tuple[str, int | None, int, list[bytes], list[str]]:
    """What the gateway does with the stream the model read: (how it ends, the close code, the
    bytes to send before that end is known, the pings and heartbeat refs answered before it).
    A BINARY message is closed 1003, a close frame answered with its code (1000 for none), a
    broken stream closed with the model's code; a last frame that promises more than comes
    leaves the socket waiting; else the stream is clean (the client closes it)."""
    pings: list[bytes] = []
    refs: list[str] = []
    for (opcode, data), end in zip(want.messages, want.ends):
        if opcode == BINARY:
            return "binary", 1003, end, pings, refs
        if opcode == CLOSE:
            return "close", data[0] if data[0] != NO_STATUS else 1000, end, pings, refs
        if opcode == PING:
            pings.append(data)
        elif opcode == TEXT and data.startswith('[null,"h'):
            refs.append(json.loads(data)[1])
    if want.code is not None:
        return "error", want.code, want.stop, pings, refs
    last = frames[-1] if frames else None
    if last is not None and last.length is not None and last.length != len(last.payload):
        return "waiting", None, want.stop, pings, refs
    return "clean", 1000, want.stop, pings, refs


async def read_frame(reader: asyncio.StreamReader, inflater=None) -> tuple[int, bytes]:
    """The next frame from the gateway (inflated with the connection's one inflater), (-1, b"") at EOF."""
    try:
        first, second = await asyncio.wait_for(reader.readexactly(2), EVENTUALLY)
    except asyncio.IncompleteReadError:
        return -1, b""
    n = second & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    payload = await reader.readexactly(n)
    if first & 0x40:
        payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
    return first & 0x0F, payload


async def run_stream(frames: list[Frame], max_size: int, deflated: bool, cuts: list[int], mud_port: int) -> None:
    want = expect(frames, max_size, deflated)
    how, code, stop, pings, refs = socket_outcome(frames, want)
    wire = b"".join(f.wire() for f in frames)[:stop]
    app = create_app(make_config(mud_port, extra=f"limits: {{max_frame_bytes: {max_size}}}"))
    async with TestServer(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflated else ""
        writer.write(UPGRADE.format(key=base64.b64encode(os.urandom(16)).decode(), ext=ext).encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EVENTUALLY)
        assert head.startswith(b"HTTP/1.1 101") and (b"permessage-deflate" in head) == deflated, head
        await until(lambda: app[SOCKETS], what="the socket is the gateway's")
        (sock,) = app[SOCKETS]
        points = sorted({c % (len(wire) + 1) for c in cuts})
        biggest = 0
        for a, b in zip([0, *points], [*points, len(wire)]):
            writer.write(wire[a:b])
            await writer.drain()
            await asyncio.sleep(0)
            biggest = max(biggest, b - a)
            # What the gateway holds for this client: its frame being read (one, at most
            # max_size and a header, and the rest of a read) and the fragments so far, and
            # what is written to it (replies and pongs, a few bytes each here).
            frames_held = len(sock._conn.reader._buf) + sock._conn.reader._size
            assert frames_held <= 2 * max_size + 14 + b - a, (frames_held, max_size)
            assert held(sock) <= HIGH_WATER
        if how == "clean":
            writer.write(Frame(CLOSE, struct.pack("!H", 1000)).wire())
        elif how == "waiting":  # the frame never ends: the socket waits, holding within the bound
            ours, theirs = writer.get_extra_info("socket"), sock.transport.get_extra_info("socket")
            await until(lambda: queued(ours, termios.TIOCOUTQ) == 0 and queued(theirs, termios.FIONREAD) == 0,
                        what="the gateway read it all")
            assert len(sock._conn.reader._buf) < max_size + 14 and sock._conn.reader._size <= max_size
            writer.close()
            await until(lambda: not app[SOCKETS], what="the socket ends with its TCP connection")
            return
        got_pongs, got_refs = [], []
        inflater = zlib.decompressobj(-15)
        while True:
            opcode, payload = await read_frame(reader, inflater)
            if opcode == PONG:
                got_pongs.append(payload)
            elif opcode == TEXT:
                msg = json.loads(payload)
                assert msg[3] == "phx_reply" and msg[4]["status"] == "ok", msg
                got_refs.append(msg[1])
            else:
                assert opcode == CLOSE, (opcode, payload)
                assert struct.unpack("!H", payload[:2])[0] == code, (payload, how, code)
                break
        if how == "binary":  # the gateway waits for the client's close frame
            writer.write(Frame(CLOSE, struct.pack("!H", 1003)).wire())
        assert await read_frame(reader) == (-1, b"")  # and closes the TCP connection
        writer.close()
        assert got_refs == refs
        # A pong for each ping (several waiting at once may share the latest's): in order.
        it = iter(pings)
        assert all(p in it for p in got_pongs), (got_pongs, pings)
        assert got_pongs[-1:] == pings[-1:], (got_pongs, pings)
        await until(lambda: not app[SOCKETS], what="the socket ends")


def socket_example(data) -> None:
    """One stream (from ``data``, hypothesis's) over a new gateway, on asyncio or uvloop."""
    max_size = data.draw(st.sampled_from([1024, 2048]))
    deflated = data.draw(st.booleans())
    frames = data.draw(ended_streams(max_size, deflated))
    cuts = data.draw(st.lists(st.integers(0, 1 << 16), max_size=6))
    loops = [asyncio.new_event_loop]
    try:
        import uvloop
        loops.append(uvloop.new_event_loop)
    except ImportError:
        pass
    factory = data.draw(st.sampled_from(loops))

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        try:
            await run_stream(frames, max_size, deflated, cuts, server.sockets[0].getsockname()[1])
        finally:
            server.close()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hostile_frames_over_a_socket_get_the_exact_close_code_within_the_bound(data):
    """The frame-layer fuzz (tests/fuzz/websocket_frames.py) over a real socket, with CI's
    budget, on asyncio and uvloop: every ping before the end answered, every heartbeat,
    then the close code the model gives (1002, 1003, 1007, 1008, 1009, or the client's own),
    and the gateway's memory for the socket within its bound after every write."""
    socket_example(data)
