"""The moment between a new session's game connection opening and the join (or ``/ws``
socket) that waits for it being resumed, over real sockets: a real gateway, the fake MUD,
a Phoenix or ``/ws`` client.

``SessionManager._connect`` registers the session as open (it is listed and can be
kicked from its admission on, while its game is dialled too: test_dialling.py) and tells
the joins waiting for it (``Session._settle``); a waiting join resumes two turns of the loop
later (the future it waits on is shielded). Anything the gateway handles in
those turns meets a session that is open and not yet attached. A test gets there by
acting when the gateway logs the session's start, which ``_connect`` does between the
two: a WebSocket frame written then is read in the next turn, before the join resumes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextlib import contextmanager
from typing import Iterator

import pytest

from gateway.routes import SESSIONS
from tests.conftest import make_config, new_topic, until
from tests.test_frames import client_frame
from tests.test_mudstandards import TELNET, TERMINAL, open_ws, ws_gateway  # noqa: F401
from tests.test_session_races import assert_counts

TEXT = 0x1


class _OnStart(logging.Handler):
    def __init__(self, action: Callable[[], None]) -> None:
        super().__init__(logging.INFO)
        self.action = action
        self.fired = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.fired and record.getMessage().startswith("session start"):
            self.fired = True
            self.action()


@contextmanager
def on_session_start(caplog: pytest.LogCaptureFixture, action: Callable[[], None]) -> Iterator[_OnStart]:
    """Call ``action()`` as the gateway logs the first session start (``SessionManager._connect``,
    after the session is registered, before the joins waiting for it are told)."""
    caplog.set_level(logging.INFO, logger="gateway.session")
    handler = _OnStart(action)
    logger = logging.getLogger("gateway.session")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# -- Phoenix: phx_leave once the game connection opened, before the join resumed ---------------

@pytest.mark.both_loops
async def test_leave_after_the_game_opened_before_the_join_resumed_is_a_leave_of_a_connecting_join(
        mud, gateway, caplog):
    """SPEC 4.2: ``phx_leave`` ends the session at once, the reply is ok, then ``phx_close``.
    The leave is read after the game connection opened and before the join waiting for it
    resumed (it is still under way: ``_joining``). The join then is answered as when the
    leave comes a moment earlier (test_session_races.py, 4): ``game unavailable``, detail
    ``left``; not ok, then a ``disconnect`` with reason ``left`` (no SPEC reason) and a
    second ``phx_close`` for a topic the browser was told is closed. The game connection is
    closed, nothing is left counted."""
    client, connect = await gateway(make_config(mud.port))
    manager = client.app[SESSIONS]
    phx = await connect()
    topic = new_topic()
    transport = phx.ws._response.connection.transport
    leave = "leave"
    frame = client_frame(TEXT, json.dumps(["1", leave, topic, "phx_leave", {}]).encode())
    # Written in the turn the session opens: no await, the bytes are in the kernel at once.
    with on_session_start(caplog, lambda: transport.write(frame)) as hook:
        join = await phx.send(topic, "phx_join", {})
        conn = await mud.next_connection()
        assert await phx.reply(leave) == {"status": "ok", "response": {}}
    assert hook.fired  # the game connection was open when the leave was read
    assert await phx.reply(join) == {"status": "error",
                                     "response": {"reason": "game unavailable", "detail": "left"}}
    await phx.barrier()
    assert [(f[1], f[3]) for f in phx.frames if f[2] == topic] == [
        (leave, "phx_reply"), ("1", "phx_close"), (join, "phx_reply")]
    await conn.wait_closed()
    await until(lambda: len(manager) == 0)
    assert_counts(manager, 0)
    metrics = await (await client.get("/metrics")).text()
    assert 'mud_gateway_joins_total{result="game unavailable"} 1.0' in metrics
    assert 'mud_gateway_joins_total{result="ok"}' not in metrics
    # The session had opened (its start was logged): a leave ends it, as any leave.
    assert 'mud_gateway_disconnects_total{reason="left"} 1.0' in metrics
    # The socket goes on: the topic can be joined again.
    assert (await phx.join(topic, join_ref="2"))["status"] == "ok"
    await mud.next_connection()


# -- /ws: an admin kick before the socket attached (SPEC 7, 9.6) -------------------------------

#: A /ws kick (SPEC 9.6): the subprotocol, the admin's message, and the frames the socket gets
#: before its close 1000 ``kicked`` (none for an empty message).
WS_KICKS = [
    (TERMINAL, "Time for bed.", [("binary", b"Time for bed.\r\n")]),
    (TELNET, "Time for bed.", [("binary", b"Time for bed.\r\n")]),
    (TERMINAL, "", []),
]


@pytest.mark.both_loops
@pytest.mark.parametrize("protocol, message, frames", WS_KICKS)
async def test_ws_kick_after_the_game_opened_before_the_socket_attached_sends_the_message(
        mud, ws_gateway, caplog, protocol, message, frames):
    """SPEC 9.6: admin kick: the message, when not empty, as a BINARY frame
    ``<message>\\r\\n``, then close 1000 ``kicked``. A ``/ws`` session is listed (and can be
    kicked) from its admission on, and its socket attaches a turn or two after its game
    connection opens: a kick meeting it then ended it before its socket was its viewer, and
    the socket, finding it ended, closed 1000 ``kicked`` without the message.

    The kick here is what ``POST /admin/sessions/{id}/kick`` does (``Session.end("kicked",
    message)``), run in the turn after the session opened: an HTTP request cannot be timed
    into this window (its handler runs at least a turn after the request is read; the
    socket's wait for the open resumes two turns after it)."""
    client = await ws_gateway()
    manager = client.app[SESSIONS]
    kicked = []

    def kick() -> None:
        (session,) = manager.sessions.values()
        kicked.append((session, session.viewer))
        asyncio.get_running_loop().call_soon(session.end, "kicked", message)

    with on_session_start(caplog, kick):
        ws = await open_ws(client, (protocol,))
        conn = await mud.next_connection()
        assert await ws.closed() == (1000, "kicked")
    (session, viewer), = kicked
    assert viewer is None and session.end_reason == "kicked"  # listed, its socket not yet its viewer
    assert ws.frames[:-1] == frames
    await conn.wait_closed()
    assert b"bed" not in conn.received  # the message is the player's, not the game's
    assert (await (await client.get("/healthz")).json())["sessions"] == 0
    metrics = await (await client.get("/metrics")).text()
    assert 'mud_gateway_disconnects_total{reason="kicked"} 1.0' in metrics


@pytest.mark.both_loops
async def test_kick_after_the_game_opened_before_the_join_resumed_tells_the_message(mud, gateway, caplog):
    """SPEC 4.3: ``disconnect`` ``"kicked"`` carries ``detail``, the admin's message. A kick
    meeting a session after its game connection opened and before the join waiting for it
    resumed ended it unattached; the join, finding it ended, answered ok and passed a
    ``disconnect`` "kicked" without the message (the session kept only its reason)."""
    client, connect = await gateway(make_config(mud.port))
    manager = client.app[SESSIONS]
    phx = await connect()
    topic = new_topic()
    kicked = []

    def kick() -> None:
        (session,) = manager.sessions.values()

        def end() -> None:  # what POST /admin/sessions/{id}/kick does
            kicked.append(session.viewer)
            session.end("kicked", "Time for bed.")
        asyncio.get_running_loop().call_soon(end)

    with on_session_start(caplog, kick):
        join = await phx.send(topic, "phx_join", {})
        conn = await mud.next_connection()
        assert (await phx.reply(join))["status"] == "ok"
    assert kicked == [None]  # not yet attached
    disconnect = await phx.event(topic, "disconnect")
    assert disconnect["reason"] == "kicked" and disconnect["detail"] == "Time for bed."
    await phx.event(topic, "phx_close")
    await conn.wait_closed()


@pytest.mark.both_loops
async def test_a_session_whose_join_is_resuming_is_listed_attached(mud, gateway, caplog):
    """SPEC 7: ``/admin/sessions`` ``state`` and ``/metrics`` ``sessions{state}`` are
    ``attached`` or ``lingering``. A session just opened, its join about to attach, was
    counted and listed ``lingering`` (no viewer yet), though no browser had left it."""
    from gateway.admin import _info

    client, connect = await gateway(make_config(mud.port))
    manager = client.app[SESSIONS]
    phx = await connect()
    seen = []

    def look() -> None:
        (session,) = manager.sessions.values()
        asyncio.get_running_loop().call_soon(
            lambda: seen.append((session.viewer, _info(session).state, manager.counts())))

    with on_session_start(caplog, look):
        assert (await phx.join(new_topic()))["status"] == "ok"
        await mud.next_connection()
    assert seen == [(None, "attached", {"attached": 1, "lingering": 0})]
