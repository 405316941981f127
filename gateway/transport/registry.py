"""The app's open WebSockets, by the player's address: what a graceful stop and an upgrade in
place close (routes.py, upgrade.py), what the sweep looks at (websocket.py ``watch``), and what
an upgrade is counted against before its 101 (routes.py ``socket``).

A socket is in it from its 101 (``WebSocket.start``) until its connection is lost.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol, TypeVar

from ..ratelimit import Buckets


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
        #: What the sockets of an address have made the gateway read (``spend``): kept when
        #: they close (a debt is not wiped by reconnecting), pruned once full again.
        self._reads = Buckets()

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

    def spend(self, ip: str, chars: int, now: float, rate: float, burst: float) -> float:
        """Charge ``chars`` of messages read to ``ip``'s budget (``rate`` a second, ``burst`` at
        once); the seconds its sockets are not read for, to pay what it is over by.

        A message's cost is what it is once read: with permessage-deflate a frame of ~150
        bytes is a message of ``max_frame_bytes``, so a few kilobytes a second from one
        address, over its sockets' turns, held the loop for every other player (its JSON
        checked and decoded: ~7 ms a 64 KB message of ``[],``). Read again in time,
        never dropped: TCP pushes back on the client (docs/security.md)."""
        return self._reads.get(ip, now, rate, burst).spend(chars, now, rate, burst)
