// Unit tests of the browser client's ANSI parser (gateway/web/ansi.js).
// Run with Node's test runner: `node --test tests/js/unit/` (tests/test_browser_assets.py runs it).

import { test } from "node:test";
import assert from "node:assert/strict";
import { AnsiParser, DEFAULT_STYLE, applySgr, cssColours, escapeEnd, styleClasses, xtermRgb } from "../../../gateway/web/ansi.js";

const parse = (...chunks) => {
  const p = new AnsiParser();
  return chunks.flatMap((c) => p.feed(c));
};
const texts = (runs) => runs.map((r) => r.text);

test("plain text is one run in the default style", () => {
  const runs = parse("hello world\n");
  assert.deepEqual(texts(runs), ["hello world\n"]);
  assert.equal(runs[0].style, DEFAULT_STYLE);
});

test("16 colours, bold, reset", () => {
  const runs = parse("\x1b[31mred\x1b[1;32mbold green\x1b[0m plain");
  assert.deepEqual(texts(runs), ["red", "bold green", " plain"]);
  assert.equal(runs[0].style.fg, 1);
  assert.equal(runs[1].style.fg, 2);
  assert.equal(runs[1].style.bold, true);
  assert.equal(runs[2].style, DEFAULT_STYLE);
});

test("bold is bright for colours 0..7 only", () => {
  const bold = applySgr(DEFAULT_STYLE, "1;34");
  assert.equal(cssColours(bold).color, "var(--ansi-12)");
  assert.equal(cssColours(applySgr(DEFAULT_STYLE, "34")).color, "var(--ansi-4)");
  assert.equal(cssColours(applySgr(DEFAULT_STYLE, "1;94")).color, "var(--ansi-12)");
  assert.equal(cssColours(applySgr(DEFAULT_STYLE, "1;38;5;100")).color, "rgb(135, 135, 0)");
});

test("bright colours 90-97 and 100-107", () => {
  const s = applySgr(DEFAULT_STYLE, "93;104");
  assert.equal(s.fg, 11);
  assert.equal(s.bg, 12);
});

test("256 colours: cube, greys, and the first 16 through the palette", () => {
  assert.deepEqual(xtermRgb(16), [0, 0, 0]);
  assert.deepEqual(xtermRgb(196), [255, 0, 0]);
  assert.deepEqual(xtermRgb(208), [255, 135, 0]);
  assert.deepEqual(xtermRgb(231), [255, 255, 255]);
  assert.deepEqual(xtermRgb(232), [8, 8, 8]);
  assert.deepEqual(xtermRgb(255), [238, 238, 238]);
  const s = applySgr(DEFAULT_STYLE, "38;5;208;48;5;9");
  assert.equal(s.fg, 208);
  assert.deepEqual(cssColours(s), { color: "rgb(255, 135, 0)", background: "var(--ansi-9)" });
});

test("truecolour, with semicolons and with colons", () => {
  const a = applySgr(DEFAULT_STYLE, "38;2;10;20;30");
  assert.deepEqual(a.fg, { r: 10, g: 20, b: 30 });
  assert.equal(cssColours(a).color, "rgb(10, 20, 30)");
  const b = applySgr(DEFAULT_STYLE, "48:2::1:2:3");
  assert.deepEqual(b.bg, { r: 1, g: 2, b: 3 });
  const c = applySgr(DEFAULT_STYLE, "38:2:4:5:6");
  assert.deepEqual(c.fg, { r: 4, g: 5, b: 6 });
  const d = applySgr(DEFAULT_STYLE, "38:5:42");
  assert.equal(d.fg, 42);
});

test("parameters after a colour still apply", () => {
  const s = applySgr(DEFAULT_STYLE, "38;2;1;2;3;4;1");
  assert.deepEqual(s.fg, { r: 1, g: 2, b: 3 });
  assert.equal(s.underline, true);
  assert.equal(s.bold, true);
});

test("out-of-range colours are ignored", () => {
  const s = applySgr(DEFAULT_STYLE, "38;5;300");
  assert.equal(s.fg, null);
  const t = applySgr(DEFAULT_STYLE, "38;2;1;2;999");
  assert.equal(t.fg, null);
});

