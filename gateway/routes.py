"""The HTTP surface (SPEC 7) and the WebSocket upgrade checks (SPEC 4.1).

``create_app(config)`` builds the aiohttp application: ``/`` and ``/client/``
(the browser client, webclient.py), ``/healthz``, ``/api/games``, ``/metrics``,
``/socket/websocket``, ``/ws`` (the MUD Standards subprotocols, SPEC 9:
gateway/mudstandards/) and the admin API (admin.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from aiohttp import web

from . import __version__, admin
from .aiohttp_private import HandshakeOnly, forget_connection, unread_after_request
from .addresses import IPNetwork, client_address, parse_address
from .auth import TokenError, authenticate, may_join
from .config import Config, normalise_origin, origin_parts
from .logs import log_refusal
from .metrics import CONTENT_TYPE_LATEST
from .mudstandards.framing import choose as choose_subprotocol
from .mudstandards.framing import full_name as full_subprotocol_name
from .mudstandards.socket import MudSocket
from .session import SessionManager
from .transport.frames import negotiate_deflate
from .transport.registry import SocketRegistry
from .transport.serializer import serializer_for
from .transport.websocket import PhoenixSocket, watch
from .webclient import add_routes as add_client_routes

log = logging.getLogger("gateway.http")

SESSIONS = web.AppKey("sessions", SessionManager)
SOCKETS: "web.AppKey[SocketRegistry[Any]]" = web.AppKey("sockets", SocketRegistry)
#: 1 at start, +1 for each completed upgrade in place (SPEC 6.1).
GENERATION = web.AppKey("generation", int)

_json = msgspec.json.Encoder()

#: Most subprotocols an upgrade may offer (the entries of its ``Sec-WebSocket-Protocol``
#: headers, all together): a browser offers two (``phoenix`` and the token), a MUD client a
#: few. More is HTTP 400, counted in C before any entry is looked at: the token's search and
#: the subprotocol's choice take a Python step an entry, and a megabyte of entries held the
#: loop 50-140 ms a request (docs/security.md).
MAX_OFFERED_SUBPROTOCOLS = 32


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_json.encode(data), status=status, content_type="application/json")


def client_ip(request: web.Request, trusted: tuple[IPNetwork, ...]) -> str:
    """The player's address (SPEC 5), normalised: see :func:`gateway.addresses.client_address`."""
    return client_address(request.remote or "", request.headers.getall("X-Forwarded-For", []), trusted)


