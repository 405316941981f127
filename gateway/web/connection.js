// The game connection: the official phoenix client (vendor/phoenix.js, from
// npm) joined to `telnet:<uuid>`.
//
// - The topic's UUID is kept in sessionStorage: a reload joins the same
//   topic and the gateway resumes the session, replaying its scrollback.
// - `last_seq` rides in the join params (a closure, read at every rejoin),
//   so after a network drop the gateway replays exactly what was missed;
//   an event whose seq was already seen is ignored.
// - Exactly once (SPEC 7.1): every line goes through a CommandQueue
//   (commandqueue.js) and is pushed as `recv` with its number `n`; it stays
//   queued until the gateway answers. Lines typed while the channel is not
//   joined wait there; after each join the reply's `input_n` says which
//   reached the game, and the rest are pushed again, in order (the gateway
//   sends each `n` to the game once, so a push sent twice is harmless). Lines
//   that can no longer be delivered (the session ended, or the rejoin found
//   a new session) are reported "not delivered".
// - Pacing: a line the gateway refuses "rate limited" (more than its burst at
//   once: a `;;` line, an alias, what was typed while the connection was
//   down) stays queued; nothing more is pushed until a pause (the queue's
//   pauseMs) is over, then the queue goes on from it, one push at a time
//   (commandqueue.js). The log says once that lines are waiting.
// - Liveness: phoenix.js sends a heartbeat every HEARTBEAT_MS and closes the
//   socket when its reply has not come by the next one, so a connection
//   through which nothing arrives (no TCP close: a phone that changed
//   network) is given up within 2 x HEARTBEAT_MS; a push that gets no reply
//   within PUSH_TIMEOUT_MS counts as a dead connection too. The status then
//   says "Reconnecting…" and the socket connects again by itself.
// - Only phoenix.js's public API: whether the channel is joined is our own
//   record (join ok, then onError / onClose), never the channel's state.
// - phoenix.js reconnects with backoff, and at once when the tab becomes
//   visible; the `online` event reconnects at once too.

import { CommandQueue, RATE_LIMITED, queueKey } from "./commandqueue.js";
import { Socket } from "./vendor/phoenix.js";

/** A heartbeat every 5 s: a dead connection is noticed within 10 s (SPEC 7.1 allows 20). */
export const HEARTBEAT_MS = 5000;
/** A push without a reply for this long: the connection is dead. */
export const PUSH_TIMEOUT_MS = 10000;
/**
 * How long a join waits for its reply. A join that starts a session is answered once the
 * game's connection is open, or after the game's connect_timeout (SPEC 4.2), which may be
 * longer than PUSH_TIMEOUT_MS: a join given up sooner sends phx_leave, which abandons that
 * connection, and the rejoin starts another, for ever. A dead link is still noticed by the
 * heartbeat meanwhile.
 */
export const JOIN_TIMEOUT_MS = 120000;

const OUTPUT_EVENTS = ["echo", "prompt", "gmcp", "option"];

