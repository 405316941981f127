// N browsers (the official phoenix.js client, default reconnect settings) through
// an upgrade in place of mud-gateway; run by tests/test_upgrade_phoenix_js.py.
//
//   node tests/js/upgrade_flood.mjs ws://HOST:PORT/socket N TEXT_FILE
//
// Each client opens its own Socket and joins a new topic of the game "fake",
// one after the other (prints {"joined": i} after each, so the test can pair
// clients with the fake MUD's connections), then {"ready": true}. The join
// params are a function: on every rejoin they carry the highest seq seen
// (`last_seq`), as the browser client does. Client 0's echo text goes to
// TEXT_FILE; it is done when that text ends with "FLOOD-END\n" and every
// client has reconnected and been resumed. Prints one summary line and exits
// 0 (1 on the overall timeout).

import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { Socket } from "phoenix";
import WebSocket from "ws";

const [url, count, textFile] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const OVERALL_TIMEOUT_MS = 150000;
const OUTPUT_EVENTS = ["echo", "prompt", "gmcp", "option"];

const clients = [];
let text = [];

function summary(extra = {}) {
  return {
    clients: clients.map((c) => ({ opens: c.opens, joins: c.joins, resumed: c.resumed, errors: c.errors,
                                   disconnects: c.disconnects })),
    seqs: clients[0] ? clients[0].seqs.length : 0,
    strictly_increasing: clients[0] ? clients[0].seqs.every((s, i, a) => i === 0 || s > a[i - 1]) : false,
    ...extra,
  };
}

setTimeout(() => {
  console.log(JSON.stringify(summary({ timeout: true, tail: text.join("").slice(-200) })));
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

function start(i) {
  const c = { opens: 0, joins: 0, resumed: 0, errors: 0, disconnects: 0, seqs: [], lastSeq: 0 };
  clients.push(c);
  c.socket = new Socket(url, { transport: WebSocket });
  c.socket.onOpen(() => { c.opens += 1; });
  c.socket.connect();
  c.channel = c.socket.channel(`telnet:${randomUUID()}`, () => (
    c.lastSeq ? { game: "fake", last_seq: c.lastSeq } : { game: "fake" }));
  for (const name of OUTPUT_EVENTS) {
    c.channel.on(name, (payload) => {
      c.seqs.push(payload.seq);
      c.lastSeq = Math.max(c.lastSeq, payload.seq);
      if (i === 0 && name === "echo") text.push(payload.message);
    });
  }
  c.channel.on("disconnect", () => { c.disconnects += 1; });
  return new Promise((resolve) => {
    c.channel.join()
      .receive("ok", (response) => {
        c.joins += 1;
        if (response.resumed) c.resumed += 1;
        resolve();
      })
      .receive("error", () => { c.errors += 1; })
      .receive("timeout", () => { c.errors += 1; });
  });
}

for (let i = 0; i < count; i++) {
  await start(i);
  console.log(JSON.stringify({ joined: i }));
}
console.log(JSON.stringify({ ready: true }));

const done = () => text.length && text[text.length - 1].endsWith("FLOOD-END\n")
  && clients.every((c) => c.opens >= 2 && c.resumed >= 1);
const timer = setInterval(() => {
  if (!done()) return;
  clearInterval(timer);
  writeFileSync(textFile, text.join(""));
  console.log(JSON.stringify(summary()));
  process.exit(0);
}, 50);
