"""Evennia (PyPI) played through the gateway with phoenix.js: login screen, account, GMCP, MCCP2, MSSP, quit."""

from __future__ import annotations

import asyncio
import itertools
import re
import zlib
from urllib.parse import unquote

import aiohttp
import pytest

from tests.real.conftest import until

pytestmark = pytest.mark.real

IAC, WILL, DO, SB, SE = 255, 251, 253, 250, 240
MCCP2 = 86
MXP = 91
NAWS = 31
SCREEN = "create <username> <password>"  # on Evennia's login screen
_accounts = itertools.count(1)


async def open_game(evennia_gateway, phoenix_js):
    js = await phoenix_js(evennia_gateway)
    reply = await js.join({"game": "evennia"})
    assert reply["status"] == "ok" and reply["response"] == {"game": "evennia", "resumed": False, "input_n": 0}, reply
    await js.text(SCREEN)
    return js


async def create_and_connect(js) -> str:
    name, password = f"player{next(_accounts)}", "pw-Ev3nnia-ci"
    mark = len(js.events)
    await js.send(f"create {name} {password}")
    await js.text("Is this what you intended?", mark)
    await js.send("y")
    await js.text(f"A new account '{name}' was created", mark)
    mark = len(js.events)
    await js.send(f"connect {name} {password}")
    await js.event(lambda e: e["event"] == "gmcp" and e["payload"]["module"] == "Logged.In",
                   "GMCP Logged.In after connect", mark)
    await js.text("Limbo", mark)
    return name


