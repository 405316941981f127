// The player's aliases, triggers and highlights, kept per game in
// localStorage (`mud-gateway:tools:<game>`), exported and imported as JSON.
// Everything loaded or imported is checked as a typed `#` command would be:
// names, patterns (compiled, never run here) and colours; a bad entry is
// left out with a message, never kept half-valid.

import { parseColour, regexError, patternText } from "./commands.js";

export const FORMAT = "mud-gateway-tools";
const MAX_ENTRIES = 500; // of each kind
const MAX_TEXT = 2000; // characters of a name, pattern, command text

const samePattern = (a, b) => a.source === b.source && (a.flags || "") === (b.flags || "");

/** The tools an untrusted object (stored or imported JSON) holds: {tools, errors}. */
export function checkTools(data) {
  const tools = { aliases: [], triggers: [], highlights: [] };
  const errors = [];
  if (!data || typeof data !== "object") return { tools, errors: ["not a JSON object"] };
  const str = (v) => typeof v === "string" && v.length > 0 && v.length <= MAX_TEXT;
  const list = (name) => (Array.isArray(data[name]) ? data[name].slice(0, MAX_ENTRIES) : []);
  const pattern = (e, what) => {
    if (!str(e.source)) return `${what}: no pattern`;
    const flags = e.flags === undefined || e.flags === "" ? "" : e.flags;
    if (flags !== "" && flags !== "i") return `${what} ${patternText(e)}: only the i flag is known`;
    const bad = regexError(e.source, flags);
    return bad ? `${what} ${patternText(e)}: ${bad}` : "";
  };
  for (const e of list("aliases")) {
    if (!e || !str(e.name) || /\s/.test(e.name) || e.name.startsWith("#") || e.name.includes(";;") || !str(e.text)) {
      errors.push(`alias ${JSON.stringify(e && e.name)}: needs a name (one word, not #...) and a text`);
    } else if (!tools.aliases.some((a) => a.name === e.name)) {
      tools.aliases.push({ name: e.name, text: e.text });
    }
  }
  for (const e of list("triggers")) {
    const bad = e ? pattern(e, "trigger") || (str(e.commands) ? "" : `trigger ${patternText(e)}: no commands`) : "trigger: not an object";
    if (bad) errors.push(bad);
    else if (!tools.triggers.some((t) => samePattern(t, e))) {
      tools.triggers.push(withDisabled({ source: e.source, flags: e.flags || "", commands: e.commands }, e));
    }
  }
  for (const e of list("highlights")) {
    let bad = e ? pattern(e, "highlight") : "highlight: not an object";
    const colour = !bad && parseColour(typeof e.colour === "string" ? e.colour : "");
    if (!bad && !colour) bad = `highlight ${patternText(e)}: ${JSON.stringify(e.colour)} is not a colour`;
    if (bad) errors.push(bad);
    else if (!tools.highlights.some((h) => samePattern(h, e))) {
      tools.highlights.push(withDisabled({ source: e.source, flags: e.flags || "", colour }, e));
    }
  }
  return { tools, errors };
}

function withDisabled(entry, from) {
  if (typeof from.disabled === "string" && from.disabled) entry.disabled = from.disabled.slice(0, MAX_TEXT);
  return entry;
}

/** One game's tools in `storage` (localStorage); listeners hear every change. */
export class ToolsStore {
  constructor(storage, game) {
    this.storage = storage;
    this.key = `mud-gateway:tools:${game}`;
    this.game = game;
    this.listeners = [];
    let data = null;
    try {
      data = JSON.parse(storage.getItem(this.key) || "null");
    } catch {
      data = null;
    }
    this.tools = data ? checkTools(data).tools : { aliases: [], triggers: [], highlights: [] };
  }

  onChange(fn) {
    this.listeners.push(fn);
  }

  /** Aliases as a Map NAME -> TEXT (for commands.js). */
  aliasMap() {
    return new Map(this.tools.aliases.map((a) => [a.name, a.text]));
  }

  /** Triggers and highlights that are not disabled. */
  active(kind) {
    return this.tools[kind].filter((e) => !e.disabled);
  }

  setAlias(name, text) {
    const i = this.tools.aliases.findIndex((a) => a.name === name);
    const entry = { name, text };
    if (i >= 0) this.tools.aliases[i] = entry;
    else this.tools.aliases.push(entry);
    this._changed("aliases");
    return i >= 0;
  }

  removeAlias(name) {
    return this._remove("aliases", (a) => a.name === name);
  }

  /** Add or replace (by pattern) a trigger {source, flags, commands} or highlight {source, flags, colour}. */
  set(kind, entry) {
    const list = this.tools[kind];
    const i = list.findIndex((e) => samePattern(e, entry));
    if (i >= 0) list[i] = entry;
    else list.push(entry);
    this._changed(kind);
    return i >= 0;
  }

  remove(kind, pattern) {
    return this._remove(kind, (e) => samePattern(e, pattern));
  }

  /** Mark a pattern (in triggers and highlights) disabled with the reason; returns the kinds it was in. */
  disable(pattern, reason) {
    const kinds = [];
    for (const kind of ["triggers", "highlights"]) {
      for (const e of this.tools[kind]) {
        if (samePattern(e, pattern) && !e.disabled) {
          e.disabled = reason;
          kinds.push(kind);
        }
      }
    }
    for (const kind of kinds) this._changed(kind);
    return kinds;
  }

  exportJson() {
    return JSON.stringify({ format: FORMAT, version: 1, game: this.game, ...this.tools }, null, 2);
  }

  /** Merge JSON text in (entries with the same name or pattern are replaced): {added, errors}. */
  importJson(text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch (e) {
      return { added: 0, errors: [`not JSON: ${e.message}`] };
    }
    const { tools, errors } = checkTools(data);
    let added = 0;
    for (const a of tools.aliases) {
      this.tools.aliases = this.tools.aliases.filter((x) => x.name !== a.name);
      this.tools.aliases.push(a);
      added++;
    }
    for (const kind of ["triggers", "highlights"]) {
      for (const e of tools[kind]) {
        this.tools[kind] = this.tools[kind].filter((x) => !samePattern(x, e));
        this.tools[kind].push(e);
        added++;
      }
    }
    for (const kind of ["aliases", "triggers", "highlights"]) this._changed(kind);
    return { added, errors };
  }

  _remove(kind, match) {
    const before = this.tools[kind].length;
    this.tools[kind] = this.tools[kind].filter((e) => !match(e));
    if (this.tools[kind].length === before) return false;
    this._changed(kind);
    return true;
  }

  _changed(kind) {
    for (const key of ["aliases", "triggers", "highlights"]) {
      if (this.tools[key].length > MAX_ENTRIES) this.tools[key].splice(0, this.tools[key].length - MAX_ENTRIES);
    }
    try {
      this.storage.setItem(this.key, JSON.stringify(this.tools));
    } catch {
      // storage full or disabled: the tools last for this page
    }
    for (const fn of this.listeners) fn(kind);
  }
}
