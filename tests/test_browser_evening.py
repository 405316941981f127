"""An evening of play in real headless Chromium (SPEC 7 and 7.1): the edges a player meets
over hours, which the other browser test files leave out (a session that ends while the
page is away, ...).

The real gateway in front of the scripted fake MUD, as in tests/test_browser.py.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from playwright.async_api import Browser

from tests.conftest import make_config
from tests.fakemud import FakeMud
from tests.test_browser import (  # noqa: F401
    COMPUTED, IAC, WILL, browser, cmd, connected, fake_game, kill_websockets, log_has, log_text, open_page, send_line,
    serve,
)
from tests.test_browser_a11y import in_play

pytestmark = pytest.mark.asyncio(loop_scope="module")

ECHO = 1


async def sessions(url: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "healthz") as response:
            return (await response.json())["sessions"]


async def test_a_new_session_after_a_drop_leaves_password_mode(browser: Browser) -> None:  # noqa: F811
    """SPEC 7: the input line is a password field while `echo` is off. The game asked for a
    password, the page went away, and the session ended meanwhile (the game hung up): the
    rejoin starts a new session, whose echo is on. The page must leave password mode, or the
    player's next lines (a name, a command) go unseen, unkept and out of the log."""
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(cmd(IAC, WILL, ECHO) + b"Password: ")
        await page.wait_for_selector("#input[type=password]")
        await page.context.set_offline(True)
        assert kill_websockets(g.app) == 1
        await page.wait_for_selector("#status[data-state=reconnecting]")
        g.conn.close()  # the game hangs up while the page is away: the session ends
        for _ in range(400):
            if await sessions(g.url) == 0:
                break
            await asyncio.sleep(0.05)
        assert await sessions(g.url) == 0
        await page.context.set_offline(False)
        second = await g.mud.next_connection(timeout=20)
        await connected(page)
        await log_has(page, "A new game session started.")
        await page.wait_for_selector("#input[type=text]")
        await send_line(page, "Gandalf")
        await second.wait_for(b"Gandalf\r\n")
        await page.wait_for_selector("#log .line.command:has-text('Gandalf')")


FOCUSED = "() => document.activeElement && document.activeElement.id"


async def test_the_newest_output_button_gives_the_focus_back(browser: Browser) -> None:  # noqa: F811
    """SPEC 7.1: focus goes back to the input line after any button in play is used. The split's
    "Newest output" button hides itself as it closes the split: by mouse or by keyboard, the
    focus must not be left on nothing (the body), where Enter sends nothing and Up/Down walk
    no history."""
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"".join(b"line %04d\r\n" % i for i in range(300)))
        await log_has(page, "line 0299")
        for how in ("mouse", "keyboard"):
            await page.evaluate("() => { const l = document.getElementById('log'); l.scrollTop = 0; }")
            await page.wait_for_selector("#tail-box", state="visible")
            if how == "mouse":
                await page.click("#jump")
            else:
                await page.focus("#jump")
                await page.keyboard.press("Enter")
            await page.wait_for_selector("#tail-box", state="hidden")
            assert await page.evaluate(FOCUSED) == "input", how
        await page.keyboard.type("look")
        await page.keyboard.press("Enter")
        await g.conn.wait_for(b"look\r\n")


async def test_drops_and_a_reload_during_output_lose_and_double_nothing(browser: Browser) -> None:  # noqa: F811
    """SPEC 6 and 7: the page's socket dies three times while the game writes, and the page is
    reloaded once: every line is in the log once, in order (a reload replays the kept
    scrollback, a drop exactly what was missed), and the game saw one connection."""
    total = 4000
    async with fake_game(browser) as g:
        page = g.page
        progress = asyncio.Event()
        sent = 0

        async def game_output() -> None:
            nonlocal sent
            for start in range(0, total, 20):
                g.conn.send(b"".join(b"L%05d\r\n" % i for i in range(start, start + 20)))
                await g.conn.drain()
                sent = start + 20
                progress.set()
                await asyncio.sleep(0.004)

        writer = asyncio.ensure_future(game_output())
        try:
            for at, what in ((400, "drop"), (1200, "reload"), (2000, "drop"), (2600, "drop")):
                while sent < at:
                    progress.clear()
                    await progress.wait()
                if what == "drop":
                    kill_websockets(g.app)
                else:
                    await page.reload()
            await writer
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        await connected(page)
        await log_has(page, "L%05d" % (total - 1))
        numbers = re.findall(r"L(\d{5})", await log_text(page))
        assert numbers == ["%05d" % i for i in range(total)]
        assert len(g.mud.connections) == 1


async def test_a_join_waits_for_a_game_slower_than_a_push_timeout(browser: Browser) -> None:  # noqa: F811
    """SPEC 4.2: a join that starts a new session replies once the game's connection is open,
    or with "game unavailable" after the game's ``connect_timeout``. A game whose connection takes
    longer than the page's push timeout (10 s) to fail (here a TLS handshake the game never
    answers, connect_timeout 12 s) must end in that reply: not in a join given up by the page,
    a phx_leave that abandons the connection, and a rejoin that starts another, for ever."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # never a byte back: the handshake waits

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    games = f"""
  - name: slow
    host: 127.0.0.1
    port: {port}
    tls: true
    connect_timeout: 12
"""
    try:
        async with FakeMud() as mud:
            async with serve(make_config(mud.port, games=games)) as (_, url):
                async with open_page(browser, url + "?game=slow") as page:
                    await page.wait_for_selector("#status[data-state=ended]", timeout=40_000)
                    status = await page.inner_text("#status")
                    assert status.startswith("Could not join: game unavailable"), status
                    assert len(accepted) == 1  # one connection tried, not one per timed-out join
    finally:
        server.close()
        for w in accepted:
            w.close()
        await server.wait_closed()


async def test_a_new_session_shows_none_of_the_last_ones_state(browser: Browser) -> None:  # noqa: F811
    """SPEC 6 and 7: the page shows the session's current GMCP state, prompt and echo state. A
    new session (after "Connect again") has none yet: the last session's room, exits, lit pad,
    gauges and prompt are gone (an exit button left there sends its direction to the new
    session's login prompt), and its colour does not go on into the new session's text."""
    async with fake_game(browser, {"width": 640, "height": 700}) as g:
        page = g.page
        await in_play(g)  # room with exits, gauges, a prompt
        await page.wait_for_selector("#pad button.lit", state="attached")
        g.conn.send(b"\x1b[31mred and never reset\r\n")
        await log_has(page, "red and never reset")
        g.conn.close()
        await page.wait_for_selector("#status[data-state=ended]")
        await page.click("#again")
        second = await g.mud.next_connection(timeout=20)
        await connected(page)
        second.send(b"By what name are you known?\r\n")
        await log_has(page, "By what name are you known?")
        state = await page.evaluate("""() => ({
            room: document.getElementById('room').hidden,
            exits: document.querySelectorAll('#exits button').length,
            lit: document.querySelectorAll('#pad button.lit').length,
            vitals: document.getElementById('vitals').hidden,
            gauges: document.querySelectorAll('#vitals .gauge').length,
            prompt: document.getElementById('prompt').textContent,
        })""")
        assert state == {"room": True, "exits": 0, "lit": 0, "vitals": True, "gauges": 0, "prompt": ""}, state
        colour = await page.evaluate(COMPUTED, ["By what name are you known?", "color"])
        assert colour == await page.evaluate("getComputedStyle(document.getElementById('log')).color")
