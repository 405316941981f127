"""The game's links (MXP -> OSC 8, SPEC 5 and 7.1) in the browser client, in real headless Chromium.

The fake MUD offers MXP and sends SEND/A tags; the gateway turns them into OSC 8
links; the page draws them with DOM calls and sends exactly the command. A game
that tries to put markup or script into the page, through MXP or plain text,
gets text nodes only.
"""

from __future__ import annotations

import contextlib
import json
from typing import AsyncIterator

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import make_config
from tests.fakemud import FakeConnection, FakeMud
from tests.test_browser import browser, connected, log_has, open_page, serve  # noqa: F401 (fixture)
from tests.test_browser_a11y import axe_violations, serious

pytestmark = pytest.mark.asyncio(loop_scope="module")

IAC, WILL, DO, DONT = 255, 251, 253, 254
MXP = 91


@contextlib.asynccontextmanager
async def mxp_game(browser: Browser, game_extra: str = "", **context_args) -> AsyncIterator[tuple[Page, FakeConnection]]:  # noqa: F811
    """The page playing the fake MUD, with MXP negotiated (or refused, with ``mxp: false``)."""
    async with FakeMud() as mud:
        config = make_config(mud.port, game_extra="    title: Links Game\n" + game_extra)
        async with serve(config) as (_app, url):
            async with open_page(browser, url, **context_args) as page:
                conn = await mud.next_connection(timeout=20)
                await connected(page)
                conn.send(bytes([IAC, WILL, MXP]))
                answer = bytes([IAC, DONT if "mxp: false" in game_extra else DO, MXP])
                await conn.wait_for(answer)
                yield page, conn


async def sent(conn: FakeConnection, line: bytes) -> None:
    await conn.wait_for(line + b"\r\n")


LINKS = (b"\x1b[1z<SEND href=\"look &amp; feel;;x\">Look</SEND> <SEND href=\"#alias x\">Alias</SEND> "
         b"<SEND PROMPT href=\"say hello\">Say</SEND> <A href=\"https://example.com/guide\">guide</A>\r\n")


async def test_send_prompt_and_https_links(browser: Browser) -> None:  # noqa: F811
    async with mxp_game(browser) as (page, conn):
        conn.send(LINKS)
        await log_has(page, "Look Alias Say guide")
        look = page.locator("#log .game-link", has_text="Look")
        assert await look.get_attribute("role") == "button"
        assert await look.get_attribute("tabindex") == "0"
        assert await look.get_attribute("title") == "Sends: look & feel;;x"
        assert await look.get_attribute("aria-description") == "Sends: look & feel;;x"
        # click: the command exactly as decoded (no ";;" split, no alias), shown as the player's
        await look.click()
        await sent(conn, b"look & feel;;x")
        await page.wait_for_selector("#log .line.command:has-text('look & feel;;x')")
        assert await page.evaluate("document.activeElement.id") == "input"
        # keyboard: Enter and Space on a focused link; "#..." is sent as it is
        alias = page.locator("#log .game-link", has_text="Alias")
        await alias.focus()
        await page.keyboard.press("Enter")
        await sent(conn, b"#alias x")
        await alias.focus()
        await page.keyboard.press(" ")
        await sent(conn, b"#alias x")
        assert await page.input_value("#input") == ""  # the space went to the link, not the input
        # prompt: fills the input line and focuses it; nothing is sent
        received = len(conn.received)
        await page.locator("#log .game-link", has_text="Say").click()
        assert await page.input_value("#input") == "say hello"
        assert await page.evaluate("document.activeElement.id") == "input"
        assert len(conn.received) == received
        # https: a new tab without opener or referrer, the URL as its title
        a = page.locator("#log a", has_text="guide")
        assert await a.get_attribute("href") == "https://example.com/guide"
        assert await a.get_attribute("target") == "_blank"
        assert await a.get_attribute("rel") == "noopener noreferrer"
        assert await a.get_attribute("title") == "https://example.com/guide"
        # the link text is plain text in the log (search, copy, save)
        assert "Look Alias Say guide" in await page.evaluate("document.getElementById('log').textContent")
        # links in replayed events work like live ones; a link's command is a recv with n (SPEC 4.4:
        # sent exactly once across drops, as a typed one)
        frames: list = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: frames.append(payload)))
        await page.reload()
        await connected(page)
        await log_has(page, "Look Alias Say guide")
        await page.locator("#log .game-link", has_text="Look").last.click()
        await sent(conn, b"look & feel;;x")
        pushes = [json.loads(f) for f in frames if isinstance(f, str) and '"recv"' in f]
        [push] = [p for p in pushes if p[3] == "recv" and p[4]["message"] == "look & feel;;x"]
        assert type(push[4]["n"]) is int and push[4]["n"] > 0


