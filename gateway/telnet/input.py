"""Player input to telnet bytes (sans-I/O): the browser's pushes, encoded for the game.

IAC doubling of text is left to telnetlib3's writer (``TelnetWriter.write``),
which escapes every 0xFF byte it sends; GMCP is framed and encoded by
telnetlib3's ``send_gmcp``. Only the checks, the line split and NAWS (whose
sending telnetlib3 keeps private) are here.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from .subnegotiation import subnegotiation

NAWS = 31  # RFC 1073

_GMCP_MODULE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\Z")


def split_lines(message: str) -> list[str]:
    """SPEC 4.4 ``recv``: drop ``\\r``, ignore one trailing ``\\n``, split on ``\\n``.

    ``""`` is one empty line (a bare CRLF for the game).
    """
    if "\r" in message:
        message = message.replace("\r", "")
    if message.endswith("\n"):
        message = message[:-1]
    return message.split("\n")


def encode_lines(lines: list[str], encoding: str) -> bytes:
    """Each line as text + CRLF in the game's encoding (unencodable characters become '?')."""
    return ("\r\n".join(lines) + "\r\n").encode(encoding, "replace")


def valid_gmcp_module(module: Any) -> bool:
    return isinstance(module, str) and len(module) <= 128 and _GMCP_MODULE.match(module) is not None


def valid_size(width: Any, height: Any) -> bool:
    return all(type(v) is int and 1 <= v <= 1000 for v in (width, height))


def encode_naws(width: int, height: int) -> bytes:
    """``IAC SB NAWS <w16> <h16> IAC SE`` with 0xFF doubled inside."""
    return subnegotiation(NAWS, struct.pack("!HH", width, height))
