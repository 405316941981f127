"""SPEC clauses of sections 2 (command line), 6 (sessions), 6.1 (upgrade in place), 7 (HTTP,
not 7.1), 8 (operations) and 9 (MUD Standards WebSocket) that no other test checks exactly:
each test names its clause, with the SPEC section in a comment. Real sockets and real
processes: the ``mud-gateway`` program, an aiohttp gateway, the fake MUD of tests/fakemud.py;
nothing of the gateway's own mocked."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import __version__
from gateway.routes import apply_config
from tests.conftest import Phx, free_port, make_config, new_topic, until
from tests.test_auth import SECRET, token
from tests.test_logs import json_log  # noqa: F401  (the fixture: the gateway's records as JSON)
from tests.test_mudstandards import GMCP, JSON, TELNET, TERMINAL, Ws, open_ws, play
from tests.test_upgrade import start  # noqa: F401  (the fixture: a gateway subprocess)
from tests.upgrade_helpers import ROOT, config_text, playing

IAC, WILL, WONT, DO, DONT, GA = 255, 251, 252, 253, 254, 249
ECHO = 1
SCRIPT = Path(sys.executable).parent / "mud-gateway"


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)


# -- 2 running it -------------------------------------------------------------------------------

def test_console_script_mud_gateway_is_the_command_line(tmp_path):
    # SPEC 2: "Console script mud-gateway (also python -m gateway)": the installed script, not
    # only the module (test_cli.py runs `python -m gateway`), checks a file with exit 0 or 2.
    assert SCRIPT.exists(), SCRIPT
    ok = run([str(SCRIPT), "--check-config", "config/gateway.yaml"])
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("games:\n  - {name: a, host: h, port: 1}\n  - {name: b, host: h, port: x}\n")
    result = run([str(SCRIPT), "--check-config", str(bad)])
    assert result.returncode == 2
    assert "Expected `int`, got `str` - at `$.games[1].port`" in result.stderr


def test_config_given_a_bad_file_prints_check_configs_message_and_exits_2(tmp_path):
    # SPEC 2: "The same message, and exit 2, when --config is given a bad file" (test_cli.py
    # checks the YAML path only).
    bad = tmp_path / "bad.yaml"
    bad.write_text("games:\n  - {name: a, host: h, port: 1}\n  - {name: b, host: h, port: x}\n")
    checked = run([sys.executable, "-m", "gateway", "--check-config", str(bad)])
    served = run([sys.executable, "-m", "gateway", "--config", str(bad)])
    assert (checked.returncode, served.returncode) == (2, 2)
    assert served.stderr == checked.stderr
    assert "Expected `int`, got `str` - at `$.games[1].port`" in served.stderr
    assert served.stdout == ""  # nothing served, no URL printed


def test_demo_serves_on_127_0_0_1_8080_without_port_and_prints_the_url():
    # SPEC 2: --demo "starts the bundled demo game ... on a free loopback port and the gateway on
    # 127.0.0.1:8080 (or --port), and prints the URL to open". (The other tests pass --port.)
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8080))
        except OSError:
            pytest.skip("127.0.0.1:8080 is in use on this machine")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--demo"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = []
        while not lines or not lines[-1].startswith("mud-gateway: open "):
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read()
                if "cannot listen" in err:
                    pytest.skip("127.0.0.1:8080 was taken meanwhile")
                raise AssertionError(f"no URL printed: {lines} {err}")
            lines.append(line.rstrip("\n"))
        assert lines[-1] == "mud-gateway: open http://127.0.0.1:8080/"
        (game,) = [line for line in lines if line.startswith("mud-gateway: demo game on telnet ")]
        host, _, port = game.rpartition(" ")[2].rpartition(":")
        assert host == "127.0.0.1" and 0 < int(port) != 8080
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as s:  # a telnet MUD
            assert s.recv(1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_sigterm_and_sigint_stop_gracefully_telling_every_browser(mud, start, sig):  # noqa: F811
    # SPEC 2 and 6: SIGTERM/SIGINT: "every browser gets disconnect "gateway shutdown", every
    # telnet connection is closed, the process exits 0"; 9.6: a /ws socket gets "SIGTERM: close
    # 1001 gateway shutdown". test_gateway.py and test_mudstandards.py stop an in-process
    # server; test_cli.py signals a process that has no sessions.
    gw = await start(config_text(mud.port, free_port()))
    phx, topic, conn = await playing(gw, mud)
    other = new_topic()
    assert (await phx.join(other, join_ref="2"))["status"] == "ok"
    other_conn = await mud.next_connection()
    ws = Ws(await gw.http.ws_connect(gw.url + "/ws", protocols=(TERMINAL,)))  # 9.6: close 1001
    ws_conn = await mud.next_connection()
    gw.signal(sig)
    for t in (topic, other):
        assert (await phx.event(t, "disconnect"))["reason"] == "gateway shutdown"
        await phx.expect(lambda f, t=t: f[2] == t and f[3] == "phx_close")
    assert await ws.closed() == (1001, "gateway shutdown")
    for c in (conn, other_conn, ws_conn):
        await c.wait_closed()
    assert await asyncio.to_thread(gw.proc.wait, 30) == 0, gw.log()


# -- 6.1 upgrade in place -----------------------------------------------------------------------

async def test_sighup_during_an_upgrade_is_held_and_acted_on(mud, start):  # noqa: F811
    # SPEC 6.1 item 2: "SIGUSR2, SIGTERM, SIGINT and SIGHUP are held across the exec and acted
    # on by the new process" (test_upgrade.py: SIGTERM and a second SIGUSR2). SIGHUP's default
    # action ends a process: one that reached the new image before its handler would be gone.
    gw = await start(config_text(mud.port, free_port()))
    phx, topic, conn = await playing(gw, mud)
    gw.signal()
    await gw.until_note("RELOADING=1")
    gw.signal(signal.SIGHUP)
    await gw.ready()
    await until(lambda: "SIGHUP: config reloaded" in gw.log(), what="the SIGHUP acted on")
    assert gw.proc.poll() is None
    assert (await gw.healthz())["generation"] == 2
    phx2 = await gw.connect()
    assert (await phx2.join(topic))["response"]["resumed"] is True
    assert not conn.eof


async def test_upgrade_command_timed_out_exits_1_and_counters_start_from_zero(mud, start):  # noqa: F811
    # SPEC 6.1 item 7: `mud-gateway upgrade --pid PID [--timeout SECONDS]`: "exit 1 with the
    # reason when the upgrade was ... timed out". Item 3: "Metrics counters start again from
    # zero"; item 7: /healthz "version" is the package version in the new generation too.
    gw = await start(config_text(mud.port, free_port()))
    phx, topic, conn = await playing(gw, mud)
    metrics = await gw.text("/metrics")
    assert 'mud_gateway_joins_total{result="ok"} 1.0' in metrics
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT), "upgrade", "--pid", str(gw.pid), "--timeout", "0", env=gw.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 1, (out, err)
    assert err.startswith(b"mud-gateway upgrade: timed out"), err
    await gw.until_note("RELOADING=1")  # the signal was sent: the upgrade goes on regardless
    await gw.ready()
    assert await gw.healthz() == {"status": "ok", "sessions": 1, "version": __version__, "generation": 2}
    metrics = await gw.text("/metrics")
    assert 'mud_gateway_joins_total{result="ok"}' not in metrics, metrics
    assert 'mud_gateway_sessions{state="lingering"} 1.0' in metrics  # the carried session
    phx2 = await gw.connect()
    assert (await phx2.join(topic))["response"]["resumed"] is True
    metrics = await gw.text("/metrics")
    assert 'mud_gateway_joins_total{result="resumed"} 1.0' in metrics
    assert 'mud_gateway_joins_total{result="ok"}' not in metrics
    assert not conn.eof


async def test_upgrade_carries_sub_and_rate_bucket_and_reads_the_new_games(mud, start):  # noqa: F811
    # SPEC 6.1 item 3: carried: "sub", "the rate-limit bucket" (test_handoff.py: encoded and
    # decoded only); item 4: the new process reads the config's games as a SIGHUP would.
    port = free_port()
    extra = (f"security: {{auth: {{secret: {SECRET}}}}}\n"
             "limits: {input_lines_per_second: 0.001, input_burst: 2}\n")
    gw = await start(config_text(mud.port, port, extra=extra))
    url = gw.url + "/socket/websocket?vsn=2.0.0&token="
    alice = Phx(await gw.http.ws_connect(url + token(sub="alice")))
    topic = new_topic()
    assert (await alice.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    for line in ("one", "two"):  # the burst, spent
        assert await alice.request(topic, "recv", {"message": line}) == {"status": "ok", "response": {}}
    await conn.wait_for(b"two\r\n")
    gw.config_path.write_text(config_text(mud.port, port, extra=extra).replace(
        "games:\n", "games:\n  - {name: added, host: 127.0.0.1, port: 1}\n"))
    await gw.upgrade()
    assert await alice.close_code() == 1012
    async with gw.http.get(gw.url + "/api/games") as r:
        assert [g["name"] for g in (await r.json())["games"]] == ["added", "fake"]
    bob = Phx(await gw.http.ws_connect(url + token(sub="bob")))
    assert await bob.join(topic) == {"status": "error", "response": {"reason": "unauthorized"}}
    alice2 = Phx(await gw.http.ws_connect(url + token(sub="alice")))
    assert (await alice2.join(topic))["response"]["resumed"] is True
    assert await alice2.request(topic, "recv", {"message": "three"}) == {
        "status": "error", "response": {"reason": "rate limited"}}
    assert b"three" not in conn.received and not conn.eof
    # 8: one start and one end line for the session, across the upgrade; the end line's sub
    # and bytes are the whole session's (the two lines were sent by the old process).
    assert await alice2.request(topic, "phx_leave", {}) == {"status": "ok", "response": {}}
    await conn.wait_closed()
    await until(lambda: "session end" in gw.log(), what="the session's end line")
    (started,) = [line for line in gw.log().splitlines() if "session start" in line]
    (ended,) = [line for line in gw.log().splitlines() if "session end" in line]
    assert "sub=alice" in started
    for field in ("game=fake", "ip=127.0.0.1", "sub=alice", "bytes_to_game=10", "reason=left"):  # one, two + CRLF
        assert field in ended, ended


async def test_an_upgrade_abandoned_for_a_yaml_syntax_error_logs_the_problem(mud, start):  # noqa: F811
    # SPEC 6.1 item 1: the check fails, "the upgrade is abandoned and nothing changes; the
    # reason ... is logged" (test_upgrade.py: a type error, whose message is one line). A YAML
    # syntax error's message was several lines and the upgrade kept the last, the bare place
    # "  in gateway.yaml, line 7, column 3", not the problem.
    gw = await start(config_text(mud.port, free_port()))
    phx, topic, conn = await playing(gw, mud)
    gw.config_path.write_text(gw.config_path.read_text() + "limits: {input_burst: 2}\n  - {name: x}\n")
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT), "upgrade", "--pid", str(gw.pid), env=gw.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 1, (out, err)
    said = err.decode()
    assert said.startswith("mud-gateway upgrade: upgrade abandoned: ") and said.count("\n") == 1, said
    assert "Invalid YAML: " in said, said
    assert "did not find expected key" in said and f"{gw.config_path}, line" in said, said
    abandoned = [line for line in gw.log().splitlines() if "upgrade abandoned" in line]
    assert len(abandoned) == 1 and "Invalid YAML: " in abandoned[0] and "did not find expected key" in abandoned[0]
    assert (await gw.healthz())["generation"] == 1
    assert await phx.request(topic, "recv", {"message": "still here"}) == {"status": "ok", "response": {}}
    await conn.wait_for(b"still here\r\n")


# -- 7 HTTP surface -----------------------------------------------------------------------------

async def test_api_games_default_is_the_game_a_nameless_join_goes_to(mud, gateway):
    # SPEC 7: /api/games "default true for the game a join without a name goes to" (3: "first
    # game if none marked"); test_gateway.py lists one game only.
    second = await type(mud)().start()
    try:
        for marked, expected in [("", "fake"), ("\n    default: true", "second")]:
            client, connect = await gateway(make_config(mud.port, games=f"""  - name: second
    host: 127.0.0.1
    port: {second.port}{marked}"""))
            games = (await (await client.get("/api/games")).json())["games"]
            assert {g["name"]: g["default"] for g in games} == {"fake": expected == "fake",
                                                               "second": expected == "second"}
            phx = await connect()
            assert (await phx.join(new_topic()))["response"]["game"] == expected
            await (mud if expected == "fake" else second).next_connection()
            await phx.ws.close()
    finally:
        await second.close()


# -- 9 MUD Standards WebSocket ------------------------------------------------------------------

def upgrade_headers(**extra: str) -> dict[str, str]:
    return {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **extra}


async def test_ws_refusals_come_in_spec_order(mud, gateway):
    # SPEC 9.1: "Before the upgrade, in this order": Origin 403, token 403, no served
    # subprotocol 400, unknown ?game= 404, games claim 403. test_mudstandards.py checks each
    # alone and 404 before the games claim; here each pair that could come the other way.
    client, _ = await gateway(make_config(mud.port, extra=f"security: {{auth: {{required: true, secret: {SECRET}}}}}"))
    good, other = token(), token(games=["other"])
    evil = {"Origin": "https://evil.example"}
    proto = {"Sec-WebSocket-Protocol": TERMINAL}
    cases = [
        ("/ws?token=forged&game=nope", evil, 403),              # Origin first (no token would do)
        ("/ws?token=forged&game=nope", {}, 403),                # then the token, before 400 and 404
        (f"/ws?token={good}&game=nope", {}, 400),               # then the subprotocol, before 404
        (f"/ws?token={good}&game=nope", {**proto, "Sec-WebSocket-Protocol": "phoenix"}, 400),
        (f"/ws?token={other}&game=nope", proto, 404),           # then the game, before its claim
        (f"/ws?token={other}", proto, 403),
    ]
    for path, headers, status in cases:
        resp = await client.get(path, headers=upgrade_headers(**headers))
        assert resp.status == status, (path, headers, resp.status)
    assert mud.connections == []  # nothing dialled for a refused request


async def test_ws_token_present_without_auth_required_is_still_checked(mud, gateway):
    # SPEC 9.1: "the rules of 4.1": without auth.required a token that is present is checked
    # (403 when invalid) when a secret is configured; with no secret, tokens are ignored.
    client, _ = await gateway(make_config(mud.port, extra=f"security: {{auth: {{secret: {SECRET}}}}}"))
    resp = await client.get("/ws?token=forged.token.here", headers=upgrade_headers(**{"Sec-WebSocket-Protocol": TERMINAL}))
    assert resp.status == 403
    ws, _ = await play(mud, client, (TERMINAL,))  # no token: allowed
    await ws.ws.close()
    client, _ = await gateway(make_config(mud.port))
    ws = await open_ws(client, (TERMINAL,), path="/ws?token=forged.token.here")
    await mud.next_connection()
    await ws.ws.close()


async def test_ws_frames_sent_before_the_game_answers_are_applied_in_order(mud, gateway):
    # SPEC 9.1: "frames the client sent meanwhile are applied after the connect, in order":
    # sent at once after the 101, before the game connection is even taken.
    client, _ = await gateway(make_config(mud.port))
    ws = await open_ws(client, (JSON,))
    await ws.ws.send_bytes(b"one")
    await ws.ws.send_str(json.dumps({"proto": "text", "data": "two\nthree"}))
    await ws.ws.send_bytes(b"four\n")
    conn = await mud.next_connection()
    await conn.wait_for(b"four\r\n")
    assert bytes(conn.received).endswith(b"one\r\ntwo\r\nthree\r\nfour\r\n")
    assert b"one" not in bytes(conn.received)[:-len(b"one\r\ntwo\r\nthree\r\nfour\r\n")]
    await ws.ws.close()


@pytest.mark.parametrize("protocol", [TERMINAL, GMCP])
async def test_ws_echo_off_is_not_signalled_under_terminal_and_gmcp_but_answered(mud, gateway, protocol):
    # SPEC 9.3: echo off: "terminal and gmcp: not signalled ...; the gateway still answers the
    # game (DO/DONT ECHO)" (test_mudstandards.py: json's envelope only).
    client, _ = await gateway(make_config(mud.port))
    ws, conn = await play(mud, client, (protocol,))
    conn.send(b"Password: " + bytes([IAC, WILL, ECHO, IAC, GA]))
    await conn.wait_for(bytes([IAC, DO, ECHO]))
    assert await ws.read() == ("binary", b"Password: ")
    await ws.ws.send_bytes(b"hunter2")
    await conn.wait_for(b"hunter2\r\n")
    conn.send(bytes([IAC, WONT, ECHO]) + b"Welcome\r\n")
    await conn.wait_for(bytes([IAC, DONT, ECHO]))
    assert await ws.read() == ("binary", b"Welcome\r\n")  # nothing came for WILL or WONT
    await ws.ws.close()


async def sent_and_closed(mud, gateway, protocol: str, frame: "str | bytes") -> "tuple[int, bytearray]":
    """A /ws session under ``protocol`` sends ``frame`` (BINARY when bytes): the socket's close
    code, and what its game connection received until it closed."""
    client, _ = await gateway(make_config(mud.port))
    ws, conn = await play(mud, client, (protocol,))
    await (ws.ws.send_bytes(frame) if isinstance(frame, bytes) else ws.ws.send_str(frame))
    code = (await ws.closed())[0]
    await conn.wait_closed()
    return code, conn.received


@pytest.mark.parametrize("protocol, frame", [
    (JSON, '{"proto": "text", "data": "look", "id": 5}'),   # id present, not a string
    (JSON, '{"proto": 1, "data": "look"}'),                  # proto not a string
    (JSON, '{"proto": "text", "data": null}'),
    (JSON, b"\xff look"),                                     # BINARY, not UTF-8
    (GMCP, b"caf\xe9"),
])
async def test_ws_bad_input_closes_1007_and_nothing_reaches_the_game(mud, gateway, protocol, frame):
    # SPEC 9.5: "Close 1007: input that is not UTF-8 (terminal, gmcp, json); ... under json a
    # TEXT frame that is not a JSON object with a string proto, a string data (id, when
    # present, a string)" (test_mudstandards.py: the other cases).
    code, received = await sent_and_closed(mud, gateway, protocol, frame)
    assert code == 1007
    assert b"look" not in received and b"caf" not in received


ADMIN_TOKEN = "admin-" + "z" * 40


async def test_ws_kick_without_a_message_sends_no_frame_then_1000_kicked(mud, gateway, monkeypatch):
    # SPEC 9.6: "Admin kick: the message, when not empty, as a BINARY frame <message>\r\n, then
    # close 1000 kicked" (test_mudstandards.py: a kick with a message).
    monkeypatch.setenv("GW_TEST_OPS_ADMIN", ADMIN_TOKEN)
    client, _ = await gateway(make_config(mud.port, extra="admin: {token_env: GW_TEST_OPS_ADMIN}"))
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for body in (None, {"message": ""}):
        ws, conn = await play(mud, client, (TERMINAL,))
        conn.send(b"hi\r\n")
        assert await ws.read() == ("binary", b"hi\r\n")
        (listed,) = (await (await client.get("/admin/sessions", headers=auth)).json())["sessions"]
        resp = await client.post(f"/admin/sessions/{listed['id']}/kick", headers=auth,
                                 **({} if body is None else {"json": body}))
        assert resp.status == 204
        assert await ws.read() == ("close", (1000, "kicked"))  # the next frame: no empty line before
        await conn.wait_closed()


async def test_phoenix_endpoint_never_selects_a_mudstandards_subprotocol(mud, gateway):
    # SPEC 9.6: "/socket/websocket never selects a MUD Standards subprotocol".
    client, connect = await gateway(make_config(mud.port))
    for offered in ([TERMINAL], [TELNET, JSON, GMCP]):
        resp = await client.get("/socket/websocket?vsn=2.0.0",
                                headers=upgrade_headers(**{"Sec-WebSocket-Protocol": ", ".join(offered)}))
        assert resp.status in (101, 400, 403), resp.status
        assert "Sec-WebSocket-Protocol" not in resp.headers, resp.headers
        resp.close()
    assert mud.connections == []


async def test_ws_session_log_records_carry_the_subprotocol_and_never_the_input(mud, gateway, json_log):  # noqa: F811
    # SPEC 9.6: "Logs as section 8 (one start and one end line per session, with the
    # subprotocol; input never logged)"; 8: the JSON fields (test_mudstandards.py: text lines).
    client, _ = await gateway(make_config(mud.port))
    ws, conn = await play(mud, client, (GMCP,))
    conn.send(b"Password: " + bytes([IAC, WILL, ECHO, IAC, GA]))
    assert await ws.read() == ("binary", b"Password: ")
    await ws.ws.send_bytes(b"hunter2-secret")
    await ws.ws.send_str('Char.Login {"password": "gmcp-secret"}')  # dropped: GMCP not enabled
    await conn.wait_for(b"hunter2-secret\r\n")
    await ws.ws.close()
    await conn.wait_closed()
    await until(lambda: any(r.get("event") == "session_end" for r in json_log()), what="the end record")
    records = json_log()
    assert not any("secret" in json.dumps(r) for r in records), records
    # 9.4: the GMCP frame sent before the game enabled GMCP was "dropped (and logged)".
    assert any(r["message"] == "ws 127.0.0.1: input dropped: gmcp not enabled" for r in records), records
    start, end = [r for r in records if r.get("event") in ("session_start", "session_end")]
    assert start["event"] == "session_start" and end["event"] == "session_end"
    for record in (start, end):
        assert (record["game"], record["ip"], record["sub"]) == ("fake", "127.0.0.1", None)
        assert record["subprotocol"] == "gmcp"
        assert {"time", "level", "logger", "message"} <= record.keys()
    assert end["bytes_to_game"] == len(b"hunter2-secret\r\n") and end["bytes_to_browser"] == len(b"Password: ")
    assert isinstance(end["duration_s"], float) and end["reason"] == "left"


async def test_ws_tcp_drop_closes_the_game_at_once_whatever_linger_seconds_says(mud, gateway):
    # SPEC 9.6: "when the WebSocket closes (close frame or TCP drop) the telnet connection is
    # closed at once, whatever linger_seconds says" (test_mudstandards.py: a close frame).
    client, _ = await gateway(make_config(mud.port, extra="sessions: {linger_seconds: 600}"))
    ws, conn = await play(mud, client, (TERMINAL,))
    conn.send(b"x\r\n")
    assert await ws.read() == ("binary", b"x\r\n")
    ws.ws._response.connection.transport.abort()  # no close frame: the TCP connection is reset
    await conn.wait_closed()

    async def no_session() -> bool:
        return (await (await client.get("/healthz")).json())["sessions"] == 0

    await until(no_session, what="no session left")


# -- 2 SIGHUP, for /ws ---------------------------------------------------------------------------

async def test_reload_limits_apply_to_a_ws_socket_opened_before(mud, gateway):
    # SPEC 2: SIGHUP: "the new games, limits and deny list apply at once to every socket,
    # including those opened before the reload" (test_reload.py: Phoenix sockets); 9.5: the
    # input bound and the rate limit of a /ws socket.
    client, _ = await gateway(make_config(mud.port, extra="limits: {input_lines_per_second: 1000, input_burst: 1000}"))
    ws, conn = await play(mud, client, (TERMINAL,))
    await ws.ws.send_bytes(b"a" * 300)
    await conn.wait_for(b"a" * 300 + b"\r\n")
    apply_config(client.server.app, make_config(mud.port, extra="limits: {max_input_bytes: 200}"))
    await ws.ws.send_bytes(b"b" * 300)
    assert (await ws.closed())[0] == 1009
    await conn.wait_closed()
    assert b"bbb" not in conn.received


async def test_reload_removing_a_game_refuses_new_ws_sockets_and_keeps_playing_ones(mud, gateway):
    # SPEC 2: "a removed game takes no new joins; its live sessions go on"; 9.1: ?game= naming
    # no configured game is 404.
    second = await type(mud)().start()
    try:
        client, _ = await gateway(make_config(mud.port, games=f"  - {{name: second, host: 127.0.0.1, port: {second.port}}}"))
        ws = await open_ws(client, (TERMINAL,), path="/ws?game=second")
        conn = await second.next_connection()
        apply_config(client.server.app, make_config(mud.port))
        resp = await client.get("/ws?game=second", headers=upgrade_headers(**{"Sec-WebSocket-Protocol": TERMINAL}))
        assert resp.status == 404
        await ws.ws.send_bytes(b"still playing")
        await conn.wait_for(b"still playing\r\n")
        conn.send(b"yes\r\n")
        assert await ws.read() == ("binary", b"yes\r\n")
        await ws.ws.close()
        assert second.connections == [conn]
    finally:
        await second.close()


async def test_ws_over_max_sessions_closes_1013(mud, gateway):
    # SPEC 9.1: "Over max_sessions or max_sessions_per_ip (a /ws socket is one session and
    # counts with the Phoenix ones): close 1013 too many sessions" (test_mudstandards.py:
    # max_sessions_per_ip).
    client, connect = await gateway(make_config(mud.port, extra="limits: {max_sessions: 1}"))
    phx = await connect()
    assert (await phx.join(new_topic()))["status"] == "ok"
    await mud.next_connection()
    ws = await open_ws(client, (TERMINAL,))
    assert await ws.closed() == (1013, "too many sessions")
    assert mud.unclaimed() == 0


@pytest.mark.parametrize("protocol, frame", [
    (TELNET, b"x" * 5000),
    (JSON, json.dumps({"proto": "text", "data": "x" * 5000})),
    (GMCP, "Core.X " + json.dumps("x" * 5000)),
])
async def test_ws_data_frame_over_max_input_bytes_closes_1009_under_each_subprotocol(mud, gateway, protocol, frame):
    # SPEC 9.5: "a data frame larger than max_input_bytes: close 1009; nothing of it reaches
    # the game" (test_mudstandards.py: terminal).
    code, received = await sent_and_closed(mud, gateway, protocol, frame)
    assert code == 1009
    assert b"xxx" not in received
