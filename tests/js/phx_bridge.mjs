// A line bridge to the official phoenix.js client, so that a Python test can
// play a game through mud-gateway exactly as a browser's phoenix.js would.
//
//   node tests/js/phx_bridge.mjs ws://127.0.0.1:PORT/socket '{"headers": {...}}'
//
// stdin, one JSON object a line:
//   {"op": "join", "topic": "telnet:<uuid>", "params": {...}}
//   {"op": "push", "id": N, "event": "recv", "payload": {...}}
//   {"op": "close"}
// stdout, one JSON object a line:
//   {"type": "open"}                                   the WebSocket is open
//   {"type": "join", "status": "ok"|"error"|"timeout", "response": {...}}
//   {"type": "reply", "id": N, "status": ..., "response": {...}}
//   {"type": "event", "event": "echo"|"prompt"|..., "payload": {...}}
//   {"type": "socket", "what": "error"|"close", ...}
// The optional second argument's "headers" are sent with the WebSocket
// upgrade (the `ws` package allows that, browsers do not: used for
// X-Forwarded-For behind a trusted proxy). Run by tests/real/; the npm
// packages come from `./dev setup` (npm ci in tests/js).

import { createInterface } from "node:readline";
import { Socket } from "phoenix";
import WebSocket from "ws";

const EVENTS = ["echo", "prompt", "gmcp", "option", "disconnect", "phx_close"];
const PUSH_TIMEOUT_MS = 20000;

const url = process.argv[2];
const options = JSON.parse(process.argv[3] || "{}");
if (!url || !/^wss?:\/\//.test(url)) {
  console.error("usage: node phx_bridge.mjs ws://HOST:PORT/socket [OPTIONS_JSON]");
  process.exit(3);
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

class HeaderWebSocket extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols, { headers: options.headers || {} });
  }
}

const socket = new Socket(url, {
  transport: HeaderWebSocket,
  timeout: PUSH_TIMEOUT_MS,
  // never reconnect: a reconnect would hide a dropped socket from the test
  reconnectAfterMs: () => 600000,
  rejoinAfterMs: () => 600000,
});
socket.onOpen(() => out({ type: "open" }));
socket.onError((e) => out({ type: "socket", what: "error", message: String(e && (e.message || e.type || e)) }));
socket.onClose((e) => out({ type: "socket", what: "close", code: e && e.code }));
socket.connect();

let channel = null;

function answer(push, report) {
  push
    .receive("ok", (response) => report("ok", response))
    .receive("error", (response) => report("error", response))
    .receive("timeout", () => report("timeout", null));
}

const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  if (!line.trim()) return;
  const msg = JSON.parse(line);
  if (msg.op === "join") {
    channel = socket.channel(msg.topic, msg.params || {});
    for (const ev of EVENTS) {
      channel.on(ev, (payload) => out({ type: "event", event: ev, payload }));
    }
    answer(channel.join(), (status, response) => out({ type: "join", status, response }));
  } else if (msg.op === "push") {
    answer(channel.push(msg.event, msg.payload),
      (status, response) => out({ type: "reply", id: msg.id, status, response }));
  } else if (msg.op === "close") {
    socket.disconnect(() => process.exit(0), 1000, "done");
  }
});
input.on("close", () => process.exit(0));
