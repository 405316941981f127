"""What a hostile WebSocket client can make the gateway hold, over real sockets (issue 17,
items 1 to 3): pongs go through the outbox (its bound, its backpressure), a closing socket
whose peer does not read is aborted, a message may come in at most MAX_FRAGMENTS frames,
and a frame length must be in its shortest encoding (RFC 6455 5.2)."""

from __future__ import annotations

import asyncio
import json
import struct
import termios

import pytest

from gateway.routes import SOCKETS
from gateway.transport.frames import CLOSE, CONTINUATION, MAX_FRAGMENTS, PING, TEXT
from gateway.transport import websocket
from gateway.transport.websocket import HIGH_WATER, PhoenixSocket
from tests.test_frames import client_frame
from tests.conftest import queued, read_through, until
from tests.test_websocket_connection import RawWs, start

# Flow control, transports and their close and abort differ between the loops: both.
pytestmark = pytest.mark.both_loops

#: A ping as large as a control frame may be: its pong is 127 bytes.
PING_FRAME = client_frame(PING, b"p" * 125)
#: Pings per write of the flooding client.
CHUNK = 1000
#: What a socket may hold for a client that sends pings and reads nothing: the transport
#: pauses at its high-water mark (64 KiB), after which one pong waits in the outbox.
HELD_BOUND = HIGH_WATER // 4


def held(sock: PhoenixSocket) -> int:
    """The bytes the gateway holds for the browser: its outbox and the transport's buffer."""
    transport = sock.transport
    return sock._outbox_bytes + (transport.get_write_buffer_size() if not transport.is_closing() else 0)


async def all_read(ws: RawWs, sock: PhoenixSocket) -> None:
    """Wait until the gateway has read everything the client sent: nothing left in the
    client's send queue, nor in the gateway's receive queue."""
    await ws.writer.drain()
    await read_through(ws.writer, sock.transport.get_extra_info("socket"),
                       what="the gateway read all the client sent")


async def opened(mud, gateway, extra: str = "", rcvbuf: int = 0) -> tuple:
    """A gateway with ``extra`` config, one raw WebSocket to it: (test client, ws, its PhoenixSocket)."""
    client, port = await start(mud, gateway, extra=extra)
    ws = await RawWs.open(port, rcvbuf=rcvbuf)
    await until(lambda: client.server.app[SOCKETS], what="the socket is the gateway's")
    (sock,) = client.server.app[SOCKETS]
    return client, ws, sock


async def flood_pings(ws: RawWs, sock: PhoenixSocket, chunks: int) -> int:
    """``chunks`` writes of CHUNK pings, reading nothing; the most the socket held meanwhile."""
    peak = 0
    for _ in range(chunks):
        try:
            ws.writer.write(PING_FRAME * CHUNK)
            await ws.writer.drain()
        except ConnectionError:
            break  # dropped as a slow consumer: what it held is measured up to here
        await asyncio.sleep(0)
        peak = max(peak, held(sock))
    return peak


async def test_a_pinger_that_does_not_read_holds_one_pong_and_is_a_slow_consumer(mud, gateway):
    """Issue 17.1: pongs were written past the outbox, 127 bytes a ping, for ever. Now they
    wait in the outbox while the browser does not read (the latest ping's pong only), and the
    socket is a slow consumer like any other that makes no progress."""
    client, ws, sock = await opened(mud, gateway, "limits: {slow_consumer_seconds: 1}", rcvbuf=4096)
    peak = await flood_pings(ws, sock, 60)  # 7.6 MB of pongs if each were written
    if sock in client.server.app[SOCKETS]:
        try:
            await all_read(ws, sock)
        except ConnectionError:
            pass
        peak = max(peak, held(sock))
    assert peak <= HELD_BOUND, peak
    await until(lambda: sock not in client.server.app[SOCKETS], timeout=15,
                what="the pinger is dropped as a slow consumer")
    await ws.close()


