"""A session whose game connection is still being dialled, seen by operators (SPEC 7, 9.6).

``SessionManager.start`` admits a session (it counts for the limits) and dials its game;
``_connect`` moves it into the open table once the game answers. Before, such a session
was in no operator view: ``/healthz`` ``sessions``, ``/metrics`` ``sessions{state}`` and
``/admin/sessions`` left it out and a kick of it was 404, so a game slow to answer its
connect (or never answering, until ``connect_timeout``) hid its players from the admin.
Now it shows everywhere a session shows, as ``attached`` (its join, or ``/ws`` socket,
waits for it), and a kick ends it as any kick: the dial is abandoned, the browser is told
(a Phoenix join: ok, then ``disconnect`` ``"kicked"`` with the message, then
``phx_close``; ``/ws``: the message as a BINARY frame, close 1000 ``kicked``), the slot
is freed, the end is logged and counted.

The game's TLS handshake is held by the fake MUD (``slow_mud``, test_session_races.py):
a dialling window as long as each test needs, on asyncio's loop (uvloop cannot hold it).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any, NamedTuple

import pytest

from gateway.routes import SESSIONS
from tests.conftest import EVENTUALLY, Phx, free_port, make_config, new_topic, until
from tests.fakemud import HeldHandshake
from tests.test_admin import ADMIN, AUTH, ISO_UTC, admin_token  # noqa: F401  (a fixture)
from tests.test_mudstandards import TERMINAL, open_ws
from tests.test_open_window import WS_KICKS
from tests.test_session_races import TLS_GAME, assert_counts, key_of, slow_mud  # noqa: F401  (a fixture)
from tests.upgrade_helpers import GatewayProcess, config_text

# The held TLS handshake: asyncio's loop only (both_loops offers it, conftest.py).
pytestmark = [pytest.mark.both_loops, pytest.mark.asyncio(loop_factories=["asyncio"])]


async def listing(client) -> list[dict]:
    resp = await client.get("/admin/sessions", headers=AUTH)
    assert resp.status == 200
    return (await resp.json())["sessions"]


async def kick(client, sid: str, message: str | None = None) -> int:
    body = {} if message is None else {"json": {"message": message}}
    return (await client.post(f"/admin/sessions/{sid}/kick", headers=AUTH, **body)).status


async def healthz(client) -> int:
    return (await (await client.get("/healthz")).json())["sessions"]


async def metrics(client) -> str:
    return await (await client.get("/metrics")).text()


def sessions_metric(attached: int, lingering: int) -> list[str]:
    return [f'mud_gateway_sessions{{state="attached"}} {attached:.1f}',
            f'mud_gateway_sessions{{state="lingering"}} {lingering:.1f}']


async def nothing_stays_with_the_game(slow_mud, held) -> None:
    """The game, let go on with the handshake after the kick, keeps no connection: the
    gateway gave the dial up (no connection, or one it closed)."""
    held.release()
    await held.settled.wait()
    await until(lambda: all(c.eof for c in slow_mud.connections),
                what="no game connection, or one the gateway closed")


def gateway_config(port: int, extra: str = ""):
    return make_config(port, extra=f"{ADMIN}\n{extra}", game_extra=TLS_GAME)


class Dialling(NamedTuple):
    client: Any
    connect: Any
    phx: Phx
    topic: str
    join: str  # the join's ref
    held: HeldHandshake
    listed: dict  # the session's ``/admin/sessions`` entry


async def dialling(slow_mud, gateway, extra: str = "") -> Dialling:
    """A gateway (with ``extra`` YAML), a socket whose join of a new topic waits for its game
    (the handshake held), and the session's one entry in the admin listing."""
    client, connect = await gateway(gateway_config(slow_mud.port, extra))
    phx = await connect()
    topic = new_topic()
    join = await phx.send(topic, "phx_join", {})
    held = await slow_mud.next_held()
    (listed,) = await listing(client)
    return Dialling(client, connect, phx, topic, join, held, listed)


# -- the operator views ----------------------------------------------------------------------

