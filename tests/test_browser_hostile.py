"""A hostile game against the browser client, in real headless Chromium: GMCP data that is any
JSON where the panels expect text or numbers (SPEC 4.3: ``data`` is the parsed JSON) never
throws in the page, and what is not text is not shown.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.test_browser import browser, fake_game, gmcp, log_has  # noqa: F401 (fixture)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_gmcp_objects_where_text_is_expected(browser: Browser) -> None:  # noqa: F811
    async with fake_game(browser) as g:  # (a JavaScript error on the page fails the test)
        g.conn.send(b"\xff\xfb\xc9")  # IAC WILL GMCP
        await g.conn.wait_for(b"\xff\xfd\xc9")
        not_text = '{"toString": 1, "valueOf": "x"}'
        g.conn.send(gmcp("Room.Info", f'{{"name": {not_text}, "area": "Keep", '
                                      f'"exits": [{not_text}, "n", "constructor", "__proto__"]}}'))
        g.conn.send(gmcp("Char.Vitals", f'{{"hp": {not_text}, "maxhp": 10, "mp": 5, "maxmp": 8}}'))
        g.conn.send(b"END\r\n")
        await log_has(g.page, "END")
        await g.page.wait_for_selector("#room-area:has-text('Keep')")
        assert await g.page.inner_text("#room-name") == ""
        assert await g.page.locator("#exits .exit").all_inner_texts() == ["n", "constructor", "__proto__"]
        assert await g.page.locator("#pad button.lit").count() == 1  # north only
        await g.page.wait_for_selector(".gauge[data-name=mp][aria-valuenow='5']")
        assert await g.page.locator(".gauge").count() == 1  # hp's value is no number: no gauge
