"""The browser client at ``GET /`` in real headless Chromium (Debian's, driven by Playwright).

Each test starts the real gateway (aiohttp on a real socket) in front of the
demo game or the scripted fake MUD, opens the page and plays through it. One
browser serves the whole module (a module-wide event loop), one fresh browser
context (storage, cookies) per test. Screenshots of the client after login go
to docs/screenshots/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from gateway.config import demo_config
from gateway.demo import start_demo_game
from gateway.routes import SOCKETS, create_app
from tests.conftest import make_config
from tests.fakemud import FakeConnection, FakeMud

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1100, "height": 700}
PHONE = {"width": 360, "height": 640}
CAP = 5000  # the log's scrollback cap (output.js)

IAC, SB, SE, DO, WILL = 255, 250, 240, 253, 251
NAWS, TTYPE, MSSP = 31, 24, 70


def cmd(*codes: int) -> bytes:
    return bytes(codes)


def gmcp(module: str, data: str) -> bytes:
    return cmd(IAC, SB, 201) + f"{module} {data}".encode() + cmd(IAC, SE)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (./dev test does it, as root)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """``app`` on a free loopback port: its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serve(config: Any) -> AsyncIterator[tuple[web.Application, str]]:
    """The real gateway on a free loopback port: (app, page URL)."""
    app = create_app(config)
    async with serve_app(app) as url:
        yield app, url


@contextlib.asynccontextmanager
async def open_page(browser: Browser, url: str, viewport: dict = DESKTOP,
                    **context_args: Any) -> AsyncIterator[Page]:
    """A page in a fresh browser context; a JavaScript error on it fails the test."""
    ctx = await browser.new_context(viewport=viewport, **context_args)
    page = await ctx.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append(f"dialog opened: {d.message}"))
    try:
        await page.goto(url)
        yield page
    finally:
        await ctx.close()
    assert not errors, errors


def console_errors(*pages: Page, page_errors: bool = False) -> list[str]:
    """The console's error messages of ``pages`` from now on (and, with ``page_errors``, their
    JavaScript errors, for a page not opened by ``open_page``): the caller asserts there are none."""
    errors: list[str] = []
    for page in pages:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        if page_errors:
            page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


class FakeGame:
    def __init__(self, mud: FakeMud, app: web.Application, url: str, page: Page, conn: FakeConnection):
        self.mud, self.app, self.url, self.page, self.conn = mud, app, url, page, conn


@contextlib.asynccontextmanager
async def fake_game(browser: Browser, viewport: dict = DESKTOP, on_connect: bytes = b"",
                    extra: str = "", **context_args: Any) -> AsyncIterator[FakeGame]:
    """The page playing the scripted fake MUD (title "Fake Game"), connected."""
    async with FakeMud(on_connect=on_connect) as mud:
        config = make_config(mud.port, game_extra="    title: Fake Game", extra=extra)
        async with serve(config) as (app, url):
            async with open_page(browser, url, viewport, **context_args) as page:
                conn = await mud.next_connection(timeout=20)
                await connected(page)
                yield FakeGame(mud, app, url, page, conn)


async def connected(page: Page) -> None:
    await page.wait_for_selector("#status[data-state=connected]")


async def log_has(page: Page, text: str, where: str = "#log") -> None:
    await page.wait_for_function(
        "([sel, t]) => document.querySelector(sel).textContent.includes(t)", arg=[where, text])


async def next_frames(page: Page, n: int = 2) -> None:
    """Until ``n`` frames of the page have gone by (what changed before is laid out)."""
    await page.evaluate("""(n) => new Promise((done) => {
      const frame = () => (n-- > 0 ? requestAnimationFrame(frame) : done());
      frame();
    })""", n)


async def log_text(page: Page) -> str:
    """The text of every line the log keeps (lines in lazy blocks too: output.js's logLines)."""
    return await page.evaluate("""async () => {
      const { logLines } = await import(new URL('client/output.js', document.baseURI));
      return [...logLines(document.getElementById('log'))].map((l) => l.textContent).join('');
    }""")


async def send_line(page: Page, text: str) -> None:
    await page.fill("#input", text)
    await page.press("#input", "Enter")


def kill_websockets(app: web.Application) -> int:
    """Drop every browser's TCP connection from the server side, as a network failure would."""
    socks = list(app[SOCKETS])
    for sock in socks:
        sock.transport.abort()
    return len(socks)


