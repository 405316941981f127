"""Edges of the operator's side (SPEC 2, 3, 7, 8) that the other tests leave out: the command
line's bad values, the config file's, the HTTP surface's answers to what it does not serve.
Real processes and real sockets; nothing of the gateway's own mocked."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path

import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import __version__
from gateway.config import ConfigError, parse_config
from gateway.routes import apply_config
from tests.conftest import free_port, make_config
from tests.test_cli import stderr_until

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)


# -- 2 the command line -------------------------------------------------------------------------

@pytest.mark.parametrize("port", ["70000", "65536", "-1", "http"])
def test_port_outside_0_to_65535_is_a_usage_error_not_another_port(port):
    # SPEC 2: "--demo ... the gateway on 127.0.0.1:8080 (or --port)". --port 70000 listened on
    # 4464 (70000 mod 65536) and said so as if asked for it; -1 got as far as the listen. A
    # port out of range is refused as listen.port is (SPEC 3: 0-65535), before anything starts.
    result = run("--demo", "--port", port)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--port" in result.stderr and "0 to 65535" in result.stderr, result.stderr
    assert result.stdout == ""  # no game started, no URL printed



@pytest.mark.parametrize("args", [[], ["--config", "a.yaml", "--demo"], ["--demo", "--check-config", "a.yaml"],
                                  ["--config"], ["--colour"], ["serve"]])
def test_a_command_line_that_names_no_one_thing_to_do_is_a_usage_error(args):
    # SPEC 2: --config PATH, --demo or --check-config PATH; anything else (none of them, two,
    # a flag without its value, an unknown flag or word) is argparse's usage error: exit 2,
    # the usage on stderr, nothing started.
    result = run(*args)
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    assert result.stderr.startswith("usage: mud-gateway"), result.stderr
    assert result.stdout == ""


def test_version_and_help():
    # The package version (SPEC 7's /healthz "version" is the same), and --help naming the flags
    # and the subcommands; both exit 0.
    result = run("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"mud-gateway {__version__}")
    result = run("--help")
    assert result.returncode == 0
    for flag in ("--config PATH", "--demo", "--check-config PATH", "--port PORT",
                 "mud-gateway token --help", "mud-gateway upgrade --help"):
        assert flag in result.stdout, flag

# -- 7 /metrics -----------------------------------------------------------------------------------

async def test_a_reload_turns_metrics_off_and_on(mud, gateway):
    # SPEC 2: SIGHUP reloads the config file; SPEC 3 `metrics.enabled`: "GET /metrics". The route
    # was added at start or not at all: a reload that turned metrics off went on serving the
    # session counts the admin had just hidden, and one that turned them on served a 404.
    client, _ = await gateway(make_config(mud.port, extra="metrics: {enabled: false}"))
    assert (await client.get("/metrics")).status == 404
    apply_config(client.server.app, make_config(mud.port))
    resp = await client.get("/metrics")
    assert resp.status == 200 and "mud_gateway_sessions" in await resp.text()
    apply_config(client.server.app, make_config(mud.port, extra="metrics: {enabled: false}"))
    assert (await client.get("/metrics")).status == 404


async def test_metric_families_have_the_types_spec_7_names(joined):
    # SPEC 7: sessions{state}, joins_total{result}, bytes_total{direction}, gmcp_messages_total
    # {direction}, telnet_failures_total{reason}, disconnects_total{reason}, event_latency_seconds
    # (histogram). test_metrics.py reads the samples; here each family's type and labels.
    phx, topic, conn = joined[:3]
    client = joined.connect.client
    families = {f.name: f for f in text_string_to_metric_families(await (await client.get("/metrics")).text())}
    expected = {"mud_gateway_sessions": ("gauge", {"state"}),
                "mud_gateway_joins": ("counter", {"result"}),
                "mud_gateway_bytes": ("counter", {"direction"}),
                "mud_gateway_gmcp_messages": ("counter", {"direction"}),
                "mud_gateway_telnet_failures": ("counter", {"reason"}),
                "mud_gateway_disconnects": ("counter", {"reason"}),
                "mud_gateway_event_latency_seconds": ("histogram", set())}
    for name, (kind, labels) in expected.items():
        assert families[name].type == kind, name
        for sample in families[name].samples:
            assert set(sample.labels) - {"le"} <= labels, (name, sample)
    states = {s.labels["state"] for s in families["mud_gateway_sessions"].samples}
    assert states == {"attached", "lingering"}
    directions = {s.labels["direction"] for s in families["mud_gateway_bytes"].samples}
    assert directions == {"to_browser", "to_game"}


# -- 2 SIGHUP: what a reload cannot change --------------------------------------------------------

def serving(args: list[str]) -> subprocess.Popen:
    """``python -m gateway ARGS``, once it printed its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "gateway", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert "open http://" in proc.stdout.readline()
    return proc


