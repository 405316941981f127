"""Sessions: one telnet connection each, keyed by its channel topic's UUID (SPEC 6).

A session numbers its output events (``seq``), keeps them for resume
(replay.py), pushes them to the channel attached to it, if any, and outlives
its browser for ``linger_seconds``. ``SessionManager`` is the registry with
the session limits.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from typing import Any, Protocol

import msgspec

from .channel import (GAME_UNAVAILABLE, GMCP_NOT_ENABLED, RATE_LIMITED, TOO_MANY_SESSIONS, ChannelError,
                      Command, JoinParams, SendGmcp, SendLines, SetSize, event_payload, sent_at)
from .config import Config, Game
from .logs import log_event
from .metrics import Metrics
from .ratelimit import TokenBucket
from .replay import Kept, ReplayBuffer
from .telnet import client as telnet
from .telnet.input import encode_lines
from .telnet.stream import CompressionError, Event

log = logging.getLogger("gateway.session")
_encode = msgspec.json.Encoder().encode


class Channel(Protocol):
    """The browser side of a session (transport/websocket.py)."""

    def push(self, event: str, payload: bytes, read_at: float | None = None) -> None: ...
    def end(self, reason: str, detail: str | None = None) -> None: ...


class Session:
    def __init__(self, key: str, game: Game, manager: "SessionManager", client_ip: str,
                 sub: str | None, client_port: int = 0) -> None:
        self.key = key
        #: The admin API's handle (SPEC 7): random, so it tells nothing of ``key``, which resumes.
        self.admin_id = secrets.token_urlsafe(12)
        self.game = game
        self.manager = manager
        self.client_ip = client_ip
        self.client_port = client_port  # 0 when not known (behind a proxy)
        self.sub = sub
        self.seq = 0
        self.replay = ReplayBuffer(manager.config.sessions.replay_bytes)
        self.channel: Channel | None = None
        self.client: telnet.GameClient | None = None
        self.ended = False
        self.started = time.monotonic()
        self.started_at = time.time()  # wall clock, for the admin API
        self.last_input = self.started
        self.bytes_to_browser = 0
        self.bytes_to_game = 0
        self._linger: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._paused = False
        self._closed_early: str | None = None
        self.input_bucket = TokenBucket(manager.config.limits.input_burst, self.started)

    # -- the game side (telnet.EventSink) ------------------------------------

    def on_events(self, events: list[Event]) -> None:
        stamp = sent_at()
        channel = self.channel
        metrics = self.manager.metrics
        read_at = self.client.read_at if self.client is not None else None
        size = 0
        for ev in events:
            if type(ev) is CompressionError:
                log.warning("session %s: compression error from %s: %s", self.key, self.game.name, ev.detail)
                metrics.telnet_failures.labels("compression error").inc()
                continue
            self.seq += 1
            name, payload = event_payload(ev, self.seq, stamp)
            raw = _encode(payload)
            key = None
            if name == "gmcp":
                key = "gmcp:" + ev.module  # type: ignore[union-attr]
                metrics.gmcp_from_game.inc()
            elif name == "option":
                key = "option"
            self.replay.add(Kept(self.seq, name, raw, key))
            size += len(raw)
            if channel is not None:
                channel.push(name, raw, read_at)
        self.bytes_to_browser += size
        metrics.to_browser.inc(size)

    def on_game_closed(self, reason: str) -> None:
        if self.client is not None:
            self.end(reason)
        else:  # closed before open() finished: end once the join has been answered
            self._closed_early = reason

    def on_mssp(self, variables: dict[str, Any]) -> None:
        self.manager.mssp[self.game.name] = variables

    # -- the browser side ----------------------------------------------------

    def attach(self, channel: Channel, last_seq: int) -> tuple[list[Kept], bool]:
        """Attach a channel (taking the session over from any other); returns what to replay."""
        old = self.channel
        if old is not None and old is not channel:
            self.channel = None
            old.end("taken over")
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self.channel = channel
        return self.replay.since(last_seq)

    def detach(self, channel: Channel) -> None:
        """The browser went away without leaving: linger."""
        if self.channel is channel:
            self.channel = None
            self.linger()

    def leave(self, channel: Channel) -> None:
        """``phx_leave``: end at once; the browser asked, so it gets no ``disconnect``."""
        if self.channel is channel:
            self.channel = None
        self.end("left")

    def linger(self) -> None:
        """Keep reading the game with no browser, for ``linger_seconds``."""
        if self.ended or self.channel is not None or self._linger is not None:
            return
        self.resume_reading()
        linger = self.manager.config.sessions.linger_seconds
        if linger <= 0:
            self.end("linger expired")
        else:
            self._linger = asyncio.get_running_loop().call_later(linger, self.end, "linger expired")

    def execute(self, command: Command) -> None:
        """A browser push: send it to the game. Raises ChannelError when it cannot be sent."""
        client = self.client
        if client is None or self.ended:
            raise ChannelError(GAME_UNAVAILABLE)
        if type(command) is SendLines:
            now = time.monotonic()
            limits = self.manager.config.limits  # the live config: a reload applies at once
            if not self.input_bucket.take(len(command.lines), now, limits.input_lines_per_second,
                                          limits.input_burst):
                raise ChannelError(RATE_LIMITED)
            data = encode_lines(command.lines, client.game_encoding)
            client.send_text(data)
            self.bytes_to_game += len(data)
            self.manager.metrics.to_game.inc(len(data))
            self.last_input = now
        elif type(command) is SendGmcp:
            if not client.gmcp_enabled:
                raise ChannelError(GMCP_NOT_ENABLED)
            client.send_gmcp(command.module, command.data)
            self.manager.metrics.gmcp_to_game.inc()
        elif type(command) is SetSize:
            client.set_naws(command.width, command.height)

    # -- backpressure (called by the channel's socket) ------------------------

    def pause_reading(self) -> None:
        if not self._paused and self.client is not None:
            self._paused = True
            self.client.pause_reading()

    def resume_reading(self) -> None:
        if self._paused and self.client is not None:
            self._paused = False
            self.client.resume_reading()

    # -- life ----------------------------------------------------------------

    async def open(self, params: JoinParams) -> None:
        self.client = await telnet.connect(
            self.game, self, screen_reader=params.screen_reader,
            client_ip=self.client_ip if self.game.forward_client_ip else None,
            proxy=(None if self.game.proxy_protocol == "none"
                   else (self.game.proxy_protocol, self.client_ip, self.client_port)))
        if self._closed_early is not None:
            # The game said its piece and hung up at once ("too many players"): the
            # browser gets the join reply and that text, then the disconnect.
            asyncio.get_running_loop().call_soon(self.end, self._closed_early)
        self._arm_idle()

    def _arm_idle(self) -> None:
        timeout = self.manager.config.sessions.idle_timeout_seconds
        if timeout > 0 and not self.ended:
            due = self.last_input + timeout
            delay = due - time.monotonic()
            if delay <= 0:
                self.end("idle")
            else:
                self._idle = asyncio.get_running_loop().call_later(delay, self._arm_idle)

    def end(self, reason: str, detail: str | None = None) -> None:
        """End the session: close the game, tell the browser (``disconnect``), log it."""
        if self.ended:
            return
        self.ended = True
        for timer in (self._linger, self._idle):
            if timer is not None:
                timer.cancel()
        if self.client is not None:
            self.client.close(reason)
        channel, self.channel = self.channel, None
        if channel is not None:
            channel.end(reason, detail)
        self.manager.forget(self)
        self.manager.metrics.disconnects.labels(reason).inc()
        log_event(log, logging.INFO, "session_end", "session end", game=self.game.name,
                  ip=self.client_ip, sub=self.sub, duration_s=round(time.monotonic() - self.started, 1),
                  bytes_to_browser=self.bytes_to_browser, bytes_to_game=self.bytes_to_game,
                  reason=reason)


class SessionManager:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.sessions: dict[str, Session] = {}
        self.per_ip: Counter[str] = Counter()
        self._opening: dict[str, asyncio.Future[Session]] = {}
        self.metrics = Metrics()
        #: The latest MSSP variables any session of a game received, by game name.
        self.mssp: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.sessions)

    def get(self, key: str) -> Session | None:
        return self.sessions.get(key)

    async def open(self, key: str, game: Game, params: JoinParams, client_ip: str,
                   sub: str | None, client_port: int = 0) -> Session:
        """Start a new session; ChannelError("too many sessions" / "game unavailable")."""
        pending = self._opening.get(key)
        if pending is not None:  # a concurrent join of the same new topic
            return await asyncio.shield(pending)
        limits = self.config.limits
        if len(self.sessions) + len(self._opening) >= limits.max_sessions:
            raise ChannelError(TOO_MANY_SESSIONS)
        if self.per_ip[client_ip] >= limits.max_sessions_per_ip:
            raise ChannelError(TOO_MANY_SESSIONS)
        session = Session(key, game, self, client_ip, sub, client_port)
        fut: asyncio.Future[Session] = asyncio.get_running_loop().create_future()
        self._opening[key] = fut
        self.per_ip[client_ip] += 1
        try:
            await session.open(params)
        except BaseException as exc:
            self._release_ip(client_ip)
            if not isinstance(exc, telnet.GameUnavailable):
                fut.cancel()
                raise
            self.metrics.telnet_failures.labels(exc.kind).inc()
            error = ChannelError(GAME_UNAVAILABLE, str(exc))
            fut.set_exception(error)
            fut.exception()  # retrieved: a waiter is optional
            raise error from None
        finally:
            del self._opening[key]
        self.sessions[key] = session
        fut.set_result(session)
        log_event(log, logging.INFO, "session_start", "session start", game=game.name,
                  ip=client_ip, sub=sub)
        return session

    def forget(self, session: Session) -> None:
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
            self._release_ip(session.client_ip)

    def _release_ip(self, ip: str) -> None:
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]

    def shutdown(self, reason: str = "gateway shutdown") -> None:
        for session in list(self.sessions.values()):
            session.end(reason)

    def counts(self) -> dict[str, Any]:
        attached = sum(1 for s in self.sessions.values() if s.channel is not None)
        return {"attached": attached, "lingering": len(self.sessions) - attached}
