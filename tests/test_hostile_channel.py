"""What a hostile (or merely unlucky) client can do at the channel, session and MUD Standards
layer, over real sockets: a real gateway, the fake MUD, a Phoenix or /ws client."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.routes import SESSIONS, SOCKETS
from gateway.session import UNSENT_BYTES
from tests.conftest import make_config, new_topic, until
from tests.test_mudstandards import DO, GMCP, IAC, JSON, TERMINAL, WILL, play, ws_gateway  # noqa: F401
from tests.test_session_races import TLS_GAME, assert_counts, slow_mud  # noqa: F401  (fixtures)


# -- /ws: input a game does not read waits, it is never dropped (SPEC 9.5) ---------------------

async def test_ws_lines_past_the_tokens_to_a_game_that_does_not_read_are_not_dropped(mud, ws_gateway):
    """A frame of more lines than there are tokens is sent in parts; when a part is refused
    because the game has not read what it was sent (session.UNSENT_BYTES), it waits with the
    rest of its frame: every line reaches the game, once, when it reads again.

    A token a line (burst 1): each frame is sent as a big line, then ``t1`` (a part taken
    out of a frame of two lines), then ``t2``. Only a big line moves the game's unread input
    over the bound, so the part found refused is a ``t1``."""
    client = await ws_gateway(extra=(
        "limits: {max_input_bytes: 60000, input_burst: 1, input_lines_per_second: 1000000,"
        " max_sessions_per_ip: 1000}"))  # (megabytes read from one address: not paced here)
    ws, conn = await play(mud, client, (TERMINAL,))
    (session,) = client.server.app[SESSIONS].sessions.values()
    (sock,) = client.server.app[SOCKETS]
    conn.pause_reading()
    big = b"y" * 50_000
    sent = 0

    async def spam() -> None:
        nonlocal sent
        while True:
            await ws.ws.send_bytes(big + b"\nt1\nt2")
            sent += 1

    spamming = asyncio.ensure_future(spam())
    try:
        await until(lambda: session.client.unsent() > UNSENT_BYTES, what="the game's unread input over its bound")
        seen = sock._throttle   # input waits for the game; once this timer has fired, it was refused
        await until(lambda: sock._throttle is not None and sock._throttle is not seen,
                    what="the waiting input looked at again")
    finally:
        spamming.cancel()
        await asyncio.gather(spamming, return_exceptions=True)
    conn.resume_reading()
    await ws.ws.send_bytes(b"end\n")
    await conn.wait_for(b"end\r\n", timeout=30)
    received = bytes(conn.received)
    counts = [received.count(line + b"\r\n") for line in (big, b"t1", b"t2")]
    assert counts in ([sent] * 3, [sent + 1] * 3), (sent, counts)   # the frame in flight too
    assert received.endswith(big + b"\r\nt1\r\nt2\r\nend\r\n")


# -- /ws: JSON nested too deeply for a parser is bad data, not a crash (SPEC 9.5, nesting.py) --

DEEP = "[" * 1500 + "]" * 1500


@pytest.mark.parametrize("protocol, frame", [
    (GMCP, "Core.Ping " + DEEP),
    (JSON, json.dumps({"proto": "gmcp", "id": "Core.Ping", "data": DEEP})),
    (JSON, '{"proto": "text", "data": "x", "more": ' + DEEP + "}"),
])
async def test_ws_json_nested_too_deeply_closes_1007(mud, ws_gateway, protocol, frame):
    client = await ws_gateway()
    ws, conn = await play(mud, client, (protocol,))
    conn.send(b"hi\r\n")
    await ws.binary_until(b"hi\r\n")   # attached: the frame is handled now
    await ws.ws.send_str(frame)
    assert (await ws.closed())[0] == 1007
    await conn.wait_closed()
    assert b"Core.Ping" not in conn.received and b"[[" not in conn.received


async def test_ws_msdp_nested_deeper_than_msdp_encodes_closes_1007(mud, ws_gateway):
    """Nested within what msgspec parses but past what MSDP encodes (100 levels): refused as
    the Phoenix frame limit refuses it, not raised out of the socket's frame handler."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (GMCP,))
    conn.send(bytes([IAC, WILL, 69]))
    await conn.wait_for(bytes([IAC, DO, 69]))
    conn.send(b"hi\r\n")
    await ws.binary_until(b"hi\r\n")
    await ws.ws.send_str("MSDP " + '{"A":' * 150 + '"1"' + "}" * 150)
    assert (await ws.closed())[0] == 1007
    await conn.wait_closed()