def stopped(proc: subprocess.Popen) -> str:
    """SIGTERM ``proc``: its stderr, once it exited 0."""
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return err


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        return json.load(r)


def test_a_reload_that_moves_listen_says_it_is_ignored_and_applies_the_logging(tmp_path):
    # SPEC 2: SIGHUP reloads "without dropping sessions": the listening socket stays. A reload
    # whose file moved `listen` said "config reloaded" and nothing more, as if it had moved
    # (the upgrade in place says it is ignored). `logging` applies at once (docs/operations.md).
    port, other = free_port(), free_port()
    cfg = tmp_path / "gateway.yaml"
    games = "games:\n  - {name: one, host: 127.0.0.1, port: 4000}\n"
    cfg.write_text(f"listen: {{port: {port}}}\n" + games)
    proc = serving(["--config", str(cfg)])
    err = ""
    try:
        cfg.write_text(f"listen: {{port: {other}}}\nlogging: {{format: json}}\n" + games)
        proc.send_signal(signal.SIGHUP)
        err = stderr_until(proc, "listen changed")
        assert healthz(port)["status"] == "ok"  # still where it was
    finally:
        err += stopped(proc)
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    (moved,) = [r for r in records if "listen changed" in r["message"]]
    assert moved["level"] == "warning"
    assert f"to 127.0.0.1:{other}: ignored, still listening on 127.0.0.1:{port}" in moved["message"]
    assert any(r["message"].startswith("stopping") for r in records)  # JSON from the reload on


def test_a_reload_keeps_the_command_lines_port(tmp_path):
    # SPEC 2: `--port` overrides listen.port; a reload of the same file moves nothing, and says
    # nothing of listen (the reloaded config is the file's with --port over it, as at start).
    port = free_port()
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("listen: {port: 1}\ngames:\n  - {name: one, host: 127.0.0.1, port: 4000}\n")
    proc = serving(["--config", str(cfg), "--port", str(port)])
    err = ""
    try:
        proc.send_signal(signal.SIGHUP)
        err = stderr_until(proc, "config reloaded")
        assert healthz(port)["status"] == "ok"
    finally:
        err += stopped(proc)
    assert "listen changed" not in err, err


# -- 8 logs ---------------------------------------------------------------------------------------

