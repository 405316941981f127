"""The MUD Standards WebSocket subprotocols (SPEC 9.2-9.5), sans-I/O.

``choose`` picks the subprotocol of a handshake. ``GameFrames`` turns the
telnet stream's events (telnet/stream.py) into the frames of ``terminal``,
``gmcp`` or ``json``; ``ClientFrames`` turns a client's frame into the
command it asks for (channel.py's ``SendLines``, ``SendGmcp``, ``SetSize``),
or raises ``FrameError`` (frames.py) with the close code SPEC 9.5 gives it. The
``telnet`` relay's bytes are relay.py's.

A frame is ``(opcode, payload)`` with RFC 6455's opcodes: text (game output,
input) is BINARY, structured data (GMCP, the json envelope) is TEXT.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any, Iterable, Sequence

import msgspec

from ..channel import Command, SendGmcp, SendLines, SetSize
from ..nesting import too_deep
from ..telnet.input import split_lines, valid_gmcp_module, valid_size
from ..telnet.stream import EchoMode, Gmcp, Lines, Prompt, Text, utf8_text
from ..transport.frames import BINARY, TEXT, FrameError

SUFFIX = ".mudstandards.org"

#: A frame: (RFC 6455 opcode, payload).
Frame = tuple[int, bytes]

# Close codes (RFC 6455 7.4.1) for bad input (SPEC 9.5).
UNSUPPORTED_DATA = 1003
INVALID_DATA = 1007
TOO_BIG = 1009

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_NAWS = struct.Struct("!HH")


def full_name(short: str) -> str:
    """``terminal`` -> ``terminal.mudstandards.org``."""
    return short + SUFFIX


def choose(offered: Iterable[str], served: Sequence[str]) -> str | None:
    """The short name of the first subprotocol in the client's list (its order, SPEC 9.2) that
    is served, matched exactly; None when there is none. ``offered`` holds the
    ``Sec-WebSocket-Protocol`` headers as sent (comma-separated lists)."""
    for header in offered:
        for entry in header.split(","):
            entry = entry.strip()
            if entry.endswith(SUFFIX) and entry[:-len(SUFFIX)] in served:
                return entry[:-len(SUFFIX)]
    return None


def gmcp_text(data: Any) -> str:
    """A GMCP event's data as the text after the package name: the JSON the game sent
    (``msgspec.Raw``), JSON made again from parsed data, the raw string of data that
    was not JSON, and ``""`` when the game sent none (SPEC 9.3)."""
    if data is None:
        return ""
    if type(data) is msgspec.Raw:
        return bytes(data).decode("utf-8", "replace")
    if type(data) is str:
        return data  # the game's text that is not JSON (stream.parse_gmcp)
    return _encode(data).decode()


def _terminal_text(message: str) -> bytes:
    """Game text as a terminal wants it: line ends as CRLF, UTF-8."""
    return message.replace("\n", "\r\n").encode("utf-8", "surrogatepass")


class GameFrames:
    """Game events -> frames of one of ``terminal``, ``gmcp``, ``json`` (SPEC 9.3)."""

    __slots__ = ("subprotocol",)

    def __init__(self, subprotocol: str) -> None:
        self.subprotocol = subprotocol

    def frames(self, events: Iterable[Any]) -> list[Frame]:
        """The frames of ``events``, in order: one BINARY frame per text event (so a prompt
        ends its frame), one TEXT frame per GMCP message (``gmcp``, ``json``) and per
        echo change and prompt (``json``). Events the subprotocol has no frame for are
        left out (GMCP under ``terminal``, echo under ``terminal`` and ``gmcp``)."""
        out: list[Frame] = []
        append = out.append
        proto = self.subprotocol
        for ev in events:
            t = type(ev)
            if t is Lines:
                append((BINARY, _terminal_text(utf8_text(ev.data))))
            elif t is Text:
                if ev.message:
                    append((BINARY, _terminal_text(ev.message)))
            elif t is Prompt:
                if proto == "json":
                    append((TEXT, _envelope("prompt", "", ev.message)))
                elif ev.message:
                    append((BINARY, _terminal_text(ev.message)))
            elif t is Gmcp:
                if proto == "gmcp":
                    text = gmcp_text(ev.data)
                    append((TEXT, (f"{ev.module} {text}" if text else ev.module).encode()))
                elif proto == "json":
                    append((TEXT, _envelope("gmcp", ev.module, gmcp_text(ev.data))))
            elif t is EchoMode:
                if proto == "json":  # echo False: the game said WILL ECHO (hide input)
                    append((TEXT, _envelope("telnet_1", "ECHO", "WONT" if ev.echo else "WILL")))
            # CompressionError is the session's (it ends it); anything else has no frame here.
        return out


class _Envelope(msgspec.Struct):
    proto: str
    id: str
    data: str


def _envelope(proto: str, id: str, data: str) -> bytes:
    return _encode(_Envelope(proto, id, data))


class ClientFrames:
    """A client's frames -> commands for the game under ``terminal``, ``gmcp`` or ``json`` (SPEC 9.4).

    ``command`` returns the command, None for a frame that asks for nothing (a json
    envelope of another ``proto``), or raises ``FrameError`` (SPEC 9.5).
    """

    __slots__ = ("subprotocol",)

    def __init__(self, subprotocol: str) -> None:
        self.subprotocol = subprotocol

    def command(self, opcode: int, data: "bytes | str", max_input_bytes: int) -> Command | None:
        size = len(data) if type(data) is bytes else len(data.encode("utf-8", "surrogatepass"))
        if size > max_input_bytes:
            raise FrameError(TOO_BIG, "message too long")
        if opcode == BINARY:
            try:
                text = data.decode("utf-8")  # type: ignore[union-attr]
            except UnicodeDecodeError:
                raise FrameError(INVALID_DATA, "input is not UTF-8") from None
            return SendLines(split_lines(text))
        text = data if type(data) is str else data.decode("utf-8", "replace")  # type: ignore[union-attr]
        if self.subprotocol == "terminal":
            return SendLines(split_lines(text))  # SPEC 9.4: TEXT as BINARY [E]
        if self.subprotocol == "gmcp":
            module, _, rest = text.partition(" ")
            return _gmcp(module, rest)
        return _json_command(text)


def _gmcp(module: Any, data: str) -> SendGmcp:
    """``SendGmcp`` of a package name and its data's JSON text (``""``: none)."""
    if not valid_gmcp_module(module):
        raise FrameError(INVALID_DATA, "invalid module")
    if not data.strip():
        return SendGmcp(module, None)
    if too_deep(data):  # nesting.py: kept from the parser (RecursionError) and from MSDP's encoder
        raise FrameError(INVALID_DATA, "gmcp data nested too deeply")
    try:
        return SendGmcp(module, _decode(data))
    except msgspec.DecodeError:
        raise FrameError(INVALID_DATA, "gmcp data is not JSON") from None


