"""What one address can make the gateway hold or do beyond its sessions (docs/security.md):
session-less sockets, bounded per address and in all; and sessions started and ended over and
over, each a new connection to the game, bounded in rate."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from gateway.routes import SOCKETS, SOCKETS_PER_SESSION
from gateway.ratelimit import Buckets
from gateway.session import NEW_SESSIONS_PER_SECOND, SessionManager

from .conftest import make_config, new_topic, until
from .fakemud import FakeMud

PROXIED = "security: {trusted_proxies: ['127.0.0.1/32']}\n"


def player(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def refused_upgrade(connect, headers: dict[str, str]) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(headers=headers)
    return refused.value.status


async def test_an_address_holds_at_most_twice_its_session_limit_of_sockets(mud, gateway):
    client, connect = await gateway(make_config(mud.port, extra=PROXIED + "limits: {max_sessions_per_ip: 2}"))
    bound = SOCKETS_PER_SESSION * 2
    held = [await connect(headers=player("203.0.113.7")) for _ in range(bound)]
    # None of them joined anything: each would otherwise be kept open by its heartbeats.
    assert await refused_upgrade(connect, player("203.0.113.7")) == 429
    assert await refused_upgrade(connect, player("203.0.113.7")) == 429
    assert len(client.server.app[SOCKETS]) == bound
    # Another address is someone else.
    other = await connect(headers=player("198.51.100.4"))
    assert (await other.join(new_topic()))["status"] == "ok"
    # A socket that goes frees its place.
    await held.pop().ws.close()
    await until(lambda: client.server.app[SOCKETS].count("203.0.113.7") < bound, what="the close is seen")
    again = await connect(headers=player("203.0.113.7"))
    assert (await again.join(new_topic()))["status"] == "ok"
    for phx in held + [other, again]:
        await phx.ws.close()


async def test_a_player_at_the_session_limit_still_hears_why_a_join_is_refused(mud, gateway):
    # The socket bound is above the session bound: a join past max_sessions_per_ip gets its
    # SPEC 4.2 answer on a socket of its own, not a refused upgrade.
    _, connect = await gateway(make_config(mud.port, extra="limits: {max_sessions_per_ip: 1}"))
    first = await connect()
    assert (await first.join(new_topic()))["status"] == "ok"
    second = await connect()
    reply = await second.join(new_topic())
    assert reply == {"status": "error", "response": {"reason": "too many sessions"}}
    assert await refused_upgrade(connect, {}) == 429
    await first.ws.close()
    await second.ws.close()


async def test_all_addresses_together_hold_at_most_twice_max_sessions_of_sockets(mud, gateway):
    client, connect = await gateway(make_config(
        mud.port, extra=PROXIED + "limits: {max_sessions: 2, max_sessions_per_ip: 10}"))
    held = [await connect(headers=player(f"203.0.113.{n}")) for n in range(SOCKETS_PER_SESSION * 2)]
    assert await refused_upgrade(connect, player("198.51.100.4")) == 503
    await held.pop().ws.close()
    await until(lambda: len(client.server.app[SOCKETS]) < SOCKETS_PER_SESSION * 2, what="the close is seen")
    held.append(await connect(headers=player("198.51.100.4")))
    for phx in held:
        await phx.ws.close()


async def test_joining_and_leaving_over_and_over_dials_the_game_at_a_bounded_rate(mud, gateway):
    _, connect = await gateway(make_config(mud.port, extra="limits: {max_sessions_per_ip: 3}"))
    phx = await connect()
    started = refused = 0
    began = time.monotonic()
    for _ in range(40):
        topic = new_topic()
        reply = await phx.join(topic)
        if reply["status"] == "ok":
            started += 1
            assert (await phx.request(topic, "phx_leave", {}))["status"] == "ok"
        else:
            assert reply["response"] == {"reason": "too many sessions"}
            refused += 1
    elapsed = time.monotonic() - began
    # Twice the per-address limit at once, then one a second: however slow the machine,
    # never more than that.
    assert started <= 2 * 3 + NEW_SESSIONS_PER_SECOND * elapsed + 1
    assert started == len(mud.connections), "a refused join dialled the game"
    if elapsed < 30:  # 40 joins and leaves over loopback: well under that anywhere
        assert refused > 0
    await phx.ws.close()


async def test_a_ws_socket_started_over_and_over_is_refused_at_the_same_rate(gateway):
    mud = await FakeMud(on_connect=b"Welcome!\r\n").start()
    client, _ = await gateway(make_config(mud.port, extra="limits: {max_sessions_per_ip: 2}"))
    codes = []
    began = time.monotonic()
    for _ in range(20):
        ws = await client.ws_connect("/ws", protocols=("terminal.mudstandards.org",))
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.CLOSE:
            codes.append((msg.data, msg.extra))
        else:
            codes.append("played")
            await ws.close()
        await ws.close()
    elapsed = time.monotonic() - began
    played = codes.count("played")
    assert played <= 2 * 2 + NEW_SESSIONS_PER_SECOND * elapsed + 1
    assert set(codes) <= {"played", (1013, "too many sessions")}, codes
    assert played == len(mud.connections)
    if elapsed < 15:
        assert (1013, "too many sessions") in codes
    await mud.close()


async def test_the_table_of_session_starts_forgets_addresses_whose_bucket_is_full_again(mud):
    """Every address that starts a session gets a bucket; one that is full again (the address
    started nothing for a while) is the same as none, and goes when the table next grows."""
    manager = SessionManager(make_config(mud.port, extra="limits: {max_sessions_per_ip: 1}"))
    for n in range(Buckets.PRUNE_AT):
        assert manager._may_start(f"10.0.{n // 256}.{n % 256}", 1)
    assert len(manager._starts) == Buckets.PRUNE_AT
    await asyncio.sleep(2 / NEW_SESSIONS_PER_SECOND)  # each of them full again
    assert manager._may_start("198.51.100.4", 1)
    assert len(manager._starts) == 1
    # The one address that spent its tokens keeps its bucket, and is still held to it.
    assert manager._may_start("198.51.100.4", 1)
    assert not manager._may_start("198.51.100.4", 1)