async def test_menus_by_right_click_shift_f10_and_long_press(browser: Browser) -> None:  # noqa: F811
    async with mxp_game(browser, has_touch=True) as (page, conn):
        conn.send(b"\x1b[1z<SEND href=\"buy sword|sell sword|look sword\" "
                  b"hint=\"Trade the sword|Buy it|Sell it|Look at it\">sword</SEND>\r\n")
        await log_has(page, "sword")
        link = page.locator("#log .game-link", has_text="sword")
        assert await link.get_attribute("aria-haspopup") == "menu"
        assert (await link.get_attribute("title")).startswith("Trade the sword (Sends: buy sword)")
        # right-click: a menu of the commands, focused, announced as a menu
        await link.click(button="right")
        menu = page.locator("[role=menu]")
        await menu.wait_for()
        assert await menu.get_attribute("aria-label") == "Commands for sword"
        assert await page.locator("[role=menuitem]").all_inner_texts() == ["Buy it", "Sell it", "Look at it"]
        assert await page.evaluate("document.activeElement.textContent") == "Buy it"
        assert await link.get_attribute("aria-expanded") == "true"
        await page.keyboard.press("ArrowDown")
        await page.keyboard.press("Enter")
        await sent(conn, b"sell sword")
        assert await menu.count() == 0
        # Shift+F10 on the focused link; Escape closes and gives the focus back
        await link.focus()
        await page.keyboard.press("Shift+F10")
        await menu.wait_for()
        await page.keyboard.press("Escape")
        assert await menu.count() == 0
        assert await page.evaluate("document.activeElement.textContent") == "sword"
        # long press (touch)
        await link.dispatch_event("pointerdown", {"pointerType": "touch", "clientX": 5, "clientY": 5})
        await menu.wait_for()
        await link.dispatch_event("pointerup", {"pointerType": "touch"})
        await page.locator("[role=menuitem]", has_text="Look at it").click()
        await sent(conn, b"look sword")
        # the plain click still sends the first command
        await link.click()
        await sent(conn, b"buy sword")


HOSTILE = (
    # secure MXP: script URLs, markup in commands, elements that expand to markup
    b"\x1b[1z<A href=\"javascript:window.__pwned=1\">js link</A> "
    b"<SEND href=\"&lt;img src=x onerror=window.__pwned=1&gt;\">img cmd</SEND> "
    b"<img src=x onerror=\"window.__pwned=1\"> <script>window.__pwned=1</script>\r\n"
    b"\x1b[1z<!ELEMENT evil '<img src=x onerror=window.__pwned=1><SEND href=\"quit\">'>\r\n"
    b"\x1b[1z<evil>evil</evil>\r\n"
    # open mode: a link may not be made here
    b"<SEND href=\"quit\">open send</SEND> <A href=\"https://evil.example\">open a</A>\r\n"
    # plain text markup, an OSC 8 the game writes itself with a script URL
    b"<b onmouseover=window.__pwned=1>bold?</b> <iframe src=javascript:window.__pwned=1></iframe> "
    b"\x1b]8;;javascript:window.__pwned=1\x1b\\raw osc\x1b]8;;\x1b\\ "
    b"\x1b]8;;data:text/html,<script>window.__pwned=1</script>\x1b\\data osc\x1b]8;;\x1b\\ END\r\n"
)


async def _no_markup(page: Page) -> None:
    assert await page.evaluate("window.__pwned") is None
    bad = await page.evaluate("""() => [...document.querySelectorAll(
        '#log img, #log script, #log iframe, #log b, #log [onerror], #log [onmouseover],'
        + ' #log a[href^="javascript"], #log a[href^="data"], #log a:not([href^="http"])')].length""")
    assert bad == 0
    # every element in the log is one the client makes
    tags = await page.evaluate("() => [...new Set([...document.querySelectorAll('#log *')].map(e => e.tagName))]")
    assert set(tags) <= {"DIV", "SPAN", "A"}


