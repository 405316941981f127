// ANSI escape sequences -> runs of text with a style (pure: no DOM).
//
//   const parser = new AnsiParser();
//   parser.feed("\x1b[1;31mred\x1b[0m plain")
//     -> [{text: "red", style: {fg: 1, bold: true, ...}}, {text: " plain", style: DEFAULT_STYLE}]
//
// SGR (ESC [ ... m) is interpreted: reset, bold, faint, italic, underline,
// reverse, conceal, strike, 16 colours, 256 colours (38;5;n / 48;5;n) and
// truecolour (38;2;r;g;b, also the colon forms). Every other escape sequence
// (cursor movement, OSC titles, ...) and every other control character but
// \n and \t is removed. The style carries over from one feed() to the next,
// and so does an escape sequence cut at the end of a chunk.
//
// OSC 8 hyperlinks (ESC ] 8 ; params ; URI ST) are followed too: each run
// carries `link`, null or what parseLinkUri() made of the URI (only http(s),
// send: and prompt: are links; any other scheme is plain text). An empty URI
// ends the link.
//
// A colour in a style is null (the default), an index 0..255, or an
// {r, g, b} object. cssColours() turns a style into CSS colours: indexes
// 0..15 become var(--ansi-N) so a page can restyle the palette (faint text:
// var(--ansi-N-faint), var(--log-fg-faint) for the default colour).

export const DEFAULT_STYLE = Object.freeze({
  fg: null, bg: null, bold: false, faint: false, italic: false,
  underline: false, reverse: false, conceal: false, strike: false,
});

// One complete escape sequence: CSI (with its final byte), OSC (ended by BEL
// or ST), or another escape (intermediate bytes, then a final byte: ESC ( B).
const ESCAPE = /\x1b(?:\[([0-?]*)([ -/]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-Z\\^-~])/g;
// The parameters of an SGR: digits, ";" and ":". A CSI ending in "m" with a private
// marker (<, =, >, ?: xterm's CSI > 4 ; 2 m sets how keys are reported) or an
// intermediate byte is another sequence, not a style.
const SGR_PARAMS = /^[0-9;:]*$/;
// An escape sequence cut short by the end of the chunk (the next one may complete it).
const PARTIAL = /^\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[ -/]*)?$/;
const CONTROL = /[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f]/g;
const MAX_PARTIAL = 256; // a longer unfinished sequence is dropped, not kept for ever
const ESCAPE_AT = new RegExp(ESCAPE.source, "y");

/**
 * Where the escape sequence that starts at `text[i]` (an ESC) ends (the index after it), or -1
 * when it does not end in `text`. Whoever cuts text into pieces for feed() cuts after it, not
 * inside: a cut sequence longer than MAX_PARTIAL (an OSC 8 link's URI with a menu) is dropped,
 * and the rest of it shown as text.
 */
export function escapeEnd(text, i) {
  ESCAPE_AT.lastIndex = i;
  const m = ESCAPE_AT.exec(text);
  return m ? i + m[0].length : -1;
}

export class AnsiParser {
  constructor() {
    this.style = DEFAULT_STYLE;
    this.link = null;
    this.pending = "";
  }

  reset() {
    this.style = DEFAULT_STYLE;
    this.link = null;
    this.pending = "";
  }

  /** Text with escape sequences -> [{text, style, link}], empty runs left out. */
  feed(chunk) {
    const text = this.pending ? this.pending + chunk : chunk;
    this.pending = "";
    const runs = [];
    let last = 0;
    ESCAPE.lastIndex = 0;
    for (let m; (m = ESCAPE.exec(text)) !== null;) {
      if (m.index > last) this._push(runs, text.slice(last, m.index));
      if (m[3] === "m" && !m[2] && SGR_PARAMS.test(m[1])) this.style = cachedSgr(this.style, m[1]);
      else if (m[0].startsWith("\x1b]8;")) this.link = osc8Link(m[0]);
      last = ESCAPE.lastIndex;
    }
    // After the last complete sequence: keep a sequence the next chunk may complete.
    let end = text.length;
    for (let i = text.indexOf("\x1b", last); i >= 0; i = text.indexOf("\x1b", i + 1)) {
      if (PARTIAL.test(text.slice(i))) {
        if (end - i <= MAX_PARTIAL) this.pending = text.slice(i);
        end = i;
        break;
      }
    }
    if (last < end) this._push(runs, text.slice(last, end));
    return runs;
  }

  _push(runs, raw) {
    // A lone ESC that starts no known sequence is dropped with the controls.
    const text = raw.replace(CONTROL, "").replaceAll("\x1b", "");
    if (!text) return;
    const prev = runs[runs.length - 1];
    if (prev && prev.style === this.style && prev.link === this.link) prev.text += text;
    else runs.push({ text, style: this.style, link: this.link });
  }
}

// -- OSC 8 links (SPEC 7.1) --------------------------------------------------------