test("attributes on and off", () => {
  let s = applySgr(DEFAULT_STYLE, "1;2;3;4;7;8;9");
  assert.deepEqual(styleClasses(s), ["ansi-bold", "ansi-faint", "ansi-italic", "ansi-underline", "ansi-strike", "ansi-conceal"]);
  assert.equal(s.reverse, true);
  s = applySgr(s, "22;23;24;27;28;29");
  assert.equal(s, applySgr(s, "22"), "an unchanged style is the same object");
  assert.deepEqual(styleClasses(s), []);
  assert.equal(s.reverse, false);
});

test("default colours 39 and 49, empty SGR is a reset", () => {
  let s = applySgr(DEFAULT_STYLE, "31;42");
  s = applySgr(s, "39");
  assert.equal(s.fg, null);
  assert.equal(s.bg, 2);
  s = applySgr(s, "49");
  assert.equal(s.bg, null);
  const runs = parse("\x1b[1;31mx\x1b[my");
  assert.equal(runs[1].style, DEFAULT_STYLE);
});

test("reverse swaps colours, defaults included", () => {
  assert.deepEqual(cssColours(applySgr(DEFAULT_STYLE, "7")), { color: "var(--log-bg)", background: "var(--log-fg)" });
  assert.deepEqual(cssColours(applySgr(DEFAULT_STYLE, "7;31;44")), { color: "var(--ansi-4)", background: "var(--ansi-1)" });
});

test("faint: the palette's faint colours on the default background, opacity otherwise", () => {
  const css = (sgr) => cssColours(applySgr(DEFAULT_STYLE, sgr));
  const classes = (sgr) => styleClasses(applySgr(DEFAULT_STYLE, sgr));
  // The default colour and the 16 on the default background: their faint form (client.css).
  assert.deepEqual(css("2"), { color: "var(--log-fg-faint)", background: null });
  assert.deepEqual(css("2;31"), { color: "var(--ansi-1-faint)", background: null });
  assert.deepEqual(css("2;97"), { color: "var(--ansi-15-faint)", background: null });
  assert.deepEqual(css("1;2;34"), { color: "var(--ansi-12-faint)", background: null }, "bold brightens first");
  assert.deepEqual(classes("2;31"), ["ansi-faint"]);
  assert.deepEqual(classes("2"), ["ansi-faint"]);
  // Reverse: the text colour is dimmed before the swap, so the background is the faint one.
  assert.deepEqual(css("2;7"), { color: "var(--log-bg)", background: "var(--log-fg-faint)" });
  assert.deepEqual(css("2;7;30"), { color: "var(--log-bg)", background: "var(--ansi-0-faint)" });
  assert.deepEqual(classes("2;7;31"), ["ansi-faint"]);
  // 256 colours and truecolour are drawn as sent, dimmed by opacity; so is text on a background colour.
  assert.deepEqual(css("2;38;5;208"), { color: "rgb(255, 135, 0)", background: null });
  assert.deepEqual(classes("2;38;5;208"), ["ansi-faint", "ansi-faint-opacity"]);
  assert.deepEqual(classes("2;38;2;1;2;3"), ["ansi-faint", "ansi-faint-opacity"]);
  assert.deepEqual(classes("2;38;5;9"), ["ansi-faint"], "256-colour indexes 0..15 are the palette");
  assert.deepEqual(css("2;31;44"), { color: "var(--ansi-1)", background: "var(--ansi-4)" });
  assert.deepEqual(classes("2;31;44"), ["ansi-faint", "ansi-faint-opacity"]);
  assert.deepEqual(css("2;7;31;44"), { color: "var(--ansi-4)", background: "var(--ansi-1)" });
  assert.deepEqual(classes("2;7;31;44"), ["ansi-faint", "ansi-faint-opacity"]);
  assert.deepEqual(classes("2;7;38;5;208"), ["ansi-faint", "ansi-faint-opacity"]);
  // Not faint: unchanged.
  assert.deepEqual(css("31"), { color: "var(--ansi-1)", background: null });
  assert.deepEqual(classes("31"), []);
});

