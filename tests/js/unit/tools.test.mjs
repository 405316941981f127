// Unit tests of the player tools at work (gateway/web/tools.js) with the
// matching run in-process (the page runs it in a worker), and a check that no
// client module turns text into code.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { PlayerTools } from "../../../gateway/web/tools.js";
import { ToolsStore } from "../../../gateway/web/tools_store.js";
import { matchLines } from "../../../gateway/web/triggers.js";

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(k) { return this.items.has(k) ? this.items.get(k) : null; }
  setItem(k, v) { this.items.set(k, String(v)); }
}

function tools(now = () => 0) {
  const sent = [];
  const notes = [];
  const t = new PlayerTools({
    store: new ToolsStore(new MemoryStorage(), "g"),
    matcher: { match: async (pattern, lines) => matchLines(pattern, lines) },
    send: (command, from) => sent.push([from, command]),
    note: (text, cls) => notes.push([cls, text]),
    now,
  });
  return { t, sent, notes };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

test("typed lines: # commands change the tools, other lines go out expanded", async () => {
  const { t, sent, notes } = tools();
  t.typed("#alias k kill $1;;loot $1");
  t.typed("k orc;;##x");
  assert.deepEqual(sent, [["player", "kill orc"], ["player", "loot orc"], ["player", "##x"]]);
  assert.deepEqual(notes[0], ["command client", "#alias k kill $1;;loot $1"]);
  assert.deepEqual(notes[1], ["notice", "New alias: k = kill $1;;loot $1"]);
  t.typed("#nonsense");
  assert.match(notes.at(-1)[1], /unknown command #nonsense/);
});

test("triggers fire in line order, then trigger order, with aliases and no injected commands", async () => {
  const { t, sent } = tools();
  t.typed("#alias greet say hi $1");
  t.typed("#trigger /^(\\S+) arrives/ greet $1");
  t.typed("#trigger /arrives/ nod");
  assert.equal(t.hasTriggers(), true);
  t.gameLines(["Bob arrives", "nothing", "x;;quit arrives"]);
  await settle();
  assert.deepEqual(sent, [
    ["trigger", "say hi Bob"], ["trigger", "nod"], ["trigger", "say hi x;;quit"], ["trigger", "nod"],
  ]);
});

test("over 10 trigger commands a second: dropped and counted in one notice", async () => {
  let clock = 0;
  const { t, sent, notes } = tools(() => clock);
  t.typed("#trigger /^spam (\\d+)$/ a $1;;b $1");
  t.gameLines(Array.from({ length: 8 }, (_, i) => `spam ${i}`));
  await settle();
  assert.equal(sent.length, 10);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  assert.deepEqual(notes.at(-1), ["notice", "6 trigger commands dropped: more than 10 a second."]);
  clock = 1000;
  t.gameLines(["spam 9"]);
  await settle();
  assert.deepEqual(sent.slice(10), [["trigger", "a 9"], ["trigger", "b 9"]]);
});

test("a stuck pattern is disabled with a notice; #list shows it", () => {
  const { t, notes } = tools();
  t.typed("#trigger /^(a+)+$/ x");
  t.typed("#highlight /^(a+)+$/ red");
  t.stuck({ source: "^(a+)+$", flags: "" });
  assert.match(notes.at(-1)[1], /The trigger and highlight \/\^\(a\+\)\+\$\/ is disabled/);
  assert.equal(t.hasTriggers(), false);
  t.typed("#list");
  assert.ok(notes.some(([, text]) => text.includes("(disabled: stopped")));
});

test("no client module evaluates text as code or writes HTML", () => {
  const dir = new URL("../../../gateway/web/", import.meta.url);
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".js"))) {
    const src = readFileSync(new URL(name, dir), "utf8");
    for (const bad of [/\beval\s*\(/, /\bnew\s+Function\b/, /\bFunction\s*\(/, /\.innerHTML\b/, /\.outerHTML\b/, /insertAdjacentHTML/, /setTimeout\s*\(\s*["'`]/]) {
      assert.ok(!bad.test(src), `${name} matches ${bad}`);
    }
  }
});
