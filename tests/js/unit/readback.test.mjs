// Unit tests of the screen-reader parts that need no page: which line a
// read-back key reads (gateway/web/readback.js) and what one burst of game
// text announces (gateway/web/announce.js's burstText).

import { test } from "node:test";
import assert from "node:assert/strict";
import { READBACK_KEYS, readBackKey, readBackText } from "../../../gateway/web/readback.js";
import { MAX_LINES, burstText } from "../../../gateway/web/announce.js";

const key = (code, mods = {}) => ({ code, altKey: true, ctrlKey: false, metaKey: false, shiftKey: false, ...mods });

test("Alt+1..Alt+9 read the 1st..9th newest line, Alt+0 the 10th; Alt+L switches input and log", () => {
  for (let n = 1; n <= 9; n++) assert.deepEqual(readBackKey(key(`Digit${n}`)), { read: n });
  assert.deepEqual(readBackKey(key("Digit0")), { read: 10 });
  assert.equal(READBACK_KEYS, 10);
  assert.deepEqual(readBackKey(key("KeyL")), { toggle: true });
});

test("other keys and other modifiers are not read-back keys", () => {
  assert.equal(readBackKey(key("Digit1", { altKey: false })), null);
  assert.equal(readBackKey(key("Digit1", { ctrlKey: true })), null); // Ctrl+Alt+1: AltGr on some layouts
  assert.equal(readBackKey(key("Digit1", { shiftKey: true })), null);
  assert.equal(readBackKey(key("Digit1", { metaKey: true })), null);
  assert.equal(readBackKey(key("KeyK")), null);
  assert.equal(readBackKey(key("Numpad1")), null);
  assert.deepEqual(readBackKey({ code: "Digit1", altKey: true }), { read: 1 }); // a plain object as well as an event
});

test("the Nth newest non-blank line is read; blank lines are skipped", () => {
  const lines = ["first", "", "second  ", "   ", "third"];
  assert.equal(readBackText(lines, 1), "third");
  assert.equal(readBackText(lines, 2), "second");
  assert.equal(readBackText(lines, 3), "first");
  assert.equal(readBackText(lines, 4), "No line 4: only 3 lines.");
  assert.equal(readBackText(["only"], 2), "No line 2: only 1 line.");
  assert.equal(readBackText([], 1), "No output yet.");
  assert.equal(readBackText(["", " "], 1), "No output yet.");
});

test("a burst says its non-blank lines", () => {
  assert.equal(burstText("You see a door.\r\n\nA goblin arrives.\n".replace("\r", "")), "You see a door.\nA goblin arrives.");
  assert.equal(burstText(""), "");
  assert.equal(burstText("\n \n"), "");
});

test("a flood says only the last lines of its burst, after how many were skipped", () => {
  const text = Array.from({ length: 500 }, (_, i) => `line ${i}`).join("\n");
  const said = burstText(text);
  const lines = said.split("\n");
  assert.equal(lines[0], `${500 - MAX_LINES} lines skipped.`);
  assert.deepEqual(lines.slice(1), Array.from({ length: MAX_LINES }, (_, i) => `line ${500 - MAX_LINES + i}`));
  assert.equal(burstText("a\nb\nc", { maxLines: 2 }), "1 line skipped.\nb\nc");
  assert.equal(burstText("a\nb", { skippedBefore: 40 }), "40 lines skipped.\na\nb");
  assert.equal(burstText("", { skippedBefore: 3 }), "3 lines skipped.");
});

test("a flood of long lines is cut to maxChars, at a line start", () => {
  const long = "x".repeat(1500);
  const said = burstText(`${long}\n${long}\nend`, { maxChars: 2000 });
  assert.equal(said, `1 line skipped.\n${long}\nend`); // the first long line does not fit whole
  assert.ok(burstText("y".repeat(5000), { maxChars: 100 }).length <= 100);
});

test("a pad button's name starts with its visible label (WCAG 2.5.3)", async () => {
  const { padLabel } = await import("../../../gateway/web/panels.js");
  assert.equal(padLabel("NW", "northwest", false), "NW (northwest)");
  assert.equal(padLabel("NW", "northwest", true), "NW (northwest, exit)");
  assert.equal(padLabel("Up", "up", true), "Up (exit)");
  assert.equal(padLabel("Look", "look", false), "Look");
});
