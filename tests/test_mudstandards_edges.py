"""The edges of /ws (SPEC 9) that test_mudstandards.py does not reach: the game's encoding both
ways, TLS refusals, bad TEXT frames, fragments, the rate limit across GMCP and text, NAWS
before the game asks, the default game, a stop or a reload meeting a socket, the telnet
relay's PROXY header and MCCP2. Over real sockets: a real gateway, the fake MUD, aiohttp's
WebSocket client (raw frames where a client library would not send them)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib

import aiohttp
import pytest

from gateway.routes import SESSIONS, SOCKETS, apply_config
from tests.conftest import make_config, until
from tests.fakemud import FakeMud
from tests.test_frames import client_frame
from tests.test_mudstandards import (DO, GA, GMCP, GMCP_OPT, IAC, JSON, SB, SE, TELNET, TERMINAL, WILL, Ws,
                                     open_ws, play, ws_gateway)  # noqa: F401  (fixture)
from tests.test_spec_clauses_ops import upgrade_headers
from tests.test_session_races import TLS_GAME, slow_mud  # noqa: F401  (fixture)
from tests.test_tls import ca, tls_mud  # noqa: F401  (fixtures)

TEXT_OP, BINARY_OP, CONTINUATION, PING_OP = 0x1, 0x2, 0x0, 0x9
NAWS, MCCP2 = 31, 86


def raw_transport(ws: Ws):
    """The client's TCP transport under ``ws``: frames written there are what a client sends."""
    return ws.ws._response.connection.transport


# -- 9.3/9.4: the game's encoding, both ways ------------------------------------------------------

@pytest.mark.parametrize("protocol", [TERMINAL, GMCP, JSON])
async def test_game_text_in_its_encoding_and_input_in_it_with_iac_doubled(mud, ws_gateway, protocol):
    """SPEC 9.3: text frames are UTF-8 "decoded from the game's encoding"; 9.4: input "each
    line sent as text + CRLF in the game's encoding, IAC doubled" (U+00FF is 0xFF in Latin-1)."""
    client = await ws_gateway(game_extra="    encoding: latin-1")
    ws, conn = await play(mud, client, (protocol,))
    conn.send("café ÿ\r\n".encode("latin-1").replace(b"\xff", b"\xff\xff"))  # the game doubles its IAC
    assert await ws.binary_until(b"\r\n") == "café ÿ\r\n".encode()
    await ws.ws.send_bytes("say ÿé".encode())
    await conn.wait_for(b"\r\n")
    assert bytes(conn.received) == b"say \xff\xff\xe9\r\n"
    await ws.ws.close()



async def test_charset_agreed_encoding_is_used_both_ways(mud, ws_gateway):
    """SPEC 9.3: text "decoded from the game's encoding (or the CHARSET-agreed one)"; 9.4: input
    "in the game's encoding": once the game agrees UTF-8 over CHARSET, both ways use it."""
    client = await ws_gateway(game_extra="    encoding: latin-1")
    ws, conn = await play(mud, client, (GMCP,))
    conn.send(bytes([IAC, WILL, 42]))
    await conn.wait_for(bytes([IAC, DO, 42]))
    conn.send(bytes([IAC, SB, 42, 1]) + b";ISO-8859-1;UTF-8" + bytes([IAC, SE]))
    await conn.wait_for(bytes([IAC, SB, 42, 2]) + b"UTF-8" + bytes([IAC, SE]))
    conn.send("naïve ☕\r\n".encode())
    assert await ws.binary_until(b"\r\n") == "naïve ☕\r\n".encode()
    await ws.ws.send_bytes("café ☕".encode())
    await conn.wait_for("café ☕\r\n".encode())
    await ws.ws.close()

# -- 9.1: TLS refusals after the 101 ------------------------------------------------------------

