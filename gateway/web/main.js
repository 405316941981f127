// The browser client at GET /: picks the game, wires the log, the input
// line, the GMCP panels and the connection together, and keeps the settings.

import { Announcer, assertiveSetting } from "./announce.js";
import { GameConnection } from "./connection.js";
import { CommandLine, TEXT_FIELDS, focusAfterButtons, keepFocus } from "./input.js";
import { installLinks } from "./links.js";
import { OutputLog } from "./output.js";
import { PageTools } from "./page_tools.js";
import { MsdpPanels, RoomPanel, Vitals } from "./panels.js";
import { installReadBack } from "./readback.js";
import { SoundBoard, soundControls } from "./sound.js";

const $ = (id) => document.getElementById(id);
const KEY = "mud-gateway:";
const FONT_MIN = 10;
const FONT_MAX = 28;
const FONT_DEFAULT = 14;

const stored = {
  get(name, fallback) {
    try {
      const v = localStorage.getItem(KEY + name);
      return v === null ? fallback : JSON.parse(v);
    } catch {
      return fallback;
    }
  },
  set(name, value) {
    try {
      localStorage.setItem(KEY + name, JSON.stringify(value));
    } catch {
      // storage disabled: the setting lasts for this page
    }
  },
};

/** A token handed over in the address (#token=...) moves to sessionStorage and out of sight. */
function takeToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const token = hash.get("token");
  if (token) {
    sessionStorage.setItem(KEY + "token", token);
    hash.delete("token");
    const rest = hash.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
  return sessionStorage.getItem(KEY + "token");
}

async function fetchGames() {
  try {
    const response = await fetch("api/games", { headers: { Accept: "application/json" } });
    if (!response.ok) return [];
    const body = await response.json();
    return Array.isArray(body.games) ? body.games : [];
  } catch {
    return [];
  }
}

function showPicker(games) {
  document.body.dataset.view = "picker";
  $("picker").hidden = false;
  $("status").textContent = "Choose a game";
  $("status").dataset.state = "picker";
  const list = $("games");
  for (const game of games) {
    const a = document.createElement("a");
    a.href = `?game=${encodeURIComponent(game.name)}`;
    const title = document.createElement("strong");
    title.textContent = game.title || game.name;
    a.append(title);
    const players = game.mssp && game.mssp.PLAYERS;
    if (players !== undefined && players !== null && players !== "") {
      const count = document.createElement("span");
      count.className = "players";
      count.textContent = `${players} playing`;
      a.append(count);
    }
    const li = document.createElement("li");
    li.append(a);
    list.append(li);
  }
  list.querySelector("a")?.focus();
}

// -- settings -----------------------------------------------------------------

function setFontSize(px) {
  const size = Math.max(FONT_MIN, Math.min(FONT_MAX, Math.round(px)));
  document.documentElement.style.setProperty("--font-size", `${size}px`);
  $("font-size-value").textContent = `${size}px`;
  stored.set("font-size", size);
  return size;
}

function setupSettings(onFontChange) {
  const toggle = $("settings-toggle");
  const panel = $("settings");
  toggle.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute("aria-expanded", String(!panel.hidden));
  });
  let size = setFontSize(stored.get("font-size", FONT_DEFAULT));
  $("font-smaller").addEventListener("click", () => {
    size = setFontSize(size - 1);
    onFontChange();
  });
  $("font-larger").addEventListener("click", () => {
    size = setFontSize(size + 1);
    onFontChange();
  });
  const sr = $("screen-reader");
  sr.checked = stored.get("screen-reader", false);
  document.body.classList.toggle("screen-reader", sr.checked);
  sr.addEventListener("change", () => {
    stored.set("screen-reader", sr.checked);
    document.body.classList.toggle("screen-reader", sr.checked);
  });
  const padToggle = $("pad-toggle");
  const narrow = matchMedia("(max-width: 700px), (pointer: coarse)").matches;
  const setPad = (open) => {
    document.body.classList.toggle("pad-open", open);
    padToggle.setAttribute("aria-expanded", String(open));
  };
  setPad(stored.get("pad", narrow));
  padToggle.addEventListener("click", () => {
    const open = !document.body.classList.contains("pad-open");
    stored.set("pad", open);
    setPad(open);
  });
}

