"""Token authentication (SPEC 4.1 "Token", 4.2 "unauthorized", 3 security.auth): unit tests and real sockets."""

from __future__ import annotations

import base64
import time

import aiohttp
import jwt
import pytest

from gateway.auth import TokenError, authenticate, may_join, token_from_request, verify
from gateway.config import Auth
from tests.conftest import Phx, make_config, new_topic

SECRET = "s3cret-" * 10  # PyJWT warns about keys shorter than the hash (64 bytes for HS512)
REQUIRED = f"security: {{auth: {{required: true, secret: {SECRET}}}}}"


def token(secret: str = SECRET, algorithm: str = "HS256", **claims) -> str:
    claims.setdefault("exp", int(time.time()) + 600)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm=algorithm)


def b64(tok: str) -> str:
    return base64.urlsafe_b64encode(tok.encode()).decode().rstrip("=")


async def open_socket(client, tok: str | None = None, **kw) -> Phx:
    url = "/socket/websocket?vsn=2.0.0" + (f"&token={tok}" if tok is not None else "")
    return Phx(await client.ws_connect(url, **kw))


async def assert_refused(client, tok: str | None = None, **kw) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await open_socket(client, tok, **kw)
    assert err.value.status == 403


async def assert_joins(client, tok: str | None = None, **kw) -> Phx:
    phx = await open_socket(client, tok, **kw)
    reply = await phx.join(new_topic())
    assert reply["status"] == "ok", reply
    return phx


# -- pure functions ----------------------------------------------------------

def test_token_from_request():
    assert token_from_request({"token": "abc"}, None) == "abc"
    assert token_from_request({}, None) is None
    assert token_from_request({"token": ""}, "phoenix") is None
    for raw in ("a", "ab", "abc", "a.b.c-_"):  # every padding length
        assert token_from_request({}, f"phoenix, base64url.bearer.phx.{b64(raw)}") == raw
    assert token_from_request({"token": "q"}, f"phoenix, base64url.bearer.phx.{b64('h')}") == "q"
    with pytest.raises(TokenError):
        token_from_request({}, "phoenix, base64url.bearer.phx.!!!")


def test_verify():
    now = 1_700_000_000
    claims = verify(token(exp=now + 10, iat=now - 5, sub="alice", games=["fake"]), SECRET, 60, now=now)
    assert claims["sub"] == "alice" and claims["games"] == ["fake"]
    bad = [
        token(exp=now),                              # expired
        jwt.encode({"sub": "alice"}, SECRET),        # no exp
        token(exp=now + 10, iat=now - 61),           # older than max_age_seconds
        token(exp=now + 10, iat=now + 3600),         # issued in the future
        token(exp=now + 10, nbf=now + 5),            # not yet valid
        token(exp="soon"),
        token(exp=now + 10, sub=5),
        token(exp=now + 10, games="fake"),
        token(exp=now + 10, games=["fake", 1]),
        token(exp=now + 10, secret="other-" * 11),
        token(exp=now + 10, algorithm="HS512"),
        token(exp=now + 10, aud="billing-api"),     # meant for another service
        token(exp=now + 10, aud=""),                 # any audience: the gateway is none
        jwt.encode({"exp": now + 10}, None, algorithm="none"),
        "garbage",
    ]
    for tok in bad:
        with pytest.raises(TokenError) as err:
            verify(tok, SECRET, 60, now=now)
        assert tok not in str(err.value)


def test_authenticate_and_may_join(monkeypatch):
    tok = token(sub="bob")
    assert authenticate(Auth(secret=SECRET), {}, None) is None
    assert authenticate(Auth(secret=SECRET), {"token": tok}, None)["sub"] == "bob"
    assert authenticate(Auth(), {"token": "garbage"}, None) is None
    with pytest.raises(TokenError):
        authenticate(Auth(required=True, secret=SECRET), {}, None)
    monkeypatch.delenv("MUDGW_TEST_SECRET", raising=False)
    with pytest.raises(TokenError):  # the variable is unset: nothing can be verified
        authenticate(Auth(required=True, secret_env="MUDGW_TEST_SECRET"), {"token": tok}, None)
    assert may_join(None, "fake") and may_join({"sub": "x"}, "fake")
    assert may_join({"games": ["fake"]}, "fake")
    assert not may_join({"games": []}, "fake") and not may_join({"games": ["other"]}, "fake")


# -- over real sockets -------------------------------------------------------