def origin_allowed(request: web.Request, allowed: list[str]) -> bool:
    """SPEC 4.1: ``allowed`` holds normalised origins (config.py); empty: same host and port."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser
    if allowed:
        return normalise_origin(origin) in allowed
    parts = origin_parts(origin)
    if parts is None:
        return False
    # The Host header has no scheme: it is reached the way the page was.
    return origin_parts(f"{parts[0]}://{request.host}") == parts


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "sessions": len(request.app[SESSIONS]),
                          "version": __version__, "generation": request.app[GENERATION]})


async def games(request: web.Request) -> web.Response:
    config = request.app[SESSIONS].config
    default = config.default_game.name
    mssp = request.app[SESSIONS].mssp
    return json_response({"games": [
        {"name": g.name, "title": g.display_title, "default": g.name == default,
         "mssp": mssp.get(g.name), "media_url": g.media_url}
        for g in config.games]})


def _origin_and_token(request: web.Request, config: Config) -> tuple[str, list[str], Any]:
    """SPEC 4.1's checks before an upgrade (both endpoints): the Origin, then the token
    (HTTP 403 for either). Returns the client IP, the offered subprotocols and the claims.
    A request offering more than MAX_OFFERED_SUBPROTOCOLS is malformed: HTTP 400 before them."""
    protocols = request.headers.getall("Sec-WebSocket-Protocol", [])
    if sum(p.count(",") + 1 for p in protocols) > MAX_OFFERED_SUBPROTOCOLS:
        raise web.HTTPBadRequest(text=f"more than {MAX_OFFERED_SUBPROTOCOLS} subprotocols offered")
    ip = client_ip(request, config.security.trusted_networks)
    # Either refusal is a line a client can ask for at will (pipelined on one connection):
    # bounded by kind, its values cut (logs.log_refusal).
    if not origin_allowed(request, config.security.allowed_origins):
        log_refusal(log, "refused_origin", "refused origin", origin=request.headers.get("Origin"), ip=ip)
        raise web.HTTPForbidden(text="origin not allowed")
    try:
        claims = authenticate(config.security.auth, request.query,
                              ",".join(protocols) if protocols else None)
    except TokenError as exc:
        # The reason only, never the token (a reason may quote the token's unsigned header).
        log_refusal(log, "refused_token", "refused token", ip=ip, reason=str(exc))
        raise web.HTTPForbidden(text="invalid or missing token") from None
    return ip, protocols, claims


async def socket(request: web.Request) -> web.StreamResponse:
    config = request.app[SESSIONS].config
    serializer = serializer_for(request.query.get("vsn"))
    if serializer is None:
        raise web.HTTPBadRequest(text="unsupported vsn")
    ip, protocols, claims = _origin_and_token(request, config)
    _room_for_a_socket(request.app[SOCKETS], ip, config)
    # permessage-deflate is agreed here, not by aiohttp: our answer asks the browser for
    # client_no_context_takeover (frames.negotiate_deflate; idle memory).
    ws = HandshakeOnly(protocols=("phoenix",), compress=False)
    if request.transport is None or not ws.can_prepare(request).ok:
        await ws.prepare(request)  # aiohttp answers the bad upgrade (400) as it does
        return ws
    sock = PhoenixSocket(request.transport, serializer, request.app[SESSIONS], ip, claims=claims,
                         client_port=_client_port(request, ip), registry=request.app[SOCKETS])
    deflate = negotiate_deflate(",".join(request.headers.getall("Sec-WebSocket-Extensions", [])))
    if deflate is not None:
        ws.headers["Sec-WebSocket-Extensions"] = deflate[0]
    # The 101, with the subprotocol (and our permessage-deflate answer).
    await _take_over(request, ws, sock, deflate[1] if deflate is not None else None)
    return ws


#: How many open sockets an address may hold, and all addresses together, for each session
#: ``limits.max_sessions_per_ip`` and ``max_sessions`` allow: room for a session's socket and
#: one more (a reloaded page's, while the old one is not yet known to be gone; a join refused
#: "too many sessions" still gets its socket and its answer).
SOCKETS_PER_SESSION = 2


def _room_for_a_socket(sockets: SocketRegistry, ip: str, config: Config) -> None:
    """A Phoenix socket need hold no session, so sockets are bounded too: past
    ``SOCKETS_PER_SESSION`` times the session limits, HTTP 429 (this address) or 503 (all
    addresses) before the upgrade (docs/security.md). A ``/ws`` socket is a session, bounded as
    one (SPEC 9.1), and counts here."""
    limits = config.limits
    if sockets.count(ip) >= SOCKETS_PER_SESSION * limits.max_sessions_per_ip:
        log_refusal(log, "refused_sockets_per_ip", "refused upgrade: too many sockets from this address", ip=ip)
        raise web.HTTPTooManyRequests(text="too many connections from this address")
    if len(sockets) >= SOCKETS_PER_SESSION * limits.max_sessions:
        log_refusal(log, "refused_sockets", "refused upgrade: too many sockets", ip=ip)
        raise web.HTTPServiceUnavailable(text="too many connections")


def _client_port(request: web.Request, ip: str) -> int:
    """The player's TCP port (PROXY headers), when the peer is the player: 0 behind a proxy."""
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    direct = peer and str(parse_address(request.remote or "")) == ip
    return peer[1] if direct else 0


async def _take_over(request: web.Request, ws: web.WebSocketResponse, sock: PhoenixSocket,
                     deflate: "tuple[int, bool] | None" = None) -> None:
    """Write the 101 and start ``sock`` as the connection's protocol: from here the connection
    is the socket's, what the client sends reaches it, not aiohttp (what aiohttp already holds
    after the request, too: sent before the 101). aiohttp forgets the connection without
    closing it: its request handler, parser, task and WebSocket reader are freed (idle
    memory, docs/performance.md)."""
    transport, handler = request.transport, request.protocol
    tail = unread_after_request(handler)
    if tail:
        sock.data_received(tail)
    transport.set_protocol(sock)
    await ws.prepare(request)
    sock.start(deflate)
    forget_connection(handler)


