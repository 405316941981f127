"""An evening with the game's links (SPEC 7.1: links from the game, their menus), in real headless
Chromium through the real gateway and the fake MUD speaking MXP, as a keyboard player uses them.
Page errors fail the test (open_page); console errors are collected too.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.test_browser import browser, console_errors, log_has  # noqa: F401  (browser: the fixture)
from tests.test_browser_links import mxp_game

pytestmark = pytest.mark.asyncio(loop_scope="module")

FOCUSED = "() => document.activeElement.id || document.activeElement.textContent.trim()"


async def test_tab_out_of_a_links_menu_goes_on_from_the_link(browser: Browser) -> None:  # noqa: F811
    """A link's menu (Shift+F10) is a popup of the link: Tab closes it and the focus goes on to
    what comes after the link (Shift+Tab: before it), as from the link itself. The menu is
    appended at the end of the page, so without care Tab left the focus at the page's top (the
    header's first button), the player's place in the log lost."""
    async with mxp_game(browser) as (page, conn):
        errors = console_errors(page)
        conn.send(b"\x1b[1z<SEND href=\"north|look\" hint=\"go|look\">North</SEND> or "
                  b"<SEND href=\"score\">Score</SEND>\r\n")
        await log_has(page, "North or Score")
        north = page.locator("#log .game-link", has_text="North")
        for key, after in (("Tab", "Score"), ("Shift+Tab", "log")):
            await north.focus()
            await page.keyboard.press("Shift+F10")
            await page.wait_for_selector("[role=menu]")
            assert await page.evaluate(FOCUSED) == "go"
            await page.keyboard.press(key)
            await page.wait_for_selector("[role=menu]", state="detached")
            assert await page.evaluate(FOCUSED) == after, key
            assert await north.get_attribute("aria-expanded") == "false"
        assert not errors, errors
