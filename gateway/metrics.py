"""Prometheus metrics (SPEC 7), one registry per gateway, served at GET /metrics.

The counters the hot paths add to (payload bytes and GMCP messages each way, the event
latency histogram: one or more per round trip) are plain numbers the event loop adds to
(``Count``, ``Latency``: no lock, no checks, ~0.1 us where prometheus_client's child costs
~1-2 us), read by a collector when /metrics is scraped; they are exposed as the same
families (names, labels, types, ``_created``) as the prometheus_client metrics they
replace. The gateway runs one event loop in one thread, so nothing else adds to them.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Count", "Latency", "Metrics"]

P = "mud_gateway_"
#: The event latency histogram's buckets (seconds).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Count:
    """A counter of the hot paths: ``inc`` adds (never less than 0: the callers add sizes)."""

    __slots__ = ("value", "created")

    def __init__(self) -> None:
        self.value = 0
        self.created = time.time()

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class Latency:
    """The event latency histogram: ``observe`` counts a value in the first bucket whose
    bound is at least it (Prometheus's ``le``), or in ``+Inf``."""

    __slots__ = ("bounds", "counts", "sum", "created")

    def __init__(self, bounds: "tuple[float, ...]" = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        self.sum += value
        self.counts[bisect_left(self.bounds, value)] += 1


class _HotCollector:
    """Exposes the hot paths' counters at scrape time."""

    def __init__(self, metrics: "Metrics") -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m
        for name, doc, children in (
                (P + "bytes", "Payload bytes carried, by direction.",
                 (("to_browser", m.to_browser), ("to_game", m.to_game))),
                (P + "gmcp_messages", "GMCP messages, by direction.",
                 (("from_game", m.gmcp_from_game), ("to_game", m.gmcp_to_game)))):
            family = CounterMetricFamily(name, doc, labels=["direction"])
            for label, count in children:
                family.add_metric([label], count.value, created=count.created)
            yield family
        lat = m.event_latency
        buckets, total = [], 0
        for bound, n in zip([*map(repr, lat.bounds), "+Inf"], lat.counts):
            total += n
            buckets.append((bound, total))
        family = HistogramMetricFamily(P + "event_latency_seconds",
                                       "From reading the game's bytes to writing their WebSocket frame.")
        family.add_metric([], buckets, lat.sum)
        family.add_sample(family.name + "_created", {}, lat.created)  # as prometheus_client's Histogram
        yield family


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.sessions = Gauge(P + "sessions", "Sessions by state.", ["state"], registry=r)
        self.joins = Counter(P + "joins", "Channel joins by result: ok, resumed, or the error reason.",
                             ["result"], registry=r)
        self.telnet_failures = Counter(P + "telnet_failures",
                                       "Game connections that failed, by reason.", ["reason"], registry=r)
        self.disconnects = Counter(P + "disconnects", "Sessions ended, by reason.", ["reason"], registry=r)
        self.upgrade_sessions = Counter(
            P + "upgrade_sessions", "Sessions at an upgrade in place: carried to the new process, or ended.",
            ["result"], registry=r)
        # The hot paths' counters (see the module's docstring).
        self.to_browser = Count()
        self.to_game = Count()
        self.gmcp_from_game = Count()
        self.gmcp_to_game = Count()
        self.event_latency = Latency()
        r.register(_HotCollector(self))  # type: ignore[arg-type]
        for state in ("attached", "lingering"):
            self.sessions.labels(state)

    def render(self, attached: int, lingering: int) -> bytes:
        self.sessions.labels("attached").set(attached)
        self.sessions.labels("lingering").set(lingering)
        return generate_latest(self.registry)
