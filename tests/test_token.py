"""``mud-gateway token`` (run as a real process): its tokens are accepted by a running gateway."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.auth import verify
from gateway.config import load_config
from tests.conftest import Phx, new_topic
from tests.test_auth import SECRET

ROOT = Path(__file__).resolve().parent.parent


def token_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", "token", *args], capture_output=True,
                          text=True, timeout=30, cwd=ROOT, env=env)


def write_config(tmp_path: Path, mud_port: int, auth: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"""
games:
  - {{name: fake, host: 127.0.0.1, port: {mud_port}}}
  - {{name: other, host: 127.0.0.1, port: {mud_port}}}
security:
  auth: {{required: true, {auth}}}
""")
    return path


async def test_token_command_mints_a_token_the_gateway_accepts(tmp_path, mud, gateway):
    path = write_config(tmp_path, mud.port, f"secret: {SECRET}")
    result = token_command("--sub", "alice", "--games", "fake", "--ttl", "600", "--config", str(path))
    assert result.returncode == 0, result.stderr
    tok = result.stdout.strip()
    claims = verify(tok, SECRET, 86400)
    assert claims["sub"] == "alice" and claims["games"] == ["fake"]
    assert claims["exp"] - claims["iat"] == 600

    client, _ = await gateway(load_config(path))
    phx = Phx(await client.ws_connect(f"/socket/websocket?vsn=2.0.0&token={tok}"))
    assert (await phx.join(new_topic(), {"game": "fake"}))["status"] == "ok"
    await mud.next_connection()
    # The games claim is honoured: the same token may not join the other game.
    assert (await phx.join(new_topic(), {"game": "other"}, join_ref="2")) == {
        "status": "error", "response": {"reason": "unauthorized"}}


async def test_token_command_reads_secret_env(tmp_path, mud, gateway, monkeypatch):
    path = write_config(tmp_path, mud.port, "secret_env: MUD_GATEWAY_TEST_SECRET")
    env = dict(os.environ, MUD_GATEWAY_TEST_SECRET=SECRET)
    result = token_command("--config", str(path), env=env)
    assert result.returncode == 0, result.stderr
    claims = verify(result.stdout.strip(), SECRET, 86400)
    assert "sub" not in claims and "games" not in claims  # both optional

    monkeypatch.setenv("MUD_GATEWAY_TEST_SECRET", SECRET)
    client, _ = await gateway(load_config(path))
    phx = Phx(await client.ws_connect(f"/socket/websocket?vsn=2.0.0&token={result.stdout.strip()}"))
    assert (await phx.join(new_topic()))["status"] == "ok"


def test_token_command_without_secret_is_an_error(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("games:\n  - {name: fake, host: 127.0.0.1, port: 4000}\n")
    result = token_command("--sub", "alice", "--config", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no secret configured" in result.stderr

    path.write_text("games:\n  - {name: fake, host: 127.0.0.1, port: 4000}\n"
                    "security: {auth: {secret_env: MUD_GATEWAY_UNSET_SECRET}}\n")
    env = {k: v for k, v in os.environ.items() if k != "MUD_GATEWAY_UNSET_SECRET"}
    result = token_command("--config", str(path), env=env)
    assert result.returncode == 1 and result.stdout == ""
    assert "MUD_GATEWAY_UNSET_SECRET" in result.stderr


def test_token_command_refuses_unknown_games_and_bad_ttl(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(f"games:\n  - {{name: fake, host: 127.0.0.1, port: 4000}}\n"
                    f"security: {{auth: {{secret: {SECRET}}}}}\n")
    result = token_command("--games", "fake,nope", "--config", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert "unknown game(s) nope" in result.stderr
    result = token_command("--ttl", "0", "--config", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert "--ttl" in result.stderr