async def test_evennia_login_screen_account_look_say_and_quit(evennia_gateway, phoenix_js):
    js = await open_game(evennia_gateway, phoenix_js)
    # The login screen arrives as echo text, ANSI colours intact, "\r\n" made "\n".
    screen = js.text_since(0)
    assert "Welcome to \x1b[1m\x1b[32mEvennia CI\x1b[0m" in screen
    assert "\r" not in screen
    first = next(e for e in js.events if e["event"] in ("echo", "prompt"))
    assert first["event"] == "echo"

    name = await create_and_connect(js)
    mark = len(js.events)
    await js.send("look")
    room = await js.text("Welcome to your new", mark)
    assert "Limbo" in room
    mark = len(js.events)
    await js.send("say héllo wörld ☃")
    said = await js.text("wörld", mark)
    assert "héllo wörld ☃" in said and "You say" in said

    mark = len(js.events)
    await js.send("quit")
    bye = await js.event(lambda e: e["event"] == "disconnect", "disconnect after quit", mark)
    assert bye["payload"]["reason"] == "closed by game"
    assert "Quitting" in js.text_since(mark)
    await js.event(lambda e: e["event"] == "phx_close", "phx_close after the disconnect", mark)
    # seq runs 1, 2, 3, ... over every output event of the session
    seqs = [e["payload"]["seq"] for e in js.events if e["event"] in ("echo", "prompt", "gmcp", "option")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert name


async def test_evennia_gmcp_arrives_as_parsed_gmcp_events(evennia_gateway, phoenix_js):
    js = await open_game(evennia_gateway, phoenix_js)
    rec = evennia_gateway.relay.connections[-1]
    # GMCP from the browser (no data) asks Evennia for its client options; the answer,
    # Core.Supports.Get {...}, is a gmcp event with the JSON parsed: what was negotiated
    # (MCCP on, our MTTS bits: UTF-8 and 256 colours, NAWS 80x24).
    mark = len(js.events)
    reply = await js.push("gmcp", {"module": "Core.Client.Options"})
    assert reply["status"] == "ok", reply
    opts = await js.event(lambda e: e["event"] == "gmcp" and e["payload"]["module"] == "Core.Supports.Get",
                          "Core.Supports.Get answering Core.Client.Options", mark)
    data = opts["payload"]["data"]
    assert isinstance(data, dict) and data["ENCODING"] == "utf-8", data
    assert data["MCCP"] is True and data["UTF-8"] is True and data["XTERM256"] is True, data
    assert data["SCREENWIDTH"] == {"0": 80} and data["SCREENHEIGHT"] == {"0": 24}, data
    # Our Core.Hello went out (Evennia takes it as client options).
    assert b"\xff\xfa\xc9Core.Hello {" in rec.to_game
    # NAWS from the browser reaches the game (Evennia applies a resize only on the next one).
    assert (await js.push("naws", {"width": 132, "height": 50}))["status"] == "ok"
    await until(lambda: bytes([IAC, SB, NAWS, 0, 132, 0, 50, IAC, SE]) in rec.to_game, "NAWS 132x50 on the wire")
    # After login, Evennia's own Logged.In arrives as a gmcp event without data.
    mark = len(js.events)
    await create_and_connect(js)
    logged = next(e for e in js.events[mark:] if e["event"] == "gmcp" and e["payload"]["module"] == "Logged.In")
    assert logged["payload"]["data"] is None


async def test_evennia_mccp2_negotiated_and_text_still_right(evennia_gateway, phoenix_js):
    relay = evennia_gateway.relay
    before = len(relay.connections)
    js = await open_game(evennia_gateway, phoenix_js)
    rec = relay.connections[before]
    await create_and_connect(js)
    mark = len(js.events)
    await js.send("look")
    room = await js.text("Welcome to your new", mark)

    start = bytes([IAC, SB, MCCP2, IAC, SE])
    assert bytes([IAC, WILL, MCCP2]) in rec.to_gateway and bytes([IAC, DO, MCCP2]) in rec.to_game
    compressed = await until(lambda: (i := rec.to_gateway.find(start)) >= 0
                             and bytes(rec.to_gateway[i + len(start):]), "IAC SB MCCP2 IAC SE from Evennia")
    # The room travelled compressed: not in the clear on the wire ...
    assert b"Welcome to your new" not in compressed
    # ... and inflated, the wire holds exactly the text the browser got.
    inflated = await until(lambda: b"Welcome to your new" in (
        data := zlib.decompressobj().decompress(bytes(rec.to_gateway[rec.to_gateway.find(start) + len(start):])))
        and data, "the room text in the inflated stream")
    line = next(x for x in room.split("\n") if "Welcome to your new" in x)
    assert line.encode() in inflated.replace(b"\r\n", b"\n")


async def test_evennia_mssp_reaches_api_games(evennia_gateway, phoenix_js):
    await open_game(evennia_gateway, phoenix_js)
    async with aiohttp.ClientSession() as http:
        for _ in range(300):  # the MSSP subnegotiation may land just after the login screen
            async with http.get(f"{evennia_gateway.url}/api/games") as r:
                data = (await r.json())["games"][0]["mssp"]
            if data is not None:
                break
            await asyncio.sleep(0.1)
    assert data is not None, "no MSSP in /api/games"
    # Evennia's own values (NAME from this game's server/conf/mssp.py, set up by the fixture).
    assert data["NAME"] == "Evennia CI" and data["CODEBASE"] == "Evennia", data
    assert data["MCCP"] == "1" and data["GMCP"] == "1" and data["UTF-8"] == "1", data


async def test_evennia_mxp_send_links_reach_the_browser_as_osc8_send_links(evennia_gateway, phoenix_js):
    """Evennia speaks MXP when the client accepts it: its clickable help topics (``|lc...|lt...|le``,
    sent as ``ESC[4z<SEND HREF="help ...">...ESC[4z</SEND>``, with ``&lt;`` for ``<``) reach the
    browser as OSC 8 ``send:`` links, with no MXP markup left in the text."""
    relay = evennia_gateway.relay
    before = len(relay.connections)
    js = await open_game(evennia_gateway, phoenix_js)
    rec = relay.connections[before]
    assert bytes([IAC, DO, MXP]) in rec.to_game  # our answer to Evennia's WILL MXP
    # Evennia escapes "<" as "&lt;" once MXP is on: the screen reads as before
    assert SCREEN in js.text_since(0)
    await create_and_connect(js)
    mark = len(js.events)
    await js.send("help")
    text = await js.text("\x1b]8;;send:help%20", mark)
    links = re.findall(r"\x1b\]8;;(send:[^\x1b]*)\x1b\\(.*?)\x1b\]8;;\x1b\\", text)
    assert links, text
    commands = {unquote(uri[len("send:"):]): re.sub(r"\x1b\[[0-9;]*m", "", label) for uri, label in links}
    assert "help look" in commands and commands["help look"] == "look", commands
    assert "<SEND" not in text and "\x1b[4z" not in text and "&lt;" not in text
    # the command a player would click, sent as the page sends it
    mark = len(js.events)
    await js.send("help look")
    assert "look" in await js.text("Usage", mark)
