"""The sessions of ``/ws`` (SPEC 9.6): one socket, one session, one game connection, no resume.

They are ``Session``s of the one session table (limits, ``/healthz``,
``/metrics``, ``/admin/sessions``, kick, idle, graceful stop, logs), made by
``SessionManager.start(kind=...)``; what differs is here: output goes to the
socket as the stream's events (``StreamSession``) or as the game's bytes
(``RelaySession``), nothing is kept for a replay, and a session never
lingers: without its socket it ends.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from ..channel import JoinParams
from ..logs import clip
from ..session import Session
from ..telnet.relay import connect_relay
from ..telnet.stream import CompressionError, Event, Gmcp

log = logging.getLogger("gateway.session")


class StreamViewer(Protocol):
    """The socket side of a ``/ws`` session (socket.py)."""

    def deliver(self, events: list[Event], read_at: float | None) -> int:
        """Frames for the stream's events; returns the payload bytes queued."""
    def deliver_bytes(self, data: bytes, read_at: float | None) -> None: ...
    def end(self, reason: str, detail: str | None = None) -> None: ...
    @property
    def backed_up(self) -> bool: ...


class StreamSession(Session):
    """A ``/ws`` session under ``terminal``, ``gmcp`` or ``json``: the gateway is the telnet client."""

    __slots__ = ("subprotocol", "_early")
    subprotocol: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What the game sent before the socket attached (between the connect and the
        # attach: a loop turn or so), given to it then, in order.
        self._early: list[Any] | None = []

    def attach(self, viewer: Any) -> None:
        super().attach(viewer)
        early, self._early = self._early, None
        for item in early or ():
            self._deliver(item)

    def _deliver(self, item: Any) -> None:
        self._forward(item)

    def log_fields(self) -> dict[str, Any]:
        return {"subprotocol": self.subprotocol}

    def on_events(self, events: list[Event]) -> None:
        metrics = self.manager.metrics
        for ev in events:
            if type(ev) is CompressionError:
                log.warning("compression error from game=%s ip=%s: %s", self.game.name, self.client_ip, clip(ev.detail))
                metrics.telnet_failures.labels("compression error").inc()
        self._forward(events)

    def _forward(self, events: list[Event]) -> None:
        """The events' frames to the socket (kept until it attaches)."""
        viewer = self.viewer
        if viewer is None:
            if self._early is not None:
                self._early.append(events)
            return
        metrics = self.manager.metrics
        client = self.client
        size = viewer.deliver(events, client.read_at if client is not None else None)  # type: ignore[attr-defined]
        self.bytes_to_browser += size
        metrics.to_browser.inc(size)
        gmcp = sum(1 for ev in events if type(ev) is Gmcp)
        if gmcp:
            metrics.gmcp_from_game.inc(gmcp)

    def linger(self) -> None:
        """No resume on ``/ws``: a session without its socket ends (SPEC 9.6)."""
        self.end("left")


class RelaySession(StreamSession):
    """A ``/ws`` session under ``telnet``: the game's bytes both ways (SPEC 9.3, 9.4)."""

    __slots__ = ()

    async def open(self, params: JoinParams) -> None:
        game = self.game
        self.client = await connect_relay(  # type: ignore[assignment]
            game, self, proxy=(None if game.proxy_protocol == "none"
                               else (game.proxy_protocol, self.client_ip, self.client_port)))
        self.last_input = time.monotonic()

    def _deliver(self, item: Any) -> None:
        self.on_game_bytes(item)

    def on_game_bytes(self, data: bytes) -> None:
        viewer = self.viewer
        if viewer is None:
            if self._early is not None:
                self._early.append(data)
            return
        viewer.deliver_bytes(data, self.client.read_at if self.client is not None else None)  # type: ignore[attr-defined]
        self.bytes_to_browser += len(data)
        self.manager.metrics.to_browser.inc(len(data))

    def relay(self, data: bytes) -> None:
        """The client's bytes (relay.py made them safe), to the game."""
        client = self.client
        if client is None or self.ended or not data:
            return
        client.send(data)  # type: ignore[attr-defined]
        self.bytes_to_game += len(data)
        self.manager.metrics.to_game.inc(len(data))
        self.last_input = time.monotonic()
