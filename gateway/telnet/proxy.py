"""HAProxy PROXY protocol headers (v1 text, v2 binary), sans-I/O.

Sent first on the game connection when a game's ``proxy_protocol`` asks for
it, so that the game sees the player's address instead of the gateway's.
Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

import ipaddress
import struct

from ..addresses import parse_address

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def _pair(src: str, dst: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] | None:
    """Both addresses in one family (IPv4 is mapped into IPv6 when they differ), or None. (No
    IPv6 zone: ``parse_address`` drops it; a v1 line with one, a space in it, is malformed.)"""
    a, b = parse_address(src), parse_address(dst)
    if a is None or b is None:
        return None
    if a.version != b.version:
        a, b = (ipaddress.IPv6Address(f"::ffff:{x}") if x.version == 4 else x for x in (a, b))
    return a, b


def proxy_header(version: str, src: str, src_port: int, dst: str, dst_port: int) -> bytes:
    """The header for a TCP connection from ``src`` (the player) to ``dst`` (the game)."""
    pair = _pair(src, dst)
    if version == "v1":
        if pair is None:
            return b"PROXY UNKNOWN\r\n"
        a, b = pair
        family = "TCP4" if a.version == 4 else "TCP6"
        return f"PROXY {family} {a} {b} {src_port} {dst_port}\r\n".encode("ascii")
    if version == "v2":
        if pair is None:  # LOCAL command: no address to tell
            return V2_SIGNATURE + bytes((0x20, 0x00)) + struct.pack("!H", 0)
        a, b = pair
        family = 0x11 if a.version == 4 else 0x21  # TCP over IPv4 / IPv6
        body = a.packed + b.packed + struct.pack("!HH", src_port, dst_port)
        return V2_SIGNATURE + bytes((0x21, family)) + struct.pack("!H", len(body)) + body
    raise ValueError(f"unknown PROXY protocol version {version!r}")
