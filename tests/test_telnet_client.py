"""The telnet adapter (telnetlib3 + TelnetStream) over a real socket: chunking never changes what comes out.

The game's bytes are sent in arbitrary pieces (each drained, with a pause, so
that most become separate reads); the events the adapter reports, and the
answers telnetlib3 sends back, must be those of the same bytes in one piece.
"""

from __future__ import annotations

import asyncio
import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import parse_config
from gateway.telnet import client as telnet
from gateway.telnet.stream import EchoMode, Gmcp, Lines, Prompt, Text
from tests.conftest import read_through, until
from tests.fakemud import EVENTUALLY, FakeMud

IAC, WILL, WONT, DO, DONT, SB, SE, GA = 255, 251, 252, 253, 254, 250, 240, 249


class Recorder:
    def __init__(self) -> None:
        self.events: list = []
        self.closed = asyncio.get_running_loop().create_future()

    def on_events(self, events) -> None:
        self.events.extend(events)

    def on_game_closed(self, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)

    def on_mssp(self, variables) -> None:
        pass


async def adapter(mud: FakeMud, extra: str = "") -> tuple:
    """The telnet adapter connected to ``mud`` (game ``g``, ``extra`` its YAML flow fields):
    (client, the fake's connection, the Recorder of its events)."""
    game = parse_config(f"games: [{{name: g, host: 127.0.0.1, port: {mud.port}{extra}}}]").games[0]
    sink = Recorder()
    client = await telnet.connect(game, sink)
    return client, await mud.next_connection(), sink


def gmcp(module: str, data) -> bytes:
    return bytes([IAC, SB, 201]) + f"{module} {json.dumps(data)}".encode() + bytes([IAC, SE])


pieces = st.one_of(
    st.sampled_from([
        "Hello, wörld ☕\r\n".encode(), b"\x1b[1;31mred\x1b[0m ", b"\x1b[38;2;10;20;30mtc\x1b[0m\r\n",
        b"Name: " + bytes([IAC, GA]), bytes([IAC, WILL, 1]), bytes([IAC, WONT, 1]),
        bytes([IAC, WILL, 3]), bytes([IAC, DO, 24]), bytes([IAC, SB, 24, 1, IAC, SE]),
        bytes([IAC, WILL, 99]), bytes([IAC, DO, 31]), b"\r\n", b"line\n\r",
    ]),
    st.builds(gmcp, st.sampled_from(["Char.Vitals", "Room.Info"]),
              st.dictionaries(st.sampled_from(["hp", "mp", "name"]), st.integers(0, 999), max_size=3)),
)


async def play(stream_bytes: bytes, cuts: list[int]) -> tuple[list, bytes]:
    mud = await FakeMud().start()
    try:
        client, conn, sink = await adapter(mud, ", prompt_flush_ms: 60000")
        points = sorted({c % (len(stream_bytes) + 1) for c in cuts})
        for a, b in zip([0, *points], [*points, len(stream_bytes)]):
            if b > a:
                conn.send(stream_bytes[a:b])
                await read_through(conn, client.raw_socket(), what="the adapter read it")  # a read each
        conn.send(b"END\r\n")
        await until(lambda: "".join(e.message for e in as_text(sink.events) if type(e) is Text).endswith("END\n"),
                    what="END")
        client.close("test over")
        await asyncio.wait_for(sink.closed, EVENTUALLY)
        return sink.events, bytes(conn.received)
    finally:
        await mud.close()


def as_text(events: list) -> list:
    """The adapter's stream gives UTF-8 lines as bytes (``Lines``): as the Text they stand for."""
    return [e.text() if type(e) is Lines else e for e in events]


def summary(events: list) -> tuple[str, list]:
    events = as_text(events)
    text = "".join(e.message for e in events if type(e) in (Text, Prompt))
    kinds: list = []
    for e in events:
        item = ("text",) if type(e) is Text else (
            ("prompt", e.message) if type(e) is Prompt else
            ("gmcp", e.module, msgspec.json.decode(msgspec.json.encode(e.data))) if type(e) is Gmcp else
            ("echo", e.echo) if type(e) is EchoMode else None)
        if item is None or (item == ("text",) and kinds and kinds[-1] == ("text",)):
            continue
        kinds.append(item)
    return text, kinds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pieces, min_size=1, max_size=25), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_chunking_through_the_adapter_gives_the_same_events_and_answers(items, cuts):
    data = b"".join(items)
    whole_events, whole_answers = asyncio.run(play(data, []))
    cut_events, cut_answers = asyncio.run(play(data, cuts))
    assert summary(cut_events) == summary(whole_events)
    assert cut_answers == whole_answers