# -- Phoenix: a leave ends a join under way at once ------------------------------------------

@pytest.mark.both_loops
@pytest.mark.asyncio(loop_factories=["asyncio"])  # the held TLS handshake (test_session_races.py)
async def test_join_right_after_leaving_a_connecting_join_is_not_too_many_channels(slow_mud, gateway):
    """phx_leave of a join that waits for its game, then a join of the same topic in the same
    read (phoenix.js: ``channel.leave(); socket.channel(topic).join()``): the first join is no
    longer under way, so the second starts a new session; it is not ``too many channels``."""
    client, connect = await gateway(make_config(slow_mud.port, game_extra=TLS_GAME))
    manager = client.app[SESSIONS]
    phx = await connect()
    topic = new_topic()
    first = await phx.send(topic, "phx_join", {})
    await slow_mud.next_held()   # the first join waits for its game (never released)
    # Neither send waits (no compression): both frames reach the gateway in one read.
    leave = await phx.send(topic, "phx_leave", {})
    second = await phx.send(topic, "phx_join", {}, join_ref="2")
    assert await phx.reply(leave) == {"status": "ok", "response": {}}
    assert await phx.reply(first) == {"status": "error",
                                      "response": {"reason": "game unavailable", "detail": "left"}}
    await phx.barrier()
    assert [f for f in phx.frames if f[1] == second] == []   # not refused: it waits for its game
    held = await slow_mud.next_held()   # the second join's own connect
    held.release()
    assert await phx.reply(second) == {"status": "ok",
                                       "response": {"game": "fake", "resumed": False, "input_n": 0}}
    await until(lambda: len(manager) == 1)
    assert_counts(manager, 1)
    assert (await phx.request(topic, "recv", {"message": "look"}, join_ref="2"))["status"] == "ok"


@pytest.mark.both_loops
@pytest.mark.asyncio(loop_factories=["asyncio"])  # the held TLS handshake (test_session_races.py)
async def test_a_second_leave_of_a_left_connecting_join_is_an_unmatched_topic(slow_mud, gateway):
    """SPEC 4.1: a message naming a topic that is not joined gets an error reply. Once the
    leave of a join under way is answered (ok, then phx_close), the topic is not joined
    (the leave forgets the join at once), as after the leave of a joined channel: a second
    leave, even in the same read, is ``unmatched topic`` (before: a second ok and phx_close),
    and nothing is left counted."""
    client, connect = await gateway(make_config(slow_mud.port, game_extra=TLS_GAME))
    manager = client.app[SESSIONS]
    phx = await connect()
    topic = new_topic()
    join = await phx.send(topic, "phx_join", {})
    await slow_mud.next_held()   # the join waits for its game (never released)
    # Neither send waits: both leaves reach the gateway in one read, before the join is told.
    first = await phx.send(topic, "phx_leave", {})
    second = await phx.send(topic, "phx_leave", {})
    assert await phx.reply(first) == {"status": "ok", "response": {}}
    assert await phx.reply(second) == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert await phx.reply(join) == {"status": "error",
                                     "response": {"reason": "game unavailable", "detail": "left"}}
    await phx.barrier()
    assert [f[3] for f in phx.frames if f[3] == "phx_close"] == ["phx_close"]  # one close, the leave's
    await until(lambda: len(manager) == 0)
    assert_counts(manager, 0)
