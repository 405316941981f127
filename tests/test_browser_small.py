"""The browser client on small screens and at 400% zoom (SPEC 7.1 "Small screens and zoom"), in Chromium.

At 320 x 256 CSS px (1280 x 1024 at 400%, WCAG 1.4.10) the log shows at least
4 lines, the input line is visible and nothing scrolls sideways; at 360 x 300
(a phone with its keyboard open) at least 10 lines. On a touch screen the
"Previous command" and "Next command" buttons walk the history; on a desktop
they are not shown.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page

from tests.test_browser import (  # noqa: F401  (browser: the module's fixture)
    DESKTOP, browser, demo_page, fake_game, login_demo, send_line,
)
from tests.test_browser_a11y import in_play

pytestmark = pytest.mark.asyncio(loop_scope="module")

ZOOM_400 = {"width": 320, "height": 256}
KEYBOARD_OPEN = {"width": 360, "height": 300}

LAYOUT = """() => {
  const log = document.getElementById('log');
  const style = getComputedStyle(log);
  const lineHeight = parseFloat(style.lineHeight);
  const inner = log.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  const input = document.getElementById('input').getBoundingClientRect();
  const doc = document.scrollingElement;
  return {
    lines: inner / lineHeight,
    input: [input.top, input.bottom, input.left, input.right, input.width, input.height],
    inView: input.top >= 0 && input.bottom <= innerHeight && input.left >= 0 && input.right <= innerWidth,
    sideways: [doc.scrollWidth, doc.clientWidth, document.body.scrollWidth, document.body.clientWidth],
  };
}"""


async def layout(page: Page) -> dict:
    return await page.evaluate(LAYOUT)


def check(shape: dict, lines: int) -> None:
    assert shape["lines"] >= lines, shape
    assert shape["inView"] and shape["input"][4] >= 100 and shape["input"][5] >= 20, shape
    width, client, body_width, body_client = shape["sideways"]
    assert width <= client and body_width <= body_client, shape


@pytest.mark.parametrize("viewport, lines, touch", [
    (ZOOM_400, 4, False),
    (ZOOM_400, 4, True),
    (KEYBOARD_OPEN, 10, True),
    (KEYBOARD_OPEN, 10, False),
], ids=["320x256", "320x256-touch", "360x300-phone", "360x300"])
async def test_the_log_keeps_its_lines(browser: Browser, viewport: dict, lines: int, touch: bool) -> None:
    touch_args = {"has_touch": True, "is_mobile": True} if touch else {}
    async with fake_game(browser, viewport, **touch_args) as g:
        await in_play(g)  # room, vitals, a prompt: everything that takes room
        page = g.page
        check(await layout(page), lines)
        # The pad stays out of the way even when the player had it open.
        if await page.is_visible("#pad-toggle"):
            await page.click("#pad-toggle")
        await page.evaluate("localStorage.setItem('mud-gateway:pad', 'true')")
        await page.reload()
        await page.wait_for_selector("#status[data-state=connected]")
        check(await layout(page), lines)
        # The settings open and close; the search bar too.
        await page.click("#settings-toggle")
        assert await page.evaluate("document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth")
        await page.click("#settings-toggle")
        await page.keyboard.press("Control+f")
        await page.keyboard.press("Escape")
        check(await layout(page), lines)
        # The text can be typed and sent.
        await send_line(page, "look")
        await g.conn.wait_for(b"look\r\n")


async def test_the_demo_at_400_percent_zoom(browser: Browser) -> None:
    async with demo_page(browser) as page:
        await login_demo(page, "Zoomer", "pw12345")
        await page.set_viewport_size(ZOOM_400)
        await page.wait_for_function("() => innerHeight === 256")
        check(await layout(page), 4)
        await page.set_viewport_size(KEYBOARD_OPEN)
        await page.wait_for_function("() => innerHeight === 300")
        check(await layout(page), 10)
        # Back to a roomy screen: the side panel is there again.
        await page.set_viewport_size(DESKTOP)
        await page.wait_for_selector("#side", state="visible")


async def test_touch_history_buttons(browser: Browser) -> None:
    async with fake_game(browser, {"width": 360, "height": 640}, has_touch=True, is_mobile=True) as g:
        page = g.page
        assert await page.evaluate("matchMedia('(pointer: coarse)').matches")
        prev = page.get_by_role("button", name="Previous command", exact=True)
        nxt = page.get_by_role("button", name="Next command", exact=True)
        assert await prev.is_visible() and await nxt.is_visible()
        for text in ("north", "east", "say hi"):
            await send_line(page, text)
            await g.conn.wait_for(text.encode() + b"\r\n")
        await page.fill("#input", "draft")
        await page.evaluate("document.activeElement.blur()")
        seen = []
        for _ in range(4):  # past the oldest: it stays there
            await prev.tap()
            seen.append(await page.input_value("#input"))
        assert seen == ["say hi", "east", "north", "north"]
        assert await page.evaluate("document.activeElement.id") == "input"
        await nxt.tap()
        await nxt.tap()
        assert await page.input_value("#input") == "say hi"
        await nxt.tap()
        assert await page.input_value("#input") == "draft"  # the line being typed comes back
        # What a button put there is sent as typed.
        await prev.tap()
        await page.press("#input", "Enter")
        await g.conn.wait_for(b"say hi\r\n")
        # Not shown while echo is off (nothing typed then is kept).
        g.conn.send(b"\xff\xfb\x01")  # IAC WILL ECHO
        await page.wait_for_selector("#input[type=password]")
        assert not await prev.is_visible() and not await nxt.is_visible()


async def test_no_history_buttons_on_a_desktop(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        assert not await page.evaluate("matchMedia('(pointer: coarse)').matches")
        assert await page.locator("#history-prev").is_hidden()
        assert await page.locator("#history-next").is_hidden()
        # Up and Down do the same, through the same steps.
        await send_line(page, "north")
        await g.conn.wait_for(b"north\r\n")
        await page.press("#input", "ArrowUp")
        assert await page.input_value("#input") == "north"
        await page.press("#input", "ArrowDown")
        assert await page.input_value("#input") == ""
