// Play the bundled demo game through mud-gateway with the official phoenix.js
// client, as a browser would.
//
//   node tests/js/play_demo.mjs ws://127.0.0.1:PORT/socket
//
// Prints one JSON line per check ({"check": ..., "ok": true|false, ...}) and
// exits 0 only when every check passed (1 on a failed check, 2 on the overall
// timeout, 3 on bad usage). Run by tests/test_phoenix_js.py; the npm packages
// come from `./dev setup` (npm ci in tests/js).

import { randomUUID } from "node:crypto";
import { Socket } from "phoenix";
import WebSocket from "ws";

const OVERALL_TIMEOUT_MS = 20000;
const STEP_TIMEOUT_MS = 5000;
const SENT_AT_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const OUTPUT_EVENTS = ["echo", "prompt", "gmcp", "option"];

const url = process.argv[2];
if (!url || !/^wss?:\/\//.test(url)) {
  console.error("usage: node play_demo.mjs ws://HOST:PORT/socket");
  process.exit(3);
}

let passed = 0;
let finished = false;

function report(check, ok, details = {}) {
  console.log(JSON.stringify({ check, ok, ...details }));
}

class CheckFailed extends Error {}

function pass(check, details = {}) {
  passed += 1;
  report(check, true, details);
}

function fail(check, message, details = {}) {
  report(check, false, { error: message, ...details });
  throw new CheckFailed(`${check}: ${message}`);
}

function expect(check, cond, message, details = {}) {
  if (cond) pass(check, details);
  else fail(check, message, details);
}

const overallTimer = setTimeout(() => {
  if (finished) return;
  finished = true;
  report("overall", false, {
    error: `did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`,
    last_events: events.slice(-10),
  });
  console.error(`play_demo: FAILED: overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(2);
}, OVERALL_TIMEOUT_MS);

// ---------------------------------------------------------------------------
// Socket and bookkeeping of everything received
// ---------------------------------------------------------------------------

const socket = new Socket(url, {
  transport: WebSocket, // Node 20 has no global WebSocket
  heartbeatIntervalMs: 200, // several heartbeat round trips during the run
  timeout: STEP_TIMEOUT_MS, // push reply timeout
  // never reconnect during the test: a reconnect would hide a dropped socket
  reconnectAfterMs: () => 60000,
  rejoinAfterMs: () => 60000,
});

const socketProblems = []; // errors and closes of the WebSocket
let expectingClose = false;
socket.onError((error) => {
  socketProblems.push({ kind: "error", message: String(error && (error.message || error.type || error)) });
});
socket.onClose((event) => {
  if (!expectingClose) {
    socketProblems.push({ kind: "close", code: event && event.code, reason: event && String(event.reason || "") });
  }
});

const rawMessages = []; // every decoded frame: {topic, event, payload, ref, join_ref}
let heartbeatReplies = 0;
const waiters = []; // raw-message waiters: {pred, resolve}
socket.onMessage((msg) => {
  rawMessages.push(msg);
  if (msg.topic === "phoenix" && msg.event === "phx_reply" && msg.payload && msg.payload.status === "ok") {
    heartbeatReplies += 1;
  }
  for (const w of [...waiters]) {
    if (w.pred(msg)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(msg);
    }
  }
});

function waitRaw(label, pred, timeoutMs = STEP_TIMEOUT_MS) {
  const found = rawMessages.find(pred);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const w = { pred, resolve: (m) => { clearTimeout(t); resolve(m); } };
    const t = setTimeout(() => {
      waiters.splice(waiters.indexOf(w), 1);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label}`));
    }, timeoutMs);
    waiters.push(w);
  });
}

function connect() {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      socket.off([ref, errRef]);
      reject(new Error(`socket did not open within ${STEP_TIMEOUT_MS} ms`));
    }, STEP_TIMEOUT_MS);
    const ref = socket.onOpen(() => {
      clearTimeout(t);
      socket.off([ref, errRef]);
      resolve();
    });
    const errRef = socket.onError((error) => {
      clearTimeout(t);
      socket.off([ref, errRef]);
      expectingClose = true;
      socket.disconnect();
      reject(new Error(`could not open the WebSocket ${socket.endPointURL()}: ` +
        String(error && (error.message || error.type || error))));
    });
    socket.connect();
  });
}

