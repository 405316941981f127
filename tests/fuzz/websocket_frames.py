"""Hostile WebSocket frame sequences and what must come of them, for the frame-layer fuzz tests.

``streams`` (a hypothesis strategy) makes what a hostile client sends: good messages
(whole, fragmented, with pings between the fragments, compressed), and next to them frames
that break RFC 6455 or the gateway's limits: unmasked, reserved bits and opcodes, lengths not
in their shortest encoding, fragmented or long control frames, continuations of nothing,
messages in too many fragments (floods of empty or 1-byte ones), messages over ``max_size``
(in one frame, across fragments, or inflated from a bomb), text and close reasons that are
not UTF-8, close frames with codes no one may send, and a last frame whose header promises
more than comes.

``expect`` is the model: what RFC 6455 (and docs/protocol.md's limits) make of such a
stream, computed from the frames' fields rather than their bytes: the messages, in order, up
to the first that ends the connection, its close code, and the byte at which a reader knows
it (the frame's header for what a header tells, the frame's end otherwise). Where several
rules are broken at once, a protocol error (1002) comes before a limit (1008, 1009): the
order docs/protocol.md gives.

``check_reader`` runs a stream, cut at random points, through a ``FrameReader`` and checks
the model's messages and close code exactly, and after every read that the reader holds no
more than its bound (docs/security.md): ``max_size`` + 14 header bytes + the read, the
fragments so far within ``max_size`` and ``MAX_FRAGMENTS``, and, by tracemalloc, a peak of a
few times that, however many bytes came.
"""

from __future__ import annotations

import functools
import os
import struct
import tracemalloc
import zlib
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from gateway.transport.frames import (BINARY, CLOSE, CONTINUATION, MAX_FRAGMENTS, NO_STATUS, PING, PONG, TEXT,
                                      FrameError, FrameReader)

_TAIL = b"\x00\x00\xff\xff"
#: Close codes a client may send (RFC 6455 7.4) and some it may not.
CLOSE_CODES = [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4000, 4999,
               0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]


def mask(payload: bytes, key: bytes) -> bytes:
    """RFC 6455 5.3, written here on its own (not the gateway's ``unmask``): XOR as integers."""
    n = len(payload)
    if not n:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(n, "big")


def deflate(message: bytes) -> bytes:
    z = zlib.compressobj(wbits=-15)
    return (z.compress(message) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]


@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0
    masked: bool = True
    width: int | None = None   # 126 or 127: that length encoding, shortest or not
    length: int | None = None  # a header length over the payload's: the stream ends in this frame

    @property
    def size(self) -> int:
        return len(self.payload) if self.length is None else self.length

    def header_size(self) -> int:
        """The bytes a reader needs to judge the header: up to the extended length."""
        return 2 + {126: 2, 127: 8}.get(self.encoded_width(), 0)

    def encoded_width(self) -> int:
        n = self.size
        return self.width or (126 if 126 <= n < 65536 else 127 if n >= 65536 else 0)

    def wire(self) -> bytes:
        n, width = self.size, self.encoded_width()
        first = (0x80 if self.fin else 0) | self.rsv | self.opcode
        bit = 0x80 if self.masked else 0
        head = (bytes((first, bit | n)) if not width else struct.pack("!BBH", first, bit | 126, n) if width == 126
                else struct.pack("!BBQ", first, bit | 127, n))
        if not self.masked:
            return head + self.payload
        key = os.urandom(4)
        return head + key + mask(self.payload, key)


@dataclass
class Expected:
    messages: list[tuple[int, Any]]  # as FrameReader.next returns them; a CLOSE ends the list
    code: int | None                 # the close code of a broken stream, else None
    stop: int                        # the byte at which the reader knows the outcome (len(wire): the end)
    ends: list[int]                  # each message's end in the wire (where it is complete)


