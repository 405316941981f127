"""An evening's connection troubles (SPEC 7, 7.1: the status line, `role=status`), in real headless
Chromium through the real gateway and the fake MUD, as a player (and a screen reader) meets them:
the network gone for a while and back. Page errors fail the test (open_page); console errors are
collected too (those of the WebSocket attempts made while the network is down are the browser's
own, and expected there).
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.test_browser import browser, connected, fake_game, kill_websockets, log_has  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Every change of the status line's text, as a screen reader hears a live region change.
RECORD = """() => {
  window.__said = [];
  const el = document.getElementById('status');
  new MutationObserver(() => window.__said.push(el.textContent))
    .observe(el, {childList: true, characterData: true, subtree: true});
}"""


async def test_the_status_line_says_reconnecting_once_however_many_attempts(browser: Browser) -> None:  # noqa: F811
    """The status line is a live region: each change of its text is read out. While the network
    is down, phoenix.js tries again and again (backoff), and each failed attempt reported the
    connection lost: "Reconnecting…" was written anew each time, a dozen times in the first 25
    seconds and then every 5 s for as long as it lasts, each one a fresh announcement of the same
    word. It must change once going down and once coming back."""
    async with fake_game(browser) as g:
        page = g.page
        offline_errors: list[str] = []
        errors: list[str] = []
        page.on("console", lambda m: (offline_errors if "ERR_INTERNET_DISCONNECTED" in m.text else errors).append(m.text)
                if m.type == "error" else None)
        await page.evaluate(RECORD)
        await page.context.set_offline(True)
        assert kill_websockets(g.app) == 1
        await page.wait_for_selector("#status[data-state=reconnecting]")
        # Three attempts failed (each leaves the browser's own console error).
        for _ in range(600):
            if len(offline_errors) >= 3:
                break
            await page.wait_for_timeout(50)
        assert len(offline_errors) >= 3
        assert await page.evaluate("window.__said") == ["Reconnecting…"]
        g.conn.send(b"said while away\r\n")
        await page.context.set_offline(False)
        await connected(page)
        await log_has(page, "said while away")
        assert await page.evaluate("window.__said") == ["Reconnecting…", "Connected"]
        assert not errors, errors
