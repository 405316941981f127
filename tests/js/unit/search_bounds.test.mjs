// Search and highlights bounded (gateway/web/search.js, triggers.js): the matches a search keeps,
// the ranges a highlight pattern gives a line. Run with `node --test tests/js/unit/`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_MATCHES, findMatches } from "../../../gateway/web/search.js";

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
