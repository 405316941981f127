"""Upgrade in place under load, with the official phoenix.js client (tests/js/upgrade_flood.mjs).

20 sessions on the fake MUD, one of them flooding 5 MB; SIGUSR2 mid-flood. The
fake MUD sees no EOF on any connection, the PID is unchanged, every phoenix.js
client reconnects by itself and is resumed, and the flooding session's echo
text equals what the fake MUD sent, byte for byte, with seq strictly increasing.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from tests.fakemud import FakeMud
from tests.conftest import free_port
from tests.upgrade_helpers import ROOT, GatewayProcess, config_text

JS_DIR = ROOT / "tests" / "js"
SESSIONS = 20
FLOOD_BYTES = 5 * 1024 * 1024


def flood_lines() -> bytes:
    line = 0
    out = []
    size = 0
    while size < FLOOD_BYTES:
        chunk = b"flood line %07d " % line + b"abcdefghijklmnopqrstuvwxyz0123456789" * 2 + b"\r\n"
        out.append(chunk)
        size += len(chunk)
        line += 1
    out.append(b"FLOOD-END\r\n")
    return b"".join(out)


async def test_upgrade_mid_flood_with_phoenix_js(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    async with FakeMud() as mud:
        gw = GatewayProcess(tmp_path, config_text(
            mud.port, free_port(),
            extra="sessions: {replay_bytes: 16777216, linger_seconds: 60}\n"
                  "limits: {max_sessions_per_ip: 100}\n"))
        proc = None
        try:
            await gw.ready()
            text_file = tmp_path / "flood.txt"
            proc = await asyncio.create_subprocess_exec(
                node, str(JS_DIR / "upgrade_flood.mjs"), f"ws://127.0.0.1:{gw.port}/socket",
                str(SESSIONS), str(text_file), cwd=JS_DIR,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=1 << 20)
            conns = []
            while True:
                line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
                if line.get("ready"):
                    break
                conns.append(await mud.next_connection())
            assert len(conns) == SESSIONS
            data = flood_lines()
            flood = conns[0]
            half = len(data) // 5

            async def send(part: bytes) -> None:
                for i in range(0, len(part), 65536):
                    flood.send(part[i:i + 65536])
                    await flood.drain()
                    await asyncio.sleep(0.05)  # paced: the flood spans the swap

            await send(data[:half])
            sender = asyncio.ensure_future(send(data[half:]))  # goes on during the swap
            gw.signal()
            await gw.until_note("RELOADING=1")
            assert not sender.done()  # mid-flood
            await gw.ready()
            await sender
            out = await asyncio.wait_for(proc.stdout.readline(), 150)
            summary = json.loads(out)
            assert await asyncio.wait_for(proc.wait(), 10) == 0, summary
            assert all(c["opens"] >= 2 and c["resumed"] >= 1 and not c["errors"] and not c["disconnects"]
                       for c in summary["clients"]), summary
            assert summary["strictly_increasing"], summary
            got = text_file.read_bytes()
            assert got == data.replace(b"\r\n", b"\n")  # byte for byte, nothing lost or repeated
            assert not any(c.eof for c in conns)
            assert gw.status()["pid"] == gw.pid and gw.proc.poll() is None
            assert (await gw.healthz())["generation"] == 2
        finally:
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
            await gw.stop()
