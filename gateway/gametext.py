"""Game text as the browser gets it (SPEC 4.3): the one rule both sides of the pipeline use.

The telnet stream (telnet/stream.py) cleans a read's text with it, and the JSON
escaper (jsonstring.py) is held to ``utf8_text`` as its definition. It
lives below both so that neither the transport nor the telnet side imports the
other (pure: no I/O).
"""

from __future__ import annotations


def drop_cr_nul(raw: bytes) -> bytes:
    """SPEC 4.3: ``\r`` and NUL are dropped (so ``\r\n`` and ``\n\r`` become ``\n``).

    Dropped as bytes, before decoding: ``bytes.replace`` runs at memchr speed, where a str
    holding one emoji is four bytes a character and several times slower to search and
    copy. No character of an ASCII-compatible encoding (UTF-8, Latin-1, CP437, GBK, Big5,
    Shift-JIS) has a 0x0D or 0x00 byte inside it, so valid text decodes the same either
    way; only invalid bytes on both sides of a ``\r`` may decode to different replacement
    characters.
    """
    if b"\r" in raw:
        raw = raw.replace(b"\r", b"")
    if b"\x00" in raw:
        raw = raw.replace(b"\x00", b"")
    return raw


def utf8_text(data: "bytes | memoryview") -> str:
    """UTF-8 game text bytes as the browser gets them: ``\r`` and NUL dropped, decoded,
    invalid bytes replaced (U+FFFD). What ``Lines`` stand for, and the definition the
    C escaper (jsonstring.py) is held to."""
    return drop_cr_nul(bytes(data)).decode("utf-8", "replace")
