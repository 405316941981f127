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
offers (``send``, ``send_many``, ``replay_room``, ``backed_up``, ``config``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Sequence

import msgspec

from . import channel as ch
from .auth import may_join
from .channel import (ChannelError, DisconnectPayload, JoinParams, Message, parse_join, parse_push, sent_at,
                      session_key)
from .logs import log_event

if TYPE_CHECKING:
    from .replay import Kept
    from .session import Session

log = logging.getLogger("gateway.socket")
_encode = msgspec.json.Encoder().encode
_EMPTY = msgspec.Raw(b"{}")
_DUPLICATE = msgspec.Raw(b'{"duplicate":true}')  # a recv whose n was sent already (SPEC 4.4)


class ChannelHandle:
    """A joined ``telnet:<uuid>`` topic on one socket: what a session pushes to."""

    __slots__ = ("socket", "topic", "join_ref", "session", "_heads")

    def __init__(self, socket: Any, topic: str, join_ref: Any) -> None:
        self.socket = socket
        self.topic = topic
        self.join_ref = join_ref
        self.session: Session | None = None
        self._heads: dict[str, bytes] | None = None  # event -> the message's bytes before the payload

    def push(self, event: str, payload: bytes, read_at: float | None = None) -> None:
        self.socket.send(self._frame(event, payload), read_at)

    def push_many(self, events: "Sequence[Kept]", read_at: float | None = None) -> None:
        """The events of one game read, in order: one ``send`` for all their frames."""
        heads = self._heads
        frame = self._frame
        frames = []
        append = frames.append
        for k in events:
            head = heads.get(k.event) if heads is not None else None
            append(b"".join((head, k.payload, b"]")) if head is not None else frame(k.event, k.payload))
        self.socket.send_many(frames, read_at, now=True)

    def _frame(self, event: str, payload: bytes) -> bytes:
        heads = self._heads
        head = heads.get(event) if heads is not None else None
        if head is None:
            head = self.socket.serializer.push_head(self.join_ref, self.topic, event)
            if head is None:  # a format with the payload elsewhere (V1): encode each one
                return self.socket.serializer.encode(self.join_ref, None, self.topic, event, msgspec.Raw(payload))
            if heads is None:
                heads = self._heads = {}
            heads[event] = head
        return b"".join((head, payload, b"]"))

    @property
    def backed_up(self) -> bool:
        return self.socket.backed_up

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
        sock.send(sock.serializer.encode(self.join_ref, self.join_ref, self.topic, "phx_close", _EMPTY))


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
    _tasks: "set[asyncio.Task[Any]] | None"

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
            log_event(log, logging.INFO, "join_denied", "join denied", ip=self.client_ip)
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
        task = asyncio.ensure_future(self._join_when_open(msg, params, session, resumed=not created))
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._join_done)

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
                response: "dict[str, Any]", resumed: bool) -> "tuple[bytes, list[bytes]]":
        """A join's ok reply (``response``, with ``replayed`` and ``gap`` when ``resumed``) and
        the frames of its replay, which always fit the outbox after the reply.

        The buffer is first cut to the live ``replay_bytes`` (a reload or an upgrade may have
        lowered it: SPEC 6.1 item 4). Room is what the outbox bound leaves once what is queued,
        and a read of each of the socket's games, are counted; a replay that does not fit (a
        browser with a huge join_ref, an outbox already full) cuts the buffer further, by the
        SPEC 6 rule (the cut events' latest state stays), until it fits: the reply is never lost
        to an overflow.
        """
        buffer = session.replay
        config = self.config
        budget = config.sessions.replay_bytes
        # The reply's size at most (its refs and topic are the browser's: up to a frame each).
        reply_bytes = len(self.serializer.reply(msg.join_ref, msg.ref, msg.topic, "ok",
                                                {**response, "replayed": 1 << 40, "gap": False}))
        room = self.replay_room() - reply_bytes
        while True:
            buffer.trim(budget)
            replay, gap = buffer.since(last_seq)
            frames = [handle._frame(k.event, k.payload) for k in replay]
            size = sum(map(len, frames))
            if size <= room or budget == 0:
                break
            budget = min(budget // 2, budget * max(room, 0) // size)
        if frames and size > room:
            # Nothing kept is left, and still too much (the latest state of many modules, a
            # join_ref of kilobytes): the newest of it that fits.
            keep = len(frames)
            while keep and size > room:
                keep -= 1
                size -= len(frames[-keep - 1])
            replay, frames = replay[len(replay) - keep:], frames[len(frames) - keep:]
            gap = True
        if budget < config.sessions.replay_bytes:
            log.info("socket %s: replay cut to fit the outbox (%d bytes left)", self.client_ip, room)
        if resumed:
            response["replayed"] = len(replay)
            response["gap"] = gap
        return self.serializer.reply(msg.join_ref, msg.ref, msg.topic, "ok", response), frames

    def _attach(self, msg: Message, params: JoinParams, session: "Session", resumed: bool) -> None:
        """Answer the join ok, replay, and attach (or, the session having just ended, pass its end on)."""
        topic = msg.topic
        handle = ChannelHandle(self, topic, msg.join_ref)
        self.channels[topic] = handle
        response: dict[str, Any] = {"game": session.game.name, "resumed": resumed, "input_n": session.input_n}
        reply, frames = self._replay(handle, msg, session, (params.last_seq or 0) if resumed else 0,
                                     response, resumed)
        self.send(reply)
        self.manager.metrics.joins.labels("resumed" if resumed else "ok").inc()
        self.send_many(frames)
        if session.ended:  # the game hung up as the join came (its text, then the disconnect), or a kick
            handle.end(session.end_reason or "closed by game", session.end_detail)
            return
        handle.session = session
        session.attach(handle)
