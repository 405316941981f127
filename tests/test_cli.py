"""The command line (SPEC 2), run as a real process."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway import collector, jsonstring
from tests.conftest import free_port
from tests.fakemud import EVENTUALLY

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)


def stderr_until(proc: subprocess.Popen, needle: str, timeout: float = EVENTUALLY) -> str:
    """What ``proc`` wrote to stderr, read until ``needle`` is in it (``timeout``: a ceiling)."""
    fd, text = proc.stderr.fileno(), ""
    deadline = time.monotonic() + timeout
    while needle not in text:
        remaining = deadline - time.monotonic()
        assert remaining > 0 and select.select([fd], [], [], remaining)[0], f"no {needle!r} on stderr: {text}"
        data = os.read(fd, 65536)
        assert data, f"stderr ended before {needle!r}: {text}"
        text += data.decode(errors="replace")
    return text


def test_check_config_ok_and_bad(tmp_path):
    assert run("--check-config", "config/gateway.yaml").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("games:\n  - {name: a, host: h, port: 1}\n  - {name: b, host: h, port: x}\n")
    result = run("--check-config", str(bad))
    assert result.returncode == 2
    assert "Expected `int`, got `str` - at `$.games[1].port`" in result.stderr
    result = run("--config", str(bad))
    assert result.returncode == 2
    assert "$.games[1].port" in result.stderr
    assert run("--check-config", str(tmp_path / "missing.yaml")).returncode == 2


def test_sighup_reloads_and_sigterm_stops(tmp_path):
    port = free_port()
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"listen: {{port: {port}}}\ngames:\n  - {{name: one, host: 127.0.0.1, port: 4000}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "open http://" in proc.stdout.readline()

        def games() -> list[str]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/games", timeout=5) as r:
                return [g["name"] for g in json.load(r)["games"]]

        def wait_for(names: list[str]) -> None:
            deadline = time.monotonic() + EVENTUALLY
            while games() != names:
                assert time.monotonic() < deadline, games()
                time.sleep(0.05)

        assert games() == ["one"]
        cfg.write_text(cfg.read_text() + "  - {name: two, host: 127.0.0.1, port: 4001}\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(["one", "two"])
        # A bad file is not applied: the old config stays.
        cfg.write_text("games: []\n")
        proc.send_signal(signal.SIGHUP)
        stderr_until(proc, "config not reloaded")  # the reload was tried, and refused
        assert games() == ["one", "two"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def test_systemd_notify_ready(tmp_path):
    """Type=notify: READY=1 once listening, STOPPING=1 on SIGTERM."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": path}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--demo", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert sock.recv(256) == b"READY=1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert json.load(r)["status"] == "ok"   # listening by the time READY=1 is sent
        proc.send_signal(signal.SIGTERM)
        assert sock.recv(256) == b"STOPPING=1"
        assert proc.wait(timeout=10) == 0
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("gc_env, gc_policy", [(None, "survivors frozen"), ("plain", "plain")])
def test_json_logs(tmp_path, gc_env, gc_policy):
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"listen: {{port: {free_port()}}}\nlogging: {{format: json, level: info}}\n"
                   "games:\n  - {name: one, host: 127.0.0.1, port: 4000}\n")
    env = {k: v for k, v in os.environ.items() if k != collector.ENV}
    if gc_env is not None:
        env[collector.ENV] = gc_env
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(cfg)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "open http://" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        records = [json.loads(line) for line in proc.stderr.read().splitlines() if line.strip()]
        assert any("listening on" in r["message"] for r in records)
        # Which game text escaper runs is said at start (the C one where the install compiled it).
        escaper = "C" if jsonstring.COMPILED else "Python fallback"
        assert any(f"game text escaper: {escaper}" in r["message"] for r in records)
        # And how the cycle collector is used (gateway/collector.py; MUD_GATEWAY_GC=plain: CPython's way).
        assert any(f"cycle collector: {gc_policy})" in r["message"] for r in records)
        assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def test_sigint_stops_gracefully_too():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--demo", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        while "open http://" not in proc.stdout.readline():
            pass
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