// -- window size (NAWS) ---------------------------------------------------------

/** Characters that fit the output area: {width, height}, each 1..1000. */
function screenSize() {
  const log = $("log");
  const box = $("measure").getBoundingClientRect();
  const cell = box.width / 100; // the measure holds 100 characters
  const style = getComputedStyle(log);
  const width = log.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const height = $("screen").clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  if (!(cell > 0 && box.height > 0)) return null; // not laid out (yet)
  const clamp = (n) => Math.max(1, Math.min(1000, Math.floor(n)));
  return { width: clamp(width / cell), height: clamp(height / box.height) };
}

// -- playing ------------------------------------------------------------------

function play(game, title, mediaUrl) {
  document.body.dataset.view = "play";
  document.title = title;
  $("title").textContent = title;
  const token = takeToken();
  let unread = 0;
  const showUnread = () => {
    document.title = unread ? `(${unread}) ${title}` : title;
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && unread) {
      unread = 0;
      showUnread();
    }
  });

  const log = new OutputLog({
    log: $("log"),
    tail: $("tail"),
    jump: $("jump"),
    prompt: $("prompt"),
    onSplit: (open) => {
      $("tail-box").hidden = !open;
      document.body.classList.toggle("split", open);
    },
  });
  setupSettings(() => sendSize());
  // Screen readers (SPEC 7.1): new text and prompts through a live region; the client's notices too.
  const announcer = new Announcer($("announce"));
  assertiveSetting($("announce-assertive"), announcer, stored);
  const logNote = log.note.bind(log);
  log.note = (text, cls = "notice") => {
    logNote(text, cls);
    if (!cls.startsWith("command")) announcer.note(text);
  };
  const screenReader = () => document.body.classList.contains("screen-reader");
  const vitals = new Vitals($("vitals"));
  let conn = null;
  // cls: how the log shows the line ("command", "command trigger"); null: not at all (echo off).
  const send = (text, cls = "command") => {
    // The player's own line, muted, in the log also with the screen-reader setting (SPEC 7.1);
    // the live region leaves it out (log.note above): the reader spoke it as it was typed.
    if (cls) tools.command(text, cls);
    // Exactly once, also across drops and reloads (connection.js); echo off: kept in memory only.
    // (While the connection is down the line is queued, not refused: the status says "Reconnecting…".)
    if (!conn.send(text, cls === null)) {
      const what = cls === null ? "a line typed while echo was off" : text;
      log.note(`Not delivered (${conn.endedWhy || "not connected"}): ${what} — use “Connect again”.`, "notice");
    }
  };
  const room = new RoomPanel({
    panel: $("room"),
    name: $("room-name"),
    area: $("room-area"),
    exits: $("exits"),
    pad: $("pad"),
    onGo: (dir) => send(dir),
  });
  const msdp = new MsdpPanels({ vitals, room });
  const sound = new SoundBoard({ mediaUrl, onRefused: (text) => log.note(text, "notice") });
  soundControls(sound, { bar: $("status").parentElement, settings: $("settings"), stored, before: $("settings-toggle") });
  const input = $("input");
  const tools = new PageTools({ game, log, send, focusInput: () => input.focus() });
  const commandLine = new CommandLine({
    form: $("command"),
    input,
    historyKey: `${KEY}history:${game}`,
    onSubmit: (text, secret) => tools.typed(text, secret),
  });
  keepFocus(input, $("screen"));
  $("history-prev").addEventListener("click", () => commandLine.prev());
  $("history-next").addEventListener("click", () => commandLine.next());
  // (The split's "Newest output" button too: it hides itself, and would leave the focus on nothing.)
  focusAfterButtons(input, [$("exits"), $("pad"), $("command"), $("tail-box")], "#history-prev, #history-next");
  installReadBack({ log: $("log"), input, announcer, flush: () => log.flushNow() });
  // The game's send:/prompt: links (SPEC 7.1): a command sent exactly as the game gave it.
  installLinks(document, {
    send(command) {
      send(command);
      input.focus();
    },
    prompt(text) {
      input.value = text;
      input.focus();
      input.setSelectionRange(text.length, text.length);
    },
  });

  let joinedBefore = false;
  conn = new GameConnection({
    game,
    token,
    screenReader: screenReader(),
    on: {
      status(state, text) {
        const el = $("status");
        // Written only when it changes: the status line is a live region (role=status), and each
        // reconnection attempt reports "Reconnecting…" again, which a screen reader would repeat.
        if (el.textContent !== text) el.textContent = text;
        el.dataset.state = state;
        document.body.dataset.state = state;
        $("again").hidden = state !== "ended";
        if (state === "ended") {
          commandLine.setSecret(false);
          sound.endSession(); // (a game that hung up, a kick: its music does not play on)
        }
      },
      event(name, payload) {
        tools.beforeEvent(payload);
        if (name === "echo") {
          log.write(payload.message);
          announcer.text(payload.message);
          if (document.hidden) {
            unread += countLines(payload.message);
            showUnread();
          }
        } else if (name === "prompt") {
          log.prompt(payload.message);
          announcer.prompt(payload.message);
        } else if (name === "option" && payload.type === "echo") {
          commandLine.setSecret(payload.echo === false);
        } else if (name === "gmcp") {
          if (payload.module === "Char.Vitals") vitals.update(payload.data);
          else if (payload.module === "Room.Info") room.update(payload.data);
          else if (payload.module === "MSDP") msdp.update(payload.data);
          else if (payload.module.startsWith("Client.Media.")) sound.handle(payload.module, payload.data);
        }
        tools.afterEvent(name, payload);
      },
      joined(response) {
        tools.joined(response);
        // gap: events were dropped from the session's replay buffer. The page's first join (a
        // reload; it has no last_seq) asked for the whole scrollback, whose oldest part is simply
        // no longer kept; a later one (after a drop) asked for what it missed, and lost some.
        if (response.gap) {
          log.note(joinedBefore ? "Some output was lost while the connection was down."
            : "Older output of this session is no longer kept.", "notice");
        }
        if (!response.resumed) {
          // A new session starts with echo on (its game has asked for nothing yet): a password
          // field left from the session before would hide and not keep the player's next lines;
          // the last session's loops stop (it may have ended unseen, while away).
          commandLine.setSecret(false);
          sound.endSession();
          if (joinedBefore) {
            log.note("A new game session started.", "notice");
            // Nor is the last session's prompt, room, exits or gauges this one's (an exit
            // button left there would send its direction to a login prompt).
            log.newSession();
            vitals.clear();
            room.clear();
            msdp.clear();
          }
        }
        joinedBefore = true;
        sendSize();
      },
      notice(text) {
        log.note(text, "notice");
      },
    },
  });

  let sizeTimer = 0;
  const sendSize = () => {
    clearTimeout(sizeTimer);
    sizeTimer = setTimeout(() => {
      const size = screenSize();
      if (!size) return;
      conn.naws(size.width, size.height);
      $("screen").dataset.cols = String(size.width);
    }, 100);
  };
  new ResizeObserver(sendSize).observe($("screen"));
  document.fonts.ready.then(sendSize); // a theme's web font changes the cell size

  $("again").addEventListener("click", () => {
    log.note("Connecting again…", "notice");
    commandLine.setSecret(false);
    conn.screenReader = screenReader();
    conn.again();
    input.focus();
  });
  document.addEventListener("keydown", (e) => {
    // End: the newest output, from the input line or anywhere but another text field (the
    // search field, the settings' forms), where it moves the caret: a player stepping through
    // search matches would see the log jump away from the match.
    const elsewhere = e.target !== input && e.target instanceof Element && e.target.closest(TEXT_FIELDS);
    if (e.key === "End" && log.split && !elsewhere) log.scrollToEnd();
    else if ((e.key === "PageUp" || e.key === "PageDown") && e.target === input) {
      e.preventDefault();
      const el = $("log");
      el.scrollBy({ top: (e.key === "PageUp" ? -0.9 : 0.9) * el.clientHeight });
    }
  });
  conn.start();
  input.focus();
}

function countLines(text) {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

async function main() {
  const wanted = new URLSearchParams(location.search).get("game");
  const games = await fetchGames();
  if (!wanted && games.length > 1) {
    showPicker(games);
    return;
  }
  const game = wanted || (games.find((g) => g.default) || games[0] || { name: "" }).name;
  const info = games.find((g) => g.name === game);
  play(game, (info && info.title) || game || "mud-gateway", info && info.media_url);
}

main();
