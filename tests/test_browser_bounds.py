"""What a game can make the page keep, and what a session's end leaves playing, in real headless
Chromium (SPEC 7.1, docs/client.md): the state a game's GMCP grows (gauges, exit buttons, sounds)
is bounded, and so are the log's elements however the game styles or links its text, a session that ended or was replaced by a new one plays none of its loops on, and the
join's `gap` is worded for what it is (a reload's older output no longer kept, or output lost while
the connection was down); the 1 KB pieces the page draws a long line in never cut a link.

The real gateway in front of the scripted fake MUD, as in tests/test_browser.py; sounds come from a
local media server (tests/test_browser_sound.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import AsyncIterator

import aiohttp

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from tests.conftest import make_config
from tests.fakemud import FakeConnection, FakeMud
from tests.test_browser import (  # noqa: F401 (fixture)
    IAC, WILL, browser, cmd, connected, fake_game, kill_websockets, log_has, log_text, open_page,
    serve,
)
from tests.test_browser_evening import sessions
from tests.test_browser_sound import media_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

SB, SE, DO, GMCP, MXP = 250, 240, 253, 201, 91
MAX_GAUGES = 24  # panels.js
MAX_EXITS = 40  # panels.js
MAX_PLAYING = 16  # sound.js


def gmcp(module: str, data: object) -> bytes:
    return cmd(IAC, SB, GMCP) + module.encode() + b" " + json.dumps(data).encode() + cmd(IAC, SE)


async def gmcp_on(conn: FakeConnection) -> None:
    conn.send(cmd(IAC, WILL, GMCP))
    await conn.wait_for(cmd(IAC, DO, GMCP))


async def test_gauges_and_exit_buttons_are_bounded(browser: Browser) -> None:  # noqa: F811
    """Every Char.Vitals key with a maximum is a gauge, every exit a button: a game sending
    hundreds of them (or a new key in each message) would grow the page without end. The
    first MAX_GAUGES gauges are kept and go on updating; the first MAX_EXITS exits are shown."""
    async with fake_game(browser) as g:
        page = g.page
        await gmcp_on(g.conn)
        vitals: dict[str, int] = {"hp": 10, "maxhp": 20}
        for i in range(100):
            vitals[f"k{i}"] = i
            vitals[f"maxk{i}"] = 100
        g.conn.send(gmcp("Char.Vitals", vitals) + b"vitals sent\r\n")
        await log_has(page, "vitals sent")
        for i in range(100, 200):  # a new key in each message
            g.conn.send(gmcp("Char.Vitals", {f"n{i}": 1, f"maxn{i}": 2}))
        g.conn.send(gmcp("Char.Vitals", {"hp": 15, "maxhp": 20}) + b"more sent\r\n")
        await log_has(page, "more sent")
        await page.wait_for_selector(".gauge[data-name=hp][aria-valuenow='15']")
        assert await page.locator("#vitals .gauge").count() == MAX_GAUGES
        g.conn.send(gmcp("Room.Info", {"name": "Hub", "exits": {f"portal{i}": i for i in range(500)}})
                    + b"room sent\r\n")
        await log_has(page, "room sent")
        await page.wait_for_selector("#room-name:has-text('Hub')")
        names = await page.locator("#exits .exit").all_inner_texts()
        assert names == [f"portal{i}" for i in range(MAX_EXITS)]


# The page's audio elements that play() was called on (sound.js makes them with new Audio(),
# outside the document): the test counts those not paused.
TRACK_AUDIO = """() => {
  window.__audio = [];
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () {
    if (!window.__audio.includes(this)) window.__audio.push(this);
    return play.call(this);
  };
}"""
PLAYING = "() => window.__audio.filter((a) => !a.paused).length"
MADE = "() => window.__audio.length"


async def playing(page: Page) -> int:
    return await page.evaluate(PLAYING)


async def loops(conn: FakeConnection, page: Page, media_url: str, keys: range, marker: str) -> None:
    """Looping sounds under the given keys, then a line; until the page has shown the line."""
    conn.send(b"".join(gmcp("Client.Media.Play", {"name": "loop.wav", "url": media_url, "type": "sound",
                                                  "key": f"k{k}", "loops": -1}) for k in keys)
              + gmcp("Client.Media.Play", {
                  "name": "theme.wav", "url": media_url, "type": "music", "loops": -1})
              + marker.encode() + b"\r\n")
    await log_has(page, marker)


@contextlib.asynccontextmanager
async def sound_game(browser: Browser) -> AsyncIterator[tuple[FakeMud, web.Application, str, Page, str]]:  # noqa: F811
    """The page playing the fake MUD with a media_url, sound turned on, its audio tracked:
    (mud, app, page URL, page, media_url)."""
    async with media_server() as (media_url, asked), FakeMud() as mud:
        config = make_config(mud.port, game_extra=f"    title: Fake Game\n    media_url: {media_url}")
        async with serve(config) as (app, url):
            async with open_page(browser, url) as page:
                await connected(page)
                await page.evaluate(TRACK_AUDIO)
                await page.click("#sound-toggle")
                yield mud, app, url, page, media_url


async def test_sounds_playing_at_once_are_bounded(browser: Browser) -> None:  # noqa: F811
    """A game can start a looping sound under any number of keys, each an audio element that
    plays for ever: at most MAX_PLAYING play at once, the oldest stopped for a new one."""
    async with sound_game(browser) as (mud, app, url, page, media_url):
        conn = await mud.next_connection(timeout=20)
        await gmcp_on(conn)
        await loops(conn, page, media_url, range(40), "forty loops")
        await page.wait_for_function(f"() => ({MADE})() === 41")
        assert await playing(page) == MAX_PLAYING
        # The newest ones play: the last sounds and the music.
        assert await page.evaluate(f"() => window.__audio.slice(-{MAX_PLAYING}).every((a) => !a.paused)") is True


async def test_no_loop_outlives_its_session(browser: Browser) -> None:  # noqa: F811
    """A session that ended (the game hung up), or a new session found by a rejoin (the old one
    ended while the page was away), plays none of the last one's loops."""
    async with sound_game(browser) as (mud, app, url, page, media_url):
        conn = await mud.next_connection(timeout=20)
        await gmcp_on(conn)
        await loops(conn, page, media_url, range(3), "three loops")
        await page.wait_for_function(f"() => ({PLAYING})() === 4")
        # The game hangs up: nothing of that session loops on.
        conn.close()
        await page.wait_for_selector("#status[data-state=ended]")
        assert await playing(page) == 0
        # Connect again, loops again; then the page goes away, and the session ends meanwhile.
        await page.click("#again")
        second = await mud.next_connection(timeout=20)
        await connected(page)
        await gmcp_on(second)
        await loops(second, page, media_url, range(3), "loops again")
        await page.wait_for_function(f"() => ({PLAYING})() === 4")
        await page.context.set_offline(True)
        assert kill_websockets(app) == 1
        await page.wait_for_selector("#status[data-state=reconnecting]")
        second.close()
        for _ in range(400):
            if await sessions(url) == 0:
                break
            await asyncio.sleep(0.05)
        assert await sessions(url) == 0
        await page.context.set_offline(False)
        third = await mud.next_connection(timeout=20)
        await connected(page)
        await log_has(page, "A new game session started.")
        third.send(b"welcome back\r\n")
        await log_has(page, "welcome back")
        assert await playing(page) == 0


