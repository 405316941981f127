"""Exactly-once input (SPEC 4.4, 6, 6.1 item 3, 7.1): ``recv`` carries ``n``, the session keeps
``input_n`` (the highest ``n`` it sent to the game) and join replies tell it, so a client sends
again, after a drop, only what the game did not get. Over real sockets: a real gateway, the fake
MUD, a Phoenix client; the upgrade in place with the gateway as a subprocess.
"""

from __future__ import annotations

import pytest

from gateway.channel import MAX_N, session_key
from gateway.routes import SESSIONS
from tests.conftest import free_port, make_config, new_topic, session, until
from tests.test_upgrade import start  # noqa: F401  (the fixture: a gateway subprocess)
from tests.upgrade_helpers import config_text, playing

OK = {"status": "ok", "response": {}}
DUPLICATE = {"status": "ok", "response": {"duplicate": True}}


def error(reason: str) -> dict:
    return {"status": "error", "response": {"reason": reason}}


async def recv(phx, topic: str, message: str, n=None) -> dict:
    payload = {"message": message} if n is None else {"message": message, "n": n}
    return await phx.request(topic, "recv", payload)


async def game_got(conn, *lines: bytes) -> None:
    """The game gets ``lines``, in order; then a marker line, sent without ``n``, shows that
    nothing else came between (each line exactly once)."""
    for line in lines:
        await conn.wait_for(line + b"\r\n")
    start = conn._cursor
    await conn.wait_for(b"--marker--\r\n")
    assert conn.received[start:conn._cursor] == b"--marker--\r\n", bytes(conn.received[start:])


async def test_a_duplicate_n_is_not_sent_again(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway)
    assert await recv(phx, topic, "look", 1) == OK
    assert await recv(phx, topic, "look", 1) == DUPLICATE
    assert await recv(phx, topic, "north", 2) == OK
    assert await recv(phx, topic, "look", 1) == DUPLICATE
    assert await recv(phx, topic, "north", 2) == DUPLICATE
    assert await recv(phx, topic, "--marker--") == OK
    await game_got(conn, b"look", b"north")
    assert conn.received.count(b"look\r\n") == 1 and conn.received.count(b"north\r\n") == 1


async def test_n_grows_with_gaps_and_recv_without_n_always_goes(mud, gateway):
    """``n`` need only grow: a gap is fine, anything up to the highest sent is a duplicate.
    A ``recv`` without ``n`` (an older client) is sent as before and moves nothing."""
    phx, topic, conn, connect = await session(mud, gateway)
    assert await recv(phx, topic, "one", 5) == OK
    assert await recv(phx, topic, "two", 3) == DUPLICATE
    assert await recv(phx, topic, "plain") == OK
    assert await recv(phx, topic, "plain") == OK
    assert await recv(phx, topic, "three", 6) == OK
    assert await recv(phx, topic, "four", 100) == OK
    assert await recv(phx, topic, "five", 99) == DUPLICATE
    assert await recv(phx, topic, "x\ny", MAX_N) == OK  # several lines: one input, one n
    assert await recv(phx, topic, "--marker--") == OK
    await game_got(conn, b"one", b"plain", b"plain", b"three", b"four", b"x", b"y")
    phx2 = await connect()
    assert (await phx2.join(topic))["response"]["input_n"] == MAX_N


@pytest.mark.parametrize("n", [0, -1, 1.5, 1.0, True, False, "2", [1], {"n": 1}, MAX_N + 1, 10**30])
async def test_invalid_n_is_refused_and_not_sent(mud, gateway, n):
    phx, topic, conn, connect = await session(mud, gateway)
    assert await recv(phx, topic, "refused", n) == error("invalid n")
    assert await recv(phx, topic, "--marker--") == OK
    await game_got(conn)
    assert b"refused" not in conn.received
    phx2 = await connect()
    assert (await phx2.join(topic))["response"]["input_n"] == 0


async def test_n_null_is_no_n(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway)
    assert await phx.request(topic, "recv", {"message": "look", "n": None}) == OK
    assert await phx.request(topic, "recv", {"message": "look", "n": None}) == OK
    assert await recv(phx, topic, "--marker--") == OK
    await game_got(conn, b"look", b"look")


async def test_a_refused_recv_does_not_move_input_n(mud, gateway):
    """Too long, or over the rate limit: not sent, so the same ``n`` is sent when it comes again."""
    phx, topic, conn, connect = await session(
        mud, gateway, extra="limits: {max_input_bytes: 20, input_burst: 2, input_lines_per_second: 0.01}")
    assert await recv(phx, topic, "x" * 21, 1) == error("message too long")
    assert await recv(phx, topic, "a\nb\nc", 1) == error("rate limited")  # 3 lines, 2 tokens
    phx2 = await connect()
    reply = await phx2.join(topic)  # takes the session over: the old socket's channel ends
    assert reply["response"]["resumed"] is True and reply["response"]["input_n"] == 0, reply
    assert await recv(phx2, topic, "short", 1) == OK
    assert await recv(phx2, topic, "short", 1) == DUPLICATE
    await conn.wait_for(b"short\r\n")
    assert b"x" * 21 not in conn.received and b"a\r\nb\r\n" not in conn.received


