// The output log: game text (with ANSI colours) drawn into the page as text
// nodes only, never as HTML.
//
// - Text is queued (a game's read in pieces of 1 KB) and drawn once per
//   animation frame, a few milliseconds of work at a time, so a burst of
//   megabytes does not freeze the page nor slow typing (SPEC 7.1:
//   bench/client_flood.py). A key gets the next frame to itself (its echo
//   in the input line is painted without the log's work), then a smaller
//   budget. Behind a flood (text still queued after a frame's work) the log
//   is drawn every FLOOD_INTERVAL_MS only: the frames between are left to
//   keys, and each drawn frame's fixed costs (paint, raster, compositing) come
//   once in nine frames. Text that would be removed by the cap before it is seen
//   (more than `cap` lines waiting behind it) is only parsed, as it arrives,
//   never made into lines.
// - Lines are kept in blocks (div.chunk, CHUNK_LINES lines each) that the
//   browser skips while they are off screen (content-visibility: auto in
//   client.css): a frame lays out and paints the blocks in view only, however
//   long the log. A block becomes skippable one flush after it was closed
//   (_settle): Chromium lays out a new skippable block on screen twice.
// - Far behind a flood (more lines queued behind a piece of text than two
//   screens hold) the text's lines are made lazy: a block (div.chunk.lazy)
//   keeps them as data (their parsed runs) and takes their height in the
//   page, with no line elements; the work of making, styling and dropping
//   elements for lines the player never sees is not done. A lazy block is
//   drawn when it comes near the view (an IntersectionObserver), when
//   something needs every line (logLines, linesFromEnd: search, save log,
//   read back, copy), and, once the game is quiet, in idle time, newest first.
// - The log is never measured after it was changed in the same task: the
//   browser keeps it at its end by scroll anchoring (an end marker,
//   client.css), and keeps the reading position while lines are removed above.
// - At most `cap` lines are kept; older lines are removed (whole blocks, and
//   the first lines of the oldest one).
// - The game's elements (a span for a style, a link, a URL found in text) are
//   bounded too, whatever it sends: a line holds at most MAX_LINE_PARTS of them,
//   a link counting its data's length too (past them the line goes on as plain
//   text), the log MAX_LOG_PARTS (past them the oldest lines become plain text,
//   all of it kept). A game that gives every character a style or a link of its
//   own would make a line of 10,000 elements, and the log 50 million.
// - While the player reads back (the log is not scrolled to its end) the log
//   splits: the upper part stays where it is, a strip below it shows the
//   newest lines, with a button that jumps to the end. Scrolling to the end
//   (or End, see main.js) closes the split.
// - http(s) URLs become links that open in a new tab without a referrer.
// - The game's OSC 8 links (MXP, SPEC 7.1) become links and commands (links.js).