const CONTROLS = /[\x00-\x1f\x7f-\x9f]/;
const COMMAND_URI = /^(send|prompt):([^?]*)(?:\?config=(.*))?$/s;
const MAX_MENU = 32;

/** The link an OSC 8 sequence (ESC ] 8 ; params ; URI, BEL or ST) opens; null: it ends one. */
function osc8Link(sequence) {
  const body = sequence.slice(4, sequence.endsWith("\x07") ? -1 : -2); // after "ESC]8;"
  const semi = body.indexOf(";"); // params ; URI (the URI may hold ";")
  return semi < 0 ? null : parseLinkUri(body.slice(semi + 1));
}

function decodeCommand(encoded) {
  let command;
  try {
    command = decodeURIComponent(encoded);
  } catch {
    return null; // malformed escapes: no link
  }
  return command && !CONTROLS.test(command) ? command : null;
}

/**
 * An OSC 8 URI as a link: {kind: "url", href} for an absolute http(s) URL,
 * {kind: "send"|"prompt", command, tooltip, menu: [{label, kind, command}]}
 * for send:/prompt: (the command percent-decoded; ?config= holds the tooltip
 * and menu as JSON). null for anything else, and for a command holding a
 * control character: those are shown as plain text, never sent.
 */
export function parseLinkUri(uri) {
  if (!uri || CONTROLS.test(uri)) return null;
  if (/^https?:\/\//i.test(uri)) {
    let url;
    try {
      url = new URL(uri);
    } catch {
      return null;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    return Object.freeze({ kind: "url", href: url.href });
  }
  const m = COMMAND_URI.exec(uri);
  if (!m) return null;
  const command = decodeCommand(m[2]);
  if (command === null) return null;
  let tooltip = "";
  const menu = [];
  if (m[3] !== undefined) {
    let config = null;
    try {
      config = JSON.parse(decodeURIComponent(m[3]));
    } catch {
      config = null; // a bad menu: the link still works
    }
    if (config && typeof config === "object") {
      if (typeof config.tooltip === "string") tooltip = config.tooltip;
      if (Array.isArray(config.menu)) {
        for (const entry of config.menu.slice(0, MAX_MENU)) {
          if (!entry || typeof entry !== "object" || Array.isArray(entry)) continue;
          const [label, value] = Object.entries(entry)[0] || [];
          const item = typeof value === "string" ? COMMAND_URI.exec(value) : null;
          const itemCommand = item && item[3] === undefined ? decodeCommand(item[2]) : null;
          if (itemCommand !== null) menu.push(Object.freeze({ label: String(label), kind: item[1], command: itemCommand }));
        }
      }
    }
  }
  return Object.freeze({ kind: m[1], command, tooltip, menu: Object.freeze(menu) });
}

// Games repeat the same few colour changes: (style, parameters) -> style is
// remembered (a bounded number per style), which also keeps equal styles one object.
const SGR_CACHE = new WeakMap();
const SGR_CACHE_PER_STYLE = 64;

function cachedSgr(style, params) {
  let known = SGR_CACHE.get(style);
  if (known === undefined) SGR_CACHE.set(style, (known = new Map()));
  let next = known.get(params);
  if (next === undefined) {
    next = applySgr(style, params);
    if (known.size < SGR_CACHE_PER_STYLE) known.set(params, next);
  }
  return next;
}

/** The style after the SGR parameters `params` ("1;31", "38;5;208", "" = reset). */
export function applySgr(style, params) {
  const s = { ...style };
  // Parameters are separated by ";"; a parameter may hold ":"-separated sub-parameters.
  const list = params === "" ? ["0"] : params.split(";");
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    if (item.includes(":")) {
      const sub = item.split(":").map((x) => (x === "" ? NaN : Number(x)));
      const code = sub[0];
      if (code === 38 || code === 48) {
        const colour = subColour(sub.slice(1));
        if (colour !== undefined) s[code === 38 ? "fg" : "bg"] = colour;
      } else if (code === 4) {
        s.underline = sub[1] !== 0;
      }
      continue;
    }
    const code = item === "" ? 0 : Number(item);
    if (code === 38 || code === 48) {
      const key = code === 38 ? "fg" : "bg";
      const mode = Number(list[i + 1]);
      if (mode === 5) {
        const n = Number(list[i + 2]);
        if (Number.isInteger(n) && n >= 0 && n <= 255) s[key] = n;
        i += 2;
      } else if (mode === 2) {
        const rgb = toRgb(list[i + 2], list[i + 3], list[i + 4]);
        if (rgb) s[key] = rgb;
        i += 4;
      } else {
        i = list.length; // unknown colour space: the rest cannot be trusted
      }
      continue;
    }
    applyCode(s, code);
  }
  if (sameStyle(s, style)) return style;
  return sameStyle(s, DEFAULT_STYLE) ? DEFAULT_STYLE : Object.freeze(s);
}

