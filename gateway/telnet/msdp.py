"""MSDP (telnet option 69) payloads <-> their JSON form, "MSDP over GMCP" (sans-I/O).

The MSDP specification (https://tintin.mudhalla.net/protocols/msdp/) writes
variables as ``VAR name VAL value``, where a value is a string, a table
(``TABLE_OPEN`` VAR/VAL pairs ``TABLE_CLOSE``) or an array (``ARRAY_OPEN``
VALs ``ARRAY_CLOSE``). Its "MSDP over GMCP" section gives the same data as
JSON, which is what the browser gets (SPEC 5): the subnegotiation's VAR/VAL
pairs are the keys of one object, a table is an object, an array a list, and
every scalar a string, decoded with the game's encoding. Several VALs after
one VAR (outside an array) are a list of them too.

``decode_msdp`` reads a subnegotiation's body (what follows ``IAC SB MSDP``,
up to ``IAC SE``, with ``IAC IAC`` already undone) with one ``re.split`` in C
and a Python step per token (name, value or structure byte), never per byte.
A malformed body (a table or array left open or closed twice, a VAL without
its VAR, a VAR inside an array, nesting deeper than the JSON encoders down
the line take) gives ``None``: no event, never text; so does one of more than
``MAX_ELEMENTS`` structure bytes (real messages hold a few dozen to a few
hundred), which keeps the Python steps per message bounded.

``encode_msdp`` is the reverse, for the browser's pushes (module "MSDP" with
an object as data): keys in the order given, strings in the game's encoding,
other scalars (numbers, true, false, null) as their JSON text, objects as
tables, lists as arrays. The structure bytes 1-6 cannot occur inside a name
or a value, so they are left out of them; the result is the body of an
``IAC SB MSDP ... IAC SE`` (``subnegotiation.subnegotiation`` frames it and
doubles ``IAC``).
"""

from __future__ import annotations

import codecs
import re
from typing import Any

import msgspec

from ..nesting import MAX_NESTING

VAR, VAL, TABLE_OPEN, TABLE_CLOSE, ARRAY_OPEN, ARRAY_CLOSE = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06"
_VAR, _VAL, _TABLE_OPEN, _TABLE_CLOSE, _ARRAY_OPEN, _ARRAY_CLOSE = range(1, 7)

#: Structure bytes (VAR, VAL, opens, closes) read from one message; a longer one gives no event.
MAX_ELEMENTS = 8192

_TOKENS = re.compile(rb"([\x01-\x06])")
_NO_STRUCTURE = dict.fromkeys(range(1, 7))  # str.translate: the structure characters left out
_VAR_TEXT, _VAL_TEXT, _TABLE_OPEN_TEXT, _TABLE_CLOSE_TEXT, _ARRAY_OPEN_TEXT, _ARRAY_CLOSE_TEXT = (
    b.decode() for b in (VAR, VAL, TABLE_OPEN, TABLE_CLOSE, ARRAY_OPEN, ARRAY_CLOSE))
_json_text = msgspec.json.Encoder().encode


class _Malformed(Exception):
    pass


def decode_msdp(body: bytes, encoding: str) -> dict[str, Any] | None:
    """An MSDP subnegotiation body -> its JSON form (one object), or None when malformed."""
    decode = codecs.getdecoder(encoding)
    # tokens: text, byte, text, byte, ..., text (the texts may be empty)
    tokens = _TOKENS.split(body, MAX_ELEMENTS + 1)  # C; stops once past the limit
    if tokens[0] or len(tokens) > 2 * MAX_ELEMENTS + 1:
        return None  # bytes before the first VAR (not MSDP), or more than we read
    try:
        result, end = _object(tokens, 1, decode, 0, top=True)
    except (_Malformed, RecursionError):
        return None
    return result if end >= len(tokens) else None


