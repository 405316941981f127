"""SPEC 6.1 item 2: SIGUSR2, SIGTERM, SIGINT and SIGHUP are held across an upgrade's exec and
acted on by the new process.

Each signal is sent once the old process has logged its exec (upgrade.py blocks the four
before that line, and the new process unblocks them once it serves): so it is held, pending
in the kernel, which the test reads from ``/proc``; then the new process must act on it, not
die of its default action nor lose it.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.conftest import free_port, until
from tests.test_upgrade import mud, start  # noqa: F401  (fixtures)
from tests.upgrade_helpers import GatewayProcess, config_text, playing


def _pending(pid: int) -> set[int]:
    """The signals pending for process ``pid`` (its shared and its thread's queue)."""
    pending = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("SigPnd:", "ShdPnd:")):
                pending |= int(line.split()[1], 16)
    return {n for n in range(1, 65) if pending >> (n - 1) & 1}


async def _held_across_exec(gw: GatewayProcess, sig: int) -> None:
    """Start an upgrade, send ``sig`` once the old process logged its exec: it is held."""
    gw.signal()
    await gw.until_note("RELOADING=1")
    await until(lambda: "upgrade: exec" in gw.log(), what="the old process's exec")
    gw.signal(sig)
    # Blocked since before the exec line, and not unblocked until the new process serves.
    assert sig in _pending(gw.pid), gw.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_held_across_the_exec_stops_the_new_process(mud, start, sig):
    gw = await start(config_text(mud.port, free_port()))
    phx, topic, conn = await playing(gw, mud)
    await _held_across_exec(gw, sig)
    # The new process comes up with the session, then stops gracefully: exit 0, the game
    # connection closed (no default action's death by the signal: exit -sig).
    assert await asyncio.to_thread(gw.proc.wait, 30) == 0, gw.log()
    await asyncio.wait_for(conn.wait_closed(), 10)
    log = gw.log()
    assert log.count("listening on") == 2, log  # the new process served first
    assert "stopping: closing sessions" in log.split("upgrade: exec", 1)[1], log


async def test_a_reload_held_across_the_exec_reloads_in_the_new_process(mud, start):
    gw = await start(config_text(mud.port, free_port()))
    await _held_across_exec(gw, signal.SIGHUP)
    await gw.ready()
    await until(lambda: "SIGHUP: config reloaded" in gw.log().split("upgrade: exec", 1)[1],
                what="the new process's reload")
    assert gw.proc.poll() is None, gw.log()
    assert (await gw.healthz())["generation"] == 2


async def test_an_upgrade_asked_across_the_exec_follows_in_the_new_process(mud, start):
    gw = await start(config_text(mud.port, free_port()))
    phx, topic, conn = await playing(gw, mud)
    await _held_across_exec(gw, signal.SIGUSR2)
    await gw.ready()  # generation 2 serves, then acts on the held SIGUSR2: a second upgrade
    await gw.until_note("RELOADING=1")
    await gw.ready()
    assert (await gw.healthz())["generation"] == 3, gw.log()
    assert "SIGUSR2 ignored" not in gw.log()
    # The game saw none of it.
    assert not conn.closed
    phx2 = await gw.connect()
    reply = await phx2.join(topic)
    assert reply["status"] == "ok" and reply["response"]["resumed"] is True, reply
    await phx2.ws.close()
