"""Game host names and the resolver (issue 17.12): one name that resolves slowly must not make
joins to other games wait.

The slow name is real: a DNS server in the test answers ``fast.mud.test`` at once and never
answers ``slow.mud.test``, and the gateway runs as a subprocess whose /etc/resolv.conf (bind
mounted in a mount namespace of its own, ``unshare``) names that server, so its lookups go
through the C library's resolver as in production.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.telnet import resolver
from tests.conftest import free_port, make_config, new_topic, until
from tests.fakemud import FakeMud
from tests.upgrade_helpers import GatewayProcess

#: Paths where the loops' handles and threads differ: on asyncio's own loop too (conftest).
pytestmark = pytest.mark.both_loops


class FakeDns(asyncio.DatagramProtocol):
    """Answers A queries for ``fast`` names with 127.0.0.1 (AAAA: no data), and never answers ``slow`` ones."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.asked: list[str] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        labels, pos = [], 12
        while data[pos]:
            labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
            pos += 1 + data[pos]
        name = ".".join(labels)
        qtype = struct.unpack("!H", data[pos + 1:pos + 3])[0]
        question = data[12:pos + 5]
        self.asked.append(name)
        if name.startswith("slow."):
            return  # never answered: the resolver waits out its timeouts
        answers = b""
        if qtype == 1 and name.startswith("fast."):
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, 1])
        rcode = 0 if name.startswith("fast.") else 3  # NXDOMAIN otherwise
        header = data[:2] + struct.pack("!HHHHH", 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
        self.transport.sendto(header + question + answers, addr)


class ResolvingGateway(GatewayProcess):
    """The gateway with /etc/resolv.conf naming the fake DNS server (its own mount namespace)."""

    resolv: Path

    @staticmethod
    def argv(config_path: Path) -> list[str]:
        resolv = config_path.parent / "resolv.conf"
        inner = f'mount --bind "{resolv}" /etc/resolv.conf && exec "$@"'
        unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
        return [*unshare, "sh", "-c", inner, "sh", sys.executable, "-m", "gateway", "--config", str(config_path)]


def namespaces_work() -> str | None:
    """Why the test cannot run here, or None."""
    if shutil.which("unshare") is None:
        return "no unshare"
    if os.geteuid() != 0:
        return "binding a DNS server on port 53 needs root"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind /etc/hostname /etc/hostname"],
                           capture_output=True)
    if probe.returncode:
        return f"no mount namespace: {probe.stderr.decode().strip()}"
    return None


async def test_a_slowly_resolving_game_does_not_hold_up_joins_to_other_games(tmp_path):
    """40 joins to a game whose name never resolves (more than the resolver's threads, asyncio's
    or libuv's), then a join to a game whose name resolves at once: that one plays (before: it
    waited for a resolver thread and timed out "no answer within 3s")."""
    why = namespaces_work()
    if why:
        pytest.skip(why)
    if type(asyncio.get_running_loop()).__module__.partition(".")[0] != "uvloop":
        pytest.skip("the gateway subprocess runs on uvloop whatever the test's loop")
    loop = asyncio.get_running_loop()
    dns_host = f"127.{random.randrange(1, 250)}.{random.randrange(1, 250)}.{random.randrange(1, 250)}"
    dns_transport, dns = await loop.create_datagram_endpoint(FakeDns, local_addr=(dns_host, 53))
    (tmp_path / "resolv.conf").write_text(f"nameserver {dns_host}\noptions timeout:5 attempts:3\n")
    mud = await FakeMud().start()
    listen = free_port()
    config = f"""listen: {{host: 127.0.0.1, port: {listen}}}
limits: {{max_sessions_per_ip: 100}}
games:
  - {{name: slow, host: slow.mud.test, port: {mud.port}, connect_timeout: 3}}
  - {{name: fast, host: fast.mud.test, port: {mud.port}, connect_timeout: 3}}
"""
    gw = ResolvingGateway(tmp_path, config)
    try:
        await gw.ready()
        sockets = [await gw.connect() for _ in range(10)]
        slow_refs = []
        for phx in sockets:
            for i in range(4):
                topic = new_topic()
                slow_refs.append((phx, await phx.send(topic, "phx_join", {"game": "slow"}, join_ref=str(i + 1))))
        await until(lambda: "slow.mud.test" in dns.asked, what="the slow lookups started")
        fast = await gw.connect()
        topic = new_topic()
        reply = await fast.join(topic, {"game": "fast"})
        assert reply["status"] == "ok", reply
        conn = await mud.next_connection()
        assert (await fast.request(topic, "recv", {"message": "hello"}))["status"] == "ok"
        await conn.wait_for(b"hello\r\n")
        # The slow game's joins fail within their connect_timeout, however long the name takes.
        for phx, ref in slow_refs:
            answer = await phx.reply(ref, timeout=10)
            assert answer["status"] == "error" and answer["response"]["reason"] == "game unavailable", answer
        assert dns.asked.count("slow.mud.test") < 40  # one lookup at a time for a name, not one per join
        # A graceful stop does not wait for the lookups still waiting on the DNS server.
        assert await gw.stop() == 0
    finally:
        await gw.stop()
        await mud.close()
        dns_transport.close()


# -- the resolver in the test's own process (the system's resolver: /etc/hosts, no DNS) --------

async def test_lookups_of_one_name_share_one_thread():
    first = asyncio.ensure_future(resolver.resolve("localhost", 4000))
    second = asyncio.ensure_future(resolver.resolve("localhost", 4000))
    await asyncio.sleep(0)
    assert resolver.in_flight() == 1  # one lookup for both
    a, b = await asyncio.gather(first, second)
    assert a is b and a and all(info[4][1] == 4000 for info in a)
    assert resolver.in_flight() == 0


async def test_an_ip_address_needs_no_lookup():
    for host, family in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
        (info,) = await resolver.resolve(host, 23)
        assert info[0] == family and info[4][:2] == (host, 23)
    assert resolver.in_flight() == 0


async def test_a_join_that_gives_up_leaves_the_lookup_to_the_others():
    waiting = asyncio.ensure_future(resolver.resolve("localhost", 4001))
    other = asyncio.ensure_future(resolver.resolve("localhost", 4001))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await other
    await asyncio.gather(waiting, return_exceptions=True)


async def test_a_name_that_does_not_resolve_is_game_unavailable(mud, gateway):
    config = make_config(mud.port, games="  - {name: nowhere, host: nowhere.invalid, port: 23}")
    _, connect = await gateway(config)
    phx = await connect()
    reply = await phx.join(new_topic(), {"game": "nowhere"})
    assert reply["status"] == "error" and reply["response"]["reason"] == "game unavailable", reply
    assert reply["response"]["detail"] and "no answer" not in reply["response"]["detail"]


async def test_a_name_with_a_refusing_address_then_a_listening_one_connects(mud, gateway):
    """A game by name (``localhost``; where it is also ::1, the fake game listening on 127.0.0.1
    only refuses there first): each address is tried in turn."""
    config = make_config(mud.port, games=f"  - {{name: named, host: localhost, port: {mud.port}}}")
    _, connect = await gateway(config)
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic, {"game": "named"}))["status"] == "ok"
    conn = await mud.next_connection()
    assert (await phx.request(topic, "recv", {"message": "hi"}))["status"] == "ok"
    await conn.wait_for(b"hi\r\n")