async def test_a_game_cannot_put_markup_or_script_into_the_page(browser: Browser) -> None:  # noqa: F811
    async with mxp_game(browser) as (page, conn):
        conn.send(HOSTILE)
        await log_has(page, "END")
        await _no_markup(page)
        log = await page.evaluate("document.getElementById('log').textContent")
        assert "<img src=x onerror=\"window.__pwned=1\">" in log  # unknown tags stay as text
        assert "<SEND href=\"quit\">open send</SEND>" in log and "open a" in log
        # an open-mode <B> is bold text, its attributes nothing; <SCRIPT> (secure) is removed, its text kept
        assert "open a</A>bold? <iframe" in log and "</script>" not in log and "window.__pwned=1<img" in log
        # the only links from the game: the SEND whose command is text (sent as text if clicked), the
        # element's SEND (a URL in plain text is still linked as before: an <a> to http(s) only)
        links = await page.evaluate(
            "() => [...document.querySelectorAll('#log .game-link, #log a[title]')].map(e => [e.tagName, e.textContent, e.title])")
        assert links == [["SPAN", "img cmd", "Sends: <img src=x onerror=window.__pwned=1>"],
                         ["SPAN", "evil", "Sends: quit"]]
        await page.locator("#log .game-link", has_text="img cmd").click()
        await sent(conn, b"<img src=x onerror=window.__pwned=1>")
        await _no_markup(page)


async def test_with_mxp_off_the_markup_is_text(browser: Browser) -> None:  # noqa: F811
    async with mxp_game(browser, game_extra="    mxp: false\n") as (page, conn):
        conn.send(HOSTILE)
        await log_has(page, "END")
        await _no_markup(page)
        log = await page.evaluate("document.getElementById('log').textContent")
        assert "<SEND href=\"&lt;img src=x onerror=window.__pwned=1&gt;\">img cmd</SEND>" in log
        assert await page.locator("#log .game-link").count() == 0


async def test_links_in_the_splits_copy_work_by_mouse_and_stay_out_of_the_tab_order(browser: Browser) -> None:  # noqa: F811
    # The strip (#tail) is aria-hidden: nothing in it may take the focus (axe's aria-hidden-focus,
    # serious: SPEC 7.1), neither the game's send: links nor its http(s) links (MXP <A>, OSC 8)
    # nor URLs found in plain text.
    async with mxp_game(browser, bypass_csp=True) as (page, conn):  # (axe is an injected script)
        conn.send(b"".join(b"\x1b[1zline %d <SEND href=\"get %d\">item %d</SEND> <A href=\"https://example.com/g%d\">"
                           b"guide %d</A> see https://example.org/p%d\r\n" % ((i,) * 6) for i in range(120)))
        await log_has(page, "item 119")
        await page.evaluate("document.getElementById('log').scrollTop = 0")
        await page.wait_for_selector("#tail-box:not([hidden])")
        copies = page.locator("#tail .game-link")
        assert await copies.count() > 0
        assert set(await copies.evaluate_all("els => els.map(e => e.tabIndex)")) == {-1}
        assert set(await page.locator("#log .game-link").evaluate_all("els => els.map(e => e.tabIndex)")) == {0}
        hrefs = await page.locator("#tail a").evaluate_all("els => els.map(e => [e.href, e.tabIndex])")
        assert ["https://example.com/g119", -1] in hrefs and ["https://example.org/p119", -1] in hrefs
        assert {t for _, t in hrefs} == {-1}
        assert set(await page.locator("#log a").evaluate_all("els => els.map(e => e.tabIndex)")) == {0}
        found = await axe_violations(page)
        assert serious(found) == [], json.dumps(found, indent=1)
        await page.locator("#tail .game-link", has_text="item 119").click()
        await sent(conn, b"get 119")


async def test_a_link_in_the_prompt_works(browser: Browser) -> None:  # noqa: F811
    # A prompt (a line ended by IAC GA, SPEC 5) holding an MXP link: an OSC 8 link in the prompt
    # event, drawn in #prompt as a control that sends its command as the player's own.
    async with mxp_game(browser) as (page, conn):
        conn.send(b"\x1b[1z<100hp> <SEND href=\"look at the sky\">Sky</SEND> > " + bytes([IAC, 249]))
        link = page.locator("#prompt .game-link", has_text="Sky")
        await link.wait_for()
        assert await link.get_attribute("title") == "Sends: look at the sky"
        assert await page.text_content("#prompt") == "<100hp> Sky > "
        assert await page.locator("#log .game-link").count() == 0  # a prompt is not in the log
        await link.click()
        await sent(conn, b"look at the sky")
        await page.wait_for_selector("#log .line.command:has-text('look at the sky')")
        assert await page.evaluate("document.activeElement.id") == "input"
