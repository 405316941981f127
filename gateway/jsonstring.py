"""Game text bytes -> the JSON string a payload carries, without making a str on the way.

``escape_utf8(data, head=b"", tail=b"")`` is, by definition, ``head +
msgspec.json.encode(utf8_text(data)) + tail``: ``data`` (any bytes-like object) with
``\\r`` and NUL dropped (SPEC 4.3), decoded as UTF-8 with invalid bytes replaced
(U+FFFD), as JSON. A flood spends most of its CPU there: the C version
(``_jsonstring.c``, built by ``pip install`` where a C compiler is found) does it in one
pass over the bytes, about 4x faster than the decode and the encode; without it, this
module does the two steps (tests/test_jsonstring.py holds both to the definition).
"""

from __future__ import annotations

import msgspec

from .gametext import utf8_text

_encode = msgspec.json.Encoder().encode


def escape_utf8_python(data: bytes | memoryview, head: bytes = b"", tail: bytes = b"") -> bytes:
    """The definition, in Python: drop, decode, encode."""
    text = _encode(utf8_text(data))
    return b"".join((head, text, tail)) if head or tail else text


try:
    from ._jsonstring import escape_utf8
except ImportError:  # built without a C compiler
    escape_utf8 = escape_utf8_python
    COMPILED = False
else:
    COMPILED = True
