"""``mud-gateway token``: mint a JWT for the configured secret (SPEC 4.1 "Token").

An admin wires their website's login to the gateway with it (or copies
:func:`mint` into the website): the token is HS256-signed with
``security.auth.secret`` (or the variable named by ``secret_env``) and carries
``iat``, ``exp`` and, when asked, ``sub`` and ``games``: exactly what
:func:`gateway.auth.verify` accepts.
"""

from __future__ import annotations

import argparse
import sys
import time

import jwt

from .config import ConfigError, load_config

DEFAULT_CONFIG = "/etc/mud-gateway/gateway.yaml"  # the systemd unit's config (SPEC 8)
DEFAULT_TTL_SECONDS = 3600


def mint(secret: str, ttl_seconds: int, sub: str | None = None, games: list[str] | None = None,
         now: float | None = None) -> str:
    """An HS256 JWT with ``iat`` = now, ``exp`` = now + ``ttl_seconds`` and the optional claims."""
    iat = int(time.time() if now is None else now)
    claims: dict = {"iat": iat, "exp": iat + ttl_seconds}
    if sub is not None:
        claims["sub"] = sub
    if games is not None:
        claims["games"] = games
    return jwt.encode(claims, secret, algorithm="HS256")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be at least 1 second")
    return value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mud-gateway token",
        description="Print a JWT (HS256, with iat and exp) that the gateway with this config accepts.")
    parser.add_argument("--sub", metavar="NAME", help="the account (claim `sub`; logged, and binds resume)")
    parser.add_argument("--games", metavar="A,B",
                        help="comma-separated game names this token may join (claim `games`; default: all)")
    parser.add_argument("--ttl", metavar="SECONDS", type=_positive_int, default=DEFAULT_TTL_SECONDS,
                        help=f"lifetime (claim `exp` = now + SECONDS; default {DEFAULT_TTL_SECONDS})")
    parser.add_argument("--config", metavar="PATH", default=DEFAULT_CONFIG,
                        help=f"the gateway's config file, for its secret (default {DEFAULT_CONFIG})")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"mud-gateway token: {args.config}: {exc}", file=sys.stderr)
        return 2
    auth = config.security.auth
    secret = auth.resolved_secret()
    if secret is None:
        where = (f"the environment variable {auth.secret_env} (security.auth.secret_env) is unset or empty"
                 if auth.secret_env else "security.auth.secret and security.auth.secret_env are both unset")
        print(f"mud-gateway token: {args.config}: no secret configured: {where}; "
              "the gateway would ignore any token", file=sys.stderr)
        return 1
    games = None
    if args.games is not None:
        games = [g.strip() for g in args.games.split(",") if g.strip()]
        known = {g.name for g in config.games}
        unknown = [g for g in games if g not in known]
        if unknown or not games:
            print(f"mud-gateway token: --games: unknown game(s) {', '.join(unknown) or '(none given)'}; "
                  f"{args.config} has: {', '.join(sorted(known))}", file=sys.stderr)
            return 2
    if args.ttl > auth.max_age_seconds:
        print(f"mud-gateway token: note: the gateway refuses the token {auth.max_age_seconds} s after "
              "it was issued (security.auth.max_age_seconds), before its exp", file=sys.stderr)
    print(mint(secret, args.ttl, sub=args.sub, games=games))
    return 0