RECORD_STATES = """() => {
  window.__states = [];
  const el = document.getElementById('status');
  new MutationObserver(() => window.__states.push(el.dataset.state))
    .observe(el, {attributes: true, attributeFilter: ['data-state']});
}"""


# -- the demo game ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def demo_page(browser: Browser, viewport: dict = DESKTOP, **context_args: Any) -> AsyncIterator[Page]:
    """The page playing the bundled demo game."""
    game = await start_demo_game()
    try:
        async with serve(demo_config(game.port, 0)) as (app, url):
            async with open_page(browser, url, viewport, **context_args) as page:
                yield page
    finally:
        await game.close()


async def screenshot(page: Page, name: str) -> None:
    await page.evaluate("() => document.activeElement.blur()")  # no focus ring, no caret
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / name))


async def login_demo(page: Page, name: str, password: str) -> None:
    await connected(page)
    await page.wait_for_function("() => document.getElementById('prompt').textContent.includes('name')")
    await send_line(page, name)
    await page.wait_for_selector("#input[type=password]")
    await page.fill("#input", password)
    await page.press("#input", "Enter")
    await page.wait_for_selector("#input[type=text]")
    await page.wait_for_selector("#room-name:has-text('The Village Square')")


async def test_play_the_demo_through_the_page(browser: Browser) -> None:
    async with demo_page(browser) as page:
        await login_demo(page, "Tester", "hunter2")
        assert await page.title() == "Demo MUD"
        await log_has(page, "Welcome, Tester!")
        # The prompt is shown as the prompt, not as a log line.
        await page.wait_for_selector("#prompt:has-text('<100hp 50mp>')")
        assert "<100hp 50mp>" not in await log_text(page)
        # Vitals gauges carry their numbers as text and as meter values.
        hp = page.locator(".gauge[data-name=hp]")
        assert await hp.get_attribute("role") == "meter"
        assert await hp.get_attribute("aria-valuenow") == "100"
        assert await hp.get_attribute("aria-valuemax") == "100"
        assert "100/100" in await hp.inner_text()
        # Exits are buttons named by their direction; one moves the player.
        exits = await page.locator("#exits button").all_inner_texts()
        assert exits == ["north", "east", "west", "down"]
        await page.click("#exits button:has-text('north')")
        await page.wait_for_selector("#room-name:has-text('The North Gate')")
        await log_has(page, "A weathered gate of oak and iron")
        assert await page.locator("#exits button").all_inner_texts() == ["south", "up"]
        # The sent command is echoed in the log, muted.
        assert await page.locator("#log .line.command", has_text="north").count() == 1
        await send_line(page, "say Hello from the browser")
        await log_has(page, "You say, 'Hello from the browser'")
        # More than 80 columns at the default font size in a 1100 px window.
        cols = int(await page.get_attribute("#screen", "data-cols") or 0)
        assert cols > 80
        await screenshot(page, "desktop.png")


async def test_phone_screenshot_of_the_demo(browser: Browser) -> None:
    async with demo_page(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2) as page:
        await login_demo(page, "Pocket", "secret")
        # The direction pad lights the room's exits and moves the player.
        lit = await page.locator("#pad button.lit").all_inner_texts()
        assert sorted(lit) == sorted(["N", "E", "W", "Down"])
        await page.tap("#pad button[data-dir=east]")
        await page.wait_for_selector("#room-name:has-text('The Sleeping Dragon Inn')")
        assert await page.locator("#pad button.lit").all_inner_texts() == ["W"]
        assert await page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        await screenshot(page, "phone.png")