async def mudstandards_socket(request: web.Request) -> web.StreamResponse:
    """``GET /ws`` (SPEC 9.1): the checks in SPEC's order, then the 101 and the session."""
    config = request.app[SESSIONS].config
    served = config.mudstandards.subprotocols
    if not served:
        raise web.HTTPNotFound()
    ip, protocols, claims = _origin_and_token(request, config)
    subprotocol = choose_subprotocol(protocols, served)
    if subprotocol is None:
        raise web.HTTPBadRequest(text="no MUD Standards subprotocol offered that is served here: "
                                      + ", ".join(full_subprotocol_name(p) for p in served))
    game = config.game(request.query.get("game"))
    if game is None:
        raise web.HTTPNotFound(text="unknown game")
    if not may_join(claims, game.name):
        raise web.HTTPForbidden(text="the token does not allow this game")
    ws = HandshakeOnly(protocols=(full_subprotocol_name(subprotocol),), compress=False)
    if request.transport is None or not ws.can_prepare(request).ok:
        await ws.prepare(request)  # aiohttp answers the bad upgrade (400) as it does
        return ws
    sock = MudSocket(request.transport, request.app[SESSIONS], ip, subprotocol, game, claims=claims,
                     client_port=_client_port(request, ip), registry=request.app[SOCKETS])
    await _take_over(request, ws, sock)  # no permessage-deflate on /ws
    sock.admit()
    return ws


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics`` while the live config's ``metrics.enabled`` says so (a reload turns it
    off or on: the session counts it reveals are hidden the moment the admin says), else 404."""
    manager = request.app[SESSIONS]
    if not manager.config.metrics.enabled:
        raise web.HTTPNotFound()
    counts = manager.counts()
    body = manager.metrics.render(counts["attached"], counts["lingering"])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _watch_sockets(app: web.Application):
    """The sockets' one sweep (transport/websocket.py ``watch``) while the app runs."""
    task = asyncio.ensure_future(watch(app[SOCKETS], app[SESSIONS]))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _shutdown(app: web.Application) -> None:
    app[SESSIONS].shutdown("gateway shutdown")
    socks = list(app[SOCKETS])
    if socks:
        await asyncio.gather(*(s.close(1001, b"gateway shutdown") for s in socks),
                             return_exceptions=True)


def apply_config(app: web.Application, config: Config) -> None:
    """Make ``config`` the live one (SIGHUP). The session manager holds the only reference
    that sockets, sessions and handlers read, so every socket sees it at its next look-up;
    what was set from the old one's values is set again here, in one place: the sessions'
    timers (``SessionManager.reload``) and the sockets' (``WebSocket.config_changed``).
    ``listen.*`` was used at start and stays as it was."""
    old = app[SESSIONS].config
    app[SESSIONS].reload(config)
    for sock in list(app[SOCKETS]):
        sock.config_changed(old)


def create_app(config: Config, generation: int = 1) -> web.Application:
    app = web.Application()
    app[GENERATION] = generation
    manager = app[SESSIONS] = SessionManager(config)
    app[SOCKETS] = SocketRegistry()
    # GET / and /client/; the page may load sound from the games' media_url (the live config's)
    add_client_routes(app, media_urls=lambda: [g.media_url for g in manager.config.games if g.media_url])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/games", games)
    app.router.add_get("/socket/websocket", socket)
    app.router.add_get("/ws", mudstandards_socket)  # SPEC 9 (404 while mudstandards.subprotocols is [])
    app.router.add_get("/metrics", metrics)  # 404 while the live config's metrics.enabled is false
    admin.add_routes(app, manager, lambda r: client_ip(r, manager.config.security.trusted_networks))
    app.on_shutdown.append(_shutdown)
    app.cleanup_ctx.append(_watch_sockets)
    return app
