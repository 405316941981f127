"""The Phoenix socket over a WebSocket (SPEC 4.1): the asyncio adapter.

One ``PhoenixSocket`` per WebSocket connection. aiohttp answers the upgrade
(routes.py); from the 101 on the connection is the socket's own: it is the
transport's protocol (``data_received``, flow control, ``connection_lost``),
the WebSocket protocol itself is its ``Connection`` (connection.py, sans-I/O:
frames in and out, the close handshake), and aiohttp keeps nothing of it (no
request, handler task or reader queue per player: idle memory and a round
trip's CPU, docs/performance.md). It decodes each text frame with the
serializer the ``vsn`` chose and hands the message to the Phoenix routing
(router.py: heartbeats, joins, leaves, pushes), and writes every outgoing frame
(pongs too: one waits at most, the latest ping's) through one ordered outbox.
When the outbox backs up, the sessions feeding it stop reading their games
(TCP pushes back on the game) until the browser catches up; a browser that
makes no progress for ``slow_consumer_seconds`` is disconnected. Nor is the
browser read while the outbox is backed up (the transport's reading is
paused), so nothing it sends can make the outbox grow further; and the outbox
has a hard byte bound (``outbox_limit``) over which the browser is a slow
consumer at once. One sweep for all sockets (``watch``) closes the silent and
the stalled ones.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Coroutine, Mapping, Sequence

from aiohttp import WSCloseCode

from ..logs import log_refusal
from ..router import ChannelHandle, ChannelRouter
from .connection import CONNECTING, DROPPED_FRAME, Connection
from .frames import CLOSE, NO_STATUS, PING, PONG, TEXT, FrameError
from .serializer import MalformedMessage, Serializer

if TYPE_CHECKING:
    from ..config import Config
    from ..session import Session, SessionManager
    from .registry import SocketRegistry

log = logging.getLogger("gateway.socket")
_NO_CLAIMS: "Mapping[str, Any]" = MappingProxyType({})  # one for every socket without a token


def _wake(waiter: "asyncio.Future[None] | None", exc: BaseException | None = None) -> None:
    """Wake whoever still awaits ``waiter`` (if any): with ``exc`` raised, else normally."""
    if waiter is not None and not waiter.done():
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)


def _log_failure(task: "asyncio.Task[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("socket close failed", exc_info=task.exception())


#: Outbox sizes at which the socket's sessions stop / start reading their games.
HIGH_WATER = 1 << 20
LOW_WATER = 1 << 18
#: How long a slow consumer's last frames may take to be read; with the close
#: handshake's 1 s the socket is gone within 5 s (SPEC 6).
SLOW_CONSUMER_DRAIN = 3.0
#: What one read of a game (asyncio reads at most 256 KiB) can add to the outbox
#: before the session sees the pause: JSON escapes a control byte in up to 6.
READ_BURST = 6 * 256 * 1024
#: How long the closing handshake may take: the browser's close frame after ours, and the
#: TCP close after the last close frame; a browser that has not read what is still
#: buffered by then is aborted (it cannot hold the connection and its buffer open).
CLOSE_HANDSHAKE = 1.0
# A push that went to the game has its reply held this long (seconds) for the game's
# answer, which then goes out in the same write: a round trip makes two writes to the
# browser's socket, not three (docs/performance.md 1.9). A game that answers later, or not
# at all, has the reply written when the time is up.
REPLY_HOLD = 0.002
#: Frames of one socket handled in one turn of the loop: past it, its reading pauses and the
#: rest waits for the next turn (and its next read for the rest to be handled), so that a
#: client sending tiny frames as fast as it can (a ping flood: ~40,000 in one 256 KiB read)
#: gets a turn's worth, not the loop: the other sockets' round trips go on (docs/security.md).
FRAMES_PER_TURN = 64
#: And characters of messages handled in one turn (the message that passes it is the last): a
#: compressed frame of ~150 bytes inflates to a message of ``max_frame_bytes``, so 64 of them
#: were 4 MB of JSON a turn for 10 KB read (~450 ms of the loop for heartbeats of ``[],``);
#: at most what one read of an uncompressed socket brings (docs/security.md).
BYTES_PER_TURN = 256 * 1024
#: What an address's sockets may make the gateway read, in characters of messages a second, for
#: each session ``limits.max_sessions_per_ip`` lets it hold (16 KiB: a player's input is a few
#: hundred bytes a second), and ``READ_BURST_SECONDS`` of that at once; past it they are read
#: again once it is paid (registry.py ``spend``). Without it, the turns of an address's 40
#: sockets of compressed frames (~600 bytes sent each) held the loop ~1 s a round.
READ_CHARS_PER_SESSION = 16 * 1024
READ_BURST_SECONDS = 4.0
#: A socket's reads are charged to its address once they come to this many characters (an
#: ordinary push is not charged on its own: the round trip stays as it was).
PACE_CHARS = 16 * 1024
#: Why ``_pump`` stopped reading messages (besides the end of the socket).
_NOT_READ, _TURN_OVER, _ALL_READ = "not read", "turn over", "all read"
#: Sockets the once-a-second sweep (``watch``) looks at before the loop gets a turn: at ~1 us a
#: socket, 9,900 sockets in one go held every round trip for 8-16 ms each second, and that
#: stall was the p99 at 10,000 sessions (docs/performance.md 1.11); a slice took 0.13-0.16 ms.
SWEEP_SLICE = 256
#: A socket that wrote nothing for this long lets its deflate context go (idle memory).
QUIET_SECONDS = 10.0
#: Kept payload bytes -> bytes of the frames replaying them (with a join_ref
#: as phoenix.js sends it, the envelope around the smallest event is less
#: than twice its size; a browser choosing huge join_refs meets the bound).
REPLAY_FRAMING = 3
#: Kept free beside a join's replay: its channel's ``disconnect`` and ``phx_close`` (a session
#: that ended as the join came).
JOIN_END_BYTES = 4096


class Life(enum.IntEnum):
    """A socket's life, in order (it only moves forward; docs/architecture.md). The
    WebSocket's own (the 101, the close frames) is its ``Connection``'s ``state``."""

    OPEN = 0  #: frames are queued and written
    SEALED = 1  #: a slow consumer's last frames are queued: ``send`` takes no more
    CLOSED = 2  #: the outbox is dropped: no frame but the close frame is written any more
    FINISHED = 3  #: the channels are released, the joins cancelled (the TCP close under way)
    LOST = 4  #: the connection is gone (``connection_lost``)


#: The members by name, for the hot paths: on Python 3.11 reading one off its
#: class (``Life.OPEN``) takes ``EnumType.__getattr__``'s slow path (0.2 us here; a
#: round trip reads about twenty, docs/performance.md 1.9). Unpacking fails loudly
#: if a member is added and not named here.
OPEN, SEALED, CLOSED, FINISHED, LOST = Life


def outbox_limit(config: "Config") -> int:
    """The most a socket's outbox may hold: more is a slow consumer (docs/sessions.md).

    Past HIGH_WATER the browser is not read, so one frame from it (a join
    replaying the whole buffer) and one read of each of its games is what
    can still come on top.
    """
    return (HIGH_WATER + REPLAY_FRAMING * config.sessions.replay_bytes
            + config.limits.max_channels_per_socket * READ_BURST)


class WebSocket(asyncio.Protocol):
    """A WebSocket after its 101: the transport, the ``Connection``, the outbox, backpressure and
    the close; what its messages mean is a subclass's (``message``): ``PhoenixSocket`` below,
    and the ``/ws`` endpoint's ``MudSocket`` (mudstandards/socket.py)."""

    # No __dict__ per socket (idle memory, docs/performance.md): a new attribute goes here too.
    #: The close code of a browser that does not read (SPEC 6: the browser gets a ``disconnect``).
    slow_consumer_code = WSCloseCode.TRY_AGAIN_LATER
    __slots__ = ("manager", "client_ip", "client_port", "transport", "claims", "channels",
                 "_outbox", "_latency", "_outbox_bytes", "_flush_armed", "_caught_up",
                 "_life", "_last_progress", "_writing", "_draining",
                 "_tasks", "_read_times", "_corked", "_reply_timer", "_heard",
                 "_closing", "_conn", "_registry", "_lost_waiter", "_paused",
                 "_drain_waiter", "_reading_paused", "_pong", "_loop", "_owed", "_paced", "_kept_bound")

    def __init__(self, transport: asyncio.Transport, manager: "SessionManager", client_ip: str,
                 claims: "Mapping[str, Any] | None" = None, client_port: int = 0,
                 registry: "SocketRegistry[WebSocket] | None" = None) -> None:
        self.manager = manager
        self.client_ip = client_ip
        self.client_port = client_port
        self.transport = transport  # the TCP (or TLS) connection under the WebSocket
        # The loop the socket lives in (made in it, never moved): asyncio.get_running_loop()
        # on Python 3.11 is a getpid() system call each time, three a round trip.
        self._loop = asyncio.get_running_loop()
        self._registry = registry  # the app's open sockets (shutdown, upgrade): in it while open
        # The WebSocket protocol's state machine (connection.py): frames in and out, the 101,
        # the close frames. What is below is the socket's: the transport, outbox and timers.
        self._conn = Connection(manager.config.limits.max_frame_bytes)
        self._life = OPEN
        self._lost_waiter: asyncio.Future[None] | None = None  # a close waits for it (made then)
        self._paused = False  # the transport's write buffer is full (pause_writing)
        self._drain_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._owed = 0  # characters read not yet charged to the address (``_pump``)
        self._paced = False  # over its address's read budget: read again by the look once paid
        self.claims = claims or _NO_CLAIMS
        self.channels: dict[str, ChannelHandle] = {}
        # The frames to write; a list: an empty deque is 600 bytes per idle socket
        self._outbox: list[bytes] = []
        # The pong waiting to be written with the outbox (counted in _outbox_bytes): one at
        # most, the latest ping's (_answer_ping).
        self._pong: bytes | None = None
        # When the game bytes behind the queued frames were read (one per game read), for
        # the event latency metric; made with the first.
        self._read_times: list[float] | None = None
        # While a browser frame is handled, its answers are queued and then written at once
        # (one write, no loop turn in between): see receive().
        self._corked = False
        # The timer of a held reply (REPLY_HOLD), cancelled when the game's answer takes the
        # reply along: a timer left to fire would wake the loop once more per round trip.
        self._reply_timer: asyncio.TimerHandle | None = None
        # The heartbeat timeout (SPEC 4.1): when the browser was last heard from (loop time);
        # one sweep for all sockets looks (``watch``, below), no timer per socket or message.
        self._heard = 0.0
        self._closing: asyncio.Task[None] | None = None  # the close under way (heartbeat, bad frame)
        self._latency = manager.metrics.event_latency
        self._outbox_bytes = 0
        # The bound of a config a reload replaced, while the outbox may hold more than the live
        # one lets in (``config_changed``, ``outbox_limit``); 0: none.
        self._kept_bound = 0
        # No task and no asyncio.Event per socket (idle memory, docs/performance.md): a
        # write is one call_soon, armed when the outbox stops being empty; a task exists
        # only while the transport's flow control makes us wait for the browser to read.
        self._flush_armed = False
        # True unless the outbox went over HIGH_WATER and has not yet drained below
        # LOW_WATER: while False, the sessions do not read their games, nor we the browser.
        self._caught_up = True
        self._last_progress = time.monotonic()
        self._writing = False  # a written batch waits for the browser to read (the drain task)
        self._draining: asyncio.Task[None] | None = None
        # Joins waiting for their game, joins' replays going out (made at the first).
        self._tasks: set[asyncio.Task[Any]] | None = None

    def _keep_task(self, work: "Coroutine[Any, Any, None]") -> None:
        """Run ``work`` as a task of the socket's (``_tasks``): cancelled at the socket's end,
        awaited by an upgrade in place (``restart``)."""
        task = asyncio.ensure_future(work)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[Any]") -> None:
        """A task of the socket's (``_tasks``) is done: forgotten."""
        tasks = self._tasks
        if tasks is not None:
            tasks.discard(task)
            if not tasks:
                self._tasks = None  # an idle socket keeps no empty set

    def _advance(self, life: Life) -> None:
        if life > self._life:
            self._life = life
            if life >= CLOSED:
                self._conn.reader.discard = True  # what the browser sends now is dropped (_pump)

    @property
    def config(self) -> "Config":
        """The live config (SIGHUP replaces it): never a copy kept from when the socket opened."""
        return self.manager.config

    # -- outgoing --------------------------------------------------------------

    def outbox_limit(self) -> int:
        """The outbox's bound: the live config's, or the larger one of a config a reload replaced
        while frames it let in were queued or promised (``config_changed``): kept until the
        socket has caught up with no replay under way, so that a lowered ``replay_bytes`` or
        ``max_channels_per_socket`` makes no slow consumer of a browser taking what the old
        bound let in (SPEC 6.1 item 4: a smaller ``replay_bytes`` applies from then on)."""
        limit = outbox_limit(self.config)
        kept = self._kept_bound
        if kept > limit:
            if not self._caught_up or self._replaying():
                return kept
            self._kept_bound = 0
        return limit

    def outbox_room(self) -> int:
        """What the outbox may still take before it is over its bound (less than 0: it is)."""
        return self.outbox_limit() - self._outbox_bytes

    def send(self, frame: bytes, read_at: float | None = None) -> None:
        self.send_many((frame,), read_at)

    def send_many(self, frames: "Sequence[bytes]", read_at: float | None = None, now: bool = False) -> None:
        """Queue ``frames`` in order (the same as a ``send`` each, checked once).

        They are written when the loop comes round, with whatever else is queued by
        then (one write); with ``now`` (the frames of one game read), at once: a round
        trip then costs no extra turn of the loop, and a turn is a system call (epoll).
        While a browser frame is handled (``receive``), they are written after it.
        """
        if self._life >= SEALED or not frames:
            return
        size = sum(map(len, frames))
        total = self._outbox_bytes + size
        # The bound is above HIGH_WATER: under it (nearly always), it need not be worked out.
        if total > HIGH_WATER and total > self.outbox_limit():
            # Those that fit would be dropped by the slow-consumer seal at once anyway.
            self._overflow()
            return
        outbox = self._outbox
        if not outbox and not self._writing:
            self._last_progress = time.monotonic()  # the slow-consumer clock starts now
            if not (now or self._corked or self._flush_armed):
                # Everything queued until the loop comes round goes in one write.
                self._flush_armed = True
                self._loop.call_soon(self._flush)
        outbox.extend(frames)
        if read_at is not None:
            if self._read_times is None:
                self._read_times = [read_at]
            else:
                self._read_times.append(read_at)
        self._outbox_bytes = total
        if total > HIGH_WATER and self._caught_up:
            self._caught_up = False
            for handle in self.channels.values():
                if handle.session is not None:
                    handle.session.pause_reading()
        if now and not self._corked:
            self._flush()

    def _resume_sessions(self) -> None:
        self._set_caught_up()
        for handle in self.channels.values():
            if handle.session is not None and handle.held is None:  # not while its replay goes out
                handle.session.resume_reading()

    def _set_caught_up(self) -> None:
        if not self._caught_up:
            self._caught_up = True
            # The browser was not read while the outbox was backed up: that was no
            # silence of its own (SPEC 4.1's heartbeat timeout counts from now).
            self._heard = self._loop.time()
        self._resume_reading()

    def _resume_reading(self, pump: bool = True) -> None:
        """The browser may be read again (caught up, or a join's replay queued): reading resumes
        unless it is not to be read, and what it sent meanwhile is handled (``pump``)."""
        if (self._reading_paused and self._may_read() and self._life is not LOST
                and not self.transport.is_closing() and not self._paced):
            self._reading_paused = False
            self.transport.resume_reading()
            if pump:
                self._loop.call_soon(self._pump)

    def sending(self) -> bool:
        """Frames are still queued (not sealed for a slow consumer, not closed)."""
        return self._life < SEALED

    def _flush(self) -> None:
        """Write the outbox in one ``transport.writelines``; while the transport's flow control says
        the browser is behind (``pause_writing``), the drain task waits, then goes on."""
        self._flush_armed = False
        if self._reply_timer is not None:
            self._reply_timer.cancel()
            self._reply_timer = None
        if self._writing or not (self._outbox or self._pong):
            return
        batch, self._outbox = self._outbox, []
        read_times, self._read_times = self._read_times, None
        self._outbox_bytes = 0
        try:
            paused = self._write_frames(batch)
        except (ConnectionError, RuntimeError) as exc:
            self._write_failed(exc)
            return
        if paused:
            self._writing = True
            self._draining = asyncio.ensure_future(self._drain(read_times))
        else:
            self._written(read_times)

    def _written(self, read_times: "list[float] | None") -> None:
        """A batch is written (and drained): progress, its latency, maybe resume the sessions."""
        self._last_progress = time.monotonic()
        if read_times is not None:
            observe = self._latency.observe
            now = self._loop.time()
            for read_at in read_times:  # once per game read
                observe(now - read_at)
        if self._outbox_bytes < LOW_WATER and not self._caught_up:
            self._resume_sessions()

    async def _drain(self, read_times: "list[float] | None") -> None:
        try:
            if self._life is LOST:
                raise ConnectionResetError("Connection lost")
            if self._paused:
                waiter = self._drain_waiter = self._loop.create_future()
                await waiter
        except (ConnectionError, RuntimeError) as exc:
            self._writing = False
            self._write_failed(exc)
            return
        finally:
            self._draining = None
        self._writing = False
        self._written(read_times)
        if (self._outbox or self._pong) and not self._flush_armed:
            self._flush()  # what was queued meanwhile, in order

    def _write_failed(self, exc: BaseException) -> None:
        # The connection is gone: nothing more can be written; connection_lost ends the socket.
        log.debug("socket %s: write failed: %s", self.client_ip, exc)
        self._drop_outbox()

    def _overflow(self) -> None:
        """The outbox would pass its bound (``outbox_limit``): this browser is a slow consumer now."""
        log.info("socket %s: outbox over %d bytes", self.client_ip, self.outbox_limit())
        self._seal()
        self._close_soon(self.slow_consumer_code, b"slow consumer", SLOW_CONSUMER_DRAIN)

    def _write_frames(self, batch: "list[bytes]") -> bool:
        """The batch's frames in one ``transport.writelines``; whether the transport's flow control
        now says the browser is behind (the caller then waits for the drain)."""
        transport = self.transport
        if self._life is LOST or self._conn.closed_for_sending or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        frames = self._encode(batch)
        pong, self._pong = self._pong, None
        if pong is not None:
            frames.append(pong)  # a control frame may go between any two messages (RFC 6455 5.4)
        transport.writelines(frames)  # uvloop: one writev, no join
        return self._paused

    def _encode(self, batch: "list[bytes]") -> "list[bytes]":
        """The pieces (headers, payloads) of the frames of the queued messages."""
        return self._conn.send(batch)

    def _drop_outbox(self) -> None:
        """No more frames will be written: forget the queued ones, wake whoever waits."""
        self._advance(CLOSED)
        self._forget_queued()
        self._set_caught_up()

    def _forget_queued(self) -> None:
        self._outbox.clear()
        self._pong = None
        self._read_times = None
        self._outbox_bytes = 0

    def release_if_quiet(self, now: float) -> int:
        """Nothing written for ``QUIET_SECONDS`` (``now``: time.monotonic()): the deflate
        context goes (32 KiB; made again by the next message that is compressed).
        Returns about how many bytes that freed."""
        if now - self._last_progress >= QUIET_SECONDS and not (self._outbox or self._writing):
            return self._conn.release()
        return 0

    def stalled(self, now: float) -> float:
        """Seconds frames have been waiting without one being written (0 when none wait)."""
        if self._life >= CLOSED or not (self._outbox or self._writing):
            return 0.0
        return now - self._last_progress

    async def slow_consumer(self) -> None:
        """The browser made no progress for ``slow_consumer_seconds`` (SPEC 6): its queued output
        is dropped, ``disconnect`` and ``phx_close`` are the next frames written, the games are
        closed, and the socket is closed within 5 s whether or not the browser reads them."""
        if self._life >= SEALED:
            return  # already under way (the watchdog asks every second)
        log.info("socket %s: slow consumer, disconnecting", self.client_ip)
        self._seal()
        await self._shut(self.slow_consumer_code, b"slow consumer", SLOW_CONSUMER_DRAIN)

    def _seal(self) -> None:
        """Drop the queued output; queue each channel's ``disconnect`` and ``phx_close``; no more."""
        self._forget_queued()
        for handle in list(self.channels.values()):
            handle.held = None  # a replay under way stops (``_replay_rest``): its frames were dropped
            if handle.session is not None:
                handle.session.end("slow consumer")  # closes the game, queues disconnect + phx_close
        self._advance(SEALED)  # nothing after them

    async def close(self, code: int, message: bytes, drain_seconds: float = 2.0) -> None:
        """Close after the frames already queued (a ``disconnect``, say) are written."""
        await self._shut(code, message, drain_seconds)

    async def restart(self, join_seconds: float = 3.0) -> None:
        """Upgrade in place: finish the joins under way, write every queued answer, close with 1012.

        The browser (phoenix.js) reconnects by itself and resumes its sessions in the new process.
        """
        # SPEC 6.1 item 2: every browser frame already read is answered, also those a
        # backed-up browser sent (read off TCP, not handled while it did not read its replies),
        # a turn's worth at a time (a read of compressed frames is up to ~100 MB of JSON).
        deadline = self._loop.time() + join_seconds
        await self._pump_all(deadline)
        while self._tasks and self._loop.time() < deadline:
            await asyncio.wait(list(self._tasks), timeout=deadline - self._loop.time(),
                               return_when=asyncio.FIRST_COMPLETED)
            await self._pump_all(deadline)  # the frames a join's replay held back
        await self._shut(WSCloseCode.SERVICE_RESTART, b"service restart", drain_seconds=2.0)

    async def _pump_all(self, deadline: float) -> None:
        """An upgrade's look at what the browser sent (``_pump`` with ``backed_up``), a turn at a
        time, until all it read is handled (or ``deadline``: a browser sending without end)."""
        while self._pump(backed_up=True) and self._loop.time() < deadline:
            await asyncio.sleep(0)

    async def _shut(self, code: int, message: bytes, drain_seconds: float) -> None:
        """The closing handshake: the queued frames (for ``drain_seconds`` at most), our close
        frame, the browser's close frame (1 s at most), then the connection is closed."""
        deadline = time.monotonic() + drain_seconds
        while ((self._outbox or self._writing or self._replaying()) and self._life is not LOST
               and time.monotonic() < deadline):
            await asyncio.sleep(0.01)
        self._drop_outbox()
        self._send_close(code, message)
        if self._life is not LOST:
            if self._lost_waiter is None:
                self._lost_waiter = self._loop.create_future()
            try:  # the browser answers with its close frame; then we close (_close_received)
                await asyncio.wait_for(asyncio.shield(self._lost_waiter), CLOSE_HANDSHAKE)
            except asyncio.TimeoutError:
                pass
        transport = self.transport
        if not transport.is_closing() or transport.get_write_buffer_size():
            # A browser that does not read cannot hold us: a graceful close would wait for
            # it to read what is still buffered, for ever.
            transport.abort()

    def _send_close(self, code: int, message: bytes = b"") -> None:
        """Our close frame, once; nothing is written after it."""
        frame = self._conn.close(code, message)
        self._advance(CLOSED)
        if frame and self._life is not LOST and not self.transport.is_closing():
            self.transport.write(frame)

    def _close_soon(self, code: int, message: bytes, drain_seconds: float = 0.0) -> None:
        """Start closing (``_shut``) from a callback, once; the task is kept until it is done."""
        if self._closing is None and not self._conn.closed_for_sending:
            self._conn.reader.discard = True  # what the browser sends now is dropped (_pump)
            self._closing = asyncio.ensure_future(self._shut(code, message, drain_seconds))
            self._closing.add_done_callback(_log_failure)

    def _end(self, code: int, message: bytes = b"") -> None:
        """The end, now: our close frame (unless sent already), the TCP close, the socket done."""
        self._send_close(code, message)
        self.transport.close()
        self._abort_if_unread()
        self._finish()

    def _abort_if_unread(self) -> None:
        """The TCP close is under way: a graceful close waits until the browser has read what
        is still buffered, for ever if it never reads (a client that floods and does not
        read): what is still buffered after ``CLOSE_HANDSHAKE`` is dropped, the connection
        aborted."""
        if self.transport.get_write_buffer_size():
            self._loop.call_later(CLOSE_HANDSHAKE, self.transport.abort)

    # -- incoming --------------------------------------------------------------

    def start(self, deflate: "tuple[int, bool] | None" = None) -> None:
        """The 101 is written (routes.py): the connection is ours. ``deflate`` is the
        permessage-deflate agreed in it (``frames.negotiate_deflate``), or None."""
        if self._life is LOST:
            return  # gone during the handshake
        self._conn.start(deflate)
        self._heard = self._loop.time()
        if self._registry is not None:
            self._registry.add(self)
        self._pump()  # what the browser sent with or after its upgrade request

    # asyncio.Protocol: the transport calls these once routes.py made the socket its protocol.

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        conn.receive_data(data)
        if conn.state is not CONNECTING:
            self._pump()

    def eof_received(self) -> bool:
        # The browser closed its side: so do we (connection_lost follows), within the bound.
        self._abort_if_unread()
        return False

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        _wake(self._drain_waiter)
        self._drain_waiter = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._conn.fail()
        self._finish(LOST)
        _wake(self._drain_waiter, ConnectionResetError("Connection lost"))
        _wake(self._lost_waiter)
        self._drain_waiter = self._lost_waiter = None
        if self._registry is not None:
            self._registry.discard(self)

    def _pump(self, backed_up: bool = False) -> bool:
        """Handle the browser's whole messages, in order, while it is caught up (with
        ``backed_up``, an upgrade's last look, also while it is not), a turn's worth; whether
        an upgrade's look stopped at the end of its turn (``restart`` gives the loop its turn
        and looks again)."""
        conn = self._conn
        conn.reader.max_size = self.manager.config.limits.max_frame_bytes  # the live config's (SIGHUP)
        loop = self._loop
        handled = took = 0
        stop = None  # why the loop stopped: _NOT_READ, _TURN_OVER or _ALL_READ
        while self._life < FINISHED:
            if not (self._may_read() or backed_up and not self._replaying()):
                # A browser that sends without reading its replies is not read either
                # until it catches up: TCP pushes back on it too.
                self._pause_reading()
                stop = _NOT_READ
                break
            if handled == FRAMES_PER_TURN or took >= BYTES_PER_TURN:
                # Its turn is over: the rest of what it sent waits for the next one, and its
                # next read for this one to be handled (the reader holds one read at most).
                self._pause_reading()
                stop = _TURN_OVER
                break
            handled += 1
            try:
                event = conn.next_event()
            except FrameError as exc:
                # RFC 6455 7.1.7, "Fail the WebSocket Connection": our close frame, then the end.
                log_refusal(log, "socket_refused", f"socket {self.client_ip}: {exc.reason}, closing ({exc.code})")
                self._end(exc.code, exc.reason.encode())
                return False
            if event is None:
                stop = _ALL_READ
                break
            opcode, data = event
            if opcode == PONG or opcode == DROPPED_FRAME:
                continue  # unasked (a client's keepalive), or read while closing: nothing to answer
            if opcode == CLOSE:
                self._close_received(data)
                return False
            if self._life >= CLOSED or self._closing is not None:
                continue  # closing: only the browser's close frame matters now
            self._heard = loop.time()
            if opcode == PING:
                self._answer_ping(data)
            else:
                took += len(data)
                self.message(opcode, data)
        # What was read is charged to the address once the socket's reads come to PACE_CHARS
        # (a round trip's push is charged with others later: no call here).
        owed = self._owed + took
        if owed < PACE_CHARS:
            self._owed = owed
            paced = False
        else:
            paced = self._charge(owed)
        if stop is _ALL_READ:
            if not paced:
                self._resume_reading(pump=False)  # all it sent is handled
        elif stop is _TURN_OVER:
            if backed_up:
                return True  # an upgrade's look: restart asks again after the loop's turn
            if not paced:
                loop.call_soon(self._next_turn)
        return False

    def _pause_reading(self) -> None:
        if not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def _next_turn(self) -> None:
        self._paced = False
        if self._life < FINISHED:
            self._pump()

    def _charge(self, owed: int) -> bool:
        """Charge ``owed`` characters read to the address (registry.py ``spend``); when that
        takes it over its budget, the socket is not read until it is paid (``_resume_reading``
        waits for the look then): True."""
        self._owed = 0
        if self._registry is None:
            return False
        rate = self.manager.config.limits.max_sessions_per_ip * READ_CHARS_PER_SESSION
        delay = self._registry.spend(self.client_ip, owed, self._loop.time(), rate, READ_BURST_SECONDS * rate)
        if not delay:
            return False
        self._pause_reading()
        self._paced = True
        self._loop.call_later(delay, self._next_turn)
        return True

    def _may_read(self) -> bool:
        """Whether the browser's next frame may be handled now (else its reading is paused)."""
        return self._caught_up

    def _replaying(self) -> bool:
        """A join's replay is still going out (the subclass's): the browser's next frames wait
        for it, also an upgrade's last look (``restart``), and a close's drain."""
        return False

    def message(self, opcode: int, data: "str | bytes") -> None:
        """A TEXT or BINARY message from the browser (the subclass's protocol)."""
        raise NotImplementedError

    def _answer_ping(self, payload: bytes) -> None:
        """A pong goes through the outbox like every frame: counted against its bound, written
        with it, waiting with it while the browser does not read. Pings that come while a pong
        waits are answered by one pong, the latest's (RFC 6455 5.5.3): a client that pings
        and never reads makes the gateway hold one pong, and is a slow consumer."""
        if self._life >= SEALED:
            return
        pong = self._conn.pong(payload)
        size = len(pong) - (len(self._pong) if self._pong is not None else 0)
        if self._outbox_bytes + size > self.outbox_limit():
            self._overflow()
            return
        if self._pong is None and not self._outbox and not self._writing:
            self._last_progress = time.monotonic()  # the slow-consumer clock starts now
        self._pong = pong
        self._outbox_bytes += size
        self._flush()  # at once, with what is queued (unless a write waits for the browser)

    def _close_received(self, code: int) -> None:
        """The browser's close frame: answered (with its code, RFC 6455 5.5.1), unless it
        answers ours; its channels are released (their sessions linger); the end."""
        self._end(code if code != NO_STATUS else WSCloseCode.OK)

    def _finish(self, life: Life = FINISHED) -> None:
        """The socket is done (``life``: FINISHED, or LOST when the connection is gone): its
        timers and joins end, its sessions are released."""
        done = self._life >= FINISHED
        self._advance(life)
        if done:
            return
        self._drop_outbox()
        for task in list(self._tasks or ()):
            task.cancel()
        for handle in list(self.channels.values()):
            handle.release()
        self.channels.clear()

    def check_heartbeat(self, heard_by: float) -> None:
        """The sweep's (``watch``) look at a socket silent since ``heard_by`` (the subclass's rule)."""

    def config_changed(self, old: "Config") -> None:
        """A reload (SIGHUP, routes.py ``apply_config``) made another config the live one, in
        place of ``old``; the socket reads the live values where it uses them, but for what
        it holds or set from the old ones: the outbox bound of frames already let in, while
        the browser is behind or a replay goes out (``outbox_limit``), and (the subclass's) a
        timer set again."""
        if not self._caught_up or self._replaying():
            self._kept_bound = max(self._kept_bound, outbox_limit(old))


