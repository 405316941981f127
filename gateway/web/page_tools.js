// The player tools and scrollback tools, wired into the page for main.js:
// typed lines through aliases and `#` commands, game text to the triggers
// (once per event, also across a reload), highlights, the settings panel,
// search, "Save log", and the player's commands kept for a reload.

import { CommandMemory } from "./commandlog.js";
import { Highlighter } from "./highlight.js";
import { Matcher } from "./matcher.js";
import { saveLog } from "./savelog.js";
import { LogSearch } from "./search.js";
import { ToolsPanel } from "./settings.js";
import { PlayerTools } from "./tools.js";
import { ToolsStore } from "./tools_store.js";
import { LineSplitter } from "./triggers.js";

const $ = (id) => document.getElementById(id);

export class PageTools {
  /**
   * game: its name; log: the OutputLog; send(command, cls): main.js's way
   * to send a line (and show it with class `cls`); focusInput(): back to
   * the input line.
   */
  constructor({ game, log, send, focusInput }) {
    this.log = log;
    this.sendLine = send;
    this.memory = new CommandMemory(sessionStorage, `mud-gateway:commands:${game}`);
    this.lastSeq = 0; // of the last event shown
    this.splitter = new LineSplitter();
    const store = new ToolsStore(localStorage, game);
    const matcher = new Matcher({
      onStuck: (pattern) => this.tools.stuck(pattern),
      onBroken: (why) => log.note(`Triggers and highlights cannot run here: ${why}.`, "notice"),
    });
    this.tools = new PlayerTools({
      store,
      matcher,
      send: (command, from) => send(command, from === "trigger" ? "command trigger" : "command"),
      note: (text, cls) => (cls.startsWith("command") ? this.command(text, cls) : log.note(text, cls)),
    });
    new Highlighter({ log: $("log"), store, matcher });
    new ToolsPanel({ store, game, run: (parsed) => this.tools.run(parsed) });
    new LogSearch({
      log: $("log"),
      bar: $("search"),
      field: $("search-field"),
      count: $("search-count"),
      prev: $("search-prev"),
      next: $("search-next"),
      close: $("search-close"),
      toggle: $("search-toggle"),
      done: focusInput,
    });
    $("save-log").addEventListener("click", () => {
      log.flushNow();
      saveLog($("log"), game);
      focusInput();
    });
    addEventListener("pagehide", () => this.memory.save());
  }

  /** A line the player typed; `secret` (echo off): sent exactly as typed, kept nowhere. */
  typed(text, secret) {
    if (secret) this.sendLine(text, null);
    else this.tools.typed(text);
  }

  /** Show the player's own line in the log, set apart, and keep it for a reload. */
  command(text, cls = "command") {
    for (const c of this.memory.takeAll()) this.log.note(c.text, c.cls);
    this.log.note(text, cls);
    this.memory.add(this.lastSeq, text, cls);
  }

  /** Before an event is shown: restored commands typed before it. */
  beforeEvent(payload) {
    if (typeof payload.seq !== "number") return;
    for (const c of this.memory.takeBefore(payload.seq)) this.log.note(c.text, c.cls);
  }

  /** After an event is shown: triggers (once per event, even across a reload), restored commands after it. */
  afterEvent(name, payload) {
    if (typeof payload.seq !== "number") return;
    this.lastSeq = payload.seq;
    if (name === "echo" || name === "prompt") {
      const fresh = payload.seq > this.memory.seen;
      if (fresh) this.memory.seen = payload.seq;
      // Without triggers the text is not parsed a second time (floods).
      if (this.tools.hasTriggers()) {
        const lines = name === "echo" ? this.splitter.text(payload.message) : this.splitter.prompt(payload.message);
        if (fresh) this.tools.gameLines(lines);
      }
    }
    for (const c of this.memory.takeAfter(payload.seq)) this.log.note(c.text, c.cls);
  }

  /** The join reply: a new session owns none of the kept commands. */
  joined(response) {
    if (!response.resumed) {
      this.memory.clear();
      this.lastSeq = 0;
      this.splitter = new LineSplitter();
    }
  }
}
