// Searching the scrollback (Ctrl+F or the search button): every line the
// log keeps, not only those on screen. Matches are shown with the CSS Custom
// Highlight API (no change to the log's elements), the current one brighter;
// Enter / Shift+Enter (or the buttons) step to the next / previous match and
// scroll it into view. The search is plain text, case-insensitive.
// A search keeps (and paints) the newest MAX_MATCHES matches only: a log of
// 5,000 lines of 10,000 characters holds 50 million of one letter, each a
// match and a range, and the tab would die. The count then says "of 10000+".
// A search reads the log a slice at a time, newest first (searchSlices), and
// the page goes on between slices: the whole log in one task (50 MB of text
// when full) held the page ~145 ms a keystroke, game text and typing waiting.
// The newest match shows with the first slice that finds it; the count says
// "12+ …" until the search is done. A key typed meanwhile ends that search
// (only the latest query's results are shown), and so does closing the bar.

import { CHUNK_LINES, linesFromEnd } from "./output.js";
import { textSegments } from "./textrange.js";

export const MAX_MATCHES = 10000;

// What one slice of a search reads at most: SLICE_LINES lines (a block of the log, so a slice
// draws at most one lazy block, output.js), and no line more once it has read SLICE_CHARS
// characters (a slice then holds less than SLICE_CHARS + one line: the log's lines are at most
// 10,000 characters). Matching 500,000 characters takes ~0.3 ms in Chromium; reading the lines'
// text costs more, and drawing a lazy block most: slices of 2,000 coloured lines of ~5,500
// characters took 1-3 ms, one that drew a block of them ~30 ms (once: it is drawn then).
export const SLICE_LINES = CHUNK_LINES;
export const SLICE_CHARS = 1 << 18; // 256 Ki
// The ranges (highlights) made in one task at most: a line of one letter has 10,000 matches,
// whose ranges took ~15-50 ms (more with a collection of the old query's ranges).
const SLICE_RANGES = 2000;

/**
 * Where `query` occurs (case-insensitive) in `texts`, an iterable of lines' texts NEWEST FIRST,
 * read only as far as needed, a slice at a time: after each slice of at most `slice.lines` lines
 * that stops once it has read `slice.chars` characters, it yields {found, lines, chars} (what
 * that slice read) and reads on when called again. Returns (and yields) `found`: the newest
 * `max` matches [{line, start, end}], newest first, `line` counted from the newest line (0);
 * `more` is set on it when there are others before them.
 */
