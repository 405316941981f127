"""The client's bytes under the ``telnet`` subprotocol, on their way to the game (SPEC 9.4), sans-I/O.

The relay passes the client's telnet stream to the game unchanged but for
one thing: in ``IAC SB NEW-ENVIRON IS|INFO ... IAC SE`` every ``IPADDRESS``
variable is removed and, with ``forward_client_ip``, ``VAR IPADDRESS VALUE
<client IP>`` is put at the end (``rewrite_environ``), so a client cannot
forge the address the game trusts. ``RelayInput`` finds those
subnegotiations in the stream however it is cut into frames (one is held
until its ``IAC SE``), and cuts its output after each line (an LF outside
telnet commands), so that the rate limit can let lines through one by one.

The scan is by ``bytes.find`` over runs: the Python loop is per telnet
command and per line, never per byte.

How bad input is read, so that what the game gets has one meaning for any
parser: inside a subnegotiation, ``IAC IAC`` is a data byte, ``IAC SE`` ends
it, and any other ``IAC <cmd>`` ends the scanner's view of it there (a game
may read ``IAC SB`` as a new subnegotiation: so does the scanner, and a
NEW-ENVIRON one is caught). A NEW-ENVIRON subnegotiation is rebuilt from its
well-formed variables alone (stray bytes are dropped; every 0xFF in it is sent
doubled; a variable whose name's letters spell IPADDRESS, in any case, is
removed), one that is neither IS, INFO nor SEND is dropped, and one longer
than ``MAX_ENVIRON`` is dropped; each drop is counted in ``dropped``, for the
adapter to log. The old ENVIRON option (36, RFC 1408) gets the same
removal (no address is added to it).
"""

from __future__ import annotations

import re

IAC, SB, SE = 0xFF, 0xFA, 0xF0
WILL, WONT, DO, DONT = 0xFB, 0xFC, 0xFD, 0xFE
NEW_ENVIRON, OLD_ENVIRON = 39, 36
IS, SEND, INFO = 0, 1, 2
VAR, VALUE, ESC, USERVAR = 0, 1, 2, 3

#: Longest NEW-ENVIRON subnegotiation held (real ones are a few hundred bytes).
MAX_ENVIRON = 1 << 16

_IAC = b"\xff"
# One variable: VAR or USERVAR, its name, and maybe VALUE and its value; ESC quotes the next byte.
_VARIABLE = re.compile(rb"[\x00\x03]((?:[^\x00-\x03]|\x02[\s\S])*)(?:\x01(?:[^\x00-\x03]|\x02[\s\S])*)?")
_NOT_LETTER = re.compile(rb"[^A-Za-z]+")
_SPECIAL = re.compile(rb"([\x00-\x03])")

_DATA, _SB, _ENV, _DROP = 0, 1, 2, 3
_OPTION_COMMANDS = frozenset((WILL, WONT, DO, DONT, SB))


def _is_ipaddress(name: bytes) -> bool:
    """Whether a game could read ``name`` as IPADDRESS: its letters alone, in any case (ESC,
    spaces, IAC commands, anything between them does not count)."""
    return _NOT_LETTER.sub(b"", name).upper() == b"IPADDRESS"


def rewrite_environ(body: bytes, client_ip: str | None, option: int = NEW_ENVIRON) -> bytes | None:
    """One ``NEW-ENVIRON`` subnegotiation's content (between ``IAC SB <option>`` and ``IAC
    SE``, ``IAC IAC`` already undone) as the game may see it: for IS and INFO, the
    well-formed variables other than ``IPADDRESS`` (``_is_ipaddress``; VAR or USERVAR), then
    ``VAR IPADDRESS VALUE <client_ip>`` when ``client_ip`` is given (NEW-ENVIRON only);
    SEND unchanged; anything else None (to be dropped)."""
    if not body:
        return None
    kind = body[0]
    if kind == SEND:
        return body
    if kind not in (IS, INFO):
        return None
    kept = [m.group(0) for m in _VARIABLE.finditer(body, 1) if not _is_ipaddress(m.group(1))]
    if client_ip is not None and option == NEW_ENVIRON:
        kept.append(bytes((VAR,)) + b"IPADDRESS" + bytes((VALUE,))
                    + _SPECIAL.sub(b"\x02\\1", client_ip.encode("ascii", "replace")))
    return bytes((kind,)) + b"".join(kept)


