"""WebSocket frames both ways (RFC 6455), permessage-deflate (RFC 7692), sans-I/O.

After the handshake the connection is the socket's own (websocket.py), not
aiohttp's: ``FrameReader`` turns the browser's bytes into whole messages, and
``FrameEncoder`` the socket's messages into frames.

**Negotiating.** ``negotiate_deflate`` answers the browser's permessage-deflate
offer (browsers always make one) in the 101, asking it for
``client_no_context_takeover``: no inflate context is kept between the
browser's messages, and an idle socket keeps no zlib state for them.

**Reading.** The browser's frames are masked, may be fragmented (control
frames between the fragments) and, with permessage-deflate, compressed (each
message inflated on its own, with a context made for it). What
breaks RFC 6455 is an error with the close code the RFC gives it:
``FrameError(1002)`` for a protocol error (an unmasked frame, reserved bits,
an unknown opcode, a continuation with no message, a fragmented or long
control frame, a length not in its shortest encoding (5.2), a bad close code),
``1007`` for a text message or close reason that is not UTF-8, ``1009`` for a
message over ``max_size`` bytes (checked at each frame's header, and after
inflating: nothing larger is ever buffered), ``1008`` for a message in more
than ``MAX_FRAGMENTS`` frames. Everything a header can tell is checked at the
header, before its payload is waited for. So what a reader holds is bounded:
the fragments so far (at most ``max_size`` bytes in at most ``MAX_FRAGMENTS``
pieces, joined once at the message's end) and the frame being read (at most
``max_size`` + 14 bytes, plus the rest of the last read); a message costs at
most ``MAX_FRAGMENTS`` frames of work however it is cut.

**Writing.** The socket writes every frame queued since its last write with one
``transport.writelines`` (one system call for all the events of a game read,
not one each); this module turns a batch of Phoenix messages into the pieces
of those frames (headers and payloads, not joined).

When the browser negotiated permessage-deflate (browsers always offer it),
each message of at least ``DEFLATE_MIN_SIZE`` bytes is compressed with one
zlib context per socket, flushed at each message's end (Z_SYNC_FLUSH, the
four trailing bytes dropped as RFC 7692 asks); shorter ones go as they are
(RSV1 clear), which the RFC allows message by message. The context is made
on first use, with a smaller window and hash than zlib's defaults: any
inflater with the negotiated (larger) window reads such a stream, and it
costs 32 KiB per socket instead of 256 KiB; and ``release`` lets it go
when the socket has been quiet a while (the next message starts a new
context: each message ends on a flushed block boundary, so the browser's
inflater reads on as if nothing happened). With
``server_no_context_takeover`` each message is flushed with Z_FULL_FLUSH,
so none refers to an earlier one. The numbers behind these defaults are in
docs/performance.md (``bench/deflate_choice.py``).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Iterable

#: zlib level 1: on MUD frames ~94% of level 6's saving for ~60% of its CPU.
DEFLATE_LEVEL = 1
#: Window bits and memLevel of the context: 2^(12+2) + 2^(5+9) = 32 KiB per socket.
DEFLATE_WBITS = 12
DEFLATE_MEM_LEVEL = 5
DEFLATE_CONTEXT_BYTES = (1 << (DEFLATE_WBITS + 2)) + (1 << (DEFLATE_MEM_LEVEL + 9))
#: Messages shorter than this go uncompressed (an ack, a heartbeat reply).
DEFLATE_MIN_SIZE = 64

_TEXT = 0x81          # FIN + text opcode
_RSV1 = 0x40          # "this message is compressed"
_TAIL = b"\x00\x00\xff\xff"
_LEN2 = struct.Struct("!BBH").pack
#: The header of an uncompressed text frame by payload length, made once (not per frame)
#: for the lengths of most lines, prompts and GMCP messages (~46 KB for the process).
_TABLED = 1024
_TEXT_HEADERS = [bytes((_TEXT, n)) for n in range(126)] + [_LEN2(_TEXT, 126, n) for n in range(126, _TABLED)]
_LEN8 = struct.Struct("!BBQ").pack
_CLOSE_CODE = struct.Struct("!H")

# Opcodes (RFC 6455 5.2).
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
#: A close frame without a code (RFC 6455 7.1.5: "no status code was present").
NO_STATUS = 1005
#: Offers of a ``Sec-WebSocket-Extensions`` list looked at, and parameters in each: a browser
#: makes one offer of one or two. An offer past them is declined (RFC 7692 5: a server may
#: always decline; the upgrade goes on without compression), so the answer takes a few
#: microseconds whatever the list holds (a megabyte of offers took 25-90 ms of the loop, a
#: Python step a parameter).
MAX_DEFLATE_OFFERS = 8
MAX_DEFLATE_PARAMS = 8
#: Most frames one message may come in (its first and its continuations); more is
#: closed 1008. Browsers send a message in one frame; 128 lets any client cut the
#: largest message (``max_frame_bytes``, 64 KiB) in 512-byte pieces, and bounds what a
#: message of empty or 1-byte fragments can make the reader hold and do.
MAX_FRAGMENTS = 128


def frame_header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return _LEN2(first, 126, length)
    return _LEN8(first, 127, length)


def negotiate_deflate(offers: str | None) -> "tuple[str, tuple[int, bool]] | None":
    """The browser's ``Sec-WebSocket-Extensions`` -> (our answer, (our window bits, no
    context takeover)) for the first permessage-deflate offer we can take (RFC 7692 5,
    7.1), or None: no compression.

    The answer always holds ``client_no_context_takeover`` (7.1.1.2: a server may
    include it): the browser then compresses each message on its own, so each one
    is inflated with a context made for it and freed after, and an idle socket keeps
    no inflate context. Our side compresses with at most 2^12 of window (any
    inflater reads that), less when the offer says ``server_max_window_bits``. An
    offer with an unknown, repeated or invalid parameter is declined (5, 7.1).
    """
    if not offers:
        return None
    for offer in offers.split(",", MAX_DEFLATE_OFFERS)[:MAX_DEFLATE_OFFERS]:
        pieces = offer.split(";", MAX_DEFLATE_PARAMS + 1)
        if len(pieces) > MAX_DEFLATE_PARAMS + 1:
            continue
        params = [p.strip() for p in pieces]
        if params[0] != "permessage-deflate":
            continue
        seen: set[str] = set()
        wbits, notakeover, ok = DEFLATE_WBITS, False, True
        answer = ["permessage-deflate", "client_no_context_takeover"]
        for p in params[1:]:
            name, eq, value = (x.strip() for x in p.partition("="))
            value = value.strip('"')
            # 1*DIGIT (7.1.2), ASCII: str.isdigit alone takes a superscript two, which int()
            # refuses (the upgrade was answered 500), and other scripts' digits (written back).
            # At most two: 8 to 15 is a window size (an offer of "010" is declined), and int()
            # refuses more than 4,300 digits (a ValueError: the upgrade was answered 500 again).
            digits = value.isascii() and value.isdigit() and len(value) <= 2
            if name in seen:
                ok = False
            seen.add(name)
            if name == "server_no_context_takeover" and not eq:
                notakeover = True
                answer.append(name)
            elif name == "client_no_context_takeover" and not eq:
                pass
            elif name == "server_max_window_bits" and digits and 8 <= int(value) <= 15:
                if int(value) < 9:
                    ok = False  # zlib's least window is 2^9: an 8 we could not keep to
                wbits = min(wbits, int(value))
                answer.append(f"server_max_window_bits={value}")
            elif name == "client_max_window_bits" and (not eq or digits and 8 <= int(value) <= 15):
                pass  # the browser's window: ours to read is whatever it chose (we inflate with 15)
            else:
                ok = False
        if ok:
            return "; ".join(answer), (wbits, notakeover)
    return None


class FrameEncoder:
    """Phoenix messages -> the bytes of their WebSocket text frames, for one socket."""

    __slots__ = ("deflate", "_wbits", "_flush", "_zlib")

    def __init__(self, deflate: tuple[int, bool] | None = None) -> None:
        self.deflate = deflate is not None
        self._zlib: "zlib._Compress | None" = None
        if deflate is not None:
            max_wbits, notakeover = deflate
            # zlib cannot make a raw deflate stream with a 256-byte window: 9 is its least
            self._wbits = max(9, min(DEFLATE_WBITS, max_wbits))
            self._flush = zlib.Z_FULL_FLUSH if notakeover else zlib.Z_SYNC_FLUSH
        else:
            self._wbits = 0
            self._flush = zlib.Z_SYNC_FLUSH

    def release(self) -> int:
        """Free the compression context (a quiet socket); the next message makes a new one.
        Returns about how many bytes that freed (0: there was none)."""
        if self._zlib is None:
            return 0
        self._zlib = None
        return DEFLATE_CONTEXT_BYTES

    def encode(self, messages: Iterable[bytes]) -> list[bytes]:
        """One frame per message: their pieces (headers, payloads) in order, for a
        ``transport.writelines`` (one system call, and on uvloop no copy to join them)."""
        out: list[bytes] = []
        append = out.append
        if not self.deflate:
            headers = _TEXT_HEADERS
            for m in messages:
                n = len(m)
                append(headers[n] if n < _TABLED else _LEN2(_TEXT, 126, n) if n < 65536
                       else _LEN8(_TEXT, 127, n))
                append(m)
            return out
        for m in messages:
            if len(m) < DEFLATE_MIN_SIZE:
                append(_TEXT_HEADERS[len(m)])
                append(m)
                continue
            z = self._zlib
            if z is None:
                z = self._zlib = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -self._wbits,
                                                  DEFLATE_MEM_LEVEL)
            data = z.compress(m) + z.flush(self._flush)
            if data.endswith(_TAIL):
                data = data[:-4]
            append(frame_header(_TEXT | _RSV1, len(data)))
            append(data)
        return out


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A server control frame (unmasked): ``PONG`` with the ping's payload, say."""
    return frame_header(0x80 | opcode, len(payload)) + payload


