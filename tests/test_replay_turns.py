"""A resuming join's replay goes out a slice a turn of the loop (router.py ``REPLAY_SLICE``), with
the same frames in the same order as when it went out in one callback (SPEC 4.3, 6).

Over real sockets (the in-process gateway, the fake MUD). The bound is shown by counting the
frames the gateway's socket queued between two turns of the loop (a callback armed again each
turn), not by time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.channel import session_key
from gateway.replay import Kept, ReplayBuffer
from gateway import router
from gateway.routes import SESSIONS, SOCKETS
from gateway.session import Session
from gateway.transport.websocket import PhoenixSocket
from tests.conftest import session, until

IAC, WILL, DO, SB, SE = 255, 251, 253, 250, 240
#: The events one callback may frame (router.py's; 1,024 when it was not sliced, for the count).
REPLAY_SLICE = getattr(router, "REPLAY_SLICE", 1024)
EVENTS = 6000  # ~6 slices: a few hundred KB of small GMCP events, well within replay_bytes


def gmcp(i: int) -> bytes:
    return bytes((IAC, SB, 201)) + b"Char.Vitals {\"hp\":%d}" % i + bytes((IAC, SE))


async def filled(mud, gateway, events: int = EVENTS, extra: str = "") -> tuple[Any, str, Any, Any, Session]:
    """A session holding ``events`` GMCP events, its browser gone (it lingers)."""
    phx, topic, conn, connect = await session(mud, gateway, extra=extra)
    conn.send(bytes((IAC, WILL, 201)))
    await conn.wait_for(bytes((IAC, DO, 201)))
    sess = connect.client.server.app[SESSIONS].get(session_key(topic))
    for start in range(0, events, 500):
        conn.send(b"".join(gmcp(i) for i in range(start, min(events, start + 500))))
        await conn.drain()
    await until(lambda: sess.seq == events, what="the game's events are kept")
    await phx.ws.close()
    await until(lambda: sess.viewer is None, what="the session lingers")
    return phx, topic, conn, connect, sess


async def replaying(phx, topic: str, sess: Session) -> Any:
    """``phx`` joins ``topic`` for its whole scrollback: the socket it attached, the replay
    still going out."""
    await phx.send(topic, "phx_join", {"last_seq": 0})
    await until(lambda: sess.viewer is not None, what="the join attached")
    sock = sess.viewer.socket
    assert sock._replays == 1  # the replay is under way
    return sock


async def read_events(phx, topic: str, count: int) -> list[list[Any]]:
    return [await phx.expect(lambda f: f[2] == topic and f[3] == "gmcp") for _ in range(count)]


class TurnCounter:
    """The frames the gateway's sockets queued (``send_many``, called through) between two runs
    of a callback armed again at each turn of the loop: the most of them in one turn."""

    def __init__(self, monkeypatch) -> None:
        self.queued = 0
        self.most = 0
        self._stop = False
        send_many = PhoenixSocket.send_many

        def counting(sock, frames, *args, **kwargs):
            self.queued += len(frames)
            return send_many(sock, frames, *args, **kwargs)

        monkeypatch.setattr(PhoenixSocket, "send_many", counting)
        self._loop = asyncio.get_running_loop()
        self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        self.most = max(self.most, self.queued)
        self.queued = 0
        if not self._stop:
            self._loop.call_soon(self._turn)

    def stop(self) -> None:
        self._stop = True
        self._turn()


async def test_a_replay_is_queued_a_slice_a_turn(mud, gateway, monkeypatch):
    """~6,000 events: before, all their frames were made and queued in the join's callback."""
    _, topic, _, connect, sess = await filled(mud, gateway)
    phx2 = await connect()
    counter = TurnCounter(monkeypatch)
    try:
        reply = await phx2.join(topic, {"last_seq": 0})
        assert reply["response"]["replayed"] == EVENTS
        frames = await read_events(phx2, topic, EVENTS)
    finally:
        counter.stop()
    assert [f[4]["seq"] for f in frames] == list(range(1, EVENTS + 1))
    assert counter.most <= REPLAY_SLICE + 1  # a slice, and the reply with the first one
    await until(lambda: not connect.client.server.app[SOCKETS] or all(
        s._tasks is None for s in connect.client.server.app[SOCKETS]), what="no replay left running")


