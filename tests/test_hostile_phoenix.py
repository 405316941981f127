"""What one hostile Phoenix socket can make the gateway do, over real sockets: the edges the
other hostile tests (test_frame_bounds.py, test_hostile_transport.py, test_hostile_io.py) do
not try."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections import Counter

import pytest

from gateway.routes import SOCKETS
from gateway.transport import websocket
from gateway.transport.frames import TEXT
from gateway.transport.websocket import BYTES_PER_TURN, PhoenixSocket
from tests.conftest import EVENTUALLY, until
from tests.test_frames import client_frame, deflated
from tests.test_websocket_connection import UPGRADE, RawWs, start

pytestmark = pytest.mark.both_loops

#: A V2 heartbeat (no ref: nothing to answer) of ``max_frame_bytes`` less a little, once
#: inflated; compressed it is about 150 bytes.
BIG_HEARTBEAT = ('[null,null,"phoenix","heartbeat",{"x":"' + "a" * 65_000 + '"}]').encode()


async def open_deflate(port: int) -> RawWs:
    """A raw WebSocket that agreed permessage-deflate, as every browser does."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(UPGRADE.format(key=key).replace(
        "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EVENTUALLY)
    assert head.startswith(b"HTTP/1.1 101") and b"permessage-deflate" in head, head
    return RawWs(reader, writer)


async def test_compressed_messages_that_inflate_to_the_bound_get_a_turn_not_the_loop(mud, gateway, monkeypatch):
    """A frame of ~150 bytes, compressed, inflates to a message of max_frame_bytes: 64 of them
    (FRAMES_PER_TURN) were handled in one turn of the loop, 4 MB of JSON for 10 KB sent, while
    every other socket waited (64 KB heartbeats of '[],' each took ~7 ms to check and decode:
    ~450 ms a turn, from one socket on a slow link). A turn now handles messages of at most
    BYTES_PER_TURN characters (and the one that passes it): what an uncompressed socket's read
    brings at most. Counted per turn of the loop, not timed; every message is still handled."""
    handled: list[tuple[int, int]] = []  # (turn of the loop, characters) of each message handled
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
    client, port = await start(mud, gateway)
    ws = await open_deflate(port)
    await until(lambda: client.server.app[SOCKETS], what="the socket is the gateway's")
    frame = client_frame(TEXT, deflated(BIG_HEARTBEAT), rsv=0x40)
    assert len(frame) < 300
    count = 200
    ticking = asyncio.ensure_future(ticker())
    try:
        ws.writer.write(frame * count)  # 40 KB: one read
        ws.send_json([None, "e", "phoenix", "heartbeat", {}])  # its reply short: not compressed
        reply = await ws.message(lambda m: m[1] == "e", timeout=60)
        assert reply[4] == {"status": "ok", "response": {}}
    finally:
        ticking.cancel()
        await asyncio.gather(ticking, return_exceptions=True)
    assert len(handled) == count + 1  # every message handled, in the end
    per_turn = Counter()
    for at, size in handled:
        per_turn[at] += size
    assert max(per_turn.values()) <= BYTES_PER_TURN + len(BIG_HEARTBEAT), max(per_turn.values())
    await ws.close()