@pytest.mark.parametrize("protocol", [TERMINAL, TELNET])
async def test_tls_pin_mismatch_is_1014_and_a_matching_pin_plays(tls_mud, ws_gateway, gateway, protocol):
    """SPEC 9.1: "Game not reachable within connect_timeout, or TLS/pin failure: close 1014
    game unavailable"; the telnet relay dials TLS as section 5 too (its own pin check)."""
    game, pin = await tls_mud("self-signed.example")
    client, _ = await gateway(make_config(game.port, game_extra=f"    tls: true\n    tls_pin_sha256: '{'00' * 32}'"))
    ws = await open_ws(client, (protocol,))
    assert await ws.closed() == (1014, "game unavailable")
    assert (await (await client.get("/healthz")).json())["sessions"] == 0
    game, pin = await tls_mud("self-signed.example")  # a new one: the first has the refused connection
    client, _ = await gateway(make_config(game.port, game_extra=f"    tls: true\n    tls_pin_sha256: '{pin}'"))
    ws = await open_ws(client, (protocol,))
    conn = await game.next_connection()
    conn.send(b"pinned\r\n")
    assert await ws.binary_until(b"pinned\r\n") == b"pinned\r\n"
    await ws.ws.close()


# -- 9.5: TEXT frames that are not UTF-8; fragments ----------------------------------------------

@pytest.mark.parametrize("protocol", [TERMINAL, GMCP, JSON])
async def test_text_frame_not_utf8_is_1007(mud, ws_gateway, protocol):
    """SPEC 9.5: "Close 1007: input that is not UTF-8 (terminal, gmcp, json)", TEXT frames too
    (test_mudstandards.py: BINARY ones); nothing of it reaches the game."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (protocol,))
    conn.send(b"hi\r\n")
    await ws.binary_until(b"hi\r\n")
    raw_transport(ws).write(client_frame(TEXT_OP, b"look \xc3("))
    assert (await ws.closed())[0] == 1007
    await conn.wait_closed()
    assert b"look" not in conn.received


async def test_fragmented_input_with_a_ping_between_is_one_command(mud, ws_gateway):
    """SPEC 9.4: a BINARY message is one recv (a frame without a line end a whole command),
    however RFC 6455 fragments it, a control frame between the fragments."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (TERMINAL,))
    raw_transport(ws).write(client_frame(BINARY_OP, b"lo", fin=False) + client_frame(PING_OP, b"p")
                            + client_frame(CONTINUATION, b"ok", fin=False) + client_frame(CONTINUATION, b""))
    await conn.wait_for(b"look\r\n")
    assert bytes(conn.received) == b"look\r\n"
    await ws.ws.close()


async def test_fragmented_message_over_max_input_bytes_is_1009(mud, ws_gateway):
    """SPEC 9.5: a data frame larger than max_input_bytes: 1009, nothing of it to the game,
    when it comes in fragments each under the bound."""
    client = await ws_gateway(extra="limits: {max_input_bytes: 100, max_frame_bytes: 65536}")
    ws, conn = await play(mud, client, (TERMINAL,))
    raw_transport(ws).write(client_frame(BINARY_OP, b"x" * 60, fin=False) + client_frame(CONTINUATION, b"x" * 60))
    assert (await ws.closed())[0] == 1009
    await conn.wait_closed()
    assert b"xxx" not in conn.received


# -- 9.5: the rate limit delays GMCP as text, in one order ---------------------------------------

@pytest.mark.parametrize("protocol", [GMCP, JSON])
async def test_rate_limit_delays_gmcp_and_text_in_order_never_drops(mud, ws_gateway, protocol):
    """SPEC 9.5: input beyond the rate limit "is delayed, never dropped ... the game gets
    every line, in order"; a GMCP message takes a token as a line does (4.4)."""
    client = await ws_gateway(extra="limits: {input_lines_per_second: 40, input_burst: 2}")
    ws, conn = await play(mud, client, (protocol,))
    conn.send(bytes([IAC, WILL, GMCP_OPT]))
    await conn.wait_for(b"Core.Supports.Set")
    mark = len(conn.received)
    expected = b""
    for i in range(6):
        if protocol == GMCP:
            await ws.ws.send_str(f'Core.Ping {{"i": {i}}}')
        else:
            await ws.ws.send_str(json.dumps({"proto": "gmcp", "id": "Core.Ping", "data": f'{{"i": {i}}}'}))
        await ws.ws.send_bytes(f"line {i}".encode())
        expected += bytes([IAC, SB, GMCP_OPT]) + f'Core.Ping {{"i":{i}}}'.encode() + bytes([IAC, SE])
        expected += f"line {i}\r\n".encode()
    await conn.wait_for(b"line 5\r\n", timeout=10)
    assert bytes(conn.received[mark:]) == expected
    await ws.ws.close()


