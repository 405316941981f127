"""SIGHUP (SPEC 2): the reloaded games, limits and deny list apply at once to every socket,
including those opened before the reload; sessions already playing go on."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp

from gateway.routes import apply_config
from tests.conftest import Phx, free_port, make_config, new_topic
from tests.fakemud import FakeMud

ROOT = Path(__file__).resolve().parent.parent


def second_game(port: int) -> str:
    return f"""  - name: second
    host: 127.0.0.1
    port: {port}"""


async def test_socket_opened_before_the_reload_sees_new_games_and_limits(mud, gateway):
    other = await FakeMud().start()
    try:
        client, connect = await gateway(make_config(mud.port))
        phx = await connect()
        topic = new_topic()
        assert (await phx.join(topic))["status"] == "ok"
        conn = await mud.next_connection()
        reply = await phx.join(new_topic(), {"game": "second"}, join_ref="2")
        assert reply["response"]["reason"] == "unknown game"

        apply_config(client.server.app, make_config(
            mud.port, games=second_game(other.port),
            extra="limits: {input_lines_per_second: 0.001, input_burst: 1, max_channels_per_socket: 2}"))

        # A game the reload added: joinable from the socket opened before it.
        assert (await phx.join(new_topic(), {"game": "second"}, join_ref="3"))["status"] == "ok"
        await other.next_connection()
        # Limits: at most 2 channels now, and the session that was playing gets the new rate.
        reply = await phx.join(new_topic(), join_ref="4")
        assert reply["response"]["reason"] == "too many channels"
        assert (await phx.request(topic, "recv", {"message": "one"}))["status"] == "ok"
        reply = await phx.request(topic, "recv", {"message": "two"})
        assert reply["response"]["reason"] == "rate limited"
        await conn.wait_for(b"one\r\n")
    finally:
        await other.close()


async def test_frame_bound_of_the_reload_applies_to_an_open_socket(mud, gateway):
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    big = json.dumps([None, "1", "phoenix", "heartbeat", {"pad": "x" * 5000}])
    await phx.ws.send_str(big)
    assert (await phx.reply("1"))["status"] == "ok"  # under the default 64 KiB
    apply_config(client.server.app, make_config(mud.port, extra="limits: {max_frame_bytes: 2048}"))
    await phx.ws.send_str(big)
    assert await phx.close_code() == 1009


async def test_heartbeat_timeout_of_the_reload_applies_to_an_open_socket(mud, gateway):
    """The sweep reads the live config each round: a socket opened under a 60 s timeout is
    closed (1001) when a reload makes it 0.5 s and it stays silent."""
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    assert (await phx.request("phoenix", "heartbeat", {}, join_ref=None))["status"] == "ok"
    apply_config(client.server.app, make_config(mud.port, extra="limits: {heartbeat_timeout_seconds: 0.5}"))
    assert await phx.close_code() == 1001


async def test_removed_game_takes_no_new_joins_its_sessions_go_on(mud, gateway):
    other = await FakeMud().start()
    try:
        client, connect = await gateway(make_config(mud.port, games=second_game(other.port)))
        phx = await connect()
        topic = new_topic()
        assert (await phx.join(topic, {"game": "second"}))["status"] == "ok"
        conn = await other.next_connection()
        apply_config(client.server.app, make_config(mud.port))
        reply = await phx.join(new_topic(), {"game": "second"}, join_ref="2")
        assert reply["response"]["reason"] == "unknown game"
        conn.send(b"still here\r\n")
        assert (await phx.event(topic, "echo"))["message"] == "still here\n"
    finally:
        await other.close()


async def test_sighup_adds_a_network_to_the_deny_list(mud, tmp_path):
    """The real process and signal: after SIGHUP the next join from the network is denied on a
    socket opened before, while the session that was playing from there goes on."""
    port = free_port()
    cfg = tmp_path / "gateway.yaml"
    base = (f"listen: {{port: {port}}}\n"
            "games:\n"
            f"  - {{name: fake, host: 127.0.0.1, port: {mud.port}}}\n")
    cfg.write_text(base + "security: {trusted_proxies: ['127.0.0.1/32']}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--config", str(cfg), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"open http://" in line
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/socket/websocket?vsn=2.0.0"
            flooder = Phx(await http.ws_connect(url, headers={"X-Forwarded-For": "203.0.113.7"}))
            neighbour = Phx(await http.ws_connect(url, headers={"X-Forwarded-For": "198.51.100.7"}))
            playing = new_topic()
            assert (await flooder.join(playing))["status"] == "ok"
            conn = await mud.next_connection()

            cfg.write_text(base + "security: {trusted_proxies: ['127.0.0.1/32'], deny: [203.0.113.0/24],"
                                  " deny_message: go away}\n")
            proc.send_signal(signal.SIGHUP)
            for _ in range(200):  # the reload is asynchronous: wait for its log line
                err = await asyncio.wait_for(proc.stderr.readline(), 20)
                if b"SIGHUP" in err:
                    break
            assert b"config reloaded" in err, err

            reply = await flooder.join(new_topic(), join_ref="2")
            assert reply == {"status": "error", "response": {"reason": "denied", "detail": "go away"}}
            assert (await neighbour.join(new_topic()))["status"] == "ok"
            # The session that was playing goes on, both ways.
            conn.send(b"you are still here\r\n")
            assert (await flooder.event(playing, "echo"))["message"] == "you are still here\n"
            assert (await flooder.request(playing, "recv", {"message": "look"}))["status"] == "ok"
            await conn.wait_for(b"look\r\n")
            await flooder.ws.close()
            await neighbour.ws.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_reload_of_the_idle_timeout_applies_to_sessions_already_open(mud, gateway):
    """sessions.idle_timeout_seconds from a reload applies at once to the sessions open before
    it, from their last input: turned on (it was 0 when they opened: no clock was set), and
    shortened (their clock was set for the longer one)."""
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    never, longer = new_topic(), new_topic()
    assert (await phx.join(never))["status"] == "ok"
    never_conn = await mud.next_connection()
    apply_config(client.server.app, make_config(mud.port, extra="sessions: {idle_timeout_seconds: 3600}"))
    assert (await phx.join(longer, join_ref="2"))["status"] == "ok"
    longer_conn = await mud.next_connection()
    loop = asyncio.get_running_loop()
    began = loop.time()
    apply_config(client.server.app, make_config(mud.port, extra="sessions: {idle_timeout_seconds: 1}"))
    for conn in (never_conn, longer_conn):
        await conn.wait_closed(timeout=20)
    # (A ceiling only, against "never" and "in an hour": a session opened within the last
    # seconds, idle for 1 s from its last input.)
    assert loop.time() - began < 15
    reasons = {(await phx.event(topic, "disconnect"))["reason"] for topic in (never, longer)}
    assert reasons == {"idle"}
