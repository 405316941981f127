// Unit tests of trigger matching, the rate limit and game lines (gateway/web/triggers.js),
// the kept commands (commandlog.js), the tools store (tools_store.js) and search (search.js).

import { test } from "node:test";
import assert from "node:assert/strict";
import { LineSplitter, RateLimiter, matchLines, triggerCommands } from "../../../gateway/web/triggers.js";
import { CommandMemory } from "../../../gateway/web/commandlog.js";
import { ToolsStore, checkTools } from "../../../gateway/web/tools_store.js";
import { findMatches } from "./find_matches.mjs";

test("game text becomes plain lines: ANSI gone, partial lines wait, prompts are lines", () => {
  const s = new LineSplitter();
  assert.deepEqual(s.text("\x1b[31mAn orc\x1b[0m arrives.\nHalf"), ["An orc arrives."]);
  assert.deepEqual(s.text(" a line\n"), ["Half a line"]);
  assert.deepEqual(s.prompt("<100hp> "), ["<100hp> "]);
  assert.deepEqual(s.text("\nnext\n"), ["next"]); // the prompt's newline is no empty line
  assert.deepEqual(s.text("\x1b[3"), []);
  assert.deepEqual(s.text("2mgreen\n"), ["green"]); // an escape split over two messages
});

test("matchLines: groups of the first match, ranges of all, empty matches skipped", () => {
  const hits = matchLines({ source: "(\\w+) arrives", flags: "" }, ["Bob arrives.", "nothing", "Al arrives, Cy arrives"]);
  assert.deepEqual(hits, [
    { line: 0, groups: ["Bob"], ranges: [[0, 11]] },
    { line: 2, groups: ["Al"], ranges: [[0, 10], [12, 22]] },
  ]);
  assert.deepEqual(matchLines({ source: "GOLD", flags: "i" }, ["some gold"]), [{ line: 0, groups: [], ranges: [[5, 9]] }]);
  assert.deepEqual(matchLines({ source: "x*", flags: "" }, ["ab"]), [{ line: 0, groups: [], ranges: [] }]);
  assert.deepEqual(matchLines({ source: "(a)|(b)", flags: "" }, ["b"])[0].groups, ["", "b"]);
});

test("trigger commands: split on ;; first, then groups filled in", () => {
  assert.deepEqual(triggerCommands("say hi $1;;bow $1", ["Bob"]), ["say hi Bob", "bow Bob"]);
  // Game text holding ;; fills a word; it never adds a command.
  assert.deepEqual(triggerCommands("say $1", ["x;;quit"]), ["say x;;quit"]);
  assert.deepEqual(triggerCommands("say $*", ["a", "b"]), ["say a b"]);
});

test("rate limit: 10 in any second, then refused, free again as the window slides", () => {
  const r = new RateLimiter(10, 1000);
  const allowed = [];
  for (let i = 0; i < 15; i++) allowed.push(r.take(i * 10));
  assert.deepEqual(allowed, [...Array(10).fill(true), ...Array(5).fill(false)]);
  assert.equal(r.take(999), false);
  assert.equal(r.take(1000), true); // the first use (at 0) left the window
  assert.equal(r.take(1001), false);
  assert.equal(r.take(1010), true);
});

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(k) { return this.items.has(k) ? this.items.get(k) : null; }
  setItem(k, v) { this.items.set(k, String(v)); }
}

test("kept commands come back between the same events after a reload", () => {
  const storage = new MemoryStorage();
  const m = new CommandMemory(storage, "k");
  m.add(0, "first", "command");
  m.add(3, "look", "command");
  m.add(3, "north", "command trigger");
  m.add(7, "last", "command");
  m.seen = 7;
  m.save();
  const back = new CommandMemory(storage, "k");
  assert.equal(back.seen, 7);
  const shown = [];
  for (const seq of [1, 2, 3, 4, 7]) {
    shown.push(...back.takeBefore(seq).map((c) => c.text), `<${seq}>`);
    shown.push(...back.takeAfter(seq).map((c) => c.text));
  }
  assert.deepEqual(shown, ["first", "<1>", "<2>", "<3>", "look", "north", "<4>", "<7>", "last"]);
  back.clear();
  assert.deepEqual(new CommandMemory(storage, "k").commands, []);
});

test("kept commands: a replay that starts late still shows the earlier ones first", () => {
  const storage = new MemoryStorage();
  const m = new CommandMemory(storage, "k");
  m.add(2, "early", "command");
  const back = new CommandMemory(storage, "k");
  assert.deepEqual(back.takeBefore(50).map((c) => c.text), ["early"]);
  storage.setItem("k", '{"commands":[{"seq":1,"text":"x","cls":"command\\" onclick"}]}');
  assert.deepEqual(new CommandMemory(storage, "k").commands, []);
});

test("the tools store: per game, replaced by name or pattern, bad entries left out", () => {
  const storage = new MemoryStorage();
  const a = new ToolsStore(storage, "demo");
  assert.equal(a.setAlias("k", "kill $1"), false);
  assert.equal(a.setAlias("k", "kick $1"), true);
  a.set("triggers", { source: "x", flags: "", commands: "y" });
  a.set("highlights", { source: "gold", flags: "i", colour: "gold" });
  assert.deepEqual(new ToolsStore(storage, "demo").tools, a.tools);
  assert.deepEqual(new ToolsStore(storage, "other").tools, { aliases: [], triggers: [], highlights: [] });
  const exported = a.exportJson();
  const b = new ToolsStore(new MemoryStorage(), "demo");
  assert.deepEqual(b.importJson(exported), { added: 3, errors: [] });
  assert.deepEqual(b.tools, a.tools);
  const { tools, errors } = checkTools({
    aliases: [{ name: "ok", text: "fine" }, { name: "two words", text: "x" }, { name: "#x", text: "y" }],
    triggers: [{ source: "(", commands: "x" }, { source: "a", flags: "g", commands: "x" }, { source: "b" }],
    highlights: [{ source: "c", colour: "red;x" }, { source: "d", colour: "#ABCDEF" }],
  });
  assert.deepEqual(tools, { aliases: [{ name: "ok", text: "fine" }], triggers: [], highlights: [{ source: "d", flags: "", colour: "#abcdef" }] });
  assert.equal(errors.length, 6);
  assert.deepEqual(b.importJson("{oops").added, 0);
  assert.deepEqual(b.disable({ source: "x", flags: "" }, "too slow"), ["triggers"]);
  assert.deepEqual(b.active("triggers"), []);
});

test("search: case-insensitive plain text, every occurrence, regex characters literal", () => {
  assert.deepEqual(findMatches(["An Orc", "orc and ORC", "none"], "orc"), [
    { line: 0, start: 3, end: 6 }, { line: 1, start: 0, end: 3 }, { line: 1, start: 8, end: 11 },
  ]);
  assert.deepEqual(findMatches(["a.b (x) [y]/z", "axb"], ".b (x) [y]/"), [{ line: 0, start: 1, end: 12 }]);
  assert.deepEqual(findMatches(["x"], ""), []);
});