async def test_a_session_being_dialled_is_counted_and_listed_attached(slow_mud, gateway, admin_token):
    """SPEC 7 and 9.6: ``/healthz`` ``sessions``, ``/metrics`` ``sessions{state}`` and
    ``/admin/sessions`` show every session; one whose game is still being dialled (a Phoenix
    join's, a ``/ws`` socket's) is attached: its browser waits for it. Its ``started`` is
    when it was admitted, its bytes 0; its ``id`` and ``started`` stay once the game answers.
    Before: 0 sessions, both gauges 0, an empty listing."""
    client, connect = await gateway(gateway_config(slow_mud.port))
    admitted = int(time.time())  # the listing's ``started`` has whole seconds
    phx = await connect()
    topic = new_topic()
    join = await phx.send(topic, "phx_join", {})
    phx_held = await slow_mud.next_held()
    ws = await open_ws(client, (TERMINAL,))
    ws_held = await slow_mud.next_held()

    assert await healthz(client) == 2
    text = await metrics(client)
    for line in sessions_metric(attached=2, lingering=0):
        assert line in text, line
    listed = await listing(client)
    assert [(s["game"], s["ip"], s["sub"], s["state"], s["bytes_to_browser"], s["bytes_to_game"])
            for s in listed] == [("fake", "127.0.0.1", None, "attached", 0, 0)] * 2
    for s in listed:
        assert ISO_UTC.match(s["started"])
        started = datetime.fromisoformat(s["started"].replace("Z", "+00:00")).timestamp()
        assert admitted <= started <= time.time()
    assert key_of(topic) not in str(listed)

    phx_held.release()
    ws_held.release()
    assert (await phx.reply(join))["status"] == "ok"
    conns = [await slow_mud.next_connection(), await slow_mud.next_connection()]
    for conn in conns:
        conn.send(b"hi\r\n")
    await phx.event(topic, "echo")
    await ws.binary_until(b"hi\r\n")
    after = await listing(client)
    assert sorted((s["id"], s["started"], s["state"]) for s in after) == \
        sorted((s["id"], s["started"], "attached") for s in listed)
    assert await healthz(client) == 2


# -- a kick while dialling: Phoenix -----------------------------------------------------------

@pytest.mark.parametrize("message, detail", [("Time for bed.", "Time for bed."), (None, "")])
async def test_kick_while_dialling_answers_the_join_then_disconnect_kicked(
        slow_mud, gateway, admin_token, caplog, message, detail):
    """SPEC 7: a kick is 204, the browser gets ``disconnect`` ``"kicked"`` with the admin's
    message as ``detail`` (``""`` without one), the game connection is closed (here: the
    dial is abandoned). The join waiting for the game is answered as one whose session
    ended as it opened: ok (nothing to replay), ``disconnect``, ``phx_close``. The session
    is forgotten, its end logged and counted as any kick's (no start line: it never
    started). Before: 404, the join answered only once the game did."""
    caplog.set_level("INFO")
    client, _, phx, topic, join, held, listed = await dialling(slow_mud, gateway)
    manager = client.app[SESSIONS]

    assert await kick(client, listed["id"], message) == 204
    assert await phx.reply(join) == {"status": "ok",
                                     "response": {"game": "fake", "resumed": False, "input_n": 0}}
    disconnect = await phx.event(topic, "disconnect")
    assert (disconnect["reason"], disconnect["detail"]) == ("kicked", detail)
    await phx.event(topic, "phx_close")
    await phx.barrier()
    assert [(f[0], f[1], f[3]) for f in phx.frames if f[2] == topic] == [
        ("1", join, "phx_reply"), ("1", None, "disconnect"), ("1", "1", "phx_close")]

    assert await listing(client) == []
    assert await healthz(client) == 0
    assert_counts(manager, 0)
    assert len(manager) == 0 and not manager.per_ip
    text = await metrics(client)
    assert 'mud_gateway_disconnects_total{reason="kicked"} 1.0' in text
    assert 'mud_gateway_joins_total{result="ok"} 1.0' in text
    for line in sessions_metric(attached=0, lingering=0):
        assert line in text, line
    lines = [r.getMessage() for r in caplog.records]
    assert [m for m in lines if m.startswith("admin kick")] == [
        f"admin kick id={listed['id']} game=fake ip=127.0.0.1 sub=- admin_ip=127.0.0.1"]
    ends = [m for m in lines if m.startswith("session end")]
    assert len(ends) == 1 and ends[0].endswith("reason=kicked"), ends
    assert "bytes_to_browser=0 bytes_to_game=0" in ends[0]
    assert not [m for m in lines if m.startswith("session start")]
    assert await kick(client, listed["id"]) == 404  # gone

    await nothing_stays_with_the_game(slow_mud, held)
    assert await phx.barrier() == []