export function* searchSlices(texts, query, max = MAX_MATCHES, slice = { lines: SLICE_LINES, chars: SLICE_CHARS }) {
  const found = [];
  if (!query) return found;
  const re = new RegExp(query.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&"), "gi");
  const it = texts[Symbol.iterator]();
  let lines = 0;
  let chars = 0;
  for (let line = 0; ; line++) {
    if (lines === slice.lines || chars >= slice.chars) {
      yield { found, lines, chars };
      lines = chars = 0;
    }
    const next = it.next();
    if (next.done) break;
    const text = next.value;
    lines++;
    chars += text.length;
    if (found.length === max) {
      re.lastIndex = 0;
      found.more = re.test(text); // (past the bound: only whether there is one more)
      if (found.more) break;
      continue;
    }
    const all = [...text.matchAll(re)];
    for (let i = all.length - 1; i >= 0 && !found.more; i--) {
      if (found.length === max) found.more = true;
      else found.push({ line, start: all[i].index, end: all[i].index + all[i][0].length });
    }
    if (found.more) break;
  }
  if (!found.more) delete found.more;
  return found;
}

/**
 * Ranges over `spans` ([{start, end}], in order, apart) of the line `el`'s text, its text nodes
 * walked once (textSegments), not once a span: 10,000 matches of one letter in a line of 200
 * coloured pieces took ~270 ms so. A span past the line's text gets null.
 */
function rangesIn(el, spans) {
  const segs = textSegments(el, spans[0].start, spans.at(-1).end);
  const out = [];
  let k = 0;
  let pos = segs.length ? spans[0].start - segs[0][1] : 0; // where segs[k]'s text node starts
  for (const { start, end } of spans) {
    while (k < segs.length && pos + segs[k][0].data.length <= start) pos += segs[k++][0].data.length;
    if (k === segs.length) {
      out.push(null);
      continue;
    }
    const range = el.ownerDocument.createRange();
    range.setStart(segs[k][0], start - pos);
    let j = k;
    let at = pos;
    while (j < segs.length - 1 && at + segs[j][0].data.length < end) at += segs[j++][0].data.length;
    range.setEnd(segs[j][0], Math.min(end - at, segs[j][0].data.length));
    out.push(range);
  }
  return out;
}

const highlights = () => typeof CSS !== "undefined" && !!CSS.highlights && typeof Highlight !== "undefined";

export class LogSearch {
  /**
   * log: the log element; bar: the search form; field, count, prev, next,
   * close, toggle: its parts and the button that opens it; done(): focus
   * goes back to the input line.
   */
  constructor({ log, bar, field, count, prev, next, close, toggle, done }) {
    Object.assign(this, { log, bar, field, count, toggle, done });
    this.matches = []; // [{el (the line), start, end, range}], oldest first
    this.current = -1;
    this.run = null; // the search under way (a newer one, or closing, ends it)
    this.pending = 0; // steps asked for while it runs, taken once it is done
    // Whether the log changed since the last search started (stepping searches again then): its
    // first change says so (the search's own drawing of lazy blocks too), and the watch stops
    // until the next search starts.
    this.changed = true;
    this.watch = new MutationObserver(() => {
      this.changed = true;
      this.watch.disconnect();
    });
    bar.addEventListener("submit", (e) => e.preventDefault());
    field.addEventListener("input", () => this._search(true));
    field.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.step(e.shiftKey ? -1 : 1);
      } else if (e.key === "Escape") {
        e.preventDefault();
        this.close();
      }
    });
    prev.addEventListener("click", () => this.step(-1));
    next.addEventListener("click", () => this.step(1));
    close.addEventListener("click", () => this.close());
    toggle.addEventListener("click", () => (this.bar.hidden ? this.open() : this.close()));
    document.addEventListener("keydown", (e) => {
      // By the key's letter, or on a layout without Latin letters (Russian, Greek) by its
      // position, KeyF (a Latin layout such as Dvorak keeps its own letter there: Ctrl+U).
      const key = e.key.toLowerCase();
      const f = key === "f" || (e.code === "KeyF" && !/^[a-z]$/.test(key));
      if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && f) {
        e.preventDefault();
        this.open();
      }
    });
  }

  open() {
    this.bar.hidden = false;
    this.toggle.setAttribute("aria-expanded", "true");
    this.field.focus();
    this.field.select();
    if (this.field.value) this._search(true);
  }

  close() {
    this.bar.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
    this._end();
    this.matches = [];
    this.current = -1;
    this.pending = 0;
    this.changed = true;
    this.watch.disconnect();
    if (highlights()) {
      CSS.highlights.delete("search");
      CSS.highlights.delete("search-current");
    }
    this.done();
  }

  /** To the next (1) or previous (-1) match, wrapping around. */
  step(dir) {
    if (this.run?.fresh) {
      this.pending += dir; // (a new query's matches are not all found yet: taken once they are)
      return;
    }
    // A step to a match shown, both lines still in the log, is the same step whatever the log
    // did meanwhile (lines come at its end and go from its start): taken at once. Else (past
    // either end) it is taken once the log was searched again, if it changed.
    const was = this.matches[this.current];
    const to = this.matches[this.current + dir];
    if (!this.pending && was?.el.isConnected && to?.el.isConnected) this._show(this.current + dir, this.field.value, true);
    else this.pending += dir;
    if (this.run) return; // (searching again: it keeps our place and takes what is pending)
    // The log moved on meanwhile (new lines, old ones removed): search again, keep our place.
    if (this.changed) this._search(false);
    else if (this.pending) this._done(null);
  }

  /**
   * Search the log, a slice a task, newest first; `fresh`: a new query, its matches shown as
   * they are found, from the newest. Else (stepping) the matches shown stay until it is done.
   * It reads the lines there were when it started (linesFromEnd goes up from the last).
   */
  _search(fresh) {
    this._end();
    const query = this.field.value;
    const els = []; // the lines read, newest first
    const texts = (function* (log) {
      for (const el of linesFromEnd(log)) {
        els.push(el);
        yield el.textContent;
      }
    })(this.log);
    const run = {
      fresh, query, els,
      slices: searchSlices(texts, query),
      found: [], // what searchSlices found so far (newest first), and whether it read all it needs
      read: false,
      made: [], // the matches found, newest first, as this.matches holds them (ranges made)
      all: highlights() ? new Highlight() : null,
      current: highlights() ? new Highlight() : null,
    };
    this.run = run;
    this.watch.disconnect();
    this.changed = false;
    this.watch.observe(this.log, { childList: true, subtree: true, characterData: true });
    this.count.setAttribute("aria-busy", "true"); // (a screen reader says the count once done)
    if (fresh) {
      // The old query's matches and count go in this same task: nothing stale is painted.
      this.matches = [];
      this.current = -1;
      this.pending = 0;
      if (run.all) {
        CSS.highlights.set("search", run.all);
        CSS.highlights.set("search-current", run.current);
      }
    }
    this._slice(run); // the first slice at once: the newest match comes with the key
  }

  /** A task of the search: its next slice read, or the matches it found (SLICE_RANGES) made ranges. */
  _slice(run) {
    if (this.run !== run) return; // a newer search, or closed
    if (run.made.length === run.found.length && !run.read) {
      const r = run.slices.next();
      run.found = r.done ? r.value : r.value.found;
      run.read = r.done;
    }
    const found = run.found;
    const until = Math.min(found.length, run.made.length + SLICE_RANGES);
    for (let i = run.made.length, j; i < until; i = j) {
      // A line's matches (newest first: from its end), as many as this task makes.
      for (j = i + 1; j < until && found[j].line === found[i].line; j++);
      const el = run.els[found[i].line];
      const spans = found.slice(i, j).reverse();
      const ranges = run.all && el.isConnected ? rangesIn(el, spans).reverse() : [];
      for (let k = i; k < j; k++) {
        const m = { el, start: found[k].start, end: found[k].end, range: ranges[k - i] ?? null };
        run.made.push(m);
        if (m.range) (k === 0 && run.fresh ? run.current : run.all).add(m.range);
      }
      if (i === 0 && run.fresh) el.scrollIntoView({ block: "center" }); // the newest, at once
    }
    if (run.read && run.made.length === found.length) return this._done(run, found.more);
    if (run.fresh) this.count.textContent = run.made.length ? `${run.made.length}+ …` : "Searching…";
    setTimeout(() => this._slice(run));
  }

  /** A search is done (`run`; null: the matches shown stand): the current match moves by the steps asked for. */
  _done(run, more) {
    let at = this.current;
    if (run) {
      const was = run.fresh ? null : this.matches[this.current]; // (our place: stepping went on meanwhile)
      this.run = null;
      this.count.removeAttribute("aria-busy");
      // Lines the log removed meanwhile (the oldest) take their matches with them, and the
      // line that said there were more.
      const matches = run.made.filter((m) => m.el.isConnected).reverse();
      if (more && matches.length === run.made.length) matches.more = true;
      this.matches = matches;
      this.current = -1;
      if (run.fresh) at = matches.length - 1;
      else at = was ? matches.findIndex((m) => m.el === was.el && m.start === was.start) : -1;
      // (Our place went with the oldest lines, or out of the newest MAX_MATCHES: the oldest kept.)
      if (at < 0 && was && !this.pending) at = 0;
      if (run.all) {
        run.current.clear(); // (the newest: made current again below)
        for (const m of run.made) {
          if (m.range && m.el.isConnected) run.all.add(m.range);
          else if (m.range) run.all.delete(m.range);
        }
        CSS.highlights.set("search", run.all);
        CSS.highlights.set("search-current", run.current);
      }
    }
    // (A new query's newest match was scrolled to when it was found.)
    const scroll = !run || !run.fresh || this.pending !== 0;
    const n = this.matches.length;
    if (n && this.pending) {
      // (Not found: from before the first match going on, from after the last going back.)
      if (at < 0) at = this.pending > 0 ? -1 : n;
      at = (((at + this.pending) % n) + n) % n;
    }
    this.pending = 0;
    this._show(at, run ? run.query : this.field.value, scroll);
  }

  /** The match at `at` becomes the current one (`scroll`: into view); the count says where it is. */
  _show(at, query, scroll) {
    const was = this.matches[this.current];
    const m = this.matches[at];
    this.current = m ? at : -1;
    if (highlights() && CSS.highlights.has("search")) {
      // (Only these two ranges move: the others stay as the search painted them.)
      const all = CSS.highlights.get("search");
      const current = CSS.highlights.get("search-current");
      if (was?.range && current.delete(was.range)) all.add(was.range);
      if (m?.range && all.delete(m.range)) current.add(m.range);
    }
    const n = this.matches.length;
    const of = this.matches.more ? `${n}+` : n;
    this.count.textContent = !query ? "" : n ? `${this.current + 1} of ${of}` : "No matches";
    if (m && scroll) m.el.scrollIntoView({ block: "center" });
  }

  /** The search under way, if any, ends. */
  _end() {
    this.run = null;
    this.count.removeAttribute("aria-busy");
  }
}
