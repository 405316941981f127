"""The gateway end to end over real sockets: Phoenix WebSocket <-> gateway <-> fake MUD (SPEC 4, 5, 6)."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import pytest

from gateway import __version__
from gateway.channel import session_key
from gateway.routes import SESSIONS, SOCKETS
from gateway.transport import websocket
from gateway.transport.websocket import SLOW_CONSUMER_DRAIN
from tests.conftest import (EVENTUALLY, SENT_AT, make_config, new_topic, read_through, send_until_stalled,
                            session, until)

IAC, WILL, WONT, DO, DONT, SB, SE, GA, EOR = 255, 251, 252, 253, 254, 250, 240, 249, 239


def cmd(*codes: int) -> bytes:
    return bytes(codes)


def gmcp(payload: bytes) -> bytes:
    return cmd(IAC, SB, 201) + payload + cmd(IAC, SE)


# -- 4.1 transport ---------------------------------------------------------------

async def test_heartbeat_v2(mud, gateway):
    _, connect = await gateway(make_config(mud.port))
    phx = await connect()
    await phx.ws.send_str(json.dumps([None, "7", "phoenix", "heartbeat", {}]))
    frame = await phx.expect(lambda f: f[3] == "phx_reply")
    assert frame == [None, "7", "phoenix", "phx_reply", {"status": "ok", "response": {}}]


async def test_v1_serializer_objects(mud, gateway):
    _, connect = await gateway(make_config(mud.port))
    phx = await connect(vsn=None)
    await phx.ws.send_str(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": 3}))
    msg = await phx.ws.receive(timeout=EVENTUALLY)
    assert json.loads(msg.data) == {"topic": "phoenix", "event": "phx_reply", "ref": 3, "join_ref": None,
                                    "payload": {"status": "ok", "response": {}}}
    topic = new_topic()
    phx1 = await connect(vsn="1.0.0")
    reply = await phx1.join(topic)
    assert reply == {"status": "ok", "response": {"game": "fake", "resumed": False, "input_n": 0}}
    conn = await mud.next_connection()
    conn.send(b"hello\r\n")
    assert (await phx1.event(topic, "echo"))["message"] == "hello\n"


async def test_malformed_messages_get_error_replies_and_socket_goes_on(joined):
    phx, topic, conn = joined
    # Valid JSON, wrong shape, with a ref: error reply.
    await phx.ws.send_str(json.dumps(["1", "r1", topic, 42]))
    frame = await phx.expect(lambda f: f[1] == "r1")
    assert frame[3] == "phx_reply" and frame[4]["status"] == "error"
    assert frame[4]["response"]["reason"] == "malformed message"
    # Not JSON at all, and a message without a ref: dropped silently.
    await phx.ws.send_str("{nope")
    await phx.ws.send_str(json.dumps(["1", None, topic, "recv", {"message": "x"}]))
    # The socket and its channel go on.
    assert (await phx.request(topic, "recv", {"message": "look"}))["status"] == "ok"
    await conn.wait_for(b"look\r\n")


async def test_unjoined_topic(joined):
    phx, topic, _ = joined
    other = new_topic()
    reply = await phx.request(other, "recv", {"message": "hi"})
    assert reply == {"status": "error", "response": {"reason": "unmatched topic"}}
    reply = await phx.request(other, "phx_leave", {})
    assert reply == {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_binary_frame_closes_1003(joined):
    phx, _, _ = joined
    await phx.ws.send_bytes(b"\x00\x01")
    assert await phx.close_code() == 1003


async def test_oversize_frame_closes_1009(mud, gateway):
    _, connect = await gateway(make_config(mud.port, extra="limits: {max_frame_bytes: 2048}"))
    phx = await connect()
    await phx.ws.send_str(json.dumps(["1", "1", new_topic(), "recv", {"message": "x" * 5000}]))
    assert await phx.close_code() == 1009


async def test_heartbeat_timeout_closes_silent_socket(mud, gateway):
    _, connect = await gateway(make_config(mud.port, extra="limits: {heartbeat_timeout_seconds: 0.3}"))
    phx = await connect()
    assert await phx.close_code(timeout=EVENTUALLY) == 1001


async def test_the_sweep_gives_the_loop_turns_between_slices(mud, gateway, monkeypatch):
    """The once-a-second sweep looks at ``SWEEP_SLICE`` sockets, then lets the loop run (at
    9,900 sockets one pass held every round trip for 8-16 ms, docs/performance.md 1.11). Five
    silent sockets, slices of two: a turn of the loop sees some of them closing and others
    not yet looked at; a sweep in one go would close all five in one turn."""
    monkeypatch.setattr(websocket, "SWEEP_SLICE", 2)
    client, connect = await gateway(make_config(mud.port, extra="limits: {heartbeat_timeout_seconds: 600}"))
    phxs = [await connect() for _ in range(5)]
    socks = list(client.server.app[SOCKETS])
    assert len(socks) == 5
    loop = asyncio.get_running_loop()
    seen: set[int] = set()
    done = loop.create_future()

    def turn() -> None:  # once a turn of the loop: how many are closing now
        n = sum(s._closing is not None for s in socks)
        seen.add(n)
        if n == 5:
            done.set_result(None)
        else:
            loop.call_soon(turn)

    for s in socks:
        s._heard = float("-inf")  # silent for ever, as the next sweep will find
    turn()
    await asyncio.wait_for(done, EVENTUALLY)
    assert seen & {1, 2, 3, 4}, f"closing counts seen in a turn: {sorted(seen)}"
    for phx in phxs:
        assert await phx.close_code() == 1001


async def test_heartbeats_keep_a_socket_open_past_the_timeout(mud, gateway):
    """Each message moves the heartbeat timeout on; silence after them still closes (1001).
    The sweep's clock is injected (``check_heartbeat(heard_by)``); the real sweep, whose
    timeout is far off here, closes a silent socket in the test above."""
    client, connect = await gateway(make_config(mud.port, extra="limits: {heartbeat_timeout_seconds: 600}"))
    phx = await connect()
    (sock,) = client.server.app[SOCKETS]
    loop = asyncio.get_running_loop()
    for _ in range(3):
        before = loop.time()
        assert await phx.request("phoenix", "heartbeat", {}, join_ref=None) == {"status": "ok", "response": {}}
        assert before <= sock._heard <= loop.time()  # heard when it was read
        sock.check_heartbeat(sock._heard)  # a timeout that ends as it was heard: not silent yet
        assert not sock.transport.is_closing()
    sock.check_heartbeat(sock._heard + 0.001)  # silent since then, as the sweep would see it later
    assert await phx.close_code(timeout=EVENTUALLY) == 1001


async def test_time_backed_up_is_no_heartbeat_silence(mud, gateway):
    """While the outbox is backed up the browser is not read, so its silence is not counted:
    a socket backed up for twice the heartbeat timeout is not closed for it, when it catches
    up nor after (the clock restarts when the outbox drains)."""
    # The sweep's clock is injected (check_heartbeat's ``heard_by``); the real one's timeout is far off.
    phx, topic, conn, connect = await session(
        mud, gateway, extra="limits: {heartbeat_timeout_seconds: 600, slow_consumer_seconds: 600}")
    (sock,) = connect.client.server.app[SOCKETS]
    loop = asyncio.get_running_loop()
    last_heard = sock._heard  # the join
    count = 60_000
    lines = [b"%07d " % i + b"y" * 200 + b"\r\n" for i in range(count)]  # ~12 MB, beyond the buffers
    flooded_at = loop.time()
    conn.send(b"".join(lines))
    await until(lambda: not sock._caught_up, what="the outbox backed up")
    sock.check_heartbeat(float("inf"))  # silent for ever, as far as the sweep could tell: backed up
    assert not sock.transport.is_closing()
    last = "%07d " % (count - 1) + "y" * 200 + "\n"
    text = ""
    while not text.endswith(last):
        text += (await phx.event(topic, "echo", timeout=EVENTUALLY))["message"]
    assert sock._caught_up and sock._heard > flooded_at > last_heard  # the clock restarted on catching up
    sock.check_heartbeat(flooded_at)  # silent since before the flood, but it was not read meanwhile
    assert not sock.transport.is_closing()
    assert await phx.request("phoenix", "heartbeat", {}, join_ref=None) == {"status": "ok", "response": {}}


async def test_binary_and_unknown_vsn(mud, gateway):
    client, _ = await gateway(make_config(mud.port))
    resp = await client.get("/socket/websocket?vsn=9.0.0")
    assert resp.status == 400


# -- 4.2 joining -------------------------------------------------------------------

async def test_join_replies_only_after_telnet_connect(mud, gateway):
    _, connect = await gateway(make_config(mud.port))
    phx = await connect()
    topic = new_topic()
    reply = await phx.join(topic)
    # The telnet connection exists by the time the reply is read.
    assert len(mud.connections) == 1
    assert reply == {"status": "ok", "response": {"game": "fake", "resumed": False, "input_n": 0}}


async def test_join_named_game_and_default(mud, gateway):
    other = await type(mud)().start()
    try:
        config = make_config(mud.port, games=f"""  - name: second
    host: 127.0.0.1
    port: {other.port}
    default: true""")
        _, connect = await gateway(config)
        phx = await connect()
        assert (await phx.join(new_topic()))["response"]["game"] == "second"
        await other.next_connection()
        assert (await phx.join(new_topic(), {"game": "fake"}, join_ref="2"))["response"]["game"] == "fake"
        await mud.next_connection()
    finally:
        await other.close()


async def test_join_errors(mud, gateway):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    config = make_config(mud.port, games=f"""  - name: dead
    host: 127.0.0.1
    port: {dead_port}""", extra="limits: {max_channels_per_socket: 2}")
    _, connect = await gateway(config)
    phx = await connect()
    assert await phx.join("rooms:lobby") == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert await phx.join("telnet:not-a-uuid") == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert await phx.join(new_topic(), {"game": "nope"}) == {
        "status": "error", "response": {"reason": "unknown game"}}
    reply = await phx.join(new_topic(), {"game": "dead"})
    assert reply["status"] == "error"
    assert reply["response"]["reason"] == "game unavailable"
    assert reply["response"]["detail"]
    assert (await phx.join(new_topic(), join_ref="a"))["status"] == "ok"
    assert (await phx.join(new_topic(), join_ref="b"))["status"] == "ok"
    assert await phx.join(new_topic(), join_ref="c") == {
        "status": "error", "response": {"reason": "too many channels"}}


async def test_game_unavailable_on_timeout(mud, gateway):
    # A listener whose backlog is full and that never accepts: connecting hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    try:
        config = make_config(mud.port, games=f"""  - name: stuck
    host: 127.0.0.1
    port: {port}
    connect_timeout: 0.3""")
        _, connect = await gateway(config)
        phx = await connect()
        reply = await phx.join(new_topic(), {"game": "stuck"})
        assert reply["status"] == "error"
        assert reply["response"]["reason"] == "game unavailable"
        assert "0.3" in reply["response"]["detail"]
    finally:
        for f in fillers:
            f.close()
        listener.close()


async def test_too_many_sessions(mud, gateway):
    _, connect = await gateway(make_config(mud.port, extra="limits: {max_sessions: 1}"))
    phx = await connect()
    assert (await phx.join(new_topic()))["status"] == "ok"
    assert await phx.join(new_topic(), join_ref="2") == {
        "status": "error", "response": {"reason": "too many sessions"}}


async def test_too_many_sessions_per_ip(mud, gateway):
    _, connect = await gateway(make_config(mud.port, extra="limits: {max_sessions_per_ip: 1}"))
    phx = await connect()
    assert (await phx.join(new_topic()))["status"] == "ok"
    phx2 = await connect()
    assert await phx2.join(new_topic()) == {"status": "error", "response": {"reason": "too many sessions"}}


async def test_leave_closes_telnet_then_phx_close(joined, mud):
    phx, topic, conn = joined
    ref = await phx.send(topic, "phx_leave", {})
    assert await phx.reply(ref) == {"status": "ok", "response": {}}
    close = await phx.expect(lambda f: f[3] == "phx_close")
    assert close[0] == "1" and close[2] == topic and close[4] == {}
    await conn.wait_closed()
    assert not any(f[3] == "disconnect" for f in phx.frames)


async def test_game_close_sends_disconnect_then_phx_close(joined):
    phx, topic, conn = joined
    conn.send(b"bye\r\n")
    conn.close()
    assert (await phx.event(topic, "echo"))["message"] == "bye\n"
    disconnect = await phx.event(topic, "disconnect")
    assert disconnect["reason"] == "closed by game"
    assert SENT_AT.match(disconnect["sent_at"])
    assert "seq" not in disconnect
    frame = await phx.expect(lambda f: f[3] == "phx_close")
    assert frame[2] == topic
    # The topic is no longer joined.
    assert (await phx.request(topic, "recv", {"message": "x"}))["response"]["reason"] == "unmatched topic"


# -- 4.3 server -> browser ------------------------------------------------------------

async def test_echo_line_endings_nul_and_ansi(joined):
    phx, topic, conn = joined
    conn.send(b"one\r\ntwo\n\rthree\r\x00four\n\x1b[1;31mred\x1b[0m\r\n")
    text = await phx.echo_text(topic, lambda t: t.count("\n") >= 4)
    assert text == "one\ntwo\nthreefour\n\x1b[1;31mred\x1b[0m\n"


async def test_pushes_carry_join_ref_null_ref_seq_and_sent_at(joined):
    phx, topic, conn = joined
    conn.send(b"a\r\n" + gmcp(b'Char.Vitals {"hp": 5}') + b"b\r\n")
    await phx.expect(lambda f: f[3] == "echo" and f[4]["message"] == "b\n")
    events = phx.events(topic)
    assert [e[3] for e in events] == ["echo", "gmcp", "echo"]
    assert [e[4]["seq"] for e in events] == [1, 2, 3]
    for join_ref, ref, _, _, payload in events:
        assert join_ref == "1" and ref is None
        assert SENT_AT.match(payload["sent_at"])


async def test_prompt_on_ga_and_eor(joined):
    phx, topic, conn = joined
    conn.send(b"Name: " + cmd(IAC, GA))
    assert (await phx.event(topic, "prompt"))["message"] == "Name: "
    conn.send(b"line\r\n<10hp> " + cmd(IAC, EOR))
    assert (await phx.event(topic, "echo"))["message"] == "line\n"
    assert (await phx.event(topic, "prompt"))["message"] == "<10hp> "


async def test_partial_line_flushed_after_quiet(mud, gateway):
    phx, topic, conn, connect = await session(mud, gateway, game_extra="    prompt_flush_ms: 150")
    loop = asyncio.get_running_loop()
    start = loop.time()
    conn.send(b"What is your name? ")
    payload = await phx.event(topic, "echo")
    assert payload["message"] == "What is your name? "
    assert loop.time() - start >= 0.14
    conn.send(b"rest\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "rest\n"


async def test_utf8_split_across_reads_is_never_split(joined):
    phx, topic, conn = joined
    data = "café ☕\r\n".encode()
    conn.send(data[:4])
    await conn.drain()
    sess = joined.connect.client.server.app[SESSIONS].get(session_key(topic))
    await read_through(conn, sess.client._transport.get_extra_info("socket"),
                       what="the gateway read the first part")  # two reads of the gateway's, not one
    conn.send(data[4:])
    text = await phx.echo_text(topic, lambda t: t.endswith("\n"))
    assert text == "café ☕\n"


async def test_gmcp_events(joined):
    phx, topic, conn = joined
    conn.send(gmcp(b'Room.Info {"num": 1, "name": "Square"}') + gmcp(b"Core.Goodbye")
              + gmcp(b"Comm.Channel not json") + gmcp(b'Char.Name "\xff\xff"'))
    first = await phx.event(topic, "gmcp")
    assert first["module"] == "Room.Info" and first["data"] == {"num": 1, "name": "Square"}
    second = await phx.event(topic, "gmcp")
    assert second["module"] == "Core.Goodbye" and second["data"] is None
    third = await phx.event(topic, "gmcp")
    assert third["module"] == "Comm.Channel" and third["data"] == "not json"
    fourth = await phx.event(topic, "gmcp")
    assert fourth["module"] == "Char.Name"


async def test_echo_option_events_and_answers(joined):
    phx, topic, conn = joined
    conn.send(cmd(IAC, WILL, 1) + b"Password: " + cmd(IAC, GA))
    option = await phx.event(topic, "option")
    assert option["type"] == "echo" and option["echo"] is False and option["seq"] == 1
    assert (await phx.event(topic, "prompt"))["message"] == "Password: "
    await conn.wait_for(cmd(IAC, DO, 1))
    conn.send(cmd(IAC, WILL, 1))  # again: no state change, no event, no answer
    conn.send(cmd(IAC, WONT, 1) + b"\r\n")
    option = await phx.event(topic, "option")
    assert option["echo"] is True and option["seq"] == 3
    await conn.wait_for(cmd(IAC, DONT, 1))
    assert bytes(conn.received).count(cmd(IAC, DO, 1)) == 1


async def test_events_arrive_in_game_byte_order(joined):
    phx, topic, conn = joined
    conn.send(b"1\r\n" + gmcp(b"A.B 1") + b"2\r\n" + cmd(IAC, WILL, 1) + b"3\r\n> " + cmd(IAC, GA)
              + gmcp(b"A.C 2"))
    await phx.expect(lambda f: f[3] == "gmcp" and f[4]["module"] == "A.C")
    seen = [(f[3], f[4].get("message") or f[4].get("module") or f[4].get("echo"))
            for f in phx.events(topic)]
    assert seen == [("echo", "1\n"), ("gmcp", "A.B"), ("echo", "2\n"), ("option", False),
                    ("echo", "3\n"), ("prompt", "> "), ("gmcp", "A.C")]


# -- 4.4 browser -> server ---------------------------------------------------------------

async def test_recv_lines_crlf_and_empty(joined):
    phx, topic, conn = joined
    for message in ["look", "say hi\r\n", "a\nb\n", ""]:
        assert await phx.request(topic, "recv", {"message": message}) == {"status": "ok", "response": {}}
    await conn.wait_for(b"look\r\nsay hi\r\na\r\nb\r\n\r\n")


async def test_recv_encodes_in_game_encoding_and_doubles_iac(mud, gateway):
    phx, topic, conn, connect = await session(mud, gateway, game_extra="    encoding: latin-1")
    assert (await phx.request(topic, "recv", {"message": "café ÿ"}))["status"] == "ok"
    await conn.wait_for(b"caf\xe9 \xff\xff\r\n")
    conn.send(b"d\xe9j\xe0 vu\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "déjà vu\n"


async def test_recv_message_too_long(mud, gateway):
    phx, topic, conn, connect = await session(mud, gateway, extra="limits: {max_input_bytes: 10}")
    assert await phx.request(topic, "recv", {"message": "é" * 6}) == {
        "status": "error", "response": {"reason": "message too long"}}
    assert (await phx.request(topic, "recv", {"message": "ok"}))["status"] == "ok"
    await conn.wait_for(b"ok\r\n")
    assert "é".encode() not in bytes(conn.received)


async def test_gmcp_push(joined):
    phx, topic, conn = joined
    assert await phx.request(topic, "gmcp", {"module": "Core.Ping"}) == {
        "status": "error", "response": {"reason": "gmcp not enabled"}}
    conn.send(cmd(IAC, WILL, 201))
    await conn.wait_for(cmd(IAC, DO, 201))
    await conn.wait_for(cmd(IAC, SB, 201) + b'Core.Hello {"client":"mud-gateway","version":"')
    await conn.wait_for(gmcp(b'Core.Supports.Set ["Char 1","Char.Vitals 1","Room 1","Comm.Channel 1"]'))
    assert (await phx.request(topic, "gmcp", {"module": "Char.Skills.Get", "data": {"group": "x"}}))["status"] == "ok"
    await conn.wait_for(gmcp(b'Char.Skills.Get {"group":"x"}'))
    assert (await phx.request(topic, "gmcp", {"module": "Core.Ping"}))["status"] == "ok"
    await conn.wait_for(gmcp(b"Core.Ping"))
    for bad in ["", "has space", "x\xff", 5, None]:
        assert await phx.request(topic, "gmcp", {"module": bad}) == {
            "status": "error", "response": {"reason": "invalid module"}}


async def test_naws(joined):
    phx, topic, conn = joined
    # Sent before NAWS is negotiated: remembered, used at negotiation.
    assert (await phx.request(topic, "naws", {"width": 120, "height": 40}))["status"] == "ok"
    conn.send(cmd(IAC, DO, 31))
    await conn.wait_for(cmd(IAC, WILL, 31))
    await conn.wait_for(cmd(IAC, SB, 31, 0, 120, 0, 40, IAC, SE))
    # Sent now while NAWS is on, 0xFF doubled.
    assert (await phx.request(topic, "naws", {"width": 255, "height": 1000}))["status"] == "ok"
    await conn.wait_for(cmd(IAC, SB, 31, 0, 255, 255, 3, 232, IAC, SE))
    for bad in [{"width": 0, "height": 5}, {"width": 1001, "height": 5}, {"width": "80", "height": 24},
                {"width": True, "height": 24}, {}]:
        assert await phx.request(topic, "naws", bad) == {
            "status": "error", "response": {"reason": "invalid size"}}


async def test_naws_default_80x24(joined):
    phx, topic, conn = joined
    conn.send(cmd(IAC, DO, 31))
    await conn.wait_for(cmd(IAC, SB, 31, 0, 80, 0, 24, IAC, SE))


async def test_unknown_event_and_bad_payload_get_errors(joined):
    phx, topic, conn = joined
    assert await phx.request(topic, "shout", {"message": "x"}) == {
        "status": "error", "response": {"reason": "unknown event"}}
    assert await phx.request(topic, "recv", {"message": 5}) == {
        "status": "error", "response": {"reason": "invalid payload"}}
    assert await phx.request(topic, "recv", ["look"]) == {
        "status": "error", "response": {"reason": "invalid payload"}}


# -- 5 telnet side ---------------------------------------------------------------------------

async def test_option_policy_without_loops(joined):
    phx, topic, conn = joined
    conn.send(cmd(IAC, WILL, 3) + cmd(IAC, WILL, 25) + cmd(IAC, WILL, 99) + cmd(IAC, DO, 99)
              + cmd(IAC, DO, 1) + cmd(IAC, WILL, 0) + cmd(IAC, DO, 34))
    await conn.wait_for(cmd(IAC, DO, 3))     # SGA accepted
    await conn.wait_for(cmd(IAC, DO, 25))    # EOR accepted
    await conn.wait_for(cmd(IAC, DONT, 99))  # unknown: refused
    await conn.wait_for(cmd(IAC, WONT, 99))
    await conn.wait_for(cmd(IAC, WONT, 1))   # we never echo
    await conn.wait_for(cmd(IAC, DONT, 0))   # BINARY refused
    await conn.wait_for(cmd(IAC, WONT, 34))  # LINEMODE refused
    # Agreeing again to what is on changes nothing, so nothing is answered.
    before = len(conn.received)
    conn.send(cmd(IAC, WILL, 3) + cmd(IAC, WILL, 25) + b"ping\r\n")
    await phx.expect(lambda f: f[3] == "echo" and f[4]["message"] == "ping\n")
    assert bytes(conn.received[before:]) == b""


@pytest.mark.parametrize("encoding, screen_reader, bits", [
    ("utf-8", True, 1 | 4 | 8 | 64 | 128 | 256),
    ("latin-1", False, 1 | 8 | 128 | 256),   # no UTF-8 bit for a latin-1 game, no screen reader
])
async def test_ttype_mtts_cycle(mud, gateway, encoding, screen_reader, bits):
    phx, topic, conn, connect = await session(mud, gateway, game_extra=f"    encoding: {encoding}",
                                              join={"screen_reader": screen_reader})
    conn.send(cmd(IAC, DO, 24))
    await conn.wait_for(cmd(IAC, WILL, 24))
    send = cmd(IAC, SB, 24, 1, IAC, SE)
    answers = []
    for _ in range(4):
        conn.send(send)
        start = await conn.wait_for(cmd(IAC, SB, 24, 0))
        end = await conn.wait_for(cmd(IAC, SE))
        answers.append(bytes(conn.received[start:end - 2]).decode())
    assert answers == ["MUD-GATEWAY", "XTERM-256COLOR", f"MTTS {bits}", f"MTTS {bits}"]


async def test_new_environ_mnes(joined):
    phx, topic, conn = joined
    conn.send(cmd(IAC, DO, 39))
    await conn.wait_for(cmd(IAC, WILL, 39))
    conn.send(cmd(IAC, SB, 39, 1, 0) + b"CLIENT_NAME" + cmd(0) + b"IPADDRESS" + cmd(IAC, SE))
    start = await conn.wait_for(cmd(IAC, SB, 39, 0))
    end = await conn.wait_for(cmd(IAC, SE))
    body = bytes(conn.received[start:end - 2])
    assert body == b"\x00CLIENT_NAME\x01MUD-GATEWAY\x00IPADDRESS\x01127.0.0.1"


# -- 6 sessions ---------------------------------------------------------------------------------

async def test_socket_drop_lingers_and_resume_replays(mud, gateway):
    phx, topic, conn, connect = await session(mud, gateway, extra="sessions: {linger_seconds: 5}")
    conn.send(b"one\r\n")
    first = await phx.event(topic, "echo")
    await phx.ws.close()
    conn.send(b"two\r\n" + gmcp(b"Char.Vitals {\"hp\":3}"))
    sess = connect.client.server.app[SESSIONS].get(session_key(topic))
    await until(lambda: sess.seq == 3 and sess.viewer is None, what="the session lingers with all three events")
    phx2 = await connect()
    reply = await phx2.join(topic, {"last_seq": first["seq"]})
    assert reply == {"status": "ok", "response": {"game": "fake", "resumed": True, "replayed": 2, "gap": False, "input_n": 0}}
    replay = [await phx2.expect(lambda f: f[3] in ("echo", "gmcp")) for _ in range(2)]
    assert [f[4]["seq"] for f in replay] == [2, 3]
    assert replay[0][4]["message"] == "two\n"
    assert not conn.closed


async def test_takeover(joined):
    phx, topic, conn = joined
    conn.send(b"hello\r\n")
    await phx.event(topic, "echo")
    phx2 = await joined.connect()
    reply = await phx2.join(topic, {"last_seq": 0}, join_ref="9")
    assert reply == {"status": "ok", "response": {"game": "fake", "resumed": True, "replayed": 1, "gap": False, "input_n": 0}}
    assert (await phx2.event(topic, "echo"))["message"] == "hello\n"
    assert (await phx.event(topic, "disconnect"))["reason"] == "taken over"
    await phx.expect(lambda f: f[3] == "phx_close")
    assert (await phx2.request(topic, "recv", {"message": "still here"}, join_ref="9"))["status"] == "ok"
    await conn.wait_for(b"still here\r\n")
    assert len(conn.received) and not conn.closed


async def test_reload_without_last_seq_gets_scrollback_and_state(mud, gateway):
    phx, topic, conn, connect = await session(mud, gateway, extra="sessions: {replay_bytes: 200}")
    conn.send(gmcp(b'Char.Vitals {"hp":1}') + cmd(IAC, WILL, 1) + gmcp(b'Room.Info {"num":1}')
              + b"".join(b"line %03d of the scrollback\r\n" % i for i in range(40))
              + gmcp(b'Char.Vitals {"hp":2}'))
    await phx.expect(lambda f: f[3] == "gmcp" and f[4]["data"] == {"hp": 2})
    await phx.ws.close()
    phx2 = await connect()
    reply = await phx2.join(topic)
    assert reply["response"]["resumed"] is True and reply["response"]["gap"] is True
    frames = [await phx2.expect(lambda f: f[3] in ("echo", "gmcp", "option"))
              for _ in range(reply["response"]["replayed"])]
    seqs = [f[4]["seq"] for f in frames]
    assert seqs == sorted(seqs)
    kinds = [(f[3], f[4].get("module")) for f in frames]
    # The dropped state comes first (latest per module, the echo option), then the kept tail.
    assert kinds[:3] == [("gmcp", "Char.Vitals"), ("option", None), ("gmcp", "Room.Info")]
    assert frames[1][4]["echo"] is False
    assert frames[-1][4]["data"] == {"hp": 2}


# -- 7 HTTP ------------------------------------------------------------------------------------------

async def test_healthz_and_games(joined, mud, gateway):
    client, _ = await gateway(make_config(mud.port))
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "sessions": 0, "version": __version__, "generation": 1}
    resp = await client.get("/api/games")
    assert await resp.json() == {"games": [{"name": "fake", "title": "fake", "default": True, "mssp": None,
                                                 "media_url": None}]}
    resp = await client.get("/")
    assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]


async def test_origin_check(mud, gateway):
    client, connect = await gateway(make_config(mud.port))
    host = f"{client.server.host}:{client.server.port}"
    ok = await connect(headers={"Origin": f"http://{host}"})
    await ok.ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await connect(headers={"Origin": "http://evil.example"})
    assert err.value.status == 403


async def test_idle_sessions_end(mud, gateway):
    phx, topic, conn, connect = await session(mud, gateway, extra="sessions: {idle_timeout_seconds: 0.5}")
    assert (await phx.event(topic, "disconnect", timeout=EVENTUALLY))["reason"] == "idle"
    await phx.expect(lambda f: f[3] == "phx_close")
    await conn.wait_closed()


async def test_input_restarts_the_idle_clock(mud, gateway):
    """The idle clock counts from the last line typed (``last_input``, which the timer reads)."""
    phx, topic, conn, connect = await session(mud, gateway, extra="sessions: {idle_timeout_seconds: 600}")
    sess = connect.client.server.app[SESSIONS].get(session_key(topic))
    opened = sess.last_input
    assert (await phx.request(topic, "recv", {"message": "still here"}))["status"] == "ok"
    assert sess.last_input > opened
    await conn.wait_for(b"still here\r\n")


async def test_gateway_shutdown_tells_every_browser(mud, gateway):
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    topics = [new_topic(), new_topic()]
    for i, topic in enumerate(topics):
        await phx.join(topic, join_ref=str(i))
    conns = [await mud.next_connection() for _ in topics]
    closing = asyncio.ensure_future(client.server.close())
    for topic in topics:
        assert (await phx.event(topic, "disconnect"))["reason"] == "gateway shutdown"
    for conn in conns:
        await conn.wait_closed()
    await asyncio.wait_for(closing, 10)


async def flood_until_slow_consumer(mud, gateway):
    """A browser that stops reading while the game floods it, until the gateway gives up on it
    (``slow_consumer_seconds: 1.5``) and closes the game. (client, phx, topic)."""
    client, connect = await gateway(make_config(mud.port, extra="limits: {slow_consumer_seconds: 1.5}"))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    line = b"x" * 1000 + b"\r\n"
    sent = 0

    async def flood() -> None:
        nonlocal sent
        while sent < 200_000_000 and not conn.closed:
            conn.send(line * 64)
            await conn.drain()
            sent += len(line) * 64

    flooding = asyncio.ensure_future(flood())
    try:
        # TCP pushed back on the game: the gateway stopped reading it, the game's writes wait.
        sess = client.server.app[SESSIONS].get(session_key(topic))
        await until(lambda: sess is None or (sess._paused and conn.unsent() > 0) or conn.closed,
                    what="the game held back")
        # It is not let to write more than buffers hold.
        assert sent < 64_000_000, sent
        # No progress for slow_consumer_seconds: the session ends, the game is closed.
        await conn.wait_closed(timeout=EVENTUALLY)
        assert sent < 64_000_000, sent
    finally:
        flooding.cancel()
        await asyncio.gather(flooding, return_exceptions=True)
    return client, phx, topic


async def test_slow_consumer_that_reads_again_sees_disconnect_and_phx_close(mud, gateway):
    _, phx, topic = await flood_until_slow_consumer(mud, gateway)
    # Reading again: what was already on its way, then disconnect and phx_close, then the close.
    frames = []
    while True:
        msg = await phx.ws.receive(timeout=10)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        frames.append(json.loads(msg.data))
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1013
    names = [f[3] for f in frames]
    assert names[-2:] == ["disconnect", "phx_close"], names[-5:]
    assert set(names[:-2]) <= {"echo"}
    assert frames[-2][2] == topic and frames[-2][4]["reason"] == "slow consumer"
    assert frames[-1][2] == topic
    # The queued output was dropped: what was read is a prefix of the game's text, then a gap.
    seqs = [f[4]["seq"] for f in frames[:-2]]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_slow_consumer_that_never_reads_is_closed_anyway(mud, gateway):
    client, phx, _ = await flood_until_slow_consumer(mud, gateway)
    sockets = client.server.app[SOCKETS]
    # The gateway lets go of it by itself (SPEC: within 5 s, SLOW_CONSUMER_DRAIN, its own timer).
    assert SLOW_CONSUMER_DRAIN <= 5
    await until(lambda: not sockets, what="the socket let go of")
    assert client.server.app[SESSIONS].counts() == {"attached": 0, "lingering": 0}


async def test_rate_limited_lines_are_not_sent(mud, gateway):
    # A token a thousand seconds: none comes back while the test runs; the bucket's clock is
    # injected for the one that does (test_ratelimit.py drives the bucket itself).
    rate = 0.001
    client, connect = await gateway(make_config(
        mud.port, extra=f"limits: {{input_lines_per_second: {rate}, input_burst: 3}}"))
    phx = await connect()
    topic = new_topic()
    await phx.join(topic)
    conn = await mud.next_connection()
    bucket = client.server.app[SESSIONS].get(session_key(topic)).input_bucket
    assert (await phx.request(topic, "recv", {"message": "a\nb"}))["status"] == "ok"
    # Two more lines with one token left: refused whole, using no tokens.
    assert await phx.request(topic, "recv", {"message": "c\nd"}) == {
        "status": "error", "response": {"reason": "rate limited"}}
    assert (await phx.request(topic, "recv", {"message": "e"}))["status"] == "ok"
    assert await phx.request(topic, "recv", {"message": "f"}) == {
        "status": "error", "response": {"reason": "rate limited"}}
    bucket.stamp -= 1 / rate  # one token back
    assert (await phx.request(topic, "recv", {"message": "g"}))["status"] == "ok"
    await conn.wait_for(b"a\r\nb\r\ne\r\ng\r\n")
    assert b"c\r\n" not in bytes(conn.received) and b"f\r\n" not in bytes(conn.received)


async def test_misbehaving_game_is_survived(joined):
    phx, topic, conn = joined
    junk = (cmd(IAC, SB, IAC, SE)                       # SB without an option
            + cmd(IAC, SE)                               # SE without SB
            + cmd(IAC, SB, 24, 0) + b"x" + cmd(IAC, SE)  # TTYPE IS from a server
            + cmd(IAC, SB, 31, 1) + cmd(IAC, SE)         # a short NAWS
            + cmd(IAC, SB, 99) + b"???" + cmd(IAC, SE)   # an unknown option's SB
            + cmd(IAC, DO, 18)                           # DO LOGOUT to a client
            + cmd(IAC, WILL, 6)                          # WILL TIMING-MARK unasked
            + cmd(IAC, 200)                              # no such command
            + cmd(IAC, SB, 201) + b"Char.Vitals {broken" + cmd(IAC, SE))
    conn.send(b"before\r\n" + junk + b"after\r\n")
    await phx.expect(lambda f: f[3] == "echo" and "after" in f[4]["message"])
    text = "".join(f[4]["message"] for f in phx.events(topic, ("echo",)))
    assert text.startswith("before\n") and text.endswith("after\n")
    broken = [f[4] for f in phx.events(topic, ("gmcp",))]
    assert broken == [{"module": "Char.Vitals", "data": "{broken", "seq": broken[0]["seq"],
                       "sent_at": broken[0]["sent_at"]}]
    # The session goes on both ways.
    assert (await phx.request(topic, "recv", {"message": "still fine"}))["status"] == "ok"
    await conn.wait_for(b"still fine\r\n")
    conn.send(b"ok\r\n")
    await phx.expect(lambda f: f[3] == "echo" and f[4]["message"] == "ok\n")


async def test_mccp2_inflated(joined):
    import zlib

    phx, topic, conn = joined
    conn.send(cmd(IAC, WILL, 86))
    await conn.wait_for(cmd(IAC, DO, 86))
    z = zlib.compressobj()
    conn.send(cmd(IAC, SB, 86, IAC, SE) + z.compress(b"squeezed\r\n" + gmcp(b"Room.Info {\"num\":7}")
                                                     + b"Name: " + cmd(IAC, GA)) + z.flush(zlib.Z_SYNC_FLUSH))
    assert (await phx.event(topic, "echo"))["message"] == "squeezed\n"
    assert (await phx.event(topic, "gmcp"))["data"] == {"num": 7}
    assert (await phx.event(topic, "prompt"))["message"] == "Name: "
    # The game ends compression: plain telnet again.
    conn.send(z.compress(b"last packed\r\n") + z.flush(zlib.Z_FINISH) + b"plain again\r\n")
    text = await phx.echo_text(topic, lambda t: t.endswith("plain again\n"))
    assert text == "last packed\nplain again\n"


async def test_mccp2_corrupt_stream_ends_session(joined):
    import zlib

    phx, topic, conn = joined
    conn.send(cmd(IAC, WILL, 86))
    await conn.wait_for(cmd(IAC, DO, 86))
    z = zlib.compressobj()
    conn.send(cmd(IAC, SB, 86, IAC, SE) + z.compress(b"good text\r\n") + z.flush(zlib.Z_SYNC_FLUSH)
              + b"\x00garbage that is not deflate" * 4)
    assert (await phx.event(topic, "echo"))["message"] == "good text\n"
    assert (await phx.event(topic, "disconnect"))["reason"] == "compression error"
    await phx.expect(lambda f: f[3] == "phx_close")
    await conn.wait_closed()


async def test_mssp_shown_in_api_games(mud, gateway):
    client, connect = await gateway(make_config(mud.port))
    phx = await connect()
    await phx.join(new_topic())
    conn = await mud.next_connection()
    conn.send(cmd(IAC, WILL, 70))
    await conn.wait_for(cmd(IAC, DO, 70))
    conn.send(cmd(IAC, SB, 70, 1) + b"NAME" + cmd(2) + b"Fake MUD" + cmd(1) + b"PLAYERS" + cmd(2) + b"3"
              + cmd(1) + b"PORT" + cmd(2) + b"4000" + cmd(2) + b"4001" + cmd(IAC, SE) + b"hi\r\n")
    await phx.expect(lambda f: f[3] == "echo")
    games = (await (await client.get("/api/games")).json())["games"]
    assert games[0]["mssp"] == {"NAME": "Fake MUD", "PLAYERS": "3", "PORT": ["4000", "4001"]}


async def test_charset_utf8_accepted_and_used(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway, game_extra="    encoding: latin-1")
    conn.send(cmd(IAC, WILL, 42))
    await conn.wait_for(cmd(IAC, DO, 42))
    conn.send(cmd(IAC, SB, 42, 1) + b";ISO-8859-1;UTF-8" + cmd(IAC, SE))
    await conn.wait_for(cmd(IAC, SB, 42, 2) + b"UTF-8" + cmd(IAC, SE))
    conn.send("naïve ☕\r\n".encode())
    assert (await phx.event(topic, "echo"))["message"] == "naïve ☕\n"
    assert (await phx.request(topic, "recv", {"message": "café"}))["status"] == "ok"
    await conn.wait_for("café\r\n".encode())
    # NEW-ENVIRON says the agreed encoding too: the game's encoding is held in one place.
    conn.send(cmd(IAC, DO, 39))
    await conn.wait_for(cmd(IAC, WILL, 39))
    conn.send(cmd(IAC, SB, 39, 1, 0) + b"CHARSET" + cmd(IAC, SE))
    await conn.wait_for(cmd(IAC, SB, 39, 0) + b"\x00CHARSET\x01UTF-8" + cmd(IAC, SE))


async def test_charset_without_utf8_rejected(joined):
    phx, topic, conn = joined
    conn.send(cmd(IAC, WILL, 42))
    await conn.wait_for(cmd(IAC, DO, 42))
    conn.send(cmd(IAC, SB, 42, 1) + b" KOI8-R US-ASCII" + cmd(IAC, SE))
    await conn.wait_for(cmd(IAC, SB, 42, 3, IAC, SE))


async def test_rejoin_on_same_socket_replaces_channel(joined):
    phx, topic, conn = joined
    conn.send(b"first\r\n")
    await phx.event(topic, "echo")
    reply = await phx.join(topic, {"last_seq": 1}, join_ref="2")
    assert reply == {"status": "ok", "response": {"game": "fake", "resumed": True, "replayed": 0, "gap": False, "input_n": 0}}
    closes = [f for f in phx.frames if f[3] == "phx_close"]
    assert [f[0] for f in closes] == ["1"]  # the old channel's join_ref, before the new reply
    conn.send(b"second\r\n")
    frame = await phx.expect(lambda f: f[3] == "echo")
    assert frame[0] == "2" and frame[4]["message"] == "second\n" and frame[4]["seq"] == 2
    assert len(phx.events(topic, ("disconnect",))) == 0
    assert not conn.closed


async def test_allowed_origins_and_default_ports(mud, gateway):
    client, connect = await gateway(make_config(mud.port))
    # Empty list: the Origin's host and port must be the Host header's (default ports filled in).
    ok = await connect(headers={"Host": "play.example.com", "Origin": "https://play.example.com"})
    await ok.ws.close()
    ok = await connect(headers={"Host": "play.example.com:8443", "Origin": "https://play.example.com:8443"})
    await ok.ws.close()
    for host, origin in [("play.example.com", "http://play.example.com:8080"),
                         ("play.example.com", "https://evil.example.com"),
                         ("play.example.com", "null")]:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await connect(headers={"Host": host, "Origin": origin})
        assert err.value.status == 403
    # A list: exactly those origins.
    _, connect2 = await gateway(make_config(mud.port, extra="security: {allowed_origins: ['https://play.example.com']}"))
    ok = await connect2(headers={"Origin": "https://play.example.com"})
    await ok.ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await connect2(headers={"Origin": "https://play.example.com:444"})
    assert err.value.status == 403


async def ipaddress_sent(conn) -> bytes:
    conn.send(cmd(IAC, DO, 39))
    await conn.wait_for(cmd(IAC, WILL, 39))
    conn.send(cmd(IAC, SB, 39, 1, 0) + b"IPADDRESS" + cmd(IAC, SE))
    start = await conn.wait_for(cmd(IAC, SB, 39, 0))
    end = await conn.wait_for(cmd(IAC, SE))
    return bytes(conn.received[start:end - 2])


@pytest.mark.parametrize("trusted, xff, expected", [
    ("['127.0.0.1/32', '10.0.0.0/8']", "203.0.113.9, 10.1.2.3", b"203.0.113.9"),
    ("['127.0.0.1/32']", "203.0.113.9, 198.51.100.4", b"198.51.100.4"),
    ("[]", "203.0.113.9", b"127.0.0.1"),                   # the peer is not a trusted proxy
    ("['127.0.0.1/32']", "not-an-address", b"127.0.0.1"),  # a broken header is not believed
])
async def test_client_ip_behind_trusted_proxies(mud, gateway, trusted, xff, expected):
    _, connect = await gateway(make_config(mud.port, extra=f"security: {{trusted_proxies: {trusted}}}"))
    phx = await connect(headers={"X-Forwarded-For": xff})
    await phx.join(new_topic())
    conn = await mud.next_connection()
    assert await ipaddress_sent(conn) == b"\x00IPADDRESS\x01" + expected


async def test_forward_client_ip_off(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway, game_extra="    forward_client_ip: false")
    assert await ipaddress_sent(conn) == b""


async def test_linger_expires(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway, extra="sessions: {linger_seconds: 0.3}")
    await phx.ws.close()
    await conn.wait_closed()


async def test_session_log_lines_and_no_input_logged(mud, gateway, caplog):
    caplog.set_level("DEBUG")
    phx, topic, conn, _ = await session(mud, gateway)
    conn.send(cmd(IAC, WILL, 1) + b"Password: " + cmd(IAC, GA))
    await phx.event(topic, "prompt")
    assert (await phx.request(topic, "recv", {"message": "hunter2-secret"}))["status"] == "ok"
    await conn.wait_for(b"hunter2-secret\r\n")
    await phx.request(topic, "phx_leave", {})
    await conn.wait_closed()
    lines = [r.getMessage() for r in caplog.records]
    start = [m for m in lines if m.startswith("session start")]
    end = [m for m in lines if m.startswith("session end")]
    assert len(start) == 1 and "game=fake" in start[0] and "ip=127.0.0.1" in start[0]
    assert len(end) == 1
    for field in ("game=fake", "ip=127.0.0.1", "sub=-", "duration_s=", "bytes_to_browser=", "bytes_to_game=16", "reason=left"):
        assert field in end[0]
    assert not any("hunter2" in m for m in lines)


async def test_backpressure_releases_and_loses_nothing(mud, gateway):
    phx, topic, conn, connect = await session(mud, gateway, extra="limits: {slow_consumer_seconds: 30}")
    count = 150_000
    lines = [b"%07d " % i + b"y" * 200 + b"\r\n" for i in range(count)]  # ~31 MB, beyond all buffers
    conn.send(b"".join(lines))
    drained = asyncio.ensure_future(conn.drain())
    sess = connect.client.server.app[SESSIONS].get(session_key(topic))
    await until(lambda: sess._paused, what="the game's reads paused")
    # The browser is not reading: the game is held back (31 MB: more than the buffers hold).
    assert not drained.done() and conn.unsent() > 0
    last = "%07d " % (count - 1) + "y" * 200 + "\n"
    parts: list[str] = []
    while not (parts and parts[-1].endswith(last)):
        parts.append((await phx.event(topic, "echo", timeout=10))["message"])
    await asyncio.wait_for(drained, 10)
    assert "".join(parts) == b"".join(lines).replace(b"\r", b"").decode()
    seqs = [f[4]["seq"] for f in phx.events(topic)]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_browser_that_does_not_read_is_not_read(mud, gateway):
    # (Its address's read budget raised: the stall shown is the backpressure's, not the pacing's.)
    client, connect = await gateway(make_config(
        mud.port, extra="limits: {slow_consumer_seconds: 60, max_sessions_per_ip: 100000}"))
    phx = await connect()
    (sock,) = client.server.app[SOCKETS]
    frame = json.dumps([None, "1", "phoenix", "heartbeat", {}])
    sent, stalled = await send_until_stalled(phx.ws, sock, frame, 2_000_000)
    assert stalled, f"still sending after {sent} frames: the gateway kept reading"
    # Reading again: every frame the gateway took was answered, in order. A last heartbeat
    # (ref "end") after them: its reply comes after theirs, so no gap in time ends the count.
    marker = asyncio.ensure_future(phx.ws.send_str(json.dumps([None, "end", "phoenix", "heartbeat", {}])))
    replies = 0
    try:
        while (frame := await phx.expect(lambda f: True, timeout=EVENTUALLY))[1] != "end":  # a ceiling a frame
            assert frame[3] == "phx_reply" and frame[1] == "1", frame
            replies += 1
    finally:
        await marker
    assert sent <= replies <= sent + 1, (sent, replies)  # + 1: a send cut short


async def test_new_environ_send_all_mnes(joined):
    phx, topic, conn = joined
    conn.send(cmd(IAC, DO, 39))
    await conn.wait_for(cmd(IAC, WILL, 39))
    conn.send(cmd(IAC, SB, 39, 1, IAC, SE))  # SEND with no names: everything we volunteer
    start = await conn.wait_for(cmd(IAC, SB, 39, 0))
    end = await conn.wait_for(cmd(IAC, SE))
    body = bytes(conn.received[start:end - 2])
    pairs = dict(p.split(b"\x01", 1) for p in body.split(b"\x00")[1:])
    assert pairs == {b"CLIENT_NAME": b"MUD-GATEWAY", b"CLIENT_VERSION": __version__.encode(), b"CHARSET": b"UTF-8",
                     b"MTTS": str(1 | 4 | 8 | 128 | 256).encode(), b"TERMINAL_TYPE": b"XTERM-256COLOR",
                     b"IPADDRESS": b"127.0.0.1"}


async def test_game_that_hangs_up_at_once(gateway, full_game):
    _, connect = await gateway(make_config(full_game))
    phx = await connect()
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    assert (await phx.event(topic, "echo"))["message"] == "Sorry, the game is full.\n"
    assert (await phx.event(topic, "disconnect"))["reason"] == "closed by game"
    await phx.expect(lambda f: f[3] == "phx_close")