async def test_join_replies_carry_input_n(mud, gateway):
    """A new session: ``input_n`` 0. A resume (after a drop, or taking over a session attached
    elsewhere): the session's ``input_n``, with ``replayed`` and ``gap`` as before."""
    _, connect = await gateway(make_config(mud.port))
    phx = await connect()
    topic = new_topic()
    assert await phx.join(topic) == {"status": "ok", "response": {"game": "fake", "resumed": False, "input_n": 0}}
    conn = await mud.next_connection()
    assert await recv(phx, topic, "look", 4) == OK
    await conn.wait_for(b"look\r\n")
    taker = await connect()
    reply = await taker.join(topic, {"last_seq": 0})
    assert reply == {"status": "ok", "response": {"game": "fake", "resumed": True, "replayed": 0,
                                                  "gap": False, "input_n": 4}}
    assert await recv(taker, topic, "north", 5) == OK
    await conn.wait_for(b"north\r\n")
    await taker.ws.close()  # a drop: the session lingers
    again = await connect()
    reply = await again.join(topic)
    assert reply["response"] == {**reply["response"], "resumed": True, "input_n": 5}
    # The client sends again what it has not seen confirmed: 4 and 5 were sent, 6 was not.
    assert [await recv(again, topic, m, n) for m, n in (("look", 4), ("north", 5), ("south", 6))] == [
        DUPLICATE, DUPLICATE, OK]
    assert await recv(again, topic, "--marker--") == OK
    await game_got(conn, b"south")


async def test_pushes_sent_at_once_are_answered_in_order(mud, gateway):
    """A client that sends its queue again after a rejoin does not wait between pushes: each
    gets its own answer, by its ref."""
    phx, topic, conn, _ = await session(mud, gateway)
    refs = []
    for message, n in (("a", 1), ("a", 1), ("b", 2), ("a", 1), ("c", 3), ("b", 2)):
        refs.append(await phx.send(topic, "recv", {"message": message, "n": n}))
    assert [await phx.reply(ref) for ref in refs] == [OK, DUPLICATE, OK, DUPLICATE, OK, DUPLICATE]
    assert await recv(phx, topic, "--marker--") == OK
    await game_got(conn, b"a", b"b", b"c")


async def test_input_held_back_by_a_game_that_does_not_read_moves_input_n_only_when_taken(mud, gateway):
    """A game that does not read: past UNSENT_BYTES waiting for it, ``recv`` is refused ("rate
    limited", docs/security.md "One budget") and ``input_n`` stays at the last one taken; once
    the game reads again, the refused ``n`` is sent (not a duplicate), once."""
    client, connect = await gateway(make_config(mud.port, extra=(
        "limits: {max_input_bytes: 60000, input_burst: 100000, input_lines_per_second: 100000,"
        " max_sessions_per_ip: 100000}")))  # (its megabytes not paced as one address's reads)
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    conn.pause_reading()
    session = client.server.app[SESSIONS].get(session_key(topic))
    n = 0
    for _ in range(2000):
        reply = await recv(phx, topic, f"{n + 1:06d}" + "x" * 59_000, n + 1)
        if reply != OK:
            break
        n += 1
    assert reply == error("rate limited"), n
    assert session.input_n == n
    assert await recv(phx, topic, "late", n + 1) == error("rate limited")
    assert await recv(phx, topic, "old", n) == DUPLICATE  # sent already, even if not read yet
    conn.resume_reading()
    await until(lambda: session.client.unsent() == 0, timeout=20)
    assert await recv(phx, topic, "late", n + 1) == OK
    assert await recv(phx, topic, "late", n + 1) == DUPLICATE
    assert await recv(phx, topic, "--marker--") == OK
    await conn.wait_for(b"%06d" % n, timeout=20)
    await game_got(conn, b"late")
    assert conn.received.count(b"late\r\n") == 1 and b"old\r\n" not in conn.received
    assert [conn.received.count(b"%06d" % i) for i in (1, n)] == [1, 1]


async def test_input_n_is_carried_by_an_upgrade_in_place(mud, start):  # noqa: F811
    """SPEC 6.1 item 3: the new process knows what the old one sent, so the client's queue,
    sent again after the rejoin, reaches the game once."""
    gw = await start(config_text(mud.port, free_port()))
    phx, topic, conn = await playing(gw, mud)
    for i, line in enumerate(("one", "two", "three"), 1):
        assert await recv(phx, topic, line, i) == OK
    await conn.wait_for(b"three\r\n")
    await gw.upgrade()
    assert await phx.close_code() == 1012
    phx2 = await gw.connect()
    reply = await phx2.join(topic, {"last_seq": 0})
    assert reply["status"] == "ok" and reply["response"]["resumed"] is True, reply
    assert reply["response"]["input_n"] == 3, reply
    assert await recv(phx2, topic, "three", 3) == DUPLICATE
    assert await recv(phx2, topic, "four", 4) == OK
    assert await recv(phx2, topic, "--marker--") == OK
    await game_got(conn, b"four")
    assert [conn.received.count(w + b"\r\n") for w in (b"one", b"two", b"three", b"four")] == [1, 1, 1, 1]
