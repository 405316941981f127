"""An evening's keys (docs/client.md: "the End key closes the split"; Ctrl+F searches), in real
headless Chromium through the real gateway and the fake MUD, as a keyboard player uses them.
Page errors fail the test (open_page); console errors are collected too.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.test_browser import browser, fake_game, log_has, next_frames  # noqa: F401  (browser: the fixture)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPLIT = "() => !document.getElementById('tail-box').hidden"


async def test_end_in_the_search_field_moves_the_caret_not_the_log(browser: Browser) -> None:  # noqa: F811
    """End jumps the log to its newest output (closing the split) from the input line, but in the
    search field it is the caret's key: a player stepping through old matches who pressed End to
    go on typing saw the log jump to its end, the match gone from view. There the log stays; the
    input line's End still closes the split."""
    async with fake_game(browser) as g:
        page = g.page
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        g.conn.send(b"".join(b"line %03d of the game\r\n" % i for i in range(300)))
        await log_has(page, "line 299 of the game")
        await page.keyboard.press("Control+f")
        await page.keyboard.type("line 010")
        await page.wait_for_function("() => document.getElementById('search-count').textContent === '1 of 1'")
        await page.wait_for_function(SPLIT)  # the match, far up, is in view: the log split
        await page.keyboard.press("Home")
        await page.keyboard.press("End")
        await next_frames(page)
        assert await page.evaluate("document.getElementById('search-field').selectionStart") == len("line 010")
        assert await page.evaluate(SPLIT)
        assert await page.evaluate("""() => {
          const line = [...document.querySelectorAll('#log .line')].find((l) => l.textContent.startsWith('line 010'));
          const r = line.getBoundingClientRect(), log = document.getElementById('log').getBoundingClientRect();
          return r.top >= log.top && r.bottom <= log.bottom;
        }""")
        await page.keyboard.press("Escape")
        assert await page.evaluate("document.activeElement.id") == "input"
        await page.keyboard.press("End")
        await page.wait_for_function("() => document.getElementById('tail-box').hidden")
        assert not errors, errors
