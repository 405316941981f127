"""How deeply a JSON text nests, found without parsing it (so without recursion).

msgspec, like every recursive JSON parser and encoder, raises ``RecursionError``
on input nested about a thousand levels deep, and a few levels less already
fail when the call stack is deeper. Frames from browsers and GMCP from games
are checked here first: what nests deeper than ``MAX_NESTING`` is not taken as
JSON at all, so nothing downstream ever walks such data.
"""

from __future__ import annotations

import re
from itertools import accumulate

#: Arrays and objects nested deeper than this are refused (a Phoenix frame is 2
#: levels, GMCP data a handful).
MAX_NESTING = 100

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _STEP)


def too_deep(text: bytes | str, limit: int = MAX_NESTING) -> bool:
    """Whether ``text`` nests arrays and objects deeper than ``limit`` (brackets inside strings do not count).

    A string without its closing quote runs to the end of the text (its brackets do not
    count: a parser fails in it, nothing after it is nested). So a quote and then 64 KB of
    escaped quotes (``"\\"\\"...``) is one scan, not one from each quote to the end (20 s
    of the event loop). Text that is not JSON may be judged either way; it would be
    refused as invalid anyway.
    """
    if len(text) <= limit:
        return False  # fewer characters than the levels it would take
    if text.count("[" if isinstance(text, str) else b"[") + \
            text.count("{" if isinstance(text, str) else b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    brackets = _STRING.sub(b"", text).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit
