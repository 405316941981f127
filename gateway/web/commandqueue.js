// The commands not yet confirmed by the gateway, numbered for exactly-once
// delivery (SPEC 4.4 and 7.1: `recv` carries `n`, join replies `input_n`).
// Pure: no DOM, no phoenix; connection.js pushes and reports back.
//
// - Each command gets `n`, growing per session (never reused: a `recv` whose
//   `n` is at most the session's `input_n` is not sent again by the gateway).
// - A command stays queued until its push is answered: ok (sent, or a
//   duplicate the game already got) confirms it; an error reply ("message
//   too long") removes it, not sent, except "rate limited" (below).
// - Pacing (SPEC 3's input_burst, input_lines_per_second): a command refused
//   "rate limited" stays queued, and it and every command after it are sent
//   again, in order, after a pause (PAUSE_MS, doubled by each refusal with no
//   command taken between, up to MAX_PAUSE_MS: the page does not know the
//   gateway's rate, and must not hammer it). Nothing is pushed while paused,
//   and from the refusal until the queue is empty one push at a time, so no
//   command overtakes a refused one. One already pushed behind the refused one
//   may still be taken meanwhile (the bucket refilled between the two): the
//   gateway's input_n is then past the refused command's n, and that n sent
//   again would be a duplicate, never sent. So a command whose n is not above
//   the highest n the session sent is numbered again, with every one after it
//   (none of them reached the game: refused, or not pushed), and marked late.
//   After MAX_PAUSES pauses in a row with nothing taken (about 20 s: a game
//   that does not read its input, or a command of more lines than the burst,
//   which no pause lets through) the refused command is given up, removed and
//   reported, and the queue goes on with the next.
// - After a rejoin, the join reply's `input_n` says which commands reached
//   the game: those are dropped, the rest are sent again, in order. Sending a
//   command again is safe: the gateway sends each `n` to the game once.
// - The next `n` and the queue are kept in storage (sessionStorage) under a
//   key of the topic, so a reloaded page, which resumes the same session,
//   goes on counting and sends again only what the game did not get. A line
//   typed while echo was off (a password) is kept in memory only: storage
//   gets its number, never its text.
// - Commands that can no longer be delivered (the session ended, or the
//   rejoin found a new session) are handed back to be reported.

/** The storage key of a topic's queue. */
export function queueKey(topic) {
  return `mud-gateway:queue:${topic}`;
}

/** The refusal after which a command is sent again (SPEC 4.4: the gateway's token bucket). */
export const RATE_LIMITED = "rate limited";
/** The first pause after a refusal, and the longest (each refusal in a row doubles it). */
export const PAUSE_MS = 250;
export const MAX_PAUSE_MS = 4000;
/** Pauses in a row with nothing taken (250 ms to 4 s: 19.75 s), then a refused command is given up. */
export const MAX_PAUSES = 8;

