"""Real MUD servers for the ``real`` tests: Evennia (PyPI) and TinyMUX (Debian).

``./dev`` installs both (Evennia into ``.venv-evennia``, TinyMUX with
apt-get); here each is set up in a temporary folder, started on 127.0.0.1 on
free ports once for the tests of this package, and stopped after them. Between the gateway
and each game sits a :class:`Relay` that records every byte both ways, so a
test can check the telnet negotiation on the wire. The gateway itself runs as
``python -m gateway --config ...``, and the tests play through it with the
official phoenix.js client (:class:`PhoenixJs`, ``tests/js/phx_bridge.mjs``).

A game whose package is missing (its install failed) is skipped with the
reason; anything else that goes wrong is a failure, with the server's log.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import free_port, until as shared_until

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
BRIDGE = JS_DIR / "phx_bridge.mjs"
EVENNIA = ROOT / ".venv-evennia" / "bin" / "evennia"
TINYMUX_INSTALL = Path("/usr/games/tinymux-install")
TINYMUX_NETMUX = Path("/usr/lib/tinymux/game/bin/netmux")

START_SECONDS = 120  # a game or the gateway must listen within this (the machine is shared)
STEP_SECONDS = 30    # a test waits this long for one expected event

EVENNIA_ADMIN = ("ci_admin", "ci-admin-pw-8421")


def wait_listening(port: int, what: str, proc_alive: Callable[[], bool], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if not proc_alive():
                break
            time.sleep(0.2)
    pytest.fail(f"{what} is not listening on 127.0.0.1:{port}\n{tail(log)}")


def wait_for_banner(port: int, banner: bytes, what: str, log: Path) -> None:
    """Connect (answering no negotiation) until ``banner`` arrives within a few seconds."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                got = b""
                until_ = time.monotonic() + 8
                while banner not in got and time.monotonic() < until_:
                    try:
                        data = s.recv(65536)
                    except socket.timeout:
                        continue
                    if not data:
                        break
                    got += data
                if banner in got:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no {what} within {START_SECONDS} s\n{tail(log)}")


def wait_for_log(log: Path, needle: str, what: str) -> None:
    """Wait until ``needle`` appears in the file ``log``."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            if needle in log.read_text(errors="replace"):
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"no {what} within {START_SECONDS} s\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path}: none)"
    return f"--- {path} (end) ---\n" + "\n".join(text.splitlines()[-lines:])


def run_logged(args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None,
               timeout: float = START_SECONDS) -> None:
    """Run a set-up step with its output appended to ``log`` (a file, not a pipe:
    a daemon it starts may keep its output open); fail with the log's end."""
    with open(log, "a") as out:
        out.write(f"$ {' '.join(map(str, args))}\n")
        out.flush()
        try:
            rc = subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            pytest.fail(f"{args[0]} {args[1] if len(args) > 1 else ''} took over {timeout} s\n{tail(log)}")
    if rc != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {rc}\n{tail(log)}")


# -- the relay -------------------------------------------------------------------


@dataclass
class Recording:
    """Every byte of one connection: gateway -> game and game -> gateway."""
    to_game: bytearray = field(default_factory=bytearray)
    to_gateway: bytearray = field(default_factory=bytearray)


