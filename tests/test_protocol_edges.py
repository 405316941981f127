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

from gateway.addresses import client_address, parse_address, parse_network
from gateway.routes import create_app
from gateway.telnet.stream import Text, TelnetStream
from gateway.telnet.subnegotiation import MAX_MSSP_VARIABLES, charset_offers, decode_mssp
from tests.conftest import Phx, make_config, new_topic, session
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


# -- 1. nothing reaches a TLS game before its certificate passes (SPEC 5) -----------------

@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
async def pinned_mud(ca):
    """A TLS fake MUD that asks for the player's address the moment it accepts; and its pin."""
    cert = ca.issue_cert("self-signed.example")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    ask = cmd(IAC, DO, NEW_ENVIRON) + sb(NEW_ENVIRON, b"\x01\x00IPADDRESS") + cmd(IAC, DO, TTYPE)
    mud = await FakeMud(ssl=ctx, on_connect=ask).start()
    yield mud, hashlib.sha256(der).hexdigest()
    await mud.close()


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_nothing_is_sent_to_a_game_whose_certificate_fails_the_pin(pinned_mud, gateway, version):
    mud, _ = pinned_mud
    game = f"    tls: true\n    tls_pin_sha256: '{'00' * 32}'\n    proxy_protocol: {version}"
    _, connect = await gateway(make_config(mud.port, game_extra=game))
    phx = await connect()
    reply = await phx.join(new_topic())
    assert reply["status"] == "error" and reply["response"]["reason"] == "game unavailable"
    assert "tls_pin_sha256" in reply["response"]["detail"]
    conn = await mud.next_connection()
    await conn.wait_closed()
    assert bytes(conn.received) == b""  # no PROXY header, no IPADDRESS, not one telnet byte


async def test_a_game_whose_certificate_matches_the_pin_gets_the_proxy_header_first(pinned_mud, gateway):
    mud, pin = pinned_mud
    game = f"    tls: true\n    tls_pin_sha256: '{pin}'\n    proxy_protocol: v1"
    _, connect = await gateway(make_config(mud.port, game_extra=game))
    phx = await connect()
    assert (await phx.join(new_topic()))["status"] == "ok"
    conn = await mud.next_connection()
    await conn.wait_for(cmd(IAC, SB, NEW_ENVIRON, 0) + b"\x00IPADDRESS\x01127.0.0.1" + cmd(IAC, SE))
    assert bytes(conn.received).startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ")


# -- 2. IPv4-mapped IPv6 addresses are the IPv4 address (SPEC 5) ---------------------------

def test_addresses_are_normalised():
    assert str(parse_address("::ffff:10.0.0.2")) == "10.0.0.2"
    assert str(parse_address(" 10.0.0.2 ")) == "10.0.0.2"
    assert str(parse_address("2001:db8::1")) == "2001:db8::1"
    assert parse_address("::ffff:a00:2") == parse_address("10.0.0.2")
    assert parse_address("10.0.0.2:80") is None and parse_address("") is None
    assert str(parse_network("::ffff:10.0.0.0/104")) == "10.0.0.0/8"
    assert str(parse_network("::ffff:10.0.0.2")) == "10.0.0.2/32"
    assert str(parse_network("::/0")) == "::/0"  # wider than the mapped range: stays IPv6
    assert str(parse_network("10.1.2.3/8")) == "10.0.0.0/8"
    trusted = (parse_network("127.0.0.1"), parse_network("10.0.0.0/8"))
    assert client_address("::ffff:127.0.0.1", ["::ffff:203.0.113.7, ::ffff:10.0.0.2"], trusted) == "203.0.113.7"
    assert client_address("::ffff:127.0.0.1", ["::ffff:10.0.0.3", "::ffff:10.0.0.2"], trusted) == "10.0.0.3"
    assert client_address("::ffff:127.0.0.1", ["203.0.113.7, junk, 10.0.0.2"], trusted) == "10.0.0.2"
    assert client_address("::ffff:192.0.2.1", ["203.0.113.7"], trusted) == "192.0.2.1"
    assert client_address("", [], trusted) == ""
    # An IPv6 zone is no part of the player's address (NEW-ENVIRON, the logs, PROXY): dropped,
    # also one with a space in it, which ipaddress takes.
    assert str(parse_address("fe80::1%eth0")) == "fe80::1" and parse_address("fe80::1%x y") == parse_address("fe80::1")
    assert client_address("fe80::1%eth0", [], trusted) == "fe80::1"
    assert client_address("::ffff:127.0.0.1", ["fe80::7%x y=1"], trusted) == "fe80::7"


