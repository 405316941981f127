"""An evening on a small screen (SPEC 7.1 "Small screens and zoom": 320 x 256, a 1280 x 1024
window at 400% zoom, and 360 x 300, a phone with its keyboard open), in real headless Chromium
through the real gateway and the fake MUD, with the tools a player opens there. Page errors fail
the test (open_page); console errors are collected too.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.test_browser import browser, console_errors, fake_game, log_has  # noqa: F401  (browser: the fixture)
from tests.test_browser_small import KEYBOARD_OPEN, ZOOM_400, check, layout

pytestmark = pytest.mark.asyncio(loop_scope="module")

FIELD = """() => {
  const f = document.getElementById('search-field');
  return {shown: f.clientWidth, text: f.scrollWidth, count: document.getElementById('search-count').textContent};
}"""


@pytest.mark.parametrize("viewport", [ZOOM_400, KEYBOARD_OPEN], ids=["320x256", "360x300"])
async def test_the_search_field_shows_what_is_typed(browser: Browser, viewport: dict) -> None:  # noqa: F811
    """Ctrl+F on a small screen: the search field shared its row with the count and the Previous,
    Next and Close buttons, and kept a few characters' width at 360 px and none at 320 (only its
    clear button showed): the player searched blind. The word typed must fit the field, and the
    page still not scroll sideways, with the input line in view."""
    async with fake_game(browser, viewport) as g:
        page = g.page
        errors = console_errors(page)
        g.conn.send(b"".join(b"%d: the fountain whispers\r\n" % i for i in range(30)))
        await log_has(page, "29: the fountain whispers")
        await page.keyboard.press("Control+f")
        await page.keyboard.type("fountain whispers")
        await page.wait_for_function("() => document.getElementById('search-count').textContent === '30 of 30'")
        field = await page.evaluate(FIELD)
        assert field["text"] <= field["shown"], field
        shape = await layout(page)
        check(shape, 1)
        await page.keyboard.press("Escape")
        check(await layout(page), 4 if viewport == ZOOM_400 else 10)
        assert not errors, errors


STATUS = """() => {
  const s = document.getElementById('status'), a = document.getElementById('again');
  const inView = (r) => r.left >= 0 && r.right <= innerWidth && r.top >= 0 && r.bottom <= innerHeight && r.width > 0;
  return {text: s.textContent, cut: s.scrollWidth > s.clientWidth, status: inView(s.getBoundingClientRect()),
          again: inView(a.getBoundingClientRect())};
}"""


@pytest.mark.parametrize("viewport, lines", [(ZOOM_400, 4), ({"width": 360, "height": 640}, 10)],
                         ids=["320x256", "360x640-phone"])
async def test_why_the_session_ended_can_be_read(browser: Browser, viewport: dict, lines: int) -> None:  # noqa: F811
    """SPEC 7: the status line shows why the session ended. On a phone, or at 400% zoom, it
    shared the header with the title, "Connect again" and three buttons, and was cut to
    "Disco…" ("D…" for the title): the player could not read why the game was gone. It is
    read whole, with "Connect again" in view, nothing scrolling sideways, and the log keeping
    its lines."""
    async with fake_game(browser, viewport, has_touch=True, is_mobile=True) as g:
        page = g.page
        errors = console_errors(page)
        g.conn.send(b"".join(b"line %02d\r\n" % i for i in range(40)))
        await log_has(page, "line 39")
        g.conn.close()  # the game hangs up
        await page.wait_for_selector("#status[data-state=ended]")
        status = await page.evaluate(STATUS)
        assert status == {"text": "Disconnected: closed by game", "cut": False, "status": True, "again": True}, status
        check(await layout(page), lines)
        await page.tap("#again")
        await g.mud.next_connection(timeout=20)
        await page.wait_for_selector("#status[data-state=connected]")
        assert not errors, errors
