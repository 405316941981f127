"""MXP (MUD eXtension Protocol, telnet option 91): the gateway as the MXP client (sans-I/O).

SPEC 5 (the MXP bullet) is the contract. ``MxpParser`` sits behind
``TelnetStream`` (stream.py hands it each read's events) and turns what MXP
means into what the browser already takes: text with ANSI SGR styles and OSC 8
hyperlinks (``https:`` from ``<A>``, ``send:`` and ``prompt:`` from
``<SEND>``). No MXP markup ever leaves it: a tag either takes effect and is
consumed, or it stays in the text exactly as received (a text node in the page).

Its input is the stream's text events, which are whole lines (the stream holds
the open line back until its line end, a prompt mark, or ``prompt_flush_ms``),
so a tag is never split by a read; a ``<`` that is not a complete tag within
the event (1 KiB, no line end inside) is text. Per session it keeps the line
mode, the open tags, the SGR state the game set, and the entities and elements
the game defined, each bounded (constants below). Every step is a regex or
``str.find`` over the text; the Python loop runs per tag, entity or line end,
never per character, and an event with no ``<``, ``&`` or ``ESC[n z`` (a
:class:`Lines` event included: never decoded) passes through untouched. A call
parses at most MARKUP_PER_STEP of markup; what follows waits in ``held``, the
stream's backlog (stream.py ``resume``).

What it gives besides text: :class:`MxpReply` (bytes the game asked for with
``<VERSION>``/``<SUPPORT>``, for the connection to write) and ``Gmcp`` events
``Client.Media.Play``/``Stop`` for ``<SOUND>``/``<MUSIC>`` (when the game has a
``media_url``), after the text event they came in.
"""

from __future__ import annotations

import html.entities
import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from .colournames import COLOURS
from .media import DEFAULT_LOOPS, DEFAULT_PRIORITY, DEFAULT_VOLUME, media_play, media_stop
from .stream import (IAC, MAX_ESCAPE, OPT_MXP, SB, WONT, Event, Gmcp, Lines, Negotiation, Prompt, Text,
                     safe_end)

#: Longest tag taken (from ``<`` to ``>``); a longer one is text.
MAX_TAG = 1024
#: Entities and elements a session may define, each at most MAX_DEFINITION characters.
MAX_ENTITIES = 256
MAX_ELEMENTS = 256
MAX_DEFINITION = 1024
#: Custom elements expand at most this deep; entities and expansions add at most
#: EXPANSION_FACTOR times the length of the line they are on.
MAX_DEPTH = 4
EXPANSION_FACTOR = 8
#: Tags open at once (a line end closes them); beyond this a tag takes no effect.
MAX_OPEN_TAGS = 64
#: A link's command (SEND) longer than this gives plain text.
MAX_COMMAND = 1024
#: The game's SGR sequences one text followed (``SgrState.track``) at most: the latest of each
#: distinct one, the newest first (a game's line holds a few; past this many different ones
#: since a reset, the older ones' effect is forgotten). Each counts as markup (MARKUP_PER_STEP).
MAX_TRACKED = 64
#: The markup one call of ``filter`` parses (one step of the stream: ``feed``, ``resume``,
#: ``poll``): tags, entities, line ends, mode changes and the game's SGR sequences followed
#: (MAX_TRACKED), each 1 to 3 us here (a read of
#: 256 KiB of ``<B>`` held the event loop, every other player's, 0.2 s). What follows waits,
#: every event after it too, as ``held`` (the stream's backlog: the game is not read until it
#: is through, a step a turn of the loop). A busy MXP game's read is one step.
MARKUP_PER_STEP = 2048

OPEN, SECURE, LOCKED = 0, 1, 2

