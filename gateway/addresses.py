"""Players' IP addresses as the gateway compares, counts, logs and forwards them (SPEC 5).

Two rules live here: an IPv4-mapped IPv6 address (``::ffff:10.0.0.2``, as a
dual-stack socket, nginx or HAProxy writes an IPv4 peer) *is* the IPv4
address; and an IPv6 zone (``fe80::1%eth0``, a link-local peer's; ``ipaddress``
takes any text after the ``%``, spaces included) is dropped, as nothing the
address goes to has a place for it (a PROXY v1 line, NEW-ENVIRON, a log field). Every address the gateway takes in (the peer, X-Forwarded-For
entries, the CIDRs of the config) goes through :func:`parse_address` or
:func:`parse_network`, and the player's address that the rest of the gateway
uses (per-IP limits, the deny list, logs, NEW-ENVIRON ``IPADDRESS``, the
PROXY header) comes from :func:`client_address`, already normalised.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an address (IPv4-mapped IPv6 as IPv4, no IPv6 zone), or None when it is not one."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if addr.version == 6:
        if addr.ipv4_mapped is not None:  # type: ignore[union-attr]
            return addr.ipv4_mapped  # type: ignore[union-attr]
        if addr.scope_id is not None:  # type: ignore[union-attr]
            return ipaddress.IPv6Address(addr.packed)
    return addr


def parse_network(text: str) -> IPNetwork:
    """An address or CIDR of the config (host bits ignored); a network inside
    ``::ffff:0:0/96`` is the IPv4 network it maps. ValueError when it is neither."""
    net = ipaddress.ip_network(text.strip(), strict=False)
    if net.version == 6 and net.prefixlen >= 96 and net.subnet_of(_MAPPED):  # type: ignore[arg-type]
        mapped = net.network_address.ipv4_mapped  # type: ignore[union-attr]
        assert mapped is not None
        return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


def client_address(peer: str, forwarded_for: Iterable[str], trusted: tuple[IPNetwork, ...]) -> str:
    """The player's address: the peer, or, when the peer is a trusted proxy, the
    right-most X-Forwarded-For entry (of all the headers' comma-separated
    entries) not itself in ``trusted``. A header with an entry that is not an
    address is not believed (the last trusted hop is the answer). A peer that is
    not an address (a Unix socket) is returned as it is."""
    addr = parse_address(peer)
    if addr is None:
        return peer
    if not any(addr in net for net in trusted):
        return str(addr)
    hops = [h for h in ",".join(forwarded_for).split(",") if h.strip()]
    for hop in reversed(hops):
        hop_addr = parse_address(hop)
        if hop_addr is None:
            break  # a forged or broken header: trust nothing in it
        addr = hop_addr
        if not any(addr in net for net in trusted):
            break
    return str(addr)
