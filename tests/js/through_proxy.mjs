// Play a session through a reverse proxy (nginx, wss://) with the official
// phoenix.js client, as a browser on another address would:
//
//   node tests/js/through_proxy.mjs wss://HOST:PORT/socket ORIGIN LOCAL_ADDRESS IDLE_MS
//
// The WebSocket carries `Origin: ORIGIN`, leaves from LOCAL_ADDRESS (e.g.
// 127.0.0.5, so the proxy sees a client address of its own) and carries a
// forged X-Forwarded-For that must not be believed. Steps: join, wait for the
// game's "hello through nginx", send "look", then only heartbeats for IDLE_MS
// (longer than the proxy's read timeout), then send "after idle", leave.
// Prints one JSON line per check and exits 0 only when all passed. The CA of
// the proxy's certificate comes from NODE_EXTRA_CA_CERTS. Run by
// tests/test_nginx.py.

import { randomUUID } from "node:crypto";
import { Socket } from "phoenix";
import WebSocket from "ws";

const [url, origin, localAddress, idleArg] = process.argv.slice(2);
const IDLE_MS = Number(idleArg);
if (!url || !origin || !localAddress || !Number.isFinite(IDLE_MS)) {
  console.error("usage: node through_proxy.mjs wss://HOST:PORT/socket ORIGIN LOCAL_ADDRESS IDLE_MS");
  process.exit(3);
}
const STEP_MS = 10000;
const FORGED_XFF = "198.51.100.66";

function report(check, ok, details = {}) {
  console.log(JSON.stringify({ check, ok, ...details }));
}
function fail(check, error) {
  report(check, false, { error });
  process.exit(1);
}
const overall = setTimeout(() => fail("overall", "did not finish in time"), IDLE_MS + 6 * STEP_MS);

// What a browser would send: its page's Origin; and a header a player might forge.
class BrowserLikeWebSocket extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols, { origin, localAddress, headers: { "X-Forwarded-For": FORGED_XFF } });
  }
}

const socket = new Socket(url, {
  transport: BrowserLikeWebSocket,
  heartbeatIntervalMs: 500,
  timeout: STEP_MS,
  reconnectAfterMs: () => 600000, // a reconnect would hide a dropped socket
  rejoinAfterMs: () => 600000,
});
let heartbeats = 0;
let closed = null;
socket.onMessage((m) => {
  if (m.topic === "phoenix" && m.event === "phx_reply" && m.payload.status === "ok") heartbeats += 1;
});
socket.onClose((e) => { closed = closed || { code: e && e.code, reason: String((e && e.reason) || "") }; });
socket.onError((e) => { closed = closed || { error: String((e && (e.message || e.type)) || e) }; });

function reply(push) {
  return new Promise((resolve) => {
    push.receive("ok", (r) => resolve({ status: "ok", response: r }))
      .receive("error", (r) => resolve({ status: "error", response: r }))
      .receive("timeout", () => resolve({ status: "timeout" }));
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  await new Promise((resolve, reject) => {
    socket.onOpen(resolve);
    socket.onError(() => reject(new Error(`could not open ${socket.endPointURL()}`)));
    socket.connect();
  });
  report("socket_open", true, { endpoint: socket.endPointURL() });

  const topic = `telnet:${randomUUID()}`;
  const channel = socket.channel(topic, {});
  const echoes = [];
  channel.on("echo", (p) => echoes.push(p.message));
  const joined = await reply(channel.join());
  if (joined.status !== "ok") fail("join", JSON.stringify(joined));
  report("join", true, { response: joined.response });

  const deadline = Date.now() + STEP_MS;
  while (!echoes.join("").includes("hello through nginx") && Date.now() < deadline) await sleep(20);
  if (!echoes.join("").includes("hello through nginx")) fail("game_text", JSON.stringify(echoes));
  report("game_text", true);

  const look = await reply(channel.push("recv", { message: "look" }));
  if (look.status !== "ok") fail("recv_look", JSON.stringify(look));
  report("recv_look", true);

  // Nothing but heartbeats for longer than the proxy's read timeout.
  const before = heartbeats;
  await sleep(IDLE_MS);
  if (closed) fail("outlives_proxy_read_timeout", JSON.stringify(closed));
  report("outlives_proxy_read_timeout", true, { idle_ms: IDLE_MS, heartbeats: heartbeats - before });

  const after = await reply(channel.push("recv", { message: "after idle" }));
  if (after.status !== "ok") fail("recv_after_idle", JSON.stringify(after));
  report("recv_after_idle", true);

  const left = await reply(channel.leave());
  if (left.status !== "ok") fail("leave", JSON.stringify(left));
  report("leave", true);
  await new Promise((resolve) => socket.disconnect(resolve, 1000, "done"));
}

main().then(
  () => { clearTimeout(overall); report("all", true); process.exit(0); },
  (err) => fail("error", String((err && err.message) || err)),
);