# A mode change: with "<" and "&" (found with `in`), what makes text worth parsing.
_MODE = re.compile(r"\x1b\[[0-9]*z")
_MODE_BYTES = re.compile(rb"\x1b\[[0-9]*z")
# Where the parser stops: a tag ("<" and a letter, "/" or "!"), an entity ("&" and a name
# or "#"), a mode change, the start of the game's own escape string (OSC, DCS, SOS, PM,
# APC: passed over whole, SPEC 4.2), and a line end while a tag or a line mode is open.
_STOP = re.compile(r"<(?=[A-Za-z/!])|&(?=[#A-Za-z_])|\n|\x1b(?:\[([0-9]*)z|[\]PX^_])")
_STOP_CLEAN = re.compile(r"<(?=[A-Za-z/!])|&(?=[#A-Za-z_])|\x1b(?:\[([0-9]*)z|[\]PX^_])")
# An escape string to its end (BEL, or ST: ESC \) on its line; one without end is not one
# (nor does one pass over a line end: the line's mode ends there all the same).
_ESCAPE_STRING = re.compile(r"\x1b[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)")
_STOP_LOCKED = re.compile(r"\n|\x1b\[([0-9]*)z")  # locked: nothing is parsed
_STOP_LOCKED_CLEAN = re.compile(r"\x1b\[([0-9]*)z")
_STOP_INNER = re.compile(r"<(?=[A-Za-z/!])|&(?=[#A-Za-z_])")  # an element's expansion
# A tag: no line end, no ESC, no "<" (so a failed match stops at the next "<": linear),
# quotes balanced (so ">" may sit inside a quoted value).
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_.-]*)((?:[^<>'\"\n\x1b]|\"[^<\"\n\x1b]*\"|'[^<'\n\x1b]*')*)>")
# A definition (<!ELEMENT ...>) may hold tags in its quoted values: its failed matches
# are paid for from a budget per line (MxpParser._match_tag).
_DEFINITION_TAG = re.compile(r"<(/?)(![A-Za-z]+)((?:[^<>'\"\n\x1b]|\"[^\"\n\x1b]*\"|'[^'\n\x1b]*')*)>")
#: Characters failed definition matches may scan per line: this plus 4 times the line.
SCAN_ALLOWANCE = 4 * MAX_TAG
_ATTR = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*)?(\"[^\"]*\"|'[^']*'|[^\s\"'=]+)")
_ENTITY = re.compile(r"&(#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z_][A-Za-z0-9_.-]{0,63});")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TEXT_ENTITY = re.compile(r"&text;", re.IGNORECASE)
_SGR = re.compile(r"\x1b\[([0-9;:]{0,64})m")
_SGR_BYTES = re.compile(rb"\x1b\[([0-9;:]{0,64})m")
_HEX_COLOUR = re.compile(r"#([0-9a-fA-F]{6})")

_STYLE_SGR = {"B": "1", "BOLD": "1", "STRONG": "1", "I": "3", "ITALIC": "3", "EM": "3",
              "U": "4", "UNDERLINE": "4", "S": "9", "STRIKEOUT": "9", "H": "1", "HIGH": "1",
              "H1": "1", "H2": "1", "H3": "1", "H4": "1", "H5": "1", "H6": "1"}
#: Tags that take effect in open mode (SPEC 5: "Open mode").
OPEN_TAGS = frozenset(_STYLE_SGR) | {"C", "COLOR", "FONT", "BR", "P", "NOBR", "SBR"}
#: Removed (in secure mode), their text kept: the gateway draws no frames or images,
#: never dials, never sends credentials.
IGNORED_TAGS = frozenset({"IMAGE", "FRAME", "DEST", "GAUGE", "STAT", "EXPIRE", "HR", "SMALL", "TT",
                          "RELOCATE", "USER", "PASSWORD", "FILTER", "SCRIPT"})
_DEFINITIONS = {"!ELEMENT": "element", "!EL": "element", "!ENTITY": "entity", "!EN": "entity",
                "!ATTLIST": "attlist", "!AT": "attlist"}
#: What ``<SUPPORT>`` answers with ``+``.
SUPPORTED_TAGS = tuple(sorted(OPEN_TAGS | {"A", "SEND", "VAR", "V", "SOUND", "MUSIC", "VERSION",
                                           "SUPPORT", "!ELEMENT", "!ENTITY", "!ATTLIST"}))
_KNOWN = frozenset(SUPPORTED_TAGS) | IGNORED_TAGS | frozenset(_DEFINITIONS)

#: Words that are flags, not positional values, per tag.
_SEND_WORDS = frozenset({"PROMPT"})
_DEFINITION_WORDS = frozenset({"OPEN", "EMPTY", "DELETE", "ADD", "REMOVE", "PRIVATE", "PUBLISH"})

_BASIC_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'", "nbsp": "\xa0"}
_HTML_ENTITIES = html.entities.html5


def has_mxp(text: "str | bytes") -> bool:
    """Whether ``text`` holds anything MXP acts on: ``<``, ``&`` or ``ESC[n z`` (C-speed searches)."""
    if isinstance(text, str):
        return "<" in text or "&" in text or ("\x1b[" in text and _MODE.search(text) is not None)
    return b"<" in text or b"&" in text or (b"\x1b[" in text and _MODE_BYTES.search(text) is not None)


class MxpReply(msgspec.Struct, frozen=True):
    """Bytes to write to the game (answers to ``<VERSION>`` and ``<SUPPORT>``)."""

    data: bytes


# -- SGR state ------------------------------------------------------------------

class SgrState:
    """The SGR attributes in effect (bounded: a set of flags and two colours)."""

    __slots__ = ("flags", "fg", "bg")

    _OFF = {21: (1,), 22: (1, 2), 23: (3,), 24: (4,), 25: (5, 6), 27: (7,), 28: (8,), 29: (9,)}

    def __init__(self) -> None:
        self.flags: set[int] = set()
        self.fg: str | None = None
        self.bg: str | None = None

    def copy(self) -> "SgrState":
        state = SgrState()
        state.flags = set(self.flags)
        state.fg, state.bg = self.fg, self.bg
        return state

    def reset(self) -> None:
        self.flags.clear()
        self.fg = self.bg = None

    def apply(self, params: str) -> None:
        """One SGR sequence's parameters (``1;31``, ``38;2;1;2;3``, ``""``)."""
        parts = params.replace(":", ";").split(";")
        i, n = 0, len(parts)
        while i < n:
            p = parts[i]
            code = int(p) if p.isdigit() and len(p) < 4 else 0 if not p else -1
            i += 1
            if code == 0:
                self.reset()
            elif 1 <= code <= 9:
                self.flags.add(code)
            elif code in self._OFF:
                self.flags.difference_update(self._OFF[code])
            elif 30 <= code <= 37 or 90 <= code <= 97:
                self.fg = str(code)
            elif 40 <= code <= 47 or 100 <= code <= 107:
                self.bg = str(code)
            elif code == 39:
                self.fg = None
            elif code == 49:
                self.bg = None
            elif code in (38, 48):
                take = 2 if i < n and parts[i] == "5" else 4 if i < n and parts[i] == "2" else 0
                if take and i + take <= n and all(x.isdigit() and len(x) < 4 for x in parts[i:i + take]):
                    colour = ";".join((str(code), *parts[i:i + take]))
                    if code == 38:
                        self.fg = colour
                    else:
                        self.bg = colour
                i += take if take else n  # a malformed extended colour ends the sequence

    def track(self, text: "str | bytes") -> int:
        """Follow the game's SGR sequences in ``text`` (from its last full reset on): the latest
        of each distinct one, at most MAX_TRACKED of them (the newest). Returns how many."""
        if isinstance(text, str):
            if "\x1b[" not in text:
                return 0
            cut = max(text.rfind("\x1b[0m"), text.rfind("\x1b[m"))
            pattern: Any = _SGR
        else:
            if b"\x1b[" not in text:
                return 0
            cut = max(text.rfind(b"\x1b[0m"), text.rfind(b"\x1b[m"))
            pattern = _SGR_BYTES
        if cut >= 0:
            self.reset()
        found = pattern.findall(text, max(cut, 0))
        if len(found) > 1:
            # Each code of a sequence sets a part of the state (a flag, a colour, all of it):
            # one applied again sets the same, so only its latest counts. (Found in C: a read of
            # 256 KiB of sequences, 17,000 to 37,000, was as many Python steps, 60-90 ms.)
            found = list(dict.fromkeys(reversed(found)))[:MAX_TRACKED]
            found.reverse()
        for params in found:
            self.apply(params if isinstance(params, str) else params.decode("ascii"))
        return len(found)

    def render(self) -> str:
        parts = [str(f) for f in sorted(self.flags)]
        if self.fg:
            parts.append(self.fg)
        if self.bg:
            parts.append(self.bg)
        return ";".join(parts)


def colour_sgr(value: str | None, background: bool) -> str | None:
    """An MXP colour (a CSS name or ``#RRGGBB``) as SGR truecolour parameters."""
    if not value:
        return None
    value = value.strip()
    m = _HEX_COLOUR.fullmatch(value)
    if m:
        hx = m.group(1)
        rgb = (int(hx[0:2], 16), int(hx[2:4], 16), int(hx[4:6], 16))
    else:
        rgb = COLOURS.get(value.lower())  # type: ignore[assignment]
        if rgb is None:
            return None
    return f"{48 if background else 38};2;{rgb[0]};{rgb[1]};{rgb[2]}"


# -- attributes -------------------------------------------------------------------

class Attrs:
    """A tag's attributes: positional values in order, named ones by upper-case name."""

    __slots__ = ("positional", "named", "flags")

    def __init__(self, text: str, words: frozenset[str] = frozenset()) -> None:
        self.positional: list[str] = []
        self.named: dict[str, str] = {}
        self.flags: set[str] = set()  # the unquoted ``words`` given (PROMPT, OPEN, ...), upper case
        for m in _ATTR.finditer(text):
            name, value = m.group(1), m.group(2)
            quoted = value[:1] in "\"'"
            if quoted:
                value = value[1:-1]
            if name:
                self.named.setdefault(name.upper(), value)
            elif not quoted and value.upper() in words:
                self.flags.add(value.upper())
            else:
                self.positional.append(value)

    def get(self, name: str, index: int | None = None) -> str | None:
        """The attribute ``name``, else the ``index``-th positional value."""
        value = self.named.get(name)
        if value is None and index is not None and index < len(self.positional):
            value = self.positional[index]
        return value


def percent(command: str) -> str:
    """RFC 3986: every byte of the UTF-8 form outside the unreserved set, upper-case hex."""
    return quote(command, safe="", encoding="utf-8", errors="strict")


def https_url(href: str | None) -> str | None:
    """An absolute http(s) URL fit for OSC 8 (no control character or space), else None."""
    if not href or _CONTROL.search(href) or " " in href:
        return None
    try:
        parts = urlsplit(href)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Anything beyond ASCII as UTF-8 escapes: the OSC 8 string stays printable ASCII.
    return quote(href, safe="".join(chr(c) for c in range(0x21, 0x7f) if chr(c) != "%") + "%")


def media_event(kind: str, attrs: Attrs, media_url: str) -> Gmcp | None:
    """``<SOUND>``/``<MUSIC>`` as the same Client.Media message as an MSP trigger (media.py)."""
    name = attrs.get("FNAME", 0)
    if not name or _CONTROL.search(name) or any(c.isspace() for c in name):
        return None
    if name.upper() == "OFF":
        return Gmcp(*media_stop(kind))

    def number(key: str, default: int, low: int, high: int) -> int:
        value = attrs.get(key)
        digits = value.lstrip("-") if value is not None else ""
        # ASCII digits: str.isdigit takes a superscript two too, which int() refuses (a raise
        # out of the stream, which never raises).
        if not (digits.isascii() and digits.isdigit()) or len(value) > 6:  # type: ignore[arg-type]
            return default
        return max(low, min(high, int(value)))

    return Gmcp(*media_play(name, media_url, kind, volume=number("V", DEFAULT_VOLUME, 0, 100),
                            loops=number("L", DEFAULT_LOOPS, -1, 1 << 16) or DEFAULT_LOOPS,
                            priority=number("P", DEFAULT_PRIORITY, 0, 100), tag=attrs.get("T") or None))


# -- the parser ----------------------------------------------------------------------

class _Open:
    """A tag that took effect and is still open."""

    __slots__ = ("name", "kind", "sgr")

    def __init__(self, name: str, kind: str, sgr: str | None = None) -> None:
        self.name = name  # upper case; a custom element's marker has kind "element"
        self.kind = kind  # style, link, var, p, element, ignored
        self.sgr = sgr


class _Link:
    """A link being read: its output is kept until its end gives the command (``&text;``)."""

    __slots__ = ("kind", "href", "hint", "prompt", "uri", "parts", "text", "fixed")

    def __init__(self, kind: str, href: str | None, hint: str | None = None, prompt: bool = False) -> None:
        self.kind, self.href, self.hint, self.prompt = kind, href, hint, prompt
        self.uri: str | None = None
        self.fixed = False  # the URI was made already (a part went out with an event)
        self.parts: list[str] = []
        self.text: list[str] = []


class _Element:
    __slots__ = ("definition", "atts", "open", "empty")

    def __init__(self, definition: str, atts: list[tuple[str, str]], open_: bool, empty: bool) -> None:
        self.definition, self.atts, self.open, self.empty = definition, atts, open_, empty


#: Pieces of a VAR's text kept before they are joined (and cut: ``_shorten_var``).
_VAR_PARTS = 32


def _without_controls(text: str) -> str:
    """``text`` as an entity keeps it: control characters dropped."""
    return _CONTROL.sub("", text) if _CONTROL.search(text) else text


def _shorten_var(parts: list[str]) -> None:
    """A VAR's text so far as one piece, as ``_set_entity`` reads it (controls dropped), cut
    after MAX_DEFINITION + 1 characters: a value that long is never kept, however it goes on."""
    parts[:] = [_without_controls("".join(parts))[:MAX_DEFINITION + 1]]


def _parse_atts(text: str) -> list[tuple[str, str]]:
    """``ATT='col=red size'`` -> [("COL", "red"), ("SIZE", "")]."""
    atts: list[tuple[str, str]] = []
    for m in _ATTR.finditer(text):
        name, value = m.group(1), m.group(2)
        if value[:1] in "\"'":
            value = value[1:-1]
        if name:
            atts.append((name.upper(), value))
        elif _NAME.fullmatch(value):
            atts.append((value.upper(), ""))
    return atts


class MxpParser:
    """One session's MXP client state: text events in, text with ANSI and OSC 8 out."""

    __slots__ = ("version", "media_url", "entities", "elements", "default", "mode", "temp_secure",
                 "stack", "game_sgr", "link", "vars", "p", "nobr", "off", "held", "_out", "_budget",
                 "_scan_budget", "_line_limit", "_put_plain", "_extra", "_left", "_cut")

    def __init__(self, version: str, media_url: str | None = None) -> None:
        self.version = version
        self.media_url = media_url
        self.entities: dict[str, str] = {}
        self.elements: dict[str, _Element] = {}
        self.default = OPEN
        self.mode = OPEN
        self.temp_secure = False   # ESC[4z: the next tag is secure
        self.stack: list[_Open] = []
        self.game_sgr = SgrState()
        self.link: _Link | None = None
        self.vars: list[tuple[str, list[str]]] = []  # open <VAR>s: name, text so far
        self.p = 0                 # open <P>s: line ends are spaces
        self.nobr = False          # the next line end is dropped
        self.off = False           # the game said WONT MXP
        self.held: list[Event] = []  # events not yet through (the step's markup was spent)
        self._out: list[str] = []
        self._budget = 0
        self._scan_budget = 0
        self._line_limit = 0       # where the line the budgets are for ends
        self._put_plain = False
        self._extra: list[Event] = []
        self._left = 0             # the markup the call may still parse
        self._cut = False          # the text convert() gets is the rest of a cut one

    # -- the stream's hook -----------------------------------------------------

    @property
    def clean(self) -> bool:
        """At the default state: a line end changes nothing, text passes through."""
        return (not self.stack and self.link is None and self.mode == self.default
                and not self.temp_secure and not self.p and not self.nobr and not self.vars)

    #: The markup a call of ``filter`` parses (MARKUP_PER_STEP; a test may set less).
    markup_per_step = MARKUP_PER_STEP

    @property
    def behind(self) -> bool:
        """Events wait to go through (the last call's markup was spent): call ``filter`` again."""
        return bool(self.held)

    def filter(self, events: list[Event], whole: bool = False) -> list[Event]:
        """A call's events, those ``held`` first, with their text through MXP (the others as
        they are), in order. At most ``markup_per_step`` of markup is parsed, unless ``whole``:
        the text after that, and every event after it, is ``held`` for the next call."""
        if self.held:
            events = self.held + events
            self.held = []
        self._left = 1 << 62 if whole else max(1, self.markup_per_step)
        out: list[Event] = []
        for i, ev in enumerate(events):
            t = type(ev)
            if self.off:
                out.append(ev)
                continue
            if self._left <= 0:  # spent: the rest waits, in order
                self.held = events[i:]
                break
            if t is Lines:
                data = ev.data  # type: ignore[union-attr]
                raw = bytes(data) if type(data) is memoryview else data
                if self.clean and not has_mxp(raw):  # the flood path: stays bytes, untouched
                    self._left -= self.game_sgr.track(raw)
                    out.append(ev)
                    continue
                ev = ev.text()  # type: ignore[union-attr]
                t = Text
            if t is Text or t is Prompt:
                message, rest = self.convert(ev.message)  # type: ignore[union-attr]
                if rest:  # cut where the step's markup was spent: what went is text
                    self._cut = True
                    if message:
                        out.append(Text(message, True))
                    self.held = [Prompt(rest) if t is Prompt else Text(rest, ev.partial)]  # type: ignore[union-attr]
                    self.held += events[i + 1:]
                elif t is Prompt:
                    out.append(Prompt(message))
                elif message:
                    out.append(Text(message, ev.partial))  # type: ignore[union-attr]
            else:
                if t is Negotiation:
                    raw = ev.raw  # type: ignore[union-attr]
                    if len(raw) >= 3 and raw[2] == OPT_MXP:
                        if raw[1] == SB:
                            self.reset()  # IAC SB MXP IAC SE: back to open
                        elif raw[1] == WONT and raw[0] == IAC:
                            self.off = True
                out.append(ev)
            if self._extra:
                out.extend(self._extra)
                self._extra = []
            if self.held:
                break
        return out

    def reset(self) -> None:
        """``ESC[3z`` and ``IAC SB MXP IAC SE``: open tags closed, open mode the default."""
        self._close_to(0)
        self.default = self.mode = OPEN
        self.temp_secure = False
        self.p = 0
        self.nobr = False

    # -- text ------------------------------------------------------------------

    def convert(self, text: str) -> tuple[str, str]:
        """One event's text through MXP, and what is left of it: where the call's markup is
        spent (``filter``) the text is cut, never inside a tag or an escape sequence. An open
        link is closed at the event's end (and reopened in the next event's text), not at a cut."""
        going_on, self._cut = self._cut, False
        if self.clean and not has_mxp(text):
            self._left -= self.game_sgr.track(text)
            return text, ""
        self._out = out = []
        pos = plain = 0  # text[plain:pos] is game text not yet put out
        n = len(text)
        rest = ""
        if going_on:  # the rest of a cut text: its line goes on, with what is left of its budgets
            nl = text.find("\n")
            self._line_limit = nl if nl >= 0 else n
        else:
            self._start_line(text, 0)
        while pos < n:
            if self._left <= 0 and pos:
                # Spent: cut here, or before the escape sequence the text ends in here, if
                # that is in the text not yet put out (which only failed to parse: it is
                # parsed again); else (a tag inside the game's escape) a little further.
                start = max(0, pos - MAX_ESCAPE)
                cut = start + safe_end(text[start:pos])
                if cut >= plain and cut:
                    rest = text[cut:]
                    n = cut
                    break
            self._left -= 1
            clean = self.clean
            if (self.mode == LOCKED) and not self.temp_secure:
                stop = _STOP_LOCKED_CLEAN if clean else _STOP_LOCKED
            else:
                stop = _STOP_CLEAN if clean else _STOP
            m = stop.search(text, pos)
            if m is None:
                break
            end = m.start()
            c = text[end]
            if end > self._line_limit:  # a later line (passed over at the default state)
                self._start_line(text, text.rfind("\n", 0, end) + 1)
            if c == "&":
                pos = self._entity(text, end, plain)
                if self._put_plain:
                    plain = pos
                continue
            if c == "<":
                pos = self._tag(text, end, plain, 0, None)
                if self._put_plain:
                    plain = pos
                continue
            if c == "\x1b" and m.group(1) is None:  # the game's escape string: text, as it is
                string = _ESCAPE_STRING.match(text, end)
                pos = string.end() if string is not None else end + 2
                continue
            if end > plain:
                self._text(text[plain:end])
            if c == "\n":
                self._line_end()
                pos = end + 1
                self._start_line(text, pos)
            else:
                self._set_mode(m.group(1))
                pos = m.end()
            plain = pos
        if plain < n:
            self._text(text[plain:n])
        if self.link is not None and not rest:
            self._flush_link(final=False)
        self._out = []
        return "".join(out), rest

    def _start_line(self, text: str, pos: int) -> None:
        """The budgets of the line starting at ``pos``: what expansion may add to it
        (EXPANSION_FACTOR times the line) and what failed definition matches may scan."""
        nl = text.find("\n", pos)
        self._line_limit = nl if nl >= 0 else len(text)
        length = self._line_limit - pos
        self._budget = EXPANSION_FACTOR * length
        self._scan_budget = SCAN_ALLOWANCE + 4 * length

    def _put(self, s: str) -> None:
        """Output (into the open link, if any)."""
        if self.link is not None:
            self.link.parts.append(s)
        else:
            self._out.append(s)

    def _text(self, s: str, track: bool = True) -> None:
        """Game text (may hold the game's own escape sequences)."""
        if track:
            self._left -= self.game_sgr.track(s)
        self._put(s)
        if self.link is not None or self.vars:
            plain = _ESCAPES.sub("", s) if "\x1b" in s else s
            # Kept only while it may still be used: a link's text until its command is made
            # (the end of its first event), a VAR's up to what an entity may hold. A line
            # without end keeps a link or a VAR open for ever (P keeps a VAR open across lines).
            if self.link is not None and not self.link.fixed:
                self.link.text.append(plain)
            for _, parts in self.vars:
                parts.append(plain)
                if len(parts) > _VAR_PARTS or len(plain) > MAX_DEFINITION:
                    _shorten_var(parts)

    def _line_end(self) -> None:
        if self.link is not None:  # a link ends with its line, also where P or NOBR go on
            self._close_name(self.stack_link_name())
        # The line's mode ends with it (SPEC 5: after a line end the mode reverts to the
        # default), also where P or NOBR make the line end a space or nothing: else a secure
        # line that opened P or ended in NOBR left the lines after it, players' text among
        # them, secure (their SEND made links), and a locked line inside P left them locked,
        # the </P> that would end it unread.
        self.mode = self.default
        self.temp_secure = False
        if self.nobr:
            self.nobr = False
            return
        if self.p:
            self._text(" ", track=False)
            return
        self._close_to(0)
        self._out.append("\n")

    def _set_mode(self, digits: str) -> None:
        n = int(digits) if digits and len(digits) <= 2 else 0
        if n == 1:
            self.mode = SECURE
        elif n == 2:
            self.mode = LOCKED
        elif n == 3:
            self.reset()
        elif n == 4:
            self.temp_secure = True
        elif n == 5:
            self.default = self.mode = OPEN
        elif n == 6:
            self.default = self.mode = SECURE
        elif n == 7:
            self.default = self.mode = LOCKED
        else:  # 0, and every other number: an open line
            self.mode = OPEN

    # -- entities ------------------------------------------------------------------

    def _entity(self, text: str, pos: int, plain: int) -> int:
        """An ``&`` at ``pos``: where to go on. ``_put_plain`` says whether the text before
        it (from ``plain``) was put out (an entity replaced); else it stays as text."""
        self._put_plain = False
        m = _ENTITY.match(text, pos)
        if m is None:
            return pos + 1
        value = self.entity_value(m.group(1))
        if value is None or len(value) > self._budget:
            return m.end()  # unknown (or over the budget): stays as text
        self._budget -= len(value)
        if pos > plain:
            self._text(text[plain:pos])
        if value:
            self._text(value, track=False)
        self._put_plain = True
        return m.end()

    def entity_value(self, name: str) -> str | None:
        """An entity's text; "" for a character that is dropped (a control); None: unknown."""
        if name[0] == "#":
            try:
                code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
            except ValueError:
                return None
            if code < 32 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                return ""
            return chr(code)
        value = _BASIC_ENTITIES.get(name)
        if value is not None:
            return value
        value = self.entities.get(name.lower())
        if value is not None:
            return value
        value = _HTML_ENTITIES.get(name + ";")
        if value is not None and _CONTROL.search(value):
            return ""
        return value

    def _decode_entities(self, value: str) -> str:
        """Entities in an attribute value (``&text;`` and unknown ones kept)."""
        if "&" not in value:
            return value

        def one(m: re.Match[str]) -> str:
            if m.group(1).lower() == "text":
                return m.group(0)
            got = self.entity_value(m.group(1))
            return m.group(0) if got is None else got
        return _ENTITY.sub(one, value)

    # -- tags ----------------------------------------------------------------------

    def _match_tag(self, text: str, pos: int) -> re.Match[str] | None:
        end = min(len(text), pos + MAX_TAG)
        if not text.startswith("!", pos + 1) and not text.startswith("/!", pos + 1):
            return _TAG.match(text, pos, end)
        nl = text.find("\n", pos, end)
        cost = (nl if nl >= 0 else end) - pos  # at most what a failed match scans
        if cost > self._scan_budget:
            return None
        m = _DEFINITION_TAG.match(text, pos, end)
        if m is None:
            self._scan_budget -= cost
        return m

    def _tag(self, text: str, pos: int, plain: int, depth: int, secure_inner: bool | None) -> int:
        """A ``<`` at ``pos``: where to go on. ``_put_plain`` says whether the text before it
        (from ``plain``) was put out (a tag took effect); else the tag stays as text."""
        self._put_plain = False
        m = self._match_tag(text, pos)
        if m is None:
            return pos + 1
        if secure_inner is None:
            secure = self.temp_secure or self.mode == SECURE
            self.temp_secure = False
        else:
            secure = secure_inner
        if pos > plain:
            self._text(text[plain:pos], track=secure_inner is None)
        if self._take(m.group(2).upper(), bool(m.group(1)), m.group(3), secure, depth):
            self._put_plain = True
            return m.end()
        self._text(m.group(0), track=False)  # the tag as it came
        self._put_plain = True
        return m.end()

    def _take(self, key: str, closing: bool, attr_text: str, secure: bool, depth: int) -> bool:
        """Whether the tag took effect (else it stays as text)."""
        element = self.elements.get(key)
        if not secure and key not in OPEN_TAGS and not (element is not None and element.open):
            return False
        if closing:
            if element is not None or key in _KNOWN:
                self._close_name(key)
                return True
            return False
        if element is not None:
            return self._expand(key, element, Attrs(attr_text), secure, depth)
        sgr = _STYLE_SGR.get(key)
        if sgr is not None:
            self._open_style(key, sgr)
            return True
        if key in ("C", "COLOR", "FONT"):
            attrs = Attrs(attr_text)
            if key == "FONT":
                fore, back = attrs.get("COLOR"), attrs.get("BACK")
            else:
                fore, back = attrs.get("FORE", 0), attrs.get("BACK", 1)
            codes = [c for c in (colour_sgr(fore, False), colour_sgr(back, True)) if c]
            self._open_style(key, ";".join(codes) if codes else None)
            return True
        if key == "BR":
            self._text("\n", track=False)
        elif key == "SBR":
            self._text(" ", track=False)
        elif key == "NOBR":
            self.nobr = True
        elif key == "P":
            if self._push(_Open(key, "p")):
                self.p += 1
        elif key == "A":
            attrs = Attrs(attr_text)
            self._open_link(key, _Link("a", https_url(attrs.get("HREF", 0))))
        elif key == "SEND":
            attrs = Attrs(attr_text, _SEND_WORDS)
            href, hint = attrs.get("HREF", 0), attrs.get("HINT", 1)
            prompt = "PROMPT" in attrs.flags or "PROMPT" in attrs.named
            self._open_link(key, _Link("send", self._decode_entities(href) if href is not None else None,
                                       self._decode_entities(hint) if hint is not None else None, prompt))
        elif key in ("VAR", "V"):
            name = Attrs(attr_text, _DEFINITION_WORDS).get("NAME", 0)
            if name and _NAME.fullmatch(name) and self._push(_Open(key, "var")):
                self.vars.append((name.lower(), []))
        elif key == "VERSION":
            self._reply(f"<VERSION MXP=1.0 CLIENT=mud-gateway VERSION={self.version}>")
        elif key == "SUPPORT":
            self._reply(self._supports(Attrs(attr_text).positional))
        elif key in ("SOUND", "MUSIC"):
            if self.media_url:
                event = media_event(key.lower(), Attrs(attr_text), self.media_url)
                if event is not None:
                    self._extra.append(event)
        elif key in _DEFINITIONS:
            self._define(_DEFINITIONS[key], Attrs(attr_text, _DEFINITION_WORDS))
        elif key in IGNORED_TAGS:
            pass  # removed; what it encloses stays (its closing tag is taken too)
        else:
            return False
        return True

    def _push(self, entry: _Open) -> bool:
        if len(self.stack) >= MAX_OPEN_TAGS:
            return False
        self.stack.append(entry)
        return True

    def _open_style(self, key: str, sgr: str | None) -> None:
        if self._push(_Open(key, "style", sgr)) and sgr:
            self._put(f"\x1b[{sgr}m")

    def _open_link(self, key: str, link: _Link) -> None:
        if self.link is not None:  # links do not nest: the open one ends here
            self._close_name(self.stack_link_name())
        if self._push(_Open(key, "link")):
            self.link = link

    def stack_link_name(self) -> str:
        for entry in reversed(self.stack):
            if entry.kind == "link":
                return entry.name
        return ""

    def _close_name(self, key: str) -> None:
        """A closing tag: the latest open tag of that name, and any opened after it, end."""
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].name == key:
                self._close_to(i)
                return

    def _close_to(self, index: int) -> None:
        """End the open tags from ``index`` up (latest first)."""
        styled = False
        while len(self.stack) > index:
            entry = self.stack.pop()
            if entry.kind == "style":
                styled = styled or bool(entry.sgr)
            elif entry.kind == "link":
                if styled:
                    self._restore_sgr()
                    styled = False
                self._flush_link(final=True)
            elif entry.kind == "var":
                name, parts = self.vars.pop()
                self._set_entity(name, "".join(parts))
            elif entry.kind == "p":
                self.p -= 1
        if styled:
            self._restore_sgr()

    def _restore_sgr(self) -> None:
        state = self.game_sgr.copy()
        for entry in self.stack:
            if entry.sgr:
                state.apply(entry.sgr)
        rendered = state.render()
        self._put(f"\x1b[0m\x1b[{rendered}m" if rendered else "\x1b[0m")

    # -- links ------------------------------------------------------------------

    def _flush_link(self, final: bool) -> None:
        """The open link's output, wrapped in OSC 8 when it makes a link; ``final``: it ends."""
        link = self.link
        if link is None:
            return
        if not link.fixed:
            link.uri = self._link_uri(link)
            link.fixed = True
        body = "".join(link.parts)
        link.parts = []
        self.link = None
        if body:
            self._put(f"\x1b]8;;{link.uri}\x1b\\{body}\x1b]8;;\x1b\\" if link.uri else body)
        if not final:
            self.link = link

    def _link_uri(self, link: _Link) -> str | None:
        if link.kind == "a":
            return link.href
        text = "".join(link.text)
        if link.href:
            commands = [_TEXT_ENTITY.sub(lambda _m: text, c) for c in link.href.split("|")]
        else:
            commands = [text]
        if any(not c or len(c) > MAX_COMMAND or _CONTROL.search(c) for c in commands):
            return None
        scheme = "prompt:" if link.prompt else "send:"
        uri = scheme + percent(commands[0])
        hints = link.hint.split("|") if link.hint else []
        if hints or len(commands) > 1:
            config: dict[str, Any] = {}
            if hints:  # n+1 parts for n commands: the first is the tooltip; else the whole hint
                config["tooltip"] = hints[0] if len(hints) == len(commands) + 1 else link.hint
            if len(commands) > 1:
                labels = hints[1:] if len(hints) == len(commands) + 1 else \
                    hints if len(hints) == len(commands) else commands
                config["menu"] = [{label: scheme + percent(c)} for label, c in zip(labels, commands)]
            uri += "?config=" + percent(json.dumps(config, ensure_ascii=False, separators=(",", ":")))
        return uri

    # -- custom elements and entities -------------------------------------------

    def _expand(self, key: str, element: _Element, attrs: Attrs, secure: bool, depth: int) -> bool:
        if depth >= MAX_DEPTH:
            return False
        values = {}
        for i, (name, default) in enumerate(element.atts):
            value = attrs.get(name, i)
            values[name.lower()] = default if value is None else value

        def fill(m: re.Match[str]) -> str:
            name = m.group(1).lower()
            return values[name] if name in values else m.group(0)
        expansion = _ENTITY.sub(fill, element.definition) if "&" in element.definition else element.definition
        if len(expansion) > self._budget:
            return False
        self._budget -= len(expansion)
        if not element.empty and not self._push(_Open(key, "element")):
            return False
        inner_secure = secure and not element.open
        pos = plain = 0
        n = len(expansion)
        while pos < n:
            self._left -= 1
            m = _STOP_INNER.search(expansion, pos)
            if m is None:
                break
            end = m.start()
            if expansion[end] == "&":
                if expansion[end:end + 6].lower() == "&text;":
                    if end > plain:  # the element's text follows as it comes
                        self._text(expansion[plain:end], track=False)
                    pos = plain = end + 6
                    continue
                pos = self._entity(expansion, end, plain)
            else:
                pos = self._tag(expansion, end, plain, depth + 1, inner_secure)
            if self._put_plain:
                plain = pos
        if plain < n:
            self._text(expansion[plain:], track=False)
        return True

    def _define(self, what: str, attrs: Attrs) -> None:
        name = attrs.positional[0] if attrs.positional else None
        if not name or not _NAME.fullmatch(name):
            return
        if what == "entity":
            key = name.lower()
            if "DELETE" in attrs.flags:
                self.entities.pop(key, None)
                return
            value = attrs.positional[1] if len(attrs.positional) > 1 else ""
            value = self._decode_entities(value)
            if "ADD" in attrs.flags and key in self.entities:
                value = self.entities[key] + "|" + value if self.entities[key] else value
            elif "REMOVE" in attrs.flags and key in self.entities:
                value = "|".join(v for v in self.entities[key].split("|") if v != value)
            self._set_entity(key, value)
            return
        key = name.upper()
        if what == "attlist":
            element = self.elements.get(key)
            if element is not None and len(attrs.positional) > 1:
                element.atts = _parse_atts(attrs.positional[1])
            return
        if "DELETE" in attrs.flags:
            self.elements.pop(key, None)
            return
        if key in _KNOWN or (key not in self.elements and len(self.elements) >= MAX_ELEMENTS):
            return  # the built-in tags are not redefined; beyond the limit: ignored
        definition = attrs.positional[1] if len(attrs.positional) > 1 else ""
        atts = attrs.named.get("ATT", "")
        if len(name) + len(definition) + len(atts) > MAX_DEFINITION:
            return
        self.elements[key] = _Element(definition, _parse_atts(atts), "OPEN" in attrs.flags,
                                      "EMPTY" in attrs.flags)

    def _set_entity(self, key: str, value: str) -> None:
        value = _without_controls(value)
        if len(key) + len(value) > MAX_DEFINITION:
            return
        if key not in self.entities and len(self.entities) >= MAX_ENTITIES:
            return
        self.entities[key] = value

    # -- replies -------------------------------------------------------------------

    def _supports(self, asked: list[str]) -> str:
        if not asked:
            return "<SUPPORTS " + " ".join("+" + t.lower() for t in SUPPORTED_TAGS) + ">"
        answers = []
        for item in asked[:64]:
            tag = item.split(".", 1)[0].upper()
            if not _NAME.fullmatch(item.replace("*", "x").lstrip("!")):
                continue
            answers.append(("+" if tag in SUPPORTED_TAGS else "-") + item.lower())
        return "<SUPPORTS " + " ".join(answers) + ">"

    def _reply(self, line: str) -> None:
        self._extra.append(MxpReply(b"\x1b[1z" + line.encode("ascii", "replace") + b"\r\n"))
