// The scrollback search a slice at a time (gateway/web/search.js): searchSlices reads the lines
// newest first, a bounded slice between two calls, and finds what findMatches finds. Run with
// `node --test tests/js/unit/`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_MATCHES, SLICE_CHARS, SLICE_LINES, searchSlices } from "../../../gateway/web/search.js";
import { findMatches } from "./find_matches.mjs";

/**
 * searchSlices over `texts` (oldest first, as the log holds them), run to its end: the matches
 * (as findMatches gives them: oldest first, `line` from the oldest) and, per slice, the lengths
 * of the lines it read. A slice is what is read between two calls, as a task of the page reads.
 */
function sliced(texts, query, max, bound) {
  const slices = [[]];
  const fromEnd = (function* () {
    for (let i = texts.length - 1; i >= 0; i--) {
      slices.at(-1).push(texts[i].length);
      yield texts[i];
    }
  })();
  const run = searchSlices(fromEnd, query, max, bound);
  let r = run.next();
  while (!r.done) {
    assert.deepEqual([r.value.lines, r.value.chars], [slices.at(-1).length, slices.at(-1).reduce((a, b) => a + b, 0)]);
    slices.push([]);
    r = run.next();
  }
  const found = r.value.map((m) => ({ line: texts.length - 1 - m.line, start: m.start, end: m.end })).reverse();
  if (r.value.more) found.more = true;
  return { found, slices };
}

/**
 * Every match by hand (ASCII: lower case is case-insensitive), the last `max`, and `more`; `first`:
 * the oldest line a search must read (the one with the match before the kept ones, if any).
 */
function naive(texts, query, max) {
  const all = [];
  const q = query.toLowerCase();
  texts.forEach((text, line) => {
    const t = text.toLowerCase();
    for (let at = t.indexOf(q); q && at >= 0; at = t.indexOf(q, at + q.length)) all.push({ line, start: at, end: at + q.length });
  });
  const out = all.slice(Math.max(0, all.length - max));
  if (all.length > max) out.more = true;
  return { want: out, first: all.length > max ? all[all.length - max - 1].line : 0 };
}

/** A reproducible random number generator (mulberry32). */
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A slice's bound kept: at most `bound.lines` lines, and none read once it had `bound.chars`. */
function assertBounded(slice, bound) {
  assert.ok(slice.length <= bound.lines, `${slice.length} lines in a slice`);
  const beforeLast = slice.slice(0, -1).reduce((a, b) => a + b, 0);
  assert.ok(beforeLast < bound.chars, `a line read after ${beforeLast} characters`);
}

test("sliced: the same matches and `more` as by hand, every slice within its bound", () => {
  const rnd = random(7);
  const pick = (s) => s[Math.floor(rnd() * s.length)];
  const letters = "aAb.*(x ";
  for (let round = 0; round < 400; round++) {
    const texts = Array.from({ length: Math.floor(rnd() * 40) }, () => {
      const long = rnd() < 0.1;
      return Array.from({ length: Math.floor(rnd() * (long ? 3000 : 40)) }, () => pick(letters)).join("");
    });
    const query = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(letters)).join("");
    const max = rnd() < 0.5 ? 1 + Math.floor(rnd() * 30) : MAX_MATCHES;
    const bound = { lines: 1 + Math.floor(rnd() * 8), chars: 1 + Math.floor(rnd() * 4000) };
    const { found, slices } = sliced(texts, query, max, bound);
    const { want, first } = naive(texts, query, max);
    const context = JSON.stringify({ round, query, max, bound });
    assert.deepEqual([found, found.more], [want, want.more], context);
    assert.deepEqual([findMatches(texts, query, max), findMatches(texts, query, max).more], [want, want.more], context);
    for (const slice of slices) assertBounded(slice, bound);
    // A slice ends at its bound, not before (only the last one is short), and every line is
    // read once, only as far back as the matches and `more` need.
    for (const slice of slices.slice(0, -1)) {
      assert.ok(slice.length === bound.lines || slice.reduce((a, b) => a + b, 0) >= bound.chars, context);
    }
    assert.equal(slices.flat().length, query ? texts.length - first : 0, context);
  }
});

test("sliced, by default: a full log of long lines is read SLICE_LINES lines or SLICE_CHARS characters a slice", () => {
  // 5,000 lines (the log's cap) of 10,000 characters (its longest line) and of 80, mixed; a
  // search that matches nothing reads every one of them (50 MB in one task held the page).
  const texts = Array.from({ length: 5000 }, (_, i) => (i % 3 ? "x".repeat(10000) : `line ${i} `.padEnd(80, ".")));
  const { found, slices } = sliced(texts, "no such text");
  assert.deepEqual(found, []);
  assert.equal(slices.flat().length, 5000);
  assert.ok(slices.length > 100, slices.length);
  for (const slice of slices) assertBounded(slice, { lines: SLICE_LINES, chars: SLICE_CHARS });
  // The newest match comes with the first slice: the newest line is read first.
  const newest = searchSlices(texts.toReversed(), "line 4998").next();
  assert.deepEqual(newest.value.found, [{ line: 1, start: 0, end: 9 }]);
});

test("sliced: an empty query reads nothing", () => {
  let read = 0;
  const texts = { *[Symbol.iterator]() { read++; yield "a"; } };
  const r = searchSlices(texts, "").next();
  assert.deepEqual([r.done, r.value, read], [true, [], 0]);
});