async def test_kick_while_dialling_tells_every_join_waiting(slow_mud, gateway, admin_token):
    """Two sockets join the same topic while its game is dialled (the second a resume that
    waits for the same connect, docs/sessions.md): a kick tells both the same, each after
    its ok (the second a resume: nothing replayed). One session was listed."""
    client, connect, first, topic, ref_first, held, listed = await dialling(slow_mud, gateway)
    manager = client.app[SESSIONS]
    second = await connect()
    ref_second = await second.send(topic, "phx_join", {}, join_ref="7")
    await until(lambda: manager.connecting(key_of(topic)).waiters == 2, what="both joins wait for the connect")
    assert [s["id"] for s in await listing(client)] == [listed["id"]]

    assert await kick(client, listed["id"], "Both of you.") == 204
    assert await first.reply(ref_first) == {
        "status": "ok", "response": {"game": "fake", "resumed": False, "input_n": 0}}
    assert await second.reply(ref_second) == {
        "status": "ok", "response": {"game": "fake", "resumed": True, "input_n": 0, "replayed": 0, "gap": False}}
    for phx, join_ref in ((first, "1"), (second, "7")):
        disconnect = await phx.event(topic, "disconnect")
        assert (disconnect["reason"], disconnect["detail"]) == ("kicked", "Both of you.")
        close = await phx.event(topic, "phx_close")
        assert close == {}
        assert [f[3] for f in await phx.barrier()] == []
        assert [f[3] for f in phx.frames if f[2] == topic] == ["phx_reply", "disconnect", "phx_close"]
        assert all(f[0] == join_ref for f in phx.frames if f[2] == topic)
    assert await healthz(client) == 0
    assert_counts(manager, 0)
    assert 'mud_gateway_disconnects_total{reason="kicked"} 1.0' in await metrics(client)
    await nothing_stays_with_the_game(slow_mud, held)


# -- a kick while dialling: /ws ---------------------------------------------------------------

@pytest.mark.parametrize("protocol, message, frames", WS_KICKS)
async def test_ws_kick_while_dialling_sends_the_message_and_closes_kicked(
        slow_mud, gateway, admin_token, protocol, message, frames):
    """SPEC 9.6: admin kick: the message, when not empty, as a BINARY frame
    ``<message>\\r\\n``, then close 1000 ``kicked``; the session was listed (``attached``)
    while its game was dialled. Before: not listed, the kick 404."""
    client, _ = await gateway(gateway_config(slow_mud.port))
    manager = client.app[SESSIONS]
    ws = await open_ws(client, (protocol,))
    held = await slow_mud.next_held()
    (listed,) = await listing(client)
    assert listed["state"] == "attached"

    assert await kick(client, listed["id"], message) == 204
    assert await ws.closed() == (1000, "kicked")
    assert ws.frames[:-1] == frames
    assert await healthz(client) == 0
    assert_counts(manager, 0)
    assert 'mud_gateway_disconnects_total{reason="kicked"} 1.0' in await metrics(client)
    await nothing_stays_with_the_game(slow_mud, held)


# -- what the kick frees, and what it does not bring back --------------------------------------