async def to_browser(url: str) -> float:
    """The gateway's bytes_total to the browser (counted as the game's output is read)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "metrics") as response:
            text = await response.text()
    for line in text.splitlines():
        if line.startswith('mud_gateway_bytes_total{direction="to_browser"}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no bytes_total to the browser in /metrics")


async def test_a_gap_is_worded_for_a_reload_and_for_a_drop(browser: Browser) -> None:  # noqa: F811
    """The join's `gap`: events after `last_seq` (0 for a reloaded page) left the replay buffer.
    After a reload that is older output no longer kept (nothing was lost while a connection was
    down); after a drop (a join with `last_seq`) it is output lost while the connection was down."""
    lost = "Some output was lost while the connection was down."
    older = "Older output of this session is no longer kept."
    async with fake_game(browser, extra="sessions: {replay_bytes: 4096, linger_seconds: 60}") as g:
        page = g.page
        for part in range(20):  # (events of under 1 KB: the buffer keeps the last few)
            g.conn.send(b"".join(b"line %03d %s\r\n" % (i, b"x" * 80) for i in range(10)) + b"part %d\r\n" % part)
            await log_has(page, f"part {part}")
        g.conn.send(b"first part done\r\n")
        await log_has(page, "first part done")
        await page.reload()
        await connected(page)
        await log_has(page, "first part done")
        await log_has(page, older)
        assert lost not in await log_text(page)
        # A drop while the game says more than the buffer keeps: lost while the connection was down.
        before = await to_browser(g.url)
        await page.context.set_offline(True)
        assert kill_websockets(g.app) == 1
        await page.wait_for_selector("#status[data-state=reconnecting]")
        for part in range(20):
            g.conn.send(b"".join(b"away %03d %s\r\n" % (i, b"y" * 80) for i in range(10)))
            await asyncio.sleep(0.02)  # (separate reads: separate events)
        g.conn.send(b"second part done\r\n")
        # Until the gateway has read it into the lingering session's buffer.
        for _ in range(400):
            if await to_browser(g.url) >= before + 200 * 90:
                break
            await asyncio.sleep(0.05)
        assert await to_browser(g.url) >= before + 200 * 90
        await page.context.set_offline(False)
        await connected(page)
        await log_has(page, "second part done")
        await log_has(page, lost)
        assert (await log_text(page)).count(older) == 1


async def test_a_long_line_of_links_keeps_every_link(browser: Browser) -> None:  # noqa: F811
    """The page draws game text in pieces of at most 1 KB (output.js), cut at a line's end, or
    inside a longer line. A cut inside an OSC 8 sequence whose URI is longer than the parser keeps
    of an unfinished sequence (a link with a menu: kilobytes) lost the link and put the rest of its
    URI into the log as text. Pieces end after a sequence, never inside."""
    async with FakeMud() as mud:
        async with serve(make_config(mud.port, game_extra="    title: Links Game")) as (_app, url):
            async with open_page(browser, url) as page:
                conn = await mud.next_connection(timeout=20)
                await connected(page)
                conn.send(cmd(IAC, WILL, MXP))
                await conn.wait_for(cmd(IAC, DO, MXP))
                menu = "|".join(f"say this is menu command number {i} of the link" for i in range(6))
                links = " ".join(f'<SEND href="{menu}">link{n}</SEND>' for n in range(12))
                conn.send(b"\x1b[1z" + links.encode() + b" end of links\r\n")
                await log_has(page, "end of links")
                text = await log_text(page)
                assert "config" not in text and "%" not in text, text[:300]
                assert " ".join(f"link{n}" for n in range(12)) + " end of links" in text
                assert await page.locator("#log .game-link[aria-haspopup=menu]").count() == 12


MAX_LINE_PARTS = 200  # output.js: the game's elements (styles, links) in one line
MAX_LOG_PARTS = 100_000  # output.js: the game's elements in the whole log
GA = 249

# Every line the log keeps drawn (logLines draws the lazy blocks), then what the log holds.
LOG_COUNTS = """async () => {
  const { logLines } = await import(new URL('client/output.js', document.baseURI));
  const log = document.getElementById('log');
  const lines = logLines(log).length;
  let nodes = 0;
  for (const walk = document.createTreeWalker(log); walk.nextNode(); ) nodes++;
  return {lines, blocks: log.querySelectorAll(':scope > .chunk').length,
          elements: log.querySelectorAll('*').length, nodes};
}"""


def styled(n: int, first: int = 0) -> bytes:
    """n letters, each in a colour of its own (the next letter's differs)."""
    return b"".join(b"\x1b[3%dm%c" % (1 + i % 6, 65 + (first + i) % 26) for i in range(n)) + b"\x1b[0m"


def letters(n: int, first: int = 0) -> str:
    return "".join(chr(65 + (first + i) % 26) for i in range(n))


async def test_a_game_cannot_grow_the_log_without_bound_in_elements(browser: Browser) -> None:  # noqa: F811
    """The log keeps 5,000 lines of up to 10,000 characters, but every character can have a style
    or a link of its own: one line could be 10,000 elements, the log 50 million, and the tab dies.
    A line holds at most MAX_LINE_PARTS of the game's elements (spans, links), the rest of it goes
    on as plain text; the log at most MAX_LOG_PARTS, the oldest lines past it plain text. Their
    text is all there. Here 336,000 characters each in a style or link of its own: the log holds
    its lines and blocks, and at most MAX_LOG_PARTS elements beyond them; an ordinary coloured line
    is drawn as ever."""
    width = 300
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"".join(styled(width, i) + b"\r\n" for i in range(1000)))
        g.conn.send(b"".join(b"".join(b"\x1b]8;;send:look\x1b\\%c" % (65 + (i + k) % 26) for k in range(width))
                             + b"\x1b]8;;\x1b\\\r\n" for i in range(100)))
        g.conn.send(b"".join(b"http://e.example/ " * width + b"\r\n" for _ in range(20)))
        g.conn.send(b"\x1b[31mred\x1b[0m and \x1b[1;32mgreen\x1b[0m done\r\n")
        await g.conn.drain()
        await log_has(page, "red and green done")
        counts = await page.evaluate(LOG_COUNTS)
        assert counts["lines"] == 1121
        own = counts["lines"] + counts["blocks"] + 1  # line and block elements, the end marker
        assert counts["elements"] - own <= MAX_LOG_PARTS, counts
        # Text nodes: one in each of the game's elements, at most one after it, one a line before them.
        assert counts["nodes"] - counts["elements"] <= 2 * MAX_LOG_PARTS + counts["lines"], counts
        texts = await page.evaluate("[...document.querySelectorAll('#log .line')].map((l) => l.textContent)")
        assert texts[:1000] == [letters(width, i) for i in range(1000)]
        assert texts[1000:1100] == [letters(width, i) for i in range(100)]
        assert texts[1100:1120] == ["http://e.example/ " * width] * 20
        # The newest lines keep their links and styles up to the line's bound.
        assert await page.evaluate("document.querySelectorAll('#log .line')[1099].querySelectorAll('.game-link').length") \
            == MAX_LINE_PARTS
        assert await page.evaluate("document.querySelectorAll('#log .line')[999].querySelectorAll('span').length") \
            == MAX_LINE_PARTS
        # An ordinary line: its runs as ever.
        last = await page.evaluate("""() => [...document.querySelectorAll('#log .line')].at(-1).innerHTML""")
        assert last.count("<span") == 2 and last.startswith('<span style="color: var(--ansi-1);">red</span> and '), last
        # A prompt is held to the same bound.
        g.conn.send(b"\r\n" + styled(1000) + b"> " + cmd(IAC, GA))
        await page.wait_for_function("() => document.getElementById('prompt').textContent.endsWith('> ')")
        prompt = await page.evaluate("""() => { const p = document.getElementById('prompt');
          return [p.textContent, p.querySelectorAll('*').length]; }""")
        assert prompt == [letters(1000) + "> ", MAX_LINE_PARTS]