async def test_the_game_writing_meanwhile_comes_after_the_replay_exactly_once(mud, gateway):
    """The game writes all along while the replay goes out: the reply, every replayed event,
    then the live ones, each seq once, in order; the replayed frames are the ones first sent."""
    phx, topic, conn, connect, sess = await filled(mud, gateway)
    phx2 = await connect()
    writing = True

    async def game() -> None:
        i = EVENTS
        while writing:
            conn.send(gmcp(i))
            i += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(game())
    try:
        ref = await phx2.send(topic, "phx_join", {"last_seq": 0})
        reply = await phx2.reply(ref)
        replayed = reply["response"]["replayed"]
        await read_events(phx2, topic, replayed + 200)
    finally:
        writing = False
        await task
    last = sess.seq
    await until(lambda: phx2.expect(lambda f: f[3] == "gmcp" and f[4]["seq"] == last), what="all live events")
    frames = [f for f in phx2.frames if f[2] == topic]
    assert frames[0][3] == "phx_reply" and frames[0][1] == ref
    seqs = [f[4]["seq"] for f in frames[1:]]
    assert seqs == list(range(1, last + 1))
    assert replayed == EVENTS and last > EVENTS + 200
    # The replay's payloads are the kept ones, unchanged (sent_at included).
    kept = {k.seq: k.payload for k in sess.replay.since(0)[0]}
    assert all(json.loads(kept[f[4]["seq"]]) == f[4] for f in frames[1:EVENTS + 1])


async def test_a_takeover_while_the_replay_goes_out(mud, gateway, monkeypatch):
    """Another socket takes the session over while the first one's replay is under way: the
    first still gets all of its replay, then ``disconnect`` and ``phx_close``, nothing after."""
    _, topic, _, connect, sess = await filled(mud, gateway)
    mid_replay = []
    attach = Session.attach

    def attaching(session, viewer):
        old = session.viewer
        if old is not None and old is not viewer:
            mid_replay.append(getattr(old, "held", None) is not None)
        return attach(session, viewer)

    monkeypatch.setattr(Session, "attach", attaching)
    phx2, phx3 = await connect(), await connect()
    await phx2.send(topic, "phx_join", {"last_seq": 0})
    await until(lambda: sess.viewer is not None, what="the first join attached")
    reply3 = await phx3.join(topic, {"last_seq": 0}, join_ref="3")
    assert reply3["response"]["replayed"] == EVENTS
    close = await phx2.expect(lambda f: f[3] == "phx_close")
    frames = [f for f in phx2.frames if f[2] == topic]
    assert frames[0][3] == "phx_reply"
    assert [f[4]["seq"] for f in frames[1:-2]] == list(range(1, EVENTS + 1))
    assert frames[-2][3] == "disconnect" and frames[-2][4]["reason"] == "taken over"
    assert frames[-1] is close
    assert mid_replay == [True]  # the take-over came while the replay was going out
    assert [f for f in await phx2.barrier() if f[2] == topic] == []
    await read_events(phx3, topic, EVENTS)


async def test_a_socket_gone_during_its_replay_leaves_nothing_behind(mud, gateway):
    _, topic, conn, connect, sess = await filled(mud, gateway)
    app = connect.client.server.app
    phx2 = await connect()
    sock = await replaying(phx2, topic, sess)
    assert sock._tasks
    await phx2.ws.close()
    await until(lambda: sess.viewer is None and sock._tasks is None and sock not in app[SOCKETS],
                what="the socket is done")
    assert sock._replays == 0 and sock._promised == 0
    assert not sess._paused  # it lingers reading its game
    conn.send(gmcp(1))
    await until(lambda: sess.seq == EVENTS + 1, what="the game is read")