def test_json_logs_hold_a_libraries_warning_as_a_record_too(tmp_path):
    # SPEC 8: "With logging.format: json each record is one JSON object". PyJWT warns (Python's
    # warnings module) of an HS256 key shorter than 32 bytes at the first token checked: that
    # went to stderr as two lines of plain text among the JSON ones, where a log store's parser
    # stops. A warning is a record of the log like any other.
    port = free_port()
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"listen: {{port: {port}}}\nlogging: {{format: json}}\n"
                   "security: {auth: {secret: short-key}}\n"
                   "games:\n  - {name: one, host: 127.0.0.1, port: 4000}\n")
    proc = serving(["--config", str(cfg)])
    err = ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # this process's own: of the key the test means
            tok = jwt.encode({"exp": 4102444800}, "short-key", algorithm="HS256")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"GET /socket/websocket?vsn=2.0.0&token={tok} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
            assert s.recv(12) == b"HTTP/1.1 101"  # the token was checked, and good
        err = stderr_until(proc, "HMAC key")
    finally:
        err += stopped(proc)
    lines = [line for line in err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # each line a JSON object
    (warned,) = [r for r in records if "HMAC key" in r["message"]]
    assert warned["level"] == "warning" and "InsecureKeyLengthWarning" in warned["message"]


def test_cannot_listen_is_a_record_of_the_configured_format(tmp_path):
    # SPEC 8: with logging.format: json "each record is one JSON object"; docs/operations.md:
    # a gateway that cannot listen exits 1 (and systemd restarts it), "the reason is in the
    # journal". The reason was printed as plain text, the one line a JSON reader skips.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "gateway.yaml"
        cfg.write_text(f"listen: {{port: {port}}}\nlogging: {{format: json}}\n"
                       "games:\n  - {name: one, host: 127.0.0.1, port: 4000}\n")
        result = run("--config", str(cfg))
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    (failed,) = [r for r in records if "cannot listen" in r["message"]]
    assert failed["level"] == "error" and f"127.0.0.1:{port}" in failed["message"]
    assert result.stdout == ""


def test_a_variable_the_config_names_but_the_environment_lacks_is_logged(tmp_path):
    # SPEC 3: `secret_env: NAME` reads the key from the environment; `admin.token_env`: "unset:
    # no admin API". With `required: true` and the variable unset, every socket was refused
    # 403 and nothing but the refusals (10 in 10 s) said why; a misnamed admin variable left
    # the admin API 404 without a word. Both are said at start, and again at a reload.
    port = free_port()
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"listen: {{port: {port}}}\n"
                   "security: {auth: {required: true, secret_env: GW_TEST_OPS_NO_SUCH_SECRET}}\n"
                   "admin: {token_env: GW_TEST_OPS_NO_SUCH_TOKEN}\n"
                   "games:\n  - {name: one, host: 127.0.0.1, port: 4000}\n")
    proc = serving(["--config", str(cfg)])
    err = ""
    try:
        err = stderr_until(proc, "GW_TEST_OPS_NO_SUCH_TOKEN")
        proc.send_signal(signal.SIGHUP)
        reloaded = stderr_until(proc, "config reloaded")
        if "GW_TEST_OPS_NO_SUCH_TOKEN" not in reloaded.partition("config reloaded")[2]:
            reloaded += stderr_until(proc, "GW_TEST_OPS_NO_SUCH_TOKEN")
        err += reloaded
    finally:
        err += stopped(proc)
    secret = [line for line in err.splitlines() if "GW_TEST_OPS_NO_SUCH_SECRET" in line]
    admin = [line for line in err.splitlines() if "GW_TEST_OPS_NO_SUCH_TOKEN" in line]
    assert len(secret) == len(admin) == 2, err
    assert all(" WARNING " in line and "every socket is refused" in line for line in secret), secret
    assert all(" WARNING " in line and "no admin API (404)" in line for line in admin), admin


# -- 3 a bad value of each key: its path -----------------------------------------------------------