async def test_pongs_are_written_in_order_with_the_outbox_and_the_latest_ping_is_answered(mud, gateway):
    """A browser that reads gets a pong for each ping (or, when several wait, for the latest)."""
    _, ws, _ = await opened(mud, gateway)
    for i in range(50):
        ws.send(PING, b"%d" % i)
    ws.send_json(["1", "hb", "phoenix", "heartbeat", {}])
    pongs = []
    while True:
        opcode, payload = await ws.frame()
        if opcode == TEXT:
            assert json.loads(payload)[1] == "hb"
            break
        pongs.append(payload)
    assert pongs and pongs[-1] == b"49" and pongs == sorted(pongs, key=int)
    await ws.close()


@pytest.mark.parametrize("end", ["close frame", "TCP FIN"])
async def test_a_closing_client_that_does_not_read_is_aborted(mud, gateway, end):
    """Issue 17.1: a client that ends (close frame or FIN) with output still buffered for it,
    and reads nothing, held the connection and its buffer for ever: now it is aborted
    after the closing handshake's time."""
    client, ws, sock = await opened(mud, gateway, rcvbuf=4096)
    await flood_pings(ws, sock, 40)  # 5 MB of pongs: more than the kernel's buffers take (~3 MB)
    await all_read(ws, sock)
    assert sock.transport.get_write_buffer_size() > 0  # what the client does not read
    if end == "close frame":
        ws.send(CLOSE, struct.pack("!H", 1000))
    else:
        ws.writer.write_eof()
    await until(lambda: sock not in client.server.app[SOCKETS], timeout=10,
                what="the connection is aborted")
    await ws.close()


async def test_empty_continuation_frames_are_refused_after_max_fragments(mud, gateway):
    """Issue 17.2: empty continuation frames, each 6 bytes on the wire, were kept for ever."""
    _, ws, _ = await opened(mud, gateway)
    ws.send(TEXT, b"[", fin=False)
    ws.writer.write(client_frame(CONTINUATION, b"", fin=False) * 10_000)
    assert await ws.close_frame() == (1008, b"message in too many fragments")
    assert await ws.eof()
    await ws.close()


def in_fragments(message: bytes) -> bytes:
    """``message`` a byte a frame."""
    return client_frame(TEXT, message[:1], fin=False) + b"".join(
        client_frame(CONTINUATION, message[i:i + 1], fin=i == len(message) - 1) for i in range(1, len(message)))


def heartbeat(ref: str, size: int) -> bytes:
    msg = json.dumps(["1", ref, "phoenix", "heartbeat", {}]).encode()
    return msg[:-1] + b" " * (size - len(msg)) + b"]"


async def test_a_message_of_one_byte_fragments_is_read_up_to_max_fragments(mud, gateway):
    """Issue 17.2: a message cut in 1-byte fragments cost ~100 times the work of the same
    message whole, for any size: now MAX_FRAGMENTS frames are read, one more is refused."""
    _, ws, _ = await opened(mud, gateway)
    ws.writer.write(in_fragments(heartbeat("1", MAX_FRAGMENTS)))
    assert (await ws.message(lambda m: True))[1] == "1"
    ws.writer.write(in_fragments(heartbeat("2", MAX_FRAGMENTS + 1)))
    assert await ws.close_frame() == (1008, b"message in too many fragments")
    assert await ws.eof()
    await ws.close()


async def test_the_fragments_of_a_message_count_against_max_frame_bytes(mud, gateway):
    _, ws, _ = await opened(mud, gateway, "limits: {max_frame_bytes: 2048}")
    ws.send(TEXT, b"[" + b" " * 1500, fin=False)
    ws.send(CONTINUATION, b" " * 500, fin=False)  # 2001: still in
    ws.send(CONTINUATION, b" " * 100)
    assert await ws.close_frame() == (1009, b"message too big")
    assert await ws.eof()
    await ws.close()


