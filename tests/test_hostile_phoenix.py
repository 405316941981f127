"""What one hostile Phoenix socket can make the gateway do, over real sockets: the edges the
other hostile tests (test_frame_bounds.py, test_hostile_transport.py, test_hostile_io.py) do
not try."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import uuid
from collections import Counter
from typing import Awaitable, Callable

import pytest

from gateway.routes import SOCKETS
from gateway.transport import websocket
from gateway.transport.frames import CLOSE, TEXT, FrameReader
from gateway.transport.websocket import (BYTES_PER_TURN, READ_BURST_SECONDS, READ_CHARS_PER_SESSION,
                                         PhoenixSocket)
from tests.conftest import until
from tests.test_frames import client_frame, deflated
from tests.test_websocket_connection import RawWs, start

pytestmark = pytest.mark.both_loops

#: A V2 heartbeat (no ref: nothing to answer) of ``max_frame_bytes`` less a little, once
#: inflated; compressed it is about 150 bytes.
BIG_HEARTBEAT = ('[null,null,"phoenix","heartbeat",{"x":"' + "a" * 65_000 + '"}]').encode()
BIG_FRAME = client_frame(TEXT, deflated(BIG_HEARTBEAT), rsv=0x40)
#: An address's read budget high enough not to pace what these tests send (websocket.py
#: READ_CHARS_PER_SESSION a session it may hold).
PLENTY = "limits: {max_sessions_per_ip: 10000}"


async def open_deflate(port: int, rcvbuf: int = 0) -> RawWs:
    """A raw WebSocket that agreed permessage-deflate, as every browser does (``rcvbuf``: a
    receive buffer that small)."""
    ws = await RawWs.open(port, rcvbuf=rcvbuf,
                          headers="Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
    assert b"permessage-deflate" in ws.head, ws.head
    return ws


async def test_compressed_messages_that_inflate_to_the_bound_get_a_turn_not_the_loop(mud, gateway, monkeypatch):
    """A frame of ~150 bytes, compressed, inflates to a message of max_frame_bytes: 64 of them
    (FRAMES_PER_TURN) were handled in one turn of the loop, 4 MB of JSON for 10 KB sent, while
    every other socket waited (64 KB heartbeats of '[],' each took ~7 ms to check and decode:
    ~450 ms a turn, from one socket on a slow link). A turn now handles messages of at most
    BYTES_PER_TURN characters (and the one that passes it): what an uncompressed socket's read
    brings at most. Counted per turn of the loop, not timed; every message is still handled."""
    handled, ticker = count_turns(monkeypatch)
    # 13 MB of messages: past what an address may make the gateway read in a second
    # (test_an_address_is_read_at_its_budget), unless its limit is raised.
    client, port = await start(mud, gateway, extra=PLENTY)
    ws = await open_deflate(port)
    await until(lambda: client.server.app[SOCKETS], what="the socket is the gateway's")
    count = 200
    ticking = asyncio.ensure_future(ticker())
    try:
        ws.writer.write(BIG_FRAME * count)  # 40 KB: one read
        ws.send_json([None, "e", "phoenix", "heartbeat", {}])  # its reply short: not compressed
        reply = await ws.message(lambda m: m[1] == "e", timeout=60)
        assert reply[4] == {"status": "ok", "response": {}}
    finally:
        ticking.cancel()
        await asyncio.gather(ticking, return_exceptions=True)
    assert len(handled) == count + 1  # every message handled, in the end
    assert most_in_a_turn(handled) <= BYTES_PER_TURN + len(BIG_HEARTBEAT), most_in_a_turn(handled)
    await ws.close()


async def test_an_upgrade_handles_what_a_backed_up_socket_sent_a_turn_at_a_time(mud, gateway, monkeypatch):
    """SPEC 6.1 item 2: an upgrade in place (``restart``) answers every frame a backed-up browser
    sent and the gateway read. It handled them all in one call, whatever they were: a read of
    ~1,000 compressed frames inflating to max_frame_bytes each was 65 MB of JSON in one
    callback, every socket's restart and every frozen game waiting behind it. It now takes
    them a turn (BYTES_PER_TURN) at a time, still every one, before the 1012."""
    handled, ticker = count_turns(monkeypatch)
    client, port = await start(mud, gateway, extra=PLENTY.replace("}", ", slow_consumer_seconds: 60}"))
    ws = await open_deflate(port, rcvbuf=4096)
    await until(lambda: client.server.app[SOCKETS], what="the socket is the gateway's")
    (sock,) = client.server.app[SOCKETS]
    topic = "telnet:" + str(uuid.uuid4())
    ws.send_json(["1", "1", topic, "phx_join", {}])
    await until(lambda: topic in sock.channels, what="joined")
    conn = await mud.next_connection()
    noise = base64.b64encode(os.urandom(6_000_000))  # 8 MB that compression does not shrink away
    conn.send(b"\r\n".join(noise[i:i + 1000] for i in range(0, len(noise), 1000)))  # the browser reads none of it
    drained = asyncio.ensure_future(conn.drain())
    ticking = asyncio.ensure_future(ticker())
    try:
        await until(lambda: sock.backed_up, what="the socket is backed up")
        ws.writer.write(BIG_FRAME * 1000)
        ws.send_json([None, None, "phoenix", "heartbeat", {}])  # no ref: the reply is not read anyway
        await until(lambda: len(sock._conn.reader._buf) > 20 * len(BIG_FRAME), what="the gateway read the frames")
        before = len(handled)
        await sock.restart()
    finally:
        ticking.cancel()
        drained.cancel()
        await asyncio.gather(ticking, drained, return_exceptions=True)
    assert len(handled) - before > 20  # what it read is handled, in the end
    assert most_in_a_turn(handled) <= BYTES_PER_TURN + len(BIG_HEARTBEAT), most_in_a_turn(handled)
    await ws.close()


def count_turns(monkeypatch) -> tuple[list[tuple[int, int]], Callable[[], Awaitable[None]]]:
    """The messages the Phoenix sockets handle, as (turn of the loop, characters), and the task
    that counts the turns (one step each)."""
    handled: list[tuple[int, int]] = []
    turn = 0
    real_handle = PhoenixSocket.handle

    def handle(self: PhoenixSocket, frame: "str | bytes") -> bool:
        handled.append((turn, len(frame)))
        return real_handle(self, frame)

    async def ticker() -> None:
        nonlocal turn
        while True:
            turn += 1
            await asyncio.sleep(0)

    monkeypatch.setattr(PhoenixSocket, "handle", handle)
    return handled, ticker


def most_in_a_turn(handled: list[tuple[int, int]]) -> int:
    per_turn: Counter[int] = Counter()
    for at, size in handled:
        per_turn[at] += size
    return max(per_turn.values())


async def test_compressed_messages_sent_while_we_close_are_not_inflated(mud, gateway, monkeypatch):
    """Once the socket is closing (our close frame out, or a close under way), a message the
    browser sends is dropped unread: it was inflated and checked as UTF-8 all the same, 64 a
    turn (~7 ms of the loop a turn for frames of ~150 bytes, each 64 KB once inflated). Now it
    is dropped as it is: none inflated, and the browser's close frame still ends the close."""
    inflated = 0
    real_inflate = FrameReader._inflate

    def inflate(self: FrameReader, data: bytes) -> bytes:
        nonlocal inflated
        inflated += 1
        return real_inflate(self, data)

    monkeypatch.setattr(FrameReader, "_inflate", inflate)
    monkeypatch.setattr(websocket, "CLOSE_HANDSHAKE", 60.0)  # the wait for its close frame outlasts the test
    client, port = await start(mud, gateway)
    ws = await open_deflate(port)
    await until(lambda: client.server.app[SOCKETS], what="the socket is the gateway's")
    (sock,) = client.server.app[SOCKETS]
    ws.writer.write(BIG_FRAME)
    await until(lambda: inflated == 1, what="an open socket inflates")
    closing = asyncio.ensure_future(sock.close(1000, b"bye"))
    try:
        assert await ws.close_frame() == (1000, b"bye")
        ws.writer.write(BIG_FRAME * 200)
        ws.send(CLOSE, struct.pack("!H", 1000))
        await asyncio.wait_for(closing, 30)  # its close frame, read after the 200, ends the handshake
    finally:
        closing.cancel()
        await asyncio.gather(closing, return_exceptions=True)
        await ws.close()
    assert inflated == 1


