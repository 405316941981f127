// `#highlight`: what a pattern matches in the game's lines is drawn in the
// player's colour. The log is watched (a MutationObserver) rather than fed,
// so lines are coloured however output.js makes them: new ones, replayed
// ones, and a line the game is still adding to. Matching runs in the worker
// (matcher.js); the match is wrapped in <span class="hl"> with the colour
// set through the CSSOM (the CSP allows no style attributes). A line holds
// at most MAX_LINE_HIGHLIGHTS such spans (triggers.js), the first ones; the
// rest of it is left unhighlighted.

import { textSegments } from "./textrange.js";
import { MAX_LINE_HIGHLIGHTS } from "./triggers.js";

// Lines painted in one task: a pattern added over a full log paints 5,000 lines,
// 100,000 spans, which in one go held the page for over a second.
const PAINT_SLICE_LINES = 50;

export class Highlighter {
  /** log: the log element; store: the ToolsStore; matcher: a Matcher. */
  constructor({ log, store, matcher }) {
    this.log = log;
    this.store = store;
    this.matcher = matcher;
    this.waiting = new Set(); // line elements to (re)colour
    this.busy = false;
    this.observer = new MutationObserver((records) => this._collect(records));
    this._watch();
    store.onChange((kind) => {
      if (kind === "highlights") this.refresh();
    });
  }

  /** Colour every line again (the highlights changed). */
  refresh() {
    this._watch();
    // (Lines in lazy blocks, output.js, are coloured when they are drawn: they are added then.)
    for (const line of this.log.querySelectorAll(".line")) this.waiting.add(line);
    this._pump();
  }

  _watch() {
    if (this.store.active("highlights").length) {
      this.observer.observe(this.log, { childList: true, subtree: true, characterData: true });
    } else {
      this.observer.disconnect();
    }
  }

  _collect(records) {
    for (const r of records) {
      // Lines come in blocks (output.js): a block added, a line added to a block, or a line changed.
      if (r.target === this.log || r.target.classList?.contains("chunk")) {
        for (const node of r.addedNodes) {
          if (node.nodeType !== 1) continue;
          if (node.classList.contains("line")) this.waiting.add(node);
          else for (const line of node.querySelectorAll(".line")) this.waiting.add(line);
        }
      } else {
        const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        const line = el && el.closest(".line");
        if (line && this.log.contains(line)) this.waiting.add(line);
      }
    }
    this._pump();
  }

  async _pump() {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.waiting.size) {
        const lines = [...this.waiting].filter((l) => l.isConnected && isGameLine(l));
        this.waiting.clear();
        const texts = lines.map((l) => l.textContent);
        const paint = lines.map(() => []); // per line: [[start, end, colour]]
        for (const h of this.store.active("highlights")) {
          const hits = await this.matcher.match(h, texts);
          for (const hit of hits || []) for (const [s, e] of hit.ranges) paint[hit.line].push([s, e, h.colour]);
        }
        this._collect(this.observer.takeRecords()); // the game's changes meanwhile, not ours below
        for (let i = 0; i < lines.length; i++) {
          if (i && i % PAINT_SLICE_LINES === 0) {
            // The page goes on between slices; what the game changes meanwhile is collected.
            this.observer.takeRecords(); // (ours)
            await new Promise((resolve) => setTimeout(resolve));
          }
          // A line that changed meanwhile is waiting again.
          if (lines[i].isConnected && lines[i].textContent === texts[i]) paintLine(lines[i], paint[i]);
        }
        this.observer.takeRecords();
      }
    } finally {
      this.busy = false;
    }
  }
}

function isGameLine(el) {
  return el.classList.contains("line") && !el.classList.contains("command") && !el.classList.contains("notice");
}

/**
 * Unwrap old highlights in `line`, then wrap each [start, end, colour] (later ones inside earlier),
 * a span for each piece of text it covers, MAX_LINE_HIGHLIGHTS spans at most.
 */
function paintLine(line, marks) {
  const old = line.querySelectorAll("span.hl");
  if (!old.length && !marks.length) return;
  for (const span of old) span.replaceWith(...span.childNodes);
  if (old.length) line.normalize();
  let spans = 0;
  for (const [start, end, colour] of marks) {
    for (const [node, from, to] of textSegments(line, start, end)) {
      if (spans++ === MAX_LINE_HIGHLIGHTS) return;
      let piece = node;
      if (to < piece.data.length) piece.splitText(to);
      if (from > 0) piece = piece.splitText(from);
      const span = line.ownerDocument.createElement("span");
      span.className = "hl";
      span.style.color = colour;
      piece.replaceWith(span);
      span.append(piece);
    }
  }
}
