"""Sessions: one telnet connection each, keyed by its channel topic's UUID (SPEC 6).

A session numbers its output events (``seq``), keeps them for resume
(replay.py), pushes them to the viewer attached to it (a Phoenix channel or a ``/ws`` socket), if any, and outlives
its browser for ``linger_seconds``. ``SessionManager`` is the registry with
the session limits.

Life cycle (docs/sessions.md): *connecting* (the game connection is being
opened by a task of the manager's, not of any join: joins only wait for it),
then *attached* or *lingering* while open, then *ended*. A session is live, and
shown to operators (``/healthz``, ``/metrics``, the admin API, a kick), from its
admission on: connecting ones as *attached*. A session that ends while
connecting never opens: the joins waiting for it are refused, except after a
kick, which they are told (``Session.kick``).
Whether the game is read is decided by the attached viewer alone
(backpressure): attaching, detaching and ending decide it again.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from collections import Counter
from itertools import chain
from typing import Any, Iterator, Protocol

import msgspec

from .channel import (GAME_UNAVAILABLE, GMCP_NOT_ENABLED, RATE_LIMITED, TOO_MANY_SESSIONS, ChannelError,
                      Command, GmcpPayload, JoinParams, SendGmcp, SendLines, SetSize, event_payload, sent_at,
                      text_payload)
from .config import Config, Game
from .logs import log_event
from .handoff import SessionState
from .metrics import Metrics
from .ratelimit import Buckets, TokenBucket
from .replay import Kept, ReplayBuffer, ReplayCompactor
from .telnet import client as telnet
from .telnet.input import encode_lines
from .telnet.stream import CompressionError, Event, Gmcp, Lines

log = logging.getLogger("gateway.session")
#: Input written to a game that it has not read yet (the connection's write buffer): over
#: this, pushes are refused until it reads. What one push adds on top is bounded by the
#: frame limit (docs/security.md).
UNSENT_BYTES = 64 * 1024
_encode = msgspec.json.Encoder().encode


def gmcp_state_key(module: str, data: Any) -> str | None:
    """What a ``gmcp`` event is the latest of, for the replay buffer to keep after it drops
    older events (replay.py), or None when it is no state: the module, except that MSDP
    (each variable sent as it changes) is keyed by the variables it holds, and sound
    (``Client.Media.*``) is something that happened, not something to restore."""
    if module == "MSDP" and type(data) is dict:
        return "gmcp:MSDP:" + "\x1f".join(data)
    if module.startswith("Client.Media."):
        return None
    return "gmcp:" + module


#: ``gmcp_state_key`` of the modules seen whose key is the module's alone (all but MSDP and
#: sound), made once each: a game sends a few dozen modules, many times a second. Bounded
#: (a game that makes up module names gets the rest computed each time).
_state_keys: dict[str, str] = {}
MAX_STATE_KEYS = 1024


class Viewer(Protocol):
    """What a session shows its game to while one is attached: a Phoenix channel (router.py's
    ``ChannelHandle``) or a ``/ws`` socket (mudstandards/socket.py). "Channel" means a Phoenix
    channel only (a joined ``telnet:<uuid>`` topic and its protocol, channel.py)."""

    def push(self, event: str, payload: bytes, read_at: float | None = None) -> None: ...
    def push_many(self, events: list[Kept], read_at: float | None = None) -> None:
        """``push`` of each event, in order (the events of one game read)."""
    def end(self, reason: str, detail: str | None = None) -> None: ...
    @property
    def backed_up(self) -> bool:
        """The browser is behind: the session must not read its game."""


class Life(enum.Enum):
    """A session's life (docs/architecture.md); it only moves forward."""

    CONNECTING = "connecting"  #: admitted: its game connection is being opened, joins wait for it
    OPEN = "open"  #: the game connection is up, the session in the table (attached or lingering)
    ENDED = "ended"  #: ended after it opened: the game closed, the viewer told, the end logged
    #: ended before it opened: the joins waiting for it were refused, or, kicked, told the end
    FAILED = "failed"