import { AnsiParser, DEFAULT_STYLE, cssColours, escapeEnd, styleClasses } from "./ansi.js";
import { linkParent, outOfTabOrder } from "./links.js";

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/g;
const URL_TRAILING = /[.,;:!?'")\]}>]+$/;
const FRAME_BUDGET_MS = 8; // work per animation frame
const HIDDEN_FLUSH_MS = 250; // animation frames stop in a hidden tab; a timer goes on
const INPUT_BUDGET_MS = 3; // work per frame right after a key: the key's frame comes sooner
const INPUT_RECENT_MS = 150; // "right after"
const FLOOD_INTERVAL_MS = 150; // behind a flood, the log is drawn this often...
const FLOOD_BUDGET_MS = 4.5; // ...with this much work (the same per second as 3 ms every 100 ms)
const TAIL_LINES = 60; // lines copied into the split's lower strip at most (it shows as many as fit)
export const CHUNK_LINES = 50; // lines per block of the log
const PIECE_CHARS = 1024; // game text is drawn in pieces of at most this (the budget is checked between them)
const MAX_LINE_CHARS = 10000; // a longer line goes on in a new line: the cap bounds the page
// The game's elements (styles, links, URLs) in one line: past them the line goes on as plain
// text. An ordinary line holds a few; a map or a rainbow of 100 columns, 100 at most.
export const MAX_LINE_PARTS = 200;
// ...and in the whole log (5,000 lines of a few each, 20 a line on average): past them the
// oldest lines become plain text, so that the log's elements have a ceiling (cap lines and
// blocks, and this) and every line stays (SPEC 7.1: search and save the last 5,000 lines).
export const MAX_LOG_PARTS = 100000;
// A link element holds its data (URL; command, tooltip, menu) two or three times over
// (href or data-command, title, accessible description), and a game's link can be kilobytes:
// a link counts a part more for every this many characters of it.
export const LINK_CHARS_PER_PART = 128;
const CATCH_UP_CHARS = 4 << 20; // more text than this waiting: a frame works longer...
const CATCH_UP_BUDGET_MS = 50; // ...this long (a task stays well under 150 ms, SPEC 7.1)
const LAZY_MARGIN = "50%"; // a lazy block this near the view (of its height) is drawn
const IDLE_DRAW_MS = 1000; // lazy blocks left are drawn in idle time once the game was quiet this long...
const IDLE_SLICE_MS = 8; // ...this much at a time (a key pressed meanwhile waits no longer)
const idle =
  globalThis.requestIdleCallback?.bind(globalThis) ?? ((f) => setTimeout(() => f({ timeRemaining: () => 8 }), 50));

/**
 * Append text runs ([{text, style, link}]) to `parent` as text nodes, spans and
 * links, MAX_LINE_PARTS elements at most (the rest plain text).
 */
export function appendRuns(parent, runs) {
  parent.parts = 0;
  parent.full = false;
  for (const run of runs) put(parent, run.text, run.style, run.link);
}

/** The http(s) URLs in plain text, as [index, url] (trailing punctuation left out). */
function* urlsIn(text) {
  if (!text.includes("://")) return;
  for (const m of text.matchAll(URL_RE)) {
    const url = m[0].replace(URL_TRAILING, "");
    if (url.includes("://") && !url.endsWith("://")) yield [m.index, url];
  }
}

/**
 * How many parts a run makes in a line whose last run's link is `lastLink`:
 * a span for its style, its link's element (unless it goes on in the last
 * one: linkParts), a link for each URL in text that is not the game's link.
 */
function partsOf(text, style, link, lastLink) {
  let n = style !== DEFAULT_STYLE ? 1 : 0;
  if (link && link !== lastLink) n += linkParts(link);
  if (!link) for (const _ of urlsIn(text)) n++;
  return n;
}

/** The parts a link's element counts: 1, and 1 for every LINK_CHARS_PER_PART characters of its data. */
export function linkParts(link) {
  let chars = link.kind === "url" ? link.href.length : link.command.length + link.tooltip.length;
  for (const item of link.menu ?? []) chars += item.label.length + item.command.length;
  return 1 + Math.floor(chars / LINK_CHARS_PER_PART);
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
  for (const [index, url] of urlsIn(text)) {
    if (index > last) target.append(text.slice(last, index));
    const a = document.createElement("a");
    a.href = url;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.textContent = url;
    target.append(a);
    last = index + url.length;
  }
  if (last < text.length) target.append(text.slice(last));
}

// A lazy line is a record {cls, runs: [{text, style, link, plain}], note, el,
// parts, full}: what a line element would hold (`note`: a line of our own,
// plain text), and `el`, the element once it was drawn. A line (element or
// record) counts the game's elements it holds (`parts`) and is `full` when it
// goes on as plain text.

function isRecord(line) {
  return line.runs !== undefined;
}

/** A lazy line (cls: as emptyLine's). */
export function lineRecord(cls) {
  return { cls, runs: [], el: null, parts: 0, full: false };
}

/**
 * Text into a line: an element, or a lazy line's runs. A run whose elements
 * (partsOf) would take the line past MAX_LINE_PARTS is plain text, and so is
 * the rest of the line (`plain`: a run that was made plain so).
 */
export function put(line, text, style, link, plain = false) {
  const record = isRecord(line);
  if (!plain && !line.full) {
    const parts = line.parts ?? 0;
    const lastLink = record ? line.runs.at(-1)?.link : line.lastChild?.mudLink;
    const more = partsOf(text, style, link, lastLink ?? null);
    if (parts + more <= MAX_LINE_PARTS) {
      line.parts = parts + more;
      if (record) line.runs.push({ text, style, link, plain: false });
      else appendRun(line, text, style, link);
      return;
    }
  }
  line.full = true;
  if (record) {
    const last = line.runs.at(-1);
    if (last?.plain) last.text += text;
    else line.runs.push({ text, style: DEFAULT_STYLE, link: null, plain: true });
  } else if (line.lastChild?.nodeType === 3) { // (a text node: one, not one a run)
    line.lastChild.appendData(text);
  } else {
    line.append(text);
  }
}

/** A line's text made plain: its elements go, its text stays (one text node, one run). */
export function flatten(line) {
  if (!line.parts) return;
  line.parts = 0;
  line.full = true;
  if (isRecord(line)) {
    line.runs = [{ text: line.runs.map((run) => run.text).join(""), style: DEFAULT_STYLE, link: null, plain: true }];
  } else {
    line.replaceChildren(line.textContent);
  }
}

/** An empty line element (cls: "command", "notice", or none for game text). */
function emptyLine(cls) {
  const div = document.createElement("div");
  div.className = cls ? `line ${cls}` : "line";
  return div;
}

/** Into a line element, what a lazy line holds. */
function fill(div, rec) {
  if (rec.note !== undefined) div.append(rec.note);
  else for (const run of rec.runs) put(div, run.text, run.style, run.link, run.plain);
  return div;
}

function lineElement(rec) {
  return fill(emptyLine(rec.cls), rec);
}

/** Whether the log element `log` holds lazy blocks. */
function hasLazy(log) {
  return log.querySelector(":scope > .chunk.lazy") !== null;
}

/** How many lines a block holds (lazy or drawn). */
function linesIn(chunk) {
  return chunk.records ? chunk.records.length : chunk.childElementCount;
}

/** The game's elements a block's lines hold (lazy or drawn). */
function partsIn(chunk) {
  let n = 0;
  for (const line of chunk.records ?? chunk.children) n += line.parts ?? 0;
  return n;
}

/** A lazy block (div.chunk.lazy) gets its line elements; any other is left as it is. */
function drawBlock(chunk) {
  const records = chunk.records;
  if (!records) return;
  chunk.records = undefined;
  chunk.append(...records.map((rec) => (rec.el = lineElement(rec))));
  chunk.classList.remove("lazy");
}

/**
 * Every line element of the log element `log`, oldest first: lazy blocks are
 * drawn first. The one way for other modules (search, save log) to read the
 * log's lines.
 */
export function logLines(log) {
  for (const chunk of log.querySelectorAll(":scope > .chunk.lazy")) drawBlock(chunk);
  return log.querySelectorAll(".line");
}

/** The log's line elements newest first (read back): only the blocks reached are drawn. */
export function* linesFromEnd(log) {
  for (let c = log.lastElementChild; c; c = c.previousElementSibling) {
    if (!c.classList.contains("chunk")) continue;
    drawBlock(c);
    for (let l = c.lastElementChild; l; l = l.previousElementSibling) yield l;
  }
}

export class OutputLog {
  /**
   * log: the scrolling element; tail: the split's lower strip; jump: the
   * "newest output" button; prompt: where `prompt` events are shown;
   * onSplit(open): told when the split opens or closes.
   *
   * The log holds blocks (div.chunk) of lines (div.line), then an empty
   * div.log-end; other modules read the lines through logLines() and
   * linesFromEnd() (lazy blocks hold no elements until drawn).
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
    this.lines = 0; // lines in the log
    this.chunk = null; // the block new lines go into
    this.queuedLines = 0; // newlines in the queued text
    this.lastKey = -Infinity; // when the player last pressed a key
    this.keyWaits = false; // a key was pressed since the last frame
    this.behind = false; // the last flush left text queued (a flood)
    this.drawnAt = -Infinity; // the frame time of the last flush
    this.idleTimer = 0;
    this.closing = []; // blocks closed in the last flush, made skippable (.full) in the next
    // A lazy block near the view is drawn before it is seen.
    this.near = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          if (e.isIntersecting || !e.target.records) {
            this.near.unobserve(e.target);
            drawBlock(e.target);
          }
        }
      },
      { root: log, rootMargin: `${LAZY_MARGIN} 0px` },
    );
    // What the player copies holds the lines of lazy blocks too, and a screen reader
    // moving through the log (Alt+L puts the focus in it) finds every line.
    document.addEventListener(
      "copy",
      () => {
        if (getSelection().containsNode(log, true)) logLines(log);
      },
      { capture: true },
    );
    log.addEventListener("focusin", () => {
      logLines(log);
    });
    this.endMark = document.createElement("div");
    this.endMark.className = "log-end";
    this.endMark.setAttribute("aria-hidden", "true");
    log.append(this.endMark);
    log.addEventListener("scroll", () => this._onScroll(), { passive: true });
    jump.addEventListener("click", () => this.scrollToEnd());
    // A key gets the next frame to itself, then a smaller budget for a while.
    addEventListener(
      "keydown",
      () => {
        this.lastKey = performance.now();
        this.keyWaits = true;
      },
      { capture: true, passive: true },
    );
    // The log changes size (window, on-screen keyboard, font, the split itself):
    // a log that follows the output stays at its end.
    this._measure(); // (before anything is drawn: a replay can come first)
    new ResizeObserver(() => {
      this._measure();
      if (!this.split) this._toEnd();
    }).observe(log);
  }

  /** The log's height (clientHeight) and a line's (px), as they are after a layout. */
  _measure() {
    this.height = this.el.clientHeight;
    const style = getComputedStyle(this.el);
    this.lineHeight = parseFloat(style.fontSize) * parseFloat(style.getPropertyValue("--line-height")) || 20;
  }

  /** Game text (an `echo` event's message). */
  write(text) {
    // One event can hold a whole read of the game (64 KB, ~800 lines): it is
    // queued in pieces, so that a frame's budget is kept (the parser carries a
    // style or an escape sequence across pieces).
    for (let at = 0; at < text.length; ) {
      let end = at + PIECE_CHARS;
      if (end >= text.length) end = text.length;
      else {
        const nl = text.lastIndexOf("\n", end - 1);
        if (nl > at) end = nl + 1;
        else if (/[\ud800-\udbff]/.test(text[end - 1])) end--; // not between a surrogate pair
        // Nor inside an escape sequence (an OSC 8 link's URI may be kilobytes): the piece goes on to its end.
        const esc = text.lastIndexOf("\x1b", end - 1);
        if (esc >= at) end = Math.max(end, escapeEnd(text, esc));
      }
      const piece = text.slice(at, end);
      const lines = countNewlines(piece);
      this.queue.push({ text: piece, lines });
      this.queuedLines += lines;
      at = end;
    }
    this.queuedChars += text.length;
    this._skipUnseen();
    this._schedule();
  }

  /** The current prompt (a `prompt` event's message), shown apart from the log. */
  prompt(text) {
    this.queue.push({ prompt: text });
    this._schedule();
  }

  /**
   * A new game session begins here (in the order of what is queued): the last one's prompt
   * is taken away, and its colours and open line do not go on into the new one's text.
   */
  newSession() {
    this.queue.push({ prompt: null });
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
    this.frame = requestAnimationFrame((now) => {
      // A key gets this frame to itself; behind a flood, the log is drawn at most
      // every FLOOD_INTERVAL_MS (the frames between cost nothing).
      const wait = this.keyWaits || (this.behind && now - this.drawnAt < FLOOD_INTERVAL_MS - 4);
      if (!wait) {
        this.drawnAt = now;
        return this._flush(this._budget());
      }
      this.keyWaits = false;
      this.frame = 0;
      clearTimeout(this.timer);
      this._schedule();
    });
    // Hidden, nobody watches the page stutter: draw all that waits (browsers run
    // background timers rarely, and the queue must not grow meanwhile).
    this.timer = setTimeout(() => this._flush(document.hidden ? Infinity : this._budget()), HIDDEN_FLUSH_MS);
  }

  /**
   * Queued text that the cap would remove before it is seen (`cap` lines or more
   * are queued behind it, or more characters than `cap` lines hold: text without
   * newlines) is only parsed (colours go on), here, as it arrives: not in a
   * frame, whose work stays drawing. So the queue holds at most what the log can.
   * (Escape sequences count as characters: of text that is mostly escapes, sent
   * faster than it is drawn, some that would have been seen is only parsed.)
   */
  _skipUnseen() {
    const most = this.cap * MAX_LINE_CHARS;
    let n = 0;
    for (let lines = this.queuedLines, chars = this.queuedChars; n < this.queue.length; n++) {
      const item = this.queue[n];
      if (item.text === undefined) break;
      if (lines - item.lines < this.cap && chars - item.text.length < most) break;
      lines -= item.lines;
      chars -= item.text.length;
    }
    if (!n) return;
    for (const item of this.queue.splice(0, n)) {
      this.queuedChars -= item.text.length;
      this.queuedLines -= item.lines;
      this.parser.feed(item.text);
    }
    this.afterPrompt = false;
    this.openLine = null; // the next line drawn is a line of its own
    this.openChars = 0;
  }

  _budget() {
    if (this.behind) return FLOOD_BUDGET_MS;
    return performance.now() - this.lastKey < INPUT_RECENT_MS ? INPUT_BUDGET_MS : FRAME_BUDGET_MS;
  }

  _flush(budget) {
    cancelAnimationFrame(this.frame);
    clearTimeout(this.timer);
    this.frame = this.timer = 0;
    // Falling behind a game that talks faster than we draw: catch up (text
    // that would be removed unseen is only parsed, below, which is fast)
    // rather than let the queue grow.
    if (this.queuedChars > CATCH_UP_CHARS) budget = Math.max(budget, CATCH_UP_BUDGET_MS);
    // Read before writing: the layout is still the last frame's, so this costs nothing.
    // Scroll anchoring follows the output only once the log has scrolled (offset > 0).
    const follow = !this.split && (this.el.scrollTop === 0 || !this.atEnd());
    this._settle();
    const start = performance.now();
    const fresh = []; // new blocks, not yet in the page
    let freshLines = 0;
    const touched = []; // lines made or added to (for the split's strip)
    let line = this.openLine;
    if (line && isRecord(line) && line.el) line = line.el; // its block was drawn meanwhile
    if (line) touched.push(line);
    // Text with more lines queued behind it than this is far behind: its lines are lazy.
    const farBehind = 2 * Math.ceil(this.height / this.lineHeight) + 10;
    let lazy = false; // the text being drawn is far behind
    let madeLazy = false; // lazy lines were made in this flush
    const newLine = (cls) => {
      const chunk = this.chunk;
      if (!chunk || linesIn(chunk) >= CHUNK_LINES || !!chunk.records !== lazy) {
        if (chunk) this._close(chunk);
        this.chunk = document.createElement("div");
        if (lazy) {
          this.chunk.className = "chunk lazy";
          this.chunk.records = [];
        } else {
          this.chunk.className = "chunk";
        }
        fresh.push(this.chunk);
      }
      let made;
      if (lazy) {
        madeLazy = true;
        made = lineRecord(cls);
        this.chunk.records.push(made);
      } else {
        made = emptyLine(cls);
        this.chunk.append(made);
      }
      this.lines++;
      freshLines++;
      touched.push(made);
      if (touched.length > 2 * TAIL_LINES) touched.splice(0, TAIL_LINES);
      return made;
    };
    // The open line was lazy and the text that goes on with it is not: it goes on in the page.
    const unlazy = (rec) => {
      const chunk = this.chunk; // rec is its last line
      chunk.records.pop();
      this.lines--;
      freshLines--;
      if (!chunk.records.length) {
        const at = fresh.indexOf(chunk);
        if (at >= 0) fresh.splice(at, 1);
        else {
          this.near.unobserve(chunk);
          chunk.remove();
        }
        this.chunk = null;
      }
      const at = touched.indexOf(rec);
      if (at >= 0) touched.splice(at, 1);
      const div = fill(newLine(rec.cls), rec);
      rec.el = div; // (the split's strip replaces its copy of rec)
      return div;
    };
    let done = 0;
    while (done < this.queue.length && performance.now() - start < budget) {
      const item = this.queue[done++];
      if (item.prompt === null) {
        this.promptEl.replaceChildren();
        this.parser.reset();
        this.afterPrompt = false;
        line = null;
        continue;
      }
      if (item.prompt !== undefined) {
        const runs = this.parser.feed(item.prompt);
        this.promptEl.replaceChildren();
        appendRuns(this.promptEl, runs);
        this.afterPrompt = true;
        continue;
      }
      if (item.note !== undefined) {
        lazy = this.queuedLines >= farBehind;
        const note = item.note.slice(0, MAX_LINE_CHARS);
        const made = newLine(item.cls);
        if (lazy) made.note = note;
        else made.append(note);
        line = null;
        continue;
      }
      this.queuedChars -= item.text.length;
      this.queuedLines -= item.lines;
      let text = item.text;
      // The prompt is not in the log, so the newline that ended its line is not either.
      if (this.afterPrompt && text.startsWith("\n")) text = text.slice(1);
      this.afterPrompt = false;
      if (this.queuedLines >= this.cap) {
        // The text still queued fills the log by itself: these lines would be
        // removed before they are seen. Only the parser reads them (colours go on).
        this.parser.feed(text);
        line = null;
        this.openChars = 0;
        continue;
      }
      lazy = this.queuedLines >= farBehind;
      if (!lazy && line && isRecord(line)) line = unlazy(line);
      const runs = this.parser.feed(text);
      for (let r = 0; r < runs.length; r++) {
        let run = runs[r];
        const room = MAX_LINE_CHARS - this.openChars;
        if (line?.full && !run.text.includes("\n") && run.text.length <= room) {
          // The line goes on as plain text (put): the runs that go on in it are put at once,
          // not a node's text grown a character at a time.
          let more = run.text;
          while (r + 1 < runs.length && !runs[r + 1].text.includes("\n") && more.length + runs[r + 1].text.length <= room) {
            more += runs[++r].text;
          }
          run = { text: more, style: DEFAULT_STYLE, link: null };
        }
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
            put(line, part, run.style, run.link);
            this.openChars += part.length;
            rest = rest.slice(part.length);
          }
        }
      }
    }
    this.queue.splice(0, done);
    // More new lines than the cap: the oldest blocks never reach the page.
    while (fresh.length > 1 && freshLines - linesIn(fresh[0]) >= this.cap) {
      const gone = linesIn(fresh.shift());
      freshLines -= gone;
      this.lines -= gone;
    }
    for (const chunk of fresh) {
      if (chunk.records) this.near.observe(chunk);
    }
    if (this.chunk?.records) this.chunk.style.setProperty("--lines", this.chunk.records.length);
    if (fresh.length) this.endMark.before(...fresh);
    this._trim();
    this._lighten();
    // Lines far behind were made lazy, and the lines drawn after them may not fill
    // the screen (the work stopped in or just after them): the end of the log is drawn.
    if (madeLazy && !this.split) this._drawEnd();
    if (line && isRecord(line) && line.el) line = line.el;
    this.openLine = this.chunk ? line : null;
    if (this.split) {
      this.unseen += freshLines;
      this._addToTail(touched);
    } else if (follow) {
      this._toEnd(); // (the end marker keeps the log at its end once it is there)
    }
    this.behind = this.queue.length > 0;
    if (this.behind) this._schedule();
    else if (hasLazy(this.el)) this._drawIdleSoon();
  }

  /** A block no more lines go into: skipped off screen (client.css), its height and parts known. */
  _close(chunk) {
    chunk.style.setProperty("--lines", linesIn(chunk));
    chunk.parts = partsIn(chunk);
    if (this.split) chunk.classList.add("full"); // (new blocks go below the view)
    else this.closing.push(chunk);
  }

  /**
   * Following the game, blocks closed in the last flush become skippable off
   * screen (.full, client.css) only now: a block that is new in the page and
   * skippable is first laid out skipped, found on screen, and laid out again in
   * the same frame (Chromium's content-visibility: auto), twice the work for
   * every block a flood brings on screen. (Reading back, a block made skippable
   * while on screen can move the view: those wait until the split closes.)
   */
  _settle() {
    if (this.split) return;
    for (const chunk of this.closing) chunk.classList.add("full");
    this.closing = [];
  }

  /**
   * The end of the log, as far up as a lazy block would be drawn for being near
   * the view (a screenful and LAZY_MARGIN), is drawn: the last lines of a lazy
   * block go into a block of their own.
   */
  _drawEnd() {
    let need = Math.ceil((1.5 * this.height) / this.lineHeight) + 2;
    for (let c = this.endMark.previousElementSibling; c && need > 0; c = c.previousElementSibling) {
      const n = linesIn(c);
      if (c.records && n > need) {
        const block = document.createElement("div");
        block.className = "chunk";
        block.append(...c.records.splice(n - need).map((rec) => (rec.el = lineElement(rec))));
        c.after(block);
        if (c === this.chunk) this.chunk = block;
        else this._close(block);
        this._close(c);
        break;
      }
      need -= n;
      drawBlock(c);
    }
  }

  /** Once the game is quiet, the lazy blocks left are drawn in idle time, newest first. */
  _drawIdleSoon() {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => idle((deadline) => this._drawIdle(deadline)), IDLE_DRAW_MS);
  }

  _drawIdle(deadline) {
    if (this.queue.length) return; // text came: the flush after it calls again
    const lazy = this.el.querySelectorAll(":scope > .chunk.lazy");
    let i = lazy.length - 1;
    const until = performance.now() + IDLE_SLICE_MS;
    for (; i >= 0 && deadline.timeRemaining() > 2 && performance.now() < until; i--) drawBlock(lazy[i]);
    if (i >= 0) idle((d) => this._drawIdle(d));
  }

  /**
   * Past the cap, remove the oldest lines: whole blocks, then the first lines
   * of the oldest block left. (That block, off screen, keeps the height it
   * had until it is drawn again: a top a few lines too tall, never a jump
   * where the player reads.)
   */
  _trim() {
    let excess = this.lines - this.cap;
    if (excess <= 0) return;
    this.lines = this.cap;
    let first = this.el.firstElementChild;
    let last = null;
    for (let c = first; c !== this.endMark && linesIn(c) <= excess; c = c.nextElementSibling) {
      excess -= linesIn(c);
      this.near.unobserve(c);
      last = c;
    }
    const range = document.createRange();
    if (last) {
      range.setStartBefore(first);
      range.setEndAfter(last);
      range.deleteContents();
      first = this.el.firstElementChild;
    }
    if (excess > 0 && first.records) {
      first.records.splice(0, excess);
      first.style.setProperty("--lines", first.records.length);
    } else if (excess > 0) {
      range.setStartBefore(first.firstElementChild);
      range.setEndAfter(first.children[excess - 1]);
      range.deleteContents();
    }
    if (excess > 0) first.parts = partsIn(first);
    // The open line is the last line of the last block: it went if its block did.
    if (this.chunk && !this.chunk.isConnected) this.chunk = this.openLine = null;
  }

  /**
   * Past MAX_LOG_PARTS of the game's elements in the log, the oldest blocks' lines become
   * plain text (flatten), their text kept. Never the open block: it holds CHUNK_LINES *
   * MAX_LINE_PARTS at most, a tenth of the bound.
   */
  _lighten() {
    let total = 0;
    for (let c = this.el.firstElementChild; c !== this.endMark; c = c.nextElementSibling) {
      total += c === this.chunk ? partsIn(c) : (c.parts ?? partsIn(c));
    }
    for (let c = this.el.firstElementChild; total > MAX_LOG_PARTS && c !== this.chunk; c = c.nextElementSibling) {
      if (!c.parts) continue;
      total -= c.parts;
      for (const line of c.records ?? c.children) flatten(line);
      c.parts = 0;
    }
  }

  _toEnd() {
    this.el.scrollTop = this.el.scrollHeight;
  }

  _onScroll() {
    // A scroll that comes with a change of the log's size (a bar opening, the on-screen
    // keyboard, the window) is the browser's, not the player's: a log that followed the
    // game goes on following it (the resize observer may only run after this).
    const height = this.el.clientHeight;
    const resized = height !== this.height;
    this.height = height;
    const end = this.atEnd();
    if (end && this.split) this._setSplit(false);
    else if (!end && !this.split) {
      if (resized) this._toEnd();
      else this._setSplit(true);
    }
  }

  _setSplit(open) {
    if (open === this.split) return;
    this.split = open;
    this.unseen = 0;
    // Reading back, every line may hold the reading position; following, only the end does.
    this.el.classList.toggle("reading", open);
    if (open) this._drawTail();
    else {
      this.tail.replaceChildren();
      this._drawEnd(); // (lines made lazy while the player read back)
    }
    this.onSplit(open);
    this._drawJump();
  }

  /** How many lines the split's strip holds: no more than the log above it shows (client.css). */
  _tailLines() {
    return Math.min(TAIL_LINES, Math.ceil(this.height / this.lineHeight) + 2);
  }

  /** The split's strip: copies of the last lines. */
  _drawTail() {
    const copies = [];
    const want = this._tailLines();
    for (let c = this.endMark.previousElementSibling; c && copies.length < want; c = c.previousElementSibling) {
      const lines = c.records ?? c.children; // (a lazy block's lines are copied from its records)
      for (let i = lines.length - 1; i >= 0 && copies.length < want; i--) copies.push(lines[i]);
    }
    this.tail.replaceChildren(...copies.reverse().map((l) => this._copy(l)));
    this._drawJump();
  }

  /** New and changed lines (in order; the first may be the line that was open) into the strip. */
  _addToTail(lines) {
    const tail = this.tail;
    const last = tail.lastElementChild;
    // The line the game went on with was copied before: its copy is replaced.
    if (lines.length && last && (last.original === lines[0] || last.original.el === lines[0])) last.remove();
    const want = this._tailLines();
    const copies = lines
      .slice(-want)
      .filter((l) => isRecord(l) || l.isConnected)
      .map((l) => this._copy(l));
    tail.append(...copies);
    const excess = tail.childElementCount - want;
    if (excess > 0) {
      const range = document.createRange();
      range.setStartBefore(tail.firstElementChild);
      range.setEndAfter(tail.children[excess - 1]);
      range.deleteContents();
    }
    this._drawJump();
  }

  _copy(line) {
    const copy = isRecord(line) ? lineElement(line) : line.cloneNode(true);
    copy.original = line; // a property, not markup
    outOfTabOrder(copy); // copies in an aria-hidden strip: clickable, not focusable
    return copy;
  }

  _drawJump() {
    this.jump.textContent = this.unseen
      ? `▼ ${this.unseen} new line${this.unseen === 1 ? "" : "s"} (End)`
      : "▼ Newest output (End)";
  }
}

function countNewlines(text) {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}
