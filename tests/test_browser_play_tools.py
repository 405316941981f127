"""An evening with the player tools in the settings panel (SPEC 7.1: "A settings panel shows and
edits the same"), in real headless Chromium through the real gateway and the scripted fake MUD,
as a player uses them: fixing a trigger's pattern or renaming an alias with "Edit", removing
entries by keyboard. Page errors fail the test (open_page); console errors are collected too.
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.test_browser import FakeGame, browser, console_errors, fake_game, send_line  # noqa: F401  (browser: the fixture)
from tests.test_browser_tools import notice, stored_tools

pytestmark = pytest.mark.asyncio(loop_scope="module")


@contextlib.asynccontextmanager
async def playing(browser: Browser) -> AsyncIterator[FakeGame]:  # noqa: F811
    """fake_game, with no console error on the page by the end."""
    async with fake_game(browser) as g:
        errors = console_errors(g.page)
        yield g
        assert not errors, errors


async def test_edit_then_save_changes_the_entry_also_its_pattern_or_name(browser: Browser) -> None:  # noqa: F811
    """docs/client.md: "Edit" fills the form, "where saving it changes the entry". A player who
    fixes a trigger's pattern (a typo, a pattern that fires too often) or renames an alias gets
    that entry changed: the old one does not stay beside it, firing as before."""
    async with playing(browser) as g:
        page = g.page
        await send_line(page, "#trigger /You are hungy/ eat bread")
        await send_line(page, "#alias gg get gold")
        await notice(page, "New alias: gg")
        await page.click("#settings-toggle")
        await page.click("[aria-label='Edit /You are hungy/ → eat bread']")
        await page.fill("#trigger-pattern", "/You are hungry/")
        await page.press("#trigger-commands", "Enter")
        await page.wait_for_selector("#tools-message:has-text('Saved (trigger)')")
        assert (await stored_tools(page))["triggers"] == [{"source": "You are hungry", "flags": "", "commands": "eat bread"}]
        assert await page.inner_text("#tools-message") == "Saved (trigger), in place of /You are hungy/."
        await page.click("[aria-label='Edit gg = get gold']")
        await page.fill("#alias-name", "gold")
        await page.click("text=Save alias")
        await page.wait_for_selector("#tools-message:has-text('Saved (alias)')")
        assert (await stored_tools(page))["aliases"] == [{"name": "gold", "text": "get gold"}]
        assert await page.inner_text("#tools-message") == "Saved (alias), in place of gg."
        assert await page.inner_text("#trigger-list") == "/You are hungry/ → eat bread\nEdit\nRemove"
        # The old trigger no longer fires, the new one does; the old alias is a plain word again.
        g.conn.send(b"You are hungy.\r\nYou are hungry.\r\n")
        await g.conn.wait_for(b"eat bread\r\n")
        await send_line(page, "gg")
        await g.conn.wait_for(b"gg\r\n")
        assert g.conn.received.count(b"eat bread\r\n") == 1
        # A form emptied after Edit is a new entry: saving it leaves the edited one alone.
        await page.click("[aria-label='Edit gold = get gold']")
        await page.fill("#alias-name", "")
        await page.fill("#alias-text", "")
        await page.fill("#alias-name", "k")
        await page.fill("#alias-text", "kill $1")
        await page.click("text=Save alias")
        await page.wait_for_selector("#tools-message:text-is('Saved (alias).')")
        assert [a["name"] for a in (await stored_tools(page))["aliases"]] == ["gold", "k"]
        # The entry being edited removed meanwhile: saving adds the new one, in place of nothing.
        await page.click("[aria-label='Edit k = kill $1']")
        await send_line(page, "#unalias k")
        await notice(page, "Removed alias k")
        await page.fill("#alias-name", "kk")
        await page.click("text=Save alias")
        await page.wait_for_selector("#tools-message:text-is('Saved (alias).')")
        assert [a["name"] for a in (await stored_tools(page))["aliases"]] == ["gold", "kk"]


FOCUSED = "() => document.activeElement.getAttribute('aria-label') || document.activeElement.id"


async def test_remove_by_keyboard_leaves_the_focus_in_the_list(browser: Browser) -> None:  # noqa: F811
    """A keyboard or screen-reader player removes entries in the settings panel with Enter on
    "Remove": the list is drawn again without that button, and the focus must not be left on
    nothing (the body: the reader starts again at the top of the page, Tab from the start). It
    goes to the Remove button now in that place, else the one before, else the form."""
    async with playing(browser) as g:
        page = g.page
        for name in ("aa", "bb", "cc"):
            await send_line(page, f"#alias {name} say {name}")
            await notice(page, f"New alias: {name}")
        await page.click("#settings-toggle")
        await page.focus("[aria-label='Remove bb = say bb']")
        await page.keyboard.press("Enter")
        await page.wait_for_function("() => !document.getElementById('alias-list').textContent.includes('bb')")
        assert await page.evaluate(FOCUSED) == "Remove cc = say cc"
        await page.keyboard.press("Enter")  # the player goes on: the last one
        await page.wait_for_function("() => !document.getElementById('alias-list').textContent.includes('cc')")
        assert await page.evaluate(FOCUSED) == "Remove aa = say aa"
        await page.keyboard.press(" ")
        await page.wait_for_function("() => document.getElementById('alias-list').children.length === 0")
        assert await page.evaluate(FOCUSED) == "alias-name"
        assert (await stored_tools(page))["aliases"] == []
