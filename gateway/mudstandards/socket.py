"""The ``/ws`` WebSocket after its 101 (SPEC 9): one client, one session, frames both ways.

``MudSocket`` is a ``WebSocket`` (transport/websocket.py) for everything
under the messages: the connection taken from aiohttp, the frame reader, the
ordered outbox written in one ``writelines``, backpressure on the game, the
slow-consumer watchdog, the close handshake, the registry that graceful stop
and upgrade in place go through. What it reads and writes is the MUD
Standards subprotocol's (framing.py, relay.py) instead of Phoenix messages,
and it is its own session's viewer (``channels["ws"] is self``: the socket feeds one session).

Input is applied in order, after the game connection is open; past the rate
limit it waits (``_held``), and while anything waits no further frame is read
(the transport's reading is paused: TCP pushes back on the client), until the
token bucket has tokens again (SPEC 9.5).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from aiohttp import WSCloseCode

from ..channel import GAME_UNAVAILABLE, RATE_LIMITED, ChannelError, JoinParams, SendLines
from ..logs import clip, log_refusal
from ..session import UNSENT_BYTES
from ..transport.frames import BINARY, PING, TEXT, FrameError, control_frame, frame_header
from ..transport.websocket import CLOSED, FINISHED, LOST, SEALED, Life, WebSocket
from .framing import TOO_BIG, UNSUPPORTED_DATA, ClientFrames, Frame, GameFrames
from .relay import RelayInput
from .sessions import RelaySession, StreamSession

if TYPE_CHECKING:
    from ..config import Config, Game
    from ..session import SessionManager
    from ..telnet.stream import Event
    from ..transport.registry import SocketRegistry

log = logging.getLogger("gateway.ws")

#: Close codes of SPEC 9.1 and 9.6 (RFC 6455 7.4.1, IANA).
NORMAL, GOING_AWAY, POLICY, RESTART, TRY_AGAIN, BAD_GATEWAY = 1000, 1001, 1008, 1012, 1013, 1014


class MudSocket(WebSocket):
    slow_consumer_code = WSCloseCode.POLICY_VIOLATION  # SPEC 9.5: 1008 "slow consumer"
    __slots__ = ("subprotocol", "game", "session", "_game_frames", "_client_frames", "_relay_input",
                 "_held", "_throttle", "held", "_last_close")

    def __init__(self, transport: asyncio.Transport, manager: "SessionManager", client_ip: str,
                 subprotocol: str, game: "Game", claims: "Mapping[str, Any] | None" = None,
                 client_port: int = 0, registry: "SocketRegistry[WebSocket] | None" = None) -> None:
        super().__init__(transport, manager, client_ip, claims=claims, client_port=client_port,
                         registry=registry)
        self.subprotocol = subprotocol
        self.game = game
        self.session: StreamSession | None = None  # set once the game connection is open
        self._game_frames = GameFrames(subprotocol)
        self._client_frames = ClientFrames(subprotocol)
        self._relay_input = (RelayInput(client_ip if game.forward_client_ip else None)
                             if subprotocol == "telnet" else None)
        # Input waiting for the rate limit, in order: commands, or (bytes, lines) under telnet.
        self._held: collections.deque[Any] = collections.deque()
        self._throttle: asyncio.TimerHandle | None = None
        # As its own channel's handle (``channels["ws"]``): no replay ever holds its frames
        # (``ChannelHandle.held``: a /ws session has none, SPEC 9.6).
        self.held: list[bytes] | None = None
        # The close that waits for the session's last frames to be written (``_close_after_output``).
        self._last_close: tuple[int, bytes] | None = None

    # -- admission (SPEC 9.1, after the 101) -------------------------------------

    def admit(self) -> None:
        """Admit the session as a 4.2 join would be, then open its game connection; a refusal
        is a close frame with 4.2's reason word."""
        if self._life >= FINISHED:
            return
        manager, security = self.manager, self.config.security
        if security.is_denied(self.client_ip):
            log_refusal(log, "join_denied", "join denied", ip=self.client_ip)
            manager.metrics.joins.labels("denied").inc()
            self._send_frames([(BINARY, (security.deny_message + "\r\n").encode())])
            self._close_soon(POLICY, b"denied", 2.0)
            return
        kind = RelaySession if self.subprotocol == "telnet" else StreamSession
        try:
            # A key no Phoenix topic can name (channel.session_key takes UUIDs only).
            session = manager.start("ws:" + secrets.token_urlsafe(16), self.game, JoinParams(), self.client_ip,
                                    self.claims.get("sub"), self.client_port, kind=kind)
        except ChannelError as exc:
            manager.metrics.joins.labels(exc.reason).inc()
            self._close_soon(TRY_AGAIN, exc.reason.encode())
            return
        assert isinstance(session, StreamSession)
        session.subprotocol = self.subprotocol
        self._keep_task(self._when_open(session))

    async def _when_open(self, session: StreamSession) -> None:
        manager = self.manager
        try:
            await manager.wait_open(session)
        except ChannelError as exc:
            manager.metrics.joins.labels(exc.reason).inc()
            log_refusal(log, "ws_game_unavailable",
                        f"ws {self.client_ip}: game {self.game.name} unavailable: {clip(exc.detail)}")
            self._close_soon(BAD_GATEWAY, GAME_UNAVAILABLE.encode())
            return
        except asyncio.CancelledError:  # the socket went away while the game was dialled
            session.end("left")
            raise
        manager.metrics.joins.labels("ok").inc()
        if session.ended:
            # The game said its piece and hung up at once, or an admin kicked the session
            # (listed from its admission on, while its game is dialled too): what the game
            # said, the kick's message, the close.
            session.attach(self)  # type: ignore[arg-type]  # gives the early output to this socket
            self.end(session.end_reason or "closed by game", session.end_detail)
            return
        self.session = session
        self.channels["ws"] = self  # type: ignore[assignment]  # backpressure and slow consumer see it
        session.attach(self)  # type: ignore[arg-type]
        self._read_again()  # the frames the client sent meanwhile, in order

    # -- the session's viewer (sessions.StreamViewer) -------------------------

    @property
    def backed_up(self) -> bool:
        return not self._caught_up

    def deliver(self, events: "list[Event]", read_at: float | None) -> int:
        return self._send_frames(self._game_frames.frames(events), read_at)

    def deliver_bytes(self, data: bytes, read_at: float | None) -> None:
        self._send_frames([(BINARY, data)], read_at)

    def release(self, linger: bool = True) -> None:
        """The socket is done (closed by the client, or lost): the session ends, no linger (SPEC 9.6)."""
        session, self.session = self.session, None
        if session is not None:
            session.leave(self)  # type: ignore[arg-type]

    def end(self, reason: str, detail: str | None = None) -> None:
        """The session ended (SPEC 9.6): what is queued, then the close frame of ``reason``."""
        self.session = None
        self.channels.clear()
        if reason == "slow consumer":
            return  # the socket is closing itself (1008)
        if reason == "kicked" and detail:
            self._send_frames([(BINARY, (detail + "\r\n").encode())])
        if reason == "gateway shutdown":
            if self.manager.handing_over:  # upgrade in place: nothing could resume this one
                self._close_soon(RESTART, b"service restart", 2.0)
            else:
                self._close_soon(GOING_AWAY, b"gateway shutdown", 2.0)
            return
        code = BAD_GATEWAY if reason == "compression error" else NORMAL
        self._close_after_output(code, reason.encode())

    def _close_after_output(self, code: int, message: bytes) -> None:
        """Close once every frame queued is written (SPEC 9.6: every byte the game sent is
        delivered, then the close). No time bound of its own: a client that reads slowly
        gets all of it; one that makes no progress for ``slow_consumer_seconds`` is a slow
        consumer (the sweep, ``watch``: 1008, its output dropped), as while it plays. (A bound
        of 10 s here dropped what a client behind by more was still to read, then closed 1000
        as if it had all.)"""
        if self._outbox or self._writing:
            self._last_close = (code, message)  # _written closes when the last batch is out
            self._loop.call_soon(self._read_again)  # meanwhile its close frame ends it (_may_read)
        else:
            self._close_soon(code, message)

    def _written(self, read_times: "list[float] | None") -> None:
        super()._written(read_times)
        last = self._last_close
        if last is not None and not (self._outbox or self._writing) and self._life < SEALED:
            self._last_close = None  # (sealed: a slow consumer's 1008 is the close)
            self._close_soon(*last)

    # -- outgoing ------------------------------------------------------------------

    def _send_frames(self, frames: Sequence[Frame], read_at: float | None = None) -> int:
        """Queue ``frames`` (written at once); returns their payload bytes."""
        if not frames:
            return 0
        pieces: list[bytes] = []
        size = 0
        for opcode, payload in frames:
            pieces.append(frame_header(0x80 | opcode, len(payload)))
            pieces.append(payload)
            size += len(payload)
        self.send_many(pieces, read_at, now=True)
        return size

    def _encode(self, batch: "list[bytes]") -> "list[bytes]":
        """The outbox holds whole frames (header, payload), no Phoenix messages to frame."""
        return batch

    # -- incoming ------------------------------------------------------------------

    def _may_read(self) -> bool:
        if not self._caught_up:
            return False
        if self._closing is not None or self._conn.closed_for_sending or self._last_close is not None:
            # Closing (or about to, once the last output is written): only the client's close
            # frame matters now (its reply to ours, or its own: the end at once), and its pings.
            return True
        return self.session is not None and not self._held

    def _close_soon(self, code: int, message: bytes, drain_seconds: float = 0.0) -> None:
        super()._close_soon(code, message, drain_seconds)
        # The client was perhaps not read (the game being dialled, input waiting for tokens):
        # it is now, for its close frame.
        self._loop.call_soon(self._read_again)

    def message(self, opcode: int, data: "str | bytes") -> None:
        if self.session is None:
            return  # the session ended (its last output going out): input goes nowhere
        limits = self.config.limits
        if self._relay_input is not None:
            if opcode == TEXT:
                return self._refuse(UNSUPPORTED_DATA, "binary frames only")
            if len(data) > limits.max_input_bytes:
                return self._refuse(TOO_BIG, "message too long")
            relay = self._relay_input
            dropped = relay.dropped
            self._held.extend(relay.feed(data))  # type: ignore[arg-type]
            if relay.dropped != dropped:
                log_refusal(log, "ws_environ_dropped",
                            f"ws {self.client_ip}: a malformed or oversized NEW-ENVIRON subnegotiation was dropped")
        else:
            try:
                command = self._client_frames.command(opcode, data, limits.max_input_bytes)
            except FrameError as exc:
                return self._refuse(exc.code, exc.reason)
            if command is None:
                return
            self._held.append(command)
        self._apply_held()

    def _refuse(self, code: int, reason: str) -> None:
        log_refusal(log, "ws_refused", f"ws {self.client_ip}: {clip(reason)}, closing ({code})")
        self._close_soon(code, reason.encode())

    def _apply_held(self) -> None:
        """Send the waiting input while the rate limit lets it; then wait for tokens (SPEC 9.5)."""
        session = self.session
        held = self._held
        if session is None:
            held.clear()
            return
        limits = self.config.limits
        rate, burst = limits.input_lines_per_second, limits.input_burst
        bucket = session.input_bucket
        while held:
            item = held[0]
            now = time.monotonic()
            tokens = bucket.available(now, rate, burst)
            if type(item) is tuple:  # telnet: (bytes, lines)
                data, lines = item
                if session.client is not None and session.client.unsent() > UNSENT_BYTES:
                    # A game that does not read: the relay waits for it as the others do
                    # (Session.execute), TCP pushing back on the client meanwhile.
                    return self._wait_for_tokens(0.0, rate)
                if lines:
                    if tokens < 1:
                        return self._wait_for_tokens(tokens, rate)
                    bucket.take(1, now, rate, burst)
                session.relay(data)  # type: ignore[attr-defined]
            elif type(item) is SendLines and len(item.lines) > tokens:
                n = int(tokens)
                if n:
                    if not self._execute(session, SendLines(item.lines[:n])):
                        # Refused after all (a game that does not read): all of it waits.
                        return self._wait_for_tokens(0.0, rate)
                    held[0] = SendLines(item.lines[n:])
                return self._wait_for_tokens(bucket.available(time.monotonic(), rate, burst), rate)
            elif not self._execute(session, item):
                return self._wait_for_tokens(0.0, rate)
            held.popleft()

    def _execute(self, session: StreamSession, command: Any) -> bool:
        """False when the rate limit refused it after all (it is tried again)."""
        try:
            session.execute(command)
        except ChannelError as exc:
            if exc.reason == RATE_LIMITED:
                return False
            # GMCP before the game enabled it (SPEC 9.4), or a session just ending: dropped, logged.
            log_refusal(log, "ws_input_dropped", f"ws {self.client_ip}: input dropped: {clip(exc.reason)}")
        return True

    def _wait_for_tokens(self, tokens: float, rate: float) -> None:
        """Look again once the bucket has a token (a game that does not read: that often)."""
        if self._throttle is None:
            delay = max(0.001, (1.0 - tokens) / rate)
            self._throttle = self._loop.call_later(delay, self._tokens_back)

    def config_changed(self, old: "Config") -> None:
        """A reload: input waiting for tokens is looked at again now, at the live rate and
        burst (the wait was worked out from the old rate: one a thousand seconds made a line
        wait that long after the reload that raised it)."""
        super().config_changed(old)
        if self._throttle is not None:
            self._throttle.cancel()
            self._throttle = self._loop.call_later(0.0, self._tokens_back)

    def _tokens_back(self) -> None:
        self._throttle = None
        if self._life >= FINISHED:
            return
        self._apply_held()
        self._read_again()

    def _read_again(self) -> None:
        """Read the client's frames again, if nothing holds them back: those read already (held
        while the game was dialled, or waiting for tokens) are handled now."""
        if self._life >= FINISHED or not self._may_read():
            return
        self._resume_reading(pump=False)
        self._pump()

    def check_heartbeat(self, heard_by: float) -> None:
        """No heartbeat timeout on ``/ws`` (SPEC 9 defines none; MUD clients send none):
        ``idle_timeout_seconds`` is the only timeout for a silent client. Instead, a socket
        that wrote nothing for half of ``heartbeat_timeout_seconds`` sends a PING (RFC 6455
        5.5.2; clients answer by themselves): a proxy's read timeout (nginx's
        ``proxy_read_timeout``) then never cuts a quiet player, and a dead peer shows."""
        now = time.monotonic()
        if (self.session is None or self._life >= CLOSED or self._outbox or self._writing
                or now - self._last_progress < self.config.limits.heartbeat_timeout_seconds / 2):
            return
        self._last_progress = now
        if self._life is not LOST and not self.transport.is_closing():
            self.transport.write(control_frame(PING))

    def _finish(self, life: Life = FINISHED) -> None:
        if self._throttle is not None:
            self._throttle.cancel()
            self._throttle = None
        self._held.clear()
        super()._finish(life)

    async def restart(self, join_seconds: float = 3.0) -> None:
        """Upgrade in place (SPEC 9.6): the session cannot be carried: it ends (its game
        connection closed), and the socket closes with 1012."""
        for task in list(self._tasks or ()):
            task.cancel()  # still dialling: the session ends (_when_open)
        session = self.session
        if session is not None:
            session.end("gateway shutdown")  # manager.handing_over: end() closes with 1012
        await self._shut(RESTART, b"service restart", drain_seconds=2.0)
