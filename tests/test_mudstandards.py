"""The MUD Standards WebSocket endpoint /ws (SPEC 9), over real sockets: a real gateway, the fake
MUD, aiohttp's WebSocket client (and raw frames where a client library would not send them)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time

import aiohttp
import pytest

import jwt
from gateway.routes import SOCKETS
from tests.conftest import EVENTUALLY, make_config, new_topic, send_until_stalled

WS = aiohttp.WSMsgType
TERMINAL, GMCP, JSON, TELNET = (f"{p}.mudstandards.org" for p in ("terminal", "gmcp", "json", "telnet"))
IAC, WILL, WONT, DO, DONT, SB, SE, GA = 255, 251, 252, 253, 254, 250, 240, 249
ECHO, GMCP_OPT, NEW_ENVIRON = 1, 201, 39


class Ws:
    """An aiohttp client WebSocket on /ws, collecting frames as (kind, data)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[tuple[str, object]] = []

    @property
    def protocol(self) -> str | None:
        return self.ws.protocol

    async def read(self, timeout: float = EVENTUALLY) -> tuple[str, object]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type == WS.BINARY:
            frame = ("binary", msg.data)
        elif msg.type == WS.TEXT:
            frame = ("text", msg.data)
        elif msg.type == WS.CLOSE:  # the server's close frame: its code and reason
            frame = ("close", (msg.data, msg.extra))
        elif msg.type in (WS.CLOSING, WS.CLOSED):
            frame = ("close", (self.ws.close_code, msg.extra))
        else:
            raise AssertionError(f"unexpected {msg!r}")
        self.frames.append(frame)
        return frame

    async def binary_until(self, needle: bytes, timeout: float = EVENTUALLY) -> bytes:
        """BINARY frames' bytes joined, read until ``needle`` is in them (TEXT frames are kept in ``frames``)."""
        data = b""
        deadline = time.monotonic() + timeout
        while needle not in data:
            kind, payload = await self.read(max(0.01, deadline - time.monotonic()))
            if kind == "binary":
                data += payload  # type: ignore[operator]
            elif kind == "close":
                raise AssertionError(f"closed {payload} before {needle!r}; got {data!r}")
        return data

    async def text(self, timeout: float = EVENTUALLY) -> str:
        while True:
            kind, payload = await self.read(timeout)
            if kind == "text":
                return payload  # type: ignore[return-value]
            if kind == "close":
                raise AssertionError(f"closed {payload}")

    async def closed(self, timeout: float = EVENTUALLY) -> tuple[int | None, str]:
        """Read to the close; (code, reason)."""
        while True:
            kind, payload = await self.read(timeout)
            if kind == "close":
                return payload[0], payload[1] or ""  # type: ignore[index]


def served(extra: str = "", subprotocols: str | None = None) -> str:
    return extra + (f"\nmudstandards: {{subprotocols: {subprotocols}}}" if subprotocols is not None else "")


async def open_ws(client, protocols=(TERMINAL,), path: str = "/ws", headers=None) -> Ws:
    ws = await client.ws_connect(path, protocols=protocols, headers=headers or {})
    return Ws(ws)


@pytest.fixture
async def ws_gateway(mud, gateway):
    """``await ws_gateway(extra=..., game_extra=...)`` -> the aiohttp test client of a gateway for the fake MUD."""

    async def start(extra: str = "", game_extra: str = "", games: str = ""):
        client, _ = await gateway(make_config(mud.port, extra=extra, game_extra=game_extra, games=games))
        return client

    return start


async def play(mud, client, protocols=(TERMINAL,), path="/ws"):
    ws = await open_ws(client, protocols, path)
    conn = await mud.next_connection()
    return ws, conn


# -- handshake ---------------------------------------------------------------------


async def test_subprotocol_is_the_first_of_the_clients_list_that_is_served(mud, ws_gateway):
    client = await ws_gateway(extra=served(subprotocols="[terminal, gmcp, json]"))
    for offered, chosen in [((JSON, GMCP), JSON), ((GMCP, JSON), GMCP), (("v1.evennia.com", TELNET, TERMINAL), TERMINAL),
                            (("phoenix", "terminal", GMCP), GMCP)]:
        ws = await open_ws(client, offered)
        assert ws.protocol == chosen
        await mud.next_connection()
        await ws.ws.close()


