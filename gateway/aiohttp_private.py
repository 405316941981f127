"""Every use of aiohttp's private names (``aiohttp~=3.14.5``, pinned in pyproject.toml).

aiohttp answers the HTTP surface and the WebSocket handshake; after the 101 the
connection belongs to the gateway's own socket (transport/websocket.py), which
saves a request handler, a parser, a task and a reader queue per player
(docs/performance.md; docs/architecture.md "Library private names"). That
takeover, and the upgrade in place's hold on the listening socket, need four
things aiohttp does not offer publicly. This module is the one place that uses
them; ``tests/test_library_contracts.py`` fails, naming the attribute, on an
aiohttp whose internals changed:

* ``RequestHandler._message_tail``: bytes aiohttp read past the request (a
  browser's first frames, sent before the 101 arrived), which its parser would
  otherwise keep (``unread_after_request``).
* ``RequestHandler.transport`` set to None, then ``connection_lost(None)``: the
  handler forgets the connection without closing it, and frees its task, parser
  and queues (``forget_connection``).
* ``WebSocketResponse.write_eof``: aiohttp ends every response with it, and the
  WebSocket's would write a close frame the gateway's socket did not decide
  (``HandshakeOnly``).
* ``BaseSite._server``: the listening ``asyncio.Server``, whose socket an upgrade
  in place hands to the next process (``listening_server``).

And one for the benchmark's clients (bench/sidebyside.py), not the gateway:

* ``ClientWebSocketResponse._writer._write_websocket_frame``: a frame written at
  once, without a coroutine (``send_frame`` is one: a task per line made the
  clients, not the peers, the limit at thousands of sessions)
  (``write_frame_now``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web


def unread_after_request(handler: Any) -> bytes:
    """What aiohttp's request handler read past the request (``_message_tail``), taken from it."""
    tail = getattr(handler, "_message_tail", b"")
    if tail:
        handler._message_tail = b""
    return tail


def forget_connection(handler: Any) -> None:
    """aiohttp's request handler lets the connection go without closing it (its transport is
    another protocol's now): its handler task, parser and queues are freed."""
    handler.transport = None
    handler.connection_lost(None)


class HandshakeOnly(web.WebSocketResponse):
    """aiohttp's handshake (checks, 101, subprotocol, permessage-deflate); the WebSocket
    after it is another protocol's, so aiohttp, which ends every response with
    ``write_eof``, has no close frame of its own to write."""

    async def write_eof(self) -> None:  # type: ignore[override]
        return None


def listening_server(site: web.BaseSite) -> asyncio.AbstractServer:
    """The asyncio server behind ``site`` (``_server``): its listening socket."""
    server = site._server  # type: ignore[attr-defined]
    assert server is not None, "the site is not started"
    return server


def write_frame_now(ws: Any, data: bytes, opcode: int) -> None:
    """Write one masked frame on an aiohttp client WebSocket at once (the benchmark's clients);
    nothing when it is closing."""
    writer = ws._writer
    if writer is None or writer.transport is None or writer.transport.is_closing():
        return
    writer._write_websocket_frame(data, opcode, 0)
