"""Fixtures: a real gateway (aiohttp test server on a real socket), a fake MUD, a Phoenix client."""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import json
import os
import re
import socket
import ssl
import struct
import termios
import uuid
from typing import Any, Callable

import aiohttp
import pytest
import trustme

from gateway.config import parse_config
from gateway.routes import create_app
from tests.fakemud import EVENTUALLY, FakeConnection, FakeMud

#: Modules whose async tests also run on asyncio's own loop (the gateway's loop without uvloop,
#: or with MUD_GATEWAY_LOOP=asyncio): the end-to-end paths and the ones that touch the loop's
#: handles, transports and flow control, where the two loops differ. Every other async test
#: runs on uvloop only, the loop the gateway runs on in production (cli.loop_factory).
#: MUD_GATEWAY_TEST_LOOPS=both runs every async test on both.
BOTH_LOOPS = frozenset({"test_gateway", "test_websocket_connection", "test_socket_writes",
                        "test_session_races", "test_telnet_client", "test_mudstandards",
                        "test_session_machine"})  # asyncio only: its fake game holds TLS handshakes (uvloop cannot)


def pytest_configure(config):
    config.addinivalue_line("markers", "both_loops: also run this async test on asyncio's own loop")


def pytest_asyncio_loop_factories(config, item):
    """The async tests' loops: uvloop (production) for all, asyncio's too for the focused subset."""
    try:
        import uvloop
    except ImportError:
        return {"asyncio": asyncio.new_event_loop}
    factories = {"uvloop": uvloop.new_event_loop}
    module = item.module.__name__.rpartition(".")[2] if getattr(item, "module", None) else ""
    if (os.environ.get("MUD_GATEWAY_TEST_LOOPS") == "both" or module in BOTH_LOOPS
            or item.get_closest_marker("both_loops") is not None):
        factories["asyncio"] = asyncio.new_event_loop
    return factories


SENT_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def free_port() -> int:
    """A loopback TCP port free right now (for a gateway or server started as a process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_yaml(mud_port: int, extra: str = "", game_extra: str = "", games: str = "") -> str:
    """YAML for one fake game ``fake`` (plus ``games`` YAML list items), with ``extra`` top-level YAML.
    ``prompt_flush_ms`` is 100 unless ``game_extra`` gives it (a key written twice is refused)."""
    flush = "" if "prompt_flush_ms" in game_extra else "    prompt_flush_ms: 100\n"
    return f"""
