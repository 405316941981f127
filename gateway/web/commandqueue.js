// The commands not yet confirmed by the gateway, numbered for exactly-once
// delivery (SPEC 4.4 and 7.1: `recv` carries `n`, join replies `input_n`).
// Pure: no DOM, no phoenix; connection.js pushes and reports back.
//
// - Each command gets `n`, growing per session (never reused: a `recv` whose
//   `n` is at most the session's `input_n` is not sent again by the gateway).
// - A command stays queued until its push is answered: ok (sent, or a
//   duplicate the game already got) confirms it; an error reply ("rate
//   limited", "message too long") removes it, not sent.
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

export class CommandQueue {
  /** storage: getItem/setItem/removeItem (sessionStorage), or null; key: queueKey(topic). */
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
    this.next = 1;
    this.session = false; // a join reply of this topic was seen: commands after it are its session's
    this.entries = []; // {n, text, secret}; text undefined: a secret line restored after a reload
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

  /** The gateway answered ok (sent, or a duplicate already sent): no longer pending. */
  confirm(n) {
    this._take(n);
  }

  /** The gateway refused it (not sent): no longer pending; the entry, or null when it was not. */
  refuse(n) {
    return this._take(n);
  }

  /**
   * A join reply ({resumed, input_n}): {resend, lost}. Resumed: what the game got (n <= input_n)
   * is dropped, the rest is to be sent again in order (a secret line whose text a reload lost is
   * lost). A new session after one this queue knew: nothing pending can reach the session it was
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
    this._save();
    return { resend: resend.map((e) => ({ ...e })), lost: lost.map((e) => ({ ...e })) };
  }

  /** The session ended: everything pending is lost (returned); the storage is cleared. */
  end() {
    const lost = this.entries.map((e) => ({ ...e }));
    this.entries = [];
    this.session = false;
    this.next = 1;
    this._remove();
    return lost;
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