def _header_error(f: Frame, parts: list[bytes] | None, size: int, max_size: int, deflated: bool) -> int | None:
    n, width = f.size, f.encoded_width()
    if width == 126 and n < 126 or width == 127 and (n < 65536 or n >= 1 << 63):
        return 1002
    if not f.masked:
        return 1002
    if f.opcode >= CLOSE:
        if f.opcode > PONG or not f.fin or n > 125 or f.rsv:
            return 1002
        return None
    if f.opcode == CONTINUATION:
        if parts is None or f.rsv:
            return 1002
        if len(parts) >= MAX_FRAGMENTS:
            return 1008
    elif f.opcode in (TEXT, BINARY):
        if parts is not None or f.rsv & ~(0x40 if deflated else 0):
            return 1002
    else:
        return 1002
    if size + n > max_size:
        return 1009
    return None


def _close(payload: bytes) -> "tuple[int, str] | int":
    if not payload:
        return NO_STATUS, ""
    if len(payload) == 1:
        return 1002
    code = int.from_bytes(payload[:2], "big")
    if not (1000 <= code <= 1014 and code not in (1004, 1005, 1006) or 3000 <= code <= 4999):
        return 1002
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        return 1007


def _message(opcode: int, data: bytes, compressed: bool, max_size: int) -> "tuple[int, Any] | int":
    if compressed:
        z = zlib.decompressobj(-15)
        try:
            data = z.decompress(data + _TAIL, max_size + 1)
        except zlib.error:
            return 1007
        if len(data) > max_size or z.unconsumed_tail:
            return 1009
    if opcode == TEXT:
        try:
            return TEXT, data.decode("utf-8")
        except UnicodeDecodeError:
            return 1007
    return BINARY, data


def expect(frames: list[Frame], max_size: int, deflated: bool) -> Expected:
    """What a reader of ``max_size`` (permessage-deflate agreed or not) makes of ``frames``."""
    out: list[tuple[int, Any]] = []
    ends: list[int] = []
    parts: list[bytes] | None = None
    size = opcode = 0
    compressed = False
    at = 0
    for f in frames:
        error = _header_error(f, parts, size, max_size, deflated)
        if error is not None:
            return Expected(out, error, at + f.header_size(), ends)
        wire_size = f.header_size() + (4 if f.masked else 0) + len(f.payload)
        at += wire_size
        if f.length is not None and f.length != len(f.payload):
            return Expected(out, None, at, ends)  # waits for bytes that never come
        result: "tuple[int, Any] | int | None" = None
        if f.opcode == PING or f.opcode == PONG:
            result = (f.opcode, f.payload)
        elif f.opcode == CLOSE:
            closed = _close(f.payload)
            result = closed if isinstance(closed, int) else (CLOSE, closed)
        elif f.opcode == CONTINUATION:
            assert parts is not None
            parts.append(f.payload)
            size += len(f.payload)
            if f.fin:
                result = _message(opcode, b"".join(parts), compressed, max_size)
                parts, size = None, 0
        elif f.opcode in (TEXT, BINARY):
            if f.fin:
                result = _message(f.opcode, f.payload, bool(f.rsv), max_size)
            else:
                parts, size, opcode, compressed = [f.payload], len(f.payload), f.opcode, bool(f.rsv)
        if isinstance(result, int):
            return Expected(out, result, at, ends)
        if result is not None:
            out.append(result)
            ends.append(at)
            if result[0] == CLOSE:
                return Expected(out, None, at, ends)
    return Expected(out, None, at, ends)


# -- the strategy ------------------------------------------------------------------------------

def heartbeat(ref: str) -> bytes:
    return b'[null,"%s","phoenix","heartbeat",{}]' % ref.encode()


#: Text the gateway drops without an answer (not JSON: no ref can be read).
junk = st.text(max_size=40).map(lambda t: ("#" + t).encode("utf-8", "surrogatepass"))
small = st.binary(max_size=40)


