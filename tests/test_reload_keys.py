"""SIGHUP (SPEC 2), key by key: what a reload does to sockets and sessions already open, for
the keys whose value a long-lived object used to keep (a timer set from it, a deadline worked
out once), and a compact look at those read where they are used. tests/test_reload.py has the
first cases (new games, limits on an open socket, the frame bound, the heartbeat, a removed
game, the deny list, the idle timeout). Reloaded as cli.py's SIGHUP handler does
(``apply_config``), against a real gateway, real sockets and the fake MUD."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import pytest

from gateway.channel import session_key
from gateway.routes import SESSIONS, apply_config
from gateway.transport.websocket import outbox_limit
from tests.conftest import make_config, new_topic, until
from tests.test_mudstandards import SECRET, TERMINAL, play, token
from tests.test_websocket_connection import RawWs

IAC, WILL, DO, SB, SE, GMCP = 255, 251, 253, 250, 240, 201
#: GMCP events of ~1 KB a session keeps for the replay test: ten slices of router.REPLAY_SLICE.
EVENTS = 10000

#: Under the old rate a held line waits this long for its token: "never", for a test.
SLOW = "limits: {input_lines_per_second: 0.001, input_burst: 1}"


async def test_a_faster_input_rate_frees_input_held_on_an_open_ws_socket(mud, gateway):
    """SPEC 9.5 delays /ws input past the rate limit (never drops it): the line waiting for a
    token when the reload raises the rate goes to the game at the new rate, not when the old
    rate (one line in 1,000 s) would have let it."""
    client, _ = await gateway(make_config(mud.port, extra=SLOW))
    ws, conn = await play(mud, client, (TERMINAL,))
    await ws.ws.send_str("first\nsecond")  # the burst's one token, then a line that waits
    await conn.wait_for(b"first\r\n")
    apply_config(client.server.app, make_config(mud.port, extra="limits: {input_lines_per_second: 50}"))
    await conn.wait_for(b"second\r\n", timeout=10)
    await ws.ws.send_str("third")  # and the socket is read again: the next line goes too
    await conn.wait_for(b"third\r\n", timeout=10)
    assert bytes(conn.received) == b"first\r\nsecond\r\nthird\r\n"


async def test_a_shorter_linger_seconds_ends_sessions_lingering_already(mud, gateway):
    """sessions.linger_seconds, like idle_timeout_seconds, applies at once to the sessions it
    concerns, counted from when their browser went away: shortened, a session lingering for
    an hour ends."""
    client, connect = await gateway(make_config(mud.port, extra="sessions: {linger_seconds: 3600}"))
    phx = await connect()
    assert (await phx.join(new_topic()))["status"] == "ok"
    conn = await mud.next_connection()
    await phx.ws.close()  # no phx_leave: the session lingers, for an hour
    apply_config(client.server.app, make_config(mud.port, extra="sessions: {linger_seconds: 1}"))
    await conn.wait_closed(timeout=20)  # (in an hour without the reload's)


async def test_a_longer_linger_seconds_keeps_sessions_lingering_already(mud, gateway):
    """Lengthened, a session that had a second left is still there to resume after it."""
    client, connect = await gateway(make_config(mud.port, extra="sessions: {linger_seconds: 1}"))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    await phx.ws.close()  # lingers for a second
    apply_config(client.server.app, make_config(mud.port, extra="sessions: {linger_seconds: 3600}"))
    await asyncio.sleep(3)  # past the second it was given when it began to linger
    phx = await connect()
    reply = await phx.join(topic)
    assert reply["status"] == "ok" and reply["response"]["resumed"] is True, reply
    conn.send(b"still here\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "still here\n"


@pytest.mark.parametrize("limit, reason", [
    ("max_sessions: 1", "too many sessions"),
    ("max_sessions_per_ip: 1", "too many sessions"),
    ("max_channels_per_socket: 1", "too many channels"),
])
async def test_a_limit_lowered_below_what_is_open_refuses_joins_and_keeps_the_open(mud, gateway, limit, reason):
    """SPEC 2: the new limits apply at once, and sessions are not dropped: two sessions open on
    one socket, a reload allows one. The next join on that socket is refused; both sessions
    go on, both ways."""
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    topics = [new_topic(), new_topic()]
    conns = []
    for ref, topic in enumerate(topics, 1):
        assert (await phx.join(topic, join_ref=str(ref)))["status"] == "ok"
        conns.append(await mud.next_connection())
    apply_config(client.server.app, make_config(mud.port, extra=f"limits: {{{limit}}}"))
    reply = await phx.join(new_topic(), join_ref="3")
    assert reply == {"status": "error", "response": {"reason": reason}}
    assert len(mud.connections) == 2  # the refused join dialled no game
    for topic, conn in zip(topics, conns):
        conn.send(b"still here\r\n")
        assert (await phx.event(topic, "echo"))["message"] == "still here\n"
        assert (await phx.request(topic, "recv", {"message": "look"}))["status"] == "ok"
        await conn.wait_for(b"look\r\n")
    assert (await (await client.get("/healthz")).json())["sessions"] == 2


async def test_auth_turned_on_applies_from_the_next_connection(mud, gateway):
    """security.* but the deny list is checked when a browser connects (docs/operations.md):
    a reload that requires a token refuses the next upgrade without one (403) and takes the
    next one with a token, while the socket accepted before it keeps its session, both ways."""
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    apply_config(client.server.app, make_config(
        mud.port, extra=f"security: {{auth: {{required: true, secret: {SECRET}}}}}"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect()
    assert refused.value.status == 403
    conn.send(b"still here\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "still here\n"
    assert (await phx.request(topic, "recv", {"message": "look"}))["status"] == "ok"
    await conn.wait_for(b"look\r\n")
    with_token = await connect(headers={"Sec-WebSocket-Protocol": "phoenix, base64url.bearer.phx."
                                        + base64.urlsafe_b64encode(token().encode()).decode().rstrip("=")})
    assert (await with_token.join(new_topic()))["status"] == "ok"


async def test_a_larger_replay_bytes_keeps_more_of_a_session_open_before(mud, gateway):
    """sessions.replay_bytes is read at each event (SPEC 6.1 item 4 has a smaller one apply to
    events from then on; a larger one does too): a session opened under 2,000 bytes keeps
    all of what its game says after a reload to 1 MiB, and a reloaded page gets it all."""
    client, connect = await gateway(make_config(mud.port, extra="sessions: {replay_bytes: 2000}"))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    apply_config(client.server.app, make_config(mud.port, extra="sessions: {replay_bytes: 1048576}"))
    lines = [f"line {i} " + "x" * 1000 for i in range(20)]  # ten times the old bound
    for line in lines:
        conn.send(line.encode() + b"\r\n")
        await phx.echo_text(topic, lambda text, line=line: line in text)
    await phx.ws.close()
    phx = await connect()
    reply = await phx.join(topic)  # a reloaded page: no last_seq
    assert reply["status"] == "ok" and reply["response"]["gap"] is False, reply
    replayed = "".join([(await phx.event(topic, "echo"))["message"] for _ in range(reply["response"]["replayed"])])
    assert replayed == "".join(line + "\n" for line in lines)


async def test_a_smaller_outbox_bound_does_not_drop_a_browser_taking_its_replay(mud, gateway):
    """The outbox bound comes from replay_bytes and max_channels_per_socket (websocket.py
    ``outbox_limit``). A reload that lowers it while a browser's outbox holds more, a replay
    the old bound let in, must not make that browser a slow consumer (and end its session):
    SPEC 6.1 item 4 has a smaller replay_bytes apply to events from then on. The browser
    reads the whole replay, then what the game said after the reload."""
    big = "sessions: {replay_bytes: 16000000, linger_seconds: 60}\nlimits: {slow_consumer_seconds: 600}"
    client, connect = await gateway(make_config(mud.port, extra=big))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    conn.send(bytes((IAC, WILL, GMCP)))
    await conn.wait_for(bytes((IAC, DO, GMCP)))
    session = client.server.app[SESSIONS].get(session_key(topic))
    await phx.ws.close()  # it lingers, keeping what the game sends
    await until(lambda: session.viewer is None)
    pad = b"x" * 1000
    for start in range(0, EVENTS, 500):  # small events: the replay goes out in many slices
        conn.send(b"".join(bytes((IAC, SB, GMCP)) + b'Char.Vitals {"n":%d,"pad":"%s"}' % (i, pad)
                           + bytes((IAC, SE)) for i in range(start, start + 500)))
        await conn.drain()
    await until(lambda: session.seq == EVENTS, timeout=20, what="the game's events are kept")

    smaller = make_config(mud.port, extra="sessions: {replay_bytes: 65536, linger_seconds: 60}\n"
                                          "limits: {max_channels_per_socket: 1, slow_consumer_seconds: 600}")
    loop = asyncio.get_running_loop()
    reloaded = loop.create_future()

    def reload_mid_replay() -> None:
        """Each turn of the loop, until the outbox holds more than the smaller bound while
        the replay's slices are still going out (one a turn): then the reload, as SIGHUP's."""
        sock = session.viewer.socket if session.viewer is not None else None
        if sock is not None and sock._replays and sock._outbox_bytes > outbox_limit(smaller):
            apply_config(client.server.app, smaller)
            reloaded.set_result(None)
        elif sock is not None and not sock._replays:
            reloaded.set_exception(AssertionError(
                f"the replay went out before the outbox held more than {outbox_limit(smaller)}: "
                f"{sock._outbox_bytes} queued, {sock.transport.get_write_buffer_size()} in the transport"))
        else:
            loop.call_soon(reload_mid_replay)

    # A browser that reads nothing yet (a small receive buffer: the kernel takes little of
    # it): the replay waits in the outbox.
    browser = await RawWs.open(client.server.port, rcvbuf=4096)
    browser.send_json(["2", "2", topic, "phx_join", {"last_seq": 0}])
    loop.call_soon(reload_mid_replay)
    await asyncio.wait_for(reloaded, 20)
    conn.send(b"after the reload\r\n")

    # The browser reads now: the whole replay, then the line (no "slow consumer" first).
    seqs = []
    while not seqs or msg[3] != "echo":
        msg = await browser.message(lambda m: m[2] == topic and m[3] != "phx_reply", timeout=30)
        assert msg[3] in ("gmcp", "echo"), msg
        seqs.append(msg[4]["seq"])
    assert msg[4]["message"] == "after the reload\n"
    assert seqs == list(range(1, EVENTS + 2))
    await browser.close()