# -- 9.4: json NAWS before the game asks -----------------------------------------------------------

async def test_json_naws_before_naws_is_on_is_used_when_the_game_asks(mud, ws_gateway):
    """SPEC 9.4: telnet_31 NAWS is "the window size, as a 4.4 naws": "used for later
    negotiation" when NAWS is not on yet."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (JSON,))
    naws = base64.b64encode(struct.pack("!HH", 132, 50)).decode()
    await ws.ws.send_str(json.dumps({"proto": "telnet_31", "id": "NAWS", "data": naws}))
    await ws.ws.send_bytes(b"sync")
    await conn.wait_for(b"sync\r\n")
    conn.send(bytes([IAC, DO, NAWS]))
    await conn.wait_for(bytes([IAC, SB, NAWS, 0, 132, 0, 50, IAC, SE]))
    assert bytes([0, 80, 0, 24]) not in conn.received
    await ws.ws.close()


# -- 9.1: the default game ----------------------------------------------------------------------

async def test_no_game_query_is_the_default_game_not_the_first(mud, ws_gateway):
    """SPEC 9.1: "?game=NAME picks the game, else the default game (section 3)": the one
    marked ``default``, not the first listed."""
    second = await FakeMud().start()
    try:
        client = await ws_gateway(games=f"  - {{name: second, host: 127.0.0.1, port: {second.port}, default: true}}")
        ws = await open_ws(client, (TERMINAL,))
        conn = await second.next_connection()
        conn.send(b"second\r\n")
        assert await ws.binary_until(b"second\r\n") == b"second\r\n"
        assert mud.connections == []
        await ws.ws.close()
    finally:
        await second.close()


# -- 9.2: more than one Sec-WebSocket-Protocol header ---------------------------------------------

async def test_choice_across_several_protocol_headers_follows_their_order(mud, ws_gateway):
    """SPEC 9.2: the first entry of the client's list that is served; a list may be sent as
    several ``Sec-WebSocket-Protocol`` headers (RFC 6455 4.1), read in order."""
    from multidict import CIMultiDict

    client = await ws_gateway()
    headers = CIMultiDict(upgrade_headers())
    headers.add("Sec-WebSocket-Protocol", "v1.evennia.com, " + JSON)
    headers.add("Sec-WebSocket-Protocol", TERMINAL)
    resp = await client.get("/ws", headers=headers)
    assert resp.status == 101
    assert resp.headers["Sec-WebSocket-Protocol"] == JSON
    await mud.next_connection()
    resp.close()


# -- 9.6: the telnet relay's PROXY header and MCCP2 ---------------------------------------------

async def test_telnet_relay_sends_the_proxy_header_and_nothing_else_of_its_own(mud, ws_gateway):
    """SPEC 9.3: under telnet "the gateway sends the game nothing of its own but the PROXY
    header (section 5)"."""
    client = await ws_gateway(game_extra="    proxy_protocol: v1")
    ws, conn = await play(mud, client, (TELNET,))
    await ws.ws.send_bytes(b"look\r\n")
    await conn.wait_for(b"look\r\n")
    header, _, rest = bytes(conn.received).partition(b"\r\n")
    assert header.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ")
    assert rest == b"look\r\n"
    await ws.ws.close()


