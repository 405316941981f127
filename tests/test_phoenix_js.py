"""End to end: the official phoenix.js client plays the demo game through the gateway.

Starts ``python -m gateway --demo`` on a free port and runs
``tests/js/play_demo.mjs`` (Node, ``phoenix`` + ``ws`` from npm, installed by
``./dev setup``) against it, then stops the gateway with SIGTERM.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "tests" / "js"
SCRIPT = JS_DIR / "play_demo.mjs"
START_TIMEOUT = 20  # seconds for the gateway to print its URL
NODE_TIMEOUT = 40  # the script gives up by itself after 20 s
STOP_TIMEOUT = 10  # SPEC section 6: graceful stop within 10 seconds


def _pump(stream, lines: list[str], ready: "queue.Queue[str]") -> None:
    """Collect the gateway's stdout (so its pipe never fills) and report the URL line."""
    for line in iter(stream.readline, ""):
        lines.append(line)
        if line.startswith("mud-gateway: open http"):
            ready.put(line)
    ready.put("")  # EOF


def test_phoenix_js_plays_demo(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the phoenix.js end-to-end test needs Node.js")
    if not (JS_DIR / "node_modules" / "phoenix").is_dir() or not (JS_DIR / "node_modules" / "ws").is_dir():
        pytest.fail(f"{JS_DIR / 'node_modules'} is missing (phoenix, ws): run `./dev setup` first")

    port = free_port()
    stderr_path = tmp_path / "gateway.stderr"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(stderr_path, "w") as stderr_file:
        gw = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
        )
    out_lines: list[str] = []
    ready: queue.Queue[str] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(gw.stdout, out_lines, ready), daemon=True)
    pump.start()

    def gateway_output() -> str:
        return f"gateway stdout:\n{''.join(out_lines)}\ngateway stderr:\n{stderr_path.read_text()}"

    try:
        try:
            line = ready.get(timeout=START_TIMEOUT)
        except queue.Empty:
            line = ""
        assert line, f"the gateway did not print its URL within {START_TIMEOUT} s\n{gateway_output()}"
        assert f":{port}/" in line, f"unexpected URL line {line!r}"

        url = f"ws://127.0.0.1:{port}/socket"
        try:
            proc = subprocess.run(
                [node, str(SCRIPT), url],
                cwd=JS_DIR,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=NODE_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"play_demo.mjs did not exit within {NODE_TIMEOUT} s\n"
                f"stdout:\n{exc.stdout}\nstderr:\n{exc.stderr}\n{gateway_output()}"
            )
        assert proc.returncode == 0, (
            f"play_demo.mjs exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n{gateway_output()}"
        )

        gw.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            rc = gw.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the gateway did not exit within {STOP_TIMEOUT} s of SIGTERM\n{gateway_output()}")
        assert rc == 0, (
            f"the gateway exited {rc} after SIGTERM ({time.monotonic() - started:.1f} s)\n{gateway_output()}"
        )
    finally:
        if gw.poll() is None:
            gw.kill()
            gw.wait(timeout=5)
        pump.join(timeout=5)
        if gw.stdout is not None:
            gw.stdout.close()
