// The player tools at work: a typed line becomes game commands or runs a
// client `#` command (commands.js), game lines fire triggers (matched in the
// worker, matcher.js), and trigger commands pass the rate limit (triggers.js).
// What is defined lives in the ToolsStore (tools_store.js).

import { HELP, expandAliases, interpretLine, patternText } from "./commands.js";
import { RateLimiter, TRIGGER_RATE, triggerCommands } from "./triggers.js";

const DROP_NOTICE_MS = 1000; // dropped trigger commands are counted and told once a second
const MAX_WAITING = 20000; // game lines waiting for the triggers; older ones are skipped, with a notice

export class PlayerTools {
  /**
   * store: a ToolsStore; matcher: a Matcher; send(command, from): one line
   * to the game (from: "player" or "trigger"); note(text, cls): a line of
   * the client's own in the log; now(): milliseconds (for the rate limit).
   */
  constructor({ store, matcher, send, note, now = () => performance.now() }) {
    this.store = store;
    this.matcher = matcher;
    this.send = send;
    this.note = note;
    this.now = now;
    this.limiter = new RateLimiter(TRIGGER_RATE, 1000);
    this.dropped = 0;
    this.dropTimer = 0;
    this.lines = []; // game lines waiting for the triggers
    this.busy = false;
  }

  /** A line the player typed while echo is on. */
  typed(line) {
    const r = interpretLine(line, this.store.aliasMap());
    if (r.client) {
      this.note(line, "command client");
      this.run(r.client);
      return;
    }
    for (const command of r.commands) this.send(command, "player");
    if (r.error) this.note(`Stopped: ${r.error}.`, "notice");
  }

  /** Whether any trigger listens to game text. */
  hasTriggers() {
    return this.store.tools.triggers.some((t) => !t.disabled);
  }

  /** Complete lines of game text (plain, no ANSI) for the triggers. */
  gameLines(lines) {
    if (!lines.length || !this.hasTriggers()) return;
    for (const line of lines) this.lines.push(line);
    const over = this.lines.length - MAX_WAITING;
    if (over > 0) {
      this.lines.splice(0, over);
      this.note(`Triggers skipped ${over} game lines: they came faster than they could be matched.`, "notice");
    }
    this._pump();
  }

  async _pump() {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.lines.length) {
        const lines = this.lines.splice(0);
        const fired = []; // [line, order, trigger, groups]
        const triggers = this.store.active("triggers");
        for (let order = 0; order < triggers.length; order++) {
          const hits = await this.matcher.match(triggers[order], lines);
          for (const hit of hits || []) fired.push([hit.line, order, triggers[order], hit.groups]);
        }
        fired.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        for (const [, , trigger, groups] of fired) this._fire(trigger, groups);
      }
    } finally {
      this.busy = false;
    }
  }

  _fire(trigger, groups) {
    const aliases = this.store.aliasMap();
    for (const piece of triggerCommands(trigger.commands, groups)) {
      const { commands, error } = expandAliases(piece, aliases);
      for (const command of commands) {
        if (this.limiter.take(this.now())) this.send(command, "trigger");
        else this._drop();
      }
      if (error) this.note(`Trigger ${patternText(trigger)} stopped: ${error}.`, "notice");
    }
  }

  _drop() {
    this.dropped++;
    if (this.dropTimer) return;
    this.dropTimer = setTimeout(() => {
      const n = this.dropped;
      this.dropped = 0;
      this.dropTimer = 0;
      this.note(`${n} trigger command${n === 1 ? "" : "s"} dropped: more than ${TRIGGER_RATE} a second.`, "notice");
    }, DROP_NOTICE_MS);
  }

  /** A pattern the matcher had to stop: disabled, and the player told. */
  stuck(pattern) {
    const kinds = this.store.disable(pattern, "stopped: matching took over a second (a pattern that backtracks without end?)");
    const what = kinds.map((k) => k.slice(0, -1)).join(" and ") || "pattern";
    this.note(
      `The ${what} ${patternText(pattern)} is disabled: matching one game line took over a second ` +
        "(a pattern that backtracks without end?). Change it and add it again.",
      "notice",
    );
  }

  /** Run a parsed `#` command (commands.js parseClientCommand); answers go to the log. */
  run(c) {
    const store = this.store;
    const say = (text) => this.note(text, "notice");
    if (c.error) return say(c.error);
    switch (c.name) {
      case "alias":
        return say(`${store.setAlias(c.alias, c.text) ? "Changed" : "New"} alias: ${c.alias} = ${c.text}`);
      case "unalias":
        return say(store.removeAlias(c.alias) ? `Removed alias ${c.alias}` : `No alias ${c.alias}`);
      case "trigger": {
        const t = { source: c.source, flags: c.flags, commands: c.commands };
        return say(`${store.set("triggers", t) ? "Changed" : "New"} trigger: ${patternText(t)} → ${c.commands}`);
      }
      case "highlight": {
        const h = { source: c.source, flags: c.flags, colour: c.colour };
        return say(`${store.set("highlights", h) ? "Changed" : "New"} highlight: ${patternText(h)} in ${c.colour}`);
      }
      case "untrigger":
      case "unhighlight": {
        const kind = c.name === "untrigger" ? "triggers" : "highlights";
        const p = patternText(c);
        return say(store.remove(kind, c) ? `Removed ${kind.slice(0, -1)} ${p}` : `No ${kind.slice(0, -1)} ${p}`);
      }
      case "list":
        return this._list();
      case "help":
        for (const line of HELP) say(line);
        return undefined;
      default:
        return undefined;
    }
  }

  _list() {
    const { aliases, triggers, highlights } = this.store.tools;
    const off = (e) => (e.disabled ? ` (disabled: ${e.disabled})` : "");
    const out = [`Aliases (${aliases.length}):`, ...aliases.map((a) => `  ${a.name} = ${a.text}`)];
    out.push(`Triggers (${triggers.length}):`, ...triggers.map((t) => `  ${patternText(t)} → ${t.commands}${off(t)}`));
    out.push(`Highlights (${highlights.length}):`, ...highlights.map((h) => `  ${patternText(h)} in ${h.colour}${off(h)}`));
    for (const line of out) this.note(line, "notice");
  }
}