@st.composite
def message(draw, max_size: int, deflated: bool) -> list[Frame]:
    """A message as a client may send it: whole or in pieces (maybe empty ones), pings between,
    compressed when agreed; its text a heartbeat (answered) or junk (not)."""
    kind = draw(st.sampled_from(["heartbeat", "heartbeat", "junk", "binary", "big"]))
    if kind == "heartbeat":
        data, opcode = heartbeat(f"h{draw(st.integers(0, 999))}"), TEXT
    elif kind == "junk":
        data, opcode = draw(junk), TEXT
    elif kind == "binary":
        data, opcode = draw(small), BINARY
    else:  # around max_size: under it, at it, over it
        n = draw(st.sampled_from([max_size - 100, max_size, max_size + 1, 2 * max_size]))
        data, opcode = b"#" + b"x" * (n - 1), TEXT
    compressed = deflated and draw(st.booleans())
    body = deflate(data) if compressed else data
    pieces = draw(st.sampled_from([1, 1, 2, 3, 7, MAX_FRAGMENTS, MAX_FRAGMENTS + 1]))
    few = pieces <= 7
    if few:  # cut anywhere, control frames maybe between
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), min_size=pieces - 1, max_size=pieces - 1)))
    else:  # evenly: a short message comes in empty and 1-byte pieces
        cuts = [len(body) * i // pieces for i in range(1, pieces)]
    frames = []
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(body)])):
        frames.append(Frame(opcode if i == 0 else CONTINUATION, body[a:b], fin=i == pieces - 1,
                            rsv=0x40 if compressed and i == 0 else 0))
        if few and i < pieces - 1 and draw(st.integers(0, 3)) == 0:
            frames.append(Frame(draw(st.sampled_from([PING, PONG])), draw(small)))
    return frames


@st.composite
def bomb(draw, max_size: int) -> list[Frame]:
    n = draw(st.sampled_from([max_size, max_size + 1, 50 * max_size]))
    return [Frame(TEXT, deflate(b"#" + b"a" * (n - 1)), rsv=0x40)]


#: The ways ``hostile`` breaks a stream.
HOSTILE = ["any", "width", "control", "close", "utf8", "empty flood", "byte flood", "orphan"]


@st.composite
def hostile(draw, max_size: int, kind: str | None = None) -> list[Frame]:
    """One frame with any of its fields wrong, or a flood of small ones."""
    if kind is None:
        kind = draw(st.sampled_from(HOSTILE))
    if kind == "any":
        return [Frame(draw(st.integers(0, 15)), draw(small), fin=draw(st.booleans()),
                      rsv=draw(st.sampled_from([0, 0, 0x10, 0x20, 0x40, 0x70])), masked=draw(st.integers(0, 9)) > 0)]
    if kind == "width":
        n = draw(st.sampled_from([0, 5, 125, 126, 200]))
        return [Frame(draw(st.sampled_from([TEXT, PING])), b"#" * n, width=draw(st.sampled_from([126, 127])))]
    if kind == "control":
        return [Frame(draw(st.sampled_from([PING, PONG, CLOSE])), b"x" * draw(st.sampled_from([0, 125, 126, 300])),
                      fin=draw(st.booleans()))]
    if kind == "close":
        code = draw(st.sampled_from(CLOSE_CODES))
        reason = draw(st.sampled_from([b"", b"bye", "caf\u00e9".encode(), b"\xff\xfe", b"x" * 124]))
        payload = draw(st.sampled_from([b"", b"\x03", struct.pack("!H", code) + reason]))
        return [Frame(CLOSE, payload)]
    if kind == "utf8":
        return [Frame(TEXT, b"#" + draw(st.sampled_from([b"\xc3(", b"\xff", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                                           b"\xe2\x82"])))]
    if kind == "orphan":
        return [Frame(CONTINUATION, draw(small), fin=draw(st.booleans()))]
    count = draw(st.sampled_from([MAX_FRAGMENTS - 2, MAX_FRAGMENTS, 10 * MAX_FRAGMENTS]))
    piece = b"" if kind == "empty flood" else b"x"
    return ([Frame(TEXT, b"#", fin=False)] + [Frame(CONTINUATION, piece, fin=False)] * count
            + [Frame(CONTINUATION, b"")])


