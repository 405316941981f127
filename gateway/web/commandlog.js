// The player's own commands in the log, kept across a reload: each is kept
// in sessionStorage with the `seq` of the last game event shown before it,
// so when the gateway replays the session after a reload each command goes
// back between the same lines of game text. Only what was shown in the log
// is kept (never input typed while echo was off). The same record holds the
// highest seq whose text the triggers have seen, so a replay does not fire
// them twice.

const MAX_COMMANDS = 1000;

export class CommandMemory {
  /** storage: sessionStorage; key: this game's key. */
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
    const data = this._read();
    this.commands = data.commands; // [{seq, text, cls}]
    this.seen = data.seen; // the highest seq the triggers saw
    this.pending = this.commands.slice(); // restored, not yet back in the log
  }

  /** A command shown in the log after the event `seq`. */
  add(seq, text, cls) {
    this.commands.push({ seq, text, cls });
    if (this.commands.length > MAX_COMMANDS) this.commands.splice(0, this.commands.length - MAX_COMMANDS);
    this.save();
  }

  /** Restored commands that belong before the event `seq` (typed after an earlier one). */
  takeBefore(seq) {
    return this._take((c) => c.seq < seq);
  }

  /** Restored commands typed after the event `seq` was shown (and before the next). */
  takeAfter(seq) {
    return this._take((c) => c.seq <= seq);
  }

  /** All restored commands not yet shown. */
  takeAll() {
    return this._take(() => true);
  }

  /** A new game session: nothing before it belongs to it. */
  clear() {
    this.commands = [];
    this.pending = [];
    this.seen = 0;
    this.save();
  }

  save() {
    try {
      this.storage.setItem(this.key, JSON.stringify({ seen: this.seen, commands: this.commands }));
    } catch {
      // storage full or disabled: the commands stay in the log of this page
    }
  }

  _take(test) {
    let n = 0;
    while (n < this.pending.length && test(this.pending[n])) n++;
    return n ? this.pending.splice(0, n) : [];
  }

  _read() {
    try {
      const data = JSON.parse(this.storage.getItem(this.key) || "null");
      const ok = (c) => c && Number.isInteger(c.seq) && typeof c.text === "string" && typeof c.cls === "string" && /^[a-z ]+$/.test(c.cls);
      if (data && Array.isArray(data.commands)) {
        return {
          commands: data.commands.filter(ok).slice(-MAX_COMMANDS),
          seen: Number.isInteger(data.seen) ? data.seen : 0,
        };
      }
    } catch {
      // unreadable: start afresh
    }
    return { commands: [], seen: 0 };
  }
}
