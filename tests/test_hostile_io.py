"""A hostile client's socket against the gateway's HTTP side and WebSocket upgrade, over real
sockets: what the request before the 101 can make the gateway do (its headers, parsed by the
gateway's own code after aiohttp's), and what churn on an upgraded socket leaves behind. The
frame layer after the 101 is test_frame_bounds.py's and test_hostile_transport.py's.

Work is counted, not timed: ``events_while`` counts the Python calls the process makes (its
profile events) while one request is answered, so a request whose headers cost a Python step
per entry shows as hundreds of thousands of events against a plain upgrade's few hundred,
however fast or loaded the machine."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
import time

import pytest

from tests.conftest import EVENTUALLY, free_port, until
from tests.test_websocket_connection import RawWs, start
from tests.upgrade_helpers import GatewayProcess, config_text


def upgrade(port: int, path: str = "/socket/websocket?vsn=2.0.0", headers: bytes = b"") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n").encode() \
        + headers + b"\r\n"


async def answer(port: int, request: bytes) -> tuple[bytes, int, RawWs]:
    """Send ``request`` whole, then count the process's profile events until the head of its
    answer is read: (the head, the events, the connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    events = 0

    def count(frame, event, arg) -> None:
        nonlocal events
        events += 1

    sys.setprofile(count)
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EVENTUALLY)
    finally:
        sys.setprofile(None)
    return head, events, RawWs(reader, writer)


async def closed(ws: RawWs) -> None:
    ws.writer.close()
    await asyncio.gather(ws.writer.wait_closed(), return_exceptions=True)


async def heartbeat_answered(ws: RawWs) -> None:
    ws.send_json([None, "1", "phoenix", "heartbeat", {}])
    assert (await ws.message(lambda m: True))[1:] == ["1", "phoenix", "phx_reply", {"status": "ok", "response": {}}]


@pytest.mark.parametrize("value", ["1" * 4301, "0" * 4300 + "9"], ids=["4301 digits", "leading zeros"])
@pytest.mark.parametrize("param", ["server_max_window_bits", "client_max_window_bits"])
async def test_a_window_bits_value_of_thousands_of_digits_declines_deflate_not_the_upgrade(mud, gateway, param,
                                                                                          value):
    """RFC 7692 7.1.2: a window bits value is 1*DIGIT, 8 to 15. int() refuses a string of more
    than 4,300 digits (Python 3.11's limit): the handler raised ValueError, and the upgrade was
    answered 500, with a traceback in the log for every such request. Now such an offer is
    declined like any invalid one: the 101, without compression."""
    _, port = await start(mud, gateway)
    offer = f"Sec-WebSocket-Extensions: permessage-deflate; {param}={value}\r\n".encode()
    head, _, ws = await answer(port, upgrade(port, headers=offer))
    try:
        assert head.startswith(b"HTTP/1.1 101"), head[:200]
        assert b"sec-websocket-extensions" not in head.lower(), head[:200]
        await heartbeat_answered(ws)
    finally:
        await closed(ws)


#: About a megabyte of request headers (120 lines of 8 KB, within aiohttp's limits of 128
#: header lines of 8190 bytes): what one request can hold.
LINES = 120


async def plain_events(port: int) -> int:
    """The events of a plain upgrade, answered 101: the measure the others are held to."""
    head, events, ws = await answer(port, upgrade(port))
    await closed(ws)
    assert head.startswith(b"HTTP/1.1 101"), head
    return events


