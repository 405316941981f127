"""The admin API (SPEC 7): ``GET /admin/sessions`` and ``POST /admin/sessions/{id}/kick``.

Present only while ``admin.token_env`` names a set environment variable (else
both answer 404, as if there were none); each request needs
``Authorization: Bearer <that token>`` (else 401), compared in constant time.
Sessions are named by their random ``admin_id``, never by the topic's UUID:
that one resumes a session, so it stays between the player and the gateway.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime, timezone

import msgspec
from aiohttp import web

from .logs import log_event
from .session import Session, SessionManager

log = logging.getLogger("gateway.admin")

#: Longest kick message (characters) shown to the player.
MAX_MESSAGE = 1000

_json = msgspec.json.Encoder()


class SessionInfo(msgspec.Struct):
    id: str
    game: str
    ip: str
    sub: str | None
    state: str
    started: str
    bytes_to_browser: int
    bytes_to_game: int


class KickRequest(msgspec.Struct, forbid_unknown_fields=True):
    message: str = ""


def _info(session: Session) -> SessionInfo:
    started = datetime.fromtimestamp(session.started_at, timezone.utc)
    return SessionInfo(
        id=session.admin_id, game=session.game.name, ip=session.client_ip, sub=session.sub,
        state="attached" if session.attached else "lingering",
        started=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        bytes_to_browser=session.bytes_to_browser, bytes_to_game=session.bytes_to_game)


def _json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(body=_json.encode(data), status=status, content_type="application/json")


def _authorize(request: web.Request, manager: SessionManager) -> None:
    """404 without an admin API, 401 without the right bearer token."""
    token = manager.config.admin.token()  # the live config: a reload can name another variable
    if token is None:
        raise web.HTTPNotFound()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Compared as the bytes sent: aiohttp hands a header over with any byte that is not UTF-8
    # as a lone surrogate (surrogateescape), which a plain encode() refuses (a 500, not a 401).
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape")):
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="mud-gateway admin"'},
                                   text="a valid bearer token is required")


class AdminApi:
    """The handlers, bound to the session manager (which holds the live config)."""

    def __init__(self, manager: SessionManager, caller_ip: Callable[[web.Request], str]) -> None:
        self.manager = manager
        self._caller_ip = caller_ip  # request -> the caller's address, as for players

    async def sessions(self, request: web.Request) -> web.Response:
        _authorize(request, self.manager)
        # Every live session, one whose game is still being dialled too (as attached).
        return _json_response({"sessions": [_info(s) for s in self.manager.live()]})

    async def kick(self, request: web.Request) -> web.Response:
        _authorize(request, self.manager)
        try:
            body = await request.read()
        except web.RequestPayloadError:  # a Content-Encoding the body is not in (was a 500)
            raise web.HTTPBadRequest(text="the body does not decode as its Content-Encoding says") from None
        try:
            kick = msgspec.json.decode(body, type=KickRequest) if body.strip() else KickRequest()
        except msgspec.DecodeError as exc:  # ValidationError included
            raise web.HTTPBadRequest(text=f"expected {{\"message\": \"...\"}}: {exc}") from None
        if len(kick.message) > MAX_MESSAGE:
            raise web.HTTPBadRequest(text=f"message longer than {MAX_MESSAGE} characters")
        wanted = request.match_info["id"]
        session = next((s for s in self.manager.live() if s.admin_id == wanted), None)
        if session is None:
            raise web.HTTPNotFound(text="no such session")
        log_event(log, logging.INFO, "admin_kick", "admin kick", id=session.admin_id,
                  game=session.game.name, ip=session.client_ip, sub=session.sub,
                  admin_ip=self._caller_ip(request))
        session.kick(kick.message)  # its game still being dialled too: the dial is abandoned
        return web.Response(status=204)


def add_routes(app: web.Application, manager: SessionManager,
               caller_ip: Callable[[web.Request], str]) -> None:
    """Register ``/admin/*``; ``caller_ip`` works out a request's client address (logged on a kick)."""
    api = AdminApi(manager, caller_ip)
    app.router.add_get("/admin/sessions", api.sessions)
    app.router.add_post("/admin/sessions/{id}/kick", api.kick)