async def test_telnet_relay_passes_mccp2_compressed_bytes_unchanged(mud, ws_gateway):
    """SPEC 9.3: under telnet, BINARY frames hold the game's bytes unchanged, "MCCP2-compressed
    data included; the client negotiates for itself"."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (TELNET,))
    conn.send(bytes([IAC, WILL, MCCP2]))
    assert await ws.binary_until(bytes([IAC, WILL, MCCP2])) == bytes([IAC, WILL, MCCP2])
    await ws.ws.send_bytes(bytes([IAC, DO, MCCP2]))
    await conn.wait_for(bytes([IAC, DO, MCCP2]))
    z = zlib.compressobj()
    compressed = bytes([IAC, SB, MCCP2, IAC, SE]) + z.compress(b"squeezed\r\n") + z.flush(zlib.Z_SYNC_FLUSH)
    conn.send(compressed)
    assert await ws.binary_until(compressed[-4:]) == compressed
    assert bytes(conn.received) == bytes([IAC, DO, MCCP2])   # nothing answered by the gateway
    await ws.ws.close()


# -- 9.1/2: a reload of mudstandards.subprotocols ------------------------------------------------

async def test_reload_of_the_served_subprotocols_applies_to_new_sockets_and_keeps_playing_ones(mud, ws_gateway):
    """SPEC 2: the reloaded config applies at once; 9.1: the subprotocols served are the
    config's, an empty list turns /ws off (404). A socket playing goes on."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (TELNET,))
    apply_config(client.server.app, make_config(mud.port, extra="mudstandards: {subprotocols: [terminal]}"))
    resp = await client.get("/ws", headers=upgrade_headers(**{"Sec-WebSocket-Protocol": TELNET}))
    assert resp.status == 400
    apply_config(client.server.app, make_config(mud.port, extra="mudstandards: {subprotocols: []}"))
    resp = await client.get("/ws", headers=upgrade_headers(**{"Sec-WebSocket-Protocol": TERMINAL}))
    assert resp.status == 404
    await ws.ws.send_bytes(b"still\r\n")
    await conn.wait_for(b"still\r\n")
    conn.send(b"yes\r\n")
    assert await ws.binary_until(b"yes\r\n") == b"yes\r\n"
    await ws.ws.close()
    assert len(mud.connections) == 1


# -- 9.6: the client's close after input waiting for tokens ---------------------------------------

async def test_close_after_input_waiting_for_tokens_delivers_the_input_first(mud, ws_gateway):
    """SPEC 9.5: input past the rate limit is delayed, never dropped; 9.6: the close then ends
    the session. The close frame follows the input on the wire: every line reaches the game,
    then its connection is closed."""
    client = await ws_gateway(extra="limits: {input_lines_per_second: 40, input_burst: 2}")
    ws, conn = await play(mud, client, (TERMINAL,))
    lines = [f"line {i}" for i in range(8)]
    await ws.ws.send_bytes("\n".join(lines).encode())
    await ws.ws.close()
    await conn.wait_closed(timeout=10)
    assert bytes(conn.received) == "".join(f"{line}\r\n" for line in lines).encode()


# -- 9.6: a stop meeting a socket whose game is still being dialled --------------------------------

@pytest.mark.both_loops
@pytest.mark.asyncio(loop_factories=["asyncio"])  # the held TLS handshake (test_session_races.py)
@pytest.mark.parametrize("protocol", [TERMINAL, TELNET])
async def test_graceful_stop_while_the_game_is_dialled_is_1001(slow_mud, ws_gateway, gateway, protocol):
    """SPEC 9.6: "SIGTERM: close 1001 gateway shutdown", for a socket whose game is still
    being dialled too (not 1014 game unavailable: the game did not fail, the gateway stops)."""
    client, _ = await gateway(make_config(slow_mud.port, game_extra=TLS_GAME))
    ws = await open_ws(client, (protocol,))
    held = await slow_mud.next_held()
    closing = asyncio.ensure_future(client.server.close())
    try:
        assert await ws.closed() == (1001, "gateway shutdown")
    finally:
        await asyncio.wait_for(closing, 10)
        held.refuse()


# -- 9.3: GMCP data as the game sent it ---------------------------------------------------------