async def test_a_megabyte_of_extension_offers_is_declined_in_a_few_steps(mud, gateway):
    """RFC 7692: the gateway answers the first permessage-deflate offer it can keep to. It read
    every offer of every Sec-WebSocket-Extensions header, a Python step a parameter: a megabyte
    of ``permessage-deflate; a`` offers (each declined) held the loop 90 ms in one callback, 1.3
    million profile events. Now the first 8 offers (of at most 8 parameters) are looked at and
    the rest declined (a server may always decline): the 101, without compression, for about
    the work of a plain upgrade."""
    _, port = await start(mud, gateway)
    plain = await plain_events(port)
    offers = b"".join(b"Sec-WebSocket-Extensions: " + b"permessage-deflate; a, " * 350 + b"\r\n"
                      for _ in range(LINES))
    head, events, ws = await answer(port, upgrade(port, headers=offers))
    try:
        assert head.startswith(b"HTTP/1.1 101"), head[:200]
        assert b"sec-websocket-extensions" not in head.lower(), head[:200]
        assert events < 10 * plain, (events, plain)
        await heartbeat_answered(ws)
    finally:
        await closed(ws)
    # An offer the gateway takes is still taken after declined ones, within the first 8.
    offers = b"Sec-WebSocket-Extensions: permessage-deflate; a, x-webkit-deflate-frame, permessage-deflate\r\n"
    head, _, ws = await answer(port, upgrade(port, headers=offers))
    await closed(ws)
    assert b"sec-websocket-extensions: permessage-deflate; client_no_context_takeover" in head.lower(), head


@pytest.mark.parametrize("path", ["/socket/websocket?vsn=2.0.0", "/ws"])
async def test_a_megabyte_of_offered_subprotocols_is_400_in_a_few_steps(mud, gateway, path):
    """The token (the ``base64url.bearer.phx.`` entry) and, on /ws, the subprotocol (SPEC 9.2)
    were looked for among every entry of every Sec-WebSocket-Protocol header, a Python step
    an entry: a megabyte of entries held the loop 50 ms on /socket/websocket (with a secret
    configured), 140 ms on /ws, in one callback each (1.3 and 2.5 million profile events). Now
    a request offering more than 32 is malformed: HTTP 400, counted before any entry is looked
    at. A client offering a few (phoenix.js: two) is answered as before."""
    _, port = await start(mud, gateway, extra="security: {auth: {secret: 0123456789abcdef0123456789abcdef}}")
    plain = await plain_events(port)
    offered = b"".join(b"Sec-WebSocket-Protocol: " + b"ab," * 2600 + b"\r\n" for _ in range(LINES))
    head, events, ws = await answer(port, upgrade(port, path, offered))
    await closed(ws)
    assert head.startswith(b"HTTP/1.1 400"), head[:200]
    assert events < 10 * plain, (events, plain)
    # 32 offered: answered as before (/ws takes its subprotocol, the last of them).
    served = b"terminal.mudstandards.org" if path == "/ws" else b"phoenix"
    offered = b"Sec-WebSocket-Protocol: " + b"ab, " * 31 + served + b"\r\n"
    head, _, ws = await answer(port, upgrade(port, path, offered))
    await closed(ws)
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    assert b"sec-websocket-protocol: " + served in head.lower(), head


def from_here(gw: GatewayProcess) -> int:
    """Where the process's log is now (its stderr, as journald gets it)."""
    return gw.stderr_path.stat().st_size


async def logged(gw: GatewayProcess, text: str) -> None:
    await until(lambda: text in gw.log(), what=f"{text!r} in the log")


async def log_since(gw: GatewayProcess, started: int) -> bytes:
    """Stop the process; what it logged from ``started`` on."""
    await gw.stop()
    return gw.stderr_path.read_bytes()[started:]


#: Requests that are not the gateway's fault: aiohttp answers each 400 (a header line without
#: a colon, 129 header lines, a header over 8190 bytes), or answers the page and then finds
#: no request in what follows (an upgrade of a page that is no WebSocket, then 100 KB: aiohttp
#: logged every byte of it in its error), or a 101 whose client offered only subprotocols the
#: gateway does not serve (with 8 KB of names).
CLIENT_ERRORS = (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                 b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(129)) + b"\r\n",
                 b"GET / HTTP/1.1\r\nX-A: " + b"a" * 8200 + b"\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                 + b"x" * 100_000)


