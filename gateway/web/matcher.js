// Runs patterns over lines in a Web Worker (match_worker.js), one job at a
// time, each with a time limit. A job over the limit means its pattern
// backtracks without end (`/(a+)+$/` on "aaaa…b"): the worker is terminated
// (the page never froze: it was not the page's thread), a new one started,
// the job answered null and onStuck(pattern) told, so the pattern is disabled.

export const MATCH_TIMEOUT_MS = 1000;
const MAX_JOB_LINES = 2000; // a job's lines: a normal pattern is far under the limit on them

export class Matcher {
  /** onStuck(pattern): a pattern was stopped; onBroken(why): the worker cannot run at all. */
  constructor({ timeoutMs = MATCH_TIMEOUT_MS, onStuck = () => {}, onBroken = () => {} } = {}) {
    this.timeoutMs = timeoutMs;
    this.onStuck = onStuck;
    this.onBroken = onBroken;
    this.jobs = []; // {pattern, lines, resolve}
    this.current = null;
    this.timer = 0;
    this.nextId = 1;
    this.worker = null; // started by the first job
  }

  /**
   * Hits of one pattern ({source, flags}) on `lines` (matchLines in
   * triggers.js, line numbers into `lines`), or null when it was stopped.
   */
  async match(pattern, lines) {
    const hits = [];
    for (let from = 0; from < lines.length; from += MAX_JOB_LINES) {
      const part = await new Promise((resolve) => {
        this.jobs.push({ pattern, lines: lines.slice(from, from + MAX_JOB_LINES), resolve });
        if (!this.worker) this._start();
        this._next();
      });
      if (part === null) return null;
      for (const hit of part) hits.push({ ...hit, line: hit.line + from });
    }
    return hits;
  }

  _start() {
    this.ready = false;
    this.worker = new Worker(new URL("./match_worker.js", import.meta.url), { type: "module" });
    this.worker.onmessage = ({ data }) => this._reply(data);
    // The worker's script did not load or run: no job can be answered, say so once.
    this.worker.onerror = (e) => {
      if (this.ready) return;
      e.preventDefault();
      for (const job of this.jobs.splice(0)) job.resolve(null);
      if (!this.broken) this.onBroken(e.message || "the worker did not start");
      this.broken = true;
      this.worker = null;
    };
  }

  _next() {
    if (!this.ready || this.current || !this.jobs.length) return;
    const job = (this.current = this.jobs.shift());
    job.id = this.nextId++;
    this.worker.postMessage({ id: job.id, pattern: { source: job.pattern.source, flags: job.pattern.flags }, lines: job.lines });
    this.timer = setTimeout(() => this._stuck(job), this.timeoutMs);
  }

  _reply(data) {
    if (data.ready) {
      this.ready = true;
      this._next();
      return;
    }
    const job = this.current;
    if (!job || data.id !== job.id) return;
    clearTimeout(this.timer);
    this.current = null;
    job.resolve(data.error === undefined ? data.hits : []);
    this._next();
  }

  _stuck(job) {
    if (this.current !== job) return;
    this.worker.terminate();
    this.current = null;
    // Jobs of the same pattern waiting behind it would hang too.
    const same = (j) => j.pattern.source === job.pattern.source && j.pattern.flags === job.pattern.flags;
    for (const j of this.jobs.filter(same)) j.resolve(null);
    this.jobs = this.jobs.filter((j) => !same(j));
    job.resolve(null);
    this.onStuck(job.pattern);
    this._start(); // for the jobs of other patterns (they wait for its "ready")
  }
}