// Output events of the game channel, in arrival order.
const events = []; // {event, payload}
const seqProblems = [];
let lastSeq = 0;
let disconnectSeen = null;
let eventWaiters = [];

function recordEvent(event, payload) {
  events.push({ event, payload });
  if (OUTPUT_EVENTS.includes(event)) {
    const seq = payload && payload.seq;
    if (!Number.isInteger(seq)) {
      seqProblems.push(`${event} without an integer seq: ${JSON.stringify(payload)}`);
    } else if (seq !== lastSeq + 1) {
      seqProblems.push(`${event} has seq ${seq}, expected ${lastSeq + 1}`);
    }
    if (Number.isInteger(seq)) lastSeq = seq;
  }
  const sentAt = payload && payload.sent_at;
  if (typeof sentAt !== "string" || !SENT_AT_RE.test(sentAt) || Number.isNaN(Date.parse(sentAt))) {
    seqProblems.push(`${event} has a bad sent_at: ${JSON.stringify(sentAt)}`);
  }
  for (const w of [...eventWaiters]) w();
}

// Wait, from index `from` of `events`, for the first event matching `pred`;
// resolves with its index.
function waitEvent(label, from, pred, timeoutMs = STEP_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const scan = () => {
      for (let i = from; i < events.length; i++) {
        if (pred(events[i])) return i;
      }
      return -1;
    };
    const now = scan();
    if (now >= 0) return resolve(now);
    const w = () => {
      const i = scan();
      if (i >= 0) {
        eventWaiters = eventWaiters.filter((x) => x !== w);
        clearTimeout(t);
        resolve(i);
      }
    };
    const t = setTimeout(() => {
      eventWaiters = eventWaiters.filter((x) => x !== w);
      reject(new Error(
        `timed out after ${timeoutMs} ms waiting for ${label}; events since: ` +
        JSON.stringify(events.slice(from).map((e) => [e.event, e.payload]))));
    }, timeoutMs);
    eventWaiters.push(w);
  });
}

