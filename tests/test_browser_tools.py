"""The player tools and scrollback tools of the page at ``GET /`` (SPEC 7.1), in real Chromium.

Same set-up as tests/test_browser.py (its fixtures and helpers): the real
gateway on a real socket in front of the scripted fake MUD (game ``fake``),
Debian's headless Chromium through Playwright.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import Browser, Page

from tests.test_browser import (  # noqa: F401  (browser: the module's fixture)
    CAP, IAC, WILL, browser, cmd, connected, fake_game, log_has, log_text, send_line,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

ECHO = 1
TOOLS_KEY = "mud-gateway:tools:fake"


async def notice(page: Page, text: str) -> None:
    await page.wait_for_function(
        "t => [...document.querySelectorAll('#log .line.notice')].some(l => l.textContent.includes(t))", arg=text)


async def stored_tools(page: Page) -> dict:
    return json.loads(await page.evaluate(f"localStorage.getItem('{TOOLS_KEY}') || 'null'") or "null")


async def test_stacking_aliases_and_hash_commands(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await send_line(page, "north;;east ;; say hi")
        await g.conn.wait_for(b"north\r\neast\r\nsay hi\r\n")
        await send_line(page, "#alias k kill $1;;loot $1")
        await notice(page, "New alias: k = kill $1;;loot $1")
        await send_line(page, "k orc;;look")
        await g.conn.wait_for(b"kill orc\r\nloot orc\r\nlook\r\n")
        await send_line(page, "##hash for the game;;not split")
        await g.conn.wait_for(b"#hash for the game;;not split\r\n")
        # Each command sent shows in the log, set apart from game text.
        await page.wait_for_selector("#log .line.command:has-text('#hash for the game')")
        commands = await page.locator("#log .line.command").all_inner_texts()
        assert commands[-4:] == ["kill orc", "loot orc", "look", "#hash for the game;;not split"]
        before = await page.evaluate("getComputedStyle(document.querySelector('#log .line.command'), '::before').content")
        assert before not in ("none", "normal", '""')
        assert (await stored_tools(page))["aliases"] == [{"name": "k", "text": "kill $1;;loot $1"}]
        # #help lists the commands and keys; #list what is defined; bad commands say why.
        await send_line(page, "#help")
        await notice(page, "#trigger /REGEX/ COMMANDS")
        await notice(page, "Ctrl+F")
        await send_line(page, "#list")
        await notice(page, "k = kill $1;;loot $1")
        await send_line(page, "#trigger nope")
        await notice(page, "a pattern is written /REGEX/")
        await send_line(page, "#unalias k")
        await notice(page, "Removed alias k")
        await send_line(page, "k orc")
        await g.conn.wait_for(b"k orc\r\n")
        assert (await stored_tools(page))["aliases"] == []
        # No client command reached the game.
        assert b"#alias" not in g.conn.received and b"#help" not in g.conn.received


async def test_echo_off_input_is_sent_exactly_and_kept_nowhere(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await send_line(page, "#alias pw should-not-expand")
        await notice(page, "New alias")
        g.conn.send(b"Password: " + cmd(IAC, WILL, ECHO))
        await page.wait_for_selector("#input[type=password]")
        secret = "#alias x y;;pw ##z"
        await page.fill("#input", secret)
        await page.press("#input", "Enter")
        await g.conn.wait_for(secret.encode() + b"\r\n")
        await page.fill("#input", "pw")
        await page.press("#input", "Enter")
        await g.conn.wait_for(b"pw\r\n")
        assert b"should-not-expand" not in g.conn.received
        storage = await page.evaluate(
            "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
        assert "x y" not in storage and "##z" not in storage
        assert (await stored_tools(page))["aliases"] == [{"name": "pw", "text": "should-not-expand"}]
        assert "##z" not in await log_text(page)


async def test_triggers_fire_on_game_lines_only_and_are_rate_limited(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await send_line(page, r"#trigger /^(\w+) arrives\.$/ say hi $1;;bow $1")
        await notice(page, "New trigger")
        # The player's own command matches the pattern: it fires nothing.
        await send_line(page, "Al arrives.")
        await g.conn.wait_for(b"Al arrives.\r\n")
        g.conn.send(b"\x1b[1;33mBob\x1b[0m arrives.\r\n")
        await g.conn.wait_for(b"say hi Bob\r\nbow Bob\r\n")
        # Game text cannot add commands through a group.
        g.conn.send(b"x;;quit arrives.\r\n")
        await log_has(page, "x;;quit arrives.")
        g.conn.send(b"Cy arrives.\r\n")
        await g.conn.wait_for(b"say hi Cy\r\n")
        assert b"say hi Al" not in g.conn.received and b"\r\nquit" not in g.conn.received
        await page.wait_for_function("() => document.querySelectorAll('#log .line.command.trigger').length === 4")
        # Over 10 trigger commands a second: the rest are dropped, with a notice.
        await send_line(page, r"#trigger /^spam (\d+)$/ ping $1")
        await notice(page, "New trigger")
        g.conn.send(b"".join(b"spam %d\r\n" % i for i in range(1, 31)))
        await notice(page, "trigger commands dropped: more than 10 a second")
        # The first ones went (the four above may still count in the last second), the rest not.
        pings = re.findall(rb"ping (\d+)\r\n", bytes(g.conn.received))
        assert 6 <= len(pings) <= 10 and pings == [b"%d" % i for i in range(1, len(pings) + 1)]
        dropped = await page.locator("#log .line.notice", has_text="dropped").all_inner_texts()
        assert sum(int(t.split()[0]) for t in dropped) == 30 - len(pings)


async def test_a_pattern_that_backtracks_without_end_is_stopped(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await send_line(page, "#trigger /^(a+)+$/ boom")
        await send_line(page, "#trigger /^ok (\\w+)$/ fine $1")
        await notice(page, "New trigger: /^ok")
        g.conn.send(b"a" * 60 + b"b\r\nok then\r\n")
        await notice(page, "is disabled")
        # The page's own thread was never blocked: it answers, and the other trigger still works.
        assert await page.evaluate("1 + 1") == 2
        await g.conn.wait_for(b"fine then\r\n")
        triggers = (await stored_tools(page))["triggers"]
        assert "disabled" in triggers[0] and "disabled" not in triggers[1]
        await send_line(page, "#list")
        await notice(page, "(disabled: stopped")
        # The same pattern as a highlight is stopped the same way.
        await send_line(page, "#highlight /^(b+)+$/ red")
        g.conn.send(b"b" * 60 + b"c\r\n")
        await notice(page, "The highlight /^(b+)+$/ is disabled")
        assert b"boom" not in g.conn.received


async def test_highlights_colour_what_matches(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"an old \x1b[32mGOLD\x1b[0m coin\r\n")
        await log_has(page, "an old GOLD coin")
        await send_line(page, "#highlight /gold/i gold")
        await send_line(page, "#highlight /dragon/ #ff0000")
        g.conn.send(b"A dragon guards the gold and more Gold.\r\n")
        await page.wait_for_function("() => document.querySelectorAll('#log span.hl').length === 4")
        spans = await page.eval_on_selector_all(
            "#log span.hl", "els => els.map(e => [e.textContent, getComputedStyle(e).color])")
        assert spans == [["GOLD", "rgb(255, 215, 0)"], ["dragon", "rgb(255, 0, 0)"],
                         ["gold", "rgb(255, 215, 0)"], ["Gold", "rgb(255, 215, 0)"]]
        assert "A dragon guards the gold and more Gold." in await log_text(page)  # text unchanged
        # The player's commands are not game text.
        await send_line(page, "say gold")
        await page.wait_for_selector("#log .line.command:has-text('say gold')")
        assert await page.locator("#log .line.command span.hl").count() == 0
        await send_line(page, "#unhighlight /gold/i")
        await page.wait_for_function("() => document.querySelectorAll('#log span.hl').length === 1")
        assert (await stored_tools(page))["highlights"] == [{"source": "dragon", "flags": "", "colour": "#ff0000"}]


async def test_settings_panel_edits_exports_and_imports(browser: Browser, tmp_path) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await page.click("#settings-toggle")
        await page.fill("#alias-name", "gg")
        await page.fill("#alias-text", "get gold;;get silver")
        await page.click("text=Save alias")
        await page.wait_for_selector("#alias-list li:has-text('gg = get gold;;get silver')")
        await page.fill("#trigger-pattern", "/^You are hungry/")
        await page.fill("#trigger-commands", "eat bread")
        await page.click("text=Save trigger")
        await page.fill("#highlight-pattern", "/(/")
        await page.fill("#highlight-colour", "red")
        await page.click("text=Save highlight")
        await page.wait_for_selector("#tools-message:has-text('not a valid regular expression')")
        # What the panel made works like the typed commands.
        await send_line(page, "gg")
        await g.conn.wait_for(b"get gold\r\nget silver\r\n")
        g.conn.send(b"You are hungry.\r\n")
        await g.conn.wait_for(b"eat bread\r\n")
        # And what was typed shows in the panel; Edit fills the form, Remove removes.
        await send_line(page, "#highlight /orc/ orange")
        await page.wait_for_selector("#highlight-list li:has-text('/orc/ in orange')")
        await page.click("[aria-label='Edit /orc/ in orange']")
        assert await page.input_value("#highlight-pattern") == "/orc/"
        await page.click("[aria-label='Remove gg = get gold;;get silver']")
        await page.wait_for_function("() => !document.getElementById('alias-list').textContent.includes('gg')")
        # Export downloads the JSON; importing it elsewhere gives the same tools.
        async with page.expect_download() as info:
            await page.click("#tools-export")
        download = await info.value
        exported = json.loads(open(await download.path(), encoding="utf-8").read())
        assert exported["format"] == "mud-gateway-tools" and exported["game"] == "fake"
        assert exported["triggers"] == [{"source": "^You are hungry", "flags": "", "commands": "eat bread"}]
        assert exported["highlights"] == [{"source": "orc", "flags": "", "colour": "orange"}]
        exported["aliases"] = [{"name": "n2", "text": "north;;north"}, {"name": "bad name", "text": "x"}]
        exported["highlights"].append({"source": "x", "colour": "url(evil)"})
        path = tmp_path / "tools.json"
        path.write_text(json.dumps(exported))
        await send_line(page, "#unhighlight /orc/")
        await page.set_input_files("#tools-import", str(path))
        await page.wait_for_selector("#tools-message:has-text('Imported 3 entries')")
        assert "Left out" in await page.inner_text("#tools-message")
        await page.wait_for_selector("#alias-list li:has-text('n2 = north;;north')")
        assert (await stored_tools(page))["highlights"] == [{"source": "orc", "flags": "", "colour": "orange"}]
        await send_line(page, "n2")
        await g.conn.wait_for(b"north\r\nnorth\r\n")


async def test_search_finds_lines_off_screen_and_steps(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        total = CAP + 1000
        g.conn.send(b"".join((b"needle %05d\r\n" if i % 1000 == 0 else b"hay %05d\r\n") % i for i in range(total)))
        await log_has(page, "hay %05d" % (total - 1))
        await page.press("#input", "Control+f")
        assert await page.evaluate("document.activeElement.id") == "search-field"
        await page.fill("#search-field", "NEEDLE")
        # 6000 lines sent, the last 5000 kept: needles 1000..5000 are in it, 0 is not.
        await page.wait_for_selector("#search-count:has-text('5 of 5')")
        current = "CSS.highlights.get('search-current').values().next().value"
        assert await page.evaluate(f"{current}.toString()") == "needle"
        assert await page.evaluate("CSS.highlights.get('search').size") == 4
        line_of = f"{current}.startContainer.parentElement.closest('.line').textContent"
        assert await page.evaluate(line_of) == "needle 05000"
        await page.click("#search-prev")
        await page.press("#search-field", "Shift+Enter")
        await page.press("#search-field", "Shift+Enter")
        await page.press("#search-field", "Shift+Enter")
        await page.wait_for_selector("#search-count:has-text('1 of 5')")
        assert await page.evaluate(line_of) == "needle 01000"
        # The oldest match, far off screen, was scrolled into view.
        visible = await page.evaluate(f"""() => {{
          const r = {current}.getBoundingClientRect(), log = document.getElementById('log').getBoundingClientRect();
          return r.top >= log.top && r.bottom <= log.bottom;
        }}""")
        assert visible
        await page.press("#search-field", "Enter")
        await page.wait_for_selector("#search-count:has-text('2 of 5')")
        await page.fill("#search-field", "no such text")
        await page.wait_for_selector("#search-count:has-text('No matches')")
        await page.press("#search-field", "Escape")
        assert await page.is_hidden("#search")
        assert await page.evaluate("document.activeElement.id") == "input"
        assert await page.evaluate("CSS.highlights.has('search')") is False
        # The button opens it too.
        await page.click("#search-toggle")
        assert await page.evaluate("document.activeElement.id") == "search-field"
        # Ctrl+F goes by the key's position as well: on a Russian layout the key F gives "а"
        # (the browser's own find must not open instead).
        await page.press("#search-field", "Escape")
        assert await page.is_hidden("#search")
        ctrl_key = """([key, code]) => !document.getElementById('input').dispatchEvent(new KeyboardEvent(
          'keydown', {key, code, ctrlKey: true, bubbles: true, cancelable: true}))"""
        # (Dvorak's letter at that place is "u": Ctrl+U is left to the browser.)
        assert await page.evaluate(ctrl_key, ["u", "KeyF"]) is False
        assert await page.is_hidden("#search")
        assert await page.evaluate(ctrl_key, ["а", "KeyF"]) is True
        assert await page.is_visible("#search")
        assert await page.evaluate("document.activeElement.id") == "search-field"


async def test_save_log_is_plain_text_without_echo_off_input(browser: Browser) -> None:
    password = "Pa55-Zq9-secret"
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"\x1b[1;31mRed\x1b[0m and \x1b[38;5;82mgreen\x1b[0m text\r\nPassword: " + cmd(IAC, WILL, ECHO))
        await page.wait_for_selector("#input[type=password]")
        await page.fill("#input", password)
        await page.press("#input", "Enter")
        await g.conn.wait_for(password.encode() + b"\r\n")
        g.conn.send(cmd(IAC, 252, ECHO) + b"\r\nWelcome.\r\n")  # WONT ECHO
        await page.wait_for_selector("#input[type=text]")
        await send_line(page, "look")
        await log_has(page, "look")
        async with page.expect_download() as info:
            await page.click("#save-log")
        download = await info.value
        assert download.suggested_filename.startswith("fake-log-") and download.suggested_filename.endswith(".txt")
        text = open(await download.path(), encoding="utf-8").read()
        assert "Red and green text\n" in text
        assert "\x1b" not in text and "[1;31m" not in text
        assert "Welcome.\n> look\n" in text
        assert password not in text
        assert await page.evaluate("document.activeElement.id") == "input"


async def test_commands_stay_in_the_log_after_a_reload(browser: Browser) -> None:
    password = "Zz-hidden-42"
    async with fake_game(browser) as g:
        page = g.page
        await send_line(page, "#trigger /^ping$/ pong")
        g.conn.send(b"first line\r\n")
        await log_has(page, "first line")
        await send_line(page, "look")
        await g.conn.wait_for(b"look\r\n")
        g.conn.send(b"second line\r\nping\r\n")
        await g.conn.wait_for(b"pong\r\n")
        g.conn.send(b"Password: " + cmd(IAC, WILL, ECHO))
        await page.wait_for_selector("#input[type=password]")
        await page.fill("#input", password)
        await page.press("#input", "Enter")
        await g.conn.wait_for(password.encode() + b"\r\n")
        g.conn.send(cmd(IAC, 252, ECHO) + b"\r\nthird line\r\n")
        await page.wait_for_selector("#input[type=text]")
        await send_line(page, "north")
        await g.conn.wait_for(b"north\r\n")
        await log_has(page, "third line")
        await page.wait_for_selector("#log .line.command:has-text('north')")
        lines = "[...document.querySelectorAll('#log .line')].map(l => [l.className, l.textContent])"
        before = [x for x in await page.evaluate(lines) if "notice" not in x[0]]
        await page.reload()
        await connected(page)
        await log_has(page, "north")
        await page.wait_for_function("() => document.getElementById('log').textContent.includes('third line')")
        after = [x for x in await page.evaluate(lines) if "notice" not in x[0]]
        assert after == before
        assert ["line command", "look"] in after and ["line command trigger", "pong"] in after
        storage = await page.evaluate("JSON.stringify(Object.entries(sessionStorage))")
        assert password not in storage and password not in await log_text(page)
        # The replayed "ping" did not fire the trigger again.
        g.conn.send(b"ping\r\n")
        await page.wait_for_function("() => document.querySelectorAll('#log .line.trigger').length === 2")
        assert bytes(g.conn.received).count(b"pong\r\n") == 2


async def test_log_and_status_text_can_be_selected(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"\x1b[35mselectable words here\x1b[0m\r\n")
        await log_has(page, "selectable words here")
        for selector in ("#log .line", "#status", "#prompt"):
            assert await page.eval_on_selector(selector, "e => getComputedStyle(e).userSelect") != "none"
        line = page.locator("#log .line", has_text="selectable words here")
        await line.click(click_count=3)
        assert "selectable words here" in await page.evaluate("getSelection().toString()")
        await page.locator("#status").click(click_count=3)
        assert "Connected" in await page.evaluate("getSelection().toString()")


async def test_a_worker_that_cannot_start_is_told(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        # The worker starts with the first match: make its script unreachable before that.
        await page.route("**/match_worker.js", lambda route: route.fulfill(status=404, body="gone"))
        await send_line(page, "#trigger /^x$/ y")
        g.conn.send(b"x\r\n")
        await notice(page, "Triggers and highlights cannot run here")
        await send_line(page, "still typing")
        await g.conn.wait_for(b"still typing\r\n")