function applyCode(s, code) {
  if (code === 0) Object.assign(s, DEFAULT_STYLE);
  else if (code === 1) s.bold = true;
  else if (code === 2) s.faint = true;
  else if (code === 3) s.italic = true;
  else if (code === 4 || code === 21) s.underline = true;
  else if (code === 7) s.reverse = true;
  else if (code === 8) s.conceal = true;
  else if (code === 9) s.strike = true;
  else if (code === 22) s.bold = s.faint = false;
  else if (code === 23) s.italic = false;
  else if (code === 24) s.underline = false;
  else if (code === 27) s.reverse = false;
  else if (code === 28) s.conceal = false;
  else if (code === 29) s.strike = false;
  else if (code >= 30 && code <= 37) s.fg = code - 30;
  else if (code === 39) s.fg = null;
  else if (code >= 40 && code <= 47) s.bg = code - 40;
  else if (code === 49) s.bg = null;
  else if (code >= 90 && code <= 97) s.fg = code - 90 + 8;
  else if (code >= 100 && code <= 107) s.bg = code - 100 + 8;
  // blink (5, 6, 25) and everything else: ignored
}

// 38:5:n, 38:2:r:g:b and 38:2:colourspace:r:g:b (ITU T.416).
function subColour(sub) {
  if (sub[0] === 5) return Number.isInteger(sub[1]) && sub[1] >= 0 && sub[1] <= 255 ? sub[1] : undefined;
  if (sub[0] === 2) {
    const v = sub.length >= 5 ? sub.slice(2, 5) : sub.slice(1, 4);
    return toRgb(...v) || undefined;
  }
  return undefined;
}

function toRgb(r, g, b) {
  const v = [r, g, b].map(Number);
  if (!v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) return null;
  return Object.freeze({ r: v[0], g: v[1], b: v[2] });
}

function sameStyle(a, b) {
  for (const k in DEFAULT_STYLE) {
    const x = a[k], y = b[k];
    if (x === y) continue;
    if (x && y && typeof x === "object" && typeof y === "object" && x.r === y.r && x.g === y.g && x.b === y.b) continue;
    return false;
  }
  return true;
}

/** The xterm colour of a 256-colour index 16..255 as [r, g, b]. */
export function xtermRgb(n) {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return [v, v, v];
  }
  const i = n - 16;
  const level = (x) => (x === 0 ? 0 : 55 + x * 40);
  return [level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6)];
}

function cssColour(c, fallback) {
  if (c === null) return fallback;
  if (typeof c === "number") {
    if (c < 16) return `var(--ansi-${c})`;
    const [r, g, b] = xtermRgb(c);
    return `rgb(${r}, ${g}, ${b})`;
  }
  return `rgb(${c.r}, ${c.g}, ${c.b})`;
}

/** The text colour of a style: bold makes colours 0..7 bright (8..15), as terminals do. */
function textColour(style) {
  const fg = style.fg;
  return style.bold && typeof fg === "number" && fg < 8 ? fg + 8 : fg;
}

/**
 * Is faint drawn as a colour (the text's faint form), not by opacity? For text
 * in the default colour or one of the 16 (the page's palette) on the default
 * background: its faint form keeps 4.5:1 there (client.css).
 */
function faintColour(style, fg) {
  return style.faint && style.bg === null && (fg === null || (typeof fg === "number" && fg < 16));
}

/**
 * CSS colours of a style: {color, background}, each a CSS value or null for
 * the page's default. Bold makes colours 0..7 bright (8..15), as terminals do;
 * reverse swaps the two (the default colours included). Faint text in the
 * default colour or one of the 16 on the default background takes its faint
 * form (--log-fg-faint, --ansi-N-faint: client.css keeps it at 4.5:1 on that
 * background); with reverse, that is the background (the text colour is
 * dimmed before the swap, as VTE does). Other faint text (256-colour,
 * truecolour, on a background colour) is dimmed by opacity: the class
 * ansi-faint-opacity (styleClasses).
 */
export function cssColours(style) {
  const fg = textColour(style);
  let text = cssColour(fg, null);
  if (faintColour(style, fg)) text = fg === null ? "var(--log-fg-faint)" : `var(--ansi-${fg}-faint)`;
  if (!style.reverse) return { color: text, background: cssColour(style.bg, null) };
  return { color: cssColour(style.bg, "var(--log-bg)"), background: text ?? "var(--log-fg)" };
}

/**
 * Class names for a style's attributes (colours aside): ansi-bold, ansi-italic, ...
 * Faint text is ansi-faint, and also ansi-faint-opacity when it is not drawn
 * in a faint colour (see cssColours).
 */
export function styleClasses(style) {
  const names = [];
  if (style.bold) names.push("ansi-bold");
  if (style.faint) names.push("ansi-faint");
  if (style.faint && !faintColour(style, textColour(style))) names.push("ansi-faint-opacity");
  if (style.italic) names.push("ansi-italic");
  if (style.underline) names.push("ansi-underline");
  if (style.strike) names.push("ansi-strike");
  if (style.conceal) names.push("ansi-conceal");
  return names;
}