export class CommandQueue {
  /** storage: getItem/setItem/removeItem (sessionStorage), or null; key: queueKey(topic). */
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
    this.next = 1;
    this.session = false; // a join reply of this topic was seen: commands after it are its session's
    this.entries = []; // {n, text, secret}; text undefined: a secret line restored after a reload
    // Pacing, of this page and this join only (not stored):
    this.inFlight = new Set(); // n of the pushes not answered yet
    this.held = false; // refused "rate limited": nothing is pushed until resume()
    this.careful = false; // since a refusal: one push at a time, until the queue is empty
    this.refusals = 0; // pauses in a row with no command taken between: the pause doubles
    this.sentN = 0; // the highest n the session is known to have sent to the game
    this.late = new Set(); // n of commands numbered again after a later one reached the game
    this._load();
  }

  /** The commands not yet confirmed, oldest first (copies). */
  get pending() {
    return this.entries.map((e) => ({ ...e }));
  }

  /** Number and keep a command: the entry to push ({n, text, secret}). */
  add(text, secret = false) {
    const entry = { n: this.next, text, secret: !!secret };
    this.next += 1;
    this.entries.push(entry);
    this._save();
    return { ...entry };
  }

  /** The pause before resume(): PAUSE_MS, doubled by each refusal in a row. */
  get pauseMs() {
    return Math.min(MAX_PAUSE_MS, PAUSE_MS * 2 ** Math.max(0, this.refusals - 1));
  }

  /**
   * The entries to push now ({n, text, secret}, `late` when numbered again), marked in flight:
   * none while held; after a refusal the oldest, once no push is in flight; else every one not
   * pushed yet.
   */
  take() {
    if (this.held) return [];
    if (!this.careful) return this._send(this.entries.filter((e) => !this.inFlight.has(e.n)));
    if (this.inFlight.size) return [];
    if (!this.entries.length) {
      this.careful = false;
      return [];
    }
    if (this.entries[0].n <= this.sentN) this._renumber();
    return this._send([this.entries[0]]);
  }

  /** The pause after a refusal is over: take() goes on from the refused command. */
  resume() {
    this.held = false;
  }

  /** The gateway answered ok (sent, or a duplicate already sent): no longer pending. */
  confirm(n) {
    this.inFlight.delete(n);
    this.sentN = Math.max(this.sentN, n);
    this.refusals = 0;
    this._take(n);
    if (!this.entries.length) this.careful = false; // all caught up: pushes go at once again
  }

  /**
   * The gateway refused it: "rate limited" keeps it to be sent again after a pause (held, null
   * returned), up to MAX_PAUSES in a row; any other reason, or past those: not sent, no longer
   * pending, the entry returned (null when it was not pending).
   */
  refuse(n, reason) {
    this.inFlight.delete(n);
    if (reason === RATE_LIMITED && this.entries.some((e) => e.n === n)) {
      this.careful = true;
      if (this.held) return null; // (one pause for the refusals of one burst)
      if (this.refusals < MAX_PAUSES) {
        this.refusals += 1;
        this.held = true;
        return null;
      }
      this.refusals = 0; // given up: the next command has its own pauses
    }
    return this._take(n);
  }

  /**
   * A join reply ({resumed, input_n}): {resend, lost}. Resumed: what the game got (n <= input_n)
   * is dropped, the rest is to be sent again in order, now (marked in flight; a secret line whose
   * text a reload lost is lost). A new session after one this queue knew: nothing pending can reach the session it was
   * typed for, all of it is lost. The first join of the topic: everything is for it.
   */
  joined(response) {
    const inputN = Number.isSafeInteger(response && response.input_n) ? response.input_n : 0;
    const resumed = !!(response && response.resumed);
    let resend = [];
    let lost = [];
    if (resumed) {
      for (const e of this.entries) {
        if (e.n <= inputN) continue;
        (e.text === undefined ? lost : resend).push(e);
      }
    } else if (this.session) {
      lost = this.entries;
    } else {
      for (const e of this.entries) (e.text === undefined ? lost : resend).push(e);
    }
    this.entries = resend;
    this.session = true;
    // Never a number the session has already seen (a counter lost with its storage).
    this.next = Math.max(this.next, inputN + 1);
    // A new connection: the pushes of the last one are answered no more, its pause is over.
    this._calm();
    this.sentN = inputN;
    this._save();
    return { resend: this._send(resend), lost: lost.map((e) => ({ ...e })) };
  }

  /** The session ended: everything pending is lost (returned); the storage is cleared. */
  end() {
    const lost = this.entries.map((e) => ({ ...e }));
    this.entries = [];
    this.session = false;
    this.next = 1;
    this._calm();
    this.sentN = 0;
    this._remove();
    return lost;
  }

  _calm() {
    this.inFlight.clear();
    this.held = false;
    this.careful = false;
    this.refusals = 0;
    this.late.clear();
  }

  /** Mark `entries` in flight: copies to push, `late` on those numbered again. */
  _send(entries) {
    return entries.map((e) => {
      this.inFlight.add(e.n);
      return this.late.delete(e.n) ? { ...e, late: true } : { ...e };
    });
  }

  /** Number every entry again, in order, above all the session has seen (none reached the game). */
  _renumber() {
    for (const e of this.entries) {
      if (e.n <= this.sentN) this.late.add(this.next);
      e.n = this.next;
      this.next += 1;
    }
    this._save();
  }

  _take(n) {
    const i = this.entries.findIndex((e) => e.n === n);
    if (i < 0) return null;
    const [entry] = this.entries.splice(i, 1);
    this._save();
    return { ...entry };
  }

  _load() {
    let raw = null;
    try {
      raw = this.storage ? this.storage.getItem(this.key) : null;
    } catch {
      return; // storage disabled: the queue lasts for this page
    }
    if (!raw) return;
    let state;
    try {
      state = JSON.parse(raw);
    } catch {
      return;
    }
    if (!state || typeof state !== "object") return;
    if (Number.isSafeInteger(state.next) && state.next > 0) this.next = state.next;
    this.session = state.session === true;
    if (!Array.isArray(state.pending)) return;
    for (const e of state.pending) {
      if (!e || !Number.isSafeInteger(e.n) || e.n <= 0 || e.n >= this.next) continue;
      if (e.secret === true) this.entries.push({ n: e.n, text: undefined, secret: true });
      else if (typeof e.text === "string") this.entries.push({ n: e.n, text: e.text, secret: false });
    }
    this.entries.sort((a, b) => a.n - b.n);
  }

  _save() {
    if (!this.storage) return;
    const pending = this.entries.map((e) => (e.secret ? { n: e.n, secret: true } : { n: e.n, text: e.text }));
    try {
      this.storage.setItem(this.key, JSON.stringify({ next: this.next, session: this.session, pending }));
    } catch {
      // storage full or disabled: the queue lasts for this page
    }
  }

  _remove() {
    try {
      if (this.storage) this.storage.removeItem(this.key);
    } catch {
      // storage disabled
    }
  }
}