# An OutputLog of its own in the page (output.js, as main.js makes it, with a cap of 100 lines),
# given `count` events of `size` characters without a newline in one task (no frame between).
QUEUE_BOUND = """async ([count, size]) => {
  const { OutputLog } = await import(new URL('client/output.js', document.baseURI));
  const made = (tag) => document.body.appendChild(document.createElement(tag));
  const out = new OutputLog({ log: made('div'), tail: made('div'), jump: made('button'), prompt: made('div'), cap: 100 });
  for (let i = 0; i < count; i++) out.write('x'.repeat(size - 1) + 'y');
  const queued = out.queuedChars;
  out.flushNow();
  const lines = [...out.el.querySelectorAll('.line')].map((l) => l.textContent);
  return { queued, lines: lines.length, whole: lines.slice(0, -1).every((t) => t.length === 10000),
           last: lines.at(-1).slice(-3) };
}"""


async def test_text_waiting_to_be_drawn_is_bounded_without_newlines(browser: Browser) -> None:  # noqa: F811
    """Text waits in a queue until a frame draws it; text with `cap` lines queued behind it is only
    parsed (the cap would remove it unseen). A game that sends no newline at all went past that:
    the queue grew with all it sent while the page was behind. Text with more characters queued
    behind it than the log holds (cap lines of 10,000) is only parsed too."""
    async with fake_game(browser) as g:
        result = await g.page.evaluate(QUEUE_BOUND, [50, 100_000])  # 5 million characters
        assert result["queued"] <= 100 * 10_000 + 1024, result
        assert result["lines"] == 100 and result["whole"] and result["last"] == "xxy", result