games:
  - name: fake
    host: 127.0.0.1
    port: {mud_port}
{flush}{game_extra}
{games}
{extra}
"""


def make_config(mud_port: int, extra: str = "", game_extra: str = "", games: str = "") -> Any:
    """:func:`config_yaml`, parsed."""
    return parse_config(config_yaml(mud_port, extra, game_extra, games))


@pytest.fixture
async def full_game():
    """The port of a game that says it is full and hangs up at once."""
    async def full(reader, writer):
        writer.write(b"Sorry, the game is full.\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(full, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def mud():
    m = await FakeMud().start()
    yield m
    await m.close()


class Phx:
    """A minimal Phoenix V2 client over a real WebSocket, for asserting on every frame."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, v1: bool = False) -> None:
        self.ws = ws
        self.v1 = v1
        self.ref = 0
        self.frames: list[list[Any]] = []   # everything received, in order
        self._cursor = 0

    def encode(self, join_ref: Any, ref: Any, topic: str, event: str, payload: Any) -> str:
        if self.v1:
            return json.dumps({"join_ref": join_ref, "ref": ref, "topic": topic, "event": event,
                               "payload": payload})
        return json.dumps([join_ref, ref, topic, event, payload])

    async def send(self, topic: str, event: str, payload: Any, join_ref: Any = "1") -> str:
        self.ref += 1
        ref = str(self.ref)
        await self.ws.send_str(self.encode(join_ref, ref, topic, event, payload))
        return ref

    async def _read(self, timeout: float) -> list[Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket says {msg.type!r} {msg.data!r} {msg.extra!r}")
        raw = json.loads(msg.data)
        if self.v1:
            raw = [raw["join_ref"], raw["ref"], raw["topic"], raw["event"], raw["payload"]]
        self.frames.append(raw)
        return raw

    async def expect(self, pred: Callable[[list[Any]], bool], timeout: float = EVENTUALLY) -> list[Any]:
        """The next frame (from the cursor on) matching ``pred``; frames before it are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self._cursor < len(self.frames):
                frame = self.frames[self._cursor]
                self._cursor += 1
                if pred(frame):
                    return frame
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no matching frame; got {self.frames[-10:]}")
            try:
                await self._read(remaining)
            except asyncio.TimeoutError:
                raise AssertionError(f"no matching frame; got {self.frames[-10:]}") from None

    async def reply(self, ref: str, timeout: float = EVENTUALLY) -> dict[str, Any]:
        frame = await self.expect(lambda f: f[3] == "phx_reply" and f[1] == ref, timeout)
        return frame[4]

    async def event(self, topic: str, name: str, timeout: float = EVENTUALLY) -> dict[str, Any]:
        frame = await self.expect(lambda f: f[2] == topic and f[3] == name, timeout)
        return frame[4]

    async def request(self, topic: str, event: str, payload: Any, join_ref: Any = "1") -> dict[str, Any]:
        return await self.reply(await self.send(topic, event, payload, join_ref))

    async def join(self, topic: str, payload: Any | None = None, join_ref: str = "1") -> dict[str, Any]:
        return await self.request(topic, "phx_join", payload or {}, join_ref)

    async def barrier(self) -> list[list[Any]]:
        """The frames that come before the reply to a heartbeat sent now, that reply left out:
        for asserting that nothing (more) came. Ordering proves it, not a quiet time: the
        gateway answers the heartbeat after all it queued before reading it."""
        start = len(self.frames)
        ref = await self.send("phoenix", "heartbeat", {}, join_ref=None)
        await self.reply(ref)
        return [f for f in self.frames[start:] if not (f[3] == "phx_reply" and f[1] == ref)]

    async def echo_text(self, topic: str, until: Callable[[str], bool], timeout: float = EVENTUALLY) -> str:
        """The ``echo`` texts from the cursor on, joined, once ``until(text)`` holds."""
        text = ""
        while not until(text):
            text += (await self.event(topic, "echo", timeout))["message"]
        return text

    async def close_code(self, timeout: float = EVENTUALLY) -> int:
        """Read until the server closes the socket; its close code."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.CLOSE:
                return msg.data
            assert msg.type == aiohttp.WSMsgType.TEXT, msg

    def events(self, topic: str, names: tuple[str, ...] = ("echo", "prompt", "gmcp", "option")) -> list[list[Any]]:
        return [f for f in self.frames if f[2] == topic and f[3] in names]


async def until(condition: Callable[[], Any], timeout: float = EVENTUALLY, what: str = "") -> Any:
    """Wait until ``condition()`` (or, when it returns an awaitable, what that gives) is true,
    polling; its value. A failure, not a hang, when it never is (``timeout``: a ceiling only)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    polls = 0
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"never happened within {timeout:g} s: {what or condition}")
        polls += 1
        await asyncio.sleep(0 if polls <= 10 else 0.02)  # a few turns of the loop first: most come by then


def queued(sock_like: Any, request: int) -> int:
    """Bytes in a socket's kernel queue: ``termios.TIOCOUTQ`` (sent, not yet taken by the peer)
    or ``termios.FIONREAD`` (received, not yet read by its owner)."""
    return struct.unpack("i", fcntl.ioctl(sock_like.fileno(), request, b"\0\0\0\0"))[0]


def peer_unread(sock: Any) -> int:
    """Bytes the peer of ``sock`` (IPv4, on this machine, another process's socket too) received
    and has not read yet: its ``rx_queue`` in /proc/net/tcp."""
    def address(host: str, port: int) -> str:
        return "%08X:%04X" % (int.from_bytes(socket.inet_aton(host), "little"), port)

    theirs, ours = address(*sock.getpeername()[:2]), address(*sock.getsockname()[:2])
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == theirs and fields[2] == ours:
                return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no connection {theirs} -> {ours} in /proc/net/tcp")


async def read_through(ours: Any, theirs: Any = None, what: str = "the peer read all we sent") -> None:
    """Wait until the owner of socket ``theirs`` has read all that ``ours`` (a FakeConnection, a
    StreamWriter or a transport) sent: nothing left in our transport's buffer nor in our kernel send queue
    nor in its receive queue. Without ``theirs``: our peer's (``peer_unread``)."""
    if isinstance(ours, FakeConnection):
        sock, unsent = ours.socket, ours.unsent
    else:
        transport = getattr(ours, "transport", ours)  # a StreamWriter's, or a transport
        sock, unsent = transport.get_extra_info("socket"), transport.get_write_buffer_size

    def read() -> bool:
        unread = peer_unread(sock) if theirs is None else queued(theirs, termios.FIONREAD)
        return unsent() == 0 and queued(sock, termios.TIOCOUTQ) == 0 and unread == 0

    await until(read, what=what)


def not_read(sock: Any) -> bool:
    """The gateway does not read this client: its reading is paused because the client may not
    be read now (websocket.py ``_may_read``: its outbox backed up, or a game that does not read
    what it sent), not just until its next turn."""
    return sock._reading_paused and not sock._may_read()


async def send_until_stalled(ws: aiohttp.ClientWebSocketResponse, sock: Any, message: str | bytes,
                             most: int) -> tuple[int, bool]:
    """Send ``message`` up to ``most`` times without reading: (how many were sent, whether the
    gateway stopped reading first). ``sock``: the gateway's socket of ``ws``.

    Stalled is what TCP and the gateway say, not a pause of so many seconds: the gateway does
    not read the socket (``not_read``) and the kernel no longer takes our bytes (the send
    waits for a drain, bytes wait in our transport). When every message was sent first, this
    returns once the gateway has read them all or does not read. Time is only a ceiling.
    """
    sent = 0
    transport = ws._response.connection.transport
    ours = transport.get_extra_info("socket")
    theirs = sock.transport.get_extra_info("socket")
    send = ws.send_str if isinstance(message, str) else ws.send_bytes

    async def spam() -> None:
        nonlocal sent
        while sent < most:
            await send(message)
            sent += 1

    def all_read() -> bool:
        return (transport.get_write_buffer_size() == 0 and queued(ours, termios.TIOCOUTQ) == 0
                and queued(theirs, termios.FIONREAD) == 0 and not sock._reading_paused)

    def settled() -> bool:
        return ((not_read(sock) and (spamming.done() or transport.get_write_buffer_size() > 0))
                or (spamming.done() and all_read()))

    spamming = asyncio.ensure_future(spam())
    try:
        while not settled():  # the ceiling counts from the last message sent: a slow machine goes on
            before = sent
            await until(lambda: settled() or sent != before, what="the gateway stalled or read everything")
        stalled = not spamming.done()
    finally:
        spamming.cancel()
        await asyncio.gather(spamming, return_exceptions=True)
    return sent, stalled


def new_topic() -> str:
    return f"telnet:{uuid.uuid4()}"


@pytest.fixture
def gateway(aiohttp_client):
    """``await gateway(config)`` -> (test client, connect) where ``await connect()`` opens a Phx socket."""

    async def start(config: Any):
        client = await aiohttp_client(create_app(config))

        async def connect(vsn: str | None = "2.0.0", headers: dict[str, str] | None = None,
                          compress: int = 0) -> Phx:
            url = "/socket/websocket" + (f"?vsn={vsn}" if vsn else "")
            ws = await client.ws_connect(url, headers=headers or {}, compress=compress)
            return Phx(ws, v1=not vsn or vsn.startswith("1."))

        connect.client = client  # type: ignore[attr-defined]
        return client, connect

    return start


@pytest.fixture
async def joined(mud, gateway):
    """A gateway for the fake MUD, one socket joined to a new topic, and the MUD's connection."""
    phx, topic, conn, connect = await session(mud, gateway)
    return Joined(phx, topic, conn, connect)


class Joined(tuple):
    """(phx, topic, conn) unpackable, plus ``.connect`` for more sockets."""

    def __new__(cls, phx, topic, conn, connect):
        self = super().__new__(cls, (phx, topic, conn))
        self.connect = connect
        return self


async def session(mud, gateway, extra: str = "", game_extra: str = "", games: str = "",
                  join: dict[str, Any] | None = None):
    """A gateway configured for ``mud``, one socket joined to a new topic: (phx, topic, conn, connect)."""
    _, connect = await gateway(make_config(mud.port, extra=extra, game_extra=game_extra, games=games))
    phx = await connect()
    topic = new_topic()
    reply = await phx.join(topic, join)
    assert reply["status"] == "ok", reply
    conn = await mud.next_connection()
    return phx, topic, conn, connect


@pytest.fixture(scope="module")
def tls_context() -> ssl.SSLContext:
    """A fake MUD's server-side TLS context: a throwaway CA's certificate for 127.0.0.1."""
    cert = trustme.CA().issue_cert("127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx
