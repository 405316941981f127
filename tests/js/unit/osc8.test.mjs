// OSC 8 links in the browser client's ANSI parser (gateway/web/ansi.js, SPEC 7.1).
// Run with Node's test runner: `node --test tests/js/unit/`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { AnsiParser, DEFAULT_STYLE, parseLinkUri } from "../../../gateway/web/ansi.js";

const ST = "\x1b\\";
const open = (uri) => `\x1b]8;;${uri}${ST}`;
const close = `\x1b]8;;${ST}`;
const parse = (...chunks) => {
  const p = new AnsiParser();
  return chunks.flatMap((c) => p.feed(c));
};

test("a send: link: its text carries the decoded command, the rest does not", () => {
  const runs = parse(`go ${open("send:look%20at%20%C3%A9")}look${close} now`);
  assert.deepEqual(runs.map((r) => r.text), ["go ", "look", " now"]);
  assert.equal(runs[0].link, null);
  assert.deepEqual({ ...runs[1].link }, { kind: "send", command: "look at é", tooltip: "", menu: [] });
  assert.equal(runs[2].link, null);
});

test("styles inside a link keep the link; BEL ends an OSC 8 as ST does", () => {
  const runs = parse(`\x1b]8;id=1;prompt:say%20\x07a\x1b[1mb\x1b[0m\x1b]8;;\x07c`);
  assert.deepEqual(runs.map((r) => r.text), ["a", "b", "c"]);
  assert.equal(runs[0].link, runs[1].link);
  assert.equal(runs[1].link.kind, "prompt");
  assert.equal(runs[1].link.command, "say ");
  assert.equal(runs[1].style.bold, true);
  assert.equal(runs[2].link, null);
});

test("an OSC 8 cut across feeds is completed by the next one", () => {
  const runs = parse("x\x1b]8;;send:n", `orth${ST}n${close}`);
  assert.deepEqual(runs.map((r) => [r.text, r.link && r.link.command]), [["x", null], ["n", "north"]]);
});

test("http and https only; any other scheme is plain text", () => {
  assert.deepEqual({ ...parseLinkUri("https://ex.example/a?b=1") }, { kind: "url", href: "https://ex.example/a?b=1" });
  assert.equal(parseLinkUri("HTTP://ex.example/").kind, "url");
  for (const uri of ["javascript:alert(1)", "data:text/html,<b>", "vbscript:x", "file:///etc/passwd",
                     "//ex.example", "ftp://x", "https:", "", "java\nscript:alert(1)", "sendx:a", "SEND:a"]) {
    assert.equal(parseLinkUri(uri), null, uri);
  }
  const runs = parse(`${open("javascript:alert(1)")}click${close}`);
  assert.deepEqual(runs.map((r) => [r.text, r.link]), [["click", null]]);
});

test("a command with a control character, or malformed escapes, is no link", () => {
  for (const uri of ["send:a%0Ab", "send:a%09b", "send:a%7Fb", "send:a%C2%9Bb", "send:%E0%A4%A", "send:", "prompt:%0D"]) {
    assert.equal(parseLinkUri(uri), null, uri);
  }
});

test("config: tooltip and menu, each menu entry a send:/prompt: URI", () => {
  const config = encodeURIComponent(JSON.stringify({
    tooltip: "Trade", menu: [{ "Buy it": "send:buy%20sword" }, { "Bad": "javascript:x" }, { "Ctl": "send:a%0A" },
                             { "Sell it": "send:sell%20sword" }, "junk", null],
  }));
  const link = parseLinkUri(`send:buy%20sword?config=${config}`);
  assert.equal(link.command, "buy sword");
  assert.equal(link.tooltip, "Trade");
  assert.deepEqual(link.menu.map((m) => ({ ...m })), [
    { label: "Buy it", kind: "send", command: "buy sword" },
    { label: "Sell it", kind: "send", command: "sell sword" },
  ]);
  // a config that is not JSON leaves a link without a menu
  assert.deepEqual(parseLinkUri("send:x?config=%7Bnot").menu, []);
  // "?" in a command is always encoded: a literal one is not a config
  assert.equal(parseLinkUri("send:what%3F").command, "what?");
});

test("reset forgets an open link", () => {
  const p = new AnsiParser();
  p.feed(`${open("send:a")}x`);
  p.reset();
  const runs = p.feed("y");
  assert.equal(runs[0].link, null);
  assert.equal(runs[0].style, DEFAULT_STYLE);
});