def environ_subnegotiation(option: int, body: bytes) -> bytes:
    """``IAC SB <option> <body> IAC SE`` with every 0xFF of the body doubled."""
    return bytes((IAC, SB, option)) + body.replace(_IAC, b"\xff\xff") + bytes((IAC, SE))


class RelayInput:
    """The client's telnet stream -> the bytes for the game, cut after each line.

    ``feed(data)`` returns ``[(chunk, lines), ...]``: the chunks, in order, are what the
    game gets; ``lines`` is 1 when the chunk ends with a line's LF, else 0 (the rate
    limit's cost). Bytes of an unfinished telnet command are held for the next feed.
    """

    __slots__ = ("client_ip", "dropped", "_state", "_held", "_env", "_env_option")

    def __init__(self, client_ip: str | None) -> None:
        self.client_ip = client_ip  # None: forward_client_ip is off (IPADDRESS only removed)
        self.dropped = 0  # NEW-ENVIRON subnegotiations dropped (malformed or too long)
        self._state = _DATA
        self._held = b""  # the start of a telnet command cut by the end of a feed
        self._env = bytearray()  # a NEW-ENVIRON subnegotiation's content so far (IAC IAC undone)
        self._env_option = NEW_ENVIRON

    def feed(self, data: bytes) -> list[tuple[bytes, int]]:
        out: list[tuple[bytes, int]] = []
        buf = self._held + data if self._held else data
        self._held = b""
        n = len(buf)
        pos = 0
        while pos < n:
            i = buf.find(_IAC, pos)
            end = n if i < 0 else i
            if end > pos:
                self._run(buf[pos:end], out)
            if i < 0:
                break
            # A command is IAC and one byte; outside subnegotiations, an option's takes three.
            size = 3 if self._state == _DATA and i + 1 < n and buf[i + 1] in _OPTION_COMMANDS else 2
            if i + size > n:
                self._held = buf[i:]
                break
            pos = self._command(buf, i, size, out)
        return out

    def _run(self, part: bytes, out: list[tuple[bytes, int]]) -> None:
        """Bytes without a command in them: text (cut after each LF), or the content of the
        subnegotiation under way: passed on, held (NEW-ENVIRON) or dropped."""
        state = self._state
        if state == _DATA:
            _lines(part, out)
        elif state == _SB:
            out.append((part, 0))
        elif state == _ENV:
            if len(self._env) + len(part) > MAX_ENVIRON:
                self._env.clear()
                self._state = _DROP
                self.dropped += 1
            else:
                self._env += part

    def _command(self, buf: bytes, i: int, size: int, out: list[tuple[bytes, int]]) -> int:
        """The command of ``size`` bytes at ``buf[i]``; returns where the scan goes on."""
        cmd = buf[i + 1]
        state = self._state
        if state == _DATA:
            if cmd == SB and buf[i + 2] in (NEW_ENVIRON, OLD_ENVIRON):
                self._state = _ENV
                self._env_option = buf[i + 2]
                self._env.clear()
            else:
                out.append((buf[i:i + size], 0))
                if cmd == SB:
                    self._state = _SB
            return i + size
        if cmd == IAC:  # a data byte 0xFF (held unescaped; sent escaped)
            self._run(b"\xff\xff" if state == _SB else b"\xff", out)
        elif cmd == SE:
            if state == _SB:
                out.append((b"\xff\xf0", 0))
            elif state == _ENV:
                self._end_environ(out)
            self._state = _DATA  # (_DROP: the dropped one ends here)
        elif state == _SB:
            # IAC <cmd> inside: the subnegotiation ends here for us (see the module doc)
            self._state = _DATA
            return i
        else:  # held or dropped NEW-ENVIRON: kept as data (the game gets the IAC doubled)
            self._run(buf[i:i + 2], out)
        return i + 2

    def _end_environ(self, out: list[tuple[bytes, int]]) -> None:
        body = bytes(self._env)
        self._env.clear()
        rewritten = rewrite_environ(body, self.client_ip, self._env_option)
        if rewritten is None:
            self.dropped += 1
            return
        out.append((environ_subnegotiation(self._env_option, rewritten), 0))


def _lines(data: bytes, out: list[tuple[bytes, int]]) -> None:
    """Text, cut after each LF."""
    if b"\n" not in data:
        out.append((data, 0))
        return
    parts = data.split(b"\n")
    last = parts.pop()
    out.extend((p + b"\n", 1) for p in parts)
    if last:
        out.append((last, 0))
