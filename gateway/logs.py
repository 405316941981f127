"""Logging (SPEC 8): text or JSON lines on stderr, and records that carry their fields.

A record logged with :func:`log_event` has its values twice from one dict:
in its text as ``key=value`` pairs (logfmt: a value with spaces, quotes,
``=`` or control characters is JSON-quoted, so a line cannot be forged by a
value), and, with ``logging.format: json``, as separate fields of the JSON
object beside ``time``, ``level``, ``logger`` and ``message``, so a log store
can filter by ``game`` or ``ip``.

What a client (or a game) sends never reaches the log whole nor raw: a value of theirs is cut
to :data:`CLIP` characters (:func:`clip`; a string field of :func:`log_event`, 256), and the
text formatter writes the control characters of any message visible (``\\x0a``), so no value
can begin a line of its own (JSON escapes them already). What a client can make the gateway
say at will, the refusal of a request that never became a session, is logged by
:func:`log_refusal`: at most :data:`REFUSALS_PER_PERIOD` lines of a kind in
:data:`REFUSAL_PERIOD` seconds, then one line counting the rest, so a flood of refusals
cannot fill journald's rate limit and have it drop the session lines (SPEC 8).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from typing import Any, Callable

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import RequestPayloadError

from .config import Config

#: The attribute of a LogRecord holding the fields given to log_event.
_FIELDS = "gateway_fields"
_PLAIN = re.compile(r"[^\s\"=\\\x00-\x1f\x7f]+")  # fullmatch: needs no quotes

#: Most characters of a client's or a game's value in a log line (:func:`clip`).
CLIP = 256
#: Most characters of a message as written, whoever logged it: the backstop for a library's
#: (telnetlib3 quotes a game's subnegotiation, up to 64 KiB).
MAX_MESSAGE = 4096
#: Characters written visible: C0 and C1 controls and DEL, and those a terminal or a log
#: viewer takes for a line break or a change of direction (U+2028/9, bidi overrides, BOM).
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


def _visible(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\x0a``, ``\\u2028``)."""
    return _INVISIBLE.sub(_visible, text) if _INVISIBLE.search(text) else text


def clip(value: Any, limit: int = CLIP) -> str:
    """A client's or a game's value as a log line may hold it: at most ``limit`` characters of
    it (then how many more there were), its control characters written visible."""
    return visible(_shortened(value if isinstance(value, str) else str(value), limit))