def close_frame(code: int, reason: bytes = b"") -> bytes:
    """A close frame; its reason is cut to fit a control frame's 125 bytes."""
    return control_frame(CLOSE, _CLOSE_CODE.pack(code) + reason[:123])


class FrameError(Exception):
    """The browser broke RFC 6455: the connection is failed with ``code`` (1002, 1007, 1009)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _valid_close_code(code: int) -> bool:
    """RFC 6455 7.4: the codes an endpoint may send (IANA-registered ones and 3000-4999)."""
    return 1000 <= code <= 1014 and code not in (1004, 1005, 1006) or 3000 <= code <= 4999


def unmask(data: "bytes | bytearray", mask: "bytes | bytearray") -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (RFC 6455 5.3), as two big integers:
    C speed, no Python loop over the bytes."""
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class FrameReader:
    """The browser's bytes -> its messages, for one socket (see the module's docstring).

    ``feed`` the bytes as they come; ``next`` returns the next whole message as
    ``(opcode, data)``: ``(TEXT, str)``, ``(BINARY, bytes)``, ``(PING, bytes)``,
    ``(PONG, bytes)``, ``(CLOSE, (code, reason))`` (``NO_STATUS`` when the frame had no
    code), or None until more bytes are needed. Every frame but a message's first
    fragments is an answer: a caller that counts what it handles counts pongs too.
    """

    __slots__ = ("max_size", "deflate", "discard", "_buf", "_parts", "_size", "_opcode", "_compressed")

    def __init__(self, max_size: int, deflate: bool = False) -> None:
        self.max_size = max_size
        self.deflate = deflate  # permessage-deflate was agreed: RSV1 marks a compressed message
        # The caller drops every message from now on (the socket is closing): each is given as
        # it ends, empty, neither inflated nor checked as UTF-8 (work for nothing, 64 KB each).
        self.discard = False
        self._buf = bytearray()
        self._parts: list[bytes] | None = None  # the frames so far of a fragmented message
        self._size = 0
        self._opcode = 0
        self._compressed = False

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> "tuple[int, Any] | None":
        buf = self._buf
        while True:
            n = len(buf)
            if n < 2:
                return None
            first, second = buf[0], buf[1]
            if first == 0x81 and 0x80 < second < 0xFE and self._parts is None and second - 0x80 <= self.max_size:
                # Nearly every frame a browser sends: a whole short text message, masked, not
                # compressed, within max_size: a header none of the checks below can refuse.
                opcode, fin, rsv, length, at = TEXT, 0x80, 0, second - 0x80, 2
            else:
                length = second & 0x7F
                at = 2
                if length == 126:
                    if n < 4:
                        return None
                    length = int.from_bytes(buf[2:4], "big")
                    at = 4
                    if length < 126:
                        raise FrameError(1002, "frame length not in its shortest form")
                elif length == 127:
                    if n < 10:
                        return None
                    length = int.from_bytes(buf[2:10], "big")
                    at = 10
                    if length < 65536 or length >> 63:
                        raise FrameError(1002, "frame length not in its shortest form")
                if not second & 0x80:
                    raise FrameError(1002, "unmasked frame")
                opcode = first & 0x0F
                fin = first & 0x80
                rsv = first & 0x70
                # Everything the header can tell, before the payload is waited for.
                if opcode >= CLOSE:
                    if opcode > PONG:
                        raise FrameError(1002, f"unknown opcode {opcode}")
                    if not fin or length > 125:
                        raise FrameError(1002, "fragmented or long control frame")
                    if rsv:
                        raise FrameError(1002, "reserved bits set")
                else:
                    if opcode == CONTINUATION:
                        parts = self._parts
                        if parts is None:
                            raise FrameError(1002, "continuation frame without a message")
                        if rsv:
                            raise FrameError(1002, "reserved bits set")
                        if len(parts) >= MAX_FRAGMENTS:
                            raise FrameError(1008, "message in too many fragments")
                    elif opcode == TEXT or opcode == BINARY:
                        if self._parts is not None:
                            raise FrameError(1002, "a new message before the last one ended")
                        if rsv & ~(0x40 if self.deflate else 0):
                            raise FrameError(1002, "reserved bits set")
                    else:
                        raise FrameError(1002, f"unknown opcode {opcode}")
                    if self._size + length > self.max_size:
                        raise FrameError(1009, "message too big")
            end = at + 4 + length
            if n < end:
                return None
            # unmask reads the bytearray's slices as they are: one copy of the payload, not two
            payload = unmask(buf[at + 4:end], buf[at:at + 4]) if length else b""
            del buf[:end]

            if opcode == CONTINUATION:
                parts = self._parts
                parts.append(payload)  # type: ignore[union-attr]  # checked at the header
                self._size += length
                if not fin:
                    continue
                opcode, compressed = self._opcode, self._compressed
                payload = b"".join(parts)  # type: ignore[arg-type]  # once, at the message's end
                self._parts = None
                self._size = 0
            elif opcode == TEXT or opcode == BINARY:
                compressed = bool(rsv)
                if not fin:
                    self._parts = [payload]
                    self._size = length
                    self._opcode = opcode
                    self._compressed = compressed
                    continue
            elif opcode == PING or opcode == PONG:
                return opcode, payload
            else:
                return CLOSE, self._close(payload)

            if self.discard:
                return opcode, b""
            if compressed:
                payload = self._inflate(payload)
            if opcode == TEXT:
                try:
                    return TEXT, payload.decode("utf-8")
                except UnicodeDecodeError:
                    raise FrameError(1007, "text message is not UTF-8") from None
            return BINARY, payload

    def _inflate(self, data: bytes) -> bytes:
        # A context for this message alone (the browser agreed to client_no_context_takeover,
        # negotiate_deflate): nothing is kept between messages. Any window the browser
        # chose: 15 reads them all.
        z = zlib.decompressobj(-15)
        try:
            out = z.decompress(data + _TAIL, self.max_size + 1)
        except zlib.error:
            raise FrameError(1007, "compressed message is not deflate data") from None
        if len(out) > self.max_size or z.unconsumed_tail:
            raise FrameError(1009, "message too big")
        return out

    @staticmethod
    def _close(payload: bytes) -> "tuple[int, str]":
        if not payload:
            return NO_STATUS, ""
        if len(payload) < 2:
            raise FrameError(1002, "close frame with a one-byte payload")
        (code,) = _CLOSE_CODE.unpack_from(payload)
        if not _valid_close_code(code):
            raise FrameError(1002, f"close code {code}")
        try:
            return code, payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(1007, "close reason is not UTF-8") from None