class PhoenixSocket(ChannelRouter, WebSocket):
    """The Phoenix socket (SPEC 4.1): text frames decoded by the ``vsn``'s serializer and routed
    to channels (router.py), heartbeats within ``heartbeat_timeout_seconds``."""

    __slots__ = ("serializer", "_joining", "_replays", "_promised")

    def __init__(self, transport: asyncio.Transport, serializer: Serializer,
                 manager: "SessionManager", client_ip: str, claims: "Mapping[str, Any] | None" = None,
                 client_port: int = 0, registry: "SocketRegistry[WebSocket] | None" = None) -> None:
        super().__init__(transport, manager, client_ip, claims=claims, client_port=client_port,
                         registry=registry)
        self.serializer = serializer
        self._joining: dict[str, Session] = {}  # topic -> the connecting session its join waits for
        self._replays = 0  # joins' replays still going out (router.py ``_replay_rest``)
        self._promised = 0  # the frame bytes of theirs not queued yet (at most)

    def _may_read(self) -> bool:
        return self._caught_up and not self._replays

    def _replaying(self) -> bool:
        return self._replays > 0

    def message(self, opcode: int, data: "str | bytes") -> None:
        """A TEXT or BINARY message from the browser."""
        if opcode == TEXT:
            self.receive(data)
        else:
            self._close_soon(WSCloseCode.UNSUPPORTED_DATA, b"text frames only")

    def check_heartbeat(self, heard_by: float) -> None:
        """Close (1001) if nothing was heard from the browser since ``heard_by`` (loop time:
        now less the live config's ``heartbeat_timeout_seconds``); the sweep (``watch``)
        asks. A browser not read while the outbox is backed up is not silent
        (``_set_caught_up`` restarts its clock when the outbox drains)."""
        if self._heard >= heard_by or self._life >= CLOSED or not self._caught_up:
            return
        log.info("socket %s: no message for %gs, closing", self.client_ip,
                 self.config.limits.heartbeat_timeout_seconds)
        self._close_soon(WSCloseCode.GOING_AWAY, b"heartbeat timeout")

    def replay_room(self) -> int:
        """What a join's reply and replay may still add to the outbox: its bound, less what is
        queued or still to come of replays under way, a read of each of the socket's games, and a channel's end (router.py)."""
        config = self.config
        return (outbox_limit(config) - self._outbox_bytes - self._promised
                - config.limits.max_channels_per_socket * READ_BURST - JOIN_END_BYTES)

    @property
    def backed_up(self) -> bool:
        """The outbox went over HIGH_WATER and has not drained below LOW_WATER yet."""
        return not self._caught_up

    def receive(self, frame: str | bytes) -> None:
        """One text frame from the browser, handled; what it queued (a reply, a join's
        replay) is written at once, in one write; the reply to a push that went to the
        game, with the game's answer if that comes within REPLY_HOLD."""
        self._corked = True
        try:
            hold = self.handle(frame)
        finally:
            self._corked = False
        if self._outbox and not self._writing:
            if not hold:
                self._flush()
            elif not self._flush_armed:
                self._flush_armed = True
                self._reply_timer = self._loop.call_later(REPLY_HOLD, self._flush)

    def handle(self, frame: str | bytes) -> bool:
        """One text frame from the browser: decoded, then routed (router.py); whether its
        reply may wait for the game's answer."""
        s = self.serializer
        try:
            msg = s.decode(frame)
        except MalformedMessage as exc:
            if exc.ref is not None:
                self.send(s.error(exc.join_ref, exc.ref, exc.topic or "phoenix", exc.reason))
            return False
        return self.route(msg)


