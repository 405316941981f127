"""Phoenix Channels wire format, V1 (objects) and V2 (arrays), sans-I/O.

A WebSocket text frame carries one message ``join_ref, ref, topic, event,
payload``. V2 (``vsn=2.0.0``) writes it as a JSON array in that order, V1
(``vsn=1.0.0`` or no ``vsn``) as a JSON object with those keys. Refs are
echoed back exactly as the client sent them (phoenix.js uses strings).

``decode`` returns a ``Message`` or raises ``MalformedMessage``, which still
carries the ref (and topic) when they could be read, so that the socket can
answer it with an error reply as SPEC 4.1 asks.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..channel import Message, Ref
from ..nesting import too_deep

#: The error reason for a frame that is not of the serializer's shape.
MALFORMED = "malformed message"


class MalformedMessage(Exception):
    def __init__(self, reason: str, ref: Ref = None, topic: str | None = None,
                 join_ref: Ref = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ref = ref
        self.topic = topic
        self.join_ref = join_ref


class Reply(msgspec.Struct):
    status: str
    response: Any


class _V1(msgspec.Struct):
    topic: str
    event: str
    payload: Any = msgspec.field(default_factory=dict)
    ref: Ref = None
    join_ref: Ref = None


_v2_decoder = msgspec.json.Decoder(tuple[Ref, Ref, str, str, Any])
_v1_decoder = msgspec.json.Decoder(_V1)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
#: What msgspec raises on a frame it cannot read: not JSON (or not of the shape), or
#: invalid UTF-8 inside a bytes frame. (Frames nested too deeply to parse never get
#: here: nesting.py.)
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError)


def _salvage(frame: bytes | str) -> MalformedMessage:
    """Read what can be read from a frame that is not of the serializer's shape."""
    try:
        raw = _any_decoder.decode(frame)
    except _UNREADABLE:
        return MalformedMessage("invalid JSON")
    return _malformed(raw)


def _malformed(raw: Any) -> MalformedMessage:
    ref = topic = join_ref = None
    if isinstance(raw, list):
        if len(raw) > 1 and isinstance(raw[1], (str, int)):
            ref = raw[1]
        if len(raw) > 0 and isinstance(raw[0], (str, int)):
            join_ref = raw[0]
        if len(raw) > 2 and isinstance(raw[2], str):
            topic = raw[2]
    elif isinstance(raw, dict):
        if isinstance(raw.get("ref"), (str, int)):
            ref = raw["ref"]
        if isinstance(raw.get("join_ref"), (str, int)):
            join_ref = raw["join_ref"]
        if isinstance(raw.get("topic"), str):
            topic = raw["topic"]
    return MalformedMessage(MALFORMED, ref, topic, join_ref)


# A frame nested too deeply to parse (nesting.py) is malformed; it still has its ref, topic and
# join_ref as scalars beside the payload: read them with the payload cut out. The tail (a V1
# frame's members after its payload, phoenix.js's order) is searched for: at most the four
# other members, so each comma of a payload costs a few members' scan, not one to the end
# of the frame (64 KB of `,"a":1` held the event loop 20 s).
_SCALAR = r'(?:"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+|null|true|false)'
_MEMBER = r'\s*"[^"\\]*(?:\\.[^"\\]*)*"\s*:\s*' + _SCALAR + r'\s*'
_V2_HEAD = re.compile(r'\s*\[((?:\s*' + _SCALAR + r'\s*,){0,4})', re.S)
_V1_HEAD = re.compile(r'\s*\{((?:' + _MEMBER + r',)*)\s*"payload"\s*:', re.S)
_V1_TAIL = re.compile(r'((?:,' + _MEMBER + r'){0,4})\}\s*\Z', re.S)


def _too_deep(frame: bytes | str) -> MalformedMessage:
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    if text.lstrip().startswith("["):
        head = _V2_HEAD.match(text)
        shallow = "[" + head.group(1) + "null]" if head else "null"
    else:
        head, tail = _V1_HEAD.match(text), _V1_TAIL.search(text)
        shallow = ("{" + head.group(1) + '"payload":null' + tail.group(1) + "}"
                   if head and tail and head.end() <= tail.start() else "null")
    try:
        raw = _any_decoder.decode(shallow)
    except msgspec.DecodeError:
        raw = None
    return _malformed(raw)


class Serializer:
    """One of the two Phoenix wire formats."""

    vsn: str

    def decode(self, frame: bytes | str) -> Message:
        raise NotImplementedError

    def encode(self, join_ref: Ref, ref: Ref, topic: str, event: str, payload: Any) -> bytes:
        raise NotImplementedError

    def reply(self, join_ref: Ref, ref: Ref, topic: str, status: str, response: Any) -> bytes:
        return self.encode(join_ref, ref, topic, "phx_reply", Reply(status, response))

    def push_head(self, join_ref: Ref, topic: str, event: str) -> bytes | None:
        """The bytes before the payload of every push (ref null) of ``event`` on ``topic``, when
        this format puts the payload last: ``head + payload + b"]"`` is then ``encode(...)``."""
        return None

    def error(self, join_ref: Ref, ref: Ref, topic: str, reason: str, **extra: Any) -> bytes:
        return self.reply(join_ref, ref, topic, "error", {"reason": reason, **extra})


class V2Serializer(Serializer):
    vsn = "2.0.0"

    def decode(self, frame: bytes | str) -> Message:
        if too_deep(frame):
            raise _too_deep(frame)
        try:
            join_ref, ref, topic, event, payload = _v2_decoder.decode(frame)
        except _UNREADABLE:
            raise _salvage(frame) from None
        return Message(join_ref, ref, topic, event, payload)

    def encode(self, join_ref: Ref, ref: Ref, topic: str, event: str, payload: Any) -> bytes:
        return _encoder.encode((join_ref, ref, topic, event, payload))

    def push_head(self, join_ref: Ref, topic: str, event: str) -> bytes | None:
        return _encoder.encode((join_ref, None, topic, event))[:-1] + b","


class V1Serializer(Serializer):
    vsn = "1.0.0"

    def decode(self, frame: bytes | str) -> Message:
        if too_deep(frame):
            raise _too_deep(frame)
        try:
            m = _v1_decoder.decode(frame)
        except _UNREADABLE:
            raise _salvage(frame) from None
        return Message(m.join_ref, m.ref, m.topic, m.event, m.payload)

    def encode(self, join_ref: Ref, ref: Ref, topic: str, event: str, payload: Any) -> bytes:
        return _encoder.encode(_V1(topic, event, payload, ref, join_ref))


def serializer_for(vsn: str | None) -> Serializer | None:
    """The serializer a ``vsn`` query parameter selects, or None when unknown."""
    if vsn is None or vsn.startswith("1."):
        return V1Serializer()
    if vsn.startswith("2."):
        return V2Serializer()
    return None
