"""Server-to-browser WebSocket text frames (RFC 6455), permessage-deflate (RFC 7692), sans-I/O.

The socket writes every frame queued since its last write with one
``transport.write`` (one system call for all the events of a game read, not
one each); this module turns a batch of Phoenix messages into those bytes.

When the browser negotiated permessage-deflate (browsers always offer it),
each message of at least ``DEFLATE_MIN_SIZE`` bytes is compressed with one
zlib context per socket, flushed at each message's end (Z_SYNC_FLUSH, the
four trailing bytes dropped as RFC 7692 asks); shorter ones go as they are
(RSV1 clear), which the RFC allows message by message. The context is made
on first use, with a smaller window and hash than zlib's defaults: any
inflater with the negotiated (larger) window reads such a stream, and it
costs 32 KiB per socket instead of 256 KiB. With
``server_no_context_takeover`` each message is flushed with Z_FULL_FLUSH,
so none refers to an earlier one. The numbers behind these defaults are in
docs/performance.md (``bench/deflate_choice.py``).
"""

from __future__ import annotations

import struct
import zlib
from typing import Iterable

#: zlib level 1: on MUD frames ~94% of level 6's saving for ~60% of its CPU.
DEFLATE_LEVEL = 1
#: Window bits and memLevel of the context: 2^(12+2) + 2^(5+9) = 32 KiB per socket.
DEFLATE_WBITS = 12
DEFLATE_MEM_LEVEL = 5
#: Messages shorter than this go uncompressed (an ack, a heartbeat reply).
DEFLATE_MIN_SIZE = 64

_TEXT = 0x81          # FIN + text opcode
_RSV1 = 0x40          # "this message is compressed"
_TAIL = b"\x00\x00\xff\xff"
_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack


def frame_header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return _LEN2(first, 126, length)
    return _LEN8(first, 127, length)


def parse_deflate(extensions: str | None) -> tuple[int, bool] | None:
    """The ``Sec-WebSocket-Extensions`` response header -> (server window bits, no context
    takeover) when permessage-deflate was agreed, else None."""
    if not extensions:
        return None
    for ext in extensions.split(","):
        params = [p.strip() for p in ext.split(";")]
        if params[0] != "permessage-deflate":
            continue
        wbits, notakeover = 15, False
        for p in params[1:]:
            name, _, value = p.partition("=")
            name = name.strip()
            if name == "server_no_context_takeover":
                notakeover = True
            elif name == "server_max_window_bits" and value.strip().strip('"').isdigit():
                wbits = int(value.strip().strip('"'))
        return wbits, notakeover
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

    def encode(self, messages: Iterable[bytes]) -> bytes:
        """One frame per message, all of them in one bytes object."""
        out: list[bytes] = []
        append = out.append
        if not self.deflate:
            for m in messages:
                n = len(m)
                append(bytes((_TEXT, n)) if n < 126 else _LEN2(_TEXT, 126, n) if n < 65536
                       else _LEN8(_TEXT, 127, n))
                append(m)
            return b"".join(out)
        for m in messages:
            if len(m) < DEFLATE_MIN_SIZE:
                append(bytes((_TEXT, len(m))))
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
        return b"".join(out)
