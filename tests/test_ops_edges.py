"""Edges of the operator's side (SPEC 2, 3, 7, 8) that the other tests leave out: the command
line's bad values, the config file's, the HTTP surface's answers to what it does not serve.
Real processes and real sockets; nothing of the gateway's own mocked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