def _json_command(text: str) -> Command | None:
    """A json TEXT frame: ``{"proto", "id", "data"}`` (SPEC 9.4, 9.5)."""
    if too_deep(text):  # not the flat object it must be, and kept from the parser (nesting.py)
        raise FrameError(INVALID_DATA, "not a JSON object")
    try:
        envelope = _decode(text)
    except msgspec.DecodeError:
        raise FrameError(INVALID_DATA, "not JSON") from None
    if type(envelope) is not dict:
        raise FrameError(INVALID_DATA, "not a JSON object")
    proto, data, id = envelope.get("proto"), envelope.get("data"), envelope.get("id", "")
    if type(proto) is not str or type(data) is not str or type(id) is not str:
        raise FrameError(INVALID_DATA, "proto, data and id must be strings")
    if proto == "text":
        return SendLines(split_lines(data))
    if proto == "gmcp":
        return _gmcp(id, data)
    if proto == "telnet_31" and id == "NAWS":
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise FrameError(INVALID_DATA, "NAWS data is not base64") from None
        if len(raw) != 4:
            raise FrameError(INVALID_DATA, "NAWS data is not 4 bytes")
        width, height = _NAWS.unpack(raw)
        if not valid_size(width, height):
            raise FrameError(INVALID_DATA, "invalid size")
        return SetSize(width, height)
    return None  # another proto: ignored (SPEC 9.4)
