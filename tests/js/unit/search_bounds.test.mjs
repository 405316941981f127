// Search and highlights bounded (gateway/web/search.js, triggers.js): the matches a search keeps,
// the ranges a highlight pattern gives a line. Run with `node --test tests/js/unit/`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_MATCHES } from "../../../gateway/web/search.js";
import { findMatches } from "./find_matches.mjs";
import { MAX_LINE_HIGHLIGHTS, matchLines } from "../../../gateway/web/triggers.js";

test("search: the newest MAX_MATCHES matches, in order, and whether there are more", () => {
  const texts = Array.from({ length: 1000 }, (_, i) => `${i} ${"a".repeat(20)}`); // 20,000 matches
  const found = findMatches(texts, "A");
  assert.equal(found.length, MAX_MATCHES);
  assert.equal(found.more, true);
  // The last MAX_MATCHES of all of them: from the 500th line from the end, at its first "a".
  assert.deepEqual(found[0], { line: 500, start: 4, end: 5 });
  assert.deepEqual(found.at(-1), { line: 999, start: 23, end: 24 });
  assert.ok(found.every((m, i) => i === 0 || m.line > found[i - 1].line || m.start > found[i - 1].start));
});

test("search: more only when there is one more, however far back, and within a line", () => {
  assert.equal(findMatches(["x", "aaa"], "a", 3).more, undefined); // exactly max
  assert.equal(findMatches(["a", "x", "x", "aaa"], "a", 3).more, true); // one more, lines back
  const inLine = findMatches(["aaaa"], "a", 3);
  assert.deepEqual([inLine.map((m) => m.start), inLine.more], [[1, 2, 3], true]);
  // Under the bound, as ever: every match.
  assert.deepEqual(findMatches(["An Orc", "orc and ORC"], "orc", 3),
    [{ line: 0, start: 3, end: 6 }, { line: 1, start: 0, end: 3 }, { line: 1, start: 8, end: 11 }]);
});

test("search: a one-letter search over a full log keeps MAX_MATCHES and reads no further than one more", () => {
  // 5,000 lines of 10,000 characters: 50 million matches. The newest line holds 10,000 of them.
  const line = "e".repeat(10000);
  let read = 0;
  const texts = new Proxy(Array(5000).fill(line), {
    get: (arr, key) => (/^\d+$/.test(key) ? (read++, arr[key]) : arr[key]),
  });
  const found = findMatches(texts, "e");
  assert.equal(found.length, MAX_MATCHES);
  assert.equal(found.more, true);
  assert.equal(read, 2); // the newest line, and the one before it for "more"
});

test("highlight patterns: a line gives at most MAX_LINE_HIGHLIGHTS ranges, the first ones", () => {
  // /./ on a full log (5,000 lines of 10,000 characters) was 50 million ranges, sent from the
  // worker to the page and a span each there.
  const lines = ["x".repeat(10000), "(a) b c"];
  const hits = matchLines({ source: ".", flags: "" }, lines);
  assert.equal(hits[0].ranges.length, MAX_LINE_HIGHLIGHTS);
  assert.deepEqual(hits[0].ranges.at(-1), [MAX_LINE_HIGHLIGHTS - 1, MAX_LINE_HIGHLIGHTS]);
  assert.equal(hits[1].ranges.length, 7);
  // A trigger's groups are the first match's, as ever.
  const groups = matchLines({ source: "(\\w)(\\w)?", flags: "" }, ["ab ".repeat(100)]);
  assert.deepEqual([groups[0].groups, groups[0].ranges.length], [["a", "b"], MAX_LINE_HIGHLIGHTS]);
});
