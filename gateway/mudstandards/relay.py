"""The client's bytes under the ``telnet`` subprotocol, on their way to the game (SPEC 9.4), sans-I/O.

The relay passes the client's telnet stream to the game unchanged but for
one thing: in ``IAC SB NEW-ENVIRON IS|INFO ... IAC SE`` every ``IPADDRESS``
variable is removed and, with ``forward_client_ip``, ``VAR IPADDRESS VALUE
<client IP>`` is put at the end (``rewrite_environ``), so a client cannot
forge the address the game trusts. ``RelayInput`` finds those
subnegotiations in the stream however it is cut into frames (one is held
until its ``IAC SE``), and cuts its output after each line (an LF outside
telnet commands), so that the rate limit can let lines through one by one.

The scan is by regular expressions over runs (``_DATA_RUN`` and the others): the
Python loop is per line and per subnegotiation, never per byte nor per telnet
command, and the output is one chunk per line (at most one write to the game each).

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

from ..telnet.subnegotiation import environ_variable, subnegotiation

SE = 0xF0
NEW_ENVIRON, OLD_ENVIRON = 39, 36
IS, SEND, INFO = 0, 1, 2

#: Longest NEW-ENVIRON subnegotiation held (real ones are a few hundred bytes).
MAX_ENVIRON = 1 << 16

_IAC = b"\xff"
# One variable: VAR or USERVAR, its name, and maybe VALUE and its value; ESC quotes the next byte.
_VARIABLE = re.compile(rb"[\x00\x03]((?:[^\x00-\x03]|\x02[\s\S])*)(?:\x01(?:[^\x00-\x03]|\x02[\s\S])*)?")
_NOT_LETTER = re.compile(rb"[^A-Za-z]+")

_DATA, _SB, _ENV, _DROP = 0, 1, 2, 3
_LF = 0x0A

# What the scanner passes over in C, a run at a time (one regex match: no Python step per
# command, so a frame of 2,000 ``IAC IAC`` or ``IAC NOP`` is one pass of the engine, 90 us for
# 4 KB, not 2,000 steps, 1.3 ms), by state, each run ending where the scanner has to look:
# outside subnegotiations, text and every command but ``IAC SB`` (``IAC IAC``, ``IAC NOP``,
# ``IAC WILL <option>``...), up to an LF (a line's end), an ``IAC SB`` or a cut command;
_DATA_RUN = re.compile(rb"[^\xff\n]*+(?:\xff(?:[\xfb-\xfe][\s\S]|[^\xfa-\xfe])[^\xff\n]*+)*+")
# inside another option's subnegotiation, its data (``IAC IAC`` a data byte), up to another IAC;
_SB_RUN = re.compile(rb"[^\xff]*+(?:\xff\xff[^\xff]*+)*+")
# inside a NEW-ENVIRON one, everything up to its ``IAC SE``.
_ENV_RUN = re.compile(rb"[^\xff]*+(?:\xff[^\xf0][^\xff]*+)*+")


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
        kept.append(environ_variable(b"IPADDRESS", client_ip.encode("ascii", "replace")))
    return bytes((kind,)) + b"".join(kept)


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
        if self._state == _DATA and _IAC not in buf:
            _lines(buf, out)  # text alone (nearly every frame): split in C
            return out
        line: list[bytes] = []  # what the game gets of the line under way (no LF yet)
        n = len(buf)
        pos = 0
        while pos < n:
            state = self._state
            if state == _DATA:
                end = _DATA_RUN.match(buf, pos).end()
                if end < n and buf[end] == _LF:  # a line's end: its chunk costs a token
                    line.append(buf[pos:end + 1])
                    out.append((b"".join(line), 1))
                    line = []
                    pos = end + 1
                    continue
                if end > pos:
                    line.append(buf[pos:end])
                if end == n:
                    break
                # IAC SB, or a command cut by the end of the feed (the run takes every other)
                if end + 2 >= n:
                    self._held = buf[end:]
                    break
                option = buf[end + 2]
                if option == NEW_ENVIRON or option == OLD_ENVIRON:
                    self._state = _ENV
                    self._env_option = option
                    self._env.clear()
                else:
                    line.append(buf[end:end + 3])
                    self._state = _SB
                pos = end + 3
            elif state == _SB:
                end = _SB_RUN.match(buf, pos).end()
                if end > pos:
                    line.append(buf[pos:end])
                if end == n:
                    break
                if end + 1 == n:
                    self._held = buf[end:]
                    break
                self._state = _DATA
                if buf[end + 1] == SE:
                    line.append(b"\xff\xf0")
                    pos = end + 2
                else:  # IAC <cmd> inside: the subnegotiation ends here for us (see the module doc)
                    pos = end
            else:  # a NEW-ENVIRON subnegotiation, held (_ENV) or dropped (_DROP), to its IAC SE
                end = _ENV_RUN.match(buf, pos).end()
                if end > pos and state == _ENV:
                    self._hold_environ(buf[pos:end])
                if end == n:
                    break
                if end + 1 == n:
                    self._held = buf[end:]
                    break
                if self._state == _ENV:
                    self._end_environ(line)
                self._state = _DATA  # (_DROP: the dropped one ends here)
                pos = end + 2
        if line:
            out.append((b"".join(line), 0))
        return out

    def _hold_environ(self, part: bytes) -> None:
        """Content of the NEW-ENVIRON subnegotiation under way (``IAC IAC`` still doubled, any
        other ``IAC <cmd>`` kept as data): held, or, past ``MAX_ENVIRON``, the subnegotiation
        is dropped."""
        if _IAC in part:
            part = part.replace(b"\xff\xff", b"\xff")  # pairs from the left: the run's own
        if len(self._env) + len(part) > MAX_ENVIRON:
            self._env.clear()
            self._state = _DROP
            self.dropped += 1
        else:
            self._env += part

    def _end_environ(self, line: list[bytes]) -> None:
        body = bytes(self._env)
        self._env.clear()
        rewritten = rewrite_environ(body, self.client_ip, self._env_option)
        if rewritten is None:
            self.dropped += 1
            return
        line.append(subnegotiation(self._env_option, rewritten))


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
