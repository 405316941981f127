"""Commands beyond the rate limit's burst arrive whole and in order (SPEC 4.4, 7.1), in real
headless Chromium.

The gateway refuses a `recv` past its session's token bucket ("rate limited", SPEC 3
`input_lines_per_second`/`input_burst`): the page keeps such a command and sends it again, and
every one after it, in order, after a pause (commandqueue.js). Here the burst is small, so a
`;;` line, an alias, or the commands typed while the connection was down go past it; the
scripted fake MUD records every byte it gets: each step once, in order, none missing.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import Browser

from tests.fakemud import FakeConnection
from tests.test_browser import browser, connected, fake_game, kill_websockets, log_has, log_text, send_line  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="module")

BURST = 5
#: The gateway's limits for these tests: a burst of BURST lines, then 10 a second (SPEC 3's rate).
LIMITS = f"limits: {{input_burst: {BURST}, input_lines_per_second: 10}}"
STEPS = BURST + 15


def steps(n: int = STEPS) -> list[str]:
    return [f"step {i}" for i in range(1, n + 1)]


async def game_got_in_order(conn: FakeConnection, n: int = STEPS) -> None:
    """The game got `step 1` .. `step n`, each once, in order, and nothing else of them."""
    await conn.wait_for(f"step {n}\r\n".encode(), timeout=30)
    got = [int(m) for m in re.findall(rb"step (\d+)\r\n", bytes(conn.received))]
    assert got == list(range(1, n + 1)), got


async def test_a_stacked_line_past_the_burst_reaches_the_game_whole_and_in_order(browser: Browser) -> None:  # noqa: F811
    async with fake_game(browser, extra=LIMITS) as g:
        # The page's frames, from a reload on (the same session: the hook sees its new socket).
        sent: list[str] = []
        received: list[str] = []
        g.page.on("websocket", lambda ws: (ws.on("framesent", lambda f: sent.append(f)),
                                           ws.on("framereceived", lambda f: received.append(f))))
        await g.page.reload()
        await connected(g.page)
        await send_line(g.page, ";;".join(steps()))
        await game_got_in_order(g.conn)
        log = await log_text(g.page)
        assert "Not sent" not in log, log
        assert log.count("Rate limited: 15 lines waiting") == 1, log  # said once, not per refusal
        # It does not hammer the gateway: past the 15 refused of the first burst, a refusal at most
        # per 2 lines taken (each pause, 250 ms or more, refills 2.5 lines at 10 a second).
        refused = sum('"rate limited"' in f for f in received)
        assert STEPS - BURST <= refused <= STEPS - BURST + (STEPS - BURST) // 2 + 1, refused
        pushes = [json.loads(f)[4]["n"] for f in sent if '"recv"' in f]
        assert len(pushes) == STEPS + refused, pushes


async def test_an_alias_past_the_burst_reaches_the_game_whole_and_in_order(browser: Browser) -> None:  # noqa: F811
    async with fake_game(browser, extra=LIMITS) as g:
        await send_line(g.page, "#alias walk " + ";;".join(steps()))
        await send_line(g.page, "walk")
        await game_got_in_order(g.conn)
        # More typed behind it while it is being paced goes after it.
        await send_line(g.page, f"step {STEPS + 1}")
        await game_got_in_order(g.conn, STEPS + 1)
        assert "Not sent" not in await log_text(g.page)


async def test_commands_typed_offline_past_the_burst_reach_the_game_on_rejoin(browser: Browser) -> None:  # noqa: F811
    async with fake_game(browser, extra=LIMITS) as g:
        page = g.page
        await page.context.set_offline(True)
        kill_websockets(g.app)
        await page.wait_for_selector("#status[data-state=reconnecting]")
        for line in steps():
            await send_line(page, line)
        await page.context.set_offline(False)  # the `online` event reconnects at once
        await connected(page)
        await game_got_in_order(g.conn)
        assert "Not sent" not in await log_text(page)
        assert len(g.mud.connections) == 1


async def test_a_line_too_long_is_reported_not_sent_and_the_rest_goes_on(browser: Browser) -> None:  # noqa: F811
    limits = f"limits: {{input_burst: {BURST}, input_lines_per_second: 10, max_input_bytes: 40}}"
    async with fake_game(browser, extra=limits) as g:
        long = "say " + "x" * 60
        await send_line(g.page, ";;".join(steps(3) + [long] + [f"step {i}" for i in range(4, STEPS + 1)]))
        await game_got_in_order(g.conn)
        await log_has(g.page, f"Not sent (message too long): {long}")  # removed, not sent again
        assert b"xxx" not in g.conn.received