async def test_kick_while_dialling_frees_the_slot(slow_mud, gateway, admin_token):
    """The limits count a session from its admission (4.2: ``"too many sessions"``); a kick
    while it is dialled frees its slot at once: a new session from the same address is
    admitted at the limit. Before: the kick was 404 and the slot stayed taken until the
    game answered or ``connect_timeout``."""
    client, _, phx, topic, join, held, listed = await dialling(
        slow_mud, gateway, "limits: {max_sessions: 1, max_sessions_per_ip: 1}")
    other = new_topic()
    assert await phx.join(other, join_ref="2") == {"status": "error", "response": {"reason": "too many sessions"}}

    assert await kick(client, listed["id"]) == 204
    assert (await phx.reply(join))["status"] == "ok"
    await phx.event(topic, "phx_close")
    await nothing_stays_with_the_game(slow_mud, held)
    again = await phx.send(other, "phx_join", {}, join_ref="3")
    new_held = await slow_mud.next_held()  # admitted: its game is dialled
    new_held.release()
    assert await phx.reply(again) == {"status": "ok",
                                      "response": {"game": "fake", "resumed": False, "input_n": 0}}
    await slow_mud.next_connection()
    assert await healthz(client) == 1


async def test_a_dial_that_completes_after_the_kick_brings_nothing_back(slow_mud, gateway, admin_token):
    """The game answers the connect after the kick (its handshake let go): no session comes
    back (not counted, not listed, nothing more for the browser, no game connection left
    open), and a join of the same topic starts a new session (``resumed: false``, a new
    ``id``, a new dial)."""
    client, _, phx, topic, join, held, listed = await dialling(slow_mud, gateway)
    manager = client.app[SESSIONS]
    assert await kick(client, listed["id"], "Bye.") == 204
    assert (await phx.reply(join))["status"] == "ok"
    await phx.event(topic, "phx_close")

    await nothing_stays_with_the_game(slow_mud, held)
    assert await phx.barrier() == []
    assert await healthz(client) == 0
    assert await listing(client) == []
    assert_counts(manager, 0)
    assert manager.connecting(key_of(topic)) is None and manager.get(key_of(topic)) is None

    rejoin = await phx.send(topic, "phx_join", {}, join_ref="2")
    new_held = await slow_mud.next_held()
    (relisted,) = await listing(client)
    assert relisted["id"] != listed["id"]
    new_held.release()
    assert await phx.reply(rejoin) == {"status": "ok",
                                       "response": {"game": "fake", "resumed": False, "input_n": 0}}
    conn = await slow_mud.next_connection()
    conn.send(b"fresh\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "fresh\n"


# -- an upgrade in place while a game is dialled ------------------------------------------------

async def test_a_session_still_dialled_at_an_upgrade_is_ended_and_counted(tmp_path):
    """SPEC 6.1 item 6: a session whose state cannot be handed over ends before the exec.
    One still being dialled has no game connection to hand over: it is ended (its dial
    given up: the game sees the connection closed) and counted with the upgrade's ended
    sessions, as it was counted in ``/healthz`` before. Before: it went uncounted (``0
    sessions carried, 0 ended``), its half-made connection closed only by the exec."""
    eofs: list[asyncio.Future[bytes]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A TLS game that never answers the handshake: the gateway's dial waits."""
        done = asyncio.get_running_loop().create_future()
        eofs.append(done)
        try:
            done.set_result(await reader.read())  # to the gateway's close
        except ConnectionError as exc:
            done.set_result(repr(exc).encode())
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    game_port = server.sockets[0].getsockname()[1]
    gw = GatewayProcess(tmp_path, config_text(game_port, free_port(), game_extra=TLS_GAME))
    try:
        await gw.ready()
        phx = await gw.connect()
        await phx.send(new_topic(), "phx_join", {})
        await until(lambda: eofs, what="the gateway dials the game")
        assert (await gw.healthz())["sessions"] == 1
        await gw.upgrade()
        assert await phx.close_code() == 1012
        await asyncio.wait_for(eofs[0], EVENTUALLY)  # the dial was given up
        assert (await gw.healthz())["sessions"] == 0
        text = await gw.text("/metrics")
        assert 'mud_gateway_upgrade_sessions_total{result="ended"} 1.0' in text
        assert "0 sessions carried, 1 ended" in gw.log()
    finally:
        await gw.stop()
        server.close()
        await server.wait_closed()