async def two_connections(mud):
    game = parse_config(f"games: [{{name: g, host: 127.0.0.1, port: {mud.port}}}]").games[0]
    sinks = [Recorder(), Recorder()]
    clients = [await telnet.connect(game, sink) for sink in sinks]
    conns = [await mud.next_connection() for _ in clients]
    return clients, conns, sinks


async def close_all(clients, sinks) -> None:
    for client, sink in zip(clients, sinks):
        client.close("test over")
        await asyncio.wait_for(sink.closed, EVENTUALLY)


async def test_negotiation_on_one_connection_does_not_show_on_another():
    """Per-connection state shared until changed (writer.py): a change on one connection is its own."""
    mud = await FakeMud().start()
    try:
        (a, b), (ca, cb), sinks = await two_connections(mud)
        ca.send(bytes([IAC, DO, 99, IAC, WILL, 98, IAC, WILL, 201, IAC, WILL, 70]))  # two unknown, GMCP, MSSP
        await ca.wait_for(bytes([IAC, WONT, 99]))
        await ca.wait_for(bytes([IAC, DONT, 98]))
        await ca.wait_for(bytes([IAC, DO, 201]))  # passive_do: the shared default answers
        await ca.wait_for(bytes([IAC, DO, 70]))
        cb.send(bytes([IAC, WILL, 99]) + b"hi\r\n")
        await cb.wait_for(bytes([IAC, DONT, 99]))
        await until(lambda: b.writer.rejected_will, what="b refused WILL 99")
        assert a.writer.rejected_do == {bytes([99])} and a.writer.rejected_will == {bytes([98])}
        assert b.writer.rejected_do == set() and b.writer.rejected_will == {bytes([99])}
        assert a.gmcp_enabled and not b.gmcp_enabled
        a.writer.passive_do.add(bytes([102]))  # one connection's own policy change ...
        assert bytes([102]) in a.writer.passive_do and bytes([102]) not in b.writer.passive_do  # ... is its own
        cb.send(bytes([IAC, WILL, 90]))  # MSP, refused: the game has no media_url
        await cb.wait_for(bytes([IAC, DONT, 90]))
        a.writer.ctx.gmcp_data["x"] = 1
        assert b.writer.ctx.gmcp_data == {}
        # Nothing telnetlib3 set went to a dict per connection (idle memory).
        for obj in (a, a.writer, a.reader, a.writer.remote_option, b, b.writer):
            assert not vars(obj), (obj, vars(obj))
        await close_all((a, b), sinks)
    finally:
        await mud.close()


async def test_protocol_callbacks_answer_on_each_connection():
    """TTYPE, NAWS and NEW-ENVIRON answers come from each connection's own protocol object."""
    mud = await FakeMud().start()
    try:
        (a, b), (ca, cb), sinks = await two_connections(mud)
        a.set_naws(100, 40)
        b.set_naws(120, 50)
        for conn in (ca, cb):
            conn.send(bytes([IAC, DO, 31, IAC, DO, 24, IAC, SB, 24, 1, IAC, SE]))
        await ca.wait_for(bytes([IAC, SB, 31, 0, 100, 0, 40, IAC, SE]))
        await cb.wait_for(bytes([IAC, SB, 31, 0, 120, 0, 50, IAC, SE]))
        await ca.wait_for(bytes([IAC, SB, 24, 0]) + b"MUD-GATEWAY")
        ca.send(bytes([IAC, SB, 24, 1, IAC, SE]))
        await ca.wait_for(bytes([IAC, SB, 24, 0]) + b"XTERM-256COLOR")
        await cb.wait_for(bytes([IAC, SB, 24, 0]) + b"MUD-GATEWAY")
        assert a._ttype_count == 2 and b._ttype_count == 1
        await close_all((a, b), sinks)
    finally:
        await mud.close()


async def test_flow_control_waiters_are_per_connection():
    """asyncio's drain waiters (a list shared until changed, client.py): a paused connection's
    drain waits for its own resume; the other connection neither waits nor sees the waiter."""
    mud = await FakeMud().start()
    try:
        (a, b), _, sinks = await two_connections(mud)
        assert a._tasks == [] and a._rx_queue == [] and a._drain_waiters == []  # the negotiation timer is done
        a.pause_writing()
        draining = asyncio.ensure_future(a.writer.drain())
        await until(lambda: a._drain_waiters, what="the drain waits")
        assert not draining.done() and len(a._drain_waiters) == 1 and b._drain_waiters == []
        await asyncio.wait_for(b.writer.drain(), EVENTUALLY)  # not paused: returns at once
        a.resume_writing()
        await asyncio.wait_for(draining, EVENTUALLY)
        assert a._drain_waiters == [] and b._drain_waiters == []
        await close_all((a, b), sinks)
    finally:
        await mud.close()
