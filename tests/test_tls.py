"""TLS ("secure telnet") to the game: system-CA verification with the host name, or a pinned certificate."""

from __future__ import annotations

import hashlib
import ssl

import pytest
import trustme

from tests.conftest import make_config, new_topic
from tests.fakemud import FakeMud


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


async def tls_mud(ca, name: str = "127.0.0.1") -> tuple[FakeMud, str]:
    cert = ca.issue_cert(name)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    pin = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())).hexdigest()
    return await FakeMud(ssl=ctx).start(), pin


async def join(gateway, mud: FakeMud, game_extra: str):
    _, connect = await gateway(make_config(mud.port, game_extra="    tls: true\n" + game_extra))
    phx = await connect()
    topic = new_topic()
    return phx, topic, await phx.join(topic)


async def test_verified_against_system_cas_and_host_name(ca, gateway, tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # the "system" CAs for this test
    mud, _ = await tls_mud(ca)
    try:
        phx, topic, reply = await join(gateway, mud, "")
        assert reply["status"] == "ok", reply
        conn = await mud.next_connection()
        conn.send(b"over TLS\r\n")
        assert (await phx.event(topic, "echo"))["message"] == "over TLS\n"
    finally:
        await mud.close()


async def test_wrong_host_name_is_unavailable(ca, gateway, tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    mud, _ = await tls_mud(ca, name="elsewhere.example")
    try:
        _, _, reply = await join(gateway, mud, "")
        assert reply["status"] == "error"
        assert reply["response"]["reason"] == "game unavailable"
        assert "TLS" in reply["response"]["detail"]
    finally:
        await mud.close()


async def test_untrusted_certificate_is_unavailable(ca, gateway):
    mud, _ = await tls_mud(ca)
    try:
        _, _, reply = await join(gateway, mud, "")
        assert reply["response"] == {"reason": "game unavailable", "detail": reply["response"]["detail"]}
        assert "TLS" in reply["response"]["detail"]
    finally:
        await mud.close()


async def test_pinned_certificate(ca, gateway):
    mud, pin = await tls_mud(ca, name="self-signed.example")
    try:
        phx, topic, reply = await join(gateway, mud, f"    tls_pin_sha256: '{pin}'")
        assert reply["status"] == "ok", reply
        conn = await mud.next_connection()
        conn.send(b"pinned\r\n")
        assert (await phx.event(topic, "echo"))["message"] == "pinned\n"
        wrong = "00" * 32
        _, _, reply = await join(gateway, mud, f"    tls_pin_sha256: '{wrong}'")
        assert reply["status"] == "error" and reply["response"]["reason"] == "game unavailable"
        assert "tls_pin_sha256" in reply["response"]["detail"]
    finally:
        await mud.close()


async def test_tls_verify_off(ca, gateway):
    mud, _ = await tls_mud(ca, name="anything.example")
    try:
        _, _, reply = await join(gateway, mud, "    tls_verify: false")
        assert reply["status"] == "ok", reply
    finally:
        await mud.close()
