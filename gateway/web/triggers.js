// Triggers and highlights, the pure parts (no DOM): game text cut into plain
// lines, patterns matched against lines, the commands a trigger sends, and
// the rate limit on them. The matching itself runs in a Web Worker
// (match_worker.js via matcher.js) so that a pattern that backtracks without
// end can be stopped.

import { AnsiParser } from "./ansi.js";
import { splitStack, substitute } from "./commands.js";

export const TRIGGER_RATE = 10; // trigger commands a second
export const MAX_LINE = 10000; // characters of a line given to patterns (as output.js cuts lines)
// Highlight spans in one line (highlight.js), and so the ranges a pattern gives a line: a pattern
// such as /./ matches every character, a span each, 50 million in a full log. 20 a line keep the
// log's 5,000 lines to 100,000 of them, as many as the game's own elements (output.js).
export const MAX_LINE_HIGHLIGHTS = 20;

/**
 * Game text (`echo` messages, `prompt`s) -> complete lines of plain text
 * (ANSI removed). A line without its newline waits for the rest; a prompt
 * is a line of its own (with anything waiting before it), and the newline
 * that ended the prompt's line is not a second, empty line.
 */
export class LineSplitter {
  constructor() {
    this.parser = new AnsiParser();
    this.partial = "";
    this.afterPrompt = false;
  }

  /** The lines an `echo` message completes. */
  text(message) {
    let plain = this._plain(message);
    if (this.afterPrompt && plain.startsWith("\n")) plain = plain.slice(1);
    if (plain) this.afterPrompt = false;
    const pieces = (this.partial + plain).split("\n");
    this.partial = pieces.pop();
    if (this.partial.length > MAX_LINE) {
      pieces.push(this.partial);
      this.partial = "";
    }
    return pieces;
  }

  /** The line a `prompt` message is. */
  prompt(message) {
    const line = this.partial + this._plain(message);
    this.partial = "";
    this.afterPrompt = true;
    return [line];
  }

  _plain(message) {
    let s = "";
    for (const run of this.parser.feed(message)) s += run.text;
    return s;
  }
}

/**
 * Match `lines` against `patterns` ([{source, flags}]): for each pattern in
 * order, [{line, groups, ranges}] for the lines it matches, where groups are
 * the first match's groups ($1..) and ranges the first MAX_LINE_HIGHLIGHTS
 * matches' [start, end) (empty matches left out). This is what the worker runs.
 */
export function matchLines(pattern, lines) {
  const re = new RegExp(pattern.source, `${pattern.flags || ""}g`);
  const hits = [];
  for (let line = 0; line < lines.length; line++) {
    const text = lines[line].length > MAX_LINE ? lines[line].slice(0, MAX_LINE) : lines[line];
    re.lastIndex = 0;
    let groups = null;
    const ranges = [];
    for (let m = re.exec(text); m && ranges.length < MAX_LINE_HIGHLIGHTS; m = re.exec(text)) {
      if (groups === null) groups = m.slice(1).map((g) => g ?? "");
      if (m[0].length === 0) re.lastIndex++;
      else ranges.push([m.index, m.index + m[0].length]);
    }
    if (groups !== null) hits.push({ line, groups, ranges });
  }
  return hits;
}

/**
 * The commands a trigger sends for a match: its COMMANDS split on `;;`
 * first, then `$1`..`$9` filled from the groups (`$*`: all groups), so
 * game text can fill in words but never add a command.
 */
export function triggerCommands(commands, groups) {
  return splitStack(commands).map((piece) => substitute(piece, groups, groups.join(" ")).text);
}

/** At most `rate` uses in any `windowMs` (a sliding window of times). */
export class RateLimiter {
  constructor(rate = TRIGGER_RATE, windowMs = 1000) {
    this.rate = rate;
    this.windowMs = windowMs;
    this.times = [];
  }

  /** Whether one more use is allowed at `now` (ms); counts it if so. */
  take(now) {
    while (this.times.length && now - this.times[0] >= this.windowMs) this.times.shift();
    if (this.times.length >= this.rate) return false;
    this.times.push(now);
    return true;
  }
}
