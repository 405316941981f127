"""Search and highlights are bounded whatever the game sends (SPEC 7.1, docs/client.md), in real
headless Chromium in front of the scripted fake MUD (as tests/test_browser.py).

The log keeps 5,000 lines of up to 10,000 characters (output.js), which a game fills in seconds. A
search for one letter, or a highlight of `/./`, matches nearly every character of it: 50 million
matches, each a match kept and a range painted, or a span.hl element. Search keeps and paints the
newest MAX_MATCHES matches and says there are more; a line holds at most MAX_LINE_HIGHLIGHTS
highlight spans, the rest of it unhighlighted.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.test_browser import (  # noqa: F401 (browser: the module's fixture)
    CAP, browser, fake_game, log_has, log_text, send_line,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_MATCHES = 10_000  # search.js: matches a search keeps and paints
MAX_LINE_HIGHLIGHTS = 20  # triggers.js: highlight spans in one line

# What the search holds: the matches it keeps, the ranges it paints, its count, the current match's line.
SEARCH_STATE = """() => {
  const current = CSS.highlights.get('search-current').values().next().value;
  return {ranges: CSS.highlights.get('search').size + CSS.highlights.get('search-current').size,
          count: document.getElementById('search-count').textContent,
          line: current.startContainer.parentElement.closest('.line').textContent,
          at: current.startOffset};
}"""


async def test_a_search_keeps_and_paints_a_bounded_number_of_matches(browser: Browser) -> None:  # noqa: F811
    """A full log and a search for one letter: every match was kept and painted, here 100,000
    (50 million in a log of 5,000 lines of 10,000 characters, and the tab dies). The newest
    MAX_MATCHES are, the count says there are more, and stepping goes through them, wrapping
    around as ever."""
    async with fake_game(browser) as g:
        page = g.page
        total = CAP + 100
        g.conn.send(b"".join(b"L%05d %s\r\n" % (i, b"a" * 20) for i in range(total)))
        await log_has(page, "L%05d" % (total - 1))
        await page.press("#input", "Control+f")
        await page.fill("#search-field", "a")
        await page.wait_for_selector("#search-count:has-text(' of ')")
        state = await page.evaluate(SEARCH_STATE)
        assert state["count"] == f"{MAX_MATCHES} of {MAX_MATCHES}+" and state["ranges"] == MAX_MATCHES, state
        # It starts at the newest match: the last letter of the last line.
        assert state["line"] == "L%05d %s" % (total - 1, "a" * 20) and state["at"] == 26, state
        # Stepping back goes through the kept matches (20 a line), then wraps to the newest.
        await page.press("#search-field", "Shift+Enter")
        await page.wait_for_selector(f"#search-count:has-text('{MAX_MATCHES - 1} of {MAX_MATCHES}+')")
        assert (await page.evaluate(SEARCH_STATE))["at"] == 25
        for _ in range(20):
            await page.press("#search-field", "Shift+Enter")
        await page.wait_for_selector(f"#search-count:has-text('{MAX_MATCHES - 21} of {MAX_MATCHES}+')")
        state = await page.evaluate(SEARCH_STATE)
        assert state["line"].startswith("L%05d" % (total - 2)) and state["at"] == 25, state
        # The oldest kept match is the first letter of the 500th line from the end; before it, the newest.
        await page.click("#search-toggle")  # (closed, opened again: from the newest)
        await page.click("#search-toggle")
        await page.wait_for_selector(f"#search-count:has-text('{MAX_MATCHES} of {MAX_MATCHES}+')")
        await page.press("#search-field", "Enter")
        await page.wait_for_selector(f"#search-count:has-text('1 of {MAX_MATCHES}+')")
        state = await page.evaluate(SEARCH_STATE)
        assert state["line"].startswith("L%05d" % (total - MAX_MATCHES // 20)) and state["at"] == 7, state
        # An ordinary search is as ever: every match, its count exact.
        await page.fill("#search-field", "L0409")
        await page.wait_for_selector("#search-count:has-text('10 of 10')")
        assert (await page.evaluate(SEARCH_STATE))["ranges"] == 10
