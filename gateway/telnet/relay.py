"""A game connection that relays bytes and negotiates nothing (SPEC 9.3, the ``telnet`` subprotocol).

``RelayClient`` is the asyncio protocol of a ``/ws`` session under
``telnet``: it dials only a configured game (TLS, pin and PROXY header as
client.py's ``GameClient`` does, through the same ``open_connection``), hands
every byte the game sends to its sink unchanged, and writes what the sink
gives it (the client's bytes, relay.py in gateway/mudstandards). Nothing of
its own goes to the game but the PROXY header.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from .client import close_after_writing, open_connection, pin_matches
from .proxy import proxy_header


class RelaySink(Protocol):
    def on_game_bytes(self, data: bytes) -> None: ...
    def on_game_closed(self, reason: str) -> None: ...


class _NotCompressing:
    """What an upgrade in place asks every game connection's stream (upgrade.py): no MCCP2
    of ours here (the client inflates for itself)."""

    compressing = False


class RelayClient(asyncio.Protocol):
    __slots__ = ("sink", "loop", "read_at", "pin_failed", "_proxy", "_pin", "_transport", "_closed_reason")

    #: Never handed to a new process (SPEC 9.6: a ``/ws`` session cannot be resumed).
    carriable = False
    stream = _NotCompressing()

    def __init__(self, sink: RelaySink, proxy: tuple[str, str, int] | None, pin_sha256: str | None) -> None:
        self.sink = sink
        self.loop = asyncio.get_event_loop()
        self.read_at: float | None = None
        self.pin_failed = False
        self._proxy = proxy
        self._pin = pin_sha256
        self._transport: asyncio.Transport | None = None
        self._closed_reason: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._pin is not None and not pin_matches(transport, self._pin):
            self.pin_failed = True
            transport.close()
            return
        self._transport = transport  # type: ignore[assignment]
        if self._proxy is not None:
            version, src, src_port = self._proxy
            dst, dst_port = transport.get_extra_info("peername")[:2]
            transport.write(proxy_header(version, src, src_port, dst, dst_port))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.read_at = self.loop.time()
        self.sink.on_game_bytes(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pin_failed or self._transport is None:
            return
        self._transport = None
        self.sink.on_game_closed(self._closed_reason or "closed by game")

    def send(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    # What a session and an upgrade in place ask of a game connection (as of client.py's GameClient).

    def pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def freeze(self) -> None:
        """An upgrade in place (as GameClient's): the game is not read; nothing is held here."""
        self.pause_reading()

    def unsent(self) -> int:
        return self._transport.get_write_buffer_size() if self._transport is not None else 0

    def close(self, reason: str) -> None:
        """Close after the queued bytes are written; a game that does not read them is cut off."""
        self._closed_reason = self._closed_reason or reason
        if self._transport is not None:
            close_after_writing(self._transport, self.loop)


async def connect_relay(game: Any, sink: RelaySink, proxy: tuple[str, str, int] | None) -> RelayClient:
    """Open a relay connection to ``game`` (a config.Game); raises GameUnavailable."""
    pin = game.tls_pin_sha256 if game.tls else None
    protocol: Any = await open_connection(game, lambda: RelayClient(sink, proxy, pin))
    return protocol
