"""An evening's keys (docs/client.md: "the End key closes the split"; Ctrl+F searches), in real
headless Chromium through the real gateway and the fake MUD, as a keyboard player uses them.
Page errors fail the test (open_page); console errors are collected too.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.test_browser import browser, console_errors, fake_game, log_has, next_frames, send_line  # noqa: F401  (browser: the fixture)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPLIT = "() => !document.getElementById('tail-box').hidden"


async def test_end_in_the_search_field_moves_the_caret_not_the_log(browser: Browser) -> None:  # noqa: F811
    """End jumps the log to its newest output (closing the split) from the input line, but in the
    search field it is the caret's key: a player stepping through old matches who pressed End to
    go on typing saw the log jump to its end, the match gone from view. There the log stays; the
    input line's End still closes the split."""
    async with fake_game(browser) as g:
        page = g.page
        errors = console_errors(page)
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


async def history(page, n: int) -> list[str]:
    """The input line after Up pressed 1..n times (then back to the line being typed)."""
    seen = []
    for _ in range(n):
        await page.press("#input", "ArrowUp")
        seen.append(await page.input_value("#input"))
    for _ in range(n):
        await page.press("#input", "ArrowDown")
    return seen


async def test_two_tabs_of_one_game_keep_each_others_history(browser: Browser) -> None:  # noqa: F811
    """The command history is kept per game in localStorage, which the tabs of a browser share:
    a player with two characters in two tabs. Each tab saved its own copy, read at load, over
    the other's: the lines typed in the other tab since were lost from the history."""
    async with fake_game(browser) as g:
        first = g.page
        second = await first.context.new_page()  # its own sessionStorage: a session of its own
        errors = console_errors(first, second, page_errors=True)
        await second.goto(g.url)
        other = await g.mud.next_connection(timeout=20)
        await second.wait_for_selector("#status[data-state=connected]")
        seen_by = {id(first): second, id(second): first}
        for page, conn, line in ((first, g.conn, "alpha"), (second, other, "beta"), (first, g.conn, "gamma")):
            await send_line(page, line)
            await conn.wait_for(line.encode() + b"\r\n")
            # The save has reached the other tab (its storage event is under way).
            await seen_by[id(page)].wait_for_function(
                "t => (localStorage.getItem('mud-gateway:history:fake') || '').includes(t)", arg=line)
        assert await history(first, 3) == ["gamma", "beta", "alpha"]
        assert await history(second, 3) == ["gamma", "beta", "alpha"]  # what the other tab typed since
        await send_line(second, "delta")
        await other.wait_for(b"delta\r\n")
        assert await history(second, 4) == ["delta", "gamma", "beta", "alpha"]
        await second.close()
        assert not errors, errors
