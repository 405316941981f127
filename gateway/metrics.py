"""Prometheus metrics (SPEC 7), one registry per gateway, served at GET /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

P = "mud_gateway_"


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.sessions = Gauge(P + "sessions", "Sessions by state.", ["state"], registry=r)
        self.joins = Counter(P + "joins", "Channel joins by result: ok, resumed, or the error reason.",
                             ["result"], registry=r)
        self.bytes = Counter(P + "bytes", "Payload bytes carried, by direction.", ["direction"], registry=r)
        self.gmcp = Counter(P + "gmcp_messages", "GMCP messages, by direction.", ["direction"], registry=r)
        self.telnet_failures = Counter(P + "telnet_failures",
                                       "Game connections that failed, by reason.", ["reason"], registry=r)
        self.disconnects = Counter(P + "disconnects", "Sessions ended, by reason.", ["reason"], registry=r)
        self.event_latency = Histogram(
            P + "event_latency_seconds", "From reading the game's bytes to writing their WebSocket frame.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r)
        self.upgrade_sessions = Counter(
            P + "upgrade_sessions", "Sessions at an upgrade in place: carried to the new process, or ended.",
            ["result"], registry=r)
        # The hot paths use the children directly.
        self.to_browser = self.bytes.labels("to_browser")
        self.to_game = self.bytes.labels("to_game")
        self.gmcp_from_game = self.gmcp.labels("from_game")
        self.gmcp_to_game = self.gmcp.labels("to_game")
        for state in ("attached", "lingering"):
            self.sessions.labels(state)

    def render(self, attached: int, lingering: int) -> bytes:
        self.sessions.labels("attached").set(attached)
        self.sessions.labels("lingering").set(lingering)
        return generate_latest(self.registry)
