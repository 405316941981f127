"""Upgrade in place (SPEC 6.1): SIGUSR2 replaces the gateway without a game seeing a disconnect.

Each test runs the gateway as a subprocess (``python -m gateway --config``) with a
NOTIFY_SOCKET and a RUNTIME_DIRECTORY, the fake MUD in the test, and real sockets.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import new_topic
from tests.fakemud import FakeMud
from tests.upgrade_helpers import GatewayProcess, config_text, free_port

WILL, WONT, DO, SB, SE, IAC = 251, 252, 253, 250, 240, 255


@pytest.fixture
async def mud():
    m = await FakeMud().start()
    yield m
    await m.close()


@pytest.fixture
async def start(tmp_path):
    started: list[GatewayProcess] = []

    async def run(config: str, **kwargs) -> GatewayProcess:
        gw = GatewayProcess(tmp_path, config, **kwargs)
        started.append(gw)
        await gw.ready()
        return gw

    yield run
    for gw in started:
        await gw.stop()


async def test_upgrade_keeps_the_game_connection_and_resumes(mud, start):
    gw = await start(config_text(mud.port, free_port()))
    phx = await gw.connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    conn.send(b"before\r\n")
    before = await phx.event(topic, "echo")
    assert before["message"] == "before\n"

    await gw.upgrade()
    assert await phx.close_code() == 1012
    assert (await gw.healthz())["generation"] == 2
    assert gw.proc.poll() is None
    conn.send(b"after\r\n")
    phx2 = await gw.connect()
    reply = await phx2.join(topic, {"last_seq": before["seq"]})
    assert reply["status"] == "ok" and reply["response"]["resumed"] is True, reply
    after = await phx2.event(topic, "echo")
    assert after == {**after, "message": "after\n", "seq": before["seq"] + 1}
    assert await phx2.request(topic, "recv", {"message": "look"}) == {"status": "ok", "response": {}}
    await conn.wait_for(b"look\r\n")
    assert not conn.eof
    assert "session end" not in gw.log()