#: The members by name, for the hot paths: on Python 3.11 reading one off its
#: class (``Life.OPEN``) takes ``EnumType.__getattr__``'s slow path (0.2 us here; a
#: round trip reads about twenty, docs/performance.md 1.9). Unpacking fails loudly
#: if a member is added and not named here.
CONNECTING, OPEN, ENDED, FAILED = Life


class Session:
    # No __dict__ per session (idle memory, docs/performance.md): a new attribute goes here too.
    __slots__ = ("key", "admin_id", "game", "manager", "client_ip", "client_port", "sub", "seq", "replay",
                 "viewer", "client", "life", "end_reason", "end_detail", "started", "started_at",
                 "last_input", "linger_deadline", "bytes_to_browser", "bytes_to_game", "_linger", "_idle",
                 "_paused", "_closed_early", "_connecting", "_opened", "_settled", "waiters", "input_bucket",
                 "input_n")

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
        self.viewer: Viewer | None = None
        self.client: telnet.GameClient | None = None
        self.life = CONNECTING
        self.end_reason: str | None = None
        #: The ``detail`` it ended with (a kick's message), for a viewer that comes after the
        #: end (a join or a ``/ws`` socket resuming as it ended): it is told the same.
        self.end_detail: str | None = None
        self.started = time.monotonic()
        self.started_at = time.time()  # wall clock, for the admin API
        self.last_input = self.started
        self.linger_deadline: float | None = None
        self.bytes_to_browser = 0
        self.bytes_to_game = 0
        self._linger: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._paused = False
        self._closed_early: str | None = None
        self._connecting: asyncio.Task[None] | None = None  # SessionManager._connect
        # Settled once: the joins waiting go on (True: it opened, or was kicked while connecting,
        # which they pass on), or the ChannelError they are refused with (it never opens).
        self._settled: ChannelError | bool = False
        self._opened: asyncio.Future[None] | None = None  # joins wait on it; made by the first
        self.waiters = 0  # joins waiting for it (SessionManager.wait_open)
        self.input_bucket = TokenBucket(manager.config.limits.input_burst, self.started)
        #: The highest ``n`` of a ``recv`` sent to the game (SPEC 4.4): a ``recv`` numbered
        #: up to it was sent already and is not sent again (exactly-once input across drops).
        self.input_n = 0

    @property
    def ended(self) -> bool:
        return self.life is ENDED or self.life is FAILED

    @property
    def attached(self) -> bool:
        """Its state for the admin API and metrics (SPEC 7): attached, else lingering. A session
        whose game is still being dialled, or just opened, is attached while the join (or
        ``/ws`` socket) it opens for waits: it lingers only once a viewer left it (or an
        upgrade in place carried it unattached)."""
        return self.viewer is not None or self.linger_deadline is None

    @property
    def is_open(self) -> bool:
        """Whether the game connection was opened (the session is OPEN, or ENDED after that)."""
        return self.life is OPEN or self.life is ENDED

    # -- the game side (telnet.EventSink) ------------------------------------

    def on_events(self, events: list[Event]) -> None:
        if self.ended:
            # What the game's connection gives up as it closes after the end (a held partial
            # line): nobody is left to see it, the viewer was told and the session forgotten.
            return
        stamp = sent_at()
        metrics = self.manager.metrics
        kept: list[Kept] = []
        append = kept.append
        seq = self.seq
        size = gmcp = 0
        for ev in events:
            t = type(ev)
            if t is Gmcp:  # the most frequent event of all (vitals every tick): inline
                seq += 1
                module = ev.module  # type: ignore[union-attr]
                raw = _encode(GmcpPayload(module, ev.data, seq, stamp))  # type: ignore[union-attr]
                key = _state_keys.get(module)  # one look-up, and one key string per module
                if key is None:
                    key = gmcp_state_key(module, ev.data)  # type: ignore[union-attr]
                    if key is not None and module != "MSDP" and len(_state_keys) < MAX_STATE_KEYS:
                        _state_keys[module] = key
                append(Kept(seq, "gmcp", raw, key))
                gmcp += 1
            elif t is Lines:  # a flood's text: from the game's bytes to JSON, in C
                seq += 1
                raw = text_payload(ev.data, seq, stamp)  # type: ignore[union-attr]
                append(Kept(seq, "echo", raw, None))
            elif t is CompressionError:
                # Never the key: the topic's UUID resumes (takes over) the session.
                log.warning("compression error from game=%s ip=%s: %s", self.game.name, self.client_ip, ev.detail)
                metrics.telnet_failures.labels("compression error").inc()
                continue
            else:
                seq += 1
                name, payload = event_payload(ev, seq, stamp)
                raw = _encode(payload)
                append(Kept(seq, name, raw, "option" if name == "option" else None))
            size += len(raw)
        self.seq = seq
        if not kept:
            return
        # The whole read at once: one replay append (to the live replay_bytes: a reload
        # that lowered it applies from this event on), one queueing of its frames.
        self.replay.add_many(kept, self.manager.config.sessions.replay_bytes)
        # Added to: the compactor looks at it next sweep (before the push, which may end the
        # session: end() then forgets it).
        self.manager.compactor.watch(self.replay)
        viewer = self.viewer
        if viewer is not None:
            viewer.push_many(kept, self.client.read_at if self.client is not None else None)
        self.bytes_to_browser += size
        metrics.to_browser.inc(size)  # once per game read, not per event: a metric's lock costs
        if gmcp:
            metrics.gmcp_from_game.inc(gmcp)

    def on_game_closed(self, reason: str) -> None:
        if self.client is not None:
            self.end(reason)
        else:  # closed before open() finished: end once the join has been answered
            self._closed_early = reason

    def on_mssp(self, variables: dict[str, Any]) -> None:
        self.manager.mssp[self.game.name] = variables

    # -- the browser side ----------------------------------------------------

    def attach(self, viewer: Viewer) -> None:
        """Attach a viewer, taking the session over from any other (which gets ``taken over``)."""
        old = self.viewer
        if old is not None and old is not viewer:
            self.viewer = None
            old.end("taken over")
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
            self.linger_deadline = None
        self.viewer = viewer
        # A pause belonged to the old attachment: read as fast as this browser reads.
        self._read_game(not viewer.backed_up)

    def detach(self, viewer: Viewer, linger: bool = True) -> None:
        """The browser went away without leaving: linger (``linger=False``: a rejoin follows at once)."""
        if self.viewer is viewer:
            self.viewer = None
            self._read_game(True)
            if linger:
                self.linger()

    def leave(self, viewer: Viewer | None = None) -> None:
        """``phx_leave``: end at once; the browser asked, so it gets no ``disconnect``."""
        if viewer is not None and self.viewer is viewer:
            self.viewer = None
        self.end("left")

    def linger(self) -> None:
        """Keep reading the game with no browser, for ``linger_seconds``."""
        if self.ended or self.viewer is not None or self._linger is not None:
            return
        self._read_game(True)
        self._linger_until(time.monotonic() + self.manager.config.sessions.linger_seconds)

    def _linger_until(self, deadline: float) -> None:
        self.linger_deadline = deadline
        if deadline <= time.monotonic():
            self.end("linger expired")
        else:
            self._linger = asyncio.get_running_loop().call_at(deadline, self.end, "linger expired")

    def _linger_longer(self, seconds: float) -> None:
        """A reload changed ``linger_seconds`` by ``seconds`` (less than 0: shorter): a session
        lingering now lingers by the new value, counted from when its browser went away (ends
        at once when that is past)."""
        if self._linger is not None and self.linger_deadline is not None:
            self._linger.cancel()
            self._linger = None
            self._linger_until(self.linger_deadline + seconds)

    def execute(self, command: Command) -> bool:
        """A browser push: send it to the game. Raises ChannelError when it cannot be sent.

        True when it is a ``recv`` whose ``n`` was sent already (a duplicate: not sent again).
        ``input_n`` moves only once the lines are written for the game: a refused push
        ("rate limited", also while the game does not read) leaves it where it was.
        """
        client = self.client
        if client is None or self.ended:
            raise ChannelError(GAME_UNAVAILABLE)
        if type(command) is SendLines and command.n is not None and command.n <= self.input_n:
            return True
        # Input the game has not taken yet is bounded (docs/security.md, "One budget"): while
        # more than UNSENT_BYTES wait in the game connection's write buffer, every push is
        # refused ("rate limited": not sent; the browser may send it again later).
        if client.unsent() > UNSENT_BYTES:
            raise ChannelError(RATE_LIMITED)
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
            if command.n is not None:
                self.input_n = command.n
        elif type(command) is SendGmcp:
            msdp = command.module == "MSDP" and type(command.data) is dict and client.msdp_enabled
            if not msdp and not client.gmcp_enabled:
                raise ChannelError(GMCP_NOT_ENABLED)
            # A gmcp push takes a token of the same bucket as a line of recv (SPEC 4.4's limit).
            limits = self.manager.config.limits
            if not self.input_bucket.take(1, time.monotonic(), limits.input_lines_per_second,
                                          limits.input_burst):
                raise ChannelError(RATE_LIMITED)
            if msdp:
                client.send_msdp(command.data)  # SPEC 5: MSDP when on, else GMCP "MSDP"
            else:
                client.send_gmcp(command.module, command.data)
            self.manager.metrics.gmcp_to_game.inc()
        elif type(command) is SetSize:
            client.set_naws(command.width, command.height)
        return False

    # -- backpressure (called by the attached viewer's socket) -----------------

    def pause_reading(self) -> None:
        self._read_game(False)

    def resume_reading(self) -> None:
        self._read_game(True)

    def _read_game(self, reading: bool) -> None:
        if self._paused != reading or self.client is None:
            return
        if reading and self.manager.handing_over:
            return  # an upgrade in place froze the games: the new process reads on
        self._paused = not reading
        if reading:
            self.client.resume_reading()
        else:
            self.client.pause_reading()

    # -- upgrade in place (handoff.py, upgrade.py) ----------------------------

    def freeze(self) -> None:
        """Stop reading the game for the handoff: what it sends waits in the kernel."""
        if self.client is not None:
            self.client.freeze()

    def thaw(self) -> None:
        """The handoff failed: read the game again (its browser is gone, so no backpressure holds)."""
        self._paused = False
        if self.client is not None:
            self.client.resume_reading()

    def to_state(self, fd: int) -> SessionState:
        """Everything the next process needs to go on with this session; ``fd`` is its game socket."""
        assert self.client is not None
        deadline = self.linger_deadline
        if deadline is None:  # still attached: it lingers from now, as if the browser dropped
            deadline = time.monotonic() + self.manager.config.sessions.linger_seconds
        return SessionState(
            key=self.key, game=self.game.name, game_settings=msgspec.to_builtins(self.game),
            sub=self.sub, client_ip=self.client_ip, client_port=self.client_port,
            admin_id=self.admin_id,
            started=self.started, started_wall=self.started_at,
            bytes_to_browser=self.bytes_to_browser, bytes_to_game=self.bytes_to_game, seq=self.seq,
            last_input=self.last_input, input_n=self.input_n, linger_deadline=deadline,
            replay=self.replay.to_state(),
            bucket=self.input_bucket.to_state(), stream=self.client.stream.to_state(),
            telnet=self.client.to_state(), fd=fd)

    @classmethod
    def from_state(cls, state: SessionState, game: Game, manager: "SessionManager") -> "Session":
        """The session as the previous process left it, without its game connection (adopt() adds it)."""
        session = cls(state.key, game, manager, state.client_ip, state.sub, state.client_port)
        if state.admin_id is not None:
            session.admin_id = state.admin_id
        session.started = state.started
        session.started_at = state.started_wall
        session.bytes_to_browser = state.bytes_to_browser
        session.bytes_to_game = state.bytes_to_game
        session.seq = state.seq
        session.last_input = state.last_input
        session.input_n = state.input_n
        session.replay = ReplayBuffer.from_state(state.replay, manager.config.sessions.replay_bytes)
        manager.compactor.watch(session.replay)  # carried uncompressed: compressed again as it was
        session.input_bucket.restore(state.bucket)
        return session

    async def adopt(self, sock: Any, state: SessionState) -> None:
        """Take over the inherited game connection and go on: linger, idle clock, reading."""
        self.client = await telnet.adopt(sock, self.game, self, state.stream, state.telnet)
        if self.life is CONNECTING:
            self.life = OPEN
        self._settle(None)
        if self._closed_early is not None:  # the game hung up while we were adopting it
            asyncio.get_running_loop().call_soon(self.end, self._closed_early)
        self._arm_idle()
        if state.linger_deadline is not None:
            self._linger_until(state.linger_deadline)

    # -- life ----------------------------------------------------------------

    async def open(self, params: JoinParams) -> None:
        """Open the game connection (run by SessionManager._connect); raises GameUnavailable."""
        self.client = await telnet.connect(
            self.game, self, screen_reader=params.screen_reader,
            client_ip=self.client_ip if self.game.forward_client_ip else None,
            proxy=(None if self.game.proxy_protocol == "none"
                   else (self.game.proxy_protocol, self.client_ip, self.client_port)))
        self.last_input = time.monotonic()  # the idle clock starts when the player can type

    @property
    def closed_early(self) -> str | None:
        """Why the game hung up before ``open`` returned ("too many players"), if it did."""
        return self._closed_early

    def _settle(self, error: ChannelError | None) -> None:
        """Tell the joins waiting for the connect how it went (the first word stands)."""
        if self._settled is not False:
            return
        self._settled = True if error is None else error
        opened, self._opened = self._opened, None
        if opened is None:
            return  # no join waits
        if error is None:
            opened.set_result(None)
        else:
            opened.set_exception(error)
            opened.exception()  # retrieved: there may be no join left to wait

    def _arm_idle(self) -> None:
        """The idle clock's timer, (again) from ``last_input`` and the live config's
        ``idle_timeout_seconds`` (none while it is 0); a reload that changes it arms it again."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        timeout = self.manager.config.sessions.idle_timeout_seconds
        if timeout > 0 and not self.ended:
            due = self.last_input + timeout
            delay = due - time.monotonic()
            if delay <= 0:
                self.end("idle")
            else:
                self._idle = asyncio.get_running_loop().call_later(delay, self._arm_idle)

    def kick(self, message: str) -> None:
        """An admin's kick (SPEC 7): ends the session with ``disconnect`` ``"kicked"``, ``detail``
        the message, whether its game is connected or still being dialled. A kick while
        dialling abandons the dial, and the joins (or ``/ws`` socket) waiting for it are told,
        not refused: each answers as for a session that ended as it opened (a Phoenix join:
        ok, nothing to replay, the ``disconnect``, ``phx_close``; ``/ws``: the message, close
        1000 ``kicked``). It is logged and counted as any kick."""
        self.end("kicked", message, tell_joins=True)

    def end(self, reason: str, detail: str | None = None, *, tell_joins: bool = False) -> None:
        """End the session: close the game, tell the browser (``disconnect``), log it.

        While connecting: the connect is cancelled and the joins waiting for it
        are refused (``game unavailable``, ``reason`` as detail), nothing is logged;
        with ``tell_joins`` (a kick) they are answered and told the end instead, and
        the end is logged and counted as an open session's.
        """
        if self.ended:
            return
        was_open = self.life is OPEN
        self.life = ENDED if was_open else FAILED
        self.end_reason = reason
        self.end_detail = detail
        for timer in (self._linger, self._idle):
            if timer is not None:
                timer.cancel()
        if not was_open:  # connecting: the joins waiting are refused (or told), the connect stops
            # Told: they resume after this end is complete, find it ended and pass it on.
            self._settle(None if tell_joins else ChannelError(GAME_UNAVAILABLE, reason))
            connecting = self._connecting
            if connecting is not None and connecting is not asyncio.current_task():
                connecting.cancel()
        if self.client is not None:
            self.client.close(reason)
        viewer, self.viewer = self.viewer, None
        if viewer is not None:
            viewer.end(reason, detail)
        self.manager.forget(self)
        self.manager.compactor.forget(self.replay)
        if not (was_open or tell_joins):
            return  # never started: no session to log (the joins' refusal says why)
        self.manager.metrics.disconnects.labels(reason).inc()
        log_event(log, logging.INFO, "session_end", "session end", game=self.game.name,
                  ip=self.client_ip, sub=self.sub, duration_s=round(time.monotonic() - self.started, 1),
                  bytes_to_browser=self.bytes_to_browser, bytes_to_game=self.bytes_to_game,
                  reason=reason, **self.log_fields())

    def log_fields(self) -> dict[str, Any]:
        """Fields of its own for the session's start and end lines (SPEC 8)."""
        return {}


