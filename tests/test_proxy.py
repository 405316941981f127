"""PROXY protocol headers: the pure encoder, and the header first on a real game connection."""

import struct

import pytest

from gateway.telnet.proxy import V2_SIGNATURE, proxy_header
from tests.conftest import session


def test_v1():
    assert proxy_header("v1", "203.0.113.7", 51000, "127.0.0.1", 4000) == \
        b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 4000\r\n"
    assert proxy_header("v1", "2001:db8::1", 1, "::1", 4000) == b"PROXY TCP6 2001:db8::1 ::1 1 4000\r\n"
    # Mixed families: IPv4 mapped into IPv6.
    assert proxy_header("v1", "2001:db8::1", 1, "127.0.0.1", 23) == \
        b"PROXY TCP6 2001:db8::1 ::ffff:7f00:1 1 23\r\n"
    assert proxy_header("v1", "not an ip", 1, "127.0.0.1", 23) == b"PROXY UNKNOWN\r\n"


def test_v2():
    h = proxy_header("v2", "203.0.113.7", 51000, "127.0.0.1", 4000)
    assert h[:12] == V2_SIGNATURE and h[12] == 0x21 and h[13] == 0x11
    (length,) = struct.unpack("!H", h[14:16])
    assert length == 12 and len(h) == 28
    assert h[16:20] == bytes([203, 0, 113, 7]) and h[20:24] == bytes([127, 0, 0, 1])
    assert struct.unpack("!HH", h[24:28]) == (51000, 4000)
    h6 = proxy_header("v2", "2001:db8::1", 5, "::1", 6)
    assert h6[13] == 0x21 and struct.unpack("!H", h6[14:16]) == (36,)
    local = proxy_header("v2", "?", 0, "127.0.0.1", 1)
    assert local == V2_SIGNATURE + b"\x20\x00\x00\x00"
    with pytest.raises(ValueError):
        proxy_header("v3", "1.2.3.4", 1, "1.2.3.4", 2)


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_header_goes_first_on_the_game_connection(mud, gateway, version):
    phx, topic, conn, _ = await session(mud, gateway, game_extra=f"    proxy_protocol: {version}")
    assert (await phx.request(topic, "recv", {"message": "look"}))["status"] == "ok"
    await conn.wait_for(b"look\r\n")
    received = bytes(conn.received)
    if version == "v1":
        line, _, rest = received.partition(b"\r\n")
        parts = line.split(b" ")
        assert parts[:4] == [b"PROXY", b"TCP4", b"127.0.0.1", b"127.0.0.1"]
        assert int(parts[4]) > 0 and int(parts[5]) == mud.port
    else:
        assert received.startswith(V2_SIGNATURE + b"\x21\x11\x00\x0c")
        assert struct.unpack("!H", received[26:28]) == (mud.port,)
        rest = received[28:]
    assert rest.startswith(b"look\r\n") or rest.startswith(b"\xff")