async def test_required_refuses_missing_and_invalid_tokens(mud, gateway, caplog):
    caplog.set_level("INFO", logger="gateway")
    client, _ = await gateway(make_config(mud.port, extra=REQUIRED))
    now = int(time.time())
    await assert_refused(client)
    bad = [
        token(exp=now - 1),                                         # expired
        jwt.encode({"sub": "alice"}, SECRET),                       # no exp
        token(iat=now - 90_000),                                    # older than the default 86400 s
        jwt.encode({"exp": now + 600}, None, algorithm="none"),
        token(algorithm="HS512"),
        token(secret="wrong-" * 11),
        "garbage",
    ]
    for tok in bad:
        await assert_refused(client, tok)
    assert "refused token" in caplog.text and not any(tok in caplog.text for tok in bad)
    await assert_refused(client, headers={"Sec-WebSocket-Protocol": "phoenix, base64url.bearer.phx." + b64("x")})


async def test_max_age_seconds_from_config(mud, gateway):
    extra = f"security: {{auth: {{required: true, secret: {SECRET}, max_age_seconds: 60}}}}"
    client, _ = await gateway(make_config(mud.port, extra=extra))
    now = int(time.time())
    await assert_refused(client, token(iat=now - 120, exp=now + 3600))
    await assert_joins(client, token(iat=now - 5, exp=now + 3600))


async def test_valid_token_in_query_joins(mud, gateway):
    client, _ = await gateway(make_config(mud.port, extra=REQUIRED))
    await assert_joins(client, token(sub="alice", iat=int(time.time())))


async def test_valid_token_in_subprotocol_selects_phoenix(mud, gateway):
    client, connect = await gateway(make_config(mud.port, extra=REQUIRED))
    # Exactly the header phoenix.js 1.8 sends with `authToken`.
    phx = await connect(headers={"Sec-WebSocket-Protocol": "phoenix, base64url.bearer.phx." + b64(token())})
    assert phx.ws._response.headers["Sec-WebSocket-Protocol"] == "phoenix"
    assert (await phx.join(new_topic()))["status"] == "ok"
    phx = await assert_joins(client, protocols=("phoenix", "base64url.bearer.phx." + b64(token())))
    assert phx.ws.protocol == "phoenix"


async def test_not_required_checks_present_tokens_when_secret_set(mud, gateway):
    client, _ = await gateway(make_config(mud.port, extra=f"security: {{auth: {{secret: {SECRET}}}}}"))
    await assert_refused(client, "garbage")
    await assert_refused(client, token(exp=int(time.time()) - 1))
    await assert_joins(client)
    await assert_joins(client, token())


async def test_no_secret_ignores_tokens(mud, gateway):
    client, _ = await gateway(make_config(mud.port))
    await assert_joins(client, "garbage")
    await assert_joins(client, headers={"Sec-WebSocket-Protocol": "phoenix, base64url.bearer.phx.!!!"})


async def test_secret_env(mud, gateway, monkeypatch):
    monkeypatch.setenv("MUDGW_TEST_SECRET", SECRET)
    extra = "security: {auth: {required: true, secret_env: MUDGW_TEST_SECRET}}"
    client, _ = await gateway(make_config(mud.port, extra=extra))
    await assert_refused(client)
    await assert_refused(client, token(secret="other-" * 11))
    await assert_joins(client, token())


async def test_resume_with_another_sub_is_unauthorized(mud, gateway):
    extra = REQUIRED + "\nsessions: {linger_seconds: 5}"
    client, _ = await gateway(make_config(mud.port, extra=extra))
    topic = new_topic()
    alice = await open_socket(client, token(sub="alice"))
    assert (await alice.join(topic))["status"] == "ok"
    await mud.next_connection()
    await alice.ws.close()
    bob = await open_socket(client, token(sub="bob"))
    assert await bob.join(topic) == {"status": "error", "response": {"reason": "unauthorized"}}
    anonymous = await open_socket(client, token())
    assert (await anonymous.join(topic))["response"] == {"reason": "unauthorized"}
    alice = await open_socket(client, token(sub="alice"))
    reply = await alice.join(topic)
    assert reply["status"] == "ok" and reply["response"]["resumed"] is True


async def test_games_claim_limits_joins(mud, gateway):
    client, _ = await gateway(make_config(mud.port, extra=REQUIRED, games=f"""  - name: other
    host: 127.0.0.1
    port: {mud.port}"""))
    phx = await open_socket(client, token(sub="alice", games=["other"]))
    assert await phx.join(new_topic()) == {"status": "error", "response": {"reason": "unauthorized"}}
    assert (await phx.join(new_topic(), {"game": "other"}, join_ref="2"))["status"] == "ok"