@pytest.mark.parametrize("wire", [
    client_frame(TEXT, b'["1","1","phoenix","heartbeat",{}]', width=126),
    client_frame(TEXT, b'["1","1","phoenix","heartbeat",{}]' + b" " * 300, width=127),
    client_frame(TEXT, b"", width=127, length=1 << 63)[:10],
    client_frame(PING, b"hello", width=126),
], ids=["126 for 35", "127 for 335", "127 with the top bit", "ping 126 for 5"])
async def test_a_length_not_in_its_shortest_encoding_is_closed_1002(mud, gateway, wire):
    """Issue 17.3: RFC 6455 5.2, 'the minimal number of bytes MUST be used'."""
    _, ws, _ = await opened(mud, gateway)
    ws.writer.write(wire)
    assert await ws.close_frame() == (1002, b"frame length not in its shortest form")
    assert await ws.eof()
    await ws.close()


async def test_a_ping_flood_gets_a_turn_of_the_loop_not_the_loop(mud, gateway):
    """The soak's finding (docs/performance.md 5.1): a client sending tiny frames as fast as it
    can (40,000 pings in one read) had them all handled in one callback, and every other
    socket waited: 1,000 players' round trips took 10-45 s beside four such clients. Now a
    socket handles FRAMES_PER_TURN frames a turn of the loop, its reading paused until its
    read is handled: another socket's heartbeat is answered while the flood is still being
    read (an order, not a time: the flood is not yet handled when the answer comes)."""
    client, flooder, sock = await opened(mud, gateway)
    honest = await RawWs.open(client.server.port)
    await until(lambda: len(client.server.app[SOCKETS]) == 2, what="both sockets are the gateway's")
    flooder.writer.write(client_frame(PING, b"") * 40_000)  # 240 KB: one read
    await flooder.writer.drain()
    honest.send_json([None, "1", "phoenix", "heartbeat", {}])
    opcode, payload = await honest.frame(timeout=30)
    assert opcode == TEXT and json.loads(payload)[3] == "phx_reply"
    left = len(sock._conn.reader._buf) + queued(sock.transport.get_extra_info("socket"), termios.FIONREAD)
    assert left > 0, "the whole flood was handled before the other socket's heartbeat"
    # And the flood is still handled in full, a turn at a time: its pongs (coalesced) come.
    await all_read(flooder, sock)


async def test_a_socket_that_floods_while_we_close_gets_a_turn_not_the_loop(mud, gateway, monkeypatch):
    """The ten-minute soak's tail (docs/performance.md 5.1): a slow consumer that went on
    sending while the gateway waited for its close frame had every frame it sent dropped in
    one call of the closing state machine (libuv reads up to 32 times 256 KiB a turn), and
    the other players waited seconds for their replies. A frame dropped while closing is one
    event, counted in the socket's turn like any other: another socket's heartbeat is answered
    while the flood is still unread (an order, not a time)."""
    monkeypatch.setattr(websocket, "CLOSE_HANDSHAKE", 60.0)  # the wait for its close frame outlasts the test
    client, flooder, sock = await opened(mud, gateway)
    honest = await RawWs.open(client.server.port)
    await until(lambda: len(client.server.app[SOCKETS]) == 2, what="both sockets are the gateway's")
    closing = asyncio.ensure_future(sock.close(1000, b"bye"))
    try:
        assert await flooder.close_frame() == (1000, b"bye")  # LOCAL_CLOSING: ours is out
        flooder.writer.write(client_frame(PING, b"") * 40_000)  # 240 KB: one read
        await flooder.writer.drain()
        honest.send_json([None, "1", "phoenix", "heartbeat", {}])
        opcode, payload = await honest.frame(timeout=30)
        assert opcode == TEXT and json.loads(payload)[3] == "phx_reply"
        left = len(sock._conn.reader._buf) + queued(sock.transport.get_extra_info("socket"), termios.FIONREAD)
        assert left > 0, "the whole flood was dropped in one turn, before the other socket's heartbeat"
        await all_read(flooder, sock)  # and it is still read to its end, a turn at a time
        flooder.send(CLOSE, struct.pack("!H", 1000))
        await asyncio.wait_for(closing, 30)  # its close frame ends the handshake
    finally:
        closing.cancel()
        await asyncio.gather(closing, return_exceptions=True)
        await flooder.close()
        await honest.close()
