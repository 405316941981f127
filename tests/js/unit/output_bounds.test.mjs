// The log's bound on the game's elements per line (gateway/web/output.js), on lazy lines (records:
// the same rule as line elements, without a DOM). Run with `node --test tests/js/unit/`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { AnsiParser, DEFAULT_STYLE, parseLinkUri } from "../../../gateway/web/ansi.js";
import { LINK_CHARS_PER_PART, MAX_LINE_PARTS, flatten, lineRecord, linkParts, put } from "../../../gateway/web/output.js";

/** A lazy line of `text` (with escape sequences), as the log puts it. */
function line(text) {
  const rec = lineRecord();
  for (const run of new AnsiParser().feed(text)) put(rec, run.text, run.style, run.link);
  return rec;
}

const letters = (n) => Array.from({ length: n }, (_, i) => String.fromCharCode(65 + (i % 26))).join("");
const styled = (n) => Array.from(letters(n), (c, i) => `\x1b[3${1 + (i % 6)}m${c}`).join("");
const linked = (n) => Array.from(letters(n), (c) => `\x1b]8;;send:look\x1b\\${c}`).join("") + "\x1b]8;;\x1b\\";
const textOf = (rec) => rec.runs.map((r) => r.text).join("");

test("an ordinary coloured line keeps its runs as the parser made them", () => {
  const text = "\x1b[1;31mred\x1b[0m and \x1b[32mgreen\x1b[0m, see https://ex.example/a.";
  const rec = line(text);
  assert.deepEqual(rec.runs.map((r) => [r.text, r.style, r.link, r.plain]),
    new AnsiParser().feed(text).map((r) => [r.text, r.style, r.link, false]));
  assert.equal(rec.parts, 3); // two spans, one URL
  assert.equal(rec.full, false);
});

test("a style for every character: MAX_LINE_PARTS styled runs, the rest one plain run", () => {
  const rec = line(styled(10000));
  assert.equal(textOf(rec), letters(10000));
  assert.equal(rec.parts, MAX_LINE_PARTS);
  assert.equal(rec.runs.length, MAX_LINE_PARTS + 1);
  assert.ok(rec.runs.slice(0, MAX_LINE_PARTS).every((r) => r.style !== DEFAULT_STYLE && !r.plain));
  const last = rec.runs.at(-1);
  assert.deepEqual([last.style, last.link, last.plain, last.text.length], [DEFAULT_STYLE, null, true, 10000 - MAX_LINE_PARTS]);
  assert.equal(rec.full, true);
});

test("a link for every character: MAX_LINE_PARTS links, then plain text", () => {
  const rec = line(linked(5000));
  assert.equal(textOf(rec), letters(5000));
  assert.equal(rec.runs.filter((r) => r.link).length, MAX_LINE_PARTS);
  assert.equal(rec.runs.at(-1).link, null);
  assert.equal(rec.parts, MAX_LINE_PARTS);
});

test("a run whose URLs would pass the bound is plain text, and so is the rest of the line", () => {
  const urls = "http://e.example/ ".repeat(MAX_LINE_PARTS + 1);
  const rec = line(`\x1b[31mred\x1b[0m ${urls}\x1b[32mgreen`);
  assert.deepEqual(rec.runs.map((r) => [r.text, r.plain]), [["red", false], [` ${urls}green`, true]]);
  assert.equal(rec.parts, 1);
  // A line with room for them: every URL counts.
  assert.equal(line("http://e.example/ ".repeat(MAX_LINE_PARTS)).parts, MAX_LINE_PARTS);
});

test("flatten: a line's text in one plain run, no parts", () => {
  const rec = line(styled(300));
  flatten(rec);
  assert.deepEqual(rec.runs, [{ text: letters(300), style: DEFAULT_STYLE, link: null, plain: true }]);
  assert.deepEqual([rec.parts, rec.full], [0, true]);
});

test("a link counts a part, and one more for every LINK_CHARS_PER_PART characters of its data", () => {
  assert.equal(linkParts(parseLinkUri("send:look")), 1);
  assert.equal(linkParts(parseLinkUri(`https://e.example/${"a".repeat(200)}`)), 2);
  const menu = encodeURIComponent(JSON.stringify({ tooltip: "t".repeat(100), menu: [{ [`${"l".repeat(50)}`]: `send:${"c".repeat(50)}` }] }));
  assert.equal(linkParts(parseLinkUri(`send:${"a".repeat(60)}?config=${menu}`)), 1 + Math.floor(260 / LINK_CHARS_PER_PART));
  // Links of 12,000 characters: two fit in a line, the third is plain text.
  const big = `\x1b]8;;send:${"a".repeat(12000)}\x1b\\`;
  const rec = line(`${big}L0 ${big}L1 ${big}L2\x1b]8;;\x1b\\ end`);
  assert.equal(textOf(rec), "L0 L1 L2 end");
  assert.equal(rec.runs.filter((r) => r.link).length, 2);
  assert.equal(rec.parts, 2 * (1 + Math.floor(12000 / LINK_CHARS_PER_PART)));
});