def _object(tokens: list[bytes], i: int, decode: Any, depth: int, top: bool) -> tuple[dict[str, Any], int]:
    """VAR/VAL pairs from ``tokens[i]`` (a structure byte) up to TABLE_CLOSE (or the end, at the top)."""
    if depth > MAX_NESTING:
        raise _Malformed
    obj: dict[str, Any] = {}
    n = len(tokens)
    while i < n:
        kind = tokens[i][0]
        if kind == _TABLE_CLOSE and not top:
            if tokens[i + 1]:
                raise _Malformed  # text between a close and what follows it
            return obj, i + 2
        if kind != _VAR:
            raise _Malformed  # a VAL without its VAR, a stray close
        name = decode(tokens[i + 1], "replace")[0]
        i += 2
        values: list[Any] = []
        while i < n and tokens[i][0] == _VAL:
            value, i = _value(tokens, i, decode, depth)
            values.append(value)
        obj[name] = values[0] if len(values) == 1 else values if values else ""
    if not top:
        raise _Malformed  # a table left open
    return obj, i


def _value(tokens: list[bytes], i: int, decode: Any, depth: int) -> tuple[Any, int]:
    """The value after the VAL at ``tokens[i]``; returns it and the index of the next structure byte."""
    text = tokens[i + 1]
    n = len(tokens)
    if text or i + 2 >= n:
        return decode(text, "replace")[0], i + 2
    kind = tokens[i + 2][0]
    if kind == _TABLE_OPEN:
        if tokens[i + 3]:
            raise _Malformed
        return _object(tokens, i + 4, decode, depth + 1, top=False)
    if kind == _ARRAY_OPEN:
        if tokens[i + 3]:
            raise _Malformed
        return _array(tokens, i + 4, decode, depth + 1)
    return "", i + 2


def _array(tokens: list[bytes], i: int, decode: Any, depth: int) -> tuple[list[Any], int]:
    """VALs from ``tokens[i]`` up to ARRAY_CLOSE."""
    if depth > MAX_NESTING:
        raise _Malformed
    items: list[Any] = []
    n = len(tokens)
    while i < n:
        kind = tokens[i][0]
        if kind == _ARRAY_CLOSE:
            if tokens[i + 1]:
                raise _Malformed
            return items, i + 2
        if kind != _VAL:
            raise _Malformed  # a VAR inside an array, a stray close
        value, i = _value(tokens, i, decode, depth)
        items.append(value)
    raise _Malformed  # an array left open


def encode_msdp(data: dict[str, Any], encoding: str) -> bytes:
    """The JSON form (an object) -> an MSDP subnegotiation body (``IAC`` not yet doubled).

    The body is built as one str (the structure bytes as the characters 1-6, which every
    encoding the config takes writes as those bytes) and encoded in one call: a Python step
    per name or value, no encoder or regular expression call each (a push of 6,000 names took
    ~5 ms, ~1.2 ms now).
    A name or string is cleaned of those characters only when it holds a character that is
    not printable (``str.isprintable``, a scan in C)."""
    out: list[str] = []
    _encode_pairs(data, out, 0)
    return "".join(out).encode(encoding, "replace")


def _clean(text: str) -> str:
    return text if text.isprintable() else text.translate(_NO_STRUCTURE)


def _encode_pairs(data: dict[str, Any], out: list[str], depth: int) -> None:
    if depth > MAX_NESTING:
        raise ValueError("nested too deeply")
    for key, value in data.items():
        out.append(_VAR_TEXT)
        out.append(_clean(str(key)))
        _encode_value(value, out, depth)


def _encode_value(value: Any, out: list[str], depth: int) -> None:
    out.append(_VAL_TEXT)
    if isinstance(value, str):
        out.append(_clean(value))
    elif isinstance(value, dict):
        out.append(_TABLE_OPEN_TEXT)
        _encode_pairs(value, out, depth + 1)
        out.append(_TABLE_CLOSE_TEXT)
    elif isinstance(value, list):
        if depth + 1 > MAX_NESTING:
            raise ValueError("nested too deeply")
        out.append(_ARRAY_OPEN_TEXT)
        for item in value:
            _encode_value(item, out, depth + 1)
        out.append(_ARRAY_CLOSE_TEXT)
    else:
        out.append(_json_text(value).decode())  # a number, true, false or null: ASCII, no structure
