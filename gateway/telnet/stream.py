"""The telnet byte stream from the game, turned into browser events (sans-I/O).

``TelnetStream`` takes the raw bytes read from the game's socket and returns
events in the order the game sent their bytes:

* ``Text``    game text; complete lines are coalesced into one event per read,
              an unterminated line is held back until it is ended by a
              newline, marked as a prompt (IAC GA / IAC EOR), or no new text
              has come for ``flush_after`` seconds (then ``partial=True``;
              GMCP and negotiation do not count);
* ``Lines``   (asked for with ``bytes_lines``, while the encoding is UTF-8) the
              complete lines of a read of text alone, as the game's bytes, for
              a consumer that escapes them to JSON without a str; the same as
              the ``Text`` they stand for (``Lines.text()``);
* ``Prompt``  the unterminated line at IAC GA or IAC EOR;
* ``Gmcp``    each IAC SB GMCP ... IAC SE; while ``msdp`` is set, each IAC SB MSDP
              ... IAC SE as module "MSDP" (msdp.py); while ``media_url`` is set
              (MSP on), each line that is an MSP trigger, as Client.Media (media.py);
* ``EchoMode`` the game's WILL ECHO / WONT ECHO (state changes only);
* ``Negotiation`` the raw bytes of every other telnet command, for the
              negotiation engine (telnetlib3) to answer; never shown to the
              browser.

Rules (SPEC 4.3): ``\\r\\n`` and ``\\n\\r`` become ``\\n``, every other ``\\r``
and NUL is dropped; text is decoded with the game's encoding through an
incremental decoder, so an event never splits a character; an event never
ends inside an ANSI escape sequence (an incomplete one is held back with the
rest of the line). A complete line is delivered before any later event; the
unterminated line is an event of its own, ordered by the byte that ends it.

The scanner works on whole runs with ``bytes.find``: the only Python-level
loop is per telnet command, never per byte of text. Time is passed in by the
caller (``now``, in seconds, any monotonic clock), which makes the partial
flush testable without sleeping.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from typing import Any, Iterable

import msgspec

from ..gametext import drop_cr_nul, utf8_text
from ..nesting import MAX_NESTING, too_deep
from ..handoff import StreamState
from .media import TRIGGER_LINES, msp_media
from .msdp import decode_msdp

# Telnet bytes (RFC 854) and the options this core interprets itself.
IAC, DONT, DO, WONT, WILL, SB, GA, NOP, SE = 255, 254, 253, 252, 251, 250, 249, 241, 240
EOR_CMD = 239
OPT_ECHO = 1
OPT_GMCP = 201
OPT_MCCP2 = 86
OPT_MSDP = 69
OPT_MSSP = 70
OPT_MSP = 90
OPT_MXP = 91

_IAC = b"\xff"
_IAC_SE = b"\xff\xf0"
_IAC_SB_GMCP = bytes((IAC, SB, OPT_GMCP))
_BETWEEN_GMCP = _IAC_SE + _IAC_SB_GMCP  # one GMCP message's end and the next one's start
#: An IAC SE that ends a subnegotiation: the end of a run of 0xFF bytes of odd length (the
#: others are escaped 0xFF bytes, IAC IAC, and an SE byte after them is content).
_REAL_SE = re.compile(rb"(?<!\xff)(?:\xff\xff)*+\xff\xf0")

#: Longest subnegotiation kept (a GMCP room map can be large); longer ones
#: are discarded up to their IAC SE.
MAX_SUBNEGOTIATION = 1 << 20
#: Longest unterminated line held back before it is sent as a partial echo.
MAX_PENDING_LINE = 1 << 16
#: MCCP2: the most one call (``feed`` or ``resume``) inflates: a read's worth (asyncio and
#: uvloop read at most 256 KiB), what the browser's outbox bound assumes one game read adds
#: (transport/websocket.py READ_BURST). The rest of the read waits as ``backlog``.
INFLATE_STEP = 1 << 18
#: The telnet commands one call (``feed`` or ``resume``) may scan, counted in the cheapest:
#: each costs Python time here (about 1 to 3 us), and one that becomes a ``Negotiation``
#: (every command but GMCP, GA/EOR, NOP and IAC IAC) more in the engine that answers it
#: (client.py: 15 to 35 us), so it counts NEGOTIATION_COST. A read of 256 KiB packed with
#: commands (87,000 ``IAC DO x IAC DONT x``) held the event loop, every other player's too,
#: for a second; now the rest of the read waits as ``backlog`` once the step's commands are
#: spent, as MCCP2's output beyond INFLATE_STEP does: a step costs a few ms (128
#: negotiations). Text counts nothing; each GMCP message one (a read of 32,768 tiny ones
#: was 25 ms of parsing, as much again of sending); a busy game's read of text, GMCP and
#: prompts (some 900 commands in 256 KiB) is one step.
COMMANDS_PER_STEP = 2048
NEGOTIATION_COST = 16
#: The most an MSDP message or MSSP table counts on top (_table_cost): the structure bytes
#: either reader takes at most (msdp.MAX_ELEMENTS, subnegotiation.MAX_MSSP_VARIABLES).
MAX_TABLE_COST = 2 * 8192
#: An "escape sequence" still unterminated after this many characters is not
#: one: it is released as text. Room for a game's OSC 8 link with a long URI (a
#: ``send:`` command, a URL with its query), held whole when a read and the
#: prompt flush cut it; 256 was not. Looked for only in an open line's text, at
#: a partial flush or a prompt: no cost to complete lines.
MAX_ESCAPE = 4096

# A complete escape sequence starting at an ESC: CSI, OSC (BEL or ST ended),
# DCS/SOS/PM/APC strings, nF sequences, and the two-byte forms.
_COMPLETE_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]"
    r"|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|[ -/]+[0-~]"
    r"|(?![\[\]PX^_])[0-~])"
)
_STRING_INTRODUCER = re.compile(r"\x1b[\]PX^_]")


class Text(msgspec.Struct, frozen=True):
    message: str
    partial: bool = False


class Lines(msgspec.Struct, frozen=True):
    """Complete lines of UTF-8 game text as the game sent them, not yet decoded: ``\r``
    and NUL still in them, invalid bytes not yet replaced. The same as
    ``Text(utf8_text(data))``; made only by a stream asked
    for it (``bytes_lines``), for a consumer that encodes text without making a str
    (the session: ``jsonstring.py``)."""

    data: bytes | memoryview

    def text(self) -> Text:
        """The ``Text`` these lines stand for."""
        return Text(utf8_text(self.data))


class Prompt(msgspec.Struct, frozen=True):
    message: str


class Gmcp(msgspec.Struct, frozen=True):
    module: str
    data: Any


class EchoMode(msgspec.Struct, frozen=True):
    echo: bool  # False: the game is asking for a password, the client must hide input


class Negotiation(msgspec.Struct, frozen=True):
    raw: bytes  # a whole telnet command (IAC ...), for the negotiation engine


class CompressionError(msgspec.Struct, frozen=True):
    detail: str


Event = Text | Lines | Prompt | Gmcp | EchoMode | Negotiation | CompressionError

#: GMCP module names seen (a game uses a few dozen), decoded once each; bounded, in number
#: and in length (a longer name, which no real module has, is decoded each time it comes):
#: the cache is the process's, and outlives the session of a game that sends such names.
_module_names: dict[bytes, str] = {}
MAX_MODULE_NAMES = 1024
MAX_MODULE_NAME = 128

_gmcp_json = msgspec.json.Decoder()
_gmcp_raw = msgspec.json.Decoder(msgspec.Raw)


def parse_gmcp(payload: bytes, raw: bool = False) -> Gmcp:
    """``Module.Name <json>`` -> Gmcp; data is None when absent, the raw string when not JSON.

    With ``raw``, valid ASCII JSON is kept as it came (``msgspec.Raw``, checked but not turned
    into Python objects: the gateway only encodes it again); anything else takes the general path,
    where a JSON string is kept as JSON too (``Raw``, ASCII): a ``str`` is only data that is no JSON.
    """
    return parse_gmcp_many((payload,), raw)[0]


def parse_gmcp_many(payloads: Iterable[bytes], raw: bool = False) -> list[Gmcp]:
    """``parse_gmcp`` of each payload (a burst's, in one loop: no call per message)."""
    out: list[Gmcp] = []
    append = out.append
    names = _module_names
    for payload in payloads:
        module, _, rest = payload.partition(b" ")
        name = names.get(module)
        if name is None:
            name = _module_name(module)
        if not rest or rest.isspace():
            append(Gmcp(name, None))
            continue
        # ASCII: no invalid UTF-8 in a text frame. (Shorter than MAX_NESTING: cannot nest that deep.)
        if raw and rest.isascii() and (len(rest) <= MAX_NESTING or not too_deep(rest)):
            try:
                append(Gmcp(name, _gmcp_raw.decode(rest)))
                continue
            except msgspec.DecodeError:
                pass
        try:
            if too_deep(rest):  # no parser or encoder down the line could walk it
                raise ValueError("nested too deeply")
            data = _gmcp_json.decode(rest)  # surrounding white space is fine for JSON
        except (msgspec.DecodeError, ValueError):  # not JSON (or too deep), or not UTF-8
            data = rest.strip().decode("utf-8", "replace")
        else:
            if raw and type(data) is str:
                # A JSON string that is not ASCII: kept as JSON, made again from the str as
                # ASCII JSON (as the raw path's: valid in any text frame), else it is a str like
                # data that is no JSON, and /ws (SPEC 9.3) sent it without its quotes.
                data = msgspec.Raw(json.dumps(data).encode())
        append(Gmcp(name, data))
    return out


def _module_name(module: bytes) -> str:
    """A GMCP module's name, decoded (and kept, up to MAX_MODULE_NAMES names of at most
    MAX_MODULE_NAME bytes)."""
    try:
        name = module.decode()
    except UnicodeDecodeError:
        name = module.decode("utf-8", "replace")
    if len(module) <= MAX_MODULE_NAME and len(_module_names) < MAX_MODULE_NAMES:
        _module_names[module] = name
    return name


def _gmcp_run(data: bytes, pos: int, raw: bool, events: list[Event], most: int) -> int:
    """GMCP messages back to back from ``pos`` (a burst of vitals), at most ``most`` of them:
    the payloads cut out by one ``split`` in C, not a search and a slice each. Those with no
    IAC in them and not oversized are parsed here; the run's last (what follows its IAC SE
    is not known yet) and any from one that is not plain on are left to the full rules.
    Returns where those begin."""
    parts = data[pos + 3:].split(_BETWEEN_GMCP, most)
    del parts[-1]
    if not parts:
        return pos
    # Each separator holds two IACs: any more is an IAC in a payload (escaped, or worse).
    if (data.count(_IAC, pos, pos + _run_bytes(parts)) != 2 * len(parts)
            or max(map(len, parts)) > MAX_SUBNEGOTIATION):
        took = 0
        for part in parts:
            if _IAC in part or len(part) > MAX_SUBNEGOTIATION:
                break
            took += 1
        del parts[took:]
    events.extend(parse_gmcp_many(parts, raw))
    return pos + _run_bytes(parts)


def _run_bytes(parts: list[bytes]) -> int:
    """The bytes of a GMCP run's messages whose payloads are ``parts``, up to the IAC SB of the
    message after them (_gmcp_run)."""
    return sum(map(len, parts)) + len(_BETWEEN_GMCP) * len(parts)


def _table_cost(data: bytes, opt: int, end: int) -> int:
    """What reading the subnegotiation whose option byte is ``data[opt]`` costs beyond a
    negotiation, in commands (COMMANDS_PER_STEP): MSDP (msdp.py) and MSSP (subnegotiation.py,
    in the adapter) are read a Python step per VAR or VAL, about a command's time each, up to
    their MAX_ELEMENTS / MAX_MSSP_VARIABLES. Counted in C. (Counted as one negotiation, a read
    of 256 KiB of large MSDP messages or MSSP tables held the loop 0.1-0.18 s in one step.)"""
    if data[opt] != OPT_MSDP and data[opt] != OPT_MSSP:
        return 0
    return min(data.count(b"\x01", opt + 1, end) + data.count(b"\x02", opt + 1, end), MAX_TABLE_COST)


def _sb_payload(data: bytes, start: int, end: int) -> bytes:
    """A subnegotiation's content, ``data[start:end]``, with its escaped IACs (IAC IAC) undone."""
    payload = data[start:end]
    return payload.replace(b"\xff\xff", b"\xff") if b"\xff\xff" in payload else payload


def _odd_iac_tail(data: bytes) -> bytes:
    """A trailing IAC that may start a command (not the second half of an escaped IAC IAC)."""
    run = len(data) - len(data.rstrip(_IAC))
    return _IAC if run % 2 else b""


def _inflate_prefix(inflater: Any, chunk: bytes, most: int) -> bytes:
    """What ``inflater`` makes (at most ``most`` bytes) of the longest prefix of ``chunk`` that is not corrupt."""
    lo, hi = 0, len(chunk)  # prefix lo is good; find the longest
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            inflater.copy().decompress(chunk[:mid], most)
        except zlib.error:
            hi = mid - 1
        else:
            lo = mid
    try:
        return inflater.decompress(chunk[:lo], most)
    except zlib.error:
        return b""


def safe_end(text: str) -> int:
    """Length of the longest prefix of ``text`` that does not end inside an escape sequence."""
    esc = text.rfind("\x1b")
    if esc < 0:
        return len(text)
    # An OSC/DCS string may contain ESC only as its terminator: check the
    # latest string introducer first.
    intro = None
    for m in _STRING_INTRODUCER.finditer(text, max(0, len(text) - MAX_ESCAPE)):
        intro = m
    if intro is not None and not _COMPLETE_ESCAPE.match(text, intro.start()):
        if len(text) - intro.start() < MAX_ESCAPE:
            return intro.start()
    if len(text) - esc >= MAX_ESCAPE or _COMPLETE_ESCAPE.match(text, esc):
        return len(text)
    return esc


class TelnetStream:
    """Game bytes in, ordered events out. One instance per game connection."""

    def __init__(self, encoding: str = "utf-8", flush_after: float = 0.1,
                 max_pending: int = MAX_PENDING_LINE, raw_gmcp: bool = False,
                 bytes_lines: bool = False) -> None:
        self.raw_gmcp = raw_gmcp   # GMCP JSON as msgspec.Raw (see parse_gmcp)
        # A read of text alone gives its complete lines as Lines (bytes), while the
        # encoding is UTF-8 (see _add_read).
        self.bytes_lines = bytes_lines
        self.set_encoding(encoding)
        self.flush_after = flush_after
        self.max_pending = max_pending
        self._carry = b""          # an incomplete telnet command from the last read
        self._carry_scanned = 0    # bytes of an SB carry already searched for IAC SE
        self._discarding = False   # inside an oversized subnegotiation, skipping to IAC SE
        self._polled = False       # poll() found nothing it may send until more text comes
        self._text = ""            # decoded text not yet sent: complete lines, then the open line
        self._line_open = False    # part of the current line was already sent (partial flush)
        self._now = 0.0            # the time of the read being scanned
        self._last_text = 0.0      # when text last arrived (GMCP, negotiation do not count)
        self.echo = True           # the game echoes (False after WILL ECHO)
        self.inflating = False     # MCCP2 accepted by the negotiation engine
        self.msdp = False          # MSDP accepted: its subnegotiations become Gmcp "MSDP"
        self.media_url: str | None = None  # MSP accepted: trigger lines become Client.Media
        self._inflate: Any = None  # zlib decompressor while the game compresses
        self._backlog = b""        # bytes read, not yet inflated: the step's budget was spent
        self._inflate_full = False # the last step filled its budget: zlib may hold more output
        self._budget = 0           # what the call being made may still inflate
        self._commands = 0         # telnet commands the call being made may still scan
        self._unscanned = b""      # plain bytes not yet scanned: the step's commands were spent
        self.failed = False
        #: While MXP is on (client.py): an ``mxp.MxpParser`` the events go through.
        self.mxp: Any = None

    def set_encoding(self, encoding: str) -> None:
        """The game switched encoding (CHARSET): decode what follows with ``encoding``."""
        self.encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._utf8_lines = self.bytes_lines and codecs.lookup(encoding).name == "utf-8"

    # -- upgrade in place (handoff.py) ---------------------------------------

    @property
    def compressing(self) -> bool:
        """The game's output is MCCP2-compressed now: zlib's state cannot be handed over."""
        return self._inflate is not None

    def to_state(self) -> StreamState:
        if self._inflate is not None:
            raise ValueError("a compressed stream cannot be handed over")
        buffered, flag = self._decoder.getstate()
        # Bytes read and not yet scanned (the commands of a step were spent) go as the carry:
        # there is none besides them then, and they are scanned before the next read.
        carry, scanned = ((self._unscanned + self._backlog, 0) if self._unscanned
                          else (self._carry, self._carry_scanned))
        return StreamState(
            encoding=self.encoding, decoder_buffer=buffered, decoder_flag=flag, carry=carry,
            carry_scanned=scanned, discarding=self._discarding, polled=self._polled,
            text=self._text, line_open=self._line_open, last_text=self._last_text,
            flush_after=self.flush_after, max_pending=self.max_pending, echo=self.echo,
            inflating=self.inflating, failed=self.failed, raw_gmcp=self.raw_gmcp,
            bytes_lines=self.bytes_lines)

    @classmethod
    def from_state(cls, state: StreamState) -> "TelnetStream":
        stream = cls(state.encoding, state.flush_after, state.max_pending, state.raw_gmcp,
                     state.bytes_lines)
        stream._decoder.setstate((state.decoder_buffer, state.decoder_flag))
        if state.carry_scanned:  # half a subnegotiation, searched that far: waits for the rest
            stream._carry = state.carry
            stream._carry_scanned = state.carry_scanned
        else:
            # Bytes a step left unscanned (or half a command): scanned as the backlog, now,
            # not with the game's next read (which may never come); a half command goes
            # back to the carry as it is scanned.
            stream._unscanned = state.carry
        stream._discarding = state.discarding
        stream._polled = state.polled
        stream._text = state.text
        stream._line_open = state.line_open
        stream._last_text = state.last_text
        stream.echo = state.echo
        stream.inflating = state.inflating
        stream.failed = state.failed
        return stream

    # -- input -----------------------------------------------------------

    def feed(self, data: bytes, now: float) -> list[Event]:
        """Bytes read from the game -> events. Never raises on any input.

        MCCP2 output is inflated at most ``INFLATE_STEP`` bytes a call, and at most
        ``commands_per_step`` telnet commands are scanned: the rest of a read waits as
        ``backlog`` for ``resume`` (the caller stops reading the game meanwhile; bytes fed
        anyway queue behind the backlog).
        """
        if self.failed or not data:
            return []
        if self._backlog:
            data = self._backlog + data
            self._backlog = b""
        return self._step(data, now)

    #: The most telnet commands a call scans (COMMANDS_PER_STEP; a test may set less).
    commands_per_step = COMMANDS_PER_STEP

    @property
    def backlog(self) -> bool:
        """Bytes already read wait to be inflated or scanned, or events to go through MXP:
        call ``resume`` (once the consumer keeps up)."""
        return (bool(self._backlog) or self._inflate_full or bool(self._unscanned)
                or (self.mxp is not None and self.mxp.behind))

    def resume(self, now: float) -> list[Event]:
        """The next step of the backlog: the events MXP holds through it (at most its
        ``markup_per_step``), else at most ``INFLATE_STEP`` more bytes inflated, at most
        ``commands_per_step`` more commands scanned."""
        if self.mxp is not None and self.mxp.behind:
            return self._through_mxp([])
        if self.failed or not self.backlog:
            return []
        data, self._backlog = self._backlog, b""
        return self._step(data, now)

    def _step(self, data: bytes, now: float) -> list[Event]:
        events: list[Event] = []
        self._now = now
        self._budget = INFLATE_STEP
        self._commands = max(1, self.commands_per_step)  # at least one: a step always moves on
        rest = data
        if self._unscanned:
            # What the last step had no commands left for comes first, in the mode it was
            # read in (inflated output while the inflater is set), then the backlog.
            plain, self._unscanned = self._unscanned, b""
            started = self._scan(plain, events)
            if self._unscanned:  # spent again: the rest waits
                self._backlog = data
                rest = b""
            elif started:  # compression starts in it: what follows is compressed
                rest = started + data
            elif self._inflate is not None and self._inflate.eof:
                # The compressed stream ended in the last step: plain telnet from here.
                self._inflate = None
                self._inflate_full = False
        # The read, then what follows each start (IAC SB MCCP2 IAC SE) or end (Z_FINISH) of
        # compression in it, in the other mode: a loop, not a call from one into the other, as
        # a game may start and end compression thousands of times in one read.
        if rest or self._inflate_full:
            rest = self._inflate_data(rest, events) if self._inflate is not None else self._scan(rest, events)
        while rest:
            rest = self._inflate_data(rest, events) if self._inflate is not None else self._scan(rest, events)
        self._flush_lines(events)
        return self._through_mxp(events) if self.mxp is not None else events

    def poll(self, now: float) -> list[Event]:
        """Call at ``deadline()``: sends the open line ``flush_after`` after the last text."""
        events: list[Event] = []
        if self._text and now >= self._last_text + self.flush_after:
            self._flush_partial(events)
            self._polled = True  # what is left is an escape sequence still arriving
        return self._through_mxp(events) if self.mxp is not None else events

    def deadline(self) -> float | None:
        """When ``poll`` next has work, or None while nothing is held back."""
        if self._text and not self._polled:
            return self._last_text + self.flush_after
        return None

    def finish(self) -> list[Event]:
        """The game closed: everything held back, as it is (all of MXP's at once)."""
        events = self._held()
        return self._through_mxp(events, whole=True) if self.mxp is not None else events

    def release_mxp(self) -> list[Event]:
        """The events MXP holds, all of them through it now (an upgrade in place: its state
        is not handed over)."""
        return self._through_mxp([], whole=True) if self.mxp is not None else []

    def _held(self) -> list[Event]:
        events: list[Event] = []
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._add_text(tail, events)
        self._flush_lines(events)
        if self._text:
            events.append(Text(self._text, partial=True))
            self._text = ""
        return events

    def _through_mxp(self, events: list[Event], whole: bool = False) -> list[Event]:
        """The events through MXP (SPEC 5): its text with the markup taken out (mxp.py); those
        after its step's markup (``whole``: none) wait in it, and are the backlog."""
        mxp = self.mxp
        events = mxp.filter(events, whole)
        if mxp.off:  # WONT MXP: what follows is text as it comes
            self.mxp = None
        return events

    # -- scanning ----------------------------------------------------------

    def _scan(self, data: bytes, events: list[Event]) -> bytes:
        """Scan plain telnet; returns what follows the start of compression, if it starts (to inflate)."""
        scanned = 0
        if self._carry:
            data = self._carry + data
            scanned = self._carry_scanned
            self._carry = b""
            self._carry_scanned = 0
        n = len(data)
        pos = 0
        if self._discarding:
            end = self._find_se(data, 0, 0)
            if end < 0:
                self._carry = _odd_iac_tail(data)
                return b""
            self._discarding = False
            pos = end + 2
        decode = self._decoder.decode
        add = self._add_raw
        find = data.find
        left = self._commands  # what the step may still scan
        try:
            while pos < n:
                i = find(IAC, pos)
                if i < 0:
                    if pos == 0:
                        self._add_read(data, events)  # a read of text alone: the fast path
                    else:
                        add(data[pos:], events)
                    return b""
                if i > pos:
                    add(data[pos:i], events)
                if left <= 0:
                    # The step's commands are spent: the rest waits for the next (backlog).
                    self._unscanned = data[i:]
                    return b""
                left -= 1
                if i + 1 >= n:
                    self._carry = data[i:]
                    return b""
                cmd = data[i + 1]
                if cmd == SB:
                    # Fast path: an IAC SE not preceded by an escaped IAC; else the full search.
                    end = find(_IAC_SE, i + 2) if i else -1
                    if end < 0 or data[end - 1] == IAC:
                        end = self._find_se(data, i + 2, max(i + 2, scanned - 1) if i == 0 else i + 2)
                    if end < 0:
                        if n - i > MAX_SUBNEGOTIATION:
                            # Oversized: drop it, and everything up to its IAC SE.
                            self._discarding = True
                            self._carry = _odd_iac_tail(data)
                        else:
                            self._carry = data[i:]
                            self._carry_scanned = n - i
                        return b""
                    pos = end + 2
                    if end - i > MAX_SUBNEGOTIATION:
                        continue  # oversized, even though it came whole: dropped
                    if data[i + 2] == OPT_GMCP:  # the hot path: inline
                        if "\n" in self._text:
                            self._flush_lines(events)
                        raw = self.raw_gmcp
                        events.append(parse_gmcp(_sb_payload(data, i + 3, end), raw))
                        if left > 0 and data.startswith(_IAC_SB_GMCP, pos):
                            # Each message of the run counts a command (COMMANDS_PER_STEP): a
                            # read of 32,768 tiny ones took 25 ms here, and as much again to
                            # send; the rest waits as the backlog, as other commands do.
                            taken = len(events)
                            pos = _gmcp_run(data, pos, raw, events, left)
                            left -= len(events) - taken
                        # The rest of GMCP back to back (the run's last, or one _gmcp_run left
                        # to the full rules): each plain one here, any other above
                        while left > 0 and data.startswith(_IAC_SB_GMCP, pos):
                            end = find(_IAC_SE, pos + 3)
                            if end < 0 or data[end - 1] == IAC or end - pos > MAX_SUBNEGOTIATION:
                                break
                            payload = data[pos + 3:end]  # _sb_payload, inline
                            if b"\xff\xff" in payload:
                                payload = payload.replace(b"\xff\xff", b"\xff")
                            events.append(parse_gmcp(payload, raw))
                            pos = end + 2
                            left -= 1
                    else:
                        left -= NEGOTIATION_COST - 1 + _table_cost(data, i + 2, end)
                        if self._subnegotiation(data[i:end + 2], events):
                            # MCCP2 starts right after this IAC SE: the rest is compressed. The
                            # text before it in this read counts against the step's budget.
                            self._inflate = zlib.decompressobj()
                            self._budget -= pos
                            return data[pos:]
                elif cmd == GA or cmd == EOR_CMD:
                    self._prompt(events)
                    pos = i + 2
                elif cmd == IAC:
                    text = decode(_IAC)
                    if text:
                        self._add_text(text, events)
                    pos = i + 2
                elif cmd in (WILL, WONT, DO, DONT):
                    if i + 2 >= n:
                        self._carry = data[i:]
                        return b""
                    self._option(cmd, data[i + 2], data[i:i + 3], events)
                    left -= NEGOTIATION_COST - 1
                    pos = i + 3
                elif cmd == NOP:
                    pos = i + 2
                else:
                    events.append(Negotiation(data[i:i + 2]))
                    left -= NEGOTIATION_COST - 1
                    pos = i + 2
            return b""
        finally:
            self._commands = left

    @staticmethod
    def _find_se(data: bytes, start: int, search_from: int) -> int:
        """Index of the IAC of the IAC SE ending the subnegotiation whose content starts at ``start``.

        IAC IAC inside SB is an escaped 0xFF: an IAC SE is real only when the run of 0xFF
        bytes ending at its IAC (from ``start`` on) has odd length. The runs are measured in
        C, not a Python step per 0xFF byte (a 1-byte read ending 1 MiB of them took 53 ms)
        nor per escaped IAC SE (256 KiB of ``IAC IAC SE`` took 44 ms).
        """
        j = data.find(_IAC_SE, search_from)
        if j < 0:
            return -1
        before = data[start:j]
        if (len(before) - len(before.rstrip(_IAC))) % 2 == 0:
            return j
        m = _REAL_SE.search(data, j + 2)  # after an escaped one: the next real one
        return m.end() - 2 if m else -1

    def _option(self, cmd: int, opt: int, raw: bytes, events: list[Event]) -> None:
        if opt == OPT_ECHO and cmd in (WILL, WONT):
            echo = cmd == WONT
            if echo != self.echo:
                self.echo = echo
                self._flush_lines(events)
                events.append(EchoMode(echo))
        elif cmd == WONT:  # off from this byte on (on again only once the engine said DO)
            if opt == OPT_MSDP:
                self.msdp = False
            elif opt == OPT_MSP:
                self.media_url = None
        if opt == OPT_MXP and self.mxp is not None:
            self._flush_lines(events)  # the text before WONT MXP is still MXP
        events.append(Negotiation(raw))

    def _subnegotiation(self, raw: bytes, events: list[Event]) -> bool:
        """Handle ``IAC SB ... IAC SE``; True when MCCP2 compression starts after it."""
        if len(raw) < 5:  # IAC SB IAC SE: no option byte
            return False
        opt = raw[2]
        if opt == OPT_MCCP2:
            return self.inflating and self._inflate is None
        if opt == OPT_MSDP and self.msdp:
            if "\n" in self._text:
                self._flush_lines(events)
            data = decode_msdp(_sb_payload(raw, 3, len(raw) - 2), self.encoding)
            if data is not None:  # malformed: no event (SPEC 5)
                events.append(Gmcp("MSDP", data))
            return False
        if opt == OPT_MXP and self.mxp is not None:
            self._flush_lines(events)  # the reset comes after the lines before it
        events.append(Negotiation(raw))
        return False

    def _inflate_data(self, data: bytes, events: list[Event]) -> bytes:
        """Inflate MCCP2 data and scan it, up to the step's budget; the rest is the backlog.
        Returns what follows the end of compression, if it ends (plain telnet, to scan)."""
        chunk = data
        while self._inflate is not None and (chunk or self._inflate_full):
            most = self._budget
            if most <= 0:
                self._backlog = chunk  # inflated by resume(), once the consumer keeps up
                return b""
            inflater = self._inflate
            saved = inflater.copy()
            try:
                plain = inflater.decompress(chunk, most)
            except zlib.error as exc:
                # zlib gives nothing of a call that fails: find the good prefix again. The
                # session ends with it: all of it is scanned (at most a step's output).
                self._inflate_full = False
                self._commands = 1 << 62
                self._scan(_inflate_prefix(saved, chunk, most), events)
                self._fail(f"corrupt compressed stream: {exc}", events)
                return b""
            # Output cut at the budget: zlib may hold more even with all the input taken.
            self._inflate_full = len(plain) == most
            self._budget = most - len(plain)
            if plain:
                self._scan(plain, events)
                if self._unscanned:
                    # The step's commands are spent: the rest of the output waits unscanned
                    # (_step scans it first), what the inflater did not take as the backlog;
                    # after the end of the stream (eof), that is plain telnet.
                    self._backlog = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                    return b""
            if inflater.eof:
                # The game ended compression: what follows is plain telnet again.
                self._inflate = None
                self._inflate_full = False
                return inflater.unused_data
            chunk = inflater.unconsumed_tail
        return b""

    def _fail(self, detail: str, events: list[Event]) -> None:
        self._inflate = None
        self._carry = self._backlog = self._unscanned = b""
        self._inflate_full = False
        events.extend(self._held())
        events.append(CompressionError(detail))
        self.failed = True

    # -- text ----------------------------------------------------------------

    def _add_raw(self, raw: bytes, events: list[Event]) -> None:
        """A run of game text bytes (no telnet command in it)."""
        self._add_clean(drop_cr_nul(raw), events)

    def _add_clean(self, clean: bytes, events: list[Event]) -> None:
        """Text bytes with ``\r`` and NUL dropped: decoded and held back or sent."""
        text = self._decoder.decode(clean)
        if text:
            self._add_text(text, events)

    def _add_read(self, data: bytes, events: list[Event]) -> None:
        """A whole read that is text alone (the flood case): its complete lines become one
        event apart from its open line, with one copy of the text, not three; as bytes
        (``Lines``) when asked for and the text is UTF-8, so they are never a str. The same
        text as ``_add_raw`` then ``_flush_lines`` (property-tested)."""
        if self.media_url is not None and (b"!!" in data or "!" in self._text):
            # MSP on and maybe a trigger (its "!!" may have started in the held line):
            # the general path, where _flush_lines finds it.
            self._add_raw(data, events)
            return
        nl = data.rfind(b"\n")  # the same line end before and after dropping \r and NUL
        if nl < 0:
            self._add_clean(drop_cr_nul(data), events)
            return
        rest = drop_cr_nul(data[nl + 1:]) if nl + 1 < len(data) else b""
        if self._utf8_lines:
            lines = memoryview(data)[:nl + 1] if rest else data  # not a copy
            held, _ = self._decoder.getstate()  # half a character from the last read
            if held or self._text:
                self._decoder.reset()
                lines = b"".join((self._text.encode(), held, lines))
            events.append(Lines(lines))
            rest_text = self._decoder.decode(rest) if rest else ""
        else:
            decode = self._decoder.decode
            lines_text = decode(drop_cr_nul(data[:nl + 1]))  # ends with "\n": nothing held back
            events.append(Text(self._text + lines_text if self._text else lines_text))
            rest_text = decode(rest) if rest else ""
        self._last_text = self._now
        self._polled = False
        self._text = rest_text
        self._line_open = False
        if len(rest_text) >= self.max_pending:
            self._flush_partial(events)  # a line longer than we hold back: what is safe now

    def _add_text(self, text: str, events: list[Event]) -> None:
        """Decoded text (with no ``\r`` or NUL: they were dropped as bytes)."""
        # SPEC 4.3: the open line is flushed ``flush_after`` after the last *text*;
        # GMCP and negotiation streaming in meanwhile must not hold a prompt back.
        self._last_text = self._now
        self._polled = False
        self._text += text
        held = len(self._text)
        if held > self.max_pending:
            # More than we hold back: the complete lines go now (else a read of lines between
            # telnet commands, 256 KiB of ``line IAC IAC``, copied all it held at each one: 0.2 s
            # of the loop), then, of a line longer than that, what is safe.
            if self._text.rfind("\n") < held - self.max_pending:
                self._flush_partial(events)
            else:
                self._flush_lines(events)

    def _flush_lines(self, events: list[Event]) -> None:
        """Send every complete line held back (one event)."""
        text = self._text
        nl = text.rfind("\n")
        if nl < 0:
            return
        if self.media_url is not None and "!!" in text:
            self._lines_with_triggers(text[:nl + 1], events)
        else:
            events.append(Text(text[:nl + 1]))
        self._text = text[nl + 1:]
        self._line_open = False

    def _lines_with_triggers(self, lines: str, events: list[Event]) -> None:
        """Complete lines, each MSP trigger line among them (with its line end) a Client.Media event."""
        start = 0
        for m in TRIGGER_LINES.finditer(lines):
            if m.start() == 0 and self._line_open:
                continue  # the rest of a line whose start was sent already: not a line start
            media = msp_media(m[1], m[2], self.media_url)  # type: ignore[arg-type]
            if media is None:
                continue
            if m.start() > start:
                events.append(Text(lines[start:m.start()]))
            events.append(Gmcp(*media))
            start = m.end()
        if start < len(lines):
            events.append(Text(lines[start:]))

    def _flush_partial(self, events: list[Event]) -> None:
        """Send everything held back: the complete lines, then the open line up to a safe end."""
        self._flush_lines(events)
        text = self._text
        cut = safe_end(text)
        if cut:
            events.append(Text(text[:cut], partial=True))
            self._text = text[cut:]
            self._line_open = True

    def _prompt(self, events: list[Event]) -> None:
        self._flush_lines(events)
        text = self._text
        if not text and not self._line_open:
            return  # GA at the start of a line: no prompt to mark
        cut = safe_end(text)
        events.append(Prompt(text[:cut]))
        self._text = text[cut:]
        self._line_open = False