async def test_ipv4_mapped_forwarded_for_chain(mud, gateway, caplog):
    caplog.set_level("INFO", logger="gateway.session")
    # A dual-stack proxy writes itself and the player as ::ffff:a.b.c.d.
    extra = "security: {trusted_proxies: ['127.0.0.1/32', '10.0.0.0/8']}\nlimits: {max_sessions_per_ip: 1}"
    _, connect = await gateway(make_config(mud.port, extra=extra, game_extra="    proxy_protocol: v1"))
    phx = await connect(headers={"X-Forwarded-For": "::ffff:203.0.113.7, ::ffff:10.0.0.2"})
    assert (await phx.join(new_topic()))["status"] == "ok"
    conn = await mud.next_connection()
    assert bytes(conn.received).startswith(b"PROXY TCP4 203.0.113.7 127.0.0.1 0 ")
    assert await ipaddress_sent(conn) == b"203.0.113.7"
    assert "ip=203.0.113.7" in caplog.text and "::ffff" not in caplog.text
    # Another player behind the same proxy is someone else (not the proxy's address) ...
    other = await connect(headers={"X-Forwarded-For": "::ffff:198.51.100.4, ::ffff:10.0.0.2"})
    assert (await other.join(new_topic()))["status"] == "ok"
    await mud.next_connection()
    # ... and the first player written either way is one address for the per-IP limit.
    again = await connect(headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.2"})
    reply = await again.join(new_topic())
    assert reply["response"]["reason"] == "too many sessions"


async def test_ipv4_mapped_trusted_proxy_entry(mud, gateway):
    extra = "security: {trusted_proxies: ['127.0.0.1/32', '::ffff:10.0.0.0/104']}"
    _, connect = await gateway(make_config(mud.port, extra=extra))
    phx = await connect(headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.2"})
    assert (await phx.join(new_topic()))["status"] == "ok"
    assert await ipaddress_sent(await mud.next_connection()) == b"203.0.113.7"


@contextlib.asynccontextmanager
async def dual_stack_gateway(config):
    """The gateway on a dual-stack socket (``::`` with IPV6_V6ONLY off), as ``listen: {host: '::'}`` gives."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        pytest.skip("no IPv6")
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 0))
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()


async def test_ipv4_mapped_peer_is_the_ipv4_address(mud, aiohttp_client):
    import aiohttp

    config = make_config(mud.port, extra="security: {trusted_proxies: ['127.0.0.1']}",
                         game_extra="    proxy_protocol: v1")
    async with dual_stack_gateway(config) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/socket/websocket?vsn=2.0.0"
        # Over IPv4 to a dual-stack socket the peer is ::ffff:127.0.0.1: a trusted proxy.
        proxied = Phx(await http.ws_connect(url, headers={"X-Forwarded-For": "198.51.100.9"}))
        assert (await proxied.join(new_topic()))["status"] == "ok"
        conn = await mud.next_connection()
        assert await ipaddress_sent(conn) == b"198.51.100.9"
        assert bytes(conn.received).startswith(b"PROXY TCP4 198.51.100.9 127.0.0.1 0 ")
        # Without the header the peer is the player, port and all.
        direct = Phx(await http.ws_connect(url))
        assert (await direct.join(new_topic()))["status"] == "ok"
        conn = await mud.next_connection()
        assert await ipaddress_sent(conn) == b"127.0.0.1"
        header = bytes(conn.received).split(b"\r\n", 1)[0].split(b" ")
        assert header[:4] == [b"PROXY", b"TCP4", b"127.0.0.1", b"127.0.0.1"] and int(header[4]) > 0
        await proxied.ws.close()
        await direct.ws.close()


# -- 3. MSSP decoded with the game's encoding (SPEC 5) -------------------------------------

async def test_mssp_decoded_with_the_game_encoding(mud, gateway):
    games = f"""  - name: chinese
    host: 127.0.0.1
    port: {mud.port}
    encoding: gbk"""
    client, connect = await gateway(make_config(mud.port, games=games))
    phx = await connect()
    for game, name in (("fake", "Café ☕ Realms"), ("chinese", "中文泥巴")):
        topic = new_topic()
        assert (await phx.join(topic, {"game": game}))["status"] == "ok"
        conn = await mud.next_connection()
        conn.send(cmd(IAC, WILL, MSSP))
        await conn.wait_for(cmd(IAC, DO, MSSP))
        enc = "utf-8" if game == "fake" else "gbk"
        conn.send(sb(MSSP, b"\x01NAME\x02" + name.encode(enc) + b"\x01PLAYERS\x023") + b"hi\r\n")
        await phx.event(topic, "echo")
    shown = {g["name"]: g["mssp"] for g in (await (await client.get("/api/games")).json())["games"]}
    assert shown == {"fake": {"NAME": "Café ☕ Realms", "PLAYERS": "3"},
                     "chinese": {"NAME": "中文泥巴", "PLAYERS": "3"}}


def test_decode_mssp():
    body = "\x01NAME\x02Café ☕\x01PORT\x024000\x024001\x01PORT\x025\x01EMPTY\x01CODEBASE\x02x".encode()
    assert decode_mssp(b"junk" + body, "utf-8") == {
        "NAME": "Café ☕", "PORT": ["4000", "4001", "5"], "CODEBASE": "x"}
    assert decode_mssp("\x01NAME\x02中文".encode("gbk"), "gbk") == {"NAME": "中文"}
    assert decode_mssp(b"\x01NAME\x02caf\xe9", "utf-8") == {"NAME": "caf\ufffd"}
    assert decode_mssp(b"", "utf-8") == {} and decode_mssp(b"\x02x", "utf-8") == {}
    many = b"".join(b"\x01V%d\x02x" % i for i in range(MAX_MSSP_VARIABLES + 10))
    table = decode_mssp(many, "ascii")
    assert len(table) == MAX_MSSP_VARIABLES and f"V{MAX_MSSP_VARIABLES - 1}" in table


# -- 4. a JWT with an `aud` claim is refused (SPEC 4.1, RFC 7519 4.1.3) ----------------------

@pytest.mark.parametrize("aud", ["billing-api", ["billing-api", "mud-gateway"], "mud-gateway", ""])
async def test_token_with_an_audience_is_refused(mud, gateway, aud):
    client, _ = await gateway(make_config(mud.port, extra=REQUIRED))
    await assert_refused(client, token(aud=aud))
    await assert_joins(client, token())


# -- 5. DONT TTYPE resets the MTTS cycle (SPEC 5, MTTS "Disabling TTYPE") --------------------

async def ttype_answers(conn, n: int) -> list[bytes]:
    names = []
    for _ in range(n):
        conn.send(sb(TTYPE, b"\x01"))
        start = await conn.wait_for(cmd(IAC, SB, TTYPE, 0))
        end = await conn.wait_for(cmd(IAC, SE))
        names.append(bytes(conn.received[start:end - 2]))
    return names


async def test_dont_ttype_resets_the_mtts_cycle(joined):
    phx, topic, conn = joined
    conn.send(cmd(IAC, DO, TTYPE))
    await conn.wait_for(cmd(IAC, WILL, TTYPE))
    cycle = [b"MUD-GATEWAY", b"XTERM-256COLOR", b"MTTS 397", b"MTTS 397"]
    assert await ttype_answers(conn, 4) == cycle
    # A copyover: the game switches TTYPE off and on again and starts over.
    conn.send(cmd(IAC, DONT, TTYPE))
    await conn.wait_for(cmd(IAC, WONT, TTYPE))
    conn.send(cmd(IAC, DO, TTYPE))
    await conn.wait_for(cmd(IAC, WILL, TTYPE))
    assert await ttype_answers(conn, 3) == cycle[:3]


# -- 6. every CHARSET REQUEST is answered, whatever the names (SPEC 5, RFC 2066) -------------

@pytest.mark.parametrize("offers, answer", [
    (b";caf\xc3\xa9;UTF-8", cmd(2) + b"UTF-8"),            # non-ASCII (UTF-8) name before UTF-8
    (b" \xe9t\xe9 utf-8 \xff", cmd(2) + b"utf-8"),         # Latin-1 bytes and an IAC around it
    (b"[TTABLE]\x01;KOI8-R;UTF-8", cmd(2) + b"UTF-8"),     # RFC 2066's translation-table form
    (b";caf\xc3\xa9;KOI8-R", cmd(3)),                      # no UTF-8 on offer: REJECTED
    (b";", cmd(3)),
    (b"", cmd(3)),                                         # not even a separator
])
async def test_charset_request_always_answered(joined, offers, answer):
    phx, topic, conn = joined
    conn.send(cmd(IAC, WILL, CHARSET))
    await conn.wait_for(cmd(IAC, DO, CHARSET))
    conn.send(sb(CHARSET, b"\x01" + offers))
    await conn.wait_for(cmd(IAC, SB, CHARSET) + answer + cmd(IAC, SE))
    # The session goes on and still understands the game.
    conn.send("ok ☕\r\n".encode() if answer[0] == 2 else b"ok\r\n")
    assert (await phx.event(topic, "echo"))["message"].startswith("ok")


def test_charset_offers():
    assert charset_offers(b";UTF-8;latin1") == [b"UTF-8", b"latin1"]
    assert charset_offers(b" caf\xc3\xa9  UTF-8 ") == [b"caf\xc3\xa9", b"UTF-8"]
    assert charset_offers(b"[TTABLE]\x01;KOI8-R") == [b"KOI8-R"]
    assert charset_offers(b"") == [] and charset_offers(b";") == [] and charset_offers(b"[TTABLE]") == []


# -- 7. a large subnegotiation is handled in bounded time (SPEC 5) --------------------------

def big_mssp_table(size: int) -> tuple[bytes, dict[str, str]]:
    table = {f"VAR{i:05d}": f"value {i} ☕ " + "x" * 200 for i in range(size // 220)}
    body = b"".join(b"\x01" + k.encode() + b"\x02" + v.encode() for k, v in table.items())
    return body, table


async def test_960kb_mssp_arrives_whole_and_other_sessions_keep_playing(mud, gateway):
    client, connect = await gateway(make_config(mud.port))
    phx, elsewhere = await connect(), await connect()
    big, other = new_topic(), new_topic()
    assert (await phx.join(big))["status"] == "ok"
    conn = await mud.next_connection()
    assert (await elsewhere.join(other))["status"] == "ok"
    player = await mud.next_connection()
    conn.send(cmd(IAC, WILL, MSSP))
    await conn.wait_for(cmd(IAC, DO, MSSP))
    body, table = big_mssp_table(960 * 1024)
    assert len(body) > 900 * 1024
    conn.send(sb(MSSP, body) + b"after the table\r\n")
    # Meanwhile another session plays on.
    for i in range(20):
        assert (await elsewhere.request(other, "recv", {"message": f"look {i}"}))["status"] == "ok"
        await player.wait_for(f"look {i}\r\n".encode())
        player.send(f"You see {i}.\r\n".encode())
        assert (await elsewhere.event(other, "echo"))["message"] == f"You see {i}.\n"
    assert (await phx.event(big, "echo"))["message"] == "after the table\n"
    games = (await (await client.get("/api/games")).json())["games"]
    assert games[0]["mssp"] == table


async def test_subnegotiation_over_1mib_is_discarded(mud, gateway):
    phx, topic, conn, connect = await session(mud, gateway)
    client = connect.client
    conn.send(cmd(IAC, WILL, MSSP))
    await conn.wait_for(cmd(IAC, DO, MSSP))
    body, _ = big_mssp_table((1 << 20) + 4096)
    conn.send(sb(MSSP, body) + b"after the table\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "after the table\n"
    conn.send(sb(MSSP, b"\x01NAME\x02small") + b"then\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "then\n"
    games = (await (await client.get("/api/games")).json())["games"]
    assert games[0]["mssp"] == {"NAME": "small"}


async def test_oversized_new_environ_request_is_ignored_and_the_next_answered(joined):
    phx, topic, conn = joined
    conn.send(cmd(IAC, DO, NEW_ENVIRON))
    await conn.wait_for(cmd(IAC, WILL, NEW_ENVIRON))
    conn.send(sb(NEW_ENVIRON, b"\x01" + b"\x00JUNK" * 20000) + sb(NEW_ENVIRON, b"\x01\x00CLIENT_NAME"))
    await conn.wait_for(cmd(IAC, SB, NEW_ENVIRON, 0) + b"\x00CLIENT_NAME\x01MUD-GATEWAY" + cmd(IAC, SE))
    conn.send(b"still here\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "still here\n"
    assert bytes(conn.received).count(cmd(IAC, SB, NEW_ENVIRON)) == 1


# -- 4.3: the partial-line flush counts only new text ----------------------------------------

async def test_password_prompt_shows_while_vitals_stream(mud, gateway):
    # Vitals every 10 ms against a 500 ms flush: only a stall of the whole test
    # process for half a second could let the prompt through without the rule.
    phx, topic, conn, _ = await session(mud, gateway, game_extra="    prompt_flush_ms: 500")
    conn.send(cmd(IAC, WILL, GMCP))
    await conn.wait_for(cmd(IAC, DO, GMCP))
    conn.send(b"Password: ")  # no GA, no EOR

    async def vitals() -> None:
        hp = 0
        while True:  # far more often than prompt_flush_ms
            hp += 1
            conn.send(sb(GMCP, b"Char.Vitals " + json.dumps({"hp": hp}).encode()))
            await conn.drain()
            await asyncio.sleep(0.01)

    streaming = asyncio.ensure_future(vitals())
    try:
        shown = await phx.event(topic, "echo", timeout=10)
        assert shown["message"] == "Password: "
        assert not streaming.done()
    finally:
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streaming


def gmcp_frame(hp: int) -> bytes:
    return sb(GMCP, b"Char.Vitals " + json.dumps({"hp": hp}).encode())


#: What a game sends between two pieces of text that is not text.
not_text = st.one_of(
    st.integers(0, 10**6).map(gmcp_frame),
    st.sampled_from([cmd(IAC, WILL, 3), cmd(IAC, DO, TTYPE), cmd(IAC, 241), cmd(IAC, WILL, 1),
                     cmd(IAC, WONT, 1), sb(TTYPE, b"\x01"), sb(MSSP, b"\x01A\x02b")]),
)


#: Text the stream passes through unchanged (no CR, NUL or escape sequences).
plain_text = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1b\r\x00")


@given(
    lines=st.lists(st.text(plain_text, max_size=20).map(lambda t: t + "\n"), max_size=3),
    partial=st.text(plain_text.filter(lambda c: c != "\n"), min_size=1, max_size=20),
    text_cuts=st.lists(st.integers(1, 10), max_size=10),
    steps=st.lists(st.tuples(st.booleans(), not_text, st.floats(0.0, 0.3)), min_size=1, max_size=30),
    read_cuts=st.lists(st.integers(1, 40), max_size=40),
    flush_ms=st.integers(0, 200),
)
def test_gmcp_and_negotiation_do_not_hold_back_the_partial_line(lines, partial, text_cuts, steps,
                                                                read_cuts, flush_ms):
    """SPEC 4.3: the open line goes out ``flush_after`` after the last text, whatever else
    arrives meanwhile (GMCP, negotiation), however it is all cut into reads."""
    flush_after = flush_ms / 1000
    s = TelnetStream("utf-8", flush_after=flush_after)
    out: list[tuple[float, object]] = []

    def run_until(now: float) -> None:  # what the event loop's timer does
        while (when := s.deadline()) is not None and when <= now:
            out.extend((when, ev) for ev in s.poll(when))

    text = ("".join(lines) + partial).encode()
    pieces = []
    while text:
        size = text_cuts.pop() if text_cuts else len(text)
        pieces.append(text[:size])
        text = text[size:]
    # Text pieces with GMCP and negotiation before, between and after them; some
    # gaps are shorter than flush_after, and every step is cut into reads.
    now = text_at = 10.0
    for with_text, noise, gap in steps + [(True, b"", 0.001)] * len(pieces):
        piece = pieces.pop(0) if with_text and pieces else b""
        data = noise + piece if gap < 0.1 else piece + noise
        now += gap
        if piece:
            text_at = now
        while data:
            size = read_cuts.pop() if read_cuts else len(data)
            run_until(now)
            out.extend((now, ev) for ev in s.feed(data[:size], now))
            data = data[size:]
    run_until(max(now, text_at + flush_after))
    texts = [(when, ev) for when, ev in out if type(ev) is Text]
    assert "".join(ev.message for _, ev in texts) == "".join(lines) + partial
    when, last = texts[-1]
    assert last.partial and when <= text_at + flush_after + 1e-9
    assert s.deadline() is None
