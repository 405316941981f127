"""Token authentication of the WebSocket upgrade (SPEC 4.1 "Token", 3 ``security.auth``).

Pure functions, no aiohttp: the route hands over the query and the
``Sec-WebSocket-Protocol`` header and turns :class:`TokenError` into HTTP 403.
Tokens are HS256 JWTs; ``exp`` is required, ``iat`` (when present) must be no
older than ``max_age_seconds``, a token with an ``aud`` claim is refused;
optional claims ``sub`` (str) and ``games`` (list of str). A reason in a :class:`TokenError` never contains the token.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from typing import Any

import jwt

PROTOCOL_PREFIX = "base64url.bearer.phx."
CLOCK_SKEW_SECONDS = 60  # how far in the future an `iat` may be (clocks differ)


class TokenError(Exception):
    """A missing or invalid token; ``str(exc)`` is the reason, safe to log."""


def token_from_request(query: Mapping[str, str], protocols_header: str | None) -> str | None:
    """The ``token`` query parameter, else the token of a Phoenix 1.8 ``authToken``
    subprotocol entry ``base64url.bearer.phx.<b64>`` (base64url without ``=``
    padding). ``None`` when neither is there; :class:`TokenError` when the
    subprotocol entry does not decode."""
    token = query.get("token")
    if token:
        return token
    for entry in (protocols_header or "").split(","):
        entry = entry.strip()
        if not entry.startswith(PROTOCOL_PREFIX):
            continue
        b64 = entry[len(PROTOCOL_PREFIX):]
        try:
            token = base64.b64decode(b64 + "=" * (-len(b64) % 4), altchars=b"-_",
                                     validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise TokenError("undecodable subprotocol token") from None
        return token or None
    return None


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(f"`{name}` is not a number")
    return float(value)


def verify(token: str, secret: str, max_age_seconds: int, now: float | None = None) -> dict:
    """The claims of ``token``, or :class:`TokenError` with the reason."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"],
            # Times are checked below against ``now``, and so is `aud` (PyJWT lets an
            # empty one through when no audience is expected).
            options={"require": ["exp"], "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False, "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {type(exc).__name__}: {exc}") from None
    if not isinstance(claims, dict):
        raise TokenError("invalid token: claims are not an object")
    if "aud" in claims:
        # RFC 7519 4.1.3: a token for an audience the gateway is not part of must be
        # rejected; the gateway is no audience, so any `aud` is someone else's token.
        raise TokenError("token has an audience (`aud`): it is meant for another service")
    now = time.time() if now is None else now
    exp = _number(claims, "exp")
    if exp is None or exp <= now:
        raise TokenError("token expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now:
        raise TokenError("token not yet valid (nbf)")
    iat = _number(claims, "iat")
    if iat is not None:
        if iat > now + CLOCK_SKEW_SECONDS:
            raise TokenError("token issued in the future (iat)")
        if now - iat > max_age_seconds:
            raise TokenError("token too old (iat older than max_age_seconds)")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise TokenError("`sub` is not a string")
    games = claims.get("games")
    if "games" in claims and not (isinstance(games, list) and all(isinstance(g, str) for g in games)):
        raise TokenError("`games` is not a list of strings")
    return claims


def authenticate(auth_config: Any, query: Mapping[str, str], protocols_header: str | None) -> dict | None:
    """The claims of the request's token (``None`` when there is none, or when
    no secret is configured and auth is not required: tokens are then ignored).
    :class:`TokenError` when the upgrade must be refused with 403."""
    secret = auth_config.resolved_secret()
    if secret is None:
        if auth_config.required:
            raise TokenError("auth required but no secret configured")
        return None
    token = token_from_request(query, protocols_header)
    if token is None:
        if auth_config.required:
            raise TokenError("token required")
        return None
    return verify(token, secret, auth_config.max_age_seconds)


def may_join(claims: dict | None, game_name: str) -> bool:
    """False when the token's ``games`` claim (checked by :func:`verify`) does not list ``game_name``."""
    return not claims or "games" not in claims or game_name in claims["games"]