@st.composite
def truncated(draw, max_size: int) -> list[Frame]:
    """A last frame whose header promises more than comes: maybe over max_size, maybe a lie."""
    n = draw(st.sampled_from([10, max_size, max_size + 1, 1 << 40, (1 << 63) + 5]))
    return [Frame(TEXT, b"#" * draw(st.integers(0, 5)), length=n)]


@functools.cache
def _items(max_size: int, deflated: bool) -> st.SearchStrategy[list[Frame]]:
    return st.one_of(message(max_size, deflated), message(max_size, deflated),
                     st.builds(lambda p: [Frame(PING, p)], small), bomb(max_size), hostile(max_size))


@st.composite
def streams(draw, max_size: int, deflated: bool) -> list[Frame]:
    """A stream of frames as a hostile client sends it."""
    frames = [f for group in draw(st.lists(_items(max_size, deflated), max_size=8)) for f in group]
    if draw(st.integers(0, 5)) == 0:
        frames += draw(truncated(max_size))
    return frames


@st.composite
def ended_streams(draw, max_size: int, deflated: bool) -> list[Frame]:
    """Good messages and pings, then one way of ending (each as likely: a fixed budget still
    meets every close code), then more that must not be answered."""
    good = st.one_of(message(max_size, deflated), st.builds(lambda p: [Frame(PING, p)], small))
    frames = [f for group in draw(st.lists(good, max_size=4)) for f in group]
    ending = draw(st.sampled_from([*HOSTILE, "bomb", "truncated", "none"]))
    if ending == "truncated":
        return frames + draw(truncated(max_size))
    if ending == "bomb":
        frames += draw(bomb(max_size))
    elif ending != "none":
        frames += draw(hostile(max_size, ending))
    return frames + [f for group in draw(st.lists(good, max_size=2)) for f in group]


# -- the pure reader ---------------------------------------------------------------------------

def check_reader(frames: list[Frame], max_size: int, deflated: bool, cuts: list[int]) -> Expected:
    """Feed the stream, cut at ``cuts``, to a FrameReader: the model's messages and close code,
    exactly; after every read, what the reader holds within its bound; returns the model's answer."""
    want = expect(frames, max_size, deflated)
    wire = b"".join(f.wire() for f in frames)
    points = sorted({c % (len(wire) + 1) for c in cuts})
    reader = FrameReader(max_size, deflate=deflated)
    got: list[tuple[int, Any]] = []
    code = None
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        biggest = 0
        for a, b in zip([0, *points], [*points, len(wire)]):
            reader.feed(wire[a:b])
            biggest = max(biggest, b - a)
            try:
                while (msg := reader.next()) is not None:
                    got.append(msg)
                    if msg[0] == CLOSE:
                        break
            except FrameError as exc:
                code = exc.code
            if code is not None or got and got[-1][0] == CLOSE:
                break
            # The bound (docs/security.md): waiting for more, the reader holds one frame at
            # most (max_size and a header), and the fragments so far, in at most MAX_FRAGMENTS pieces.
            assert len(reader._buf) < max_size + 14, (len(reader._buf), max_size)
            assert reader._size <= max_size and len(reader._parts or ()) <= MAX_FRAGMENTS
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # What was allocated at most: the wire's read and buffer, a payload's few copies while
    # unmasking, joining, inflating and decoding; never the stream's whole length.
    assert peak <= 12 * max_size + 3 * biggest + 64 * 1024, (peak, max_size, biggest, len(wire))
    assert got == want.messages, (got, want.messages)
    assert code == want.code, (code, want.code)
    return want