def _shortened(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how many more there were."""
    if len(text) > limit:
        return f"{text[:limit]}...(+{len(text) - limit} chars)"
    return text


def _cut(value: Any) -> Any:
    """A string field of log_event, cut to CLIP (kept raw: logfmt quotes it, JSON escapes it)."""
    return _shortened(value, CLIP) if isinstance(value, str) else value


def logfmt(value: Any) -> str:
    """One value as written in a text line: ``-`` for None, quoted when needed."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


def log_event(logger: logging.Logger, level: int, event: str, text: str, **fields: Any) -> None:
    """Log ``text`` followed by ``key=value`` for each field; JSON logs get ``event``
    and the fields as fields of their own."""
    if logger.isEnabledFor(level):
        fields = {k: _cut(v) for k, v in fields.items()}
        line = " ".join([text, *(f"{k}={logfmt(v)}" for k, v in fields.items())])
        logger.log(level, "%s", line, extra={_FIELDS: {"event": event, **fields}})


#: A kind of refusal is logged at most REFUSALS_PER_PERIOD times in REFUSAL_PERIOD seconds.
REFUSAL_PERIOD = 10.0
REFUSALS_PER_PERIOD = 10


class _Kind:
    __slots__ = ("start", "logged", "suppressed", "logger", "level", "timer")

    def __init__(self, start: float, logger: logging.Logger, level: int) -> None:
        self.start, self.logged, self.suppressed = start, 0, 0
        self.logger, self.level = logger, level
        self.timer: asyncio.TimerHandle | None = None


class RefusalLog:
    """Lines a client can make the gateway write at will, bounded by kind: the first
    REFUSALS_PER_PERIOD of a period of REFUSAL_PERIOD seconds are written, the rest counted,
    and the count written as one line (``suppressed``) when the period ends (a timer of the
    event loop; without one, with the kind's next line)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.kinds: dict[str, _Kind] = {}

    def allow(self, logger: logging.Logger, level: int, kind: str) -> bool:
        """True when a line of ``kind`` is to be written now; False when it is counted."""
        now = self.clock()
        state = self.kinds.get(kind)
        if state is not None and now >= state.start + REFUSAL_PERIOD:
            self.flush(kind)
            state = None
        if state is None:
            state = self.kinds[kind] = _Kind(now, logger, level)
        if state.logged < REFUSALS_PER_PERIOD:
            state.logged += 1
            return True
        state.suppressed += 1
        if state.timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return False
            state.timer = loop.call_later(max(0.0, state.start + REFUSAL_PERIOD - now), self.flush, kind)
        return False

    def flush(self, kind: str) -> None:
        """End ``kind``'s period: the count of the lines it did not write, if any."""
        state = self.kinds.pop(kind, None)
        if state is None:
            return
        if state.timer is not None:
            state.timer.cancel()
        if state.suppressed:
            log_event(state.logger, state.level, "log_suppressed",
                      f"suppressed {state.suppressed} more {kind} lines of the last {REFUSAL_PERIOD:g} s",
                      kind=kind, suppressed=state.suppressed)


_refusals = RefusalLog()
_refusals_loop: object = None


def log_refusal(logger: logging.Logger, event: str, text: str, level: int = logging.INFO, **fields: Any) -> None:
    """:func:`log_event` for a line a client can make the gateway write as often as it asks
    (a refused upgrade, a denied join, a dropped frame): bounded by ``event``, its kind
    (:class:`RefusalLog`). The counts belong to the running event loop (the process has
    one; a test's new loop starts afresh). Values of the client's: through :func:`clip`
    when in ``text``; a string field is cut by log_event."""
    global _refusals, _refusals_loop
    if not logger.isEnabledFor(level):
        return
    try:
        loop: object = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not _refusals_loop:
        _refusals, _refusals_loop = RefusalLog(), loop
    if _refusals.allow(logger, level, event):
        log_event(logger, level, event, text, **fields)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, and any fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(), "logger": record.name,
            "message": _shortened(record.getMessage(), MAX_MESSAGE)}
        fields = getattr(record, _FIELDS, None)
        if fields:
            for key, value in fields.items():
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """The text format: a message's control characters written visible, so whatever a value
    of a client's or a game's in it holds, it cannot begin a line (a traceback, the gateway's
    own, keeps its lines); a message longer than MAX_MESSAGE cut."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = visible(_shortened(record.message, MAX_MESSAGE))
        return super().formatMessage(record)


class ClientErrorsAtDebug(logging.Filter):
    """aiohttp logs each request it cannot parse (a client's malformed HTTP, answered 400, or a
    body that does not decode) at ERROR, with a traceback: ~1 KB of log for a 30-byte request,
    from anyone who reaches the port, and an ERROR an admin would take for a fault of the
    gateway. Such a record is logged at debug (as aiohttp itself does for a first request with
    a bad method); a fault of the gateway's own handlers (a 500) stays an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        # A request body that does not parse or decode (junk said to be gzip, a broken chunk):
        # aiohttp reads a body the handler left unread after the answer, and logs its failure
        # as "Unhandled exception", to any path, as often as a client sends one.
        if isinstance(exc, RequestPayloadError) or (
                isinstance(exc, HttpProcessingError) and (exc.code or 400) < 500):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


_CLIENT_ERRORS = ClientErrorsAtDebug()


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.logging.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # A library's warnings (PyJWT's of a short HS256 key, at the first token) are records of
    # the log too, in its format: Python's own would write two lines of plain text to stderr,
    # among the JSON objects.
    logging.captureWarnings(True)
    root.setLevel(config.logging.level.upper())
    # Library chatter (telnetlib3 logs every negotiation at info) stays at warning.
    logging.getLogger("telnetlib3").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(max(logging.WARNING, root.level))
    # Client errors are not the gateway's: aiohttp's handshake warns of every WebSocket whose
    # offered subprotocols it does not serve, with the client's whole list (up to 8 KB a
    # request); its server logs each unparsable request with a traceback (ClientErrorsAtDebug).
    logging.getLogger("aiohttp.websocket").setLevel(max(logging.ERROR, root.level))
    server = logging.getLogger("aiohttp.server")
    if _CLIENT_ERRORS not in server.filters:
        server.addFilter(_CLIENT_ERRORS)
