"""GET /metrics (SPEC 7): Prometheus text with the gateway's counters, read after real traffic."""

from __future__ import annotations

import socket

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_config, new_topic, until

IAC, SB, SE, WILL = 255, 250, 240, 251


async def scrape(client) -> dict[tuple[str, tuple], float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


async def test_metrics_after_traffic(mud, gateway):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    client, connect = await gateway(make_config(mud.port, extra="sessions: {linger_seconds: 30}",
                                                games=f"  - {{name: dead, host: 127.0.0.1, port: {dead}}}"))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    assert (await phx.join(new_topic(), {"game": "nope"}, join_ref="2"))["status"] == "error"
    assert (await phx.join(new_topic(), {"game": "dead"}, join_ref="3"))["status"] == "error"
    conn.send(bytes([IAC, WILL, 201]) + b"hello\r\n" + bytes([IAC, SB, 201]) + b"Char.Vitals {}" + bytes([IAC, SE]))
    await phx.event(topic, "gmcp")
    assert (await phx.request(topic, "recv", {"message": "look"}))["status"] == "ok"
    assert (await phx.request(topic, "gmcp", {"module": "Core.Ping"}))["status"] == "ok"
    await conn.wait_for(b"look\r\n")
    m = await scrape(client)
    assert m[("mud_gateway_sessions", (("state", "attached"),))] == 1
    assert m[("mud_gateway_sessions", (("state", "lingering"),))] == 0
    assert m[("mud_gateway_joins_total", (("result", "ok"),))] == 1
    assert m[("mud_gateway_joins_total", (("result", "unknown game"),))] == 1
    assert m[("mud_gateway_joins_total", (("result", "game unavailable"),))] == 1
    assert m[("mud_gateway_telnet_failures_total", (("reason", "refused"),))] == 1
    assert m[("mud_gateway_bytes_total", (("direction", "to_game"),))] == len(b"look\r\n")
    assert m[("mud_gateway_bytes_total", (("direction", "to_browser"),))] > len("hello")
    assert m[("mud_gateway_gmcp_messages_total", (("direction", "from_game"),))] == 1
    assert m[("mud_gateway_gmcp_messages_total", (("direction", "to_game"),))] == 1
    # one observation per game read: all the frames of a read are written together
    assert m[("mud_gateway_event_latency_seconds_count", ())] >= 1
    # The browser goes away: the session lingers; then the game closes it.
    await phx.ws.close()

    async def scraped(key: tuple, value: float) -> dict | None:
        m = await scrape(client)
        return m if m.get(key) == value else None

    await until(lambda: scraped(("mud_gateway_sessions", (("state", "lingering"),)), 1), what="lingering: 1")
    conn.close()
    await conn.wait_closed()
    m = await until(lambda: scraped(("mud_gateway_disconnects_total", (("reason", "closed by game"),)), 1),
                    what="disconnects closed by game: 1")
    assert m[("mud_gateway_sessions", (("state", "lingering"),))] == 0


async def test_metrics_can_be_disabled(mud, gateway):
    client, _ = await gateway(make_config(mud.port, extra="metrics: {enabled: false}"))
    assert (await client.get("/metrics")).status == 404


def test_hot_counters_are_exposed_as_prometheus_families():
    """The hot paths' plain counters (metrics.Count, Latency) read as prometheus_client's own
    Counter and Histogram would: ``_total`` and ``_created``, cumulative ``le`` buckets where a
    value equal to a bound counts in that bound's bucket, ``_count`` and ``_sum``."""
    from prometheus_client.parser import text_string_to_metric_families

    from gateway.metrics import Metrics

    m = Metrics()
    m.to_browser.inc(120)
    m.to_browser.inc(5)
    m.gmcp_to_game.inc()
    for v in (0.0005, 0.0007, 20.0):
        m.event_latency.observe(v)
    families = {f.name: f for f in text_string_to_metric_families(m.render(0, 0).decode())}
    assert families["mud_gateway_bytes"].type == "counter"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    assert samples[("mud_gateway_bytes_total", (("direction", "to_browser"),))] == 125
    assert samples[("mud_gateway_bytes_total", (("direction", "to_game"),))] == 0
    assert ("mud_gateway_bytes_created", (("direction", "to_game"),)) in samples
    assert samples[("mud_gateway_gmcp_messages_total", (("direction", "to_game"),))] == 1
    assert samples[("mud_gateway_gmcp_messages_total", (("direction", "from_game"),))] == 0
    assert families["mud_gateway_event_latency_seconds"].type == "histogram"
    bucket = "mud_gateway_event_latency_seconds_bucket"
    assert samples[(bucket, (("le", "0.0005"),))] == 1
    assert samples[(bucket, (("le", "0.001"),))] == 2
    assert samples[(bucket, (("le", "10.0"),))] == 2
    assert samples[(bucket, (("le", "+Inf"),))] == 3
    assert samples[("mud_gateway_event_latency_seconds_count", ())] == 3
    assert abs(samples[("mud_gateway_event_latency_seconds_sum", ())] - 20.0012) < 1e-9
    assert ("mud_gateway_event_latency_seconds_created", ()) in samples
