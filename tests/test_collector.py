"""The cycle collector's policy (gateway/collector.py, docs/performance.md 1.16).

What survives a full pass is frozen, out of later passes' sight. That is sound only if nothing
a session leaves when it ends needs the collector: here every way SPEC names for a session to
end while the gateway runs is played, over real sockets, with the collector off from the join
to the end. Nothing of the session is left (its game connection holds no reference back to it
once over, nor does the telnet side hold itself: docs/performance.md 1.15), and the collector
then finds no cyclic garbage at all. ("gateway shutdown" is left out: the process is ending.)
"""

from __future__ import annotations

import asyncio
import collections
import gc
import weakref
import zlib

import pytest

from gateway import collector
from gateway.routes import SESSIONS
from gateway.session import Session
from gateway.telnet.client import GameClient, GameWriter
from tests.conftest import make_config, new_topic, until
from tests.test_admin import ADMIN, AUTH, admin_token  # noqa: F401 (a fixture)
from tests.test_mudstandards import open_ws

IAC, WILL, DO, SB, SE, GMCP, MCCP2 = 255, 251, 253, 250, 240, 201, 86


class Thing:
    """A tracked object that can be watched (a weak reference) and put in a cycle."""

    other: object = None


@pytest.fixture
def frozen():
    undo = collector.freeze_survivors()
    yield
    undo()


def test_a_full_pass_freezes_what_survives_it(frozen):
    assert gc.get_freeze_count() > 0  # what was there at the start
    kept = Thing()
    gc.collect(0)
    assert any(o is kept for o in gc.get_objects())  # a young pass freezes nothing
    before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() > before
    assert not any(o is kept for o in gc.get_objects())  # out of the passes' sight
    watch = weakref.ref(kept)
    del kept
    assert watch() is None  # and still freed by reference counting


def test_a_cycle_dropped_before_a_pass_is_collected_not_frozen(frozen):
    for generation in (0, 2):
        a, b = Thing(), Thing()
        a.other, b.other = b, a
        watch = weakref.ref(a)
        del a, b
        gc.collect(generation)
        assert watch() is None


def test_undo_gives_the_collector_everything_back():
    undo = collector.freeze_survivors()
    undo()
    assert gc.get_freeze_count() == 0
    kept = Thing()
    gc.collect()
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects())


def test_the_environment_can_keep_cpythons_own_way(monkeypatch):
    monkeypatch.setenv(collector.ENV, "plain")
    assert collector.configure() == ("plain", None)
    monkeypatch.delenv(collector.ENV)
    name, undo = collector.configure()
    try:
        assert name == "survivors frozen" and gc.get_freeze_count() > 0
    finally:
        undo()


# -- every way a session ends leaves nothing to the collector ---------------------------

ENDS = ["leave", "closed by game", "linger", "taken over", "kicked", "idle", "slow consumer",
        "compression error", "mudstandards"]


async def play_and_end(mud, client, connect, end: str) -> None:
    if end == "mudstandards":
        ws = await open_ws(client)
        conn = await mud.next_connection()
        conn.send(b"You see a door.\r\n")
        assert b"door" in (await ws.ws.receive(timeout=10)).data
        await ws.ws.send_bytes(b"look\n")
        await conn.wait_for(b"look")
        await ws.ws.close()
        await conn.wait_closed()
        return
    phx = await connect()
    topic = new_topic()
    join_ref = "j" * 30000 if end == "slow consumer" else "1"  # each push echoes it
    assert (await phx.join(topic, join_ref=join_ref))["status"] == "ok"
    conn = await mud.next_connection()
    sess = client.app[SESSIONS].get(topic.split(":", 1)[1])
    conn.send(bytes((IAC, WILL, GMCP)))
    await conn.wait_for(bytes((IAC, DO, GMCP)))
    conn.send(b"You see a door.\r\nHP: 10> " + bytes((IAC, SB, GMCP)) + b'Char.Vitals {"hp": 10}'
              + bytes((IAC, SE)))
    await phx.event(topic, "gmcp")
    assert (await phx.request(topic, "recv", {"message": "look"}, join_ref=join_ref))["status"] == "ok"
    await conn.wait_for(b"look\r\n")
    if end == "leave":
        await phx.request(topic, "phx_leave", {}, join_ref=join_ref)
    elif end == "closed by game":
        conn.close()
    elif end == "linger":
        await phx.ws.close()
    elif end == "taken over":  # the first browser's channel ends; the session, at the leave
        other = await connect()
        assert (await other.join(topic))["status"] == "ok"
        assert (await phx.event(topic, "disconnect"))["reason"] == "taken over"
        await other.request(topic, "phx_leave", {})
        await other.ws.close()
    elif end == "kicked":
        sid = (await (await client.get("/admin/sessions", headers=AUTH)).json())["sessions"][0]["id"]
        assert (await client.post(f"/admin/sessions/{sid}/kick", headers=AUTH)).status == 204
    elif end == "slow consumer":
        conn.send((bytes((IAC, SB, GMCP)) + b"Char.Vitals 1" + bytes((IAC, SE))) * 2000)
    elif end == "compression error":
        conn.send(bytes((IAC, WILL, MCCP2)))
        await conn.wait_for(bytes((IAC, DO, MCCP2)))
        z = zlib.compressobj()
        conn.send(bytes((IAC, SB, MCCP2, IAC, SE)) + z.compress(b"hi\r\n") + z.flush(zlib.Z_SYNC_FLUSH)
                  + b"\x00junk" * 8)
    if end not in ("leave", "linger", "taken over"):
        assert (await phx.event(topic, "disconnect"))["reason"] == end
    await conn.wait_closed()
    await until(lambda: sess.ended and sess.client.transport is None, what="the session over")
    if not phx.ws.closed:
        await phx.ws.close()


@pytest.mark.parametrize("end", ENDS)
async def test_an_ended_session_leaves_no_cyclic_garbage(mud, gateway, admin_token, end):  # noqa: F811
    extra = ADMIN + "\nsessions: {linger_seconds: 0.2, idle_timeout_seconds: %s}" % (
        0.3 if end == "idle" else 0)
    client, connect = await gateway(make_config(mud.port, extra=extra))
    # A first session the same way: what is made once per process (a type's first decoder
    # leaves a cycle in msgspec) is made then, not counted as the second's.
    await play_and_end(mud, client, connect, end)
    gc.collect()
    gc.disable()
    try:
        await play_and_end(mud, client, connect, end)
        await asyncio.sleep(0)
        # Freed by their counts: with the collector off, none is left even unreachable.
        assert [o for o in gc.get_objects() if type(o) in (Session, GameClient, GameWriter)] == []
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
        assert not kinds, f"a session that ended by {end!r} left cycles: {kinds.most_common(12)}"
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()