async def test_a_clients_malformed_requests_cost_no_log_lines(tmp_path):
    """Each request aiohttp could not parse was logged at ERROR with its traceback (~1 KB of
    log for a 30-byte request), and each WebSocket handshake offering no subprotocol aiohttp
    serves was logged at WARNING with the client's whole list (8 KB of names: a 40 KB line):
    anyone reaching the port could write the log 5 to 18 times faster than they sent, at levels
    an admin takes for faults of the gateway. Now both are debug records (the gateway's own
    one-line reasons at info stay, e.g. a refused Origin), in a real gateway process. The
    worst was an upgrade of a page that is no WebSocket followed by bytes: aiohttp answered
    the page, then logged the bytes as a bad method, all of them (100 KB of log a request)."""
    gw = GatewayProcess(tmp_path, config_text(9, free_port()))
    port = gw.port
    started = 0
    try:
        await gw.ready()
        started = from_here(gw)
        names = b"Sec-WebSocket-Protocol: " + b"x" * 8000 + b"\r\n"
        for request in CLIENT_ERRORS * 5 + (upgrade(port, headers=names),) * 5:
            with socket.create_connection(("127.0.0.1", port), timeout=EVENTUALLY) as s:
                s.sendall(request)
                head = s.recv(16)
                assert head.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400", b"HTTP/1.1 101",
                                        b"HTTP/1.1 200")), head
        # The gateway still logs what is its own to say: one line at info.
        with socket.create_connection(("127.0.0.1", port), timeout=EVENTUALLY) as s:
            s.sendall(upgrade(port, headers=b"Origin: http://elsewhere.example\r\n"))
            assert s.recv(16).startswith(b"HTTP/1.1 403")
        await logged(gw, "refused origin")
    finally:
        written = await log_since(gw, started)
    assert len(written) < 1000, written[:3000]
    assert b"Traceback" not in written and b"ERROR" not in written and b"WARNING" not in written


def reachable(*roots) -> tuple[int, int]:
    """(objects, items in containers) reachable from ``roots`` through references: what the
    gateway holds from them, counted without memory tracing (which, in one process with the
    test's client and fake game, credits the gateway with memory those reuse)."""
    import gc
    import types

    seen: set[int] = set()
    todo = list(roots)
    objects = items = 0
    while todo:
        o = todo.pop()
        if id(o) in seen or isinstance(o, (type, types.ModuleType, types.FunctionType, types.CodeType)):
            continue
        seen.add(id(o))
        objects += 1
        if isinstance(o, (dict, list, set, frozenset, tuple)) or type(o).__name__ == "deque":
            items += len(o)
        todo.extend(gc.get_referents(o))
    return objects, items


async def test_topic_churn_and_failed_joins_leave_nothing_behind(mud, gateway):
    """One socket joins and leaves topic after topic, and joins topics that fail (an unknown
    game, a game that refuses the connection, a malformed topic): each played session ends
    with its leave, and nothing is kept per topic afterwards: what the socket and the session
    manager reach is the same after 100 rounds as after 20."""
    from gateway.routes import SESSIONS, SOCKETS
    from tests.conftest import make_config, new_topic, until

    down = free_port()  # nothing listens there: the connection is refused
    # 240 sessions started from one address in a few seconds: past the rate an address may
    # start them at (test_limits_sockets.py) unless its limit is raised.
    client, connect = await gateway(make_config(
        mud.port, extra="sessions: {linger_seconds: 0}\nlimits: {max_sessions_per_ip: 1000}",
        games=f"  - {{name: down, host: 127.0.0.1, port: {down}}}"))
    manager = client.server.app[SESSIONS]
    phx = await connect()

    async def churn(rounds: int) -> None:
        for i in range(rounds):
            topic = new_topic()
            assert (await phx.join(topic, join_ref=str(i)))["status"] == "ok"
            await mud.next_connection()
            assert (await phx.request(topic, "phx_leave", {}, join_ref=str(i)))["status"] == "ok"
            for game, reason in (("nope", "unknown game"), ("down", "game unavailable")):
                reply = await phx.join(new_topic(), {"game": game}, join_ref=str(i))
                assert reply["response"]["reason"] == reason, reply
            reply = await phx.join(f"telnet:{i}-not-a-uuid", join_ref=str(i))
            assert reply["response"]["reason"] == "unmatched topic", reply
            phx.frames.clear()
            phx._cursor = 0
        await until(lambda: not manager.sessions and not manager._opening and not manager.per_ip,
                    what="every session ended")

    (sock,) = client.server.app[SOCKETS]
    await churn(20)  # the first of everything (metric labels, the socket's own tables) is made
    before = reachable(sock, manager)
    await churn(100)
    after = reachable(sock, manager)
    assert not sock.channels and not sock._joining and not sock._tasks
    assert after[0] - before[0] < 100 and after[1] - before[1] < 100, (before, after)
    await phx.ws.close()


