"""The game connection's flow over real sockets: timers and MCCP2 inflation on both event loops.

Every async test here runs on uvloop, the loop the gateway runs on in production, and on
asyncio's own loop too (``both_loops``): the paths below depend on what the loop's handles are.
"""

from __future__ import annotations

import asyncio
import zlib

import pytest

from gateway.routes import SOCKETS
from gateway.telnet.stream import Lines, Text
from gateway.transport.websocket import HIGH_WATER, READ_BURST
from tests.conftest import EVENTUALLY, session, until
from tests.fakemud import FakeMud
from tests.test_telnet_client import Recorder, adapter

#: Paths where the loops' handles and threads differ: on asyncio's own loop too (conftest).
pytestmark = pytest.mark.both_loops


def text_of(sink: Recorder) -> str:
    return "".join(e.text().message if type(e) is Lines else e.message for e in sink.events
                   if type(e) in (Lines, Text))


async def test_a_flood_read_in_several_reads_at_once_with_a_due_flush_keeps_the_session():
    """uvloop's call_at with a time already due returns a Handle without when(): a flood whose
    reads come back to back (one poll, several reads) with an open line due at once
    (prompt_flush_ms 0) must not end the session (issue 17.11)."""
    mud = await FakeMud().start()
    try:
        client, conn, sink = await adapter(mud, ", prompt_flush_ms: 0")
        line = b"flood " * 20 + b"\r\n"
        body = line * ((4 << 20) // len(line)) + b"open"
        conn.send(body)  # several MB at once: the gateway reads them in 256 KiB reads, back to back
        await conn.drain()
        conn.send(b" line\r\nEND\r\n")
        await until(lambda: text_of(sink).endswith("END\n") or sink.closed.done(), what="END")
        assert not sink.closed.done(), sink.closed.result()
        assert text_of(sink) == body.replace(b"\r", b"").decode() + " line\nEND\n"
        client.close("test over")
        assert await asyncio.wait_for(sink.closed, EVENTUALLY) == "test over"
    finally:
        await mud.close()


# -- MCCP2: a read inflates in steps, with backpressure between them (issue 17.10) ------------

IAC, WILL, DO, SB, SE = 255, 251, 253, 250, 240
MCCP2_ON = bytes([IAC, SB, 86, IAC, SE])


def spam(megabytes: int) -> bytes:
    """Game text that compresses far better than 40:1 (spam lines, with a numbered mark now and then)."""
    block = b"You are hit by the spam storm.\r\n" * 1000
    return b"".join(block + b"mark %d\r\n" % i for i in range((megabytes << 20) // len(block))) + b"THE END\r\n"


async def compressing_session(mud, gateway):
    """A joined session whose game has MCCP2 on: (client, phx, topic, conn, zlib compressor)."""
    phx, topic, conn, connect = await session(mud, gateway)
    client = connect.client
    conn.send(bytes([IAC, WILL, 86]))
    await conn.wait_for(bytes([IAC, DO, 86]))
    return client, phx, topic, conn, zlib.compressobj(9)


async def all_text(phx, topic, timeout: float = 30) -> str:
    """The echo texts up to THE END; fails on any disconnect."""
    text = ""
    while not text.endswith("THE END\n"):
        frame = await phx.expect(lambda f: f[2] == topic and f[3] in ("echo", "disconnect"), timeout)
        assert frame[3] == "echo", frame
        text += frame[4]["message"]
    return text


async def test_mccp2_flood_to_a_browser_that_pauses_arrives_whole(mud, gateway):
    """12 MB of spam in one compressed read while the browser stops reading: the
    gateway inflates a step, stops (its outbox is over the high-water mark), holds about one
    read's worth, and goes on when the browser reads again; nothing is lost, nobody is a slow
    consumer (before: the whole read inflated into the outbox, over its bound at once)."""
    client, phx, topic, conn, z = await compressing_session(mud, gateway)
    plain = spam(12)
    wire = MCCP2_ON + z.compress(plain) + z.flush(zlib.Z_SYNC_FLUSH)
    assert len(wire) * 40 < len(plain) and len(wire) < 1 << 18  # one read's worth
    browser = phx.ws._response.connection.transport
    browser.pause_reading()
    (sock,) = client.server.app[SOCKETS]
    session = sock.channels[topic].session
    game = session.client._transport
    conn.send(wire)

    def held_now() -> int:
        return sock._outbox_bytes + sock.transport.get_write_buffer_size()

    # The gateway inflates a step and stops: the outbox over its mark, the rest of the read
    # waiting compressed, the game not read.
    await until(lambda: not sock._caught_up and session.client.stream.backlog and not game.is_reading(),
                what="the gateway stopped inflating")
    held, game_read = held_now(), False
    for _ in range(50):  # turns of the loop while the browser does not read: it stays so
        await asyncio.sleep(0)
        held = max(held, held_now())
        game_read |= game.is_reading()
    browser.resume_reading()
    assert await all_text(phx, topic) == plain.replace(b"\r", b"").decode()
    # Meanwhile: about one step's frames held, the rest of the read waiting compressed, and
    # the game not read (TCP pushes back on it).
    assert held <= HIGH_WATER + READ_BURST + (1 << 20), held
    assert not game_read
    assert game.is_reading() and not session.client.stream.backlog
    # The session goes on, compressed, both ways.
    conn.send(z.compress(b"still here\r\n") + z.flush(zlib.Z_SYNC_FLUSH))
    assert (await phx.event(topic, "echo"))["message"] == "still here\n"
    assert (await phx.request(topic, "recv", {"message": "look"}))["status"] == "ok"
    await conn.wait_for(b"look\r\n")


async def test_mccp2_read_inflating_past_32_mb_is_no_compression_error(mud, gateway):
    """A valid stream whose one read inflates to 40 MB reaches the browser whole (before:
    "compression error" at 32 MB, or a slow consumer first)."""
    client, phx, topic, conn, z = await compressing_session(mud, gateway)
    plain = spam(40)
    wire = MCCP2_ON + z.compress(plain) + z.flush(zlib.Z_FINISH) + b"plain again\r\n"
    assert len(wire) < 1 << 18
    conn.send(wire)
    text = await all_text(phx, topic, timeout=60)
    assert text == plain.replace(b"\r", b"").decode()
    assert (await phx.event(topic, "echo"))["message"] == "plain again\n"
