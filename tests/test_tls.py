"""TLS ("secure telnet") to the game: system-CA verification with the host name, or a pinned certificate."""

from __future__ import annotations

import asyncio
import hashlib
import ssl

import pytest
import trustme

from tests.conftest import make_config, new_topic
from tests.fakemud import FakeMud


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
async def tls_mud(ca):
    """``await tls_mud(name)`` -> (a fake MUD speaking TLS with a certificate for ``name``, its pin)."""
    muds: list[FakeMud] = []

    async def start(name: str = "127.0.0.1") -> tuple[FakeMud, str]:
        cert = ca.issue_cert(name)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
        muds.append(await FakeMud(ssl=ctx).start())
        return muds[-1], hashlib.sha256(der).hexdigest()

    yield start
    for mud in muds:
        await mud.close()


@pytest.fixture
def system_cas(ca, tmp_path, monkeypatch):
    """Make the test CA the only "system" CA."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


async def join(gateway, port: int, game_extra: str):
    _, connect = await gateway(make_config(port, game_extra="    tls: true\n" + game_extra))
    phx = await connect()
    topic = new_topic()
    return phx, topic, await phx.join(topic)


async def test_verified_against_system_cas_and_host_name(tls_mud, gateway, system_cas):
    mud, _ = await tls_mud()
    phx, topic, reply = await join(gateway, mud.port, "")
    assert reply["status"] == "ok", reply
    conn = await mud.next_connection()
    conn.send(b"over TLS\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "over TLS\n"


async def test_wrong_host_name_is_unavailable(tls_mud, gateway, system_cas):
    mud, _ = await tls_mud("elsewhere.example")
    _, _, reply = await join(gateway, mud.port, "")
    assert reply["status"] == "error"
    assert reply["response"]["reason"] == "game unavailable"
    assert "TLS" in reply["response"]["detail"]


async def test_untrusted_certificate_is_unavailable(tls_mud, gateway):
    mud, _ = await tls_mud()
    _, _, reply = await join(gateway, mud.port, "")
    assert reply["response"] == {"reason": "game unavailable", "detail": reply["response"]["detail"]}
    assert "TLS" in reply["response"]["detail"]


async def test_pinned_certificate(tls_mud, gateway):
    mud, pin = await tls_mud("self-signed.example")
    phx, topic, reply = await join(gateway, mud.port, f"    tls_pin_sha256: '{pin}'")
    assert reply["status"] == "ok", reply
    conn = await mud.next_connection()
    conn.send(b"pinned\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "pinned\n"
    wrong = "00" * 32
    _, _, reply = await join(gateway, mud.port, f"    tls_pin_sha256: '{wrong}'")
    assert reply["status"] == "error" and reply["response"]["reason"] == "game unavailable"
    assert "tls_pin_sha256" in reply["response"]["detail"]


async def test_tls_verify_off(tls_mud, gateway):
    mud, _ = await tls_mud("anything.example")
    _, _, reply = await join(gateway, mud.port, "    tls_verify: false")
    assert reply["status"] == "ok", reply


async def test_game_that_hangs_up_during_the_connect(ca, gateway):
    """Over TLS the game's text and close arrive with the handshake, before the join has its session."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)

    async def full(reader, writer):
        writer.write(b"Sorry, the game is full.\r\n")
        writer.close()

    server = await asyncio.start_server(full, "127.0.0.1", 0, ssl=ctx)
    try:
        phx, topic, reply = await join(gateway, server.sockets[0].getsockname()[1], "    tls_verify: false")
        assert reply["status"] == "ok", reply
        assert (await phx.event(topic, "echo"))["message"] == "Sorry, the game is full.\n"
        assert (await phx.event(topic, "disconnect"))["reason"] == "closed by game"
    finally:
        server.close()
