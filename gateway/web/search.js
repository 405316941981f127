// Searching the scrollback (Ctrl+F or the search button): every line the
// log keeps, not only those on screen. Matches are shown with the CSS Custom
// Highlight API (no change to the log's elements), the current one brighter;
// Enter / Shift+Enter (or the buttons) step to the next / previous match and
// scroll it into view. The search is plain text, case-insensitive.
// A search keeps (and paints) the newest MAX_MATCHES matches only: a log of
// 5,000 lines of 10,000 characters holds 50 million of one letter, each a
// match and a range, and the tab would die. The count then says "of 10000+".

import { logLines } from "./output.js";
import { textRange } from "./textrange.js";

export const MAX_MATCHES = 10000;

/**
 * Where `query` occurs in `texts` (case-insensitive): [{line, start, end}], in
 * order, the last `max` of them; `more` is set on the array when there are
 * others before them.
 */
export function findMatches(texts, query, max = MAX_MATCHES) {
  if (!query) return [];
  const re = new RegExp(query.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&"), "gi");
  const out = []; // newest first, turned round at the end
  let more = false;
  for (let line = texts.length - 1; line >= 0 && !more; line--) {
    if (out.length === max) {
      re.lastIndex = 0;
      more = re.test(texts[line]); // (past the bound: only whether there is one more)
      continue;
    }
    const found = [...texts[line].matchAll(re)];
    for (let i = found.length - 1; i >= 0 && !more; i--) {
      if (out.length === max) more = true;
      else out.push({ line, start: found[i].index, end: found[i].index + found[i][0].length });
    }
  }
  out.reverse();
  if (more) out.more = true;
  return out;
}

export class LogSearch {
  /**
   * log: the log element; bar: the search form; field, count, prev, next,
   * close, toggle: its parts and the button that opens it; done(): focus
   * goes back to the input line.
   */
  constructor({ log, bar, field, count, prev, next, close, toggle, done }) {
    Object.assign(this, { log, bar, field, count, toggle, done });
    this.matches = [];
    this.current = -1;
    this.lines = [];
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
    this._paint();
    if (typeof CSS !== "undefined" && CSS.highlights) {
      CSS.highlights.delete("search");
      CSS.highlights.delete("search-current");
    }
    this.done();
  }

  /** To the next (1) or previous (-1) match, wrapping around. */
  step(dir) {
    // The log moved on meanwhile (new lines, old ones removed): search again, keep our place.
    const was = this.matches[this.current];
    const wasLine = was && this.lines[was.line];
    this._search(false);
    if (!this.matches.length) return;
    let at = -1;
    if (wasLine && wasLine.isConnected) {
      at = this.matches.findIndex((m) => this.lines[m.line] === wasLine && m.start === was.start);
    }
    this.current = at < 0 ? (dir > 0 ? 0 : this.matches.length - 1) : (at + dir + this.matches.length) % this.matches.length;
    this._show();
  }

  /** Search the log now; `fresh`: start at the newest match. */
  _search(fresh) {
    this.lines = [...logLines(this.log)];
    this.matches = findMatches(
      this.lines.map((l) => l.textContent),
      this.field.value,
    );
    if (fresh) {
      this.current = this.matches.length - 1;
      this._show();
    }
  }

  _show() {
    const n = this.matches.length;
    const of = this.matches.more ? `${n}+` : n;
    this.count.textContent = !this.field.value ? "" : n ? `${this.current + 1} of ${of}` : "No matches";
    this._paint();
    const m = this.matches[this.current];
    if (m) this.lines[m.line].scrollIntoView({ block: "center" });
  }

  _paint() {
    if (typeof CSS === "undefined" || !CSS.highlights || typeof Highlight === "undefined") return;
    const all = new Highlight();
    const current = new Highlight();
    if (!this.bar.hidden) {
      this.matches.forEach((m, i) => {
        const r = textRange(this.lines[m.line], m.start, m.end);
        if (r) (i === this.current ? current : all).add(r);
      });
    }
    CSS.highlights.set("search", all);
    CSS.highlights.set("search-current", current);
  }
}
