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

import aiohttp
import pytest

from gateway import __version__
from tests.conftest import Phx, free_port, make_config, new_topic, until
from tests.test_auth import SECRET, open_socket, token
from tests.test_logs import json_log  # noqa: F401  (the fixture: the gateway's records as JSON)
from tests.test_mudstandards import GMCP, JSON, TELNET, TERMINAL, Ws, open_ws, play
from tests.test_upgrade import start  # noqa: F401  (the fixture: a gateway subprocess)
from tests.upgrade_helpers import ROOT, GatewayProcess, config_text, playing

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
    # telnet connection is closed, the process exits 0". test_gateway.py stops an in-process
    # server; test_cli.py signals a process that has no sessions.
    gw = await start(config_text(mud.port, free_port()))
    phx, topic, conn = await playing(gw, mud)
    other = new_topic()
    assert (await phx.join(other, join_ref="2"))["status"] == "ok"
    other_conn = await mud.next_connection()
    gw.signal(sig)
    for t in (topic, other):
        assert (await phx.event(t, "disconnect"))["reason"] == "gateway shutdown"
        await phx.expect(lambda f, t=t: f[2] == t and f[3] == "phx_close")
    await conn.wait_closed()
    await other_conn.wait_closed()
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
