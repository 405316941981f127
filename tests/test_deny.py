"""The deny list (SPEC 3 security.deny, 4.2 "denied"): by IPv4, by IPv6, through a trusted proxy."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from gateway.routes import create_app
from tests.conftest import Phx, make_config, new_topic

MESSAGE = "Not from there, friend."


def deny(*cidrs: str, trusted: str = "[]") -> str:
    quoted = ", ".join(f"'{c}'" for c in cidrs)
    return f"security: {{deny: [{quoted}], deny_message: '{MESSAGE}', trusted_proxies: {trusted}}}"


async def joins_total(client, result: str) -> float:
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(f'mud_gateway_joins_total{{result="{result}"}}'):
            return float(line.split()[-1])
    return 0.0


async def test_denied_ipv4_gets_denied_with_the_message_and_is_counted(mud, gateway, caplog):
    caplog.set_level("INFO")
    client, connect = await gateway(make_config(mud.port, extra=deny("10.0.0.0/8", "127.0.0.0/24")))
    phx = await connect()
    reply = await phx.join(new_topic())
    assert reply == {"status": "error", "response": {"reason": "denied", "detail": MESSAGE}}
    assert mud.connections == []  # the game never hears of a denied player
    assert await joins_total(client, "denied") == 1
    assert any(r.getMessage() == "join denied ip=127.0.0.1" for r in caplog.records)


async def test_address_outside_the_list_plays(mud, gateway):
    client, connect = await gateway(make_config(mud.port, extra=deny("10.0.0.0/8", "::1/128")))
    phx = await connect()
    assert (await phx.join(new_topic()))["status"] == "ok"
    assert await joins_total(client, "denied") == 0


@pytest.mark.parametrize("denied, expected", [
    (("2001:db8::/32", "::1/128"), "denied"),
    (("127.0.0.0/8", "2001:db8::/32"), "ok"),    # IPv4 networks never match an IPv6 peer
])
async def test_ipv6_peer(mud, denied, expected):
    """A gateway listening on ::1: the peer is an IPv6 address, matched against IPv6 CIDRs."""
    runner = web.AppRunner(create_app(make_config(mud.port, extra=deny(*denied))))
    await runner.setup()
    site = web.TCPSite(runner, "::1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"http://[::1]:{port}/socket/websocket?vsn=2.0.0")
            reply = await Phx(ws).join(new_topic())
            assert reply["status"] == ("error" if expected == "denied" else "ok"), reply
            await ws.close()
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("xff, status", [
    ("2001:db8:77::5", "error"),           # IPv6 player behind the proxy, in 2001:db8::/32
    ("203.0.113.9", "error"),              # IPv4 player behind the proxy, in 203.0.113.0/24
    ("203.0.114.9", "ok"),
    ("203.0.113.9, 198.51.100.1", "ok"),   # the right-most untrusted hop is the player
])
async def test_through_a_trusted_proxy(mud, gateway, xff, status):
    _, connect = await gateway(make_config(
        mud.port, extra=deny("203.0.113.0/24", "2001:db8::/32", trusted="['127.0.0.1/32']")))
    phx = await connect(headers={"X-Forwarded-For": xff})
    reply = await phx.join(new_topic())
    assert reply["status"] == status, reply
    if status == "error":
        assert reply["response"] == {"reason": "denied", "detail": MESSAGE}


async def test_untrusted_peer_cannot_dodge_the_list_with_a_header(mud, gateway):
    _, connect = await gateway(make_config(mud.port, extra=deny("127.0.0.1/32")))
    phx = await connect(headers={"X-Forwarded-For": "198.51.100.1"})
    assert (await phx.join(new_topic()))["response"]["reason"] == "denied"