#: New sessions an address may start a second once it has started twice ``max_sessions_per_ip``
#: at once (each of its sessions ended and started again: ``SessionManager._may_start``), or
#: ``max_sessions_per_ip`` over ``NEW_SESSIONS_REFILL_SECONDS`` when that is more (an admin who
#: allows many players behind one address).
NEW_SESSIONS_PER_SECOND = 1.0
NEW_SESSIONS_REFILL_SECONDS = 60.0


class SessionManager:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.sessions: dict[str, Session] = {}
        self.per_ip: Counter[str] = Counter()
        #: Sessions started, by address (``_may_start``).
        self._starts = Buckets()
        self._opening: dict[str, Session] = {}  # connecting: admitted, not yet in ``sessions``
        self.metrics = Metrics()
        #: Compresses the sessions' replay buffers (one timer for all).
        self.compactor = ReplayCompactor(lambda delay, callback: asyncio.get_running_loop().call_later(delay, callback))
        #: The latest MSSP variables any session of a game received, by game name.
        self.mssp: dict[str, dict[str, Any]] = {}
        #: An upgrade in place is handing the sessions over: no game is read again.
        self.handing_over = False

    def reload(self, config: Config) -> None:
        """Make ``config`` the live one (SIGHUP). What is read at each use applies from there;
        the timers set from the old values are set again: the idle clocks' when
        ``idle_timeout_seconds`` changed, so a new timeout (or none) applies at once to the
        sessions already open, from their last input; the lingering sessions' when
        ``linger_seconds`` changed, so the new value applies to them too, from when their
        browser went away."""
        idle = self.config.sessions.idle_timeout_seconds
        linger = self.config.sessions.linger_seconds
        self.config = config
        if config.sessions.idle_timeout_seconds != idle:
            for session in list(self.sessions.values()):  # one may end ("idle") on the way
                session._arm_idle()
        if config.sessions.linger_seconds != linger:
            for session in list(self.sessions.values()):  # one may end ("linger expired")
                session._linger_longer(config.sessions.linger_seconds - linger)

    def __len__(self) -> int:
        """The live sessions: open, or their game still being dialled (``/healthz``, the limits)."""
        return len(self.sessions) + len(self._opening)

    def live(self) -> Iterator[Session]:
        """Every live session: the open ones (``sessions``), then those whose game is still being
        dialled. What operators see (``/healthz``, ``/metrics``, ``/admin/sessions``, a kick)
        and what the limits count; ``list()`` it to end sessions on the way."""
        return chain(self.sessions.values(), self._opening.values())

    def get(self, key: str) -> Session | None:
        return self.sessions.get(key)

    def connecting(self, key: str) -> Session | None:
        """The session of ``key`` whose game connection is still being opened, if any."""
        return self._opening.get(key)

    def start(self, key: str, game: Game, params: JoinParams, client_ip: str,
              sub: str | None, client_port: int = 0, kind: type[Session] = Session) -> Session:
        """Admit a new session (a ``kind``) and start opening its game connection (``wait_open`` awaits it).

        ChannelError("too many sessions") when a limit is reached. The connect
        belongs to the manager, not to the join that asked for it: a join that
        goes away leaves it running for the others (and then the session lingers).
        """
        limits = self.config.limits
        if len(self) >= limits.max_sessions:
            raise ChannelError(TOO_MANY_SESSIONS)
        if self.per_ip[client_ip] >= limits.max_sessions_per_ip:
            raise ChannelError(TOO_MANY_SESSIONS)
        if not self._may_start(client_ip, limits.max_sessions_per_ip):
            raise ChannelError(TOO_MANY_SESSIONS)
        session = kind(key, game, self, client_ip, sub, client_port)
        self._opening[key] = session
        self.per_ip[client_ip] += 1
        session._connecting = task = asyncio.ensure_future(self._connect(session, params))
        task.add_done_callback(_retrieve)
        return session

    def _may_start(self, ip: str, per_ip: int) -> bool:
        """Take a new session's token from ``ip``'s bucket: twice ``per_ip``
        (``max_sessions_per_ip``) at once, then ``NEW_SESSIONS_PER_SECOND`` (or ``per_ip`` a
        ``NEW_SESSIONS_REFILL_SECONDS``). The per-address limit bounds sessions at a time; a
        join and a leave over and over would otherwise dial the game as fast as a socket can
        ask, each one a new connection to it (docs/security.md)."""
        now = time.monotonic()
        burst = 2 * per_ip
        rate = max(NEW_SESSIONS_PER_SECOND, per_ip / NEW_SESSIONS_REFILL_SECONDS)
        return self._starts.get(ip, now, rate, burst).take(1, now, rate, burst)

    async def _connect(self, session: Session, params: JoinParams) -> None:
        try:
            await session.open(params)
        except telnet.GameUnavailable as exc:
            self.metrics.telnet_failures.labels(exc.kind).inc()
            session.end(str(exc))  # the joins get "game unavailable" with why
            return
        except asyncio.CancelledError:  # by Session.end; else the loop is going away
            session.end("gateway shutdown")
            raise
        if session.ended:  # ended just as the connect completed
            if session.client is not None:
                session.client.close(session.end_reason or "")
            return
        del self._opening[session.key]
        self.sessions[session.key] = session
        session.life = OPEN
        session._connecting = None  # only a session still connecting is cancelled through it
        log_event(log, logging.INFO, "session_start", "session start", game=session.game.name,
                  ip=session.client_ip, sub=session.sub, **session.log_fields())
        session._settle(None)
        if session.closed_early is not None:
            # The game said its piece and hung up at once ("too many players"):
            # each join gets its reply and that text, then the disconnect.
            session.end(session.closed_early)
            return
        session._arm_idle()
        if session.waiters == 0:  # every join went away meanwhile
            session.linger()

    async def wait_open(self, session: Session) -> None:
        """Wait until ``session`` (from ``start`` or ``connecting``) is open; ChannelError if it never is.

        An open session may have ended already (the game hung up at once): the
        join then answers ok, replays, and passes the ``disconnect`` on.
        """
        session.waiters += 1
        went_away = False
        try:
            settled = session._settled
            if settled is False:
                if session._opened is None:
                    session._opened = asyncio.get_running_loop().create_future()
                await asyncio.shield(session._opened)  # never cancelled itself: only this join can be
            elif settled is not True:
                raise settled
        except asyncio.CancelledError:
            went_away = True
            raise
        finally:
            session.waiters -= 1
            if went_away and not session.waiters and session.is_open and session.viewer is None:
                session.linger()  # the last join waiting went away: nobody will attach

    def add(self, session: Session) -> None:
        """A session adopted from the previous process (upgrade in place)."""
        self.sessions[session.key] = session
        self.per_ip[session.client_ip] += 1

    def forget(self, session: Session) -> None:
        """Take ``session`` out of the table it is in, freeing its per-IP slot (once)."""
        key = session.key
        if self.sessions.get(key) is session:
            del self.sessions[key]
        elif self._opening.get(key) is session:
            del self._opening[key]
        else:
            return
        self._release_ip(session.client_ip)

    def _release_ip(self, ip: str) -> None:
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]

    def shutdown(self, reason: str = "gateway shutdown") -> None:
        for session in list(self.live()):  # those still dialling too: their joins are refused
            session.end(reason)
        self.compactor.close()

    def counts(self) -> dict[str, Any]:
        """The live sessions by state (``/metrics``): one still dialling is attached."""
        attached = sum(1 for s in self.live() if s.attached)
        return {"attached": attached, "lingering": len(self) - attached}


def _retrieve(task: asyncio.Task[Any]) -> None:
    """The connect task's failures are told through ``Session._opened``; anything else is a bug."""
    if not task.cancelled() and task.exception() is not None:
        log.error("session connect failed", exc_info=task.exception())
