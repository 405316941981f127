"""What an upgrade in place costs the new process (issue 17.12): the carried scrollback is held
compressed again, as it was in the old process, not as the uncompressed events it is carried as.

The old process's side and the new one's run here in one process, over real sockets: a
gateway with a session whose replay buffer is full, its state written as the upgrade writes
it, and a second gateway adopting that state with a duplicate of the game's socket.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from gateway import handoff, upgrade
from gateway.routes import SESSIONS, create_app
from gateway.replay import BLOCK_BYTES
from tests.conftest import free_port, make_config, new_topic, read_through, until
from tests.fakemud import FakeMud
from tests.upgrade_helpers import GatewayProcess, config_text, playing


async def test_adopted_scrollback_is_compressed_again(mud, gateway, aiohttp_client):
    config = make_config(mud.port)
    client, connect = await gateway(config)
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    # A full replay buffer of game text (about 2 MiB sent: the oldest dropped).
    lines = b"".join(b"%06d The rain falls on the cobbles of the square, grey and cold.\r\n" % i
                     for i in range(30_000))
    conn.send(lines + b"END\r\n")
    await phx.echo_text(topic, lambda t: t.endswith("END\n"), timeout=20)
    old = client.server.app[SESSIONS].get(topic.split(":", 1)[1])
    await until(lambda: old.replay.sealed_raw == 0, what="the old buffer compacted")
    compressed = old.replay.memory()
    assert compressed < old.replay.size // 3, (compressed, old.replay.size)

    # The handoff, as upgrade.py writes and reads it, and a new gateway adopting it.
    fd = os.dup(old.client.raw_socket().fileno())
    state = handoff.decode(handoff.encode(handoff.Handoff(generation=1, sessions=[old.to_state(fd)])))
    old.client.pause_reading()
    app = create_app(make_config(mud.port))
    await aiohttp_client(app)
    assert await upgrade.adopt(app, state, upgrade.Inherited(-1, None, [fd], 1)) == 1
    new = app[SESSIONS].get(topic.split(":", 1)[1])
    assert new.replay.size == old.replay.size
    # Within the compactor's sweeps, the new process holds what the old one held, not the
    # uncompressed scrollback (before: held uncompressed for as long as the game was quiet).
    await until(lambda: new.replay.memory() <= compressed + 2 * BLOCK_BYTES,
                what=f"compressed again: {new.replay.memory()} bytes held, {compressed} before")
    events, gap = new.replay.since(0)
    assert "".join(e.payload.decode() for e in events[-1:]).count("END") == 1
    new.end("test over")
    old.end("test over")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_upgrade_does_not_keep_the_carried_scrollback_uncompressed(tmp_path):
    """A real upgrade (a subprocess, SIGUSR2) carrying 24 MiB of scrollback: the new process's
    RSS, once its compactor has swept, is not the old one's plus the scrollback (before: +24 MiB
    and more for as long as it ran; the decoded state was kept, and the buffers were never
    compressed again)."""
    if type(asyncio.get_running_loop()).__module__.partition(".")[0] != "uvloop":
        pytest.skip("the gateway subprocess runs on uvloop whatever the test's loop")
    mud = await FakeMud().start()
    gw = GatewayProcess(tmp_path, config_text(mud.port, free_port(),
                                              extra="sessions: {replay_bytes: 25165824}\n"))
    try:
        await gw.ready()
        phx, topic, conn = await playing(gw, mud)
        base = rss_mib(gw.pid)
        await phx.ws.close()  # the session lingers, reading the game as fast as it sends
        block = b"".join(b"%06d The rain falls on the cobbles of the square, grey and cold.\r\n" % i
                         for i in range(10_000))
        sent = 0
        while sent < 24 << 20:
            conn.send(block)
            sent += len(block)
            await conn.drain()
        conn.send(b"END\r\n")
        await conn.drain()
        await read_through(conn, what="the gateway read it all")
        # Its compactor sweeps (a second each, no speed asserted): what it holds goes back to about
        # what it was (+24 MiB before the sweeps).
        before = await until(lambda: (rss := rss_mib(gw.pid)) < base + 8 and rss,
                             what=f"the old process compacted (RSS below {base + 8:.0f} MiB)")
        await gw.upgrade()
        assert "1 sessions carried, 0 ended" in gw.log()
        # The new process's compactor sweeps: so does what it holds (before the fix: +24 MiB for ever).
        await until(lambda: rss_mib(gw.pid) < before + 8,
                    what=f"the new process compacted (RSS below {before + 8:.0f} MiB)")
        # Nothing of it was lost: a reloaded page gets the whole scrollback.
        phx2 = await gw.connect()
        reply = await phx2.join(topic)
        assert reply["response"]["resumed"] is True and reply["response"]["replayed"] > 50, reply
        text = await phx2.echo_text(topic, lambda t: t.endswith("END\n"), timeout=60)
        assert len(text) > 23 << 20
    finally:
        await gw.stop()
        await mud.close()
