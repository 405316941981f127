"""One server-side WebSocket connection after its handshake, sans-I/O (RFC 6455).

The state machine of the connection itself, as wsproto's ``Connection`` is:
bytes in (``receive_data``), events out (``next_event``), and the bytes of
what the server sends (``send``, ``pong``, ``close``) handed back for the
caller to write. No socket, no asyncio, no clock: the asyncio adapter
(websocket.py) owns the transport, the outbox and every timer. The frame
layer under it is frames.py (``FrameReader``, ``FrameEncoder``).

Its life is one field, ``state``:

=============== ==================================== ==========================================
state           how it gets there                    what it does then
=============== ==================================== ==========================================
CONNECTING      made, before the 101 is written      holds what the peer sends (no events yet)
OPEN            ``start`` (the 101 is written)       events both ways
LOCAL_CLOSING   ``close``: our close frame           reads only the peer's close frame (others
                                                     are dropped, one ``DROPPED`` event each);
                                                     sends nothing more
REMOTE_CLOSING  the peer's close frame came, or its  no events; ``close`` answers it (with the
                bytes broke the protocol             frame's code, or the ``FrameError``'s:
                (``next_event`` raised               RFC 6455 7.1.7, failing the connection)
                ``FrameError``)
CLOSED          both close frames (or ours after a   no events, nothing to send
                protocol error), or ``fail``: the
                transport is gone
=============== ==================================== ==========================================

Events are tuples, as the reader makes them (a round trip makes no object of
its own): ``(TEXT, str)``, ``(BINARY, bytes)``, ``(PING, bytes)``, ``(PONG, bytes)``
(unasked: the gateway sends no pings on the Phoenix endpoint; the caller drops it, but
counts it as work done), ``(CLOSE, code)`` (``NO_STATUS`` when the frame had none) and
``DROPPED``: a frame read and dropped while closing. A call does one frame's work whatever
the state, so a caller that bounds the events it takes a turn bounds its work: a peer that
floods while we wait for its close frame (a slow consumer, say) must not get 8 MB of
frames dropped in one call while every other socket waits (issue 17's soak).
"""

from __future__ import annotations

import enum
from typing import Any, Iterable

from .frames import CLOSE, PONG, FrameEncoder, FrameError, FrameReader, close_frame, control_frame


class State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    LOCAL_CLOSING = "local closing"
    REMOTE_CLOSING = "remote closing"
    CLOSED = "closed"


#: The members by name, for the hot paths: on Python 3.11 reading one off its
#: class (``State.OPEN``) takes ``EnumType.__getattr__``'s slow path (0.2 us here; a
#: round trip reads about twenty, docs/performance.md 1.9). Unpacking fails loudly
#: if a member is added and not named here.
CONNECTING, OPEN, LOCAL_CLOSING, REMOTE_CLOSING, CLOSED = State


#: The states in which our close frame may still be sent.
#: The event of a frame read and dropped while closing (its opcode is none of RFC 6455's).
DROPPED_FRAME = -1
DROPPED = (DROPPED_FRAME, None)

_MAY_CLOSE = frozenset((CONNECTING, OPEN, REMOTE_CLOSING))


class Connection:
    """One WebSocket connection (see the module's docstring)."""

    __slots__ = ("state", "reader", "encoder")

    def __init__(self, max_size: int) -> None:
        self.state = CONNECTING
        self.reader = FrameReader(max_size)
        self.encoder = FrameEncoder()  # start() makes the one for the agreed permessage-deflate

    def start(self, deflate: "tuple[int, bool] | None" = None) -> None:
        """The 101 is written with ``deflate`` (``frames.negotiate_deflate``'s answer) or none."""
        if self.state is CONNECTING:
            self.state = OPEN
            self.encoder = FrameEncoder(deflate)
            self.reader.deflate = deflate is not None

    @property
    def closed_for_sending(self) -> bool:
        """Whether our close frame is out (or the connection failed): nothing more is written."""
        return self.state is LOCAL_CLOSING or self.state is CLOSED

    # -- incoming ----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        self.reader.feed(data)

    def next_event(self) -> "tuple[int, Any] | None":
        """The peer's next event, or None until more bytes come (always None but in OPEN and LOCAL_CLOSING).

        Raises ``FrameError`` (its ``code`` is the close code, RFC 6455 7.1.7) for bytes that
        break the protocol: no event follows; ``close`` with that code is the last frame.
        """
        state = self.state
        if state is OPEN:
            try:
                event = self.reader.next()
            except FrameError:
                self.state = REMOTE_CLOSING
                raise
            if event is not None and event[0] == CLOSE:
                self.state = REMOTE_CLOSING
                return CLOSE, event[1][0]
            return event
        if state is LOCAL_CLOSING:
            # Our close frame is out: the peer's answer is the one frame that matters now.
            try:
                event = self.reader.next()
            except FrameError:
                self.state = CLOSED
                raise
            if event is None:
                return None
            if event[0] == CLOSE:
                self.state = CLOSED
                return CLOSE, event[1][0]
            return DROPPED
        return None

    # -- outgoing ----------------------------------------------------------------

    def send(self, messages: Iterable[bytes]) -> "list[bytes]":
        """The pieces of one text frame per message, for one ``writelines`` (empty once closing)."""
        if self.closed_for_sending:
            return []
        return self.encoder.encode(messages)

    @staticmethod
    def pong(payload: bytes) -> bytes:
        """The answer to a ping with ``payload`` (written with the outbox, in order)."""
        return control_frame(PONG, payload)

    def close(self, code: int, reason: bytes = b"") -> bytes:
        """Our close frame, the first time (b"" after): it starts the closing handshake, or,
        after the peer's close frame, ends it (RFC 6455 5.5.1: answered with its code)."""
        state = self.state
        if state not in _MAY_CLOSE:
            return b""
        self.state = CLOSED if state is REMOTE_CLOSING else LOCAL_CLOSING
        self.reader.discard = True  # the peer's messages are dropped from now on: not inflated
        return close_frame(code, reason)

    def fail(self) -> None:
        """The transport under it is gone: nothing more in or out."""
        self.state = CLOSED

    def release(self) -> int:
        """Let the deflate context go (a quiet socket); about how many bytes that freed."""
        return self.encoder.release()
