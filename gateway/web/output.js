// The output log: game text (with ANSI colours) drawn into the page as text
// nodes only, never as HTML.
//
// - Text is queued and drawn once per animation frame, a few milliseconds of
//   work at a time, so a burst of megabytes does not freeze the page.
// - At most `cap` lines are kept; older lines are removed.
// - While the player reads back (the log is not scrolled to its end) the log
//   splits: the upper part stays where it is, a strip below it shows the
//   newest lines, with a button that jumps to the end. Scrolling to the end
//   (or End, see main.js) closes the split.
// - http(s) URLs become links that open in a new tab without a referrer.
// - The game's OSC 8 links (MXP, SPEC 7.1) become links and commands (links.js).

import { AnsiParser, DEFAULT_STYLE, cssColours, styleClasses } from "./ansi.js";
import { linkParent, outOfTabOrder } from "./links.js";

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/g;
const URL_TRAILING = /[.,;:!?'")\]}>]+$/;
const FRAME_BUDGET_MS = 8; // work per animation frame
const HIDDEN_FLUSH_MS = 250; // animation frames stop in a hidden tab; a timer goes on
const TAIL_LINES = 60; // lines copied into the split's lower strip (it shows as many as fit)
const MAX_LINE_CHARS = 10000; // a longer line goes on in a new line: the cap bounds the page
const CATCH_UP_CHARS = 4 << 20; // more text than this waiting: draw it all now, whatever the frame

/** Append text runs ([{text, style, link}]) to `parent` as text nodes, spans and links. */
export function appendRuns(parent, runs) {
  for (const run of runs) appendRun(parent, run.text, run.style, run.link);
}

function appendRun(parent, text, style, link = null) {
  if (link) parent = linkParent(parent, link); // the game's link: its text goes inside
  let target = parent;
  if (style !== DEFAULT_STYLE) {
    target = document.createElement("span");
    const classes = styleClasses(style);
    if (classes.length) target.className = classes.join(" ");
    const { color, background } = cssColours(style);
    if (color) target.style.color = color;
    if (background) target.style.backgroundColor = background;
    parent.append(target);
  }
  if (link || !text.includes("://")) {
    target.append(text);
    return;
  }
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    const url = m[0].replace(URL_TRAILING, "");
    if (!url.includes("://") || url.endsWith("://")) continue;
    if (m.index > last) target.append(text.slice(last, m.index));
    const a = document.createElement("a");
    a.href = url;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.textContent = url;
    target.append(a);
    last = m.index + url.length;
  }
  if (last < text.length) target.append(text.slice(last));
}

export class OutputLog {
  /**
   * log: the scrolling element; tail: the split's lower strip; jump: the
   * "newest output" button; prompt: where `prompt` events are shown;
   * onSplit(open): told when the split opens or closes.
   */
  constructor({ log, tail, jump, prompt, cap = 5000, onSplit = () => {} }) {
    this.el = log;
    this.tail = tail;
    this.jump = jump;
    this.promptEl = prompt;
    this.cap = cap;
    this.onSplit = onSplit;
    this.parser = new AnsiParser();
    this.queue = []; // {text} | {prompt} | {note, cls}, in arrival order
    this.queuedChars = 0;
    this.openLine = null; // the last line element while the game has not ended it
    this.openChars = 0; // characters in openLine
    this.afterPrompt = false;
    this.split = false;
    this.unseen = 0; // lines added while split
    this.frame = 0;
    this.timer = 0;
    log.addEventListener("scroll", () => this._onScroll(), { passive: true });
    jump.addEventListener("click", () => this.scrollToEnd());
    // The log changes size (window, on-screen keyboard, font, the split itself):
    // a log that follows the output stays at its end.
    new ResizeObserver(() => {
      if (!this.split) this._toEnd();
    }).observe(log);
  }

  /** Game text (an `echo` event's message). */
  write(text) {
    this.queue.push({ text });
    this.queuedChars += text.length;
    this._schedule();
  }

  /** The current prompt (a `prompt` event's message), shown apart from the log. */
  prompt(text) {
    this.queue.push({ prompt: text });
    this._schedule();
  }

  /** A line of our own (the player's command, a notice), on a line of its own. */
  note(text, cls = "notice") {
    this.queue.push({ note: text, cls });
    this._schedule();
  }

  /** Whether the log is scrolled to its end (within half a line). */
  atEnd() {
    const el = this.el;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 8;
  }

  scrollToEnd() {
    this._setSplit(false);
    this._toEnd();
  }