async def test_an_address_is_read_at_its_budget(mud, gateway, monkeypatch):
    """What one address's sockets make the gateway read is paced: READ_CHARS_PER_SESSION a
    second for each session it may hold, READ_BURST_SECONDS of that at once. Each socket's turn
    is bounded (BYTES_PER_TURN), but an address may hold 40 sockets: compressed frames of ~150
    bytes, each 64 KB of JSON once inflated, held the loop ~1 s a round of their turns for a few
    KB a second sent. Now, past the budget, the address's sockets are read again once it is
    paid: at no time had the gateway read more than the budget allows (a turn's worth of slack),
    and every message is handled in the end (TCP pushed back; nothing is dropped)."""
    per_ip = 16
    rate = per_ip * READ_CHARS_PER_SESSION
    handled: list[tuple[float, int]] = []
    real_handle = PhoenixSocket.handle

    def handle(self: PhoenixSocket, frame: "str | bytes") -> bool:
        handled.append((asyncio.get_running_loop().time(), len(frame)))
        return real_handle(self, frame)

    monkeypatch.setattr(PhoenixSocket, "handle", handle)
    client, port = await start(mud, gateway, extra=f"limits: {{max_sessions_per_ip: {per_ip}}}")
    message = ('[null,null,"phoenix","heartbeat",{"x":"' + "a" * 8_000 + '"}]').encode()
    sockets = [await open_deflate(port) for _ in range(2)]
    await until(lambda: len(client.server.app[SOCKETS]) == 2, what="the sockets are the gateway's")
    count = 2 * int(rate * READ_BURST_SECONDS) // len(message)  # twice the burst, over both
    began = asyncio.get_running_loop().time()
    for ws in sockets:
        ws.writer.write(client_frame(TEXT, deflated(message), rsv=0x40) * (count // 2))
        ws.send_json([None, "end", "phoenix", "heartbeat", {}])
    await until(lambda: len(handled) == count + 2, timeout=60, what="every message handled")
    read = 0
    for at, size in handled:
        read += size
        allowed = READ_BURST_SECONDS * rate + rate * (at - began) + 2 * (BYTES_PER_TURN + len(message))
        assert read <= allowed, (read, allowed, at - began)
    for ws in sockets:
        await ws.close()


async def test_a_socket_over_its_budget_when_a_replay_holds_it_is_read_again(mud, gateway):
    """A socket's messages take its address over the budget, then a join of them starts a
    replay, which stops the reading (the browser is not read while its replay goes out). When
    the replay is out the socket is not read yet (the budget is not paid): the look once it is
    paid reads what it sent after the join. Without that look nobody read it again."""
    from tests.test_replay_turns import filled

    _, topic, _, connect, sess = await filled(mud, gateway, extra="limits: {max_sessions_per_ip: 1}")
    port = connect.client.server.port
    ws = await RawWs.open(port)
    heartbeat = ('[null,null,"phoenix","heartbeat",{"x":"' + "a" * 8_000 + '"}]').encode()
    over = 1 + int(1 * READ_CHARS_PER_SESSION * READ_BURST_SECONDS) // len(heartbeat)
    join = f'["1","1","{topic}","phx_join",{{"last_seq":0}}]'.encode()
    end = b'[null,"end","phoenix","heartbeat",{}]'
    ws.writer.write(b"".join(client_frame(TEXT, m) for m in [heartbeat] * (over + 2) + [join, end]))
    reply = await ws.message(lambda m: m[1] == "end", timeout=30)
    assert reply[4] == {"status": "ok", "response": {}}
    assert sess.viewer is not None
    await ws.close()