async def test_handshake_refusals(mud, ws_gateway):
    client = await ws_gateway(extra=served(subprotocols="[terminal, gmcp]"))
    # No subprotocol at all, or none served (telnet is not served here; names match exactly).
    for protocols in [(), (TELNET,), ("Terminal.mudstandards.org", "phoenix", "divstream.mudstandards.org")]:
        resp = await client.get("/ws", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                **({"Sec-WebSocket-Protocol": ", ".join(protocols)} if protocols else {})})
        assert resp.status == 400, protocols
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await open_ws(client, (TERMINAL,), path="/ws?game=nope")
    assert exc.value.status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await open_ws(client, (TERMINAL,), headers={"Origin": "https://evil.example"})
    assert exc.value.status == 403
    assert mud.connections == []  # nothing is dialled for a refused request


async def test_empty_subprotocol_list_turns_ws_off(mud, ws_gateway):
    client = await ws_gateway(extra=served(subprotocols="[]"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await open_ws(client, (TERMINAL,))
    assert exc.value.status == 404


SECRET = "s3cret-" + "k" * 32


def token(**claims) -> str:
    now = int(time.time())
    return jwt.encode({"exp": now + 60, "iat": now, **claims}, SECRET, algorithm="HS256")


async def test_tokens_as_for_phoenix(mud, ws_gateway):
    """SPEC 9.1: the token rules of 4.1 (query or bearer subprotocol entry); a token whose games
    claim leaves the game out is 403, after the 404 of an unknown game."""
    client = await ws_gateway(extra=f"security: {{auth: {{required: true, secret: {SECRET}}}}}")
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await open_ws(client, (TERMINAL,))
    assert exc.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await open_ws(client, (TERMINAL,), path="/ws?token=forged.token.here")
    assert exc.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await open_ws(client, (TERMINAL,), path=f"/ws?token={token(games=['other'])}")
    assert exc.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await open_ws(client, (TERMINAL,), path=f"/ws?game=nope&token={token(games=['other'])}")
    assert exc.value.status == 404
    assert mud.connections == []
    ws = await open_ws(client, (TERMINAL,), path=f"/ws?token={token(games=['fake'], sub='alice')}")
    await mud.next_connection()
    b64 = base64.urlsafe_b64encode(token().encode()).decode().rstrip("=")
    ws2 = await open_ws(client, (f"base64url.bearer.phx.{b64}", GMCP))
    assert ws2.protocol == GMCP
    await mud.next_connection()
    await ws.ws.close()
    await ws2.ws.close()


# -- play: terminal, gmcp, json ------------------------------------------------------


async def test_admission_handles_the_request_without_error(mud, ws_gateway, caplog):
    """The session is admitted after the 101 in the request's handler: nothing raised there
    (aiohttp would log "Error handling request"), and the join task is forgotten once done."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (TERMINAL,))
    conn.send(b"hello\r\n")
    await ws.binary_until(b"hello\r\n")
    (sock,) = client.server.app[SOCKETS]
    assert sock._tasks is None
    assert not [r for r in caplog.records if r.levelno >= 40], [r.getMessage() for r in caplog.records]


async def test_terminal_text_both_ways(mud, ws_gateway):
    client = await ws_gateway()
    ws, conn = await play(mud, client, (TERMINAL,))
    conn.send("Welcome to Ünïcode\n\rline two\r\nno CR\nbell\x00\r\x1b[1mbold\x1b[0m\n".encode())
    data = await ws.binary_until(b"bold\x1b[0m\r\n")
    assert data == "Welcome to Ünïcode\r\nline two\r\nno CR\r\nbell\x1b[1mbold\x1b[0m\r\n".encode()
    await ws.ws.send_bytes(b"look")                 # a frame without a line end is one command
    await conn.wait_for(b"look\r\n")
    await ws.ws.send_bytes(b"say a\r\nsay b\n")   # CR removed, one trailing LF ignored
    await conn.wait_for(b"say a\r\nsay b\r\n")
    await ws.ws.send_str("text frame\n")             # terminal takes TEXT as BINARY [E]
    await conn.wait_for(b"text frame\r\n")
    await ws.ws.send_bytes(b"")                      # empty: a bare CRLF
    await conn.wait_for(b"\r\n")
    assert conn.received.endswith(b"text frame\r\n\r\n")
    # GMCP is not passed on under terminal; no frame holds an IAC.
    conn.send(bytes([IAC, WILL, GMCP_OPT]))
    await conn.wait_for(bytes([IAC, DO, GMCP_OPT]))
    conn.send(bytes([IAC, SB, GMCP_OPT]) + b'Char.Vitals {"hp": 5}' + bytes([IAC, SE]) + b"after\n")
    data = await ws.binary_until(b"after\r\n")
    assert data == b"after\r\n"
    assert all(kind == "binary" and b"\xff" not in p for kind, p in ws.frames)  # type: ignore[operator]


async def test_prompt_ends_its_frame_and_unmarked_prompt_is_flushed(mud, ws_gateway):
    client = await ws_gateway()
    ws, conn = await play(mud, client, (GMCP,))
    conn.send(b"Name: " + bytes([IAC, GA]))
    kind, frame = await ws.read()
    assert (kind, frame) == ("binary", b"Name: ")       # at once, ending its frame
    conn.send(b"Password? ")                            # no GA: after prompt_flush_ms
    kind, frame = await ws.read()
    assert (kind, frame) == ("binary", b"Password? ")


async def test_gmcp_both_ways(mud, ws_gateway):
    client = await ws_gateway()
    ws, conn = await play(mud, client, (GMCP, JSON))
    assert ws.protocol == GMCP
    conn.send(b"hi\n")
    await ws.binary_until(b"hi\r\n")                     # attached
    await ws.ws.send_str('Core.Ping')                   # before the game enabled GMCP: dropped (logged)
    await ws.ws.send_bytes(b"sync")
    await conn.wait_for(b"sync\r\n")
    conn.send(bytes([IAC, WILL, GMCP_OPT]))
    await conn.wait_for(b"Core.Supports.Set")
    conn.send(bytes([IAC, SB, GMCP_OPT]) + b'Char.Vitals {"hp":5,"max":10}' + bytes([IAC, SE])
              + bytes([IAC, SB, GMCP_OPT]) + b'Core.Goodbye' + bytes([IAC, SE])
              + bytes([IAC, SB, GMCP_OPT]) + b'Comm.Say not json' + bytes([IAC, SE]))
    assert await ws.text() == 'Char.Vitals {"hp":5,"max":10}'
    assert await ws.text() == "Core.Goodbye"
    assert await ws.text() == "Comm.Say not json"
    await ws.ws.send_str('Char.Skills.Get {"group": "magic"}')
    await ws.ws.send_str("Core.Ping")
    await conn.wait_for(bytes([IAC, SB, GMCP_OPT]) + b'Char.Skills.Get {"group":"magic"}' + bytes([IAC, SE]))
    await conn.wait_for(bytes([IAC, SB, GMCP_OPT]) + b"Core.Ping" + bytes([IAC, SE]))
    received = bytes(conn.received)
    assert received.count(b"Core.Ping") == 1            # the one sent before GMCP was on went nowhere
    await ws.ws.send_bytes(b"score\n")                  # text is BINARY under gmcp
    await conn.wait_for(b"score\r\n")


async def test_json_formats(mud, ws_gateway):
    """SPEC 9.3/9.4 json: Evennia 6.1's envelope {"proto","id","data"} (data a string)."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (JSON,))
    conn.send(bytes([IAC, WILL, GMCP_OPT]))
    await conn.wait_for(b"Core.Supports.Set")
    conn.send(bytes([IAC, SB, GMCP_OPT]) + b'Room.Info {"num": 1}' + bytes([IAC, SE]))
    assert json.loads(await ws.text()) == {"proto": "gmcp", "id": "Room.Info", "data": '{"num": 1}'}
    conn.send(bytes([IAC, SB, GMCP_OPT]) + b'Core.Goodbye' + bytes([IAC, SE]))
    assert json.loads(await ws.text()) == {"proto": "gmcp", "id": "Core.Goodbye", "data": ""}
    conn.send(b"hello\n> " + bytes([IAC, GA]))
    assert await ws.read() == ("binary", b"hello\r\n")
    assert json.loads(await ws.text()) == {"proto": "prompt", "id": "", "data": "> "}
    conn.send(b"Password: " + bytes([IAC, WILL, ECHO]))
    await conn.wait_for(bytes([IAC, DO, ECHO]))
    assert json.loads(await ws.text()) == {"proto": "telnet_1", "id": "ECHO", "data": "WILL"}
    assert await ws.read() == ("binary", b"Password: ")  # an unmarked prompt: after prompt_flush_ms
    conn.send(bytes([IAC, WONT, ECHO]))
    assert json.loads(await ws.text()) == {"proto": "telnet_1", "id": "ECHO", "data": "WONT"}
    # client -> game
    await ws.ws.send_str(json.dumps({"proto": "text", "data": "north\nsouth"}))
    await conn.wait_for(b"north\r\nsouth\r\n")
    await ws.ws.send_bytes(b"west")
    await conn.wait_for(b"west\r\n")
    await ws.ws.send_str(json.dumps({"proto": "gmcp", "id": "Core.Hello", "data": '{"client": "x"}'}))
    await conn.wait_for(bytes([IAC, SB, GMCP_OPT]) + b'Core.Hello {"client":"x"}' + bytes([IAC, SE]))
    await ws.ws.send_str(json.dumps({"proto": "gmcp", "id": "Core.KeepAlive", "data": ""}))
    await conn.wait_for(bytes([IAC, SB, GMCP_OPT]) + b"Core.KeepAlive" + bytes([IAC, SE]))
    await ws.ws.send_str(json.dumps({"proto": "mxp", "id": "x", "data": "ignored"}))  # other protos: ignored
    await ws.ws.send_str(json.dumps({"proto": "text", "data": "east"}))
    await conn.wait_for(b"east\r\n")
    assert b"ignored" not in conn.received


async def test_json_naws(mud, ws_gateway):
    client = await ws_gateway()
    ws, conn = await play(mud, client, (JSON,))
    conn.send(bytes([IAC, DO, 31]))
    await conn.wait_for(bytes([IAC, SB, 31, 0, 80, 0, 24, IAC, SE]))   # 80x24 until the client says
    naws = base64.b64encode(struct.pack("!HH", 255, 50)).decode()
    await ws.ws.send_str(json.dumps({"proto": "telnet_31", "id": "NAWS", "data": naws}))
    await conn.wait_for(bytes([IAC, SB, 31, 0, 255, 255, 0, 50, IAC, SE]))  # 255 doubled


@pytest.mark.parametrize("protocol, frame, code", [
    (JSON, "not json", 1007),
    (JSON, "[1, 2]", 1007),
    (JSON, '{"proto": "text"}', 1007),                                    # no data
    (JSON, '{"proto": "text", "data": 5}', 1007),
    (JSON, '{"proto": "gmcp", "id": "bad module!", "data": ""}', 1007),
    (JSON, '{"proto": "gmcp", "id": "Core.X", "data": "{not json"}', 1007),
    (JSON, '{"proto": "telnet_31", "id": "NAWS", "data": "AAA="}', 1007),   # not 4 bytes
    (JSON, '{"proto": "telnet_31", "id": "NAWS", "data": "AAAAAA=="}', 1007),  # 0x0
    (GMCP, "9bad.module", 1007),
    (GMCP, "Core.X {oops", 1007),
    (TERMINAL, b"\xc3(", 1007),                                          # BINARY, not UTF-8
    (TERMINAL, b"x" * 5000, 1009),                                       # over max_input_bytes
])
async def test_bad_frames_close_with_spec_codes(mud, ws_gateway, protocol, frame, code):
    client = await ws_gateway()
    ws, conn = await play(mud, client, (protocol,))
    if isinstance(frame, bytes):
        await ws.ws.send_bytes(frame)
    else:
        await ws.ws.send_str(frame)
    assert (await ws.closed())[0] == code
    await conn.wait_closed()  # the session ended with the socket
    assert b"xxxx" not in conn.received and b"oops" not in conn.received


async def test_frame_over_max_frame_bytes_is_1009(mud, ws_gateway):
    client = await ws_gateway(extra="limits: {max_frame_bytes: 2048, max_input_bytes: 100000}")
    ws, conn = await play(mud, client, (TERMINAL,))
    await ws.ws.send_bytes(b"y" * 3000)
    assert (await ws.closed())[0] == 1009
    await conn.wait_closed()
    assert b"yyy" not in conn.received


# -- the telnet relay ----------------------------------------------------------------


async def test_telnet_relays_the_game_bytes_both_ways_and_negotiates_nothing(mud, ws_gateway):
    client = await ws_gateway()
    ws, conn = await play(mud, client, (TELNET,))
    assert ws.protocol == TELNET
    raw = bytes([IAC, WILL, GMCP_OPT, IAC, DO, 24]) + b"Hi\r\n> " + bytes([IAC, GA])
    conn.send(raw)
    assert await ws.binary_until(bytes([IAC, GA])) == raw       # unchanged: negotiation, GA and all
    await ws.ws.send_bytes(bytes([IAC, DO, GMCP_OPT, IAC, WILL, 24]) + b"look\r\n")
    await conn.wait_for(b"look\r\n")
    assert bytes(conn.received) == bytes([IAC, DO, GMCP_OPT, IAC, WILL, 24]) + b"look\r\n"  # nothing of ours
    await ws.ws.send_str("a text frame")                        # BINARY only under telnet
    assert (await ws.closed())[0] == 1003
    await conn.wait_closed()


@pytest.mark.parametrize("forward, expected", [
    ("true", b"\x00USER\x01bob\x00IPADDRESS\x01127.0.0.1"),
    ("false", b"\x00USER\x01bob"),
])
async def test_telnet_client_cannot_forge_ipaddress(mud, ws_gateway, forward, expected):
    client = await ws_gateway(game_extra=f"    forward_client_ip: {forward}")
    ws, conn = await play(mud, client, (TELNET,))
    forged = bytes([IAC, SB, NEW_ENVIRON, 0]) + b"\x00IPADDRESS\x016.6.6.6\x00USER\x01bob" + bytes([IAC, SE])
    # Cut across frames, the subnegotiation is still found.
    await ws.ws.send_bytes(forged[:9])
    await ws.ws.send_bytes(forged[9:] + b"next\r\n")
    await conn.wait_for(b"next\r\n")
    assert bytes(conn.received) == bytes([IAC, SB, NEW_ENVIRON, 0]) + expected + bytes([IAC, SE]) + b"next\r\n"


async def test_telnet_only_dials_configured_games(mud, ws_gateway):
    """Nothing in the request names a host or port: ?game= is a configured name, else 404."""
    client = await ws_gateway()
    for query in ("?game=127.0.0.1:22", "?host=127.0.0.1&port=22&game=localhost"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await open_ws(client, (TELNET,), path="/ws" + query)
        assert exc.value.status == 404
    ws = await open_ws(client, (TELNET,), path="/ws?host=127.0.0.1&port=1")   # the default game, nothing else
    conn = await mud.next_connection()
    conn.send(b"ok\r\n")
    assert await ws.binary_until(b"ok\r\n") == b"ok\r\n"
    await ws.ws.close()


# -- session life (SPEC 9.6) ----------------------------------------------------------

ADMIN_TOKEN = "admin-" + "y" * 40


async def admin(client, method: str, path: str, **kwargs):
    return await client.request(method, path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, **kwargs)


async def test_one_session_in_the_shared_table_kick_and_no_resume(mud, ws_gateway, monkeypatch, caplog):
    caplog.set_level("INFO")
    monkeypatch.setenv("GW_TEST_WS_ADMIN", ADMIN_TOKEN)
    client = await ws_gateway(extra="admin: {token_env: GW_TEST_WS_ADMIN}")
    ws, conn = await play(mud, client, (JSON,))
    conn.send(b"hello\r\n")
    await ws.binary_until(b"hello")
    assert (await (await client.get("/healthz")).json())["sessions"] == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'mud_gateway_sessions{state="attached"} 1.0' in metrics
    assert 'mud_gateway_bytes_total{direction="to_browser"} 7.0' in metrics
    listing = (await (await admin(client, "GET", "/admin/sessions")).json())["sessions"]
    assert [(s["game"], s["ip"], s["state"]) for s in listing] == [("fake", "127.0.0.1", "attached")]
    assert (await admin(client, "POST", f"/admin/sessions/{listing[0]['id']}/kick",
                        json={"message": "Time for bed."})).status == 204
    assert await ws.read() == ("binary", b"Time for bed.\r\n")
    assert await ws.closed() == (1000, "kicked")
    await conn.wait_closed()
    assert (await (await client.get("/healthz")).json())["sessions"] == 0
    starts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("session start")]
    ends = [r.getMessage() for r in caplog.records if r.getMessage().startswith("session end")]
    assert starts == ["session start game=fake ip=127.0.0.1 sub=- subprotocol=json"]
    assert len(ends) == 1 and "reason=kicked" in ends[0] and "subprotocol=json" in ends[0]


async def test_client_close_ends_the_session_at_once(mud, ws_gateway):
    """No resume: linger_seconds does not apply, the game connection is closed at once."""
    client = await ws_gateway(extra="sessions: {linger_seconds: 600}")
    ws, conn = await play(mud, client, (TERMINAL,))
    conn.send(b"x\r\n")
    await ws.binary_until(b"x")
    await ws.ws.close()
    await conn.wait_closed()
    assert (await (await client.get("/healthz")).json())["sessions"] == 0


async def test_game_hangup_delivers_everything_then_1000(mud, ws_gateway):
    client = await ws_gateway()
    ws, conn = await play(mud, client, (TERMINAL,))
    conn.send(b"last words\r\nbye")
    await conn.drain()
    conn.close()
    assert await ws.binary_until(b"bye") == b"last words\r\nbye"
    assert await ws.closed() == (1000, "closed by game")


async def test_game_unavailable_is_1014_after_the_101(ws_gateway, mud):
    client = await ws_gateway(games="  - {name: gone, host: 127.0.0.1, port: 1, connect_timeout: 1}")
    ws = await open_ws(client, (TERMINAL,), path="/ws?game=gone")
    assert await ws.closed() == (1014, "game unavailable")


async def test_denied_gets_the_message_then_1008(mud, ws_gateway):
    client = await ws_gateway(extra="security: {deny: ['127.0.0.0/8'], deny_message: 'Not from there.'}")
    ws = await open_ws(client, (TERMINAL,))
    assert await ws.read() == ("binary", b"Not from there.\r\n")
    assert await ws.closed() == (1008, "denied")
    assert mud.connections == []


async def test_ws_sockets_count_with_phoenix_sessions(mud, gateway):
    client, connect = await gateway(make_config(mud.port, extra="limits: {max_sessions_per_ip: 2}"))
    phx = await connect()
    assert (await phx.join(new_topic()))["status"] == "ok"
    ws = await open_ws(client, (GMCP,))
    await mud.next_connection()
    await mud.next_connection()
    refused = await open_ws(client, (GMCP,))
    assert await refused.closed() == (1013, "too many sessions")
    assert (await phx.join(new_topic(), join_ref="2"))["response"] == {"reason": "too many sessions"}
    await ws.ws.close()


async def test_idle_closes_with_1000(mud, ws_gateway):
    client = await ws_gateway(extra="sessions: {idle_timeout_seconds: 0.5}")
    ws, conn = await play(mud, client, (TERMINAL,))
    assert await ws.closed() == (1000, "idle")
    await conn.wait_closed()


async def test_graceful_stop_closes_with_1001(mud, ws_gateway):
    client = await ws_gateway()
    ws, conn = await play(mud, client, (TELNET,))
    ws2, conn2 = await play(mud, client, (TERMINAL,))
    closing = asyncio.ensure_future(client.server.close())
    assert await ws.closed() == (1001, "gateway shutdown")
    assert await ws2.closed() == (1001, "gateway shutdown")
    await conn.wait_closed()
    await conn2.wait_closed()
    await asyncio.wait_for(closing, 10)


async def test_rate_limit_delays_and_never_drops(mud, ws_gateway):
    """Past the burst, input waits for tokens (the socket is not read meanwhile): every line
    arrives, in order, paced by the rate."""
    client = await ws_gateway(extra="limits: {input_lines_per_second: 20, input_burst: 3}")
    ws, conn = await play(mud, client, (TERMINAL,))
    lines = [f"line {i}" for i in range(10)]
    began = time.monotonic()
    await ws.ws.send_bytes("\n".join(lines[:6]).encode())   # one frame, six lines: three now, three later
    for line in lines[6:]:
        await ws.ws.send_str(line)
    await conn.wait_for(b"line 9\r\n", timeout=10)
    assert bytes(conn.received) == "".join(f"{line}\r\n" for line in lines).encode()
    assert time.monotonic() - began >= 7 / 20 * 0.9        # seven lines waited for tokens


async def test_telnet_rate_limit_counts_lf_outside_commands(mud, ws_gateway):
    client = await ws_gateway(extra="limits: {input_lines_per_second: 50, input_burst: 2}")
    ws, conn = await play(mud, client, (TELNET,))
    naws_with_lf = bytes([IAC, SB, 31, 0, 10, 0, 10, IAC, SE])   # LF bytes inside: no lines
    payload = naws_with_lf * 3 + b"a\nb\nc\nd\n"
    await ws.ws.send_bytes(payload)
    await conn.wait_for(b"d\n")
    assert bytes(conn.received) == payload


async def test_slow_consumer_is_1008(mud, ws_gateway):
    client = await ws_gateway(extra="limits: {slow_consumer_seconds: 1.5}")
    ws, conn = await play(mud, client, (TERMINAL,))
    line = b"x" * 1000 + b"\r\n"

    async def flood() -> None:
        while not conn.closed:
            conn.send(line * 64)
            await conn.drain()

    flooding = asyncio.ensure_future(flood())
    try:
        await conn.wait_closed(timeout=15)            # the gateway gave up on the client, closed the game
    finally:
        flooding.cancel()
        await asyncio.gather(flooding, return_exceptions=True)
    while True:                                       # reading again: what was on its way, then the close
        msg = await ws.ws.receive(timeout=10)
        if msg.type != WS.BINARY:
            break
    assert msg.type == WS.CLOSE and msg.data == 1008 and msg.extra == "slow consumer"


async def test_upgrade_in_place_closes_ws_with_1012_and_ends_their_games(mud, tmp_path):
    """SPEC 9.6: a /ws session is not carried (nothing could resume it): 1012, its game closed;
    the Phoenix session beside it is carried as ever."""
    from tests.conftest import free_port
    from tests.upgrade_helpers import GatewayProcess, config_text, playing

    gw = GatewayProcess(tmp_path, config_text(mud.port, free_port()))
    try:
        await gw.ready()
        phx, topic, phx_conn = await playing(gw, mud)
        wss, conns = [], []
        for protocol in (TELNET, JSON):
            wss.append(Ws(await gw.http.ws_connect(gw.url + "/ws", protocols=(protocol,))))
            conns.append(await mud.next_connection())
            conns[-1].send(b"hi\r\n")
            await wss[-1].binary_until(b"hi\r\n")
        await gw.upgrade()
        for ws, conn in zip(wss, conns):
            assert await ws.closed() == (1012, "service restart")
            await conn.wait_closed()
        assert await phx.close_code() == 1012
        assert not phx_conn.eof                          # the Phoenix session was carried
        assert (await gw.healthz())["sessions"] == 1
    finally:
        await gw.stop()


async def test_quiet_socket_is_pinged_not_closed(mud, ws_gateway):
    """No heartbeat timeout on /ws: a client that sends nothing stays; the gateway pings it
    after half of heartbeat_timeout_seconds without output (proxies' read timeouts)."""
    client = await ws_gateway(extra="limits: {heartbeat_timeout_seconds: 1}")
    ws = await client.ws_connect("/ws", protocols=(TERMINAL,), autoping=False)
    conn = await mud.next_connection()
    conn.send(b"hi\r\n")
    assert (await ws.receive(timeout=EVENTUALLY)).data == b"hi\r\n"
    pings = 0
    while pings < 3:   # three heartbeat timeouts' worth of silence from the client: still open
        msg = await ws.receive(timeout=EVENTUALLY)
        assert msg.type == WS.PING, msg
        pings += 1
    await ws.send_bytes(b"still here")
    await conn.wait_for(b"still here\r\n")
    await ws.close()


async def test_relay_input_to_a_game_that_does_not_read_is_bounded(mud, ws_gateway):
    """Bytes without a line end cost no tokens, but a game that does not read them holds the
    relay (as it does a recv): the gateway stops reading the client; nothing is dropped."""
    # (max_sessions_per_ip: its megabytes are not paced as one address's reads: the stall is the game's)
    client = await ws_gateway(extra="limits: {max_input_bytes: 4096, max_sessions_per_ip: 100000}")
    ws, conn = await play(mud, client, (TELNET,))
    conn.pause_reading()
    chunk = b"z" * 4096
    (sock,) = client.server.app[SOCKETS]
    sent, stalled = await send_until_stalled(ws.ws, sock, chunk, 100_000)
    assert stalled and sent < 100_000, sent   # the gateway stopped reading the client
    conn.resume_reading()
    await ws.ws.send_bytes(b"end\n")
    await conn.wait_for(b"end\n", timeout=30)
    # Every byte (the frame in flight when the spam stopped, too).
    assert bytes(conn.received).count(b"z") in (sent * 4096, (sent + 1) * 4096)


@pytest.mark.parametrize("protocol", [TERMINAL, TELNET])
async def test_game_that_hangs_up_at_once(gateway, full_game, protocol):
    """What the game said before the socket was attached is delivered, then 1000 (SPEC 9.6)."""
    client, _ = await gateway(make_config(full_game))
    ws = await open_ws(client, (protocol,))
    assert await ws.binary_until(b"full.") == b"Sorry, the game is full.\r\n"
    assert await ws.closed() == (1000, "closed by game")


async def test_mccp2_corruption_delivers_the_text_before_then_1014(mud, ws_gateway):
    import zlib

    client = await ws_gateway()
    ws, conn = await play(mud, client, (GMCP,))
    conn.send(bytes([IAC, WILL, 86]))
    await conn.wait_for(bytes([IAC, DO, 86]))
    z = zlib.compressobj()
    conn.send(bytes([IAC, SB, 86, IAC, SE]) + z.compress(b"good text\r\n") + z.flush(zlib.Z_SYNC_FLUSH)
              + b"\x00garbage that is not deflate" * 4)
    assert await ws.binary_until(b"good text") == b"good text\r\n"
    assert await ws.closed() == (1014, "compression error")
    await conn.wait_closed()


async def test_msdp_reaches_gmcp_and_json_clients_as_module_msdp(mud, ws_gateway):
    """The stream's events are the browser's: MSDP (SPEC 5) is GMCP module "MSDP" here too, both ways."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (GMCP,))
    conn.send(bytes([IAC, WILL, 69]))
    await conn.wait_for(bytes([IAC, DO, 69]))
    conn.send(bytes([IAC, SB, 69]) + b"\x01HEALTH\x0210\x01HEALTH_MAX\x0220" + bytes([IAC, SE]))
    assert json.loads((await ws.text()).removeprefix("MSDP ")) == {"HEALTH": "10", "HEALTH_MAX": "20"}
    await ws.ws.send_str('MSDP {"REPORT": "HEALTH"}')
    await conn.wait_for(bytes([IAC, SB, 69]) + b"\x01REPORT\x02HEALTH" + bytes([IAC, SE]))
