"""The ``telnet:<uuid>`` channel protocol (SPEC 4.2-4.4), sans-I/O.

What a join or a push means, checked and turned into plain values; and the
payloads of the events the server pushes. No sockets here: the WebSocket
adapter (transport/websocket.py) calls these and the session acts on them.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any

import msgspec

from .telnet.input import split_lines, valid_gmcp_module, valid_size
from .telnet.stream import EchoMode, Event, Gmcp, Lines, Prompt, Text
from .jsonstring import escape_utf8

_TOPIC = re.compile(
    r"telnet:([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\Z")

# Error reasons (SPEC 4.1-4.4), and the ones this implementation adds for
# payloads that are not of the documented shape.
UNMATCHED_TOPIC = "unmatched topic"
UNKNOWN_GAME = "unknown game"
DENIED = "denied"
GAME_UNAVAILABLE = "game unavailable"
TOO_MANY_SESSIONS = "too many sessions"
TOO_MANY_CHANNELS = "too many channels"
UNAUTHORIZED = "unauthorized"
MESSAGE_TOO_LONG = "message too long"
RATE_LIMITED = "rate limited"
GMCP_NOT_ENABLED = "gmcp not enabled"
INVALID_MODULE = "invalid module"
INVALID_SIZE = "invalid size"
INVALID_N = "invalid n"
INVALID_PAYLOAD = "invalid payload"
UNKNOWN_EVENT = "unknown event"


class ChannelError(Exception):
    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail

    def response(self) -> dict[str, str]:
        if self.detail is None:
            return {"reason": self.reason}
        return {"reason": self.reason, "detail": self.detail}


#: A message's refs: what the browser chose (phoenix.js sends strings), or null.
Ref = str | int | None


class Message(msgspec.Struct):
    """One Phoenix message, as a serializer (transport/serializer.py) decodes it."""

    join_ref: Ref
    ref: Ref
    topic: str
    event: str
    payload: Any


def session_key(topic: str) -> str | None:
    """The session id a topic names (its UUID, lower case), or None for any other topic."""
    m = _TOPIC.match(topic)
    return m.group(1).lower() if m else None


class JoinParams(msgspec.Struct):
    game: str | None = None
    last_seq: int | None = None
    screen_reader: bool | None = False

    def __post_init__(self) -> None:
        if self.screen_reader is None:  # null is no key, as for the other two (SPEC 4.2: all optional)
            self.screen_reader = False


def parse_join(payload: Any) -> JoinParams:
    if payload is None:
        return JoinParams()
    try:
        return msgspec.convert(payload, JoinParams)
    except msgspec.ValidationError as exc:
        raise ChannelError(INVALID_PAYLOAD, str(exc)) from None


# -- pushes from the browser ---------------------------------------------------

#: The largest ``n`` a ``recv`` may carry: JavaScript's largest exact integer (2**53 - 1),
#: far more than a session's inputs, and small enough for the upgrade state (msgpack).
MAX_N = (1 << 53) - 1


class SendLines(msgspec.Struct):
    lines: list[str]
    #: The client's number for this input (SPEC 4.4), None when it sent none: sent to the
    #: game only when above the session's ``input_n``.
    n: int | None = None


class SendGmcp(msgspec.Struct):
    module: str
    data: Any  # None: the module alone (``Core.Ping``)


class SetSize(msgspec.Struct):
    width: int
    height: int


Command = SendLines | SendGmcp | SetSize


def parse_push(event: str, payload: Any, max_input_bytes: int) -> Command:
    """A browser push -> the command it asks for; ChannelError with the SPEC's reason otherwise."""
    if event not in ("recv", "gmcp", "naws"):
        raise ChannelError(UNKNOWN_EVENT)
    if not isinstance(payload, dict):
        raise ChannelError(INVALID_PAYLOAD)
    if event == "recv":
        message = payload.get("message")
        if not isinstance(message, str):
            raise ChannelError(INVALID_PAYLOAD)
        n = payload.get("n")
        if n is not None and (type(n) is not int or not 0 < n <= MAX_N):
            raise ChannelError(INVALID_N)  # bool, float, string, 0, negative, too big
        # A character is at most 4 bytes: a message that short needs no encoding to be measured.
        if len(message) * 4 > max_input_bytes and (
                len(message) > max_input_bytes or len(message.encode("utf-8", "replace")) > max_input_bytes):
            raise ChannelError(MESSAGE_TOO_LONG)
        return SendLines(split_lines(message), n)
    if event == "gmcp":
        module = payload.get("module")
        if not valid_gmcp_module(module):
            raise ChannelError(INVALID_MODULE)
        return SendGmcp(module, payload.get("data"))
    width, height = payload.get("width"), payload.get("height")
    if not valid_size(width, height):
        raise ChannelError(INVALID_SIZE)
    return SetSize(width, height)


# -- events to the browser -----------------------------------------------------

#: The names of the events a session keeps and replays (``event_payload``'s).
OUTPUT_EVENTS = ("echo", "prompt", "gmcp", "option")


class EchoPayload(msgspec.Struct):
    message: str
    seq: int
    sent_at: str


class GmcpPayload(msgspec.Struct):
    module: str
    data: Any
    seq: int
    sent_at: str


class OptionPayload(msgspec.Struct):
    echo: bool
    seq: int
    sent_at: str
    type: str = "echo"


class DisconnectPayload(msgspec.Struct, omit_defaults=True):
    reason: str
    sent_at: str
    detail: str | None = None  # "kicked": the admin's message


_stamp_cache: list[Any] = [0, ""]


def sent_at() -> str:
    """Now, as UTC ISO 8601 with microseconds and Z. (Once per game read: integer microseconds
    and %-formatting, ~30% less than a float's and an f-string's format spec.)"""
    sec, micros = divmod(time.time_ns() // 1000, 1_000_000)
    if _stamp_cache[0] != sec:
        _stamp_cache[0] = sec
        _stamp_cache[1] = datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
    return "%s%06dZ" % (_stamp_cache[1], micros)


def text_payload(data: bytes | memoryview, seq: int, stamp: str) -> bytes:
    """``Lines``' ``echo`` payload, encoded: ``EchoPayload`` of the decoded text, made
    straight from the game's bytes (a flood's text is never a str; test_jsonstring.py
    holds it to ``EchoPayload``'s encoding)."""
    return escape_utf8(data, b'{"message":', f',"seq":{seq},"sent_at":"{stamp}"}}'.encode())


def event_payload(event: Event, seq: int, stamp: str) -> tuple[str, Any]:
    """A stream event -> (Phoenix event name, payload)."""
    t = type(event)
    if t is Lines:
        return "echo", msgspec.Raw(text_payload(event.data, seq, stamp))
    if t is Text:
        return "echo", EchoPayload(event.message, seq, stamp)
    if t is Prompt:
        return "prompt", EchoPayload(event.message, seq, stamp)
    if t is Gmcp:
        return "gmcp", GmcpPayload(event.module, event.data, seq, stamp)
    if t is EchoMode:
        return "option", OptionPayload(event.echo, seq, stamp)
    raise TypeError(f"not a browser event: {event!r}")
