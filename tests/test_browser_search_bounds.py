"""Search and highlights are bounded whatever the game sends (SPEC 7.1, docs/client.md), in real
headless Chromium in front of the scripted fake MUD (as tests/test_browser.py).

The log keeps 5,000 lines of up to 10,000 characters (output.js), which a game fills in seconds. A
search for one letter, or a highlight of `/./`, matches nearly every character of it: 50 million
matches, each a match kept and a range painted, or a span.hl element. Search keeps and paints the
newest MAX_MATCHES matches and says there are more; a line holds at most MAX_LINE_HIGHLIGHTS
highlight spans, the rest of it unhighlighted.
"""

from __future__ import annotations

import asyncio

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


# Per game line of the log (every one drawn: output.js's logLines; not the player's commands nor
# the page's notices): [its text, its span.hl elements].
HIGHLIGHTS = """async () => {
  const { logLines } = await import(new URL('client/output.js', document.baseURI));
  return [...logLines(document.getElementById('log'))].filter((l) => !l.matches('.command, .notice'))
    .map((l) => [l.textContent, l.querySelectorAll('span.hl').length]);
}"""


def coloured(text: str) -> bytes:
    """Each character of `text` in a colour of its own (the next one's differs)."""
    return b"".join(b"\x1b[3%dm%s" % (1 + i % 6, c.encode()) for i, c in enumerate(text)) + b"\x1b[0m"


async def test_highlights_in_a_line_are_bounded(browser: Browser) -> None:  # noqa: F811
    """`#highlight /z/ ...` on lines of 300 z's made 300 span.hl a line: a pattern such as /./ or
    /\\w/ makes a span per character, up to 50 million in a full log, not counted against the log's
    bound on elements (output.js), and painted back on lines the log turns into plain text. A line
    holds at most MAX_LINE_HIGHLIGHTS (the first ones), the rest of it unhighlighted, however the
    line is coloured; an ordinary line keeps every highlight."""
    width, count = 300, 200
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"".join(b"z" * width + b" old %03d\r\n" % i for i in range(count)))
        await log_has(page, "z old %03d" % (count - 1))
        await page.evaluate(HIGHLIGHTS)  # (every line drawn)
        await send_line(page, "#highlight /z/ tomato")  # lines in the log: all coloured again
        await send_line(page, "#highlight /q+/ gold")
        last = "() => [...document.querySelectorAll('#log .line')].at(-1).querySelectorAll('span.hl').length"
        await page.wait_for_function(f"() => document.querySelectorAll('#log .line')[{count - 1}]"
                                     ".querySelectorAll('span.hl').length > 0")
        # New lines: plain, one of 300 characters each in a colour of its own (one q+ match, 300
        # pieces), then an ordinary one.
        g.conn.send(b"".join(b"z" * width + b" new %03d\r\n" % i for i in range(count))
                    + coloured("q" * width) + b" many colours\r\n"
                    + b"a \x1b[31mzz\x1b[0m and q, and z\r\n")
        await log_has(page, "a zz and q, and z")
        await page.evaluate(HIGHLIGHTS)  # (every line drawn)
        await page.wait_for_function(f"() => ({last})() === 4")
        # The highlights are painted 50 lines a task (highlight.js): under load the last line
        # can be done before lines above it. Every line painted, then counted.
        for _ in range(200):
            game = [hl for _, hl in await page.evaluate(HIGHLIGHTS)]
            if 0 not in game:
                break
            await asyncio.sleep(0.05)
        assert len(game) == 2 * count + 2
        assert max(game) <= MAX_LINE_HIGHLIGHTS, (max(game), sum(game))
        assert game[:2 * count + 1] == [MAX_LINE_HIGHLIGHTS] * (2 * count + 1), game
        assert game[-1] == 4
        # The first 20 z's are coloured, the rest of the line is not; its text is whole.
        first = await page.evaluate("""() => { const l = [...document.querySelectorAll('#log .line')][0];
          return [l.textContent, [...l.querySelectorAll('span.hl')].map((s) => s.textContent).join('')]; }""")
        assert first == ["z" * width + " old 000", "z" * MAX_LINE_HIGHLIGHTS]
        # The many-coloured match is coloured in its first 20 pieces.
        many = await page.evaluate("""() => [...document.querySelectorAll('#log .line')].at(-2)
          .querySelectorAll('span.hl').length""")
        assert many == MAX_LINE_HIGHLIGHTS


PAINT_SLICE_LINES = 50  # highlight.js: lines painted in one task

# span.hl elements added to the log, counted per delivery of a MutationObserver of the test's own:
# one delivery for what a task changed.
COUNT_PAINTS = """() => {
  window.__paints = [];
  new MutationObserver((records) => {
    let n = 0;
    for (const r of records) for (const node of r.addedNodes) if (node.classList?.contains('hl')) n++;
    if (n) window.__paints.push(n);
  }).observe(document.getElementById('log'), { childList: true, subtree: true });
}"""


async def test_a_highlight_added_over_a_full_log_is_painted_a_slice_at_a_time(browser: Browser) -> None:  # noqa: F811
    """A pattern added when the log is full colours every line in it: 5,000 lines of 20 spans,
    which in one task held the page for over a second (1.4 s measured). A task paints at most
    PAINT_SLICE_LINES lines; the page goes on between them."""
    count = 1000
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"".join(b"z" * 100 + b" line %04d\r\n" % i for i in range(count)))
        await log_has(page, "z line %04d" % (count - 1))
        await page.evaluate(HIGHLIGHTS)  # (every line drawn)
        await page.evaluate(COUNT_PAINTS)
        await send_line(page, "#highlight /z/ tomato")
        await page.wait_for_function(f"() => window.__paints.reduce((a, b) => a + b, 0) === {count * MAX_LINE_HIGHLIGHTS}")
        paints = await page.evaluate("window.__paints")
        assert max(paints) <= PAINT_SLICE_LINES * MAX_LINE_HIGHLIGHTS, paints
        assert [hl for _, hl in await page.evaluate(HIGHLIGHTS)] == [MAX_LINE_HIGHLIGHTS] * count
