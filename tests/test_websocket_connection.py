"""The WebSocket after the 101 is the gateway's own (routes.py, transport/websocket.py).

aiohttp answers the upgrade, then lets go of the connection: these tests talk
to a real gateway over raw TCP, as a browser's WebSocket would, and check what
aiohttp used to do for us: pings answered, the closing handshake both ways,
fragmented and early frames read, broken frames failed with the RFC's code;
and that aiohttp keeps nothing of an upgraded connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time

from gateway.routes import SESSIONS, SOCKETS
from gateway.transport.frames import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT
from gateway.transport.websocket import QUIET_SECONDS
from tests.conftest import EVENTUALLY, make_config, new_topic, until
from tests.test_frames import client_frame

UPGRADE = ("GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")


class RawWs:
    """A WebSocket client with nothing between the test and the bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes = b"") -> None:
        self.reader, self.writer = reader, writer
        self.head = head  # the 101's status line and headers

    @classmethod
    async def open(cls, port: int, early: bytes = b"", rcvbuf: int = 0, headers: str = "") -> "RawWs":
        """Upgrade; ``early`` goes in the same write as the request (before the 101);
        ``rcvbuf``: a receive buffer that small (a client that reads nothing fills it soon);
        ``headers``: more request header lines, each ended by CRLF."""
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(UPGRADE.format(key=key).removesuffix("\r\n").encode() + headers.encode() + b"\r\n" + early)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EVENTUALLY)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer, head)

    def send(self, opcode: int, payload: bytes, **kw) -> None:
        self.writer.write(client_frame(opcode, payload, **kw))

    def send_json(self, msg: list) -> None:
        self.send(TEXT, json.dumps(msg).encode())

    async def frame(self, timeout: float = EVENTUALLY) -> tuple[int, bytes]:
        """The next frame from the gateway: (opcode, payload); (-1, b"") at EOF."""
        try:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        except asyncio.IncompleteReadError:
            return -1, b""
        assert not second & 0x80  # a server never masks
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(n)

    async def message(self, pred, timeout: float = EVENTUALLY) -> list:
        while True:
            opcode, payload = await self.frame(timeout)
            assert opcode == TEXT, (opcode, payload)
            msg = json.loads(payload)
            if pred(msg):
                return msg

    async def close_frame(self) -> tuple[int, bytes]:
        """Skip text frames to the close frame: (code, reason)."""
        while True:
            opcode, payload = await self.frame()
            if opcode == CLOSE:
                return struct.unpack("!H", payload[:2])[0], payload[2:]
            assert opcode == TEXT, (opcode, payload)

    async def eof(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), EVENTUALLY) == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


async def start(mud, gateway, extra: str = ""):
    client, _ = await gateway(make_config(mud.port, extra=extra))
    return client, client.server.port


async def test_aiohttp_keeps_nothing_of_an_upgraded_connection(mud, gateway):
    client, port = await start(mud, gateway)
    ws = await RawWs.open(port)
    ws.send_json(["1", "1", "phoenix", "heartbeat", {}])
    assert (await ws.message(lambda m: m[1] == "1"))[4] == {"status": "ok", "response": {}}
    assert len(client.server.app[SOCKETS]) == 1
    # No request handler, parser or task of aiohttp's for it: the socket is the transport's protocol.
    assert client.server.runner.server.connections == []
    await ws.close()
    await until(lambda: not client.server.app[SOCKETS], what="the socket left the registry")


async def test_frames_sent_with_the_upgrade_request_are_read(mud, gateway):
    """A client may send its first frames before the 101 arrives: they are not lost to aiohttp."""
    _, port = await start(mud, gateway)
    topic = new_topic()
    early = client_frame(TEXT, json.dumps(["1", "1", topic, "phx_join", {}]).encode())
    ws = await RawWs.open(port, early=early)
    reply = await ws.message(lambda m: m[1] == "1")
    assert reply[4]["status"] == "ok" and reply[2] == topic
    conn = await mud.next_connection()
    conn.send(b"hello\r\n")
    assert (await ws.message(lambda m: m[3] == "echo"))[4]["message"] == "hello\n"
    await ws.close()


async def test_ping_is_answered_with_its_payload_and_a_fragmented_message_is_read(mud, gateway):
    _, port = await start(mud, gateway)
    ws = await RawWs.open(port)
    ws.send(PING, b"are you there")
    assert await ws.frame() == (PONG, b"are you there")
    msg = json.dumps(["1", "7", "phoenix", "heartbeat", {}]).encode()
    ws.send(TEXT, msg[:5], fin=False)
    ws.send(PING, b"between")  # a control frame between fragments (RFC 6455 5.4)
    ws.send(CONTINUATION, msg[5:12], fin=False)
    ws.send(CONTINUATION, msg[12:])
    assert await ws.frame() == (PONG, b"between")
    assert (await ws.message(lambda m: True))[1] == "7"
    await ws.close()