test("an unchanged style is the same object (runs merge)", () => {
  const runs = parse("a\x1b[0mb\x1b[39mc");
  assert.deepEqual(texts(runs), ["abc"]);
});

test("style carries over between chunks", () => {
  const runs = parse("\x1b[35mone ", "two");
  assert.equal(runs[1].style.fg, 5);
});

test("an escape sequence cut between chunks is completed by the next", () => {
  for (let cut = 1; cut < 8; cut++) {
    const whole = "ab\x1b[1;31mcd";
    const runs = parse(whole.slice(0, cut), whole.slice(cut));
    assert.equal(runs.map((r) => r.text).join(""), "abcd", `cut at ${cut}`);
    assert.equal(runs[runs.length - 1].style.fg, 1, `cut at ${cut}`);
  }
});

test("non-SGR sequences and control characters are removed", () => {
  const runs = parse("a\x1b[2Jb\x1b[10;5Hc\x1b]0;window title\x07d\x1b(Be\x07f\x00g\bh\ti\r\n");
  assert.deepEqual(texts(runs), ["abcdefgh\ti\n"]);
});

test("a CSI ending in m with a private marker or an intermediate byte is no style", () => {
  // xterm's CSI > 4 ; 2 m (modifyOtherKeys) is no SGR 4 and SGR 2; nor is CSI ? 7 m, nor CSI 1 SP m.
  const runs = parse("a\x1b[>4;2mb\x1b[?7mc\x1b[1 md\x1b[<1me");
  assert.deepEqual(texts(runs), ["abcde"]);
  assert.equal(runs[0].style, DEFAULT_STYLE);
  // Real SGR around them still applies.
  const mixed = parse("\x1b[1mx\x1b[>4;2my\x1b[22mz");
  assert.deepEqual(mixed.map((r) => [r.text, r.style.bold, r.style.faint, r.style.underline]),
    [["xy", true, false, false], ["z", false, false, false]]);
});

test("OSC ended by ST", () => {
  assert.deepEqual(texts(parse("x\x1b]2;a title\x1b\\y")), ["xy"]); // (OSC 8 links: osc8.test.mjs)
});

test("a lone ESC is dropped, the text stays", () => {
  assert.deepEqual(texts(parse("a\x1b\x1b[31mb")), ["a", "b"]);
});

test("an unfinished sequence longer than the limit is dropped, not held for ever", () => {
  const p = new AnsiParser();
  p.feed("x\x1b]" + "t".repeat(1000));
  assert.equal(p.pending, "");
  assert.deepEqual(texts(p.feed("after")), ["after"]);
});

test("HTML stays text", () => {
  assert.deepEqual(texts(parse("<img src=x onerror=alert(1)>")), ["<img src=x onerror=alert(1)>"]);
});

test("2 MB of coloured text parses", () => {
  const line = "\x1b[1;33mgold\x1b[0m and \x1b[38;5;208morange\x1b[0m and \x1b[38;2;1;2;3mrgb\x1b[0m\n";
  const big = line.repeat(Math.ceil((2 * 1024 * 1024) / line.length));
  const runs = parse(big);
  assert.equal(runs.map((r) => r.text).join("").split("\n").length - 1, big.split("\n").length - 1);
});

test("escapeEnd: where a sequence starting at an ESC ends, -1 when it does not end in the text", () => {
  const uri = `send:look?config=${"%7B".repeat(200)}`;
  const text = `ab\x1b]8;;${uri}\x1b\\link\x1b]8;;\x07 \x1b[31mred\x1b[`;
  const osc = text.indexOf("\x1b]8");
  assert.equal(escapeEnd(text, osc), text.indexOf("link"));
  assert.equal(escapeEnd(text, text.indexOf("\x1b\\")), text.indexOf("link")); // (an ST)
  assert.equal(escapeEnd(text, text.indexOf("\x1b[31m")), text.indexOf("red"));
  assert.equal(escapeEnd(text, text.lastIndexOf("\x1b")), -1);
  assert.equal(escapeEnd(text.slice(0, osc + 300), osc), -1);
});
