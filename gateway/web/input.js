// The input line: Enter sends, Up/Down (or, on touch screens, the "Previous
// command"/"Next command" buttons) walk the history (kept per game in
// localStorage; the line being typed is kept as the newest entry), and a
// password mode (the game turned echo off) in which the field is
// type=password and nothing typed is kept anywhere.

const HISTORY_MAX = 500;

export class CommandLine {
  /**
   * form/input: the <form> and its text <input>; historyKey: localStorage key
   * of this game's history; onSubmit(text, secret): a line to send.
   */
  constructor({ form, input, historyKey, onSubmit }) {
    this.form = form;
    this.input = input;
    this.historyKey = historyKey;
    this.onSubmit = onSubmit;
    this.secret = false;
    this.history = loadHistory(historyKey);
    this.index = this.history.length; // == length: the line being typed
    this.draft = "";
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this._submit();
    });
    input.addEventListener("keydown", (e) => this._key(e));
    // Another tab of this game (a second character) adds to the same history: its saves come
    // here, so that this page walks its lines too and does not save its own copy over them.
    addEventListener("storage", (e) => {
      if (e.key !== historyKey || e.storageArea !== localStorage) return;
      const walking = this.index !== this.history.length;
      this.history = parseHistory(e.newValue);
      this.index = walking ? Math.min(this.index, this.history.length) : this.history.length;
    });
  }

  /** Password mode on (echo off) or off. Leaving it clears the field. */
  setSecret(on) {
    if (on === this.secret) return;
    this.secret = on;
    this.input.value = "";
    this.input.type = on ? "password" : "text";
    this.input.setAttribute("aria-label", on ? "Password (not shown, not kept)" : "Command");
    this.form.classList.toggle("secret", on);
    this.index = this.history.length;
  }

  _submit() {
    const text = this.input.value;
    this.input.value = "";
    if (!this.secret && text.trim() && this.history[this.history.length - 1] !== text) {
      this.history.push(text);
      if (this.history.length > HISTORY_MAX) this.history.splice(0, this.history.length - HISTORY_MAX);
      saveHistory(this.historyKey, this.history);
    }
    this.index = this.history.length;
    this.draft = "";
    this.onSubmit(text, this.secret);
  }

  /** The previous (older) command into the line (Up); false at the oldest or in password mode. */
  prev() {
    return this._step(-1);
  }

  /** The next (newer) command, and after the newest the line that was being typed (Down). */
  next() {
    return this._step(1);
  }

  _step(step) {
    if (this.secret) return false;
    const next = this.index + step;
    if (next < 0 || next > this.history.length) return false;
    if (this.index === this.history.length) this.draft = this.input.value;
    this.index = next;
    this.input.value = next === this.history.length ? this.draft : this.history[next];
    const end = this.input.value.length;
    this.input.setSelectionRange(end, end);
    return true;
  }

  _key(e) {
    if (this.secret || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
    e.preventDefault();
    if (e.key === "ArrowUp") this.prev();
    else this.next();
  }
}

function loadHistory(key) {
  try {
    return parseHistory(localStorage.getItem(key));
  } catch {
    return []; // storage disabled
  }
}

/** The history kept as JSON text (or null): its lines, at most HISTORY_MAX. */
function parseHistory(text) {
  try {
    const list = JSON.parse(text || "[]");
    return Array.isArray(list) ? list.filter((x) => typeof x === "string").slice(-HISTORY_MAX) : [];
  } catch {
    return [];
  }
}

function saveHistory(key, list) {
  try {
    localStorage.setItem(key, JSON.stringify(list));
  } catch {
    // storage full or disabled: the history lives for this page only
  }
}

/**
 * Focus goes back to the input line after a button in play is used (SPEC
 * 7.1): a button inside one of `areas` (exits, direction pad, the input
 * line's own buttons, the split's "Newest output"). A mouse press does not
 * take the focus from the input at all; a click or Enter/Space hands it back. A tap on a touch screen
 * leaves the focus as it was (focusing the input would open the on-screen
 * keyboard over the pad), except for buttons matching `always` (the history
 * buttons fill the input line: it is where the player goes next).
 */
export function focusAfterButtons(input, areas, always = "") {
  let pointer = "";
  for (const area of areas) {
    area.addEventListener("pointerdown", (e) => {
      pointer = e.pointerType;
    });
    area.addEventListener("mousedown", (e) => {
      if (e.target instanceof Element && e.target.closest("button") && document.activeElement === input) {
        e.preventDefault(); // the press would move the focus (and close a phone's keyboard)
      }
    });
    area.addEventListener("click", (e) => {
      const button = e.target instanceof Element && e.target.closest("button");
      const touch = pointer === "touch" && e.detail > 0; // e.detail 0: Enter/Space
      pointer = "";
      if (!button || button.disabled) return;
      if (touch && !(always && button.matches(always))) return;
      input.focus();
    });
  }
}

/** Elements that take typed text (and keys such as End) for themselves. */
export const TEXT_FIELDS = "input, textarea, select, [contenteditable]";

/**
 * Keep typing going to the input without taking the player's selection:
 * a printable key pressed elsewhere moves the focus to the input (the key
 * lands there), and a click in `area` that selected nothing focuses it.
 * Ctrl/Cmd combinations (Ctrl+C on selected log text) are left alone.
 */
export function keepFocus(input, area) {
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.key.length !== 1) return;
    const t = e.target;
    if (t === input || (t instanceof HTMLElement && t.closest(TEXT_FIELDS))) return;
    // Space on a focused button presses it.
    if (e.key === " " && t instanceof HTMLElement && t.closest("button, a, summary")) return;
    input.focus();
  });
  area.addEventListener("pointerup", (e) => {
    if (e.pointerType !== "mouse" || e.button !== 0) return;
    if (e.target instanceof HTMLElement && e.target.closest("a, button")) return;
    const sel = window.getSelection();
    if (sel && !sel.isCollapsed) return;
    input.focus({ preventScroll: true });
  });
}