async def test_browser_close_is_answered_with_its_code_and_the_session_lingers(mud, gateway):
    client, port = await start(mud, gateway, extra="sessions: {linger_seconds: 5}")
    ws = await RawWs.open(port)
    topic = new_topic()
    ws.send_json(["1", "1", topic, "phx_join", {}])
    assert (await ws.message(lambda m: m[1] == "1"))[4]["status"] == "ok"
    await mud.next_connection()
    ws.send(CLOSE, struct.pack("!H", 4001) + b"page closed")
    assert await ws.close_frame() == (4001, b"")
    assert await ws.eof()  # the gateway closes the TCP connection after the handshake
    manager = client.server.app[SESSIONS]
    await until(lambda: manager.counts() == {"attached": 0, "lingering": 1}, what="the session lingers")
    await ws.close()


async def test_gateway_close_waits_for_the_browsers_close_frame(mud, gateway):
    """The heartbeat close (1001): our close frame, the browser's answer, then the end."""
    _, port = await start(mud, gateway, extra="limits: {heartbeat_timeout_seconds: 0.3}")
    ws = await RawWs.open(port)
    assert await ws.close_frame() == (1001, b"heartbeat timeout")
    ws.send(TEXT, b'["1","2","phoenix","heartbeat",{}]')  # after its close: not answered
    ws.send(CLOSE, struct.pack("!H", 1001))
    assert await ws.frame() == (-1, b"")
    await ws.close()


async def test_broken_frames_fail_the_connection_with_the_rfcs_code(mud, gateway):
    _, port = await start(mud, gateway)
    for wire, code in [(client_frame(TEXT, b"hi", masked=False), 1002),
                       (client_frame(TEXT, b"\xc3("), 1007),
                       (client_frame(TEXT, b"x", rsv=0x40), 1002)]:  # no deflate agreed here
        ws = await RawWs.open(port)
        ws.writer.write(wire)
        assert (await ws.close_frame())[0] == code
        assert await ws.eof()
        await ws.close()


async def test_binary_message_is_closed_1003_after_the_handshake(mud, gateway):
    _, port = await start(mud, gateway)
    ws = await RawWs.open(port)
    ws.send(BINARY, b"\x00\x01")
    assert await ws.close_frame() == (1003, b"text frames only")
    ws.send(CLOSE, struct.pack("!H", 1003))
    assert await ws.frame() == (-1, b"")
    await ws.close()


async def test_quiet_socket_frees_its_deflate_context_and_the_browser_reads_on(mud, gateway):
    """Asked by the sweep after QUIET_SECONDS without a write: the context goes; the next
    compressed message starts a new one, which the browser's inflater reads on."""
    client, connect = await gateway(make_config(mud.port))
    phx = await connect(compress=15)
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    line = "The orc hits you with a rusty blade, and you bleed. " * 4
    conn.send(line.encode() + b"\r\n")
    assert (await phx.event(topic, "echo"))["message"] == line + "\n"
    (sock,) = client.server.app[SOCKETS]
    assert sock._conn.encoder._zlib is not None
    sock.release_if_quiet(time.monotonic())  # written just now: kept
    assert sock._conn.encoder._zlib is not None
    sock.release_if_quiet(time.monotonic() + QUIET_SECONDS)
    assert sock._conn.encoder._zlib is None
    conn.send(line.encode() + b"\r\n")
    assert (await phx.event(topic, "echo"))["message"] == line + "\n"
    assert sock._conn.encoder._zlib is not None
    assert (await phx.request(topic, "recv", {"message": line}))["status"] == "ok"  # compressed by the client
    await conn.wait_for(line.encode() + b"\r\n")


async def test_a_bad_upgrade_is_aiohttps_to_answer_and_nothing_is_taken_over(mud, gateway):
    client, _ = await start(mud, gateway)
    resp = await client.get("/socket/websocket?vsn=2.0.0")  # no upgrade at all
    assert resp.status == 400
    resp = await client.get("/socket/websocket?vsn=2.0.0", headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "not base64 of 16 bytes"})
    assert resp.status == 400
    assert not client.server.app[SOCKETS]
    # The same connection still serves HTTP (keep-alive): aiohttp kept it.
    assert (await client.get("/healthz")).status == 200
