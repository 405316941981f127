"""The browser client with a screen reader and a keyboard (SPEC 7.1 "Screen readers"), in Chromium.

axe-core (tests/js/node_modules, the field's standard checker) finds no serious
or critical violation in play; the live region gets only new game text and
prompts, as plain text, and the log is not live; every control's name holds
its visible label; focus goes back to the input line after exits, pad and
history buttons; the contrast of the client's own text and of the 16 ANSI
colours is at least 4.5:1 as computed in the page, faint text in them and in
the default colour too (as drawn: opacity composited); Alt+1..Alt+0 read back
lines and Alt+L moves between the input line and the log.
"""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Browser, Page

from tests.test_browser import (  # noqa: F401  (browser: the module's fixture)
    DESKTOP, IAC, PHONE, ROOT, browser, cmd, demo_page, fake_game, gmcp, log_has, login_demo, next_frames,
    send_line,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
GA = cmd(IAC, 249)
ROOM = gmcp("Room.Info", json.dumps({"name": "The Square", "area": "Town",
                                     "exits": {"n": 2, "e": 3, "northwest": 4, "up": 5}}))

# axe with its experimental rule label-content-name-mismatch (WCAG 2.5.3) switched on.
RUN_AXE = """async () => {
  const result = await axe.run(document, {
    rules: {'label-content-name-mismatch': {enabled: true}},
    resultTypes: ['violations'],
  });
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary),
  }));
}"""


async def axe_violations(page: Page) -> list[dict]:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `./dev setup` (npm ci in tests/js)")
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    return await page.evaluate(RUN_AXE)


def serious(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


async def in_play(g) -> None:
    """The fake game with everything in view: coloured text, a prompt, the room with exits."""
    g.conn.send(b"\xff\xfb\xc9")  # IAC WILL GMCP
    await g.conn.wait_for(b"\xff\xfd\xc9")
    colours = b" ".join(b"\x1b[%dmcolour%d\x1b[0m" % (30 + i % 8 + (60 if i >= 8 else 0), i) for i in range(16))
    g.conn.send(b"".join(b"line %03d of the game\r\n" % i for i in range(200)) + colours + b"\r\n"
                + b"\x1b[1;32m<100hp>\x1b[0m " + GA)
    g.conn.send(ROOM + gmcp("Char.Vitals", '{"hp": 90, "maxhp": 120}'))
    await g.page.wait_for_selector("#room-name:has-text('The Square')", state="attached")  # (hidden when short)
    await g.page.wait_for_selector("#prompt:has-text('<100hp>')")
    await log_has(g.page, "colour15")


async def test_axe_finds_no_serious_violation_in_play(browser: Browser) -> None:
    async with fake_game(browser, bypass_csp=True) as g:  # (the page's CSP refuses an injected script)
        page = g.page
        await in_play(g)
        await send_line(page, "look")  # a command line in the log
        assert serious(await axe_violations(page)) == []
        # The settings and the search open, the split open (the player reads back).
        await page.click("#settings-toggle")
        await page.keyboard.press("Control+f")
        await page.wait_for_selector("#search", state="visible")
        await page.fill("#search-field", "line 01")
        await next_frames(page)  # (the bars' change of the log's size is laid out: see below)
        await page.evaluate("() => { const l = document.getElementById('log'); l.scrollTop = l.scrollHeight / 3; }")
        await page.wait_for_selector("#tail-box", state="visible")
        g.conn.send(b"more text\r\n")
        await log_has(page, "more text", "#tail")
        found = await axe_violations(page)
        assert serious(found) == [], json.dumps(found, indent=1)


async def test_axe_on_a_phone_with_the_pad_open(browser: Browser) -> None:
    async with fake_game(browser, PHONE, is_mobile=True, has_touch=True, bypass_csp=True) as g:
        await in_play(g)
        await g.page.wait_for_selector("#pad", state="visible")
        await g.page.wait_for_selector("#history-prev", state="visible")
        found = await axe_violations(g.page)
        assert serious(found) == [], json.dumps(found, indent=1)


async def test_axe_on_the_demo_after_login(browser: Browser) -> None:
    async with demo_page(browser, bypass_csp=True) as page:
        await login_demo(page, "Axel", "pw12345")
        found = await axe_violations(page)
        assert serious(found) == [], json.dumps(found, indent=1)


# -- the live region -------------------------------------------------------------

ANNOUNCED = "() => [...document.querySelectorAll('#announce > *')].map(p => p.textContent)"


async def said_last(page: Page, text: str) -> None:
    """The live region's newest announcement is ``text`` exactly (a read-back key's, not the
    burst's that may still be under way when the key is pressed)."""
    await page.wait_for_function(
        "t => { const all = document.querySelectorAll('#announce > *');"
        " return all.length > 0 && all[all.length - 1].textContent === t; }", arg=text)


async def announced(page: Page, text: str) -> list[str]:
    await page.wait_for_function(
        "t => [...document.querySelectorAll('#announce > *')].some(p => p.textContent.includes(t))", arg=text)
    return await page.evaluate(ANNOUNCED)


async def test_live_region_says_only_new_text_and_prompts(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        # The log is not a live region; the announcer is, polite, visually hidden.
        assert await page.get_attribute("#log", "aria-live") == "off"
        assert await page.get_attribute("#announce", "aria-live") == "polite"
        live = await page.evaluate(
            "[...document.querySelectorAll('[aria-live]:not([aria-live=off]), [role=log]:not([aria-live=off])')]"
            ".map(e => e.id)")
        assert "log" not in live and "announce" in live
        box = await page.evaluate("(() => { const r = document.getElementById('announce').getBoundingClientRect();"
                                  " return [r.width, r.height]; })()")
        assert box[0] <= 1 and box[1] <= 1
        g.conn.send(b"\x1b[1;31mA goblin\x1b[0m arrives.\r\n<b>not markup</b>\r\n\x1b[32m<10hp>\x1b[0m " + GA)
        said = await announced(page, "<10hp>")
        assert said == ["A goblin arrives.\n<b>not markup</b>\n<10hp>"]  # plain text, one batch
        assert await page.evaluate("document.querySelector('#announce b')") is None
        # Only what is new: the next burst says the next lines, not the old ones again.
        g.conn.send(b"The goblin leaves.\r\n")
        said = await announced(page, "The goblin leaves.")
        assert said[-1] == "The goblin leaves."
        # The player's own command is not announced (the reader spoke it as it was typed).
        await send_line(page, "kick goblin")
        await g.conn.wait_for(b"kick goblin\r\n")
        g.conn.send(b"You miss.\r\n")
        said = await announced(page, "You miss.")
        assert not any("kick goblin" in s for s in said)
        # The client's own notices (#help) are said too.
        await send_line(page, "#help")
        await announced(page, "#alias NAME TEXT")
        # The region keeps only its last few announcements.
        assert await page.locator("#announce > *").count() <= 3


async def test_a_flood_announces_only_its_last_lines(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await page.evaluate("""() => {
          window.__said = [];
          new MutationObserver((records) => {
            for (const r of records) for (const n of r.addedNodes) window.__said.push(n.textContent);
          }).observe(document.getElementById('announce'), {childList: true});
        }""")
        flood = b"".join(b"\x1b[3%dmflood line %04d\x1b[0m\r\n" % (i % 8, i) for i in range(30_000))
        g.conn.send(flood + b"flood end\r\n")
        await log_has(page, "flood end")
        await announced(page, "flood end")
        said = await page.evaluate("window.__said")
        assert said[-1].endswith("flood line 29999\nflood end")
        # Every line is either said or counted as skipped; at most 10 said per announcement.
        skipped = said_lines = 0
        for text in said:
            lines = text.split("\n")
            if lines[0].endswith(" lines skipped.") or lines[0].endswith(" line skipped."):
                skipped += int(lines.pop(0).split()[0])
            assert len(lines) <= 10
            said_lines += len(lines)
        assert skipped + said_lines == 30_001, (skipped, said_lines, said)
        assert said_lines <= 10 * len(said) and skipped > 20_000  # not an hour of speech


async def test_assertive_announcements_are_a_kept_setting(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await page.click("#settings-toggle")
        await page.check("#announce-assertive")
        assert await page.get_attribute("#announce", "aria-live") == "assertive"
        await page.reload()
        await page.wait_for_selector("#status[data-state=connected]")
        assert await page.get_attribute("#announce", "aria-live") == "assertive"
        assert await page.is_checked("#announce-assertive")


# -- names, focus -----------------------------------------------------------------

NAMES = """() => [...document.querySelectorAll('button, [role=button], input, a[href]')]
  .filter(e => e.checkVisibility())
  .map(e => {
    let visible = '';
    const walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      if (n.parentElement.closest('[aria-hidden=true], .sr-only')) continue;
      visible += n.data;
    }
    return [e.id || e.dataset.dir || e.textContent.trim(), visible.trim(), e.getAttribute('aria-label')];
  })"""


async def test_every_control_name_holds_its_visible_label(browser: Browser) -> None:
    async with fake_game(browser, PHONE, has_touch=True, is_mobile=True) as g:
        page = g.page
        await in_play(g)
        await page.click("#settings-toggle")
        checked = 0
        for control in await page.evaluate(NAMES):
            _, visible, label = control
            if label is not None and visible:
                assert visible.lower() in label.lower(), control
                checked += 1
        # The pad's abbreviations: the name starts with the label, then says it in full.
        names = await page.evaluate(
            "[...document.querySelectorAll('#pad button')].map(b => [b.textContent, b.getAttribute('aria-label')])")
        names = dict(names)
        assert names["NW"] == "NW (northwest, exit)"
        assert names["N"] == "N (north, exit)"
        assert names["SE"] == "SE (southeast)"
        assert names["Up"] == "Up (exit)"
        assert names["Down"] in (None, "Down")
        assert checked >= 10
        # The accessibility tree agrees (Chromium's computed names).
        snapshot = await page.locator("#pad").aria_snapshot()
        assert 'button "NW (northwest, exit)"' in snapshot
        assert 'button "Previous command"' in await page.locator("#command").aria_snapshot()


async def test_focus_returns_to_the_input_after_buttons(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        await in_play(g)
        focused = "() => document.activeElement && document.activeElement.id"
        # An exit in the room panel, by mouse.
        await page.click("#exits button:has-text('northwest')")
        await g.conn.wait_for(b"northwest\r\n")
        assert await page.evaluate(focused) == "input"
        # By keyboard: Tab to an exit, Enter.
        await page.focus("#exits button:has-text('up')")
        await page.keyboard.press("Enter")
        await g.conn.wait_for(b"up\r\n")
        assert await page.evaluate(focused) == "input"
        # The direction pad (narrow page), by mouse and by Space; the focus was elsewhere before.
        await page.set_viewport_size({"width": 640, "height": 700})
        if not await page.is_visible("#pad"):
            await page.click("#pad-toggle")
        assert await page.evaluate(focused) == "input"
        await page.focus("#log")
        await page.click("#pad button[data-dir=east]")
        await g.conn.wait_for(b"e\r\n")
        assert await page.evaluate(focused) == "input"
        await page.focus("#pad button[data-dir=look]")
        await page.keyboard.press("Space")
        await g.conn.wait_for(b"look\r\n")
        assert await page.evaluate(focused) == "input"
        # The Send button.
        await page.fill("#input", "say hi")
        await page.click("#command button[type=submit]")
        await g.conn.wait_for(b"say hi\r\n")
        assert await page.evaluate(focused) == "input"


async def test_history_buttons_give_the_focus_back(browser: Browser) -> None:
    async with fake_game(browser, PHONE, has_touch=True, is_mobile=True) as g:
        page = g.page
        for text in ("first", "second"):
            await send_line(page, text)
            await g.conn.wait_for(text.encode() + b"\r\n")
        await page.focus("#log")
        await page.tap("#history-prev")
        assert await page.input_value("#input") == "second"
        assert await page.evaluate("document.activeElement.id") == "input"
        await page.focus("#history-prev")
        await page.keyboard.press("Enter")
        assert await page.input_value("#input") == "first"
        assert await page.evaluate("document.activeElement.id") == "input"


async def test_on_a_touch_screen_a_pad_tap_leaves_the_focus_a_history_tap_takes_it(browser: Browser) -> None:
    # SPEC 7.1 "focus goes back to the input line after any button in play", read for touch
    # screens: focusing the input line opens the on-screen keyboard, which would cover the pad
    # the player is tapping through (docs/client.md). A history button fills the input line, the
    # place the player goes next: it takes the focus there.
    async with fake_game(browser, PHONE, has_touch=True, is_mobile=True) as g:
        page = g.page
        focused = "() => document.activeElement && document.activeElement.id"
        await send_line(page, "first")
        await g.conn.wait_for(b"first\r\n")
        await page.wait_for_selector("#pad", state="visible")
        await page.focus("#log")  # the on-screen keyboard is closed
        await page.tap("#pad button[data-dir=east]")
        await g.conn.wait_for(b"east\r\n")
        await page.tap("#pad button[data-dir=north]")
        await g.conn.wait_for(b"north\r\n")
        await next_frames(page)
        assert await page.evaluate(focused) != "input"
        await page.tap("#history-prev")
        assert await page.input_value("#input") == "first"
        assert await page.evaluate(focused) == "input"


# -- contrast ---------------------------------------------------------------------

# A computed colour as {r, g, b, a} (0-255, alpha 0-1), for the scripts below.
RGB = """  const rgb = (c) => {  // rgb(), rgba() or color(srgb ...) (a color-mix())
    const srgb = c.match(/^color\\(srgb ([^)]+)\\)$/);
    const m = srgb || c.match(/^rgba?\\(([^)]+)\\)$/);
    if (!m) throw new Error(`a colour this test does not read: ${c}`);
    const [r, g, b, a = 1] = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return srgb ? {r: r * 255, g: g * 255, b: b * 255, a} : {r, g, b, a};
  };
"""

CONTRAST = """(pairs) => {
""" + RGB + """  const lum = ({r, g, b}) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  // The background an element is drawn on: the first opaque one up the tree.
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.a === 1) return c;
    }
    return {r: 255, g: 255, b: 255};
  };
  const out = [];
  for (const [what, sel, pseudo] of pairs) {
    for (const el of document.querySelectorAll(sel)) {
      const style = getComputedStyle(el, pseudo || null);
      const fg = rgb(style.color), bg = background(el);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      out.push([what, el.id || el.className || el.textContent.slice(0, 20), style.color, (hi + 0.05) / (lo + 0.05)]);
    }
  }
  return out;
}"""


async def test_text_contrast_is_at_least_4_5(browser: Browser) -> None:
    async with fake_game(browser, {"width": 640, "height": 700}, has_touch=True) as g:
        page = g.page
        await in_play(g)
        await send_line(page, "look")  # a muted command line
        g.conn.send(b"\xff\xfb\x01")  # IAC WILL ECHO: the password field (its border is the warning colour)
        await page.wait_for_selector("#input[type=password]")
        g.conn.send(b"\xff\xfc\x01")  # IAC WONT ECHO
        await page.wait_for_selector("#input[type=text]")
        await page.evaluate("document.getElementById('again').hidden = false")  # drawn as when the game ended
        await page.click("#settings-toggle")
        # The panel changes the log's size: a scroll in the frame of that change is taken
        # for the browser's (output.js _onScroll), so the player's scroll comes a frame later.
        await next_frames(page)
        await page.evaluate("() => { const l = document.getElementById('log'); l.scrollTop = 0; }")
        await page.wait_for_selector("#tail-box", state="visible")
        pairs = [
            ["ansi", "#log span[style*='--ansi-']", None],
            ["command", "#log .line.command", None],
            ["notice", "#log .line.notice", None],
            ["log", "#log", None],
            ["prompt", "#prompt span", None],
            ["status", "#status", None],
            ["title", "#title", None],
            ["buttons", "button", None],
            ["pad", "#pad button", None],
            ["exits", "#exits button", None],
            ["gauge", ".gauge-name, .gauge-text", None],
            ["room", "#room-name, #room-area", None],
            ["settings", "#settings label, #settings h2, #settings small, #settings h3, #font-size-label", None],
            ["inputs", "#input, .tool-form input", None],
            ["placeholders", ".tool-form input[placeholder]", "::placeholder"],
        ]
        await page.evaluate("document.getElementById('log').insertAdjacentHTML('beforeend', "
                            "'<div class=\"line notice\">a notice</div>')")
        results = await page.evaluate(CONTRAST, pairs)
        kinds = {r[0] for r in results}
        assert kinds >= {p[0] for p in pairs}, kinds
        low = [r for r in results if r[3] < 4.5]
        assert low == [], low
        # Each of the 16 ANSI colours, as the page draws it on the default background.
        colours = [r for r in results if r[0] == "ansi"]
        assert len({r[2] for r in colours}) == 16, colours
        # Black as a background stays black.
        g.conn.send(b"\x1b[37;40mwhite on black\x1b[0m\r\n")
        await log_has(page, "white on black")
        bg = await page.evaluate("getComputedStyle([...document.querySelectorAll('#log span')]"
                                 ".find(s => s.textContent === 'white on black')).backgroundColor")
        assert bg == "rgb(0, 0, 0)"


# How a piece of game text is drawn: its text colour and its background as painted
# (backgrounds and opacity up the tree composited as groups, over white), and the
# contrast of the two. A token names the innermost element holding just it.
PAINTED = """(tokens) => {
""" + RGB + """  // Premultiplied colours: {r, g, b, a}, r..b already times a.
  const pre = (c) => ({r: c.r * c.a, g: c.g * c.a, b: c.b * c.a, a: c.a});
  const over = (top, under) => ({r: top.r + under.r * (1 - top.a), g: top.g + under.g * (1 - top.a),
                                 b: top.b + under.b * (1 - top.a), a: top.a + under.a * (1 - top.a)});
  const times = (c, k) => ({r: c.r * k, g: c.g * k, b: c.b * k, a: c.a * k});
  // A pixel of the element's text (or of its background: text null), painted:
  // from the element out, each element a group (its content on its background, at its opacity).
  const paint = (el, text) => {
    let layer = text ? pre(text) : {r: 0, g: 0, b: 0, a: 0};
    for (let e = el; e; e = e.parentElement) {
      const style = getComputedStyle(e);
      layer = times(over(layer, pre(rgb(style.backgroundColor))), Number(style.opacity));
    }
    return over(layer, {r: 255, g: 255, b: 255, a: 1});
  };
  const lum = ({r, g, b}) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (x, y) => { const [hi, lo] = [lum(x), lum(y)].sort((p, q) => q - p); return (hi + 0.05) / (lo + 0.05); };
  const hex = ({r, g, b}) => '#' + [r, g, b].map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
  const all = [...document.querySelectorAll('#log .line, #log .line *')];
  const out = {};
  for (const token of tokens) {
    const el = all.filter((e) => e.textContent === token).pop();
    if (!el) throw new Error(`no ${token} in the log`);
    const style = getComputedStyle(el);
    const fg = paint(el, rgb(style.color)), bg = paint(el, null);
    out[token] = {color: style.color, fg: hex(fg), bg: hex(bg), ratio: ratio(fg, bg)};
  }
  return out;
}"""


async def test_faint_text_keeps_4_5(browser: Browser) -> None:
    """Faint (SGR 2) text in the default colour and each of the 16 is dimmer than
    the colour, down to 4.5:1 on the default background and no further; with
    reverse, the dimmed colour is the background. 256-colour text (drawn as sent)
    and text on a background colour are dimmed by opacity, as before."""
    async with fake_game(browser) as g:
        page = g.page
        sgr = {"d": ""} | {"%02d" % i: str(30 + i if i < 8 else 90 + i - 8) for i in range(16)}
        def run(text: str, *codes: str) -> bytes:
            return f"\x1b[{';'.join(c for c in codes if c)}m{text}\x1b[0m".encode()

        lines = []
        for key, code in sgr.items():
            lines += [run(f"normal-{key}", code), run(f"faint-{key}", "2", code), run(f"reversed-{key}", "2;7", code)]
        lines += [run("normal-256", "38;5;208"), run("faint-256", "2;38;5;208"),
                  run("normal-on-blue", "31;44"), run("faint-on-blue", "2;31;44")]
        g.conn.send(b"\r\n".join(lines) + b"\r\nend of colours\r\n")
        await log_has(page, "end of colours")
        drawn = await page.evaluate(PAINTED, [f"{kind}-{key}" for key in [*sgr, "256"]
                                              for kind in ("normal", "faint", "reversed")
                                              if not (key == "256" and kind == "reversed")]
                                    + ["normal-on-blue", "faint-on-blue"])
        assert drawn["normal-d"]["bg"] == "#0a0d12"  # --log-bg
        for key in sgr:
            normal, faint, reversed_ = drawn[f"normal-{key}"], drawn[f"faint-{key}"], drawn[f"reversed-{key}"]
            assert faint["bg"] == normal["bg"] == "#0a0d12", (key, faint, normal)  # the default background
            assert faint["ratio"] >= 4.5, (key, faint)
            # Dimmer than the colour: strictly, unless the colour is at the floor already.
            assert faint["ratio"] <= normal["ratio"], (key, faint, normal)
            if normal["ratio"] >= 4.6:
                assert faint["ratio"] < normal["ratio"] - 0.05, (key, faint, normal)
            if key == "00":  # black as a background is black, faint too (text in --log-bg: as terminals)
                assert reversed_["bg"] == "#000000", reversed_
            else:  # the default background's colour on the dimmed colour
                assert reversed_["fg"] == normal["bg"], (key, reversed_)
                assert 4.5 <= reversed_["ratio"] <= faint["ratio"] + 0.01, (key, reversed_, faint)
        # 256-colour and truecolour text is drawn as sent, dimmed.
        assert drawn["faint-256"]["color"] == drawn["normal-256"]["color"] == "rgb(255, 135, 0)"
        assert drawn["faint-256"]["ratio"] < drawn["normal-256"]["ratio"] - 1, drawn
        assert drawn["faint-on-blue"]["color"] == drawn["normal-on-blue"]["color"]
        assert drawn["faint-on-blue"]["fg"] != drawn["normal-on-blue"]["fg"], drawn


async def test_alt_digits_read_back_lines_and_alt_l_moves_to_the_log(browser: Browser) -> None:
    async with fake_game(browser) as g:
        page = g.page
        g.conn.send(b"".join(b"\x1b[33mline number %d\x1b[0m\r\n" % i for i in range(1, 13)))
        await log_has(page, "line number 12")
        await page.focus("#input")
        await page.type("#input", "half typed")
        await announced(page, "line number 12")  # the burst, said once it is over
        await page.keyboard.press("Alt+1")
        await said_last(page, "line number 12")
        await page.keyboard.press("Alt+3")
        await said_last(page, "line number 10")
        await page.keyboard.press("Alt+0")
        await said_last(page, "line number 3")
        # The focus and the half-typed line stayed.
        assert await page.evaluate("document.activeElement.id") == "input"
        assert await page.input_value("#input") == "half typed"
        # Alt+L: to the newest line of the log, and back.
        await page.keyboard.press("Alt+l")
        assert await page.evaluate(
            "document.activeElement.classList.contains('line') && document.activeElement.textContent"
        ) == "line number 12"
        assert await page.evaluate("document.getElementById('log').contains(document.activeElement)")
        await page.keyboard.press("Alt+1")  # works from the log too
        await page.keyboard.press("Alt+l")
        assert await page.evaluate("document.activeElement.id") == "input"
        assert await page.evaluate("document.querySelectorAll('#log [tabindex]').length") == 0


async def test_help_lists_the_screen_reader_keys(browser: Browser) -> None:
    async with fake_game(browser) as g:
        await send_line(g.page, "#help")
        await log_has(g.page, "Alt+1..Alt+9, Alt+0")
        await log_has(g.page, "Alt+L")
        docs = (ROOT / "docs" / "client.md").read_text()
        assert "## Screen readers" in docs and "## Small screens" in docs
