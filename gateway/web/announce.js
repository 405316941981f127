// What a screen reader hears (SPEC 7.1): a visually hidden live region that
// gets only the NEW game text and prompts, as plain text (ANSI stripped by
// ansi.js's parser; set with textContent). The log itself is not a live
// region, so nothing is said twice.
//
// - Text is collected for BATCH_MS after the first of a burst, then said at
//   once: one announcement instead of one per network message.
// - A flood is not read for an hour: of a burst only the last MAX_LINES
//   lines (and MAX_CHARS characters) are said, after "N lines skipped." The
//   skipped ones stay in the log (read-back keys, readback.js, or the log).
//   The client's own lines (notices, #help) come after them, up to 50 lines.
// - Polite by default; assertive is a setting, since some readers skip
//   polite announcements while the player types.

import { AnsiParser } from "./ansi.js";

export const BATCH_MS = 150;
export const MAX_LINES = 10;
export const MAX_CHARS = 2000;
const MAX_NOTE_LINES = 50; // the client's own lines (#help, #list) are said in full, up to this
const MAX_RAW = 16 * 1024; // raw text kept per burst: its end (the rest is only counted); ~2 ms to parse
const KEPT = 3; // announcements left in the region (older ones are removed, which is not announced)

/**
 * What one burst says (pure): the non-blank lines of `text`, at most the last
 * `maxLines` and `maxChars` of them, after "N lines skipped." when some were
 * left out (`skippedBefore`: lines already dropped before `text`). "" if
 * there is nothing to say.
 */
export function burstText(text, { maxLines = MAX_LINES, maxChars = MAX_CHARS, skippedBefore = 0 } = {}) {
  const lines = [];
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t) lines.push(t);
  }
  let kept = lines.slice(-maxLines);
  let body = kept.join("\n");
  if (body.length > maxChars) {
    body = body.slice(body.length - maxChars);
    const nl = body.indexOf("\n");
    if (nl >= 0 && nl < body.length - 1) body = body.slice(nl + 1); // start at a line
    kept = body.split("\n");
  }
  const skipped = skippedBefore + lines.length - kept.length;
  if (!body) return skipped ? `${skipped} line${skipped === 1 ? "" : "s"} skipped.` : "";
  return skipped ? `${skipped} line${skipped === 1 ? "" : "s"} skipped.\n${body}` : body;
}

function countNewlines(text) {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

export class Announcer {
  /** region: the live region's element (in the page from the start: readers watch it from then on). */
  constructor(region, { batchMs = BATCH_MS, maxLines = MAX_LINES, maxChars = MAX_CHARS } = {}) {
    this.region = region;
    this.batchMs = batchMs;
    this.limits = { maxLines, maxChars };
    this.parser = new AnsiParser();
    this.chunks = []; // {raw, kind: "text" | "prompt"}
    this.notes = []; // the client's own lines, plain text
    this.rawChars = 0;
    this.droppedLines = 0; // lines in chunks dropped over MAX_RAW
    this.cut = false; // chunks were dropped: the parser starts over at a line
    this.timer = 0;
    region.setAttribute("aria-live", "polite");
    region.setAttribute("aria-atomic", "false");
  }

  setAssertive(on) {
    this.region.setAttribute("aria-live", on ? "assertive" : "polite");
  }

  /** Game text (an `echo` message, with ANSI codes). */
  text(raw) {
    this._add(raw, "text");
  }

  /** A prompt: said as a line of its own. */
  prompt(raw) {
    this._add(raw, "prompt");
  }

  /** The client's own plain text (a notice, #help): a line of its own. */
  note(text) {
    if (!text) return;
    if (this.notes.length < MAX_NOTE_LINES + 1) this.notes.push(text);
    this._schedule();
  }

  /** Say `text` now, without waiting for the batch (the read-back keys). */
  say(text) {
    this._announce(text);
  }

  _add(raw, kind) {
    if (!raw) return;
    this.chunks.push({ raw, kind });
    this.rawChars += raw.length;
    while (this.rawChars > MAX_RAW) {
      const old = this.chunks[0];
      const drop = this.chunks.length > 1 ? old.raw.length : this.rawChars - MAX_RAW;
      const head = old.raw.slice(0, drop);
      this.droppedLines += old.kind === "text" ? countNewlines(head) : 1;
      if (drop === old.raw.length) this.chunks.shift();
      else old.raw = old.raw.slice(drop); // one huge message: its end
      this.rawChars -= drop;
      this.cut = true;
    }
    this._schedule();
  }

  _schedule() {
    if (!this.timer) this.timer = setTimeout(() => this.flush(), this.batchMs);
  }

  /** Say what was collected (the batch timer calls it). */
  flush() {
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.cut) this.parser.reset();
    let text = "";
    for (const [i, { raw, kind }] of this.chunks.entries()) {
      let chunk = raw;
      if (i === 0 && this.cut && kind === "text") {
        // A chunk whose start was dropped with the ones before: from its first line end on.
        const nl = chunk.indexOf("\n");
        if (nl >= 0) this.droppedLines++; // the rest of a cut line is not said either
        chunk = nl >= 0 ? chunk.slice(nl + 1) : "";
      }
      const plain = this.parser.feed(chunk).map((run) => run.text).join("");
      text += kind === "prompt" ? `\n${plain}\n` : plain;
    }
    const said = burstText(text, { ...this.limits, skippedBefore: this.droppedLines });
    const notes = burstText(this.notes.join("\n"), { maxLines: MAX_NOTE_LINES, maxChars: 4 * MAX_CHARS });
    this.notes = [];
    this.chunks = [];
    this.rawChars = 0;
    this.droppedLines = 0;
    this.cut = false;
    if (said) this._announce(said);
    if (notes) this._announce(notes);
  }

  _announce(text) {
    const p = document.createElement("p");
    p.textContent = text;
    this.region.append(p);
    while (this.region.childElementCount > KEPT) this.region.firstElementChild.remove();
  }
}

/** The settings panel's checkbox for assertive announcements, kept in `stored`. */
export function assertiveSetting(checkbox, announcer, stored) {
  checkbox.checked = stored.get("announce-assertive", false);
  announcer.setAssertive(checkbox.checked);
  checkbox.addEventListener("change", () => {
    stored.set("announce-assertive", checkbox.checked);
    announcer.setAssertive(checkbox.checked);
  });
}
