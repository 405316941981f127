"""The scrollback search does not hold the page (SPEC 7.1, docs/client.md), in real headless
Chromium in front of the scripted fake MUD (as tests/test_browser.py).

Every keystroke in the search field searched the whole log in one task: drawing every lazy block,
reading every line's text and matching it. A full log (5,000 lines of up to 10,000 characters, 50
MB of text) held the page ~145 ms a keystroke, game text and typing waiting. search.js now reads
the log newest first, a slice at a time (SLICE_LINES lines, and no line more once a slice has read
SLICE_CHARS characters), the page going on between slices; a key typed meanwhile ends the search.

What a search reads is counted per task: the text search.js reads from the log's lines (their
textContent), a task starting with each timer callback (the page's way of going on between
slices) and with each input event. Nothing is timed.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page

from tests.test_browser import (  # noqa: F401 (browser: the module's fixture)
    CAP, FakeGame, browser, fake_game, log_has, log_text,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SLICE_LINES = 50  # search.js: lines a slice reads at most...
SLICE_CHARS = 1 << 18  # ...and no line more once it read this many characters
MAX_LINE_CHARS = 10_000  # output.js: the log's longest line

# window.__reads: per task, what search.js read of the log's lines: {lines, chars, last} (`last`: the
# length of the last line it read). window.__counts: the search count's text at the end of each
# task that changed it, with the current match's line then.
COUNT_READS = """() => {
  window.__reads = [];
  let task = null;
  const next = () => { task = null; };
  const setTimeout = window.setTimeout;
  window.setTimeout = function (f, ...rest) {
    return setTimeout.call(window, typeof f === 'function' ? (...a) => { next(); return f(...a); } : f, ...rest);
  };
  window.addEventListener('input', next, true);
  const text = Object.getOwnPropertyDescriptor(Node.prototype, 'textContent');
  Object.defineProperty(Node.prototype, 'textContent', {...text, get() {
    const value = text.get.call(this);
    if (this.classList?.contains('line') && new Error().stack.includes('/search.js')) {
      if (!task) window.__reads.push(task = {lines: 0, chars: 0, last: 0});
      task.lines++;
      task.chars += value.length;
      task.last = value.length;
    }
    return value;
  }});
  window.__type = (query) => { // (as one key would: an input event, a task of its own)
    const field = document.getElementById('search-field');
    field.value = query;
    field.dispatchEvent(new Event('input'));
  };
  window.__counts = [];
  const count = document.getElementById('search-count');
  new MutationObserver(() => {
    const current = CSS.highlights.get('search-current')?.values().next().value;
    window.__counts.push([count.textContent,
                          current ? current.startContainer.parentElement.closest('.line').textContent : null]);
  }).observe(count, {childList: true, characterData: true, subtree: true});
}"""

# The search's state: its count, the text of every range it paints, the current one's line, and
# whether every range is in the log.
SEARCH_STATE = """() => {
  const ranges = [...CSS.highlights.get('search'), ...CSS.highlights.get('search-current')];
  const current = CSS.highlights.get('search-current').values().next().value;
  return {count: document.getElementById('search-count').textContent,
          texts: [...new Set(ranges.map((r) => r.toString().toLowerCase()))],
          ranges: ranges.length,
          line: current ? current.startContainer.parentElement.closest('.line').textContent : null,
          inLog: ranges.every((r) => document.getElementById('log').contains(r.startContainer))};
}"""

# Types `query` into the search field as one key would (after COUNT_READS).
TYPE = "(query) => window.__type(query)"

# Lines in the log, those of lazy blocks (output.js: their records, not drawn) too.
LINES = """() => [...document.querySelectorAll('#log > .chunk')]
  .reduce((n, c) => n + (c.records ? c.records.length : c.childElementCount), 0)"""


async def final_count(page: Page) -> str:
    """Once the search is done: its count ("3 of 12", "No matches")."""
    await page.wait_for_function("() => / of |^No matches$/.test(document.getElementById('search-count').textContent)"
                                 " && !document.getElementById('search-count').hasAttribute('aria-busy')")
    return await page.evaluate("document.getElementById('search-count').textContent")


def long_line(i: int) -> bytes:
    """Line `i` of the log: every third one of ~5,000 characters, in colours."""
    if i % 3:
        return b"short %04d\r\n" % i
    return b"long %04d " % i + b"\x1b[36mwater\x1b[0m and \x1b[33msand\x1b[0m " * 333 + b"\r\n"


async def long_log_to_search(g: FakeGame, count: int, last: bytes) -> int:
    """The game sends ``count`` of ``long_line`` and then ``last``; once the page shows it, the
    search's reads are counted (COUNT_READS) and the search bar is opened: the log's lines."""
    g.conn.send(b"".join(long_line(i) for i in range(count)) + last + b"\r\n")
    await log_has(g.page, last.decode())
    lines = await g.page.evaluate(LINES)
    await g.page.evaluate(COUNT_READS)
    await g.page.press("#input", "Control+f")
    return lines


async def test_a_search_reads_a_bounded_slice_a_task_newest_first(browser: Browser) -> None:  # noqa: F811
    """1,500 lines, 500 of them of 5,000 characters (2.5 MB): a search for the oldest line read
    all of them in the keystroke's task. It reads them in many tasks now, none more than
    SLICE_LINES lines nor a line more once it read SLICE_CHARS characters, each line once; the
    newest match is shown (current, counted "1+ …") with the first slice, before the search is
    done, and the count then says "2 of 2" as ever."""
    count = 1500
    async with fake_game(browser) as g:
        page = g.page
        lines = await long_log_to_search(g, count, b"the end: short 0001 again")
        await page.evaluate(TYPE, "SHORT 0001")
        assert await final_count(page) == "2 of 2"
        reads = await page.evaluate("window.__reads")
        assert sum(r["lines"] for r in reads) == lines, reads  # (every line, once)
        assert len(reads) > 1, reads
        for r in reads:
            assert r["lines"] <= SLICE_LINES and r["chars"] - r["last"] < SLICE_CHARS, r
        assert max(r["chars"] for r in reads) < SLICE_CHARS + MAX_LINE_CHARS
        # The newest match came first, while the search went on; the oldest is in the count.
        counts = await page.evaluate("window.__counts")
        assert counts[0] == ["1+ …", "the end: short 0001 again"], counts
        assert counts[-1] == ["2 of 2", "the end: short 0001 again"], counts
        state = await page.evaluate(SEARCH_STATE)
        assert state["texts"] == ["short 0001"] and state["ranges"] == 2 and state["inLog"], state
        # Enter: to the oldest (wrapping around), searched again (the search drew lazy blocks:
        # the log changed); Enter again, the log as it was: at once, nothing read.
        await page.press("#search-field", "Enter")
        await page.wait_for_selector("#search-count:has-text('1 of 2')")
        assert (await page.evaluate(SEARCH_STATE))["line"] == "short 0001"
        await page.evaluate("window.__reads = []")
        await page.press("#search-field", "Enter")
        await page.wait_for_selector("#search-count:has-text('2 of 2')")
        assert await page.evaluate("window.__reads") == []
        # A new query and Enter at once, in one task: the Enter is taken once the search is done.
        await page.evaluate("""() => {
          window.__type('short 000');
          document.getElementById('search-field').dispatchEvent(
            new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));
        }""")
        assert await final_count(page) == "1 of 7"  # (short 0001 .. 0008, and the last line)
        assert (await page.evaluate(SEARCH_STATE))["line"] == "short 0001"


async def test_a_key_typed_during_a_search_ends_it(browser: Browser) -> None:  # noqa: F811
    """A second query typed while the first is searched: only the second's matches and count are
    shown, from the keystroke that typed it (never a count or highlight of the first), and the
    first search reads no more. Keys typed fast do not queue a search each."""
    count = 1500
    async with fake_game(browser) as g:
        page = g.page
        lines = await long_log_to_search(g, count, b"the end")
        # "long 1" is in 167 lines, the newest ones, "long 099" in 4: long 0990, 0993, 0996, 0999.
        running = await page.evaluate("""async () => {
          window.__type('long 1');
          await new Promise((resolve) => setTimeout(resolve)); // (a task of the page's in between)
          const running = document.getElementById('search-count').textContent;
          window.__reads = [];
          window.__counts = [];
          window.__type('long 099');
          return running;
        }""")
        assert running.endswith("+ …"), running  # (the first search was going on, matches shown)
        assert await final_count(page) == "4 of 4"
        state = await page.evaluate(SEARCH_STATE)
        assert state["texts"] == ["long 099"] and state["ranges"] == 4 and state["inLog"], state
        assert state["line"].startswith("long 0999 "), state
        counts = await page.evaluate("window.__counts")
        assert all(c.endswith("…") or c == "4 of 4" for c, _ in counts), counts
        assert all(line is None or line.startswith("long 099") for _, line in counts), counts
        # The second search read the log once; the first one nothing more.
        assert sum(r["lines"] for r in await page.evaluate("window.__reads")) == lines
        # Typed fast, a key at a time ("a" matches everywhere): each key's search ends the one
        # before, the last one stops at MAX_MATCHES and one more.
        await page.evaluate("window.__reads = []")
        await page.focus("#search-field")
        await page.keyboard.press("Control+a")
        await page.keyboard.type("and sand", delay=0)
        assert await final_count(page) == "10000 of 10000+"
        state = await page.evaluate(SEARCH_STATE)
        assert state["texts"] == ["and sand"] and state["ranges"] == 10_000 and state["inLog"], state
        read = sum(r["lines"] for r in await page.evaluate("window.__reads"))
        assert read < 2 * lines, read


async def test_lines_removed_and_added_during_a_search(browser: Browser) -> None:  # noqa: F811
    """The log is full (CAP lines) and the game goes on while a search runs: the cap removes the
    oldest lines under it. Nothing throws, nothing outside the log is highlighted, and the count
    is that of the lines the log still holds. Stepping searches again (the new lines too) and
    keeps its place."""
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"".join(b"row %04d\r\n" % i for i in range(CAP)))
        await log_has(page, "row %04d" % (CAP - 1))
        await page.evaluate(COUNT_READS)
        # The first block of old lines (lazy or drawn) is removed: the search's count at that moment.
        await page.evaluate("""() => {
          const first = document.querySelector('#log > .chunk');
          window.__removed = null;
          new MutationObserver((records, observer) => {
            if (first.isConnected) return;
            window.__removed = document.getElementById('search-count').textContent;
            observer.disconnect();
          }).observe(document.getElementById('log'), {childList: true});
        }""")
        await page.press("#input", "Control+f")
        await page.evaluate(TYPE, "row")
        g.conn.send(b"".join(b"new %03d row\r\n" % i for i in range(100)))
        await page.wait_for_function("() => window.__removed !== null")
        assert (await page.evaluate("window.__removed")).endswith("…")  # (removed during the search)
        final = await final_count(page)
        kept = (await log_text(page)).count("row ")  # (the old rows the log holds: "new 000 row" is not one)
        assert kept < CAP and final == f"{kept} of {kept}", final
        state = await page.evaluate(SEARCH_STATE)
        assert state["inLog"] and state["ranges"] == kept and state["line"] == "row %04d" % (CAP - 1), state
        # Enter: searched again, the new lines too; from the newest old row to the next, a new one.
        await page.press("#search-field", "Enter")
        await page.wait_for_selector(f"#search-count:has-text('{kept + 1} of {CAP}')")
        state = await page.evaluate(SEARCH_STATE)
        assert state["inLog"] and state["ranges"] == CAP and state["line"] == "new 000 row", state
        # Shift+Enter: back.
        await page.press("#search-field", "Shift+Enter")
        await page.wait_for_selector(f"#search-count:has-text('{kept} of {CAP}')")
        assert (await page.evaluate(SEARCH_STATE))["line"] == "row %04d" % (CAP - 1)
        # The log moves on (a line more, the oldest row removed), Shift+Enter: a step to a match
        # shown is taken at once, in the key's task; the log searched again, it is counted in place.
        g.conn.send(b"quiet\r\n")
        await log_has(page, "quiet")
        at_once = await page.evaluate("""() => {
          document.getElementById('search-field').dispatchEvent(
            new KeyboardEvent('keydown', {key: 'Enter', shiftKey: true, bubbles: true, cancelable: true}));
          const current = CSS.highlights.get('search-current').values().next().value;
          return [document.getElementById('search-count').textContent,
                  current.startContainer.parentElement.closest('.line').textContent];
        }""")
        assert at_once == [f"{kept - 1} of {CAP}", "row %04d" % (CAP - 2)], at_once
        await page.wait_for_selector(f"#search-count:has-text('{kept - 2} of {kept + 99}')")
        state = await page.evaluate(SEARCH_STATE)
        assert state["inLog"] and state["line"] == "row %04d" % (CAP - 2), state


SLICE_RANGES = 2000  # search.js: highlight ranges made in one task at most

# window.__made: after the typing's task and each timer callback (a task), the ranges the search
# paints and the text nodes walked (TreeWalker.nextNode: finding a match's text nodes) in it.
COUNT_RANGES = """() => {
  window.__made = [];
  let walked = 0;
  const nextNode = TreeWalker.prototype.nextNode;
  TreeWalker.prototype.nextNode = function () { walked++; return nextNode.call(this); };
  window.__note = () => {
    const size = (name) => CSS.highlights.get(name)?.size ?? 0;
    window.__made.push([size('search') + size('search-current'), walked]);
    walked = 0;
  };
  const setTimeout = window.setTimeout;
  window.setTimeout = function (f, ...rest) {
    return setTimeout.call(window, typeof f === 'function' ? (...a) => { walked = 0; const r = f(...a); window.__note(); return r; } : f, ...rest);
  };
}"""


async def test_the_ranges_of_a_search_are_made_a_bounded_number_a_task(browser: Browser) -> None:  # noqa: F811
    """A search for one letter in lines of 10,000 characters in 200 colours: the newest line
    alone has 10,000 matches, whose ranges were all made in the keystroke's task, each by a
    walk of the line's text nodes from its start (~270 ms). A task makes at most SLICE_RANGES
    of them, a line's text nodes walked once for them."""
    async with fake_game(browser) as g:
        page = g.page
        line = b"".join(b"\x1b[3%dm%s" % (1 + k % 6, b"a" * 25) for k in range(400))
        g.conn.send(b"".join(b"%03d " % i + line + b"\r\n" for i in range(100)) + b"the end\r\n")
        await log_has(page, "the end")
        await page.evaluate(COUNT_RANGES)
        await page.press("#input", "Control+f")
        await page.evaluate("""() => {
          const field = document.getElementById('search-field');
          field.value = 'A';
          field.dispatchEvent(new Event('input'));
          window.__note();
        }""")
        assert await final_count(page) == "10000 of 10000+"
        made = await page.evaluate("window.__made")
        # (the text nodes of the log's longest line: each line of 10,000 characters has 200 pieces in
        # colour and the rest as one, output.js)
        nodes = await page.evaluate("""() => Math.max(...[...document.querySelectorAll('#log .line')].map((l) => {
          const w = document.createTreeWalker(l, NodeFilter.SHOW_TEXT); let n = 0; while (w.nextNode()) n++; return n; }))""")
        sizes = [size for size, _ in made]
        assert sizes[-1] == 10_000 and len([s for s in sizes if s]) > 1, made
        assert all(b - a <= SLICE_RANGES for a, b in zip([0] + sizes, sizes)), made
        assert max(walked for _, walked in made) <= 2 * nodes, (nodes, made)
