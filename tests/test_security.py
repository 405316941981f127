"""Threats of docs/security.md that no other test file covers, over real sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest

from tests.conftest import make_config, new_topic, session
from tests.test_auth import SECRET, token
from tests.test_gateway import DO, IAC, SB, SE, WILL, cmd

ROOT = Path(__file__).resolve().parent.parent


async def test_join_cannot_choose_host_or_port(mud, gateway):
    """Open proxy: a join names a configured game, nothing else; other keys are ignored."""
    _, connect = await gateway(make_config(mud.port))
    phx = await connect()
    reply = await phx.join(new_topic(), {"game": "fake", "host": "192.0.2.1", "port": 25})
    assert reply["status"] == "ok", reply
    await mud.next_connection()  # the configured game, not 192.0.2.1:25
    reply = await phx.join(new_topic(), {"game": "192.0.2.1:25"}, join_ref="2")
    assert reply == {"status": "error", "response": {"reason": "unknown game"}}


async def test_game_markup_reaches_the_browser_as_a_string(joined):
    """XSS: the gateway makes no HTML; game text is a JSON string, byte for byte."""
    phx, topic, conn = joined
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">&lt;\u2028'
    conn.send(evil.encode() + b"\r\n")
    frame = await phx.expect(lambda f: f[3] == "echo")
    assert frame[4]["message"] == evil + "\n"


async def test_deeply_nested_frame_is_dropped_and_socket_goes_on(joined):
    """A frame nested over 100 levels (nesting.py) is malformed, not the end of the socket."""
    phx, topic, _ = joined
    await phx.ws.send_str('[null, "9", "phoenix", "heartbeat", ' + "[" * 3000 + "]" * 3000 + "]")
    await phx.ws.send_str("[" * 60000)
    assert (await phx.request("phoenix", "heartbeat", {}, join_ref=None))["status"] == "ok"
    assert (await phx.request(topic, "recv", {"message": "still here"}))["status"] == "ok"


async def test_session_uuid_never_logged_even_on_errors(mud, gateway, caplog):
    """Session hijack: the topic's UUID resumes a session, so no log line carries it."""
    caplog.set_level("DEBUG")
    phx, topic, conn, _ = await session(mud, gateway)
    conn.send(cmd(IAC, WILL, 86))
    await conn.wait_for(cmd(IAC, DO, 86))
    z = zlib.compressobj()
    conn.send(cmd(IAC, SB, 86, IAC, SE) + z.compress(b"hi\r\n") + z.flush(zlib.Z_SYNC_FLUSH) + b"\x00junk" * 8)
    assert (await phx.event(topic, "disconnect"))["reason"] == "compression error"
    lines = [r.getMessage() for r in caplog.records]
    assert any("compression error" in m for m in lines)
    uuid = topic.split(":", 1)[1]
    assert not any(uuid in m for m in lines), [m for m in lines if uuid in m]


def test_tokens_never_reach_the_log(tmp_path):
    """Log leaks: a token in the query (accepted or refused) is not written by the gateway process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"listen: {{port: {port}}}\nlogging: {{level: debug}}\n"
                   f"games:\n  - {{name: one, host: 127.0.0.1, port: 9}}\n"
                   f"security: {{auth: {{required: true, secret: {SECRET}}}}}\n")
    good = token()
    bad = token(secret="wrong-" * 12)
    log = tmp_path / "stderr"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(cfg)], cwd=ROOT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 20
        while "listening on" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        for tok in (good, bad):
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/socket/websocket?vsn=2.0.0&token={tok}",
                headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
            try:
                urllib.request.urlopen(req, timeout=5).close()
                status = 200
            except urllib.error.HTTPError as exc:  # urllib takes 101 Switching Protocols as one
                status = exc.code
            assert (status == 403) == (tok is bad), status
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    text = log.read_text()
    assert "refused token" in text  # the bad one was logged: by its reason
    for tok in (good, bad):
        for part in tok.split("."):
            assert part not in text
    assert json.dumps(SECRET)[1:-1] not in text


@pytest.mark.parametrize("offers, answer", [
    (b";bad\x00name;UTF-8", bytes([2]) + b"UTF-8"),  # a NUL made codecs.lookup raise ValueError
    (b";utf\x00-8", bytes([3])),
    (b";UTF-8\x80", bytes([3])),                     # "UTF-8\ufffd" looks up as UTF-8 but is no name
    (b";UTF-8\x80;utf8", bytes([2]) + b"utf8"),
])
async def test_charset_request_with_hostile_names_is_answered(joined, offers, answer):
    """A malicious game's CHARSET REQUEST still gets ACCEPTED or REJECTED (RFC 2066, SPEC 5)."""
    phx, topic, conn = joined
    conn.send(cmd(IAC, WILL, 42))
    await conn.wait_for(cmd(IAC, DO, 42))
    conn.send(cmd(IAC, SB, 42, 1) + offers + cmd(IAC, SE))
    await conn.wait_for(cmd(IAC, SB, 42) + answer + cmd(IAC, SE))
    conn.send(b"ok\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "ok\n"
