"""The game connection's flow over real sockets: timers and MCCP2 inflation on both event loops.

Every async test here runs on asyncio's loop and on uvloop (conftest), the loop the
gateway runs on in production: the paths below depend on what the loop's handles are.
"""

from __future__ import annotations

import asyncio

from gateway.config import parse_config
from gateway.telnet import client as telnet
from gateway.telnet.stream import Lines, Text
from tests.fakemud import FakeMud


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

    def text(self) -> str:
        return "".join(e.text().message if type(e) is Lines else e.message for e in self.events
                       if type(e) in (Lines, Text))


async def test_a_flood_read_in_several_reads_at_once_with_a_due_flush_keeps_the_session():
    """uvloop's call_at with a time already due returns a Handle without when(): a flood whose
    reads come back to back (one poll, several reads) with an open line due at once
    (prompt_flush_ms 0) must not end the session (issue 17.11)."""
    mud = await FakeMud().start()
    try:
        game = parse_config(f"games: [{{name: g, host: 127.0.0.1, port: {mud.port}, prompt_flush_ms: 0}}]").games[0]
        sink = Recorder()
        client = await telnet.connect(game, sink)
        conn = await mud.next_connection()
        line = b"flood " * 20 + b"\r\n"
        body = line * ((4 << 20) // len(line)) + b"open"
        conn.send(body)  # several MB at once: the gateway reads them in 256 KiB reads, back to back
        await conn.drain()
        conn.send(b" line\r\nEND\r\n")
        for _ in range(1000):
            if sink.text().endswith("END\n") or sink.closed.done():
                break
            await asyncio.sleep(0.01)
        assert not sink.closed.done(), sink.closed.result()
        assert sink.text() == body.replace(b"\r", b"").decode() + " line\nEND\n"
        client.close("test over")
        assert await asyncio.wait_for(sink.closed, 5) == "test over"
    finally:
        await mud.close()