async def test_password_is_kept_nowhere(browser: Browser) -> None:
    password = "Pa55-w0rd-Zq9"
    async with demo_page(browser) as page:
        await connected(page)
        await page.wait_for_function("() => document.getElementById('prompt').textContent.includes('name')")
        await send_line(page, "Keeper")
        await page.wait_for_selector("#input[type=password]")
        assert await page.get_attribute("#command", "class") == "secret"
        await page.type("#input", password)
        await page.press("#input", "Enter")
        await page.wait_for_selector("#input[type=text]")
        await log_has(page, "Welcome, Keeper!")
        await send_line(page, "look")
        # The login showed a room already: wait for the look's own line and answer.
        await page.wait_for_function(
            "() => document.querySelectorAll('#log .line.command').length >= 2"
            " && document.getElementById('log').textContent.split('[Exits:').length > 2")
        html = await page.content()
        storage = await page.evaluate(
            "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
        assert password not in html
        assert password not in storage
        assert "Keeper" in storage  # the history is there, the password is not
        # Walking the history never reaches it.
        seen = []
        for _ in range(4):
            await page.press("#input", "ArrowUp")
            seen.append(await page.input_value("#input"))
        assert password not in seen and seen[:2] == ["look", "Keeper"]
        # Nor was it echoed as a command.
        assert await page.locator("#log .line.command").all_inner_texts() == ["Keeper", "look"]


# -- the fake MUD -------------------------------------------------------------------


async def css_var_rgb(page: Page, name: str) -> str:
    hexa = (await page.evaluate(
        "n => getComputedStyle(document.documentElement).getPropertyValue(n)", name)).strip()
    r, g, b = (int(hexa[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


COMPUTED = """([text, prop]) => {
  const walk = document.createTreeWalker(document.getElementById('log'), NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (n.data === text) return getComputedStyle(n.parentElement)[prop];
  }
  return null;
}"""


async def test_ansi_colours_links_and_html_as_text(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(
            b"\x1b[31mred16\x1b[0m \x1b[1;31mboldred\x1b[0m \x1b[94mbrightblue\x1b[0m\r\n"
            b"\x1b[38;5;208morange256\x1b[0m \x1b[38;5;244mgrey256\x1b[0m \x1b[48;5;21mbluebg256\x1b[0m\r\n"
            b"\x1b[38;2;18;52;86mtrue1\x1b[0m \x1b[48;2;200;100;50mtruebg\x1b[0m \x1b[7mreversed\x1b[0m\r\n"
            b"<img src=x onerror=alert(1)><script>alert(2)</script>\r\n"
            b"see https://example.com/a?b=1&c=2. and http://mud.example.org:4000/\r\n"
            b"the end\r\n")
        await log_has(page, "the end")
        colour = lambda text, prop="color": page.evaluate(COMPUTED, [text, prop])  # noqa: E731
        assert await colour("red16") == await css_var_rgb(page, "--ansi-1")
        assert await colour("boldred") == await css_var_rgb(page, "--ansi-9")  # bold is bright
        assert await colour("boldred", "fontWeight") == "700"
        assert await colour("brightblue") == await css_var_rgb(page, "--ansi-12")
        assert await colour("orange256") == "rgb(255, 135, 0)"
        assert await colour("grey256") == "rgb(128, 128, 128)"
        assert await colour("bluebg256", "backgroundColor") == "rgb(0, 0, 255)"
        assert await colour("true1") == "rgb(18, 52, 86)"
        assert await colour("truebg", "backgroundColor") == "rgb(200, 100, 50)"
        # Reverse: the default colours swap.
        assert await colour("reversed") == await css_var_rgb(page, "--log-bg")
        assert await colour("reversed", "backgroundColor") == await css_var_rgb(page, "--log-fg")
        # Markup from the game is text: shown, never run, no element made of it.
        await log_has(page, "<img src=x onerror=alert(1)><script>alert(2)</script>")
        assert await page.locator("#log img, #log script").count() == 0
        # Links: http(s) only, trailing punctuation left out, no referrer, no opener.
        links = await page.eval_on_selector_all(
            "#log a", "as => as.map(a => [a.href, a.rel, a.target, a.textContent])")
        assert links == [
            ["https://example.com/a?b=1&c=2", "noopener noreferrer", "_blank", "https://example.com/a?b=1&c=2"],
            ["http://mud.example.org:4000/", "noopener noreferrer", "_blank", "http://mud.example.org:4000/"],
        ]


async def test_prompt_is_shown_apart_from_the_log(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"first\r\n\x1b[32m<10hp>\x1b[0m " + cmd(IAC, 249))  # IAC GA
        await page.wait_for_selector("#prompt:has-text('<10hp>')")
        assert await page.evaluate(COMPUTED.replace("'log'", "'prompt'"), ["<10hp>", "color"]) == \
            await css_var_rgb(page, "--ansi-2")
        # The newline that ends the prompt's line is not a blank log line; a second one is.
        g.conn.send(b"\r\n")
        await asyncio.sleep(0)
        g.conn.send(b"\r\nafter\r\n")
        await log_has(page, "after")
        lines = await page.locator("#log .line").all_text_contents()
        assert lines == ["first", "", "after"]
        assert "<10hp>" not in await log_text(page)


async def test_chromium_compresses_each_message_on_its_own(browser: Browser) -> None:
    """Chromium offers permessage-deflate and takes our answer (client_no_context_takeover):
    what it sends, compressed message by message, and what we send, compressed, both arrive."""
    async with fake_game(browser) as g:
        (sock,) = g.app[SOCKETS]
        assert sock._conn.reader.deflate and sock._conn.encoder.deflate  # agreed in the 101
        for n in range(3):  # the same long line: with context takeover it would refer back
            await send_line(g.page, "say the orc hits you, the orc hits you, the orc hits you " + str(n))
            await g.conn.wait_for(b"orc hits you " + str(n).encode() + b"\r\n")
        g.conn.send(b"The orc hits you. " * 40 + b"\r\n")
        await log_has(g.page, "The orc hits you. The orc hits you.")


async def test_vitals_gauge_follows_the_game(browser: Browser) -> None:
    async with fake_game(browser) as g:
        g.conn.send(b"\xff\xfb\xc9")  # IAC WILL GMCP
        await g.conn.wait_for(b"\xff\xfd\xc9")
        g.conn.send(gmcp("Char.Vitals", '{"hp": 90, "maxhp": 120, "mp": "10", "maxmp": "40", "xp": 5}'))
        meter = g.page.locator(".gauge[data-name=hp]")
        await g.page.wait_for_selector(".gauge[data-name=hp][aria-valuenow='90']")
        width_before = await g.page.eval_on_selector(".gauge[data-name=hp] .gauge-fill", "e => e.style.width")
        g.conn.send(gmcp("Char.Vitals", '{"hp": 30, "maxhp": 120, "mp": "40", "maxmp": "40"}'))
        await g.page.wait_for_selector(".gauge[data-name=hp][aria-valuenow='30']")
        assert await meter.get_attribute("aria-valuemax") == "120"
        assert "30/120" in await meter.inner_text()
        width_after = await g.page.eval_on_selector(".gauge[data-name=hp] .gauge-fill", "e => e.style.width")
        assert (width_before, width_after) == ("75%", "25%")
        assert await g.page.get_attribute(".gauge[data-name=mp]", "aria-valuenow") == "40"
        assert await g.page.locator(".gauge").count() == 2  # xp has no maximum: no gauge


async def test_two_megabyte_burst_keeps_the_cap(browser: Browser) -> None:
    async with fake_game(browser) as g:
        line = b"burst %06d \x1b[1;33mgold\x1b[0m \x1b[38;5;208morange\x1b[0m \x1b[38;2;9;99;199mblue\x1b[0m\r\n"
        count = (2 * 1024 * 1024) // len(line % 0) + 1
        g.conn.send(b"".join(line % i for i in range(count)) + b"THE END\r\n")
        await g.conn.drain()
        await log_has(g.page, "THE END")
        lines = (await log_text(g.page)).count("burst ")
        assert lines <= CAP
        first = await g.page.evaluate("document.querySelector('#log .line').textContent")
        assert first.startswith("burst ") and int(first.split()[1]) > count - CAP
        # The page still answers.
        await send_line(g.page, "still here")
        await g.conn.wait_for(b"still here\r\n")
        # A line without end is cut into lines of 10,000 characters: the cap bounds the page.
        g.conn.send(b"x" * 25_000 + b"\r\nshort\r\n")
        await log_has(g.page, "short")
        lengths = await g.page.evaluate(
            "[...document.querySelectorAll('#log .line')].slice(-4).map(l => l.textContent.length)")
        assert lengths == [10_000, 10_000, 5_000, 5]


TOP_LINE = """() => {
  const log = document.getElementById('log');
  const top = log.getBoundingClientRect().top;
  for (const line of log.querySelectorAll('.line')) {
    const r = line.getBoundingClientRect();
    if (r.top >= top) return [line.textContent, r.top, log.scrollTop];
  }
  return null;
}"""


async def test_reading_back_splits_the_log(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"".join(b"old line %04d\r\n" % i for i in range(400)))
        await log_has(page, "old line 0399")
        assert await page.locator("#tail-box").is_hidden()
        # The player scrolls up: the split opens.
        await page.evaluate("() => { const l = document.getElementById('log'); l.scrollTop = l.scrollHeight / 3; }")
        await page.wait_for_selector("#tail-box", state="visible")
        before = await page.evaluate(TOP_LINE)
        # The game goes on: new lines appear in the strip, the upper part does not move.
        g.conn.send(b"".join(b"new line %04d\r\n" % i for i in range(60)))
        await log_has(page, "new line 0059", "#tail")
        await log_has(page, "new line 0059")
        assert await page.evaluate(TOP_LINE) == before
        assert await page.locator("#jump").inner_text() == "▼ 60 new lines (End)"
        assert await page.locator("#tail .line").last.inner_text() == "new line 0059"
        # Old lines removed above (past the cap) do not move it either.
        await page.evaluate("() => { const l = document.getElementById('log'); l.scrollTop = l.scrollHeight - 1.5 * l.clientHeight; }")
        before = await page.evaluate(TOP_LINE)
        g.conn.send(b"".join(b"flood %04d\r\n" % i for i in range(CAP - 300)))
        await log_has(page, "flood %04d" % (CAP - 301), "#tail")
        assert await page.evaluate("document.querySelector('#log .line').textContent") != "old line 0000"
        after = await page.evaluate(TOP_LINE)
        assert after[0] == before[0] and abs(after[1] - before[1]) < 1  # the same line, in the same place
        assert after[2] < before[2]  # (the log scrolled back by the height removed)
        # End closes the split and shows the newest line.
        await page.press("#input", "End")
        await page.wait_for_selector("#tail-box", state="hidden")
        assert await page.evaluate("(l => l.scrollHeight - l.scrollTop - l.clientHeight)(document.getElementById('log'))") < 8
        # Scrolling back up and down to the end with the wheel does the same.
        await page.hover("#log")
        await page.mouse.wheel(0, -600)
        await page.wait_for_selector("#tail-box", state="visible")
        await page.click("#jump")
        await page.wait_for_selector("#tail-box", state="hidden")


async def test_hidden_tab_counts_unread_lines(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        assert await page.title() == "Fake Game"
        # Headless Chromium never hides a page, so the test hides it as the browser would.
        await page.evaluate("""() => {
          Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
          Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
          document.dispatchEvent(new Event('visibilitychange'));
        }""")
        g.conn.send(b"one\r\ntwo\r\n")
        await page.wait_for_function("() => document.title === '(2) Fake Game'")
        g.conn.send(b"three\r\n")
        await page.wait_for_function("() => document.title === '(3) Fake Game'")
        await page.evaluate("""() => {
          delete document.hidden; delete document.visibilityState;
          document.dispatchEvent(new Event('visibilitychange'));
        }""")
        await page.wait_for_function("() => document.title === 'Fake Game'")
        await log_has(page, "three")


async def test_reload_resumes_the_same_game_connection(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"\x1b[32mbefore the reload\x1b[0m\r\nsecond line\r\n")
        await log_has(page, "second line")
        await send_line(page, "hello")
        await g.conn.wait_for(b"hello\r\n")
        topic = await page.evaluate("sessionStorage.getItem('mud-gateway:topic:fake')")
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", topic)
        await page.reload()
        await connected(page)
        await log_has(page, "second line")  # the scrollback is back
        assert await page.evaluate("sessionStorage.getItem('mud-gateway:topic:fake')") == topic
        g.conn.send(b"after the reload\r\n")
        await log_has(page, "after the reload")
        await send_line(page, "again")
        await g.conn.wait_for(b"again\r\n")
        assert len(g.mud.connections) == 1 and not g.conn.closed  # the game saw no new connection
        text = await log_text(page)
        assert text.count("before the reload") == 1 and text.count("second line") == 1


async def test_websocket_killed_during_output(browser: Browser) -> None:
    total = 1500
    async with fake_game(browser) as g:
        page = g.page
        await page.evaluate(RECORD_STATES)

        async def game_output() -> None:
            for start in range(0, total, 25):
                g.conn.send(b"".join(b"L%05d\r\n" % i for i in range(start, start + 25)))
                await g.conn.drain()
                await asyncio.sleep(0.005)

        writer = asyncio.ensure_future(game_output())
        try:
            await log_has(page, "L00200")
            assert kill_websockets(g.app) == 1
            await writer
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        await log_has(page, "L%05d" % (total - 1))
        await connected(page)
        states = await page.evaluate("window.__states")
        assert "reconnecting" in states and states[-1] == "connected", states
        assert states.index("reconnecting") < len(states) - 1
        numbers = re.findall(r"L(\d{5})", await log_text(page))
        assert numbers == ["%05d" % i for i in range(total)]  # every line, once, in order
        assert len(g.mud.connections) == 1


async def test_a_rejoin_after_a_drop_carries_the_last_seq_seen(browser: Browser) -> None:
    """SPEC 7: ``last_seq`` rides in the join params, so a network drop resumes exactly. (The page
    also ignores events it has seen, so only the join frame itself shows whether it is sent.)"""
    sockets: list[dict] = []

    def record(ws: Any) -> None:
        frames: dict = {"url": ws.url, "sent": [], "received": []}
        ws.on("framesent", lambda payload: frames["sent"].append(payload))
        ws.on("framereceived", lambda payload: frames["received"].append(payload))
        sockets.append(frames)

    def messages(frames: list) -> list:
        return [json.loads(f) for f in frames if isinstance(f, str)]

    def joins(frames: dict) -> list[dict]:
        return [m[4] for m in messages(frames["sent"]) if m[3] == "phx_join" and m[2].startswith("telnet:")]

    async with FakeMud() as mud:
        async with serve(make_config(mud.port)) as (app, url):
            ctx = await browser.new_context(viewport=DESKTOP)
            try:
                page = await ctx.new_page()
                page.on("websocket", record)  # (before the page opens its socket)
                await page.goto(url)
                conn = await mud.next_connection(timeout=20)
                await connected(page)
                for i in range(5):  # one event each
                    conn.send(b"line %d\r\n" % i)
                    await log_has(page, "line %d" % i)
                assert len(sockets) == 1
                [first_join] = joins(sockets[0])
                assert "last_seq" not in first_join  # nothing seen yet
                seqs = [m[4]["seq"] for m in messages(sockets[0]["received"])
                        if m[3] in ("echo", "prompt", "gmcp", "option") and isinstance(m[4].get("seq"), int)]
                assert len(seqs) >= 5
                assert kill_websockets(app) == 1
                for _ in range(400):  # the page reconnects by itself (phoenix.js's backoff: ms)
                    rejoins = [j for s in sockets[1:] for j in joins(s)]
                    if rejoins:
                        break
                    await asyncio.sleep(0.05)
                assert rejoins and rejoins[0]["last_seq"] == max(seqs), (rejoins, seqs)
                await connected(page)
                conn.send(b"after the drop\r\n")
                await log_has(page, "after the drop")
                text = await log_text(page)
                assert all(text.count("line %d" % i) == 1 for i in range(5))
                assert len(mud.connections) == 1
            finally:
                await ctx.close()


async def test_commands_typed_while_reconnecting_are_sent_in_order(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await page.context.set_offline(True)
        kill_websockets(g.app)
        await page.wait_for_selector("#status[data-state=reconnecting]")
        await send_line(page, "north")
        await send_line(page, "say still here")
        assert await page.get_attribute("#status", "data-state") == "reconnecting"
        await page.context.set_offline(False)  # the `online` event reconnects at once
        await connected(page)
        await g.conn.wait_for(b"north\r\nsay still here\r\n")
        assert len(g.mud.connections) == 1


async def test_phone_width_no_horizontal_scroll_and_naws(browser: Browser) -> None:
    async with fake_game(browser, PHONE, on_connect=cmd(IAC, DO, NAWS), is_mobile=True,
                         has_touch=True) as g:
        page = g.page
        await page.wait_for_function("() => document.getElementById('screen').dataset.cols")
        cols = int(await page.get_attribute("#screen", "data-cols"))
        assert 30 <= cols < 60
        # The game is told the width the page shows.
        start = await g.conn.wait_for(cmd(IAC, SB, NAWS) + struct.pack(">H", cols))
        height = struct.unpack(">H", bytes(g.conn.received[start:start + 2]))[0]
        assert 5 <= height < 60
        # A line of exactly that many characters fits on one row; one more wraps.
        g.conn.send(b"x" * cols + b"\r\n" + b"y" * (cols + 1) + b"\r\n" + b"z\r\n")
        await log_has(page, "z")
        heights = await page.evaluate(
            "[...document.querySelectorAll('#log .line')].slice(-3).map(l => l.getBoundingClientRect().height)")
        assert heights[0] == heights[2] and heights[1] == 2 * heights[2]
        # Long words and rows of coloured spaces wrap: nothing scrolls sideways.
        g.conn.send(b"w" * 500 + b"\r\n\x1b[44m" + b" " * 300 + b"\x1b[0m\r\n" + b"done\r\n")
        await log_has(page, "done")
        sizes = await page.evaluate("""[document.scrollingElement.scrollWidth,
            document.getElementById('log').scrollWidth, document.getElementById('log').clientWidth]""")
        assert sizes[0] <= PHONE["width"] and sizes[1] <= sizes[2], sizes


async def test_session_end_and_connect_again(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        assert await page.locator("#again").is_hidden()
        g.conn.close()
        await page.wait_for_selector("#status[data-state=ended]")
        assert await page.inner_text("#status") == "Disconnected: closed by game"
        # A command typed now can no longer be delivered: the log says so (SPEC 7.1).
        await send_line(page, "say anyone there")
        await page.wait_for_selector("#log .line.notice:has-text("
                                     "'Not delivered (the session ended): say anyone there — use “Connect again”.')")
        await page.click("#again")
        second = await g.mud.next_connection(timeout=20)
        await connected(page)
        assert await page.locator("#again").is_hidden()
        await send_line(page, "hi")
        await second.wait_for(b"hi\r\n")


async def test_join_errors_are_shown_with_their_detail(browser: Browser) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    down = f"""
  - name: down
    host: 127.0.0.1
    port: {closed_port}
"""
    async with FakeMud() as mud:
        async with serve(make_config(mud.port, games=down)) as (app, url):
            async with open_page(browser, url + "?game=nowhere") as page:
                await page.wait_for_selector("#status[data-state=ended]")
                assert await page.inner_text("#status") == "Could not join: unknown game"
                assert await page.locator("#again").is_visible()
                await send_line(page, "look")
                await page.wait_for_selector("#log .line.notice:has-text("
                                             "'Not delivered (the game could not be joined): look — use “Connect again”.')")
            async with open_page(browser, url + "?game=down") as page:
                await page.wait_for_selector("#status[data-state=ended]")
                status = await page.inner_text("#status")
                assert re.fullmatch(r"Could not join: game unavailable \(.+\)", status), status
            assert mud.connections == []


async def test_kick_and_deny_show_the_admins_words(browser: Browser, monkeypatch) -> None:
    monkeypatch.setenv("GW_TEST_ADMIN_TOKEN", "t" * 40)
    auth = {"Authorization": "Bearer " + "t" * 40}
    async with fake_game(browser, extra="admin: {token_env: GW_TEST_ADMIN_TOKEN}") as g:
        async with aiohttp.ClientSession(g.url) as http:
            async with http.get("admin/sessions", headers=auth) as resp:
                sid = (await resp.json())["sessions"][0]["id"]
            async with http.post(f"admin/sessions/{sid}/kick", headers=auth,
                                 json={"message": "Take a break."}) as resp:
                assert resp.status == 204
        await g.page.wait_for_selector("#status[data-state=ended]")
        assert await g.page.inner_text("#status") == "Disconnected: kicked (Take a break.)"
        assert await g.page.locator("#again").is_visible()
    deny = "security: {deny: [127.0.0.0/8], deny_message: Not from this network.}"
    async with FakeMud() as mud:
        async with serve(make_config(mud.port, extra=deny)) as (app, url):
            async with open_page(browser, url) as page:
                await page.wait_for_selector("#status[data-state=ended]")
                assert await page.inner_text("#status") == "Could not join: denied (Not from this network.)"
                assert mud.connections == []


async def test_typing_anywhere_goes_to_the_input_and_a_selection_stays(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"some text to copy\r\n")
        await log_has(page, "some text to copy")
        # The player selects log text (the focus leaves the input) and copies it.
        await page.click("#title")
        await page.evaluate("""() => {
          const range = document.createRange();
          range.selectNodeContents(document.querySelector('#log .line'));
          getSelection().removeAllRanges();
          getSelection().addRange(range);
        }""")
        await page.keyboard.press("Control+c")
        assert await page.evaluate("getSelection().toString()") == "some text to copy"
        assert await page.evaluate("document.activeElement.id") != "input"
        # Typing goes to the input line.
        await page.keyboard.type("look")
        assert await page.evaluate("document.activeElement.id") == "input"
        assert await page.input_value("#input") == "look"
        # A click that selects nothing gives the input the focus back.
        await page.click("#title")
        await page.click("#log")
        assert await page.evaluate("document.activeElement.id") == "input"


async def test_picker_lists_games_with_players(browser: Browser) -> None:
    games = """
  - name: second
    title: Second Game
    host: 127.0.0.1
    port: {port}
"""
    async with FakeMud(on_connect=cmd(IAC, WILL, MSSP)) as mud:
        config = make_config(mud.port, game_extra="    title: Fake Game", games=games.format(port=mud.port))
        async with serve(config) as (app, url):
            # A session of "fake" receives its MSSP; /api/games shows it.
            async with open_page(browser, url + "?game=fake") as page:
                conn = await mud.next_connection(timeout=20)
                await conn.wait_for(cmd(IAC, DO, MSSP))
                conn.send(cmd(IAC, SB, MSSP, 1) + b"PLAYERS" + cmd(2) + b"7" + cmd(IAC, SE) + b"hi\r\n")
                await log_has(page, "hi")
            async with open_page(browser, url) as page:
                await page.wait_for_selector("#picker li")
                entries = await page.locator("#games a").all_inner_texts()
                assert [e.split("\n")[0] for e in entries] == ["Fake Game", "Second Game"]
                assert "7 playing" in entries[0] and "playing" not in entries[1]
                assert await page.locator("#main").is_hidden()
                await page.click("#games a:has-text('Second Game')")
                await connected(page)
                await mud.next_connection(timeout=20)
                assert await page.title() == "Second Game"


async def test_screen_reader_setting_joins_with_the_mtts_bit(browser: Browser) -> None:
    async with FakeMud(on_connect=cmd(IAC, DO, TTYPE)) as mud:
        async with serve(make_config(mud.port)) as (app, url):
            ctx = await browser.new_context(viewport=DESKTOP)
            try:
                await ctx.add_init_script("localStorage.setItem('mud-gateway:screen-reader', 'true')")
                page = await ctx.new_page()
                await page.goto(url)
                conn = await mud.next_connection(timeout=20)
                await conn.wait_for(cmd(IAC, WILL, TTYPE))
                answers = []
                for _ in range(3):
                    conn.send(cmd(IAC, SB, TTYPE, 1, IAC, SE))
                    begin = await conn.wait_for(cmd(IAC, SB, TTYPE, 0))
                    end = await conn.wait_for(cmd(IAC, SE))
                    answers.append(bytes(conn.received[begin:end - 2]).decode())
                assert answers[2].startswith("MTTS ") and int(answers[2][5:]) & 64
                assert await page.is_checked("#screen-reader")
                await connected(page)
                # The player's commands show in the log, set apart, as without the setting (SPEC 7.1),
                # and are kept in Save log and across a reload; the live region does not say them
                # (the screen reader spoke them as they were typed).
                await send_line(page, "look at the fountain")
                await conn.wait_for(b"look at the fountain\r\n")
                conn.send(b"The fountain gurgles.\r\n")
                await page.wait_for_function(
                    "() => [...document.querySelectorAll('#announce > *')].some(p => p.textContent.includes('gurgles'))")
                said = await page.evaluate("[...document.querySelectorAll('#announce > *')].map(p => p.textContent)")
                assert not any("look at the fountain" in s for s in said), said
                command = page.locator("#log .line.command", has_text="look at the fountain")
                assert await command.count() == 1
                assert await page.get_attribute("#log", "aria-live") == "off"  # #announce speaks
                async with page.expect_download() as info:
                    await page.click("#save-log")
                saved = open(await (await info.value).path(), encoding="utf-8").read()
                assert "> look at the fountain\nThe fountain gurgles.\n" in saved
                await page.reload()
                await connected(page)
                await log_has(page, "The fountain gurgles.")
                await command.wait_for()
                assert await command.count() == 1
            finally:
                await ctx.close()


async def test_font_size_setting_is_kept(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await page.wait_for_function("() => document.getElementById('screen').dataset.cols")
        cols = int(await page.get_attribute("#screen", "data-cols"))
        await page.click("#settings-toggle")
        for _ in range(4):
            await page.click("#font-larger")
        assert await page.inner_text("#font-size-value") == "18px"
        await page.wait_for_function(f"() => +document.getElementById('screen').dataset.cols < {cols}")
        await page.reload()
        await connected(page)
        assert await page.evaluate(
            "getComputedStyle(document.getElementById('log')).fontSize") == "18px"
