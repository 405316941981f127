"""How a Phoenix socket writes (websocket.py): no task or Event per socket, one write per batch.

The frames of one game read, and the answers to one browser frame, are
written at once, in one ``transport.write`` (no turn of the loop in between);
other frames queued in one turn of the event loop go in one write (a
``call_soon`` armed when the outbox stops being empty); while aiohttp's flow
control says the browser is behind, a drain task waits and the frames queued
meanwhile go in one write after it, in order. Real sockets: the server's
transport is only counted, never replaced.
"""

from __future__ import annotations

import asyncio

import msgspec

import pytest

from gateway.routes import SESSIONS, SOCKETS
from gateway.telnet.stream import EchoMode, Gmcp, Text
from gateway.transport.websocket import REPLY_HOLD
from tests.conftest import make_config, new_topic, until


# The writes are counted by wrapping the server transport's ``write``, which uvloop's
# transports do not allow; what is counted is our batching, the same on either loop.
pytestmark = pytest.mark.asyncio(loop_factories=["asyncio"])


def count_writes(sock) -> list[int]:
    """The sizes of the server transport's writes from now on (the real write still happens)."""
    transport = sock.transport
    sizes: list[int] = []
    real = transport.write

    def write(data):
        sizes.append(len(data))
        return real(data)

    transport.write = write
    return sizes


def numbered(sock, n: int, pad: int = 0) -> bytes:
    payload = msgspec.json.encode({"n": n, "pad": "x" * pad})
    return sock.serializer.encode(None, None, "phoenix", "test", msgspec.Raw(payload))


async def open_socket(mud, gateway):
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    assert await phx.request("phoenix", "heartbeat", {}, join_ref=None) == {"status": "ok", "response": {}}
    (sock,) = client.server.app[SOCKETS]
    return phx, sock


async def test_frames_queued_in_one_loop_turn_go_in_one_write(mud, gateway):
    phx, sock = await open_socket(mud, gateway)
    assert sock._draining is None and not sock._flush_armed  # idle: nothing scheduled
    writes = count_writes(sock)
    for n in range(5):
        sock.send(numbered(sock, n))
    sock.send_many([numbered(sock, n) for n in range(5, 10)])
    assert writes == []  # written when the loop comes round, not at each send
    got = [(await phx.event("phoenix", "test"))["n"] for _ in range(10)]
    assert got == list(range(10))
    assert len(writes) == 1
    assert sock._draining is None and not sock._flush_armed


async def test_frames_queued_while_the_browser_is_behind_follow_in_order_in_one_write(mud, gateway):
    phx, sock = await open_socket(mud, gateway)
    browser = phx.ws._response.connection.transport
    browser.pause_reading()  # the browser stops reading: the gateway's writes back up
    n = 0
    for _ in range(64):  # 1 MB a turn until aiohttp's flow control pauses the writes
        sock.send_many([numbered(sock, n + i, pad=64 * 1024) for i in range(16)])
        n += 16
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        if sock._draining is not None:
            break
    assert sock._draining is not None, "writes never paused"
    writes = count_writes(sock)
    queued = n
    for i in range(5):  # while the drain waits: queued, not written
        sock.send(numbered(sock, n))
        n += 1
    for _ in range(5):  # turns of the loop (its flush is armed for the next): still queued
        await asyncio.sleep(0)
        if sock._draining is None:
            break  # the kernel took the rest meanwhile: the drain ended (and wrote them, below)
        assert writes == [] and sock.stalled(float("inf")) > 0
    browser.resume_reading()
    got = []
    while len(got) < n:
        got.append((await phx.event("phoenix", "test", timeout=10))["n"])
    assert got == list(range(n))
    await until(lambda: sock._draining is None, what="drain task ended")
    assert len(writes) == 1  # the five frames queued during the drain, together
    assert writes[0] == sum(len(numbered(sock, i)) + 2 for i in range(queued, n))  # + 2-byte frame headers
    assert not sock._writing and sock.stalled(float("inf")) == 0


async def test_a_browser_frame_is_answered_in_one_write_before_it_returns(mud, gateway):
    phx, sock = await open_socket(mud, gateway)
    writes = count_writes(sock)
    # two messages' answers (a heartbeat's and an unknown event's error) from one frame each
    sock.receive('[null, "8", "phoenix", "heartbeat", {}]')
    assert len(writes) == 1 and not sock._outbox and not sock._flush_armed
    sock.receive('[null, "9", "phoenix", "nope", {}]')
    assert len(writes) == 2
    assert (await phx.reply("8"))["status"] == "ok"
    assert (await phx.reply("9"))["status"] == "error"


async def test_a_game_read_is_pushed_in_one_write_at_once(mud, gateway):
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    await mud.next_connection()
    (sock,) = client.server.app[SOCKETS]
    session = sock.channels[topic].session
    assert session is client.server.app[SESSIONS].get(topic.split(":", 1)[1])
    writes = count_writes(sock)
    session.on_events([Text("one\n"), Gmcp("Char.Vitals", {"hp": 1}), EchoMode(False), Text("two\n")])
    assert len(writes) == 1 and not sock._outbox and not sock._flush_armed  # written before returning
    assert (await phx.event(topic, "echo"))["message"] == "one\n"
    assert (await phx.event(topic, "gmcp"))["data"] == {"hp": 1}
    assert (await phx.event(topic, "option"))["echo"] is False
    assert (await phx.event(topic, "echo"))["message"] == "two\n"


async def test_a_push_to_the_game_is_answered_with_the_games_answer_in_one_write(mud, gateway):
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    game = await mud.next_connection()
    (sock,) = client.server.app[SOCKETS]
    session = sock.channels[topic].session
    writes = count_writes(sock)
    # The push went to the game: its reply waits (REPLY_HOLD) for the game's answer...
    sock.receive(phx.encode("1", "20", topic, "recv", {"message": "look"}))
    assert writes == [] and sock._outbox and sock._flush_armed
    await game.wait_for(b"look\r\n")
    # ...which comes (a read of the game: written at once) and takes the reply along: one
    # write, and the hold's timer is cancelled (left to fire, it would wake the loop again).
    session.on_events([Text("You see a room.\n")])
    assert len(writes) == 1 and not sock._outbox and sock._reply_timer is None
    # The reply comes first (phx reads on from it: an echo before it would not be found).
    assert (await phx.reply("20"))["status"] == "ok"
    assert (await phx.event(topic, "echo"))["message"] == "You see a room.\n"
    # A game that does not answer: the reply goes alone when the hold is up.
    sock.receive(phx.encode("1", "21", topic, "recv", {"message": "wait"}))
    assert writes == [writes[0]]
    assert (await phx.reply("21"))["status"] == "ok"
    assert len(writes) == 2
    await asyncio.sleep(2 * REPLY_HOLD)  # (the hold's timer came and went: nothing more to write)
    assert len(writes) == 2 and not sock._flush_armed
    # Answers that do not wait for the game are written at once: a duplicate, an error.
    sock.receive(phx.encode("1", "22", topic, "recv", {"message": "again", "n": 5}))
    sock.receive(phx.encode("1", "23", topic, "recv", {"message": "again", "n": 5}))  # (held with 22)
    assert (await phx.reply("22"))["status"] == "ok"
    assert (await phx.reply("23")) == {"status": "ok", "response": {"duplicate": True}}
    before = len(writes)
    sock.receive(phx.encode("1", "24", topic, "recv", {"message": "x" * 100_000}))
    assert len(writes) == before + 1
    assert (await phx.reply("24"))["status"] == "error"
