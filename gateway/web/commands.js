// What a typed line means (pure, no DOM): `;;` stacking, the client's own
// `#` commands, alias expansion, and the text of `#help`. Triggers and
// aliases are data: a pattern is only ever given to `new RegExp`, a command
// text only has `$1`..`$9`/`$*` replaced; nothing is evaluated.

/** How deep aliases may call aliases, and how many commands one line may become. */
export const MAX_ALIAS_DEPTH = 10;
export const MAX_EXPANDED = 100;

/**
 * `#help`'s text, one entry a line. docs/client.md lists the same lines
 * (tests/js/unit/commands.test.mjs checks it), so keep both in step.
 */
export const HELP = [
  "a;;b — send a, then b",
  "#alias NAME TEXT — NAME at the start of a command sends TEXT ($1..$9: its words, $* all of them)",
  "#unalias NAME — remove the alias",
  "#trigger /REGEX/ COMMANDS — when a game line matches, send COMMANDS (;;-separated, $1..$9: the groups)",
  "#untrigger /REGEX/ — remove the trigger",
  "#highlight /REGEX/ COLOUR — colour what matches (a CSS colour name or #rrggbb)",
  "#unhighlight /REGEX/ — remove the highlight",
  "#list — show aliases, triggers and highlights",
  "#help — this list",
  "##text — send #text to the game",
  "/REGEX/i — the i flag ignores case",
  "Enter — send; Up/Down — history; PageUp/PageDown — scroll the log; End — newest output",
  "Ctrl+F — search the scrollback; Enter/Shift+Enter — next/previous match; Escape — close the search",
  "Alt+1..Alt+9, Alt+0 — say the newest line, the 2nd newest, ..., the 10th (through the screen reader; the focus stays in the input line)",
  "Alt+L — move between the input line and the newest line of the log",
  "Enter or Space on a game's link — use it; Shift+F10 or the menu key — its menu of commands (also right-click, long press)",
  "Previous command, Next command — on touch screens, buttons that walk the history",
];

/** The CSS colour names (CSS Color 4) that `#highlight` takes, besides #rrggbb. */
const COLOUR_NAMES = new Set(
  ("aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet " +
    "brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson cyan darkblue " +
    "darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki darkmagenta darkolivegreen darkorange " +
    "darkorchid darkred darksalmon darkseagreen darkslateblue darkslategray darkslategrey darkturquoise " +
    "darkviolet deeppink deepskyblue dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia " +
    "gainsboro ghostwhite gold goldenrod gray green greenyellow grey honeydew hotpink indianred indigo " +
    "ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan " +
    "lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen lightskyblue " +
    "lightslategray lightslategrey lightsteelblue lightyellow lime limegreen linen magenta maroon " +
    "mediumaquamarine mediumblue mediumorchid mediumpurple mediumseagreen mediumslateblue " +
    "mediumspringgreen mediumturquoise mediumvioletred midnightblue mintcream mistyrose moccasin " +
    "navajowhite navy oldlace olive olivedrab orange orangered orchid palegoldenrod palegreen " +
    "paleturquoise palevioletred papayawhip peachpuff peru pink plum powderblue purple rebeccapurple red " +
    "rosybrown royalblue saddlebrown salmon sandybrown seagreen seashell sienna silver skyblue slateblue " +
    "slategray slategrey snow springgreen steelblue tan teal thistle tomato turquoise violet wheat white " +
    "whitesmoke yellow yellowgreen").split(" "),
);