async def test_a_slow_consumer_during_its_replay_gets_the_disconnect_next(mud, gateway):
    """SPEC 6: a slow consumer's queued output is dropped, and ``disconnect`` ``"slow consumer"``
    and ``phx_close`` are the next frames written, the game closed, the socket closed. Sealed
    while its replay goes out (what the watchdog's ``slow_consumer`` does): no replayed frame
    after the ``disconnect``, what went out before it a prefix of the replay in order, and the
    replay stops (its task done, nothing still promised to the outbox)."""
    _, topic, conn, connect, sess = await filled(mud, gateway)
    app = connect.client.server.app
    phx2 = await connect()
    sock = await replaying(phx2, topic, sess)
    sealing = asyncio.ensure_future(sock.slow_consumer())
    try:
        close = await phx2.expect(lambda f: f[3] == "phx_close")
        await phx2.close_code()
    finally:
        await sealing
    frames = [f for f in phx2.frames if f[2] == topic]
    assert frames[0][3] == "phx_reply"
    assert frames[-2][3] == "disconnect" and frames[-2][4]["reason"] == "slow consumer"
    assert frames[-1] is close
    seqs = [f[4]["seq"] for f in frames[1:-2]]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < EVENTS
    assert sess.ended and sess.end_reason == "slow consumer"
    await conn.wait_closed()
    await until(lambda: sock._tasks is None and sock not in app[SOCKETS], what="the socket is done")
    assert sock._replays == 0 and sock._promised == 0


async def test_an_upgrade_during_a_replay_carries_the_session(mud, gateway):
    """``restart`` (the upgrade's step for each socket) while a replay goes out: the replay is
    finished, then the 1012 close; the session lingers with its buffer whole (``to_state``)."""
    _, topic, conn, connect, sess = await filled(mud, gateway)
    phx2 = await connect()
    before = sess.replay.to_state()
    sock = await replaying(phx2, topic, sess)
    sess.manager.handing_over = True
    sess.freeze()
    restart = asyncio.ensure_future(sock.restart())
    try:
        await read_events(phx2, topic, EVENTS)  # the whole replay, before the close
        assert (await phx2.close_code()) == 1012
    finally:
        await restart
    await until(lambda: sess.viewer is None, what="the socket let the session go")
    assert sess.linger_deadline is not None and not sess.ended
    after = sess.replay.to_state()
    assert after.kept == before.kept and after.dropped_upto == before.dropped_upto
    seqs = [f[4]["seq"] for f in phx2.frames if f[3] == "gmcp"]
    assert seqs == list(range(1, EVENTS + 1))
    sess.manager.handing_over = False
    sess.thaw()


# -- the slices against the one-callback replay (pure: replay.py) ---------------------------------

def one_callback(buf: ReplayBuffer, last_seq: int) -> tuple[list[Kept], bool]:
    """What the replay was before it went out in slices: every block's events after ``last_seq``."""
    gap = buf.dropped_upto > last_seq
    out: list[Kept] = []
    if gap:
        out = sorted((k for k in buf._state_now().values() if k.seq > last_seq), key=lambda k: k.seq)
    for block in buf._blocks:
        if block.first_seq + len(block.sizes) <= last_seq + 1:
            continue
        out.extend(block.events()[max(block.skip, last_seq + 1 - block.first_seq):])
    return out, gap


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["echo", "gmcp", "option"]), st.integers(1, 300)),
                max_size=400),
       st.integers(100, 20000), st.integers(64, 4096), st.integers(1, 300), st.data())
def test_slices_are_the_one_callback_replay(kinds, max_bytes, block_bytes, most, data):
    buf = ReplayBuffer(max_bytes, block_bytes)
    for seq, (kind, size) in enumerate(kinds, 1):
        key = {"gmcp": f"gmcp:M{seq % 7}", "option": "option"}.get(kind)
        buf.add(Kept(seq, kind, b"x" * size, key))
        if seq % 37 == 0:
            buf.compact()
    last_seq = data.draw(st.integers(0, len(kinds) + 2))
    expected, gap = one_callback(buf, last_seq)
    replay = buf.replay(last_seq)
    chunks = list(replay.chunks(most))
    assert [k for c in chunks for k in c] == expected
    assert all(0 < len(c) <= most for c in chunks)
    assert (replay.count, replay.size, replay.gap) == (len(expected), sum(len(k.payload) for k in expected), gap)
    # Taken while the buffer goes on (events added, dropped, compressed): the same events.
    it = replay.chunks(most)
    head = next(it, [])
    for seq in range(len(kinds) + 1, len(kinds) + 40):
        buf.add(Kept(seq, "echo", b"y" * 50, None))
    buf.compact(seal_open=True)
    assert head + [k for c in it for k in c] == expected
