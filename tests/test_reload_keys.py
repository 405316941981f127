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

from gateway.routes import apply_config
from tests.conftest import make_config, new_topic
from tests.test_mudstandards import SECRET, TERMINAL, play, token

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