async def test_a_request_never_finished_and_an_idle_keep_alive_are_closed_after_http_idle_seconds(mud, monkeypatch):
    """The server the command line runs (cli.make_runner): a request whose headers never end
    held its connection, and all it had sent, for aiohttp's 3,630 s; now HTTP_IDLE_SECONDS
    (75 s; shortened here) closes it, and a keep-alive connection idle between requests.
    A socket past its upgrade is not aiohttp's any more: it stays, whatever the time."""
    from aiohttp import web

    from gateway import cli
    from gateway.routes import create_app
    from tests.conftest import make_config

    monkeypatch.setattr(cli, "HTTP_IDLE_SECONDS", 0.5)
    runner = cli.make_runner(create_app(make_config(mud.port)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 8000)  # never ended
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        idle_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        ws = await RawWs.open(port)
        # Each is closed by the server (EOF), well within the test's patience.
        assert await asyncio.wait_for(reader.read(), EVENTUALLY) == b""
        answered = await asyncio.wait_for(idle_reader.read(), EVENTUALLY)
        assert answered.startswith(b"HTTP/1.1 200") and answered.endswith(b"}"), answered[-200:]
        for w in (writer, idle_writer):
            w.close()
        await asyncio.sleep(1.5)  # three times the idle time: the WebSocket is still served
        await heartbeat_answered(ws)
        await closed(ws)
    finally:
        await runner.cleanup()


# -- the gateway's own refusal lines, in a real process ----------------------------------------

SECRET_32 = "0123456789abcdef0123456789abcdef"


async def pipelined(port: int, requests: list[bytes]) -> None:
    """Send ``requests`` back to back on one keep-alive connection and read an answer to each
    (none of them is upgraded: each is refused, and the connection serves the next)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(requests))
    answered = 0
    while answered < len(requests):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EVENTUALLY)
        assert head.startswith((b"HTTP/1.1 403", b"HTTP/1.1 404")), head[:200]
        length = int(next(h for h in head.lower().split(b"\r\n") if h.startswith(b"content-length:")).split(b":")[1])
        await reader.readexactly(length)
        answered += 1
    writer.close()
    await asyncio.gather(writer.wait_closed(), return_exceptions=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_token(value: str) -> str:
    """A token whose unsigned header names a critical extension ``value``: PyJWT refuses it
    before the signature, with ``value`` in its reason."""
    import json
    return ".".join([b64url(json.dumps({"alg": "HS256", "typ": "JWT", "crit": [value]}).encode()),
                     b64url(b'{"exp": 1}'), "AAAA"])


def refused_requests(port: int) -> list[bytes]:
    """Refusals of requests that never become a session: an Origin of 8 KB, /ws of a game
    there is none of, a token that is garbage (in the query, and as the subprotocol), a token
    whose refusal names 4 KB of its own header."""
    ws = b"Sec-WebSocket-Protocol: terminal.mudstandards.org\r\n"
    return [upgrade(port, headers=b"Origin: http://elsewhere.example/" + b"a" * 8000 + b"\r\n"),
            upgrade(port, "/ws?game=nope", ws),
            upgrade(port, "/socket/websocket?vsn=2.0.0&token=garbage"),
            upgrade(port, "/ws", b"Sec-WebSocket-Protocol: terminal.mudstandards.org, base64url.bearer.phx."
                    + b64url(b"garbage").encode() + b"\r\n"),
            upgrade(port, "/socket/websocket?vsn=2.0.0&token=" + forged_token("x" * 4000))]


async def played(mud, port: int) -> None:
    """A /ws session: its game answers, the client leaves."""
    head, _, ws = await answer(port, upgrade(port, "/ws", b"Sec-WebSocket-Protocol: terminal.mudstandards.org\r\n"))
    assert head.startswith(b"HTTP/1.1 101"), head
    await mud.next_connection()
    await closed(ws)


async def test_pipelined_refusals_write_a_bounded_log_and_the_session_lines_still(mud, tmp_path):
    """Each refused upgrade was a line at info with what the client sent in it: a refused
    Origin with the whole header (8 KB of log for 8 KB sent), a refused token with PyJWT's
    reason (which names the token's own header), and such requests pipeline on one keep-alive
    connection: anyone reaching the port could write the log as fast as they sent, until
    journald's rate limit dropped lines, the session lines with them. Now a client's value is
    cut (logs.clip) and each kind of refusal is logged at most 10 times in 10 s, then one
    ``suppressed`` line: 2,500 refused requests (10 MB) leave a few
    KB, and a session played meanwhile still has its start and end lines (SPEC 8)."""
    gw = GatewayProcess(tmp_path, config_text(mud.port, free_port(), f"security: {{auth: {{secret: {SECRET_32}}}}}"))
    started = 0
    try:
        await gw.ready()
        began = time.monotonic()
        started = from_here(gw)
        requests = refused_requests(gw.port) * 100
        sent = 5 * sum(map(len, requests))
        await asyncio.gather(*(pipelined(gw.port, requests) for _ in range(5)))
        await played(mud, gw.port)
        await logged(gw, "session end")
        elapsed = time.monotonic() - began
    finally:
        written = await log_since(gw, started)
    lines = written.splitlines()
    # Each kind logged: 10 lines of each 10 s begun and a summary line (gateway.logs), and a
    # few lines of the session's and the process's own.
    assert len(lines) <= REFUSAL_KINDS_LOGGED * (int(elapsed // 10) + 2) * 11 + 10, \
        (len(lines), b"\n".join(lines[:20]))
    assert max(map(len, lines)) < 1500, max(lines, key=len)[:3000]
    assert len(written) < sent / 500, (len(written), sent)
    assert b"refused origin" in written and b"refused token" in written
    assert b"session start" in written and b"session end" in written


#: The kinds of REFUSED_KINDS that are logged (an unknown game on /ws is an answer, not a line).
REFUSAL_KINDS_LOGGED = 2


async def test_a_control_character_in_a_logged_value_cannot_start_a_log_line(mud, tmp_path):
    """A token's header is the client's, and PyJWT's reason for refusing it can quote it: a
    newline in it began a line of the client's own making in the plain log (here a forged
    ``session start``). Now control characters of a logged value are written visible
    (``\\x0a``), so every line of the log is one the gateway began."""
    gw = GatewayProcess(tmp_path, config_text(mud.port, free_port(), f"security: {{auth: {{secret: {SECRET_32}}}}}"))
    forged = "x\n2026-01-01 00:00:00,000 INFO gateway.session: session start game=forged\r\x1b[2K\u2028"
    started = 0
    try:
        await gw.ready()
        started = from_here(gw)
        await pipelined(gw.port, [upgrade(gw.port, "/socket/websocket?vsn=2.0.0&token=" + forged_token(forged))])
        await logged(gw, "refused token")
    finally:
        written = (await log_since(gw, started)).decode()
    import re
    lines = written.split("\n")
    assert not any(line.startswith("2026-01-01") for line in lines), written
    assert not any(re.match(r"\S+ \S+ INFO gateway.session: session start", line) for line in lines), written
    assert "\r" not in written and "\x1b" not in written and "\u2028" not in written, written
    assert "game=forged" in written  # the value is there, visible, inside the refusal's line


def test_refusals_beyond_the_bound_are_counted_in_one_line_and_messages_are_one_line(caplog):
    """logs.RefusalLog, by a clock of the test's: 10 lines of a kind in a period, the rest
    counted and the count written as the period ends; another kind has its own bound. The
    text format writes any message's control characters visible, whoever logged it."""
    import logging

    from gateway.logs import REFUSAL_PERIOD, REFUSALS_PER_PERIOD, RefusalLog, TextFormatter, log_event

    now = [100.0]
    refusals = RefusalLog(clock=lambda: now[0])
    log = logging.getLogger("gateway.test")
    caplog.set_level("INFO", logger="gateway")

    def refuse(kind: str, times: int) -> None:
        for _ in range(times):
            if refusals.allow(log, logging.INFO, kind):
                log_event(log, logging.INFO, kind, kind)

    refuse("a", 25)
    refuse("b", 3)
    assert [r.getMessage() for r in caplog.records] == ["a"] * REFUSALS_PER_PERIOD + ["b"] * 3
    caplog.clear()
    now[0] += REFUSAL_PERIOD  # no loop here: the count is written with the kind's next line
    refuse("a", 1)
    assert [r.getMessage() for r in caplog.records] == [
        f"suppressed 15 more a lines of the last {REFUSAL_PERIOD:g} s kind=a suppressed=15", "a"]
    record = logging.LogRecord("gateway.test", logging.INFO, __file__, 1, "value %s", ("x\n\rINFO forged\x1b\u2028",),
                               None)
    assert TextFormatter("%(message)s").format(record) == "value x\\x0a\\x0dINFO forged\\x1b\\u2028"


@pytest.mark.parametrize("protocol", ["telnet", "gmcp"])
async def test_a_line_a_frame_is_bounded_on_ws(mud, gateway, caplog, protocol):
    """/ws logged a line at info for each frame it dropped: a NEW-ENVIRON subnegotiation that
    is malformed (under ``telnet``), a GMCP message before the game enabled GMCP (under
    ``gmcp``): a client could have the gateway write a line for each 20-byte frame it sent.
    Now each is a kind of refusal (logs.log_refusal): 10 lines in 10 s, then a count. The
    frames are dropped as before, and the input after them reaches the game."""
    from tests.conftest import make_config
    from tests.test_mudstandards import play

    caplog.set_level("INFO", logger="gateway")
    client, _ = await gateway(make_config(mud.port))
    began = time.monotonic()
    ws, conn = await play(mud, client, (f"{protocol}.mudstandards.org",))
    for _ in range(500):
        if protocol == "telnet":  # neither IS, INFO nor SEND: dropped
            await ws.ws.send_bytes(bytes([255, 250, 39, 9]) + b"\x00USER\x01bob" + bytes([255, 240]))
        else:
            await ws.ws.send_str('Core.Hello {"client": "x"}')
    await ws.ws.send_bytes(b"next\r\n" if protocol == "telnet" else b"next")
    await conn.wait_for(b"next\r\n")
    elapsed = time.monotonic() - began
    await ws.ws.close()
    await conn.wait_closed()
    dropped = [r for r in caplog.records if r.name == "gateway.ws" and "dropped" in r.getMessage()]
    assert 1 <= len(dropped) <= 10 * (int(elapsed // 10) + 2), len(dropped)


async def test_a_games_ttype_is_costs_no_log_line(joined, caplog):
    """A game's ``IAC SB TTYPE IS ... IAC SE`` (an answer only a client gives) went to
    telnetlib3, which ignores it with a WARNING quoting all of it: up to 64 KiB a line, as
    often as the game sends it (about four bytes of log a byte, as ``repr`` writes them). Now
    the gateway ignores it itself, a debug record of its length."""
    phx, topic, conn = joined
    caplog.set_level("INFO")
    ttype_is = bytes([255, 250, 24, 0]) + b"\x01" * 60_000 + bytes([255, 240])
    conn.send(ttype_is * 20 + b"after\r\n")
    await phx.echo_text(topic, lambda text: "after" in text)
    assert sum(len(r.getMessage()) for r in caplog.records) < 1000, [r.getMessage()[:200] for r in caplog.records]


async def test_joins_refused_by_the_deny_list_write_a_bounded_log(mud, gateway, caplog):
    """A denied address's join was logged at info each time (``join denied``): one socket could
    have the gateway write a line per join frame it sent. Now a kind of refusal
    (logs.log_refusal); every join is still answered ``denied``."""
    from tests.conftest import make_config, new_topic
    from tests.test_deny import deny

    caplog.set_level("INFO", logger="gateway")
    _, connect = await gateway(make_config(mud.port, extra=deny("127.0.0.0/8")))
    began = time.monotonic()
    phx = await connect()
    refs = [await phx.send(new_topic(), "phx_join", {}, join_ref=str(i)) for i in range(300)]
    for ref in refs:
        assert (await phx.reply(ref))["response"]["reason"] == "denied"
    elapsed = time.monotonic() - began
    denied = [r for r in caplog.records if r.getMessage().startswith("join denied")]
    assert 1 <= len(denied) <= 10 * (int(elapsed // 10) + 2), len(denied)