class Relay:
    """127.0.0.1:<port> -> 127.0.0.1:<target>, recording both directions (threads, plain sockets)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[Recording] = []
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                game = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            game.settimeout(None)
            record = Recording()
            self._sockets += [client, game]
            for src, dst, buf in ((client, game, record.to_game), (game, client, record.to_gateway)):
                t = threading.Thread(target=self._pump, args=(src, dst, buf), daemon=True)
                self._threads.append(t)
                t.start()
            self.connections.append(record)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, buf: bytearray) -> None:
        try:
            while data := src.recv(65536):
                buf += data
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)  # pass the end on: the other side sees EOF as well
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads + [self._accepting]:
            t.join(timeout=5)


async def until(check: Callable[[], Any], what: str, timeout: float = STEP_SECONDS) -> Any:
    """Poll ``check()`` until it is truthy (for state other threads fill in, like a relay's bytes):
    tests/conftest.py's ``until``, with ``what`` first as these tests give it."""
    return await shared_until(check, timeout, what)


# -- the games -------------------------------------------------------------------


@dataclass
class Game:
    name: str
    port: int
    log: Path


@pytest.fixture(scope="package")
def evennia_game(tmp_path_factory) -> Iterator[Game]:
    """Evennia from PyPI: ``evennia --init``, settings for 127.0.0.1 and free ports, ``migrate``,
    a superuser from the environment (no prompt), ``evennia start``; ``evennia stop`` at the end."""
    if not EVENNIA.exists():
        pytest.skip(f"Evennia is not installed ({EVENNIA} is missing): `./dev setup` installs it "
                    "from PyPI into .venv-evennia, and that failed or was not run")
    base = tmp_path_factory.mktemp("evennia")
    log = base / "setup.log"
    env = dict(os.environ, PATH=f"{EVENNIA.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run_logged([str(EVENNIA), "--init", "game"], cwd=base, log=log, env=env)
    gamedir = base / "game"
    telnet_port, amp_port = free_port(), free_port()
    with open(gamedir / "server" / "conf" / "settings.py", "a") as f:
        f.write(f"""
# -- mud-gateway CI (tests/real/conftest.py) --
SERVERNAME = "Evennia CI"
TELNET_PORTS = [{telnet_port}]
TELNET_INTERFACES = ["127.0.0.1"]
AMP_PORT = {amp_port}
AMP_INTERFACE = "127.0.0.1"
WEBSERVER_ENABLED = False
WEBCLIENT_ENABLED = False
WEBSOCKET_CLIENT_ENABLED = False
# every test logs in from 127.0.0.1: no throttling of account creation or logins
CREATION_THROTTLE_LIMIT = None
LOGIN_THROTTLE_LIMIT = None
""")
    mssp = gamedir / "server" / "conf" / "mssp.py"
    mssp.write_text(mssp.read_text().replace('"NAME": "Mygame"', '"NAME": "Evennia CI"'))
    run_logged([str(EVENNIA), "migrate"], cwd=gamedir, log=log, env=env)
    start_env = dict(env, EVENNIA_SUPERUSER_USERNAME=EVENNIA_ADMIN[0],
                     EVENNIA_SUPERUSER_PASSWORD=EVENNIA_ADMIN[1])
    try:
        run_logged([str(EVENNIA), "start"], cwd=gamedir, log=log, env=start_env)
        wait_listening(telnet_port, "Evennia", lambda: True, log)
        # The portal listens before the server is done with its first start: the server
        # starts, runs the initial set-up, and restarts once. A connection made while the
        # server is down is closed by the portal (an AttributeError in its session sync),
        # so a login screen from the first start is not enough: wait for the restart too.
        server_log = gamedir / "server" / "logs" / "server.log"
        wait_for_log(server_log, "Evennia Server successfully restarted", "Evennia's restart "
                     "after its initial set-up")
        wait_for_banner(telnet_port, b"create <username>", "Evennia's login screen", server_log)
        yield Game("evennia", telnet_port, gamedir / "server" / "logs" / "portal.log")
    finally:
        with open(log, "a") as out:
            try:
                subprocess.run([str(EVENNIA), "stop"], cwd=gamedir, env=env, stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT, timeout=60)
            except subprocess.TimeoutExpired:
                pass
        # Whatever `evennia stop` left: the two daemons we started, by their pid files.
        for pidfile in (gamedir / "server").glob("*.pid"):
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass


@pytest.fixture(scope="package")
def tinymux_game(tmp_path_factory) -> Iterator[Game]:
    """TinyMUX from Debian: ``tinymux-install`` into a temporary folder, port and 127.0.0.1 set
    in ``netmux.conf``, ``netmux`` run directly (not daemonised); stopped with SIGTERM."""
    if not TINYMUX_NETMUX.exists() or not TINYMUX_INSTALL.exists():
        pytest.skip(f"TinyMUX is not installed ({TINYMUX_NETMUX} is missing): `./dev setup` installs the "
                    "Debian package tinymux with apt-get, and that failed or was not run")
    base = tmp_path_factory.mktemp("tinymux")
    log = base / "setup.log"
    run_logged([str(TINYMUX_INSTALL)], cwd=base, log=log)
    gamedir = base / "tinymux" / "game"
    port = free_port()
    conf = gamedir / "netmux.conf"
    text = conf.read_text()
    assert "\nport 2860\n" in text, "tinymux's netmux.conf changed: no `port 2860` line to replace"
    conf.write_text(text.replace("\nport 2860\n", f"\nport {port}\nip_address 127.0.0.1\n")
                    + "\nmud_name CI-MUX\n")
    out = open(base / "netmux.out", "w")
    proc = subprocess.Popen([str(gamedir / "bin" / "netmux"), "-c", "netmux.conf", "-p", "netmux.pid",
                             "-e", str(base)], cwd=gamedir, env=dict(os.environ, LD_LIBRARY_PATH="bin"),
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, "TinyMUX", lambda: proc.poll() is None, base / "netmux.out")
        yield Game("tinymux", port, base / "netmux.out")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        out.close()


# -- the gateway -----------------------------------------------------------------


@dataclass
class Gateway:
    url: str          # http://127.0.0.1:PORT
    relay: Relay
    game: Game
    log: Path

    @property
    def socket_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/socket"


def start_gateway(game: Game, base: Path, extra: str = "") -> Iterator[Gateway]:
    relay = Relay(game.port)
    port = free_port()
    config = base / "gateway.yaml"
    config.write_text(f"""
listen: {{host: 127.0.0.1, port: {port}}}
games:
  - name: {game.name}
    title: {game.name} (CI)
    host: 127.0.0.1
    port: {relay.port}
    connect_timeout: 30
{extra}
""")
    log = base / "gateway.log"
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config)], cwd=ROOT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, "the gateway", lambda: proc.poll() is None, log)
        yield Gateway(f"http://127.0.0.1:{port}", relay, game, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        out.close()
        relay.close()


@pytest.fixture(scope="package")
def evennia_gateway(evennia_game, tmp_path_factory) -> Iterator[Gateway]:
    yield from start_gateway(evennia_game, tmp_path_factory.mktemp("gw-evennia"))


@pytest.fixture(scope="package")
def tinymux_gateway(tinymux_game, tmp_path_factory) -> Iterator[Gateway]:
    # The relay connects from 127.0.0.1: trusting it lets a test give the player an
    # address of its own (X-Forwarded-For), to find on the wire in NEW-ENVIRON.
    yield from start_gateway(tinymux_game, tmp_path_factory.mktemp("gw-tinymux"),
                             "security: {trusted_proxies: [127.0.0.1/32]}")


# -- the official phoenix.js client ----------------------------------------------


class PhoenixJs:
    """phoenix.js in Node (``tests/js/phx_bridge.mjs``), driven line by line from the test."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.lines: list[dict[str, Any]] = []   # everything the bridge printed
        self.events: list[dict[str, Any]] = []  # {"event", "payload"} of the channel, in order
        self._changed = asyncio.Event()
        self._ids = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    async def start(self, headers: dict[str, str] | None = None) -> "PhoenixJs":
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed: the real-game tests play through phoenix.js in Node")
        if not (JS_DIR / "node_modules" / "phoenix").is_dir():
            pytest.fail(f"{JS_DIR / 'node_modules'} is missing: run `./dev setup` first")
        self._proc = await asyncio.create_subprocess_exec(
            node, str(BRIDGE), self.gateway.socket_url, json.dumps({"headers": headers or {}}),
            cwd=JS_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=16 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())
        await self._wait_line(lambda m: m["type"] == "open", "the WebSocket to open")
        return self

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            msg = json.loads(line)
            self.lines.append(msg)
            if msg["type"] == "event":
                self.events.append({"event": msg["event"], "payload": msg["payload"]})
            self._changed.set()
        self._changed.set()

    def _send(self, msg: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(msg) + "\n").encode())

    async def _wait_line(self, pred: Callable[[dict[str, Any]], bool], what: str,
                         start: int = 0) -> dict[str, Any]:
        return await self._wait(self.lines, pred, what, start)

    async def _wait(self, items: list[dict[str, Any]], pred: Callable[[dict[str, Any]], bool],
                    what: str, start: int) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + STEP_SECONDS
        seen = start
        while True:
            for item in items[seen:]:
                if pred(item):
                    return item
            seen = len(items)
            if self._reader is not None and self._reader.done():
                raise AssertionError(f"the phoenix.js bridge ended while waiting for {what}: "
                                     f"{await self._stderr()}\n{self.recent()}")
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {STEP_SECONDS} s waiting for {what}\n{self.recent()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def recent(self) -> str:
        return "last events: " + json.dumps(self.events[-8:], ensure_ascii=False)[-3000:] + \
            f"\n{tail(self.gateway.log, 20)}"

    async def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        return (await self._proc.stderr.read()).decode(errors="replace")

    async def join(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.topic = f"telnet:{uuid.uuid4()}"
        start = len(self.lines)
        self._send({"op": "join", "topic": self.topic, "params": params or {}})
        return await self._wait_line(lambda m: m["type"] == "join", "the join reply", start)

    async def push(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._ids += 1
        ident = self._ids
        self._send({"op": "push", "id": ident, "event": event, "payload": payload})
        return await self._wait_line(lambda m: m["type"] == "reply" and m["id"] == ident,
                                     f"the reply to {event} {payload}")

    async def send(self, line: str) -> None:
        """``recv`` one line, and expect the ok reply."""
        reply = await self.push("recv", {"message": line})
        assert reply["status"] == "ok", reply

    async def event(self, pred: Callable[[dict[str, Any]], bool], what: str, start: int = 0) -> dict[str, Any]:
        """The first channel event from index ``start`` on matching ``pred``."""
        return await self._wait(self.events, pred, what, start)

    async def text(self, needle: str, start: int = 0) -> str:
        """The ``echo`` and ``prompt`` text from index ``start`` on, once it contains ``needle``."""
        found: list[str] = []

        def check(_: dict[str, Any]) -> bool:
            found[:] = [self.text_since(start)]
            return needle in found[0]

        await self._wait(self.events, check, f"text containing {needle!r}", start)
        return found[0]

    def text_since(self, start: int) -> str:
        return "".join(e["payload"]["message"] for e in self.events[start:] if e["event"] in ("echo", "prompt"))

    async def close(self) -> None:
        if self._proc is None:
            return
        try:
            if self._proc.returncode is None:
                self._send({"op": "close"})
                try:
                    await asyncio.wait_for(self._proc.wait(), 10)
                except asyncio.TimeoutError:
                    self._proc.kill()
                    await self._proc.wait()
        finally:
            if self._reader is not None:
                self._reader.cancel()
                try:
                    await self._reader
                except (asyncio.CancelledError, Exception):
                    pass


@pytest.fixture
async def phoenix_js():
    """``await phoenix_js(gateway, headers=None)``: a started :class:`PhoenixJs`; closed after the test."""
    clients: list[PhoenixJs] = []

    async def start(gateway: Gateway, headers: dict[str, str] | None = None) -> PhoenixJs:
        client = PhoenixJs(gateway)
        clients.append(client)
        return await client.start(headers)

    yield start
    for client in clients:
        await client.close()