@pytest.mark.parametrize("data", ['"héllo"', '"Zoë says \\"hi\\""', '"ascii"', '{"name": "Zoë"}', "42"])
async def test_gmcp_json_data_reaches_the_client_as_json(mud, ws_gateway, data):
    """SPEC 9.3 gmcp: ``<Package.Name>`` then a space and the data (JSON, or the raw string
    when it is not JSON); json: ``data`` "the data as text". Data that is JSON stays JSON,
    whatever its characters: a JSON string keeps its quotes (else a client reads another
    value, or no JSON at all)."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (GMCP,))
    conn.send(bytes([IAC, WILL, GMCP_OPT]))
    await conn.wait_for(b"Core.Supports.Set")
    conn.send(bytes([IAC, SB, GMCP_OPT]) + f"Comm.Say {data}".encode() + bytes([IAC, SE]))
    module, _, text = (await ws.text()).partition(" ")
    assert module == "Comm.Say"
    assert json.loads(text) == json.loads(data)
    await ws.ws.close()


# -- 9.3: frames in the game's order; escapes and characters whole; EOR prompts -----------------------

EOR_OPT, EOR = 25, 239


async def test_one_read_of_everything_comes_out_in_the_games_order_under_json(mud, ws_gateway):
    """SPEC 9.3: "Order: frames in the order the game sent the bytes": a line, GMCP, an
    EOR-marked prompt (GA/EOR), echo off, in one read, are four frames in that order."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (JSON,))
    conn.send(bytes([IAC, WILL, GMCP_OPT, IAC, WILL, EOR_OPT]))
    await conn.wait_for(b"Core.Supports.Set")
    await conn.wait_for(bytes([IAC, DO, EOR_OPT]))
    conn.send(b"You see a door.\r\n" + bytes([IAC, SB, GMCP_OPT]) + b'Room.Info {"num":7}' + bytes([IAC, SE])
              + b"Password: " + bytes([IAC, EOR, IAC, WILL, 1]))
    frames = [await ws.read() for _ in range(4)]
    assert frames == [
        ("binary", b"You see a door.\r\n"),
        ("text", '{"proto":"gmcp","id":"Room.Info","data":"{\\"num\\":7}"}'),
        ("text", '{"proto":"prompt","id":"","data":"Password: "}'),
        ("text", '{"proto":"telnet_1","id":"ECHO","data":"WILL"}'),
    ]
    await ws.ws.close()


