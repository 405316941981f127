"""The app's open WebSockets, by the player's address: what a graceful stop and an upgrade in
place close (routes.py, upgrade.py), what the sweep looks at (websocket.py ``watch``), and what
an upgrade is counted against before its 101 (routes.py ``socket``).

A socket is in it from its 101 (``WebSocket.start``) until its connection is lost.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol, TypeVar


class Addressed(Protocol):
    """What the registry needs of a socket (websocket.py's ``WebSocket``)."""

    client_ip: str


S = TypeVar("S", bound=Addressed)


class SocketRegistry(set[S]):
    """A set of sockets that also counts them by ``client_ip``: add and discard only (the
    set's other ways to change it would not count). A set, so that the once-a-second sweep's
    ``in`` and iteration stay C (no Python call per socket).

    Sessions are bounded per address (``limits.max_sessions_per_ip``) but a socket need hold
    none: without a count of their own, one address could keep any number of session-less
    sockets open (each kept alive by heartbeats) and grow the process without bound. The
    counts make that bound one look-up an upgrade (docs/security.md).
    """

    def __init__(self) -> None:
        super().__init__()
        self._per_ip: Counter[str] = Counter()

    def add(self, sock: S) -> None:
        if sock not in self:
            super().add(sock)
            self._per_ip[sock.client_ip] += 1

    def discard(self, sock: S) -> None:
        if sock in self:
            super().discard(sock)
            ip = sock.client_ip
            self._per_ip[ip] -= 1
            if self._per_ip[ip] <= 0:
                del self._per_ip[ip]

    def count(self, ip: str) -> int:
        """The open sockets of ``ip`` (both endpoints')."""
        return self._per_ip.get(ip, 0)