/** A colour `#highlight` takes, normalised (lower case), or null. */
export function parseColour(text) {
  const c = String(text).trim().toLowerCase();
  if (/^#[0-9a-f]{6}$/.test(c) || COLOUR_NAMES.has(c)) return c;
  return null;
}

/** `a;;b` -> ["a", "b"]: pieces trimmed, empty ones dropped. A line without `;;` stays as it is. */
export function splitStack(line) {
  if (!line.includes(";;")) return [line];
  return line
    .split(";;")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/**
 * A pattern written `/REGEX/` (or `/REGEX/i`) at the start of `text`:
 * {source, flags, rest} (rest: what follows, trimmed), or {error}.
 * A `/` inside the pattern is written `\/`.
 */
export function parsePattern(text) {
  const s = text.trimStart();
  if (!s.startsWith("/")) return { error: "a pattern is written /REGEX/" };
  let i = 1;
  for (; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === "/") break;
  }
  if (i >= s.length) return { error: "the pattern has no closing /" };
  const source = s.slice(1, i);
  if (source === "") return { error: "the pattern is empty" };
  let after = s.slice(i + 1);
  let flags = "";
  if (/^i(\s|$)/.test(after)) {
    flags = "i";
    after = after.slice(1);
  } else if (after !== "" && !/^\s/.test(after)) {
    return { error: "only the i flag is known (/REGEX/i)" };
  }
  const problem = regexError(source, flags);
  if (problem) return { error: `not a valid regular expression: ${problem}` };
  return { source, flags, rest: after.trim() };
}

/** Why `source` is not a regular expression (compiled, never run), or "". */
export function regexError(source, flags = "") {
  try {
    new RegExp(source, flags);
    return "";
  } catch (e) {
    return e.message;
  }
}

/** `/source/flags` as the player writes it. */
export function patternText({ source, flags }) {
  return `/${source}/${flags || ""}`;
}

/**
 * A line that starts with `#`, as a client command:
 * {name: "alias", alias: NAME, text}, {name: "unalias", alias},
 * {name: "trigger", source, flags, commands}, {name: "untrigger", source, flags},
 * {name: "highlight", source, flags, colour}, {name: "unhighlight", source, flags},
 * {name: "list"}, {name: "help"}, or {error} (with the usage).
 */
export function parseClientCommand(line) {
  const m = /^#(\S*)\s*(.*)$/s.exec(line.trim());
  const name = m[1].toLowerCase();
  const args = m[2];
  switch (name) {
    case "alias": {
      const a = /^(\S+)\s+(\S.*)$/s.exec(args);
      if (!a) return { error: "usage: #alias NAME TEXT" };
      if (a[1].startsWith("#")) return { error: "an alias name cannot start with #" };
      if (a[1].includes(";;")) return { error: "an alias name cannot hold ;;" };
      return { name, alias: a[1], text: a[2].trim() };
    }
    case "unalias":
      if (!/^\S+$/.test(args)) return { error: "usage: #unalias NAME" };
      return { name, alias: args };
    case "trigger":
    case "highlight": {
      const p = parsePattern(args);
      const usage = name === "trigger" ? "#trigger /REGEX/ COMMANDS" : "#highlight /REGEX/ COLOUR";
      if (p.error) return { error: `${p.error} (usage: ${usage})` };
      if (!p.rest) return { error: `usage: ${usage}` };
      if (name === "trigger") return { name, source: p.source, flags: p.flags, commands: p.rest };
      const colour = parseColour(p.rest);
      if (!colour) return { error: `${p.rest} is not a colour: a CSS colour name or #rrggbb` };
      return { name, source: p.source, flags: p.flags, colour };
    }
    case "untrigger":
    case "unhighlight": {
      const p = parsePattern(args);
      if (p.error || p.rest) return { error: `usage: #${name} /REGEX/` };
      return { name, source: p.source, flags: p.flags };
    }
    case "list":
    case "help":
      return { name };
    default:
      return { error: `unknown command #${m[1]}: #help lists them (## sends a line that starts with #)` };
  }
}

/**
 * Put words into a command text: `$1`..`$9` (missing ones are empty), `$*`
 * (all of them). `args` is a list of strings; `all` the text of `$*`.
 * Whether a placeholder was used is returned too (an alias without any gets
 * its words appended).
 */
export function substitute(template, args, all = args.join(" ")) {
  let used = false;
  const text = template.replace(/\$([1-9*])/g, (_, d) => {
    used = true;
    return d === "*" ? all : args[Number(d) - 1] ?? "";
  });
  return { text, used };
}

/**
 * One command after aliases: the command's first word names an alias ->
 * the alias's text, split on `;;` first and then given the words (so words
 * never add commands), each piece expanded again (up to MAX_ALIAS_DEPTH).
 * Returns {commands, error}: the lines to send, and why expansion stopped.
 * aliases: Map NAME -> TEXT.
 */
export function expandAliases(command, aliases, depth = 0, out = []) {
  const m = /^\s*(\S+)(?:\s+(.*))?$/s.exec(command);
  const text = m && aliases.get(m[1]);
  if (text === undefined || text === null || !m) {
    if (out.length >= MAX_EXPANDED) return { commands: out, error: `more than ${MAX_EXPANDED} commands from one line` };
    out.push(command);
    return { commands: out, error: "" };
  }
  if (depth >= MAX_ALIAS_DEPTH) return { commands: out, error: `aliases nested deeper than ${MAX_ALIAS_DEPTH} (a loop?)` };
  const rest = (m[2] || "").trim();
  const args = rest ? rest.split(/\s+/) : [];
  const pieces = splitStack(text);
  let anyUsed = false;
  const filled = pieces.map((piece) => {
    const { text: t, used } = substitute(piece, args, rest);
    anyUsed ||= used;
    return t;
  });
  // `#alias k kill` then `k orc`: the words go after the last command.
  if (!anyUsed && rest && filled.length) filled[filled.length - 1] += ` ${rest}`;
  for (const piece of filled) {
    const r = expandAliases(piece, aliases, depth + 1, out);
    if (r.error) return r;
  }
  return { commands: out, error: "" };
}

/**
 * A line the player typed (echo on): {client: parsed # command} for `#...`,
 * or {commands, error} for what goes to the game (`##x` sends `#x` as is;
 * otherwise `;;` splits, then aliases expand each piece).
 */
export function interpretLine(line, aliases) {
  if (line.startsWith("##")) return { commands: [line.slice(1)], error: "" };
  if (line.startsWith("#")) return { client: parseClientCommand(line) };
  const out = [];
  for (const piece of splitStack(line)) {
    const r = expandAliases(piece, aliases, 0, out);
    if (r.error) return r;
  }
  return { commands: out, error: "" };
}