LINK_CHARS_PER_PART = 128  # output.js: a link's data counts a part per this many characters more

# The characters a line's elements hold in attributes (href, title, data-*, aria-*).
ATTRIBUTE_CHARS = """(i) => {
  const line = document.querySelectorAll('#log .line')[i];
  let n = 0;
  for (const el of line.querySelectorAll('*')) for (const a of el.attributes) n += a.value.length;
  return [line.textContent, line.querySelectorAll('.game-link').length, n];
}"""


async def test_a_link_counts_what_it_holds(browser: Browser) -> None:  # noqa: F811
    """A link element holds its command three times (data-command, title, the accessible
    description), whatever its length: 200 links of a line, each with a command of 12,000
    characters (a read of the game's: the gateway keeps an escape sequence whole within one),
    would be 7 million characters, the log's 100,000 links 3.6 billion. A link counts a part for
    every LINK_CHARS_PER_PART characters of its data too: a line's link data is bounded with its
    elements (3 copies of 200 parts of 128 characters), and what is past the bound is plain text
    as ever."""
    async with fake_game(browser) as g:
        page = g.page
        command = b"a" * 12_000
        g.conn.send(b"".join(b"\x1b]8;;send:%s\x1b\\L%d\x1b]8;;\x1b\\ " % (command, i) for i in range(3))
                    + b"end\r\nshort \x1b]8;;send:look\x1b\\look\x1b]8;;\x1b\\ here\r\n")
        await log_has(page, "short look here")
        text, links, chars = await page.evaluate(ATTRIBUTE_CHARS, 0)
        assert text == "L0 L1 L2 end"
        assert chars <= 3 * MAX_LINE_PARTS * LINK_CHARS_PER_PART, (links, chars)
        assert links == 2  # (94 parts each: no room for a third)
        assert await page.evaluate(ATTRIBUTE_CHARS, 1) == ["short look here", 1, 56]  # an ordinary link, as ever
