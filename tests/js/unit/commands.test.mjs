// Unit tests of the player tools' pure parts: `;;` splitting, `#` commands,
// alias expansion (gateway/web/commands.js), and that docs/client.md holds #help's text.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  HELP, MAX_ALIAS_DEPTH, expandAliases, interpretLine, parseClientCommand, parseColour, parsePattern,
  splitStack, substitute,
} from "../../../gateway/web/commands.js";

test(";; splits, trims and drops empty pieces; a line without it stays as typed", () => {
  assert.deepEqual(splitStack("north;;east ;; say hi"), ["north", "east", "say hi"]);
  assert.deepEqual(splitStack("a;;;;b;;"), ["a", "b"]);
  assert.deepEqual(splitStack("  say  spaced  "), ["  say  spaced  "]);
  assert.deepEqual(splitStack(""), [""]);
  assert.deepEqual(splitStack("say a;b"), ["say a;b"]);
});

test("an empty line still sends a bare newline", () => {
  assert.deepEqual(interpretLine("", new Map()).commands, [""]);
});

test("## sends a literal #, untouched", () => {
  assert.deepEqual(interpretLine("##help me;;now", new Map([["help", "x"]])).commands, ["#help me;;now"]);
});

test("# lines are client commands", () => {
  assert.deepEqual(interpretLine("#alias k kill $1", new Map()).client, { name: "alias", alias: "k", text: "kill $1" });
  assert.deepEqual(parseClientCommand("#unalias k"), { name: "unalias", alias: "k" });
  assert.deepEqual(parseClientCommand("#trigger /^(\\w+) arrives\\.$/ say hi $1;;bow $1"), {
    name: "trigger", source: "^(\\w+) arrives\\.$", flags: "", commands: "say hi $1;;bow $1",
  });
  assert.deepEqual(parseClientCommand("#untrigger /^(\\w+) arrives\\.$/"), {
    name: "untrigger", source: "^(\\w+) arrives\\.$", flags: "",
  });
  assert.deepEqual(parseClientCommand("#highlight /gold/i Gold"), { name: "highlight", source: "gold", flags: "i", colour: "gold" });
  assert.deepEqual(parseClientCommand("#HIGHLIGHT /a\\/b/ #FFaa00"), { name: "highlight", source: "a\\/b", flags: "", colour: "#ffaa00" });
  assert.deepEqual(parseClientCommand("#unhighlight /gold/i"), { name: "unhighlight", source: "gold", flags: "i" });
  assert.deepEqual(parseClientCommand("#list"), { name: "list" });
  assert.deepEqual(parseClientCommand("#help"), { name: "help" });
});

test("bad # commands answer with why and how", () => {
  assert.match(parseClientCommand("#alias k").error, /usage: #alias NAME TEXT/);
  assert.match(parseClientCommand("#alias #x y").error, /cannot start with #/);
  assert.match(parseClientCommand("#trigger gold say").error, /\/REGEX\//);
  assert.match(parseClientCommand("#trigger /gold/").error, /usage: #trigger/);
  assert.match(parseClientCommand("#trigger /(/ x").error, /not a valid regular expression/);
  assert.match(parseClientCommand("#trigger /a/g x").error, /only the i flag/);
  assert.match(parseClientCommand("#highlight /a/ url(x)").error, /not a colour/);
  assert.match(parseClientCommand("#highlight /a/ red;background:url(x)").error, /not a colour/);
  assert.match(parseClientCommand("#untrigger /a/ extra").error, /usage/);
  assert.match(parseClientCommand("#frobnicate").error, /unknown command #frobnicate/);
  assert.match(parseClientCommand("#").error, /unknown command/);
});

test("patterns: escaped slashes, the i flag, an unclosed one", () => {
  assert.deepEqual(parsePattern("/a\\/b/ rest of it"), { source: "a\\/b", flags: "", rest: "rest of it" });
  assert.deepEqual(parsePattern("/x/i"), { source: "x", flags: "i", rest: "" });
  assert.match(parsePattern("/abc").error, /no closing/);
  assert.match(parsePattern("//").error, /empty/);
});

test("colours: CSS names and #rrggbb only", () => {
  assert.equal(parseColour("Red"), "red");
  assert.equal(parseColour("#00ff7F"), "#00ff7f");
  for (const bad of ["#fff", "rgb(1,2,3)", "redd", "", "red;", "expression(x)"]) assert.equal(parseColour(bad), null, bad);
});

test("substitute: $1..$9 and $*, missing ones empty", () => {
  assert.deepEqual(substitute("kill $1 with $2$3", ["orc", "axe"]), { text: "kill orc with axe", used: true });
  assert.deepEqual(substitute("say $*", ["a", "b"]), { text: "say a b", used: true });
  assert.deepEqual(substitute("look", ["x"]), { text: "look", used: false });
});

test("aliases: first word, arguments, ;; in the text, words appended without placeholders", () => {
  const aliases = new Map([["k", "kill $1;;loot $1"], ["gg", "get gold"], ["t", "tell $1 $*"], ["l", "look"]]);
  assert.deepEqual(interpretLine("k orc;;gg", aliases).commands, ["kill orc", "loot orc", "get gold"]);
  assert.deepEqual(interpretLine("t bob hi there", aliases).commands, ["tell bob bob hi there"]);
  assert.deepEqual(interpretLine("l at sword", aliases).commands, ["look at sword"]);
  assert.deepEqual(interpretLine("say k orc", aliases).commands, ["say k orc"]); // not the first word
  assert.deepEqual(interpretLine("K orc", aliases).commands, ["K orc"]); // names are case-sensitive
});

test("an argument holding ;; does not add a command", () => {
  const aliases = new Map([["s", "say $*"]]);
  assert.deepEqual(interpretLine("s a", aliases).commands, ["say a"]);
  assert.deepEqual(expandAliases("s x ;; quit", aliases).commands, ["say x ;; quit"]);
});

test("aliases calling aliases, and a loop stops with a message", () => {
  const aliases = new Map([["a", "b $1"], ["b", "say $1"]]);
  assert.deepEqual(interpretLine("a hi", aliases).commands, ["say hi"]);
  const loop = interpretLine("x", new Map([["x", "y"], ["y", "x"]]));
  assert.match(loop.error, new RegExp(`deeper than ${MAX_ALIAS_DEPTH}`));
  const wide = interpretLine("w", new Map([["w", "v;;v;;v;;v;;v;;v;;v;;v;;v;;v;;v"], ["v", "u;;u;;u;;u;;u;;u;;u;;u;;u;;u"], ["u", "n"]]));
  assert.match(wide.error, /more than 100 commands/);
  assert.equal(wide.commands.length, 100);
});

test("#help lists every key the page handles (SPEC 7.1), the game links' keys too", () => {
  const help = HELP.join("\n");
  for (const key of ["Enter", "Up/Down", "PageUp/PageDown", "End", "Ctrl+F", "Shift+Enter", "Escape",
    "Alt+1", "Alt+0", "Alt+L", "Space", "Shift+F10", "menu key"]) {
    assert.ok(help.includes(key), `#help does not say what ${key} does`);
  }
});

test("docs/client.md lists #help's lines as they are", () => {
  const docs = readFileSync(new URL("../../../docs/client.md", import.meta.url), "utf8");
  for (const line of HELP) assert.ok(docs.includes(line), `docs/client.md lacks: ${line}`);
});
