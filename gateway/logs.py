"""Logging (SPEC 8): text or JSON lines on stderr, and records that carry their fields.

A record logged with :func:`log_event` has its values twice from one dict:
in its text as ``key=value`` pairs (logfmt: a value with spaces, quotes,
``=`` or control characters is JSON-quoted, so a line cannot be forged by a
value), and, with ``logging.format: json``, as separate fields of the JSON
object beside ``time``, ``level``, ``logger`` and ``message``, so a log store
can filter by ``game`` or ``ip``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from .config import Config

#: The attribute of a LogRecord holding the fields given to log_event.
_FIELDS = "gateway_fields"
_PLAIN = re.compile(r"[^\s\"=\\\x00-\x1f\x7f]+")  # fullmatch: needs no quotes


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
        line = " ".join([text, *(f"{k}={logfmt(v)}" for k, v in fields.items())])
        logger.log(level, "%s", line, extra={_FIELDS: {"event": event, **fields}})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, and any fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage()}
        fields = getattr(record, _FIELDS, None)
        if fields:
            for key, value in fields.items():
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class ClientErrorsAtDebug(logging.Filter):
    """aiohttp logs each request it cannot parse (a client's malformed HTTP, answered 400) at
    ERROR, with a traceback: ~1 KB of log for a 30-byte request, from anyone who reaches the
    port, and an ERROR an admin would take for a fault of the gateway. Such a record is
    logged at debug (as aiohttp itself does for a first request with a bad method); a fault
    of the gateway's own handlers (a 500) stays an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and (exc.code or 400) < 500:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


_CLIENT_ERRORS = ClientErrorsAtDebug()


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.logging.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
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
