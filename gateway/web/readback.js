// Reading back the latest lines without leaving the input line (SPEC 7.1),
// as VIPMud, MUSHclient and Mudlet's screen-reader mode do: Alt+1 reads the
// newest line, Alt+2 the one before it, ... Alt+9, and Alt+0 the tenth; the
// text goes out through the live region (announce.js). Alt+L moves the focus
// between the input line and the newest line of the log.
//
// Keys are matched by their position (KeyboardEvent.code: "Digit1", "KeyL"),
// so Option+1 on a Mac, which types "¡", works too.

import { linesFromEnd } from "./output.js";

/** How many lines back the read-back keys reach (Alt+1..Alt+9, Alt+0). */
export const READBACK_KEYS = 10;

/**
 * What a key press means: {read: N} (the Nth newest line, 1..10), {toggle:
 * true} (input line <-> log), or null (not ours). `e`: {code, altKey,
 * ctrlKey, metaKey, shiftKey}, as a KeyboardEvent has them.
 */
export function readBackKey(e) {
  if (!e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return null;
  const m = /^Digit([0-9])$/.exec(e.code || "");
  if (m) return { read: m[1] === "0" ? 10 : Number(m[1]) };
  if (e.code === "KeyL") return { toggle: true };
  return null;
}

/**
 * The text to read for the Nth newest line (n >= 1) of `lines` (oldest
 * first, as the log shows them; blank lines are skipped: a reader says
 * nothing useful for them). No such line: a short message saying so.
 */
export function readBackText(lines, n) {
  let seen = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const text = String(lines[i]).trim();
    if (!text) continue;
    if (++seen === n) return text;
  }
  return seen === 0 ? "No output yet." : `No line ${n}: only ${seen} line${seen === 1 ? "" : "s"}.`;
}

/**
 * The keys in the page: Alt+1..Alt+0 say the Nth newest line of `log` (its
 * `.line` children) through `announcer`, the focus staying where it is;
 * Alt+L moves the focus from the input line to the newest line of the log
 * (where a screen reader's reading cursor then starts) and back. flush():
 * draws text still waiting, so the newest line is there.
 */
export function installReadBack({ log, input, announcer, flush = () => {} }) {
  document.addEventListener("keydown", (e) => {
    const what = readBackKey(e);
    if (!what) return;
    e.preventDefault();
    flush();
    if (what.read) {
      announcer.say(readBackText(latestLines(log, what.read), what.read));
    } else if (log.contains(document.activeElement)) {
      input.focus();
    } else {
      const line = newestLine(log);
      if (line) {
        line.tabIndex = -1;
        line.addEventListener("blur", () => line.removeAttribute("tabindex"), { once: true });
        line.focus();
      } else {
        log.focus();
      }
    }
  });
}

/** The texts of the log's last lines, enough to hold `n` non-blank ones (oldest first). */
function latestLines(log, n) {
  const lines = [];
  let found = 0;
  for (const el of linesFromEnd(log)) {
    if (found >= n) break;
    const text = el.textContent;
    lines.unshift(text);
    if (text.trim()) found++;
  }
  return lines;
}

function newestLine(log) {
  for (const el of linesFromEnd(log)) if (el.textContent.trim()) return el;
  return null;
}