  /** Draw everything queued now (tests and the hidden-tab timer use this too). */
  flushNow() {
    while (this.queue.length) this._flush(Infinity);
  }

  _schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => this._flush(FRAME_BUDGET_MS));
    // Hidden, nobody watches the page stutter: draw all that waits (browsers run
    // background timers rarely, and the queue must not grow meanwhile).
    this.timer = setTimeout(() => this._flush(document.hidden ? Infinity : FRAME_BUDGET_MS), HIDDEN_FLUSH_MS);
  }

  _flush(budget) {
    cancelAnimationFrame(this.frame);
    clearTimeout(this.timer);
    this.frame = this.timer = 0;
    // Falling behind a game that talks faster than we draw: catch up at once
    // rather than let the queue grow.
    if (this.queuedChars > CATCH_UP_CHARS) budget = Infinity;
    const start = performance.now();
    let created = [];
    let line = this.openLine;
    const newLine = (cls) => {
      const div = document.createElement("div");
      div.className = cls ? `line ${cls}` : "line";
      created.push(div);
      return div;
    };
    let done = 0;
    while (done < this.queue.length && performance.now() - start < budget) {
      const item = this.queue[done++];
      if (item.prompt !== undefined) {
        const runs = this.parser.feed(item.prompt);
        this.promptEl.replaceChildren();
        appendRuns(this.promptEl, runs);
        this.afterPrompt = true;
        continue;
      }
      if (item.note !== undefined) {
        newLine(item.cls).append(item.note.slice(0, MAX_LINE_CHARS));
        line = null;
        continue;
      }
      this.queuedChars -= item.text.length;
      let text = item.text;
      // The prompt is not in the log, so the newline that ended its line is not either.
      if (this.afterPrompt && text.startsWith("\n")) text = text.slice(1);
      this.afterPrompt = false;
      for (const run of this.parser.feed(text)) {
        const pieces = run.text.split("\n");
        for (let i = 0; i < pieces.length; i++) {
          if (i > 0) {
            if (line === null) newLine();
            line = null; // a newline ends the line
          }
          let rest = pieces[i];
          while (rest) {
            if (line === null || this.openChars >= MAX_LINE_CHARS) {
              line = newLine();
              this.openChars = 0;
            }
            const part = rest.length > MAX_LINE_CHARS - this.openChars ? rest.slice(0, MAX_LINE_CHARS - this.openChars) : rest;
            appendRun(line, part, run.style, run.link);
            this.openChars += part.length;
            rest = rest.slice(part.length);
          }
        }
      }
    }
    this.queue.splice(0, done);
    this.openLine = line;
    const added = created.length;
    // More new lines than the cap: the oldest never reach the page.
    if (added > this.cap) created = created.slice(-this.cap);
    this.el.append(...created);
    this._trim();
    if (this.split) {
      this.unseen += added;
      this._drawTail();
    } else {
      this._toEnd();
    }
    if (this.queue.length) this._schedule();
  }

  _trim() {
    const el = this.el;
    const excess = el.childElementCount - this.cap;
    if (excess <= 0) return;
    const before = this.split ? el.scrollHeight : 0;
    const range = document.createRange();
    range.setStartBefore(el.firstElementChild);
    range.setEndAfter(el.children[excess - 1]);
    range.deleteContents();
    if (this.openLine && !this.openLine.isConnected) this.openLine = null;
    // Reading back: the lines above went away, the text being read stays put.
    if (this.split) el.scrollTop -= before - el.scrollHeight;
  }

  _toEnd() {
    this.el.scrollTop = this.el.scrollHeight;
  }

  _onScroll() {
    const end = this.atEnd();
    if (end && this.split) this._setSplit(false);
    else if (!end && !this.split) this._setSplit(true);
  }

  _setSplit(open) {
    if (open === this.split) return;
    this.split = open;
    this.unseen = 0;
    if (open) this._drawTail();
    else this.tail.replaceChildren();
    this.onSplit(open);
    this._drawJump();
  }

  _drawTail() {
    const lines = this.el.children;
    const from = Math.max(0, lines.length - TAIL_LINES);
    const copies = [];
    for (let i = from; i < lines.length; i++) copies.push(lines[i].cloneNode(true));
    this.tail.replaceChildren(...copies);
    outOfTabOrder(this.tail); // copies in an aria-hidden strip: clickable, not focusable
    this._drawJump();
  }

  _drawJump() {
    this.jump.textContent = this.unseen
      ? `▼ ${this.unseen} new line${this.unseen === 1 ? "" : "s"} (End)`
      : "▼ Newest output (End)";
  }
}
