"""The moment between a new session's game connection opening and the join (or ``/ws``
socket) that waits for it being resumed, over real sockets: a real gateway, the fake MUD,
a Phoenix or ``/ws`` client.

``SessionManager._connect`` registers the session (it is listed, it can be kicked) and
tells the joins waiting for it (``Session._settle``); a waiting join resumes two turns of
the loop later (the future it waits on is shielded). Anything the gateway handles in
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