// Push and resolve with {status, response} whatever the status.
function pushReply(channel, event, payload) {
  return new Promise((resolve) => {
    channel.push(event, payload)
      .receive("ok", (response) => resolve({ status: "ok", response }))
      .receive("error", (response) => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout", response: null }));
  });
}

async function expectOk(check, channel, event, payload) {
  const r = await pushReply(channel, event, payload);
  expect(check, r.status === "ok", `push ${event} ${JSON.stringify(payload)} got ${JSON.stringify(r)}`,
    { reply: r });
}

async function expectError(check, channel, event, payload, reason) {
  const r = await pushReply(channel, event, payload);
  expect(check, r.status === "error" && r.response && r.response.reason === reason,
    `push ${event} ${JSON.stringify(payload)}: expected error "${reason}", got ${JSON.stringify(r)}`,
    { reply: r });
}

const healthUrl = url.replace(/^ws/, "http").replace(/\/socket\/?(websocket)?\/?$/, "") + "/healthz";

async function sessions() {
  const res = await fetch(healthUrl);
  const body = await res.json();
  return body.sessions;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// The play-through
// ---------------------------------------------------------------------------

async function main() {
  await connect();
  pass("socket_open", { url, vsn: socket.vsn, endpoint: socket.endPointURL() });

  const topic = `telnet:${randomUUID()}`;
  const channel = socket.channel(topic, {});
  for (const ev of [...OUTPUT_EVENTS, "disconnect"]) {
    channel.on(ev, (payload) => {
      if (ev === "disconnect") disconnectSeen = payload;
      recordEvent(ev, payload);
    });
  }

  // join
  const join = await new Promise((resolve) => {
    channel.join()
      .receive("ok", (response) => resolve({ status: "ok", response }))
      .receive("error", (response) => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout", response: null }));
  });
  expect("join", join.status === "ok" && join.response && typeof join.response.game === "string"
    && join.response.resumed === false,
  `expected ok {game, resumed: false}, got ${JSON.stringify(join)}`, { topic, reply: join });

  // name prompt
  let i = await waitEvent("the name prompt", 0,
    (e) => e.event === "prompt" && e.payload.message.includes("By what name do you wish to be known?"));
  pass("name_prompt", { message: events[i].payload.message });
  const bannerText = events.slice(0, i).filter((e) => e.event === "echo").map((e) => e.payload.message).join("");
  expect("banner", bannerText.includes("Welcome to the mud-gateway demo!"),
    "no banner echo before the name prompt", { echo_events: i });

  // name -> option echo:false, then "Password: "
  let mark = events.length;
  await expectOk("recv_name_ok", channel, "recv", { message: "Alice" });
  const pwPrompt = await waitEvent('the "Password: " prompt', mark,
    (e) => e.event === "prompt" && e.payload.message === "Password: ");
  const echoOff = events.slice(mark, pwPrompt).findIndex(
    (e) => e.event === "option" && e.payload.type === "echo" && e.payload.echo === false);
  expect("echo_off_before_password_prompt", echoOff >= 0,
    `no option {type:"echo", echo:false} before the password prompt; events: ${JSON.stringify(events.slice(mark, pwPrompt + 1))}`);

  // password -> echo:true, welcome, Char.Vitals, Room.Info, prompt (in game order)
  mark = events.length;
  await expectOk("recv_password_ok", channel, "recv", { message: "pw" });
  const echoOn = await waitEvent("option echo:true", mark,
    (e) => e.event === "option" && e.payload.type === "echo" && e.payload.echo === true);
  pass("echo_on", { seq: events[echoOn].payload.seq });
  const vitals = await waitEvent("gmcp Char.Vitals", echoOn,
    (e) => e.event === "gmcp" && e.payload.module === "Char.Vitals");
  const vdata = events[vitals].payload.data;
  expect("gmcp_char_vitals", vdata && typeof vdata.hp === "number" && Number.isFinite(vdata.hp),
    `Char.Vitals data without a numeric hp: ${JSON.stringify(vdata)}`, { data: vdata });
  const welcome = events.slice(echoOn, vitals).filter((e) => e.event === "echo").map((e) => e.payload.message).join("");
  expect("welcome_text", welcome.includes("Welcome, Alice!"),
    `no "Welcome, Alice!" echo between echo:true and Char.Vitals: ${JSON.stringify(welcome)}`);
  const room1 = await waitEvent("gmcp Room.Info", vitals,
    (e) => e.event === "gmcp" && e.payload.module === "Room.Info");
  const room1data = events[room1].payload.data;
  expect("gmcp_room_info", room1data && Number.isInteger(room1data.num),
    `Room.Info data without an integer num: ${JSON.stringify(room1data)}`, { data: room1data });
  i = await waitEvent("a vitals prompt", room1,
    (e) => e.event === "prompt" && /<\d+hp \d+mp>/.test(e.payload.message));
  pass("game_prompt", { message: events[i].payload.message });

  // north -> a new room
  mark = events.length;
  await expectOk("recv_north_ok", channel, "recv", { message: "north" });
  const room2 = await waitEvent("gmcp Room.Info after north", mark,
    (e) => e.event === "gmcp" && e.payload.module === "Room.Info");
  const room2data = events[room2].payload.data;
  expect("moved_north", room2data && Number.isInteger(room2data.num) && room2data.num !== room1data.num,
    `Room.Info after north has num ${JSON.stringify(room2data && room2data.num)}, was ${room1data.num}`,
    { from: room1data.num, to: room2data && room2data.num, name: room2data && room2data.name });
  await waitEvent("the prompt after north", room2, (e) => e.event === "prompt");

  // gmcp and naws pushes
  mark = events.length;
  await expectOk("gmcp_core_ping_ok", channel, "gmcp", { module: "Core.Ping" });
  await waitEvent("the game's Core.Ping answer", mark,
    (e) => e.event === "gmcp" && e.payload.module === "Core.Ping");
  pass("gmcp_core_ping_answered");
  await expectOk("naws_ok", channel, "naws", { width: 120, height: 40 });

  // error replies
  await expectError("naws_invalid_size", channel, "naws", { width: 0, height: 5 }, "invalid size");
  await expectError("gmcp_invalid_module", channel, "gmcp", { module: "bad module!" }, "invalid module");

  // a second channel to an unknown game; phoenix.js would retry it: leave on the first error
  const bad = socket.channel(`telnet:${randomUUID()}`, { game: "nope" });
  const badJoin = await new Promise((resolve) => {
    bad.join()
      .receive("ok", (response) => { bad.leave(); resolve({ status: "ok", response }); })
      .receive("error", (response) => { bad.leave(); resolve({ status: "error", response }); })
      .receive("timeout", () => { bad.leave(); resolve({ status: "timeout", response: null }); });
  });
  expect("join_unknown_game", badJoin.status === "error" && badJoin.response
    && badJoin.response.reason === "unknown game",
  `expected join error "unknown game", got ${JSON.stringify(badJoin)}`, { reply: badJoin });

  // the game channel is unaffected
  mark = events.length;
  await expectOk("recv_look_ok", channel, "recv", { message: "look" });
  await waitEvent("the prompt after look", mark, (e) => e.event === "prompt");
  pass("game_channel_still_works");

  // heartbeats: at least two round trips by now (interval 200 ms)
  const hbDeadline = Date.now() + 3000;
  while (heartbeatReplies < 2 && Date.now() < hbDeadline) await sleep(50);
  expect("heartbeats", heartbeatReplies >= 2, `only ${heartbeatReplies} heartbeat replies`,
    { replies: heartbeatReplies });

  // the demo game offers MSSP: /api/games shows what the session received
  const games = await (await fetch(healthUrl.replace(/\/healthz$/, "/api/games"))).json();
  const demo = games.games.find((g) => g.name === "demo");
  expect("api_games_mssp", demo && demo.default === true && demo.mssp && demo.mssp.NAME === "Demo MUD",
    `api/games: ${JSON.stringify(games)}`, { demo });

  // sessions before leaving
  const before = await sessions();
  expect("healthz_session_alive", before >= 1, `healthz sessions = ${before} while joined`, { sessions: before });

  // leave: reply ok, then phx_close; the session ends at once
  expect("no_disconnect_before_leave", disconnectSeen === null,
    `got disconnect ${JSON.stringify(disconnectSeen)}`);
  const joinRef = channel.joinRef();
  const leave = await new Promise((resolve) => {
    channel.leave()
      .receive("ok", (response) => resolve({ status: "ok", response }))
      .receive("error", (response) => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout", response: null }));
  });
  expect("leave_ok", leave.status === "ok", `leave got ${JSON.stringify(leave)}`, { reply: leave });
  await waitRaw("phx_close after the leave",
    (m) => m.topic === topic && m.event === "phx_close" && m.join_ref === joinRef);
  pass("phx_close_after_leave");

  let after = await sessions();
  const sessDeadline = Date.now() + 2000;
  while (after !== 0 && Date.now() < sessDeadline) {
    await sleep(50);
    after = await sessions();
  }
  expect("session_ended", after === 0, `healthz sessions = ${after} after the leave`, { sessions: after });

  // every output event: seq 1, 2, 3, ... and a well-formed sent_at
  const outputs = events.filter((e) => OUTPUT_EVENTS.includes(e.event));
  expect("seq_and_sent_at", seqProblems.length === 0 && outputs.length > 0 && outputs[0].payload.seq === 1,
    seqProblems.length ? seqProblems.slice(0, 10).join("; ")
      : `first seq is ${outputs.length ? outputs[0].payload.seq : "none"}, expected 1`,
    { events: outputs.length, last_seq: lastSeq });

  // pushes of the game channel carry its join_ref and a null ref
  const badFrames = rawMessages.filter((m) => m.topic === topic && OUTPUT_EVENTS.includes(m.event)
    && (m.join_ref !== joinRef || m.ref !== null));
  expect("push_refs", badFrames.length === 0,
    `pushes with a wrong join_ref/ref: ${JSON.stringify(badFrames.slice(0, 3))}`);

  expect("socket_stayed_up", socketProblems.length === 0,
    `the WebSocket errored or closed during the run: ${JSON.stringify(socketProblems)}`);

  expectingClose = true;
  await new Promise((resolve) => socket.disconnect(resolve, 1000, "done"));
}

main().then(
  () => {
    finished = true;
    clearTimeout(overallTimer);
    report("all", true, { passed });
    process.exit(0);
  },
  (err) => {
    finished = true;
    clearTimeout(overallTimer);
    if (!(err instanceof CheckFailed)) {
      report("error", false, { error: String(err && err.message ? err.message : err) });
    }
    console.error(`play_demo: FAILED after ${passed} passed checks: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
