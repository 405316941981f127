"""A gateway in a subprocess, for the upgrade-in-place tests: its notify socket, status file and logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import Phx, config_yaml, new_topic

ROOT = Path(__file__).resolve().parent.parent


def config_text(mud_port: int, listen_port: int, extra: str = "", game_extra: str = "") -> str:
    """A config file's text: the fake game (tests/conftest.py) served on ``listen_port``."""
    return f"listen: {{host: 127.0.0.1, port: {listen_port}}}" + config_yaml(mud_port, extra, game_extra)


async def playing(gw: "GatewayProcess", mud) -> tuple[Phx, str, Any]:
    """A browser on ``gw`` joined to a new topic, and the game connection it made: (phx, topic, conn)."""
    phx = await gw.connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    return phx, topic, await mud.next_connection()


class GatewayProcess:
    """``python -m gateway --config`` with NOTIFY_SOCKET and RUNTIME_DIRECTORY in ``tmp``."""

    def __init__(self, tmp: Path, config: str, env: dict[str, str] | None = None,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.tmp = tmp
        self.config_path = tmp / "gateway.yaml"
        self.config_path.write_text(config)
        self.port = int(config.split("port: ", 1)[1].split("}", 1)[0])
        self.runtime = tmp / "run"
        self.runtime.mkdir(exist_ok=True)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp / "notify.sock"))
        self.notify.setblocking(False)
        self.notes: list[str] = []
        self.stderr_path = tmp / "gateway.stderr"
        self._stderr = open(self.stderr_path, "w")
        self.env = {**self.environment(tmp), **(env or {})}
        self.proc = subprocess.Popen(
            self.argv(self.config_path), cwd=ROOT,
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            pass_fds=pass_fds)
        self.pid = self.proc.pid
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    @staticmethod
    def argv(config_path: Path) -> list[str]:
        return [sys.executable, "-m", "gateway", "--config", str(config_path)]

    @staticmethod
    def environment(tmp: Path) -> dict[str, str]:
        return {**os.environ, "NOTIFY_SOCKET": str(tmp / "notify.sock"), "RUNTIME_DIRECTORY": str(tmp / "run")}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.stderr_path.read_text()

    async def note(self, timeout: float = 30) -> str:
        """The next sd_notify message."""
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(self.notify, 4096), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no sd_notify within {timeout}s; notes {self.notes}\n{self.log()}") from None
        self.notes.append(data.decode())
        return self.notes[-1]

    async def until_note(self, prefix: str, timeout: float = 60) -> str:
        while True:
            note = await self.note(timeout)
            if note.startswith(prefix):
                return note

    async def ready(self) -> None:
        await self.until_note("READY=1")

    def signal(self, sig: int = signal.SIGUSR2) -> None:
        os.kill(self.pid, sig)

    async def upgrade(self) -> None:
        """SIGUSR2 and wait for READY=1 (RELOADING=1 first)."""
        self.signal()
        await self.until_note("RELOADING=1")
        await self.ready()

    async def healthz(self) -> dict[str, Any]:
        async with self.http.get(self.url + "/healthz") as r:
            return await r.json()

    async def text(self, path: str) -> str:
        async with self.http.get(self.url + path) as r:
            return await r.text()

    async def connect(self) -> Phx:
        ws = await self.http.ws_connect(self.url + "/socket/websocket?vsn=2.0.0")
        return Phx(ws)

    def status(self) -> dict[str, Any]:
        return json.loads((self.runtime / f"mud-gateway.{self.pid}.json").read_text())

    def fds(self) -> list[str]:
        """The targets of the process's open descriptors."""
        out = []
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                out.append(os.readlink(f"/proc/{self.pid}/fd/{fd}"))
            except OSError:
                pass
        return out

    async def stop(self) -> int:
        await self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.notify.close()
        self._stderr.close()
        return self.proc.returncode