async def test_a_flushed_partial_line_never_splits_an_escape_or_a_character(mud, ws_gateway):
    """SPEC 9.3: "a frame never splits a character or an escape sequence (4.3)": a line without
    end flushed after prompt_flush_ms stops before an escape sequence or a character the game
    has not finished; the rest comes with the next frame."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (TERMINAL,))
    conn.send(b"HP: \x1b[3")
    assert await ws.read() == ("binary", b"HP: ")          # flushed, the escape held back
    conn.send(b"1m10\x1b[0m caf\xc3")
    assert await ws.read() == ("binary", b"\x1b[31m10\x1b[0m caf")   # flushed, the character held back
    conn.send(b"\xa9\r\n")
    assert await ws.read() == ("binary", "é\r\n".encode())
    await ws.ws.close()


# -- 9.6: the game hangs up while the client is behind -------------------------------------------------

async def behind(mud, client, protocol: str, line: bytes):
    """A /ws session whose client stopped reading while the game sent ``line`` in batches of
    640: the kernel's buffers full, then a few hundred KB in the gateway's outbox, under its
    high water (1 MiB), so the game is still read and a hang-up seen. (ws, conn, sock, the
    client's paused transport, how many lines were sent.)"""
    ws, conn = await play(mud, client, (protocol,))
    (sock,) = client.server.app[SOCKETS]
    conn.send(b"start\r\n")
    await ws.binary_until(b"start\r\n")
    transport = raw_transport(ws)
    transport.pause_reading()
    sent = 0
    while sock._outbox_bytes < 300_000:
        conn.send(line * 640)
        sent += 640
        await until(lambda: conn.unsent() == 0, what="the gateway read the game's output")
        await asyncio.sleep(0.02)
    return ws, conn, sock, transport, sent


@pytest.mark.parametrize("protocol", [TERMINAL, TELNET])
async def test_game_hangup_while_the_client_is_behind_delivers_every_byte(mud, ws_gateway, protocol):
    """SPEC 9.6: "The game hangs up: every byte it sent is delivered, then close 1000 closed by
    game"; 6: only a client that makes no progress for slow_consumer_seconds (60 here) is
    cut off. A client that reads nothing for 11 s (a phone on a slow link, a tab in the
    background) while the game says its last and hangs up, then reads: before, the gateway
    gave the last output 10 s (LAST_FRAMES_SECONDS), then dropped what was still queued and
    closed (the client saw the connection reset, 1006, part of the text missing)."""
    client = await ws_gateway()
    line = b"y" * 98 + b"\r\n"
    ws, conn, sock, transport, sent = await behind(mud, client, protocol, line)
    conn.send(b"the end\r\n")
    conn.close()
    await until(lambda: not sock.session, what="the gateway saw the hang-up")
    await asyncio.sleep(11)
    transport.resume_reading()
    received = bytearray()
    while True:
        kind, payload = await ws.read(timeout=60)
        if kind != "binary":
            break
        received += payload  # type: ignore[operator]
    ws.frames.clear()
    assert (kind, payload) == ("close", (1000, "closed by game")), (len(received), sent, kind, payload)
    assert (len(received), received.count(line), bytes(received[-9:])) == (
        len(line) * sent + 9, sent, b"the end\r\n")


async def test_game_hangup_to_a_client_that_never_reads_again_is_a_slow_consumer(mud, ws_gateway):
    """SPEC 9.5/6: the wait for the game's last output to be written has no bound of its own,
    the slow-consumer rule is the bound: a client that reads nothing for slow_consumer_seconds
    after the game hung up gets close 1008 slow consumer, its output dropped, and the socket
    is closed within seconds (the sweep's rule, as for a client that plays)."""
    client = await ws_gateway(extra="limits: {slow_consumer_seconds: 1.5}")
    ws, conn, sock, transport, _ = await behind(mud, client, TERMINAL, b"z" * 98 + b"\r\n")
    conn.close()
    await until(lambda: sock not in client.server.app[SOCKETS], timeout=15, what="the socket closed")
    transport.resume_reading()
    while True:
        kind, payload = await ws.read(timeout=30)
        if kind != "binary":
            break
    ws.frames.clear()
    # 1008, or, as the gateway's close frame was still behind the unread output when the
    # closing handshake's second ran out, the connection aborted.
    assert (kind, payload[0]) in (("close", 1008), ("close", 1006)), (kind, payload)


async def test_a_close_frame_while_the_last_output_waits_ends_the_socket_at_once(mud, ws_gateway):
    """SPEC 9.6: "when the WebSocket closes (close frame or TCP drop) the telnet connection is
    closed at once"; RFC 6455 5.5.1: a close frame is answered. A client that closes while
    the game's last output still waits for it to read is not held until that is written (or,
    not reading, until slow_consumer_seconds, 60 here): the socket ends at once."""
    client = await ws_gateway()
    ws, conn, sock, transport, _ = await behind(mud, client, TERMINAL, b"z" * 98 + b"\r\n")
    conn.close()
    await until(lambda: not sock.session, what="the gateway saw the hang-up")
    transport.write(client_frame(0x8, struct.pack("!H", 1000)))
    await until(lambda: sock not in client.server.app[SOCKETS], timeout=5, what="the socket ended")
    transport.abort()  # the client, which never read our close, goes too


# -- 9.5/6: backpressure -----------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [TERMINAL, TELNET])
async def test_backpressure_stops_reading_the_game_and_loses_nothing(mud, ws_gateway, protocol):
    """SPEC 9.5: "Backpressure ... as section 6": a client that reads slower than the game
    writes makes the gateway stop reading the game (TCP pushes back on it) rather than
    buffer without bound, and read again once the client catches up; nothing is lost."""
    client = await ws_gateway()
    ws, conn = await play(mud, client, (protocol,))
    (sock,) = client.server.app[SOCKETS]
    transport = raw_transport(ws)
    transport.pause_reading()
    line = b"w" * 98 + b"\r\n"
    lines = 80_000   # 8 MB: more than the kernel's buffers and the outbox's high water
    conn.send(line * lines + b"done\r\n")
    await until(lambda: not sock._caught_up, what="the gateway's outbox over its high water")
    await asyncio.sleep(0.5)
    held = sock._outbox_bytes
    assert held < sock.outbox_limit()
    await asyncio.sleep(0.5)
    assert sock._outbox_bytes == held   # the game is not read meanwhile: what it sends waits in TCP
    transport.resume_reading()
    received = bytearray()
    while b"done\r\n" not in received[-6:]:
        kind, payload = await ws.read(timeout=30)
        assert kind == "binary", (kind, payload)
        received += payload  # type: ignore[operator]
    ws.frames.clear()
    assert (len(received), received.count(line)) == (len(line) * lines + 6, lines)
    await ws.ws.send_bytes(b"still here\r\n")   # (the relay passes it as it is)
    await conn.wait_for(b"still here\r\n")
    await ws.ws.close()


# -- 9.1: the token rules of 4.1 --------------------------------------------------------------------

async def test_ws_token_rules_exp_iat_aud_and_algorithm(mud, ws_gateway):
    """SPEC 9.1: a token by "the rules of 4.1 (auth.required, exp, iat/max_age, no aud, HS256
    only); a refused token: HTTP 403", in the query or as the bearer subprotocol entry."""
    import time
    import warnings

    import jwt

    from tests.test_mudstandards import SECRET

    client = await ws_gateway(extra=f"security: {{auth: {{required: true, secret: {SECRET}, max_age_seconds: 60}}}}")
    now = int(time.time())
    with warnings.catch_warnings():  # PyJWT finds the key short for HS512: the point is the algorithm
        warnings.simplefilter("ignore")
        hs512 = jwt.encode({"exp": now + 60, "iat": now}, SECRET, algorithm="HS512")   # the gateway's key
    refused = [
        jwt.encode({"exp": now - 10, "iat": now - 20}, SECRET, algorithm="HS256"),          # expired
        jwt.encode({"iat": now}, SECRET, algorithm="HS256"),                                 # no exp
        jwt.encode({"exp": now + 600, "iat": now - 120}, SECRET, algorithm="HS256"),        # older than max_age
        jwt.encode({"exp": now + 60, "iat": now, "aud": "x"}, SECRET, algorithm="HS256"),   # an audience
        hs512,                                                                               # not HS256
        jwt.encode({"exp": now + 60, "iat": now}, "another-secret-" + "k" * 32, algorithm="HS256"),
    ]
    for bad in refused:
        resp = await client.get(f"/ws?token={bad}", headers=upgrade_headers(**{"Sec-WebSocket-Protocol": TERMINAL}))
        assert resp.status == 403, jwt.get_unverified_header(bad)
        b64 = base64.urlsafe_b64encode(bad.encode()).decode().rstrip("=")
        resp = await client.get("/ws", headers=upgrade_headers(
            **{"Sec-WebSocket-Protocol": f"base64url.bearer.phx.{b64}, {TERMINAL}"}))
        assert resp.status == 403
    assert mud.connections == []
    good = jwt.encode({"exp": now + 60, "iat": now}, SECRET, algorithm="HS256")
    ws = await open_ws(client, (TERMINAL,), path=f"/ws?token={good}")
    await mud.next_connection()
    await ws.ws.close()


# -- 9.1: frames sent with the upgrade request ------------------------------------------------------

@pytest.mark.parametrize("protocol", [TERMINAL, TELNET])
async def test_frames_sent_with_the_upgrade_request_are_applied_after_the_connect_in_order(mud, ws_gateway, protocol):
    """SPEC 9.1: "frames the client sent meanwhile are applied after the connect, in order":
    also those written in the same segment as the upgrade request, before the 101."""
    client = await ws_gateway()
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{client.server.port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n").encode()
    frames = b"".join(client_frame(BINARY_OP, f"cmd {i}\r\n".encode()) for i in range(5))
    try:
        writer.write(request + frames)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        conn = await mud.next_connection()
        await conn.wait_for(b"cmd 4\r\n")
        assert bytes(conn.received) == b"".join(f"cmd {i}\r\n".encode() for i in range(5))
    finally:
        writer.close()