GAME = "games: [{name: g, host: h, port: 1%s}]\n"
BAD_VALUES = [  # (YAML, the end of the message: msgspec's problem, then the key's path)
    (GAME % ", prompt_flush_ms: 60001", "<= 60000 - at `$.games[0].prompt_flush_ms`"),
    (GAME % ", prompt_flush_ms: -1", ">= 0 - at `$.games[0].prompt_flush_ms`"),
    (GAME % ", gmcp_supports: ['Char 1', 'Room one']", "- at `$.games[0].gmcp_supports[1]`"),
    (GAME % ", gmcp_supports: Char", "Expected `array`, got `str` - at `$.games[0].gmcp_supports`"),
    (GAME % ", tls: maybe", "Expected `bool`, got `str` - at `$.games[0].tls`"),
    (GAME % ", mxp: 1", "Expected `bool`, got `int` - at `$.games[0].mxp`"),
    (GAME % ", host: ''", "Expected `str` of length >= 1 - at `$.games[0].host`"),
    (GAME % ", title: 5", "Expected `str | null`, got `int` - at `$.games[0].title`"),
    (GAME % "" + "listen: {host: ''}", "- at `$.listen.host`"),
    (GAME % "" + "listen: {port: -1}", ">= 0 - at `$.listen.port`"),
    (GAME % "" + "sessions: {replay_bytes: -1}", ">= 0 - at `$.sessions.replay_bytes`"),
    (GAME % "" + "sessions: {idle_timeout_seconds: -5}", ">= 0.0 - at `$.sessions.idle_timeout_seconds`"),
    (GAME % "" + "security: {auth: {max_age_seconds: 0}}", ">= 1 - at `$.security.auth.max_age_seconds`"),
    (GAME % "" + "security: {deny_message: 5}", "Expected `str`, got `int` - at `$.security.deny_message`"),
    (GAME % "" + "limits: {max_frame_bytes: 1023}", ">= 1024 - at `$.limits.max_frame_bytes`"),
    (GAME % "" + "limits: {max_input_bytes: 0}", ">= 1 - at `$.limits.max_input_bytes`"),
    (GAME % "" + "limits: {input_lines_per_second: 0}", "> 0.0 - at `$.limits.input_lines_per_second`"),
    (GAME % "" + "limits: {input_burst: 0}", ">= 1 - at `$.limits.input_burst`"),
    (GAME % "" + "limits: {heartbeat_timeout_seconds: 0}", "> 0.0 - at `$.limits.heartbeat_timeout_seconds`"),
    (GAME % "" + "limits: {slow_consumer_seconds: 0}", "> 0.0 - at `$.limits.slow_consumer_seconds`"),
    (GAME % "" + "limits: {max_channels_per_socket: 0}", ">= 1 - at `$.limits.max_channels_per_socket`"),
    (GAME % "" + "mudstandards: {subprotocols: [terminal, ssh]}", "- at `$.mudstandards.subprotocols[1]`"),
    (GAME % "" + "mudstandards: {subprotocols: [json, json]}",
     "Duplicate subprotocol `json` - at `$.mudstandards.subprotocols[1]`"),
    (GAME % "" + "metrics: {enabled: yes please}", "Expected `bool`, got `str` - at `$.metrics.enabled`"),
    (GAME % "" + "logging: {format: xml}", "- at `$.logging.format`"),
    (GAME % "" + "logging: {level: DEBUG}", "- at `$.logging.level`"),
]


@pytest.mark.parametrize("text, expected", BAD_VALUES, ids=[e.rpartition("`$.")[2].rstrip("`") for _, e in BAD_VALUES])
def test_a_bad_value_of_each_key_is_named_by_its_path(tmp_path, text, expected):
    # SPEC 3's keys that tests/test_config.py's table leaves out; SPEC 2: the problem "with its
    # YAML path (msgspec's form is fine)", the same from --check-config and --config. Parsed
    # here; the command line's message is the same one (test_cli.py).
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value).endswith(expected), str(info.value)


# -- 7 the HTTP surface: content types, methods ----------------------------------------------------

async def test_endpoints_content_types_and_methods_they_do_not_serve(mud, gateway, monkeypatch):
    # SPEC 7: /healthz, /api/games and /admin/sessions answer JSON, /metrics "Prometheus text
    # format"; a method an endpoint does not serve is 405 with its Allow, and changes nothing.
    monkeypatch.setenv("GW_TEST_OPS_ADMIN_TOKEN", "t" * 40)
    client, _ = await gateway(make_config(mud.port, extra="admin: {token_env: GW_TEST_OPS_ADMIN_TOKEN}"))
    auth = {"Authorization": "Bearer " + "t" * 40}
    for path, headers, kind in [("/healthz", {}, "application/json"), ("/api/games", {}, "application/json"),
                                ("/admin/sessions", auth, "application/json"), ("/metrics", {}, "text/plain")]:
        resp = await client.get(path, headers=headers)
        assert resp.status == 200 and resp.content_type == kind, (path, resp.status, resp.content_type)
        head = await client.head(path, headers=headers)
        assert head.status == 200 and await head.read() == b"", path
        for method in ("POST", "PUT", "DELETE"):
            resp = await client.request(method, path, headers=headers, data=b"{}")
            assert resp.status == 405 and resp.headers["Allow"] == "GET,HEAD", (method, path)
    assert resp.headers["Content-Type"].startswith("text/plain")
    metrics = await (await client.get("/metrics")).text()
    assert metrics.startswith("# HELP mud_gateway_") and "# TYPE mud_gateway_sessions gauge" in metrics
    resp = await client.get("/admin/sessions/x/kick", headers=auth)
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
    assert mud.connections == []


