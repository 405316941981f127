"""``floor``: the least Python that speaks the gateway's wire protocol to the bench's clients:
what a round trip costs in CPython on uvloop when nothing else is done (docs/performance.md 1.14).

Beside the bare relay (bytes both ways, no protocol), this is the other reference under the
gateway's round-trip figures: the same WebSocket handshake and frames, Phoenix V2 envelopes,
a ``recv`` push's line written to the game and its ``phx_reply`` held (at most 2 ms, as
the gateway's ``REPLY_HOLD``) to go out with the game's answer, and the game's complete
lines as one ``echo`` event (``message``, ``seq``, ``sent_at``), in two flat protocol
classes. Everything else the gateway does is left out: the replay buffer, limits and rate
limits, metrics, telnet negotiation (commands are dropped, none answered), prompts and
partial lines, GMCP events, the outbox's bounds, heartbeats, sessions that outlive their
socket, every check on what the browser sends. So it serves the ``rt-N`` workloads and
nothing else, and it is no gateway: it is the figure a rewrite of the gateway in Python
could at best reach.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from typing import Any

import msgspec

HOST = "127.0.0.1"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
_KEY = re.compile(rb"(?i)sec-websocket-key:[ \t]*(\S+)")
_TELNET = re.compile(rb"\xff\xfa.*?\xff\xf0|\xff[\xfb-\xfe].|\xff[^\xff]", re.S)
_HEADERS = [bytes((0x81, n)) for n in range(126)]
REPLY_HOLD = 0.002

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode
_OK = {"status": "ok", "response": {}}


def _header(n: int) -> bytes:
    if n < 126:
        return _HEADERS[n]
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big")
    return bytes((0x81, 127)) + n.to_bytes(8, "big")


def _unmask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


_second: list[Any] = [0, ""]


def _stamp() -> str:
    sec, micros = divmod(time.time_ns() // 1000, 1_000_000)
    if _second[0] != sec:
        _second[0] = sec
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec))
    return "%s%06dZ" % (_second[1], micros)


class _Game(asyncio.Protocol):
    def __init__(self, browser: "_Browser") -> None:
        self.browser = browser
        self.tail = b""
        self.seq = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if b"\xff" in data:
            data = _TELNET.sub(b"", data)
        if self.tail:
            data = self.tail + data
        nl = data.rfind(b"\n")
        if nl < 0:
            self.tail = data
            return
        self.tail = data[nl + 1:]
        self.seq += 1
        b = self.browser
        b.pending.append(_encode([b.join_ref, None, b.topic, "echo", {
            "message": data[:nl + 1].decode("utf-8", "replace"), "seq": self.seq, "sent_at": _stamp()}]))
        b.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.browser.transport.close()


class _Browser(asyncio.Protocol):
    def __init__(self, mud_port: int) -> None:
        self.mud_port = mud_port
        self.buf = b""
        self.upgraded = False
        self.game: _Game | None = None
        self.join_ref: Any = None
        self.topic = ""
        self.pending: list[bytes] = []
        self.opening: asyncio.Task[None] | None = None  # held: a task nobody holds may vanish
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            head, buf = buf[:end], buf[end + 4:]
            key = _KEY.search(head)
            if key is None:
                self.transport.close()
                return
            accept = base64.b64encode(hashlib.sha1(key.group(1) + _GUID).digest())
            protocol = b"Sec-WebSocket-Protocol: phoenix\r\n" if b"phoenix" in head else b""
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n"
                                 + protocol + b"\r\n")
            self.upgraded = True
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            at = 2
            if n == 126:
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                n, at = int.from_bytes(buf[2:10], "big"), 10
            end = at + 4 + n
            if len(buf) < end:
                break
            opcode = buf[0] & 0x0F
            payload = _unmask(buf[at + 4:end], buf[at:at + 4])
            buf = buf[end:]
            if opcode == 1:
                self.message(payload)
            elif opcode == 8:
                self.transport.close()
                return
        self.buf = buf

    def message(self, payload: bytes) -> None:
        join_ref, ref, topic, event, body = _decode(payload)
        if event == "recv" and self.game is not None:
            self.game.transport.write(body["message"].encode() + b"\r\n")
            self.pending.append(_encode([join_ref, ref, topic, "phx_reply", _OK]))
            if self.timer is None:
                self.timer = self.loop.call_later(REPLY_HOLD, self.flush)
        elif event == "phx_join":
            self.join_ref, self.topic = join_ref, topic
            self.opening = self.loop.create_task(self.open(ref))
        else:
            self.pending.append(_encode([join_ref, ref, topic, "phx_reply", _OK]))
            self.flush()

    async def open(self, ref: Any) -> None:
        _, self.game = await self.loop.create_connection(lambda: _Game(self), HOST, self.mud_port)
        self.pending.append(_encode([self.join_ref, ref, self.topic, "phx_reply", _OK]))
        self.flush()

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        out = []
        for m in self.pending:
            out.append(_header(len(m)))
            out.append(m)
        self.pending.clear()
        self.transport.writelines(out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.game is not None:
            self.game.transport.close()


async def serve_floor(mud_port: int) -> None:
    """Serve until killed; prints ``PORT n`` (sidebyside's ``Proc``)."""
    server = await asyncio.get_running_loop().create_server(lambda: _Browser(mud_port), HOST, 0, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()
