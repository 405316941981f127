"""The session life cycle under races and abuse (issue 11), over real sockets.

A fake MUD whose TLS handshakes wait for the test (``FakeMud(hold_handshake=True)``)
makes the "connecting" window as long as a test needs: a join is under way
for exactly as long as the test holds the handshake.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.routes import SESSIONS, SOCKETS
from gateway.session import SessionManager
from tests.conftest import make_config, new_topic, send_until_stalled, session, until
from tests.fakemud import FakeMud
from tests.test_auth import REQUIRED, open_socket, token

TLS_GAME = "    tls: true\n    tls_verify: false\n    connect_timeout: 30\n"


# On asyncio's loop only: the fake MUD holds TLS handshakes by starting TLS on the server
# side late (loop.start_tls), which uvloop 0.23 never completes on such a connection. The
# gateway itself does not start TLS that way; its TLS runs on uvloop in test_tls.py.
pytestmark = pytest.mark.asyncio(loop_factories=["asyncio"])


@pytest.fixture
async def slow_mud(tls_context):
    """A TLS game whose handshakes wait for ``await slow_mud.next_held()`` ``.release()``."""
    mud = await FakeMud(ssl=tls_context, hold_handshake=True).start()
    yield mud
    await mud.close()


def key_of(topic: str) -> str:
    return topic.split(":", 1)[1]


def assert_counts(manager: SessionManager, live: int) -> None:
    """The session table, the per-IP slots and the sessions that exist agree."""
    assert len(manager.sessions) == live
    assert sum(manager.per_ip.values()) == live + len(manager._opening)


async def healthz(client) -> int:
    return (await (await client.get("/healthz")).json())["sessions"]


# -- 1: a takeover releases the pause of the socket it takes the session from ------------

async def test_takeover_of_a_paused_session_reads_the_game_again(mud, gateway):
    phx, topic, conn, connect = await session(mud, gateway, extra="limits: {slow_consumer_seconds: 600}")
    manager: SessionManager = connect.client.app[SESSIONS]
    sess = manager.get(key_of(topic))
    # The first browser stops reading; the game writes more than any buffer holds.
    conn.send((b"y" * 1000 + b"\r\n") * 8000 + b"THE END\r\n")
    await until(lambda: sess._paused, what="the game's reads paused")
    # A second browser takes the session over and reads: so must the session read its game.
    phx2 = await connect()
    reply = await phx2.join(topic, {"last_seq": 10**9}, join_ref="7")
    assert reply["status"] == "ok", reply
    await phx2.echo_text(topic, lambda text: "THE END" in text, timeout=20)


# -- 2: what one socket can make the gateway hold is bounded --------------------------------

async def test_a_burst_of_rejoins_does_not_grow_the_outbox(mud, gateway):
    phx, topic, conn, connect = await session(
        mud, gateway, extra="sessions: {replay_bytes: 500000}\nlimits: {slow_consumer_seconds: 600}")
    client = connect.client
    conn.send((b"z" * 999 + b"\r\n") * 500)  # the replay buffer is full
    await phx.echo_text(topic, lambda text: text.count("\n") >= 500)
    # The browser stops reading and sends the same join again and again: 50 MB of
    # replay if each were copied, far beyond what the kernel's buffers take.
    frame = json.dumps(["5", "5", topic, "phx_join", {"last_seq": 0}])
    (sock,) = client.app[SOCKETS]
    sent, _ = await send_until_stalled(phx.ws, sock, frame, 100)
    held = sock._outbox_bytes
    assert held < 2 * 500000 + (1 << 20), (held, sent)  # not a copy of the replay per join
    assert held <= sock.outbox_limit(), (held, sent)


async def test_outbox_over_its_bound_is_a_slow_consumer_at_once(mud, gateway):
    # Every push echoes the join_ref: a browser that picks a 30 KB one makes each
    # GMCP message of its game a 30 KB frame, 60 MB for one read of the game's.
    client, connect = await gateway(make_config(mud.port, extra="limits: {slow_consumer_seconds: 600}"))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic, join_ref="j" * 30000))["status"] == "ok"
    conn = await mud.next_connection()
    conn.send(bytes((255, 251, 201)))  # IAC WILL GMCP
    await conn.wait_for(bytes((255, 253, 201)))
    conn.send((bytes((255, 250, 201)) + b"Char.Vitals 1" + bytes((255, 240))) * 2000)
    assert (await phx.event(topic, "disconnect", timeout=10))["reason"] == "slow consumer"
    await phx.expect(lambda f: f[3] == "phx_close")
    await conn.wait_closed()
    # The session ended inside the game read that overflowed: its replay buffer is not
    # watched by the compactor again on the way out of that read (it would be held, and
    # compressed, for up to two more sweeps).
    assert len(client.app[SESSIONS].compactor) == 0


async def test_what_the_game_gives_up_after_the_end_is_kept_by_nobody(mud, gateway):
    # A line held back as a possible prompt comes out when the game's connection closes
    # (stream.finish); after a leave that close is the gateway's own, and the session is over.
    phx, topic, conn, connect = await session(mud, gateway, game_extra="    prompt_flush_ms: 60000\n")
    manager: SessionManager = connect.client.app[SESSIONS]
    sess = manager.get(key_of(topic))
    conn.send(b"You see a door.\r\nWhat now? ")
    await phx.echo_text(topic, lambda text: "You see a door." in text)
    kept = [k.seq for k in sess.replay.since(0)[0]]
    assert (await phx.request(topic, "phx_leave", {}))["status"] == "ok"
    await conn.wait_closed()
    # The gateway's side of the close is handled: the held line was given up before this.
    await until(lambda: sess.client.transport is None, what="the game connection lost")
    assert sess.ended
    assert [k.seq for k in sess.replay.since(0)[0]] == kept  # "What now? " kept by no one
    assert len(manager.compactor) == 0


# -- 3: a join of a connecting session passes the same checks as a resume --------------

async def test_join_of_a_connecting_session_checks_sub(slow_mud, gateway):
    client, _ = await gateway(make_config(slow_mud.port, extra=REQUIRED, game_extra=TLS_GAME))
    alice = await open_socket(client, token(sub="alice"))
    mallory = await open_socket(client, token(sub="mallory"))
    topic = new_topic()
    first = await alice.send(topic, "phx_join", {})
    held = await slow_mud.next_held()
    second = await mallory.send(topic, "phx_join", {})
    assert await mallory.reply(second) == {"status": "error", "response": {"reason": "unauthorized"}}
    held.release()
    assert (await alice.reply(first))["status"] == "ok"
    conn = await slow_mud.next_connection()
    assert (await mallory.request(topic, "recv", {"message": "steal"}))["response"]["reason"] == \
        "unmatched topic"
    assert (await alice.request(topic, "recv", {"message": "mine"}))["status"] == "ok"
    await conn.wait_for(b"mine\r\n")
    assert b"steal" not in conn.received


# -- 4: phx_leave while the join is connecting -----------------------------------------

async def test_leave_while_connecting_ends_the_session_at_once(slow_mud, gateway):
    client, connect = await gateway(make_config(slow_mud.port, game_extra=TLS_GAME))
    manager = client.app[SESSIONS]
    phx = await connect()
    topic = new_topic()
    join = await phx.send(topic, "phx_join", {})
    held = await slow_mud.next_held()
    leave = await phx.send(topic, "phx_leave", {})
    assert await phx.reply(leave) == {"status": "ok", "response": {}}
    close = await phx.expect(lambda f: f[3] == "phx_close")
    assert close[:3] == ["1", "1", topic]
    reply = await phx.reply(join)
    assert reply == {"status": "error", "response": {"reason": "game unavailable", "detail": "left"}}
    assert_counts(manager, 0)
    assert await healthz(client) == 0
    held.release()  # the game would be ready now: nobody connects to it
    await held.settled.wait()
    await until(lambda: slow_mud.connections == [] or slow_mud.connections[0].eof,
                what="no game connection, or one the gateway closed")
    assert await phx.barrier() == []


# -- 5: JSON nested too deeply for any parser ---------------------------------------------

async def test_deeply_nested_frames_are_malformed_messages(joined):
    phx, topic, conn = joined
    deep = "[" * 1500 + "]" * 1500
    await phx.ws.send_str(f'["1","d1","{topic}","recv",{deep}]')
    assert await phx.reply("d1") == {"status": "error", "response": {"reason": "malformed message"}}
    await phx.ws.send_str(json.dumps({"topic": topic, "event": "recv", "ref": "d2", "join_ref": "1",
                                      "payload": 0}).replace("0}", deep + "}", 1))
    v1 = await phx.expect(lambda f: f[1] == "d2")
    assert v1[4]["response"]["reason"] == "malformed message"
    # A GMCP push nested just below what the frame parser takes.
    conn.send(bytes((255, 251, 201)))  # IAC WILL GMCP
    await conn.wait_for(bytes((255, 253, 201)))
    data = "[" * 990 + "]" * 990
    await phx.ws.send_str(f'["1","d3","{topic}","gmcp",{{"module":"Core.Deep","data":{data}}}]')
    assert (await phx.reply("d3"))["status"] == "error"
    # The game's GMCP nested as deep: its raw text, never a crash.
    conn.send(bytes((255, 250, 201)) + b"Room.Deep " + data.encode() + bytes((255, 240)))
    event = await phx.event(topic, "gmcp")
    assert event["module"] == "Room.Deep" and event["data"] == data
    # The socket and its channel go on.
    assert (await phx.request(topic, "recv", {"message": "still here"}))["status"] == "ok"
    await conn.wait_for(b"still here\r\n")


# -- 6: a second join of a connecting topic is answered whatever the first joiner does ---

async def test_second_join_answered_when_first_joiner_drops(slow_mud, gateway):
    client, connect = await gateway(make_config(slow_mud.port, game_extra=TLS_GAME))
    first, second = await connect(), await connect()
    topic = new_topic()
    await first.send(topic, "phx_join", {})
    held = await slow_mud.next_held()
    ref = await second.send(topic, "phx_join", {})
    await until(lambda: client.app[SESSIONS].connecting(key_of(topic)).waiters == 2,
                what="both joins wait for the connect")
    await first.ws.close()
    held.release()
    reply = await second.reply(ref, timeout=10)
    assert reply["status"] == "ok" and reply["response"]["resumed"] is True, reply
    conn = await slow_mud.next_connection()
    conn.send(b"welcome\r\n")
    assert (await second.event(topic, "echo"))["message"] == "welcome\n"
    assert_counts(client.app[SESSIONS], 1)


async def test_connect_finishing_after_every_joiner_left_lingers(slow_mud, gateway):
    client, connect = await gateway(make_config(slow_mud.port, game_extra=TLS_GAME,
                                                extra="sessions: {linger_seconds: 30}"))
    phx = await connect()
    topic = new_topic()
    await phx.send(topic, "phx_join", {})
    held = await slow_mud.next_held()
    await phx.ws.close()
    held.release()
    conn = await slow_mud.next_connection()
    conn.send(b"while you were away\r\n")
    await until(lambda: len(client.app[SESSIONS].sessions) == 1, what="the session is open")
    phx2 = await connect()
    reply = await phx2.join(topic)
    assert reply["response"]["resumed"] is True
    assert (await phx2.event(topic, "echo"))["message"] == "while you were away\n"


# -- 7: a session that ends inside its own open ------------------------------------------

async def test_idle_timeout_shorter_than_the_connect(slow_mud, gateway):
    client, connect = await gateway(make_config(
        slow_mud.port, game_extra=TLS_GAME,
        extra="sessions: {idle_timeout_seconds: 0.3}\nlimits: {max_sessions_per_ip: 2}"))
    manager = client.app[SESSIONS]
    for _ in range(3):  # one more than the per-IP limit: each slot comes back
        phx = await connect()
        topic = new_topic()
        ref = await phx.send(topic, "phx_join", {})
        held = await slow_mud.next_held()
        await asyncio.sleep(0.5)  # longer than the idle timeout
        held.release()
        assert (await phx.reply(ref))["status"] == "ok"
        # The idle clock starts when the session opens: then it ends, and is counted no more.
        assert (await phx.event(topic, "disconnect"))["reason"] == "idle"
        await phx.expect(lambda f: f[3] == "phx_close")
        assert_counts(manager, 0)
        assert await healthz(client) == 0


async def test_session_ended_while_connecting_is_never_registered(slow_mud, gateway):
    client, connect = await gateway(make_config(slow_mud.port, game_extra=TLS_GAME))
    manager = client.app[SESSIONS]
    phx = await connect()
    topic = new_topic()
    ref = await phx.send(topic, "phx_join", {})
    held = await slow_mud.next_held()
    manager.shutdown("gateway shutdown")  # what a stop does meanwhile (a kick is told: test_dialling.py)
    reply = await phx.reply(ref)
    assert reply == {"status": "error",
                     "response": {"reason": "game unavailable", "detail": "gateway shutdown"}}
    held.release()
    assert_counts(manager, 0)
    assert await healthz(client) == 0


# -- also: a game that stops reading, a session ending as a join attaches ----------------

async def test_game_that_stops_reading_is_cut_off_after_end(mud, gateway):
    extra = ("limits: {max_frame_bytes: 1000000, max_input_bytes: 900000, input_lines_per_second: 100000,"
             " input_burst: 100000, max_sessions_per_ip: 100000}")  # (its megabytes not paced: docs/security.md)
    phx, topic, conn, _ = await session(mud, gateway, extra=extra)
    conn.pause_reading()
    line = "x" * 800000
    for i in range(40):  # beyond the kernel's buffers: the gateway's write buffer fills, to its bound
        reply = await phx.request(topic, "recv", {"message": line})
        if reply["status"] != "ok":
            assert reply["response"]["reason"] == "rate limited"  # input the game does not take
            break
    else:
        raise AssertionError("the input the game does not read was never refused")
    assert (await phx.request(topic, "phx_leave", {}))["status"] == "ok"
    # Closed politely first; a game that never reads is then cut off (reset).
    await until(lambda: conn.tcp_state() != 1, timeout=20, what="the game connection closed")


async def test_game_hanging_up_as_two_joins_attach(tls_context, gateway):
    mud = await FakeMud(ssl=tls_context, hold_handshake=True, hang_up=True,
                        on_connect=b"Sorry, the game is full.\r\n").start()
    try:
        client, connect = await gateway(make_config(mud.port, game_extra=TLS_GAME))
        a, b = await connect(), await connect()
        topic = new_topic()
        ref_a = await a.send(topic, "phx_join", {})
        held = await mud.next_held()
        ref_b = await b.send(topic, "phx_join", {})
        await until(lambda: client.app[SESSIONS].connecting(key_of(topic)).waiters == 2,
                    what="both joins wait for the connect")
        held.release()
        for phx, ref in ((a, ref_a), (b, ref_b)):
            assert (await phx.reply(ref))["status"] == "ok"
            await phx.expect(lambda f: f[3] == "disconnect")
            await phx.expect(lambda f: f[3] == "phx_close")
        assert_counts(client.app[SESSIONS], 0)
        assert await healthz(client) == 0
    finally:
        await mud.close()
