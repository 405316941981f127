"""TinyMUX (Debian) played through the gateway with phoenix.js: welcome screen, EOR prompts,
CHARSET UTF-8, NEW-ENVIRON IPADDRESS on the wire, ``connect Wizard potrzebie``."""

from __future__ import annotations

import pytest

from tests.real.conftest import until

pytestmark = pytest.mark.real

IAC, WILL, DO, SB, SE, EOR = 255, 251, 253, 250, 240, 239
TELOPT_EOR, NEW_ENVIRON, CHARSET = 25, 39, 42
WELCOME = "Welcome to TinyMUX"


async def open_game(gateway, phoenix_js, headers=None):
    js = await phoenix_js(gateway, headers)
    before = len(gateway.relay.connections)
    reply = await js.join({"game": "tinymux"})
    assert reply["status"] == "ok" and reply["response"] == {"game": "tinymux", "resumed": False, "input_n": 0}, reply
    await js.text("connects you to an existing character")
    rec = await until(lambda: len(gateway.relay.connections) > before and gateway.relay.connections[before],
                      "the relay's connection")
    return js, rec


async def login(js) -> None:
    mark = len(js.events)
    await js.send("connect Wizard potrzebie")
    await js.send("think Logged in as [name(me)].")
    await js.text("Logged in as Wizard.", mark)


async def test_tinymux_welcome_screen_wizard_login_and_quit(tinymux_gateway, phoenix_js):
    js, _ = await open_game(tinymux_gateway, phoenix_js)
    first = next(e for e in js.events if e["event"] in ("echo", "prompt"))
    assert first["event"] == "echo" and first["payload"]["message"].startswith(WELCOME)
    assert "\r" not in js.text_since(0)
    await login(js)
    mark = len(js.events)
    await js.send("QUIT")
    bye = await js.event(lambda e: e["event"] == "disconnect", "disconnect after QUIT", mark)
    assert bye["payload"]["reason"] == "closed by game"
    assert "Disconnected" in js.text_since(mark)


async def test_tinymux_eor_marked_prompt_is_a_prompt_event(tinymux_gateway, phoenix_js):
    js, rec = await open_game(tinymux_gateway, phoenix_js)
    # TinyMUX offers EOR and the gateway takes it.
    assert bytes([IAC, WILL, TELOPT_EOR]) in rec.to_gateway
    await until(lambda: bytes([IAC, DO, TELOPT_EOR]) in rec.to_game, "IAC DO EOR from the gateway")
    await login(js)
    # @program gives a "> " prompt, ended by IAC EOR on the wire.
    await js.send("@va me=$start:@prog %#=me/vb:Please enter a word:")
    await js.send("@vb me=@emit You entered %0!")
    mark = len(js.events)
    await js.send("start")
    prompt = await js.event(lambda e: e["event"] == "prompt", "the @program prompt", mark)
    assert prompt["payload"]["message"] == "> "
    assert "Please enter a word:\n" in js.text_since(mark)
    assert b"> " + bytes([IAC, EOR]) in rec.to_gateway
    mark = len(js.events)
    await js.send("foobar")
    assert "You entered foobar!" in await js.text("You entered foobar!", mark)


async def test_tinymux_charset_utf8_agreed_and_non_ascii_say_round_trips(tinymux_gateway, phoenix_js):
    js, rec = await open_game(tinymux_gateway, phoenix_js)
    # TinyMUX asks (CHARSET REQUEST); the gateway ACCEPTS UTF-8.
    accepted = bytes([IAC, SB, CHARSET, 2]) + b"UTF-8" + bytes([IAC, SE])
    await until(lambda: accepted in rec.to_game, "IAC SB CHARSET ACCEPTED UTF-8 IAC SE")
    await login(js)
    mark = len(js.events)
    await js.send("think [terminfo(me)]")
    assert "unicode" in await js.text("unicode", mark)  # TinyMUX: "client encoding is UTF-8"
    mark = len(js.events)
    said = "héllo wörld ☃ ünïcödé"
    await js.send(f"say {said}")
    text = await js.text("ünïcödé", mark)
    assert f"You say, “{said}”" in text
    assert f"say {said}\r\n".encode() in rec.to_game  # UTF-8 on the wire both ways
    assert f"“{said}”".encode() in rec.to_gateway


async def test_tinymux_new_environ_gives_the_game_the_player_address(tinymux_gateway, phoenix_js):
    # The gateway trusts 127.0.0.1 as a proxy here: the player is the X-Forwarded-For address.
    js, rec = await open_game(tinymux_gateway, phoenix_js, headers={"X-Forwarded-For": "203.0.113.7"})
    assert bytes([IAC, DO, NEW_ENVIRON]) in rec.to_gateway
    wire = await until(lambda: (i := rec.to_game.find(bytes([IAC, SB, NEW_ENVIRON, 0]))) >= 0
                       and (j := rec.to_game.find(bytes([IAC, SE]), i)) >= 0 and bytes(rec.to_game[i:j]),
                       "IAC SB NEW-ENVIRON IS ... from the gateway")
    # VAR "IPADDRESS" VALUE "203.0.113.7" (VAR = 0, VALUE = 1)
    assert b"\x00IPADDRESS\x01203.0.113.7" in wire, wire
    assert b"\x00CLIENT_NAME\x01MUD-GATEWAY" in wire, wire
    await login(js)
