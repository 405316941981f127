// A search's whole result for the unit tests: search.js's searchSlices, read to its end.

import { MAX_MATCHES, searchSlices } from "../../../gateway/web/search.js";

/**
 * Where `query` occurs in `texts` (case-insensitive): [{line, start, end}], in
 * order, the last `max` of them; `more` is set on the array when there are
 * others before them. (search.js's searchSlices over the whole array at once: the unit tests' way to
 * look at a search's result.)
 */
export function findMatches(texts, query, max = MAX_MATCHES) {
  const fromEnd = (function* () {
    for (let i = texts.length - 1; i >= 0; i--) yield texts[i];
  })();
  const slices = searchSlices(fromEnd, query, max, { lines: Infinity, chars: Infinity });
  let r = slices.next();
  while (!r.done) r = slices.next();
  const out = r.value.map((m) => ({ line: texts.length - 1 - m.line, start: m.start, end: m.end })).reverse();
  if (r.value.more) out.more = true;
  return out;
}