export function socketUrl() {
  const url = new URL("socket", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/** A random UUID, also where crypto.randomUUID is missing (plain-http pages). */
export function newUuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class GameConnection {
  /**
   * game: the game's name ("" for the gateway's default); token: a JWT or
   * null; screenReader: join with "screen_reader": true;
   * on: {status(state, text), event(name, payload), joined(response),
   * notice(text)}. `state` is connecting, connected, reconnecting or ended.
   */
  constructor({ game, token, screenReader, on }) {
    this.game = game;
    this.screenReader = screenReader;
    this.on = on;
    this.topicKey = `mud-gateway:topic:${game}`;
    this.channel = null;
    this.queue = null;
    this.joined = false; // the join was answered ok and no error or close came since
    this.epoch = 0; // grows at each join and each loss: a push's timeout from before is stale
    this.lastSeq = 0;
    this.size = null;
    this.pause = null; // the timer of the queue's pause after a "rate limited" refusal
    this.ended = false;
    this.endedWhy = ""; // once ended: why a line can no longer be delivered ("the session ended")
    const options = { heartbeatIntervalMs: HEARTBEAT_MS, timeout: PUSH_TIMEOUT_MS };
    if (token) options.authToken = token;
    this.socket = new Socket(socketUrl(), options);
    this.socket.onClose(() => this._lost());
    this.socket.onError(() => this._lost());
    window.addEventListener("online", () => this.reconnectNow());
  }

  /** Join the session kept in this tab, or a new one. */
  start() {
    let uuid = sessionStorage.getItem(this.topicKey);
    if (!uuid) {
      uuid = newUuid();
      sessionStorage.setItem(this.topicKey, uuid);
    }
    const topic = `telnet:${uuid}`;
    this.ended = false;
    this.joined = false;
    this.lastSeq = 0;
    this.queue = new CommandQueue(sessionStorage, queueKey(topic));
    this.on.status("connecting", "Connecting…");
    const channel = this.socket.channel(topic, () => this._params());
    this.channel = channel;
    for (const name of OUTPUT_EVENTS) {
      channel.on(name, (payload) => {
        if (typeof payload.seq === "number") {
          if (payload.seq <= this.lastSeq) return; // already shown
          this.lastSeq = payload.seq;
        }
        this.on.event(name, payload);
      });
    }
    channel.on("disconnect", ({ reason, detail }) => this._end("Disconnected", reason, detail));
    channel.onError(() => channel === this.channel && this._lost());
    channel.onClose(() => channel === this.channel && this._lost());
    channel
      .join(JOIN_TIMEOUT_MS) // (also its rejoins'; a recv push gives its own, PUSH_TIMEOUT_MS)
      .receive("ok", (response) => {
        if (channel !== this.channel || this.ended) return;
        if (!response.resumed) this.lastSeq = 0; // a new session counts from 1
        this.joined = true;
        this.epoch += 1;
        this._stopPause(); // (the queue's join reply ends it)
        this.on.status("connected", "Connected");
        this.on.joined(response);
        const { resend, lost } = this.queue.joined(response);
        this._notDelivered(lost, "a new session started");
        if (this.size) channel.push("naws", this.size);
        for (const entry of resend) this._push(entry);
      })
      .receive("error", ({ reason, detail }) => {
        if (channel !== this.channel) return;
        this._end("Could not join", reason, detail);
      });
    this.socket.connect();
  }

  /** A new session after the last one ended (the "connect again" button). */
  again() {
    sessionStorage.removeItem(this.topicKey);
    this.start();
  }

  /**
   * Send a line to the game, exactly once: now, or once the session is back (while the
   * socket is down the line waits in the queue: true). `secret` (typed while echo was
   * off): kept in memory only. False when the session has ended (or its join failed): the
   * line can no longer be delivered, `endedWhy` says why.
   */
  send(text, secret = false) {
    if (this.ended || !this.queue) return false;
    this.queue.add(text, secret);
    this._pushNext();
    return true;
  }

  /** The window size in characters; sent now and after every (re)join. */
  naws(width, height) {
    if (this.size && this.size.width === width && this.size.height === height) return;
    this.size = { width, height };
    if (this.joined) this.channel.push("naws", this.size);
  }

  reconnectNow() {
    if (this.ended || this.socket.isConnected()) return;
    this.socket.disconnect(() => this.socket.connect());
  }

  _params() {
    const params = {};
    if (this.game) params.game = this.game;
    if (this.screenReader) params.screen_reader = true;
    if (this.lastSeq > 0) params.last_seq = this.lastSeq;
    return params;
  }

  /** Push what the queue lets go now (everything, or one at a time after a refusal). */
  _pushNext() {
    if (!this.joined) return;
    for (const entry of this.queue.take()) this._push(entry);
  }

  _push(entry) {
    const epoch = this.epoch;
    const queue = this.queue;
    if (entry.late) this.on.notice(`Sent late (rate limited): ${this._what(entry)} went after a later command.`);
    this.channel
      .push("recv", { message: entry.text, n: entry.n }, PUSH_TIMEOUT_MS)
      .receive("ok", () => {
        queue.confirm(entry.n); // sent now, or a duplicate the game already got
        if (queue === this.queue) this._pushNext();
      })
      .receive("error", ({ reason }) => {
        // (Refused by a connection given up since: the rejoin has sent it again.)
        if (reason === RATE_LIMITED && epoch !== this.epoch) return;
        const waiting = queue.careful; // a refusal came before: the log said so
        const refused = queue.refuse(entry.n, reason);
        if (refused) this.on.notice(`Not sent (${reason}): ${this._what(refused)}${refused.secret ? "." : ""}`);
        if (queue !== this.queue) return;
        if (!queue.held) {
          this._pushNext(); // (one at a time since an earlier refusal: the next one)
          return;
        }
        if (!waiting) {
          const count = queue.pending.length;
          this.on.notice(`Rate limited: ${count} line${count === 1 ? "" : "s"} waiting, sent on in order shortly.`);
        }
        this._startPause();
      })
      .receive("timeout", () => {
        // No reply: the connection is dead (unless it was given up since, and this push with it).
        if (epoch === this.epoch && this.joined && !this.ended) this._dead();
      });
  }

  /** After a "rate limited" refusal: the queue goes on once its pause is over. */
  _startPause() {
    if (this.pause !== null) return;
    this.pause = setTimeout(() => {
      this.pause = null;
      this.queue.resume();
      this._pushNext();
    }, this.queue.pauseMs);
  }

  _stopPause() {
    if (this.pause === null) return;
    clearTimeout(this.pause);
    this.pause = null;
  }

  /** The connection is dead though no close came: reconnect now. */
  _dead() {
    this._lost();
    this.socket.disconnect(() => this.socket.connect());
  }

  _lost() {
    if (this.ended || !this.channel) return;
    this.joined = false;
    this.epoch += 1;
    this._stopPause(); // the rejoin sends everything again
    this.on.status("reconnecting", "Reconnecting…");
  }

  _notDelivered(entries, why) {
    for (const e of entries) this.on.notice(`Not delivered (${why}): ${this._what(e)}${e.secret ? "." : ""}`);
  }

  /** A queued line as the log may show it (never a line typed while echo was off). */
  _what(entry) {
    return entry.secret ? "a line typed while echo was off" : entry.text;
  }

  _end(what, reason, detail) {
    if (this.ended) return;
    this.ended = true;
    this.endedWhy = what === "Could not join" ? "the game could not be joined" : "the session ended";
    const wasJoined = this.joined;
    this.joined = false;
    this.epoch += 1;
    this._stopPause();
    const lost = this.queue ? this.queue.end() : [];
    sessionStorage.removeItem(this.topicKey); // this session is over: the next one is new
    // A failed join would be retried by phoenix.js: leave stops that.
    if (this.channel && !wasJoined) this.channel.leave();
    this.on.status("ended", `${what}: ${reason}${detail ? ` (${detail})` : ""}`);
    this._notDelivered(lost, this.endedWhy);
  }
}