async def watch(sockets: "SocketRegistry[WebSocket]", manager: "SessionManager") -> None:
    """One task for all sockets, no timer per socket (idle memory): every second (a quarter
    of the heartbeat timeout when that is shorter), drop those stalled for
    ``slow_consumer_seconds``, close those silent for ``heartbeat_timeout_seconds``,
    and free the compression context of those that wrote nothing for a while;
    ``SWEEP_SLICE`` sockets a turn of the loop. Runs until
    cancelled (the app's clean-up, routes.py); the closes it started end with it."""
    closing: set[asyncio.Task[None]] = set()  # held until done: a task nobody holds may vanish
    sock: "WebSocket | None" = None
    loop = asyncio.get_running_loop()

    def closed(task: "asyncio.Task[None]") -> None:
        closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slow-consumer close failed", exc_info=task.exception())

    try:
        while True:
            limits = manager.config.limits  # the live config's, each round
            await asyncio.sleep(min(1.0, limits.heartbeat_timeout_seconds / 4))
            limits = manager.config.limits
            freed = 0
            socks = list(sockets)
            for start in range(0, len(socks), SWEEP_SLICE):
                if start:
                    await asyncio.sleep(0)  # a slice at a time: the round trips go on between
                now, heard_by = time.monotonic(), loop.time() - limits.heartbeat_timeout_seconds
                for sock in socks[start:start + SWEEP_SLICE]:
                    if sock not in sockets:
                        continue  # gone while the sweep gave the loop its turn
                    if sock.stalled(now) > limits.slow_consumer_seconds:
                        task = asyncio.ensure_future(sock.slow_consumer())
                        closing.add(task)
                        task.add_done_callback(closed)
                    else:
                        sock.check_heartbeat(heard_by)
                        freed += sock.release_if_quiet(now)
            if freed:  # so that RSS shows it: the heap's free pages go back (replay.py)
                manager.compactor.freed(freed)
            # Nothing of the round is kept through the sleep: the loop variable held the last
            # socket looked at until a later round looked at another (for ever, once none was left).
            sock = None
            del socks
    finally:
        tasks = list(closing)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
