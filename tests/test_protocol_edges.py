"""Protocol edges on the telnet and auth side (SPEC 4.1, 4.3, 5), each over real sockets.

Every test here reproduces one defect that was found by acting as an
attacker, a dual-stack proxy or an unusual MUD server would, next to the
correct case: the fake MUD sends the exact bytes and records what it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import ssl

import pytest
import trustme
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from gateway.routes import create_app
from gateway.telnet.stream import Text, TelnetStream
from tests.conftest import Phx, make_config, new_topic
from tests.fakemud import FakeMud
from tests.test_auth import REQUIRED, assert_joins, assert_refused, token

IAC, WILL, WONT, DO, DONT, SB, SE = 255, 251, 252, 253, 254, 250, 240
TTYPE, NEW_ENVIRON, CHARSET, MSSP, GMCP = 24, 39, 42, 70, 201


def cmd(*codes: int) -> bytes:
    return bytes(codes)


def sb(option: int, body: bytes) -> bytes:
    return cmd(IAC, SB, option) + body.replace(b"\xff", b"\xff\xff") + cmd(IAC, SE)


async def ipaddress_sent(conn) -> bytes:
    """Ask for NEW-ENVIRON IPADDRESS the way a game does; the value the gateway answers."""
    conn.send(cmd(IAC, DO, NEW_ENVIRON))
    await conn.wait_for(cmd(IAC, WILL, NEW_ENVIRON))
    conn.send(sb(NEW_ENVIRON, b"\x01\x00IPADDRESS"))
    start = await conn.wait_for(cmd(IAC, SB, NEW_ENVIRON, 0))
    end = await conn.wait_for(cmd(IAC, SE))
    body = bytes(conn.received[start:end - 2])
    assert body.startswith(b"\x00IPADDRESS\x01"), body
    return body[len(b"\x00IPADDRESS\x01"):]


# -- 4. a JWT with an `aud` claim is refused (SPEC 4.1, RFC 7519 4.1.3) ----------------------

@pytest.mark.parametrize("aud", ["billing-api", ["billing-api", "mud-gateway"], "mud-gateway", ""])
async def test_token_with_an_audience_is_refused(mud, gateway, aud):
    client, _ = await gateway(make_config(mud.port, extra=REQUIRED))
    await assert_refused(client, token(aud=aud))
    await assert_joins(client, token())