def test_a_body_that_does_not_decode_logs_no_error(tmp_path):
    # docs/security.md: what a client can make the gateway log is bounded. A request whose body
    # is not in the Content-Encoding it names (junk said to be gzip), to any path, got its
    # answer (405, 404) and then an ERROR with a ~2 KB traceback, "Unhandled exception": aiohttp
    # reads the unread body after the answer and fails. A client's malformed request is logged
    # at debug, as aiohttp's other parse errors are (logs.ClientErrorsAtDebug).
    port = free_port()
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"listen: {{port: {port}}}\nlogging: {{format: json}}\n"
                   "games:\n  - {name: one, host: 127.0.0.1, port: 4000}\n")
    proc = serving(["--config", str(cfg)])
    err = ""
    try:
        for path, status in [("/api/games", 405), ("/healthz", 405), ("/nope", 404), ("/client/main.js", 405)]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                          "Content-Length: 4\r\n\r\njunk".encode())
                assert s.recv(12) == f"HTTP/1.1 {status}".encode(), path
                try:
                    while s.recv(65536):  # until the gateway is done with the connection
                        pass
                except ConnectionResetError:
                    pass
        assert healthz(port)["status"] == "ok"
    finally:
        err += stopped(proc)
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert not [r for r in records if r["level"] == "error"], records


# -- 3 a key written twice --------------------------------------------------------------------------

def test_a_key_written_twice_is_refused_by_check_config_the_server_and_a_reload(tmp_path):
    # SPEC 3 (YAML): a mapping's keys are unique. PyYAML keeps the last and said nothing: a
    # second `security:` block, written for `deny`, dropped the first's `auth.required` and the
    # gateway took players without tokens, --check-config "ok". It is a problem with its path
    # (SPEC 2): --check-config and --config exit 2, a reload keeps the running config.
    port = free_port()
    cfg = tmp_path / "gateway.yaml"
    good = f"listen: {{port: {port}}}\ngames:\n  - {{name: one, host: 127.0.0.1, port: 4000}}\n"
    twice = (f"listen: {{port: {port}}}\n"
             "security: {auth: {required: true, secret: a-secret-of-thirty-two-bytes-or-more}}\n"
             "games:\n  - {name: one, host: 127.0.0.1, port: 4000, port: 4001}\n"
             "security: {deny: [203.0.113.0/24]}\n")
    problem = "Duplicate key `security` (line 5, first at line 2) - at `$.security`"
    cfg.write_text(twice)
    for option in ("--check-config", "--config"):
        refused = run(option, str(cfg))
        assert refused.returncode == 2 and refused.stderr == f"mud-gateway: {cfg}: {problem}\n", refused
    cfg.write_text(twice.replace("security: {deny: [203.0.113.0/24]}\n", ""))
    assert run("--check-config", str(cfg)).stderr.endswith(
        "Duplicate key `port` (line 4, first at line 4) - at `$.games[0].port`\n")  # in a flow mapping too
    cfg.write_text(good)
    proc = serving(["--config", str(cfg)])
    err = ""
    try:
        err = stderr_until(proc, "listening on")
        cfg.write_text(twice)
        proc.send_signal(signal.SIGHUP)
        err += stderr_until(proc, "config not reloaded")
    finally:
        err += stopped(proc)
    assert f"SIGHUP: config not reloaded: {problem}" in err, err
