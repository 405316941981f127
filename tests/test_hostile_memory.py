"""What a hostile socket can make the gateway hold once it has joined (docs/security.md, "One
budget"): measured over real sockets, with tracemalloc (what the gateway's own code allocated and
still holds), never timed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc

import pytest

from gateway.routes import SESSIONS, SOCKETS
from gateway.transport.websocket import PhoenixSocket, outbox_limit
from tests.conftest import Phx, make_config, new_topic, until

IAC, SB, SE, WILL, WONT, DO, GA = 255, 250, 240, 251, 252, 253, 249
ECHO, GMCP = 1, 201
#: Only what was allocated with a frame of the gateway's code on the stack (not the test's client).
_GATEWAY = [tracemalloc.Filter(True, "*/gateway/*", all_frames=True)]


def _held() -> int:
    gc.collect()
    return sum(t.size for t in tracemalloc.take_snapshot().filter_traces(_GATEWAY).traces)


async def _four_channels_playing(mud, connect, join_ref: str) -> "tuple[int, Phx]":
    """A socket joining four topics with ``join_ref``, each game sending a line, a prompt, a GMCP
    message and WILL/WONT ECHO (a push of each event name), all read by the browser: what the
    gateway holds for it, in bytes (its sessions' included), and the socket (left open)."""
    before = _held()
    phx = await connect()
    topics = [new_topic() for _ in range(4)]
    for i, topic in enumerate(topics):
        await phx.ws.send_str(json.dumps([join_ref, str(i), topic, "phx_join", {"game": "fake"}]))
        assert (await phx.reply(str(i)))["status"] == "ok"
        conn = await mud.next_connection()
        conn.send(bytes((IAC, WILL, GMCP)))
        await conn.wait_for(bytes((IAC, DO, GMCP)))
        conn.send(b"hello\r\n> " + bytes((IAC, GA, IAC, SB, GMCP)) + b'Char.Vitals {"hp":1}'
                  + bytes((IAC, SE, IAC, WILL, ECHO, IAC, WONT, ECHO)) + b"end\r\n")
        for name in ("prompt", "gmcp", "option"):
            await phx.event(topic, name)
        assert await phx.echo_text(topic, lambda t: t.endswith("end\n"))
    return _held() - before, phx


async def test_a_channel_with_a_long_join_ref_holds_it_once_not_once_an_event_name(mud, gateway):
    """Pushes carry the channel's join_ref (SPEC 4.3), the browser's choice, up to a frame. A
    channel kept the bytes before the payload once per event name, join_ref included: four
    channels of a 60 KB join_ref held ~1.2 MB a socket (four to five copies of each), against
    ~26 KB with phoenix.js's. A head that long is not kept: the socket holds its join_refs,
    about what it sent, and every push still carries the join_ref."""
    _, connect = await gateway(make_config(mud.port))
    tracemalloc.start(8)
    try:
        quiet, _ = await _four_channels_playing(mud, connect, "1")
        join_ref = "J" * 60_000
        hostile, phx = await _four_channels_playing(mud, connect, join_ref)
    finally:
        tracemalloc.stop()
    assert quiet < 4 * 32 * 1024, quiet
    # Four join_refs as decoded (60 KB each), little more: not one copy an event name.
    assert hostile - quiet < 4 * len(join_ref) * 3 // 2, (hostile, quiet)
    pushes = [f for f in phx.frames if f[3] in ("echo", "prompt", "gmcp", "option")]
    assert len({f[2] for f in pushes}) == 4 and all(f[0] == join_ref for f in pushes)


@pytest.mark.parametrize("vsn", ["2.0.0", "1.0.0"])
async def test_a_read_of_many_events_to_a_long_join_ref_is_framed_only_up_to_the_outbox_bound(mud, gateway, vsn):
    """Each push carries the join_ref, so a game read of many events to a channel of a 60 KB
    join_ref is that many 60 KB frames: they were all made, then found over the outbox bound
    (1,000 GMCP messages: ~60 MB at once). They are made only until they pass it; the browser
    is a slow consumer as before (SPEC 6: ``disconnect``, then the close)."""
    config = make_config(mud.port)
    _, connect = await gateway(config)
    phx = await connect(vsn=vsn)
    topic = new_topic()
    join_ref = "J" * 60_000
    await phx.ws.send_str(phx.encode(join_ref, "1", topic, "phx_join", {"game": "fake"}))
    assert (await phx.reply("1"))["status"] == "ok"
    conn = await mud.next_connection()
    conn.send(bytes((IAC, WILL, GMCP)))
    await conn.wait_for(bytes((IAC, DO, GMCP)))
    tracemalloc.start(1)
    try:
        base = tracemalloc.get_traced_memory()[0]
        conn.send(b"".join(bytes((IAC, SB, GMCP)) + b'Char.Vitals {"hp":%d}' % i + bytes((IAC, SE))
                           for i in range(1000)))  # one read: one step of the stream
        disconnect = await phx.event(topic, "disconnect")
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert disconnect["reason"] == "slow consumer"
    # The outbox's bound and a frame, and what the read is: ~11 MB for V2; ~16.5 MB for V1, whose
    # frames msgspec encodes into buffers up to half as large again as what they hold (before:
    # 1,000 frames, 60 and 90 MB).
    assert peak < 2 * outbox_limit(config), peak


async def test_the_sweep_keeps_no_closed_socket(mud, gateway):
    """The once-a-second sweep (websocket.py ``watch``) kept the last socket it looked at in its
    loop variable until a later round looked at another: once the gateway had no socket left,
    the last one closed (its reader holding up to a message's fragments, 68 KB here) was kept
    for ever. Nothing of a round is kept through the sleep."""
    client, connect = await gateway(make_config(mud.port, extra="limits: {heartbeat_timeout_seconds: 0.4}"))
    sockets = client.server.app[SOCKETS]
    phx = await connect()
    await phx.ws.send_str("[" + " " * 500)  # and then silence: closed by the sweep, 1001
    assert await phx.close_code() == 1001
    await until(lambda: len(sockets) == 0)
    manager = client.server.app[SESSIONS]
    await asyncio.sleep(0.5)  # rounds of the sweep (every 0.1 s here) over no socket
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, PhoenixSocket) and o.manager is manager]
