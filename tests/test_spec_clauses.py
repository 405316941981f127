"""SPEC clauses (sections 3, 4.1-4.4, 5) that no other test checks exactly: each test names its
clause, with the SPEC section in a comment. Real sockets: an aiohttp gateway, the fake MUD of
tests/fakemud.py, nothing of the gateway's own mocked."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway import __version__
from gateway.config import ConfigError, parse_config
from tests.conftest import SENT_AT, make_config, new_topic, session

IAC, WILL, WONT, DO, DONT, SB, SE, GA, EOR = 255, 251, 252, 253, 254, 250, 240, 249, 239
TTYPE, NAWS, NEW_ENVIRON, CHARSET, GMCP = 24, 31, 39, 42, 201


def cmd(*codes: int) -> bytes:
    return bytes(codes)


def gmcp(payload: bytes) -> bytes:
    return cmd(IAC, SB, GMCP) + payload + cmd(IAC, SE)


async def subneg_answer(conn, option: int, head: bytes) -> bytes:
    """The body of the next ``IAC SB <option> <head> ... IAC SE`` the gateway sent the game."""
    start = await conn.wait_for(cmd(IAC, SB, option) + head)
    end = await conn.wait_for(cmd(IAC, SE))
    return bytes(conn.received[start:end - 2])


# -- 3 configuration ---------------------------------------------------------------------------

def test_config_defaults_of_media_url_mxp_deny_admin_and_mudstandards():
    # SPEC 3: every key has a default; test_config.py checks the others one by one.
    c = parse_config("games: [{name: g, host: h, port: 1}]")
    (g,) = c.games
    assert g.media_url is None and g.mxp is True
    assert c.security.deny == []
    assert c.security.deny_message == "Connections from your network are not accepted here."
    assert c.admin.token_env is None
    assert c.mudstandards.subprotocols == ["terminal", "gmcp", "json", "telnet"]


def test_config_unknown_keys_are_errors_in_every_section_and_name_host_port_are_required():
    # SPEC 3: "Unknown keys are errors. Every key has a default except games and, in each
    # game, name, host and port." (test_config.py: the top level, a game, auth, admin.)
    for section in ["listen", "sessions", "security", "limits", "mudstandards", "metrics", "logging"]:
        with pytest.raises(ConfigError) as info:
            parse_config(f"games: [{{name: g, host: h, port: 1}}]\n{section}: {{colour: red}}")
        assert str(info.value) == f"Object contains unknown field `colour` - at `$.{section}`"
    for missing, game in [("name", "{host: h, port: 1}"), ("host", "{name: g, port: 1}"),
                          ("port", "{name: g, host: h}")]:
        with pytest.raises(ConfigError) as info:
            parse_config(f"games: [{{name: a, host: h, port: 1}}, {game}]")
        assert str(info.value) == f"Object missing required field `{missing}` - at `$.games[1]`"


# -- 4.1 transport ---------------------------------------------------------------------------------

async def test_a_message_without_a_ref_is_applied_when_valid_and_otherwise_dropped(joined):
    # SPEC 4.1: a bad message "gets an error reply when it carries a ref ... and is otherwise
    # dropped"; 4.4: only a push with a ref is answered, but a valid one without is still acted on.
    phx, topic, conn = joined
    for frame in [["1", None, topic, "recv", {"message": "no ref"}],
                  ["1", None, new_topic(), "recv", {"message": "not joined"}],
                  ["1", None, topic, "recv", {"message": 5}],
                  ["1", None, topic, "shout", {}]]:
        await phx.ws.send_str(json.dumps(frame))
    assert await phx.barrier() == []  # no reply to any of them, and the socket goes on
    assert (await phx.request(topic, "recv", {"message": "look"}))["status"] == "ok"
    await conn.wait_for(b"look\r\n")
    assert bytes(conn.received).endswith(b"no ref\r\nlook\r\n")


# -- 4.2 joining ---------------------------------------------------------------------------------

async def test_join_payload_keys_are_optional_and_null_is_absent(mud, gateway):
    # SPEC 4.2: {"game", "last_seq", "screen_reader"}, "all optional". Reading (docs/protocol.md):
    # a key given as null is the same as a key left out, for each of the three.
    phx, topic, conn, _ = await session(mud, gateway,
                                        join={"game": None, "last_seq": None, "screen_reader": None})
    conn.send(cmd(IAC, DO, TTYPE))
    await conn.wait_for(cmd(IAC, WILL, TTYPE))
    assert await ttype_mtts(conn) == b"MTTS %d" % (1 | 4 | 8 | 128 | 256)  # no screen reader bit


async def test_a_tls_handshake_not_done_within_connect_timeout_is_game_unavailable(mud, gateway):
    # SPEC 4.2: "If the game cannot be reached within connect_timeout, or the TLS handshake
    # fails": game unavailable. Here TCP connects at once and the game never answers the
    # TLS hello; connect_timeout bounds the whole connect, handshake included.
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        _, connect = await gateway(make_config(mud.port, games=f"""  - name: mute
    host: 127.0.0.1
    port: {port}
    tls: true
    tls_verify: false
    connect_timeout: 0.5"""))
        phx = await connect()
        reply = await phx.join(new_topic(), {"game": "mute"})
        assert reply["status"] == "error" and reply["response"]["reason"] == "game unavailable", reply
        assert isinstance(reply["response"]["detail"], str) and reply["response"]["detail"]
        assert len(accepted) == 1  # it was the handshake that timed out, not the TCP connect
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


# -- 4.3 server -> browser events --------------------------------------------------------------

@pytest.mark.parametrize("vsn", ["2.0.0", "1.0.0"])
async def test_event_payloads_hold_exactly_their_fields_and_pushes_carry_join_ref_and_null_ref(mud, gateway, vsn):
    # SPEC 4.3: echo/prompt {message, seq, sent_at}, gmcp {module, data, seq, sent_at}, option
    # {type: "echo", echo, seq, sent_at}, disconnect {reason, sent_at}; seq from 1, one a
    # event; pushes carry the channel's join_ref and a null ref (V1 objects too, 4.1).
    _, connect = await gateway(make_config(mud.port))
    phx = await connect(vsn=vsn)
    topic = new_topic()
    assert (await phx.join(topic, join_ref="j7"))["status"] == "ok"
    conn = await mud.next_connection()
    conn.send(b"line\r\n" + gmcp(b'Char.Vitals {"hp":1}') + cmd(IAC, WILL, 1) + b"Password: " + cmd(IAC, GA)
              + cmd(IAC, WONT, 1) + b"\r\npartial")
    await phx.expect(lambda f: f[3] == "echo" and f[4]["message"] == "partial")  # after prompt_flush_ms
    conn.close()
    await phx.event(topic, "disconnect")
    pushes = [f for f in phx.frames if f[2] == topic and f[3] != "phx_reply" and f[3] != "phx_close"]
    assert [f[3] for f in pushes] == ["echo", "gmcp", "option", "prompt", "option", "echo", "echo", "disconnect"]
    fields = {"echo": {"message", "seq", "sent_at"}, "prompt": {"message", "seq", "sent_at"},
              "gmcp": {"module", "data", "seq", "sent_at"}, "option": {"type", "echo", "seq", "sent_at"},
              "disconnect": {"reason", "sent_at"}}
    for join_ref, ref, _, event, payload in pushes:
        assert (join_ref, ref) == ("j7", None), event
        assert set(payload) == fields[event], payload
        assert isinstance(payload["sent_at"], str) and SENT_AT.match(payload["sent_at"])
    assert [f[4]["seq"] for f in pushes[:-1]] == list(range(1, 8))
    assert all(type(f[4]["seq"]) is int for f in pushes[:-1])
    options = [f[4] for f in pushes if f[3] == "option"]
    assert [(o["type"], o["echo"]) for o in options] == [("echo", False), ("echo", True)]
    assert pushes[1][4]["module"] == "Char.Vitals" and pushes[1][4]["data"] == {"hp": 1}
    assert pushes[3][4]["message"] == "Password: "
    assert pushes[-1][4]["reason"] == "closed by game"


# -- 4.4 browser -> server pushes --------------------------------------------------------------

async def test_every_push_with_a_ref_is_answered(joined):
    # SPEC 4.4: "Every push with a ref is answered ... Nothing the browser sends is dropped
    # without an error reply" (4.1: a topic not joined gets an error reply).
    phx, topic, conn = joined
    other = new_topic()
    cases = [
        ("phoenix", "shout", {}),              # an event the phoenix topic does not have
        (topic, "gmcp", "Core.Ping"),          # a payload that is no object
        (topic, "naws", None),
        (other, "gmcp", {"module": "Core.Ping"}),   # a topic not joined
        (other, "naws", {"width": 80, "height": 24}),
        (topic, "phx_join_typo", {}),
    ]
    for t, event, payload in cases:
        reply = await phx.request(t, event, payload)
        assert reply["status"] == "error" and isinstance(reply["response"]["reason"], str), (t, event, reply)
    assert (await phx.request(topic, "recv", {"message": "still"}))["status"] == "ok"
    await conn.wait_for(b"still\r\n")


# -- 5 telnet side -----------------------------------------------------------------------------

async def test_gmcp_hello_and_new_environ_client_version_are_the_package_version(joined):
    # SPEC 5: Core.Hello {"client": "mud-gateway", "version": ...}; NEW-ENVIRON CLIENT_VERSION.
    phx, topic, conn = joined
    conn.send(cmd(IAC, WILL, GMCP))
    body = await subneg_answer(conn, GMCP, b"Core.Hello ")
    assert json.loads(body) == {"client": "mud-gateway", "version": __version__}
    conn.send(cmd(IAC, DO, NEW_ENVIRON))
    await conn.wait_for(cmd(IAC, WILL, NEW_ENVIRON))
    conn.send(cmd(IAC, SB, NEW_ENVIRON, 1, 0) + b"CLIENT_VERSION" + cmd(IAC, SE))
    assert await subneg_answer(conn, NEW_ENVIRON, b"\x00") == b"\x00CLIENT_VERSION\x01" + __version__.encode()


async def ttype_mtts(conn) -> bytes:
    """The third TTYPE answer (``MTTS <bits>``), asking three times."""
    for _ in range(3):
        conn.send(cmd(IAC, SB, TTYPE, 1, IAC, SE))
        answer = await subneg_answer(conn, TTYPE, b"\x00")
    return answer


async def environ_mtts(conn) -> bytes:
    conn.send(cmd(IAC, SB, NEW_ENVIRON, 1, 0) + b"MTTS" + cmd(IAC, SE))
    body = await subneg_answer(conn, NEW_ENVIRON, b"\x00")  # IS
    assert body.startswith(b"\x00MTTS\x01"), body  # VAR MTTS VALUE
    return body[len(b"\x00MTTS\x01"):]


async def test_new_environ_mtts_is_the_ttype_bits_with_screen_reader_and_after_charset(mud, gateway):
    # SPEC 5: NEW-ENVIRON MTTS has "the same bits as TTYPE": screen reader (64) when the join
    # asked for it (4.2), UTF-8 (4) when the game's encoding is UTF-8 (here: once CHARSET agreed it).
    phx, topic, conn, _ = await session(mud, gateway, game_extra="    encoding: latin-1",
                                        join={"screen_reader": True})
    conn.send(cmd(IAC, DO, TTYPE) + cmd(IAC, DO, NEW_ENVIRON))
    await conn.wait_for(cmd(IAC, WILL, TTYPE))
    await conn.wait_for(cmd(IAC, WILL, NEW_ENVIRON))
    before = 1 | 8 | 64 | 128 | 256
    assert await ttype_mtts(conn) == b"MTTS %d" % before
    assert await environ_mtts(conn) == b"%d" % before
    conn.send(cmd(IAC, WILL, CHARSET))
    await conn.wait_for(cmd(IAC, DO, CHARSET))
    conn.send(cmd(IAC, SB, CHARSET, 1) + b";UTF-8" + cmd(IAC, SE))
    await conn.wait_for(cmd(IAC, SB, CHARSET, 2) + b"UTF-8" + cmd(IAC, SE))
    conn.send(cmd(IAC, SB, TTYPE, 1, IAC, SE))
    assert await subneg_answer(conn, TTYPE, b"\x00") == b"MTTS %d" % (before | 4)
    assert await environ_mtts(conn) == b"%d" % (before | 4)






async def test_mssp_is_the_latest_any_session_received_and_no_connection_of_its_own(mud, gateway):
    # SPEC 5: "the latest variables any session of a game received ... are what /api/games
    # shows for it. The gateway opens no connection of its own to learn them."
    client, connect = await gateway(make_config(mud.port))

    async def mssp() -> object:
        return (await (await client.get("/api/games")).json())["games"][0]["mssp"]

    assert await mssp() is None
    assert mud.connections == [] and mud.unclaimed() == 0  # nothing dialled to ask
    phx = await connect()
    topics = [new_topic(), new_topic()]
    conns = []
    for i, topic in enumerate(topics):
        assert (await phx.join(topic, join_ref=str(i)))["status"] == "ok"
        conns.append(await mud.next_connection())
    for conn in conns:
        conn.send(cmd(IAC, WILL, 70))
        await conn.wait_for(cmd(IAC, DO, 70))
    for (topic, conn), table in zip(zip(topics, conns), [b"\x01NAME\x02A", b"\x01NAME\x02B\x01PLAYERS\x022"]):
        conn.send(cmd(IAC, SB, 70) + table + cmd(IAC, SE) + b"x\r\n")
        await phx.event(topic, "echo")  # read after the MSSP
    assert await mssp() == {"NAME": "B", "PLAYERS": "2"}  # the second session's, the latest
    for topic, conn in zip(topics, conns):
        conn.close()
        await phx.event(topic, "disconnect")
    assert await mssp() == {"NAME": "B", "PLAYERS": "2"}  # kept when the sessions are over
    assert len(mud.connections) == 2



@pytest.mark.parametrize("encoding, charset, mtts", [
    ("utf8", b"UTF-8", 1 | 4 | 8 | 128 | 256),      # any spelling of UTF-8 in the config
    ("UTF-8", b"UTF-8", 1 | 4 | 8 | 128 | 256),
    ("latin-1", b"LATIN-1", 1 | 8 | 128 | 256),     # another encoding: its name as configured
])
async def test_new_environ_charset_names_utf8_as_utf8(mud, gateway, encoding, charset, mtts):
    # SPEC 5: NEW-ENVIRON CHARSET, as MNES describes; reading (docs/protocol.md): a UTF-8 game is
    # "UTF-8" however the config spells it (the name MNES and MUD servers compare with).
    phx, topic, conn, _ = await session(mud, gateway, game_extra=f"    encoding: {encoding}")
    conn.send(cmd(IAC, DO, NEW_ENVIRON))
    await conn.wait_for(cmd(IAC, WILL, NEW_ENVIRON))
    conn.send(cmd(IAC, SB, NEW_ENVIRON, 1, 0) + b"CHARSET" + cmd(0) + b"MTTS" + cmd(IAC, SE))
    assert await subneg_answer(conn, NEW_ENVIRON, b"\x00") == b"\x00CHARSET\x01%s\x00MTTS\x01%d" % (charset, mtts)
