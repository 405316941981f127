"""The Phoenix socket's routing (SPEC 4.1-4.4): each message to its channel, as Phoenix's
``Socket`` routes topics to channels.

The WebSocket adapter (transport/websocket.py) reads the browser's frames and
decodes each with the serializer; ``ChannelRouter.route`` takes the message
from there: heartbeats are answered, a ``phx_join`` of a ``telnet:<uuid>``
topic is checked (topic, limits, deny list, token, game) and attached to its
session, new or resumed, with the replay (SPEC 6); ``phx_leave`` ends the
session; every other push is parsed (channel.py) and executed by the session,
and each message with a ref is answered. A join of an open session is done at
once, in order with the frames around it; only a join that must wait for a
game connection runs on (``_join_when_open``).

``ChannelHandle`` is one joined topic on a socket: the viewer its session
pushes events to, framed once per event name (the message's head is kept).

``ChannelRouter`` is a part of the socket class (transport/websocket.py's
``PhoenixSocket``), not an object of its own (no memory per socket): it keeps
no state but the socket's and reaches the socket through what the adapter
offers (``send``, ``send_many``, ``replay_room``, ``backed_up``, ``config``, ``sending``,
``_resume_reading``).
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from itertools import accumulate, repeat
from operator import add, attrgetter
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import msgspec

from . import channel as ch
from .auth import may_join
from .channel import (OUTPUT_EVENTS, ChannelError, DisconnectPayload, JoinParams, Message, parse_join,
                      parse_push, sent_at, session_key)
from .logs import log_refusal

if TYPE_CHECKING:
    from .replay import Kept, Replay
    from .session import Session

log = logging.getLogger("gateway.socket")
_encode = msgspec.json.Encoder().encode
_EMPTY = msgspec.Raw(b"{}")
_DUPLICATE = msgspec.Raw(b'{"duplicate":true}')  # a recv whose n was sent already (SPEC 4.4)
_EVENT = attrgetter("event")
_PAYLOAD = attrgetter("payload")
_TAILS = repeat(b"]")  # endless: zip() takes one per frame
#: Events of a join's replay framed and queued in one callback of the loop; the rest follow a
#: slice a turn (``ChannelRouter._replay_rest``), the other players' round trips going on
#: between. A full default buffer of small events is ~13,500 of them: in one callback that held
#: the loop ~17-30 ms (docs/performance.md 1.19); a slice of 1,024 (with at most one more block
#: decompressed, ~650 events) is a few hundred microseconds, and a reconnect's few missed
#: events still go out with the reply, in one write.
REPLAY_SLICE = 1024
#: The longest head (the bytes before a push's payload: the join_ref and topic, and the event's
#: name) a channel keeps, one per event name, to frame its pushes without encoding them. A
#: phoenix.js head is ~70 bytes; a channel whose join_ref is longer (the browser's choice, up to
#: a frame) encodes its head with each push, as V1 does, and keeps none: it held one a name (four
#: to five copies of a 60 KB join_ref, ~1.1 MB a socket of four channels, against ~26 KB).
KEPT_HEAD_BYTES = 512


class ChannelHandle:
    """A joined ``telnet:<uuid>`` topic on one socket: what a session pushes to.

    While its join's replay is still going out (``held`` is a list), every frame of the
    channel (the game's new events, a ``disconnect``, ``phx_close``) waits behind it, in
    order, and ``backed_up`` holds the game: ``replayed`` sends them once the replay is queued.
    """

    __slots__ = ("socket", "topic", "join_ref", "session", "_heads", "held")

    def __init__(self, socket: Any, topic: str, join_ref: Any) -> None:
        self.socket = socket
        self.topic = topic
        self.join_ref = join_ref
        self.session: Session | None = None
        self._heads: dict[str, bytes] | None = None  # event -> the message's bytes before the payload
        self.held: list[bytes] | None = None  # the channel's frames after a replay under way

    def push(self, event: str, payload: bytes, read_at: float | None = None) -> None:
        self._send([self._frame(event, payload)], read_at)

    def push_many(self, events: "Sequence[Kept]", read_at: float | None = None) -> None:
        """The events of one game read, in order: one ``send`` for all their frames."""
        self._send(self.frames(events), read_at, now=True)

    def _send(self, frames: "list[bytes]", read_at: float | None = None, now: bool = False) -> None:
        if self.held is not None:
            self.held += frames
        else:
            self.socket.send_many(frames, read_at, now=now)

    def replayed(self) -> None:
        """The join's replay is queued: what waited behind it follows, and the game is read
        again (unless the socket is behind)."""
        held, self.held = self.held, None
        if held:
            self.socket.send_many(held)
        if self.session is not None and not self.socket.backed_up:
            self.session.resume_reading()

    def frames(self, events: "Sequence[Kept]") -> "list[bytes]":
        """The frames of ``events``, in order: the head of each event name with the payload,
        joined in C (no Python step per event)."""
        heads = self._heads
        if heads is not None:
            try:
                return list(map(b"".join, zip(map(heads.__getitem__, map(_EVENT, events)),
                                              map(_PAYLOAD, events), _TAILS)))
            except KeyError:  # an event name not framed yet on this channel
                pass
        for name in set(map(_EVENT, events)):
            self._frame(name, b"")  # makes (and keeps) its head
        if self._heads is None:  # a format with the payload elsewhere (V1), or a long head: each one
            return self._each(events)
        return self.frames(events)

    def _each(self, events: "Sequence[Kept]") -> "list[bytes]":
        """The frames of ``events`` framed one by one (V1, or a head too long to keep), until they
        pass what the outbox may still take: then the browser is a slow consumer (``send_many``
        finds them over the bound), so the rest would be dropped anyway. Their join_ref is the
        browser's choice: a read of 500 GMCP messages made 500 frames of a 60 KB join_ref, 30 MB,
        before the bound was checked. Only frames that go straight to the outbox are stopped
        (a replay's are sized to fit; those held behind one are sent, and checked, later)."""
        encode = self._frame
        if self.held is not None:
            return [encode(k.event, k.payload) for k in events]
        room = self.socket.outbox_room()
        frames = []
        for k in events:
            frame = encode(k.event, k.payload)
            frames.append(frame)
            room -= len(frame)
            if room < 0:
                break
        return frames

    def envelope(self, name: str) -> int:
        """The bytes of an ``name`` frame around its payload."""
        return len(self._frame(name, b""))

    def _frame(self, event: str, payload: bytes) -> bytes:
        heads = self._heads
        head = heads.get(event) if heads is not None else None
        if head is None:
            head = self.socket.serializer.push_head(self.join_ref, self.topic, event)
            if head is None:  # a format with the payload elsewhere (V1): encode each one
                return self.socket.serializer.encode(self.join_ref, None, self.topic, event, msgspec.Raw(payload))
            if len(head) - len(event) > KEPT_HEAD_BYTES:
                # Not kept (KEPT_HEAD_BYTES); the event names are plain ASCII, so a channel
                # keeps all its heads or none, and ``frames`` encodes each one.
                return b"".join((head, payload, b"]"))
            if heads is None:
                heads = self._heads = {}
            heads[event] = head
        return b"".join((head, payload, b"]"))

    @property
    def backed_up(self) -> bool:
        return self.held is not None or self.socket.backed_up

    def release(self, linger: bool = True) -> None:
        """The browser side goes away without leaving: the session lingers."""
        session, self.session = self.session, None
        if session is not None:
            session.detach(self, linger)

    def end(self, reason: str, detail: str | None = None) -> None:
        """The session ended: ``disconnect``, then ``phx_close``."""
        self.session = None
        self.push("disconnect", _encode(DisconnectPayload(reason, sent_at(), detail)))
        self.close()

    def close(self) -> None:
        """``phx_close`` (ref = join_ref, as Phoenix sends it) and forget the topic."""
        sock = self.socket
        if sock.channels.get(self.topic) is self:
            del sock.channels[self.topic]
        self._send([sock.serializer.encode(self.join_ref, self.join_ref, self.topic, "phx_close", _EMPTY)])


class ChannelRouter:
    """The Phoenix routing of one socket (see the module's docstring): a part of ``PhoenixSocket``."""

    __slots__ = ()

    # What the socket provides (transport/websocket.py).
    serializer: Any
    manager: Any
    client_ip: str
    client_port: int
    claims: Any
    channels: "dict[str, ChannelHandle]"
    _joining: "dict[str, Session]"
    _keep_task: Any  # runs a coroutine as a task of the socket's
    _replays: int  # joins' replays still going out (``_replay_rest``)
    _promised: int  # their frame bytes not queued yet (at most)

    def route(self, msg: Message) -> bool:
        """One message from the browser, decoded: a heartbeat, a join, a leave or a push.

        True when its reply may wait for the game's answer (a push that went to the game:
        the socket then writes the two together, websocket.py's REPLY_HOLD)."""
        s = self.serializer
        topic, event, ref = msg.topic, msg.event, msg.ref
        if topic == "phoenix":
            if ref is None:
                return False  # nothing to answer (any message resets the heartbeat timer)
            if event == "heartbeat":
                self.send(s.reply(None, ref, "phoenix", "ok", _EMPTY))
            else:
                self.send(s.error(msg.join_ref, ref, topic, ch.UNKNOWN_EVENT))
            return False
        if event == "phx_join":
            self.join(msg)
            return False
        if event == "phx_leave" and topic in self._joining:
            self.leave_connecting(msg)
            return False
        handle = self.channels.get(topic)
        if handle is None or handle.session is None:
            if ref is not None:
                self.send(s.error(msg.join_ref, ref, topic, ch.UNMATCHED_TOPIC))
            return False
        if event == "phx_leave":
            self.leave(handle, msg)
            return False
        try:
            command = parse_push(event, msg.payload, self.manager.config.limits.max_input_bytes)
            duplicate = handle.session.execute(command)
        except ChannelError as exc:
            if ref is not None:
                self.send(s.reply(handle.join_ref, ref, topic, "error", exc.response()))
            return False
        if ref is None:
            return False
        self.send(s.reply(handle.join_ref, ref, topic, "ok", _DUPLICATE if duplicate else _EMPTY))
        return not duplicate

    def leave(self, handle: ChannelHandle, msg: Message) -> None:
        session, handle.session = handle.session, None
        if session is not None:
            session.leave(handle)
        if msg.ref is not None:
            self.send(self.serializer.reply(handle.join_ref, msg.ref, msg.topic, "ok", _EMPTY))
        handle.close()

    def leave_connecting(self, msg: Message) -> None:
        """``phx_leave`` while the join still waits for the game: the session ends at once.

        The leave is answered ok, then ``phx_close``; the join then gets
        ``game unavailable`` with detail ``left`` (SessionManager.wait_open, or
        ``_join_when_open`` when the game connection opened before the join resumed). The
        join is no longer under way from here: a join of the topic (or of another) may follow
        at once, in the same read, before the waiting one has been told.
        """
        self._joining.pop(msg.topic).leave()
        if msg.ref is not None:
            self.send(self.serializer.reply(msg.join_ref, msg.ref, msg.topic, "ok", _EMPTY))
        self.send(self.serializer.encode(msg.join_ref, msg.join_ref, msg.topic, "phx_close", _EMPTY))

    def _refuse(self, msg: Message, error: ChannelError) -> None:
        self.manager.metrics.joins.labels(error.reason).inc()
        self.send(self.serializer.reply(msg.join_ref, msg.ref, msg.topic, "error", error.response()))

    def join(self, msg: Message) -> None:
        """``phx_join``: checked, then attached at once, or once the game connection is open."""
        topic = msg.topic
        key = session_key(topic)
        if key is None:
            return self._refuse(msg, ChannelError(ch.UNMATCHED_TOPIC))
        if topic in self._joining:
            return self._refuse(msg, ChannelError(ch.TOO_MANY_CHANNELS, "a join of this topic is under way"))
        previous = self.channels.get(topic)
        if previous is None and len(self.channels) + len(self._joining) >= self.config.limits.max_channels_per_socket:
            return self._refuse(msg, ChannelError(ch.TOO_MANY_CHANNELS))
        try:
            params = parse_join(msg.payload)
        except ChannelError as exc:
            return self._refuse(msg, exc)
        security = self.config.security
        if security.is_denied(self.client_ip):
            log_refusal(log, "join_denied", "join denied", ip=self.client_ip)  # a client can ask as often as it likes
            return self._refuse(msg, ChannelError(ch.DENIED, security.deny_message))
        if previous is not None:
            # Phoenix: a second join of a joined topic replaces the first channel.
            previous.release(linger=False)  # this join takes the session (or, refused, ends it)
            previous.close()

        sub = self.claims.get("sub")
        session = self.manager.get(key) or self.manager.connecting(key)
        created = session is None
        if session is None:
            game = self.config.game(params.game)
            if game is None:
                return self._refuse(msg, ChannelError(ch.UNKNOWN_GAME))
            if not may_join(self.claims, game.name):
                return self._refuse(msg, ChannelError(ch.UNAUTHORIZED))
            try:
                session = self.manager.start(key, game, params, self.client_ip, sub, self.client_port)
            except ChannelError as exc:
                return self._refuse(msg, exc)
        elif session.sub != sub or not may_join(self.claims, session.game.name):
            # The same checks whether the session is open or still connecting (SPEC 4.1).
            if previous is not None:
                session.linger()
            return self._refuse(msg, ChannelError(ch.UNAUTHORIZED))
        if session.is_open:
            self._attach(msg, params, session, resumed=True)
            return
        self._joining[topic] = session
        self._keep_task(self._join_when_open(msg, params, session, resumed=not created))

    async def _join_when_open(self, msg: Message, params: JoinParams, session: "Session",
                              resumed: bool) -> None:
        try:
            await self.manager.wait_open(session)
        except ChannelError as exc:
            return self._refuse(msg, exc)
        finally:
            # A phx_leave of this join (leave_connecting) took it out of ``_joining`` already.
            left = self._joining.get(msg.topic) is not session
            if not left:
                del self._joining[msg.topic]
        if left:
            # The leave came after the game connection opened, before this join resumed: it
            # ended the session and was answered (ok, phx_close) as the leave of a join still
            # connecting; this join is answered as that one's (not ok, then a "disconnect").
            return self._refuse(msg, ChannelError(ch.GAME_UNAVAILABLE, "left"))
        self._attach(msg, params, session, resumed)

    def _replay(self, handle: ChannelHandle, msg: Message, session: "Session", last_seq: int,
                response: "dict[str, Any]", resumed: bool) -> "tuple[bytes, Replay, int]":
        """A join's ok reply (``response``, with ``replayed`` and ``gap`` when ``resumed``), its
        replay (not yet framed: ``_attach`` sends it a slice at a time) and the replay's frame
        bytes at most; the frames always fit the outbox after the reply.

        The buffer is first cut to the live ``replay_bytes`` (a reload or an upgrade may have
        lowered it: SPEC 6.1 item 4). Room is what the outbox bound leaves once what is queued,
        the replays still going out, and a read of each of the socket's games, are counted; a
        replay that does not fit (a browser with a huge join_ref, an outbox already full) cuts
        the buffer further, by the SPEC 6 rule (the cut events' latest state stays), until it
        fits: the reply is never lost to an overflow. Whether it fits is first told from the
        kept sizes alone (each event's frame at most the largest envelope of an event name);
        only a replay that may not fit has its blocks decompressed to be measured exactly.
        """
        buffer = session.replay
        config = self.config
        budget = config.sessions.replay_bytes
        # The reply's size at most (its refs and topic are the browser's: up to a frame each).
        reply_bytes = len(self.serializer.reply(msg.join_ref, msg.ref, msg.topic, "ok",
                                                {**response, "replayed": 1 << 40, "gap": False}))
        room = self.replay_room() - reply_bytes
        envelopes = {name: handle.envelope(name) for name in OUTPUT_EVENTS}
        widest = max(envelopes.values())
        sizes: list[int] = []  # each event's frame, once measured
        while True:
            buffer.trim(budget)
            replay = buffer.replay(last_seq)
            size = replay.size + replay.count * widest
            if size > room:  # may not fit: measured
                events = replay.events()
                sizes = list(map(add, map(envelopes.__getitem__, map(_EVENT, events)),
                                 map(len, map(_PAYLOAD, events))))
                size = sum(sizes)
            if size <= room or budget == 0:
                break
            budget = min(budget // 2, budget * max(room, 0) // size)
        if replay.count and size > room:
            # Nothing kept is left, and still too much (the latest state of many modules, a
            # join_ref of kilobytes): the newest of it that fits.
            keep = bisect_right(list(accumulate(reversed(sizes))), room)
            size = sum(sizes[len(sizes) - keep:])
            replay = replay.newest(keep)
        if budget < config.sessions.replay_bytes:
            log_refusal(log, "replay_cut", f"socket {self.client_ip}: replay cut to fit the outbox ({room} bytes left)")
        if resumed:
            response["replayed"] = replay.count
            response["gap"] = replay.gap
        return self.serializer.reply(msg.join_ref, msg.ref, msg.topic, "ok", response), replay, size

    def _attach(self, msg: Message, params: JoinParams, session: "Session", resumed: bool) -> None:
        """Answer the join ok, replay, and attach (or, the session having just ended, pass its end on).

        The replay's first ``REPLAY_SLICE`` events go with the reply; the rest, if any, a slice
        a turn of the loop (``_replay_rest``). Meanwhile the channel's later frames wait behind
        it (``ChannelHandle.held``), the game is not read, nor is the browser (its next frame
        is handled once the replay is queued, as when it was queued at once), and the
        replay's bytes still to come are counted as queued (``replay_room``)."""
        topic = msg.topic
        handle = ChannelHandle(self, topic, msg.join_ref)
        self.channels[topic] = handle
        response: dict[str, Any] = {"game": session.game.name, "resumed": resumed, "input_n": session.input_n}
        reply, replay, size = self._replay(handle, msg, session, (params.last_seq or 0) if resumed else 0,
                                           response, resumed)
        self.send(reply)
        self.manager.metrics.joins.labels("resumed" if resumed else "ok").inc()
        chunks = replay.chunks(REPLAY_SLICE)
        first = next(chunks, None)
        if first is not None:
            self.send_many(handle.frames(first))
        if replay.count > REPLAY_SLICE and self.sending():
            handle.held = []
            self._replays += 1
            self._promised += size
            self._keep_task(self._replay_rest(handle, chunks, size))
        if session.ended:  # the game hung up as the join came (its text, then the disconnect), or a kick
            handle.end(session.end_reason or "closed by game", session.end_detail)
            return
        handle.session = session
        session.attach(handle)

    async def _replay_rest(self, handle: ChannelHandle, chunks: "Iterator[list[Kept]]", size: int) -> None:
        """The rest of a join's replay, a slice (``REPLAY_SLICE`` events) a turn of the loop, then
        the channel's frames that waited; stopped by the socket's end (cancelled) or seal."""
        try:
            for events in chunks:
                await asyncio.sleep(0)
                if handle.held is None or not self.sending():
                    return  # a slow consumer (its queue dropped) or the socket's end: no more
                frames = handle.frames(events)
                sent = sum(map(len, frames))
                self._promised -= sent
                size -= sent
                self.send_many(frames)
        finally:
            self._promised -= size
            self._replays -= 1
            if handle.held is not None:
                handle.replayed()
            self._resume_reading()
