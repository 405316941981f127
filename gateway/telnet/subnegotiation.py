"""Subnegotiation payloads the gateway reads itself (sans-I/O): MSSP, CHARSET REQUEST and
NEW-ENVIRON SEND; and the framing of every subnegotiation it writes (``subnegotiation``).

telnetlib3 parses these a byte at a time in Python, decodes MSSP as ASCII
(falling back to Latin-1) whatever the game's encoding, and gives up on a
CHARSET REQUEST with a name that is not ASCII; its NEW-ENVIRON reader walks the
request in a Python loop per byte (64 KiB of VAR bytes held the event loop 0.1 s).
Here all three are read with ``bytes.split`` or one regex, in time bounded by the
payload's size, never per byte in Python (SPEC 5). ``body`` is always what follows
``IAC SB <option>``, up to ``IAC SE``, with ``IAC IAC`` already turned back into one
255 byte. NEW-ENVIRON variables are also written here, for the gateway's IS answer and
for the ``IPADDRESS`` the ``/ws`` telnet relay puts in a client's (mudstandards/relay.py).
"""

from __future__ import annotations

import codecs
import re
from typing import Any

MSSP_VAR, MSSP_VAL = b"\x01", b"\x02"
#: Variables read from one MSSP table; the rest is ignored. Real tables have a
#: few dozen; the cap keeps the per-variable work bounded whatever a game sends.
MAX_MSSP_VARIABLES = 8192
#: Values read from one MSSP table (a variable may have many: a list); the rest is ignored.
#: Without it one variable with a value per byte of a 1 MiB table was a list of a million
#: strings, made a Python step each, and kept for ``/api/games`` to send.
MAX_MSSP_VALUES = 8192

CHARSET_REQUEST, CHARSET_ACCEPTED, CHARSET_REJECTED = b"\x01", b"\x02", b"\x03"
_TTABLE = b"[TTABLE]"


def decode_mssp(body: bytes, encoding: str) -> dict[str, Any]:
    """``VAR name VAL value [VAL value ...]`` ... -> ``{name: value}``, decoded with the
    game's ``encoding`` (undecodable bytes replaced). A variable with several values,
    or sent several times, maps to the list of its values; one without a value is
    left out, as is anything before the first VAR, and anything after the first
    MAX_MSSP_VARIABLES variables or MAX_MSSP_VALUES values."""
    decode = codecs.getdecoder(encoding)
    table: dict[str, Any] = {}
    entries = body.split(MSSP_VAR, MAX_MSSP_VARIABLES + 1)[1:MAX_MSSP_VARIABLES + 1]
    left = MAX_MSSP_VALUES
    for entry in entries:
        parts = entry.split(MSSP_VAL, left + 1)  # C; stops once past what is left
        name, values = parts[0], parts[1:left + 1]
        if not values:
            if left <= 0:
                break
            continue
        left -= len(values)
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


# NEW-ENVIRON (RFC 1572): the commands after the option byte, and the bytes of its lists.
ENVIRON_IS, ENVIRON_SEND = b"\x00", b"\x01"
ENV_VAR, ENV_VALUE = b"\x00", b"\x01"  # (ESC is 2, USERVAR 3)
#: A name that is not empty: a VAR or USERVAR (not escaped) followed by a byte of the name.
_ENV_NAMED = re.compile(rb"(?<!\x02)[\x00\x03][^\x00\x01\x03]")
#: The bytes RFC 1572 escapes with ESC: VAR, VALUE, ESC, USERVAR.
_ENV_SPECIAL = re.compile(rb"([\x00-\x03])")


def environ_names(known: tuple[str, ...]) -> "re.Pattern[bytes]":
    """What ``environ_request`` finds ``known`` (ASCII variable names) by: VAR or USERVAR
    (not escaped), then one of them, then the end of that name. Made once, at import."""
    names = b"|".join(re.escape(name.encode("ascii")) for name in known)
    return re.compile(rb"(?<!\x02)[\x00\x03](" + names + rb")(?=[\x00\x01\x03]|\Z)")


def environ_request(body: bytes, known: "re.Pattern[bytes]") -> list[str] | None:
    """The variables a NEW-ENVIRON SEND asks for among those ``known`` finds
    (``environ_names``), in the order first asked; None when it names none at all (only
    ``VAR``/``USERVAR``, or nothing): a request for every variable. ``body`` follows the
    SEND byte. The names are told apart as telnetlib3 tells them (a VAR or USERVAR byte
    after ESC is part of a name; a name ends at the next VAR, USERVAR or VALUE), with two
    regex searches in C."""
    if _ENV_NAMED.search(body) is None:
        return None
    return [name.decode("ascii") for name in dict.fromkeys(known.findall(body))]


def environ_variable(name: bytes, value: bytes) -> bytes:
    """``VAR name VALUE value`` as RFC 1572 sends it: VAR, VALUE, ESC and USERVAR in the name
    or the value after an ESC."""
    return ENV_VAR + _ENV_SPECIAL.sub(b"\x02\\1", name) + ENV_VALUE + _ENV_SPECIAL.sub(b"\x02\\1", value)


def encode_environ(variables: "dict[str, str]", encoding: str) -> bytes:
    """``VAR name VALUE value`` for each variable (MNES sends each as VAR), characters the
    ``encoding`` lacks replaced: what follows ``IAC SB NEW-ENVIRON IS`` (``subnegotiation``)."""
    return b"".join(environ_variable(name.encode(encoding, "replace"), str(value).encode(encoding, "replace"))
                    for name, value in variables.items())


def subnegotiation(option: int, body: bytes) -> bytes:
    """``IAC SB <option> <body> IAC SE`` with every 0xFF of the body doubled: each
    subnegotiation the gateway writes itself (NEW-ENVIRON, CHARSET, MSDP, NAWS; GMCP is
    telnetlib3's ``send_gmcp``)."""
    return b"\xff\xfa" + bytes((option,)) + body.replace(b"\xff", b"\xff\xff") + b"\xff\xf0"
