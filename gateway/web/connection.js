// The game connection: the official phoenix client (vendor/phoenix.js, from
// npm) joined to `telnet:<uuid>`.
//
// - The topic's UUID is kept in sessionStorage: a reload joins the same
//   topic and the gateway resumes the session, replaying its scrollback.
// - `last_seq` rides in the join params (a closure, read at every rejoin),
//   so after a network drop the gateway replays exactly what was missed;
//   an event whose seq was already seen is ignored.
// - Lines sent while the channel is not joined wait here and go out, in
//   order, once it is joined again.
// - phoenix.js reconnects with backoff, and at once when the tab becomes
//   visible; the `online` event reconnects at once too.

import { Socket } from "./vendor/phoenix.js";

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
    this.lastSeq = 0;
    this.outbox = [];
    this.size = null;
    this.ended = false;
    this.socket = new Socket(socketUrl(), token ? { authToken: token } : {});
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
    this.ended = false;
    this.lastSeq = 0;
    this.on.status("connecting", "Connecting…");
    const channel = this.socket.channel(`telnet:${uuid}`, () => this._params());
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
    channel.onError(() => this._lost());
    channel
      .join()
      .receive("ok", (response) => {
        if (channel !== this.channel) return;
        if (!response.resumed) this.lastSeq = 0; // a new session counts from 1
        this.on.status("connected", "Connected");
        this.on.joined(response);
        if (this.size) channel.push("naws", this.size);
        const waiting = this.outbox.splice(0);
        for (const text of waiting) this._push(text);
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

  /** Send a line to the game now, or once the channel is back. */
  send(text) {
    if (this.ended) return false;
    if (this.channel && this.channel.canPush() && this.outbox.length === 0) this._push(text);
    else this.outbox.push(text);
    return true;
  }

  /** The window size in characters; sent now and after every (re)join. */
  naws(width, height) {
    if (this.size && this.size.width === width && this.size.height === height) return;
    this.size = { width, height };
    if (this.channel && this.channel.canPush()) this.channel.push("naws", this.size);
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

  _push(text) {
    this.channel
      .push("recv", { message: text })
      .receive("error", ({ reason }) => this.on.notice(`Not sent (${reason}): the game did not get that line.`));
  }

  _lost() {
    if (this.ended || !this.channel) return;
    this.on.status("reconnecting", "Reconnecting…");
  }

  _end(what, reason, detail) {
    if (this.ended) return;
    this.ended = true;
    const dropped = this.outbox.splice(0).length;
    sessionStorage.removeItem(this.topicKey); // this session is over: the next one is new
    // A failed join would be retried by phoenix.js: leave stops that.
    if (this.channel && ["errored", "joining"].includes(this.channel.state)) this.channel.leave();
    this.on.status("ended", `${what}: ${reason}${detail ? ` (${detail})` : ""}`);
    if (dropped) this.on.notice(`${dropped} line${dropped === 1 ? "" : "s"} not sent.`);
  }
}
