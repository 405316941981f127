"""Game host names to connected sockets, without letting one slow name hold up the others.

The C library's ``getaddrinfo`` blocks, and cannot be cancelled: an event loop
runs it on a small shared pool of threads (asyncio's default executor, six
threads on a two-core machine; uvloop's libuv pool, four). A game whose name
resolves slowly (a DNS server that does not answer: 5 s times the resolver's
attempts, for every lookup) would take one thread per join until none is left,
and joins to every other game would wait for a thread and time out.

Here each lookup runs on a thread of its own (a daemon: a graceful stop does
not wait for it), and lookups of the same name share one (single flight): a
name takes at most one thread however many joins ask for it, and the number
of threads is at most the number of game host names being looked up at once
(the config's games). Whoever waits gives up at its ``connect_timeout``
(``client.connect``); the lookup itself ends when the C library says so, and
the next join asks again. An IP address needs no lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from typing import Any

AddrInfo = tuple[Any, ...]  # (family, type, proto, canonname, sockaddr), as socket.getaddrinfo

#: Lookups in flight: (loop, host, port) -> the future every join for that name awaits.
_in_flight: dict[tuple[asyncio.AbstractEventLoop, str, int], "asyncio.Future[list[AddrInfo]]"] = {}


def in_flight() -> int:
    """Lookups running now (each on a thread of its own)."""
    return len(_in_flight)


def _numeric(host: str, port: int) -> list[AddrInfo] | None:
    """The address itself, when ``host`` is an IP address (no lookup)."""
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if ip.version == 4:
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))]


async def resolve(host: str, port: int) -> list[AddrInfo]:
    """``getaddrinfo(host, port)`` for a TCP connection; raises ``socket.gaierror`` as it does."""
    numeric = _numeric(host, port)
    if numeric is not None:
        return numeric
    loop = asyncio.get_running_loop()
    key = (loop, host, port)
    future = _in_flight.get(key)
    if future is None:
        future = _in_flight[key] = loop.create_future()
        threading.Thread(target=_lookup, args=(loop, key, future), name=f"resolve {host}",
                         daemon=True).start()
    # Shielded: a join that gives up (its connect_timeout) leaves the lookup to the others.
    return await asyncio.shield(future)


def _lookup(loop: asyncio.AbstractEventLoop, key: tuple[Any, str, int],
            future: "asyncio.Future[list[AddrInfo]]") -> None:
    """On the lookup's own thread: the C library's answer, handed to the loop."""
    _, host, port = key
    try:
        result: Any = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        failed = False
    except Exception as exc:  # gaierror, UnicodeError (a name IDNA cannot encode), ...
        result, failed = exc, True
    try:
        loop.call_soon_threadsafe(_settle, key, future, result, failed)
    except RuntimeError:  # the loop is closed (the gateway stopped meanwhile)
        _in_flight.pop(key, None)


def _settle(key: Any, future: "asyncio.Future[list[AddrInfo]]", result: Any, failed: bool) -> None:
    if _in_flight.get(key) is future:
        del _in_flight[key]
    if future.done():
        return
    if failed:
        future.set_exception(result)
        future.exception()  # retrieved: every join waiting may have gone
    else:
        future.set_result(result)


async def create_connection(factory: Any, host: str, port: int, **kwargs: Any) -> tuple[Any, Any]:
    """``loop.create_connection(factory, host, port, **kwargs)``, with ``host`` looked up here:
    its addresses tried in the resolver's order, each an IP address the loop needs no lookup for.

    Raises what the lookup raised, a TLS failure at once (``ssl.SSLError``), or the
    connection error of the first address (a refusal, when any address refused: the host
    is up, the game is not).
    """
    loop = asyncio.get_running_loop()
    errors: list[OSError] = []
    for _, _, _, _, address in await resolve(host, port):
        try:
            return await loop.create_connection(factory, address[0], address[1], **kwargs)
        except ssl.SSLError:
            raise  # the handshake, not the address: another address would not answer better
        except OSError as exc:
            errors.append(exc)
    if not errors:
        raise OSError(f"{host} has no address")
    raise next((e for e in errors if isinstance(e, ConnectionRefusedError)), errors[0])
