"""Subnegotiation payloads the gateway reads itself (sans-I/O): MSSP and CHARSET REQUEST.

telnetlib3 parses these a byte at a time in Python, decodes MSSP as ASCII
(falling back to Latin-1) whatever the game's encoding, and gives up on a
CHARSET REQUEST with a name that is not ASCII. Here both are read with
``bytes.split``, in time bounded by the payload's size, never per byte in
Python (SPEC 5). ``body`` is always what follows ``IAC SB <option>``, up to
``IAC SE``, with ``IAC IAC`` already turned back into one 255 byte.
"""

from __future__ import annotations

import codecs
from typing import Any

MSSP_VAR, MSSP_VAL = b"\x01", b"\x02"
#: Variables read from one MSSP table; the rest is ignored. Real tables have a
#: few dozen; the cap keeps the per-variable work bounded whatever a game sends.
MAX_MSSP_VARIABLES = 8192

CHARSET_REQUEST, CHARSET_ACCEPTED, CHARSET_REJECTED = b"\x01", b"\x02", b"\x03"
_TTABLE = b"[TTABLE]"


def decode_mssp(body: bytes, encoding: str) -> dict[str, Any]:
    """``VAR name VAL value [VAL value ...]`` ... -> ``{name: value}``, decoded with the
    game's ``encoding`` (undecodable bytes replaced). A variable with several values,
    or sent several times, maps to the list of its values; one without a value is
    left out, as is anything before the first VAR."""
    decode = codecs.getdecoder(encoding)
    table: dict[str, Any] = {}
    entries = body.split(MSSP_VAR, MAX_MSSP_VARIABLES + 1)[1:MAX_MSSP_VARIABLES + 1]
    for entry in entries:
        name, *values = entry.split(MSSP_VAL)
        if not values:
            continue
        key = decode(name, "replace")[0]
        decoded = [decode(v, "replace")[0] for v in values]
        old = table.get(key)
        if old is None:
            table[key] = decoded[0] if len(decoded) == 1 else decoded
        elif isinstance(old, list):
            old.extend(decoded)
        else:
            table[key] = [old, *decoded]
    return table


def charset_offers(body: bytes) -> list[bytes]:
    """The names a CHARSET REQUEST (RFC 2066) offers, as sent. ``body`` starts after
    the REQUEST byte: an optional ``[TTABLE]`` and its version byte, then a
    separator byte chosen by the game, then the names separated by it."""
    if body.startswith(_TTABLE):
        body = body[len(_TTABLE) + 1:]
    if not body:
        return []
    return [name for name in body[1:].split(body[:1]) if name]
