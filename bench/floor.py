"""``floor``: the least Python that speaks the gateway's wire protocol to the bench's clients:
what a round trip costs in CPython on uvloop when nothing else is done (docs/performance.md 1.14).

Beside the bare relay (bytes both ways, no protocol), this is the other reference under the
gateway's round-trip figures: the same WebSocket handshake and frames, Phoenix V2 envelopes,
a ``recv`` push's line written to the game and its ``phx_reply`` held (at most 2 ms, as
the gateway's ``REPLY_HOLD``) to go out with the game's answer, and the game's complete
lines as one ``echo`` event (``message``, ``seq``, ``sent_at``), in two flat protocol
classes. Where the gateway has a primitive for a step (the unmask, the frame encoder, the
echo payload from the game's bytes, ``sent_at``), the floor calls it: it leaves out the
gateway's layers, not its primitives. Everything else the gateway does is left out: the replay buffer, limits and rate
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
from typing import Any

import msgspec

from gateway.channel import sent_at, text_payload  # the gateway's own primitives, not its layers
from gateway.transport.frames import FrameEncoder, unmask
from sidebyside import HOST, TELNET_COMMANDS

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
_KEY = re.compile(rb"(?i)sec-websocket-key:[ \t]*(\S+)")
REPLY_HOLD = 0.002  # transport/websocket.py's (not imported: that would bring aiohttp in)

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode
_OK = {"status": "ok", "response": {}}


class _Game(asyncio.Protocol):
    def __init__(self, browser: "_Browser") -> None:
        self.browser = browser
        self.tail = b""
        self.seq = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if b"\xff" in data:
            data = TELNET_COMMANDS.sub(b"", data)
        if self.tail:
            data = self.tail + data
        nl = data.rfind(b"\n")
        if nl < 0:
            self.tail = data
            return
        self.tail = data[nl + 1:]
        self.seq += 1
        b = self.browser
        b.pending.append(b"".join((b.echo_head, text_payload(data[:nl + 1], self.seq, sent_at()), b"]")))
        b.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.browser.transport.close()


class _Browser(asyncio.Protocol):
    def __init__(self, mud_port: int) -> None:
        self.mud_port = mud_port
        self.buf = b""
        self.upgraded = False
        self.game: _Game | None = None
        self.echo_head = b""  # an echo's message up to its payload (the join's ref and topic)
        self.encoder = FrameEncoder()
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
            payload = unmask(buf[at + 4:end], buf[at:at + 4])
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
            self.echo_head = _encode([join_ref, None, topic, "echo"])[:-1] + b","
            self.opening = self.loop.create_task(self.open(join_ref, ref, topic))
        else:
            self.pending.append(_encode([join_ref, ref, topic, "phx_reply", _OK]))
            self.flush()

    async def open(self, join_ref: Any, ref: Any, topic: str) -> None:
        _, self.game = await self.loop.create_connection(lambda: _Game(self), HOST, self.mud_port)
        self.pending.append(_encode([join_ref, ref, topic, "phx_reply", _OK]))
        self.flush()

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport.writelines(self.encoder.encode(self.pending))
        self.pending.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.game is not None:
            self.game.transport.close()


async def serve_floor(mud_port: int) -> None:
    """Serve until killed; prints ``PORT n`` (sidebyside's ``Proc``)."""
    server = await asyncio.get_running_loop().create_server(lambda: _Browser(mud_port), HOST, 0, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()
