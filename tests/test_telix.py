"""/ws against a real client nobody here wrote (SPEC 9): Telix from PyPI (by telnetlib3's
author), in its own venv (``./dev setup``: ``.venv-telix``; it pins telnetlib3<5), run
headlessly on a pseudo-terminal through its own command-line entry point
(``tests/telix_driver.py``), against a real gateway and the fake MUD.

Telix offers ``gmcp``, ``telnet`` and ``terminal`` (in that order); the gateway takes the
first it serves, so the config's ``mudstandards.subprotocols`` picks which one is played.
"""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from gateway.routes import create_app
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parent.parent
TELIX_PYTHON = ROOT / ".venv-telix" / "bin" / "python"
DRIVER = ROOT / "tests" / "telix_driver.py"
IAC, SB, SE, WILL, DO, GA = 255, 250, 240, 251, 253, 249
TTYPE, NEW_ENVIRON, GMCP = 24, 39, 201

pytestmark = pytest.mark.skipif(
    not TELIX_PYTHON.exists(),
    reason="Telix is not installed: ./dev setup installs it from PyPI into .venv-telix, and that failed or was not run")


class Telix:
    """``telix ws://.../ws --no-repl`` on a pseudo-terminal: what it shows, and typing into it."""

    def __init__(self, url: str, home: Path) -> None:
        master, slave = pty.openpty()
        env = {**os.environ, "TERM": "xterm", "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "XDG_DATA_HOME": str(home / "data")}
        self.proc = subprocess.Popen([str(TELIX_PYTHON), str(DRIVER), url, "--no-repl"], cwd=home,
                                     stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        self.screen = b""

    async def shows(self, needle: bytes, timeout: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while needle not in self.screen:
            try:
                self.screen += os.read(self.master, 65536)
                continue
            except BlockingIOError:
                pass
            except OSError:  # the client exited
                break
            if loop.time() > deadline or self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert needle in self.screen, f"Telix does not show {needle!r}; it shows {self.screen[-2000:]!r}"

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


@pytest.fixture
async def telix_gateway(mud, tmp_path):
    """``await telix_gateway(subprotocols)`` -> (Telix playing on a gateway that serves them, the game's connection)."""
    started: list = []

    async def start(subprotocols: str):
        runner = web.AppRunner(create_app(make_config(mud.port, extra=f"mudstandards: {{subprotocols: {subprotocols}}}")))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        started.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        telix = Telix(f"ws://127.0.0.1:{port}/ws", tmp_path)
        started.append(telix)
        return telix, await mud.next_connection(timeout=60)

    yield start
    for thing in reversed(started):
        if isinstance(thing, Telix):
            thing.stop()
        else:
            await thing.cleanup()


async def test_telix_plays_over_gmcp(telix_gateway):
    telix, conn = await telix_gateway("[gmcp, telnet, terminal]")
    conn.send("Welcome to the fake MUD, ünïcode and \x1b[1mbold\x1b[0m\r\nName: ".encode() + bytes([IAC, GA]))
    await telix.shows("ünïcode".encode())
    await telix.shows(b"Name: ")
    telix.type(b"look\r")
    await conn.wait_for(b"look\r\n")
    # GMCP both ways: the gateway negotiates with the game, Telix gets the messages as TEXT frames.
    conn.send(bytes([IAC, WILL, GMCP]))
    await conn.wait_for(bytes([IAC, DO, GMCP]))
    conn.send(bytes([IAC, SB, GMCP]) + b'Room.Info {"num": 1, "name": "Hall"}' + bytes([IAC, SE]) + b"You are in the hall.\r\n")
    await telix.shows(b"You are in the hall.")


async def test_telix_negotiates_for_itself_over_the_telnet_relay(telix_gateway):
    telix, conn = await telix_gateway("[telnet]")
    conn.send(b"Hello, relay\r\nName: " + bytes([IAC, GA]))
    await telix.shows(b"Hello, relay")
    # Telix's own telnet engine answers the game through the relay ...
    conn.send(bytes([IAC, DO, TTYPE, IAC, DO, NEW_ENVIRON, IAC, SB, NEW_ENVIRON, 1, IAC, SE]))
    await conn.wait_for(bytes([IAC, WILL, TTYPE]))
    start = await conn.wait_for(bytes([IAC, SB, NEW_ENVIRON, 0]))
    end = await conn.wait_for(bytes([IAC, SE]))
    body = bytes(conn.received[start:end - 2])
    # ... and the address the game is told is the gateway's word, once, at the end.
    assert body.endswith(b"\x00IPADDRESS\x01127.0.0.1"), body
    assert body.count(b"IPADDRESS") == 1
    telix.type(b"look\r")
    await conn.wait_for(b"look\r")


async def test_telix_plays_over_terminal(telix_gateway):
    telix, conn = await telix_gateway("[terminal]")
    conn.send(b"Plain terminal\r\n> " + bytes([IAC, GA]))
    await telix.shows(b"Plain terminal")
    telix.type(b"north\r")
    await conn.wait_for(b"north\r\n")
