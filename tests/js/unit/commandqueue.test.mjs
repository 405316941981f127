// Unit tests of the command queue by `input_n` (gateway/web/commandqueue.js): exactly-once
// commands across drops, rejoins, reloads and the end of a session (SPEC 4.4, 7.1).

import { test } from "node:test";
import assert from "node:assert/strict";
import { CommandQueue, MAX_PAUSES, MAX_PAUSE_MS, PAUSE_MS, RATE_LIMITED, queueKey } from "../../../gateway/web/commandqueue.js";

/** sessionStorage's interface, in memory. */
class MemoryStorage {
  constructor() {
    this.data = new Map();
  }
  getItem(k) {
    return this.data.has(k) ? this.data.get(k) : null;
  }
  setItem(k, v) {
    this.data.set(k, String(v));
  }
  removeItem(k) {
    this.data.delete(k);
  }
}

const KEY = queueKey("telnet:00000000-0000-4000-8000-000000000000");
const texts = (entries) => entries.map((e) => e.text);
const numbers = (entries) => entries.map((e) => e.n);

/** The queue of a session's first join with `texts` added and pushed at once (take). */
function pushed(texts, storage = null) {
  const q = new CommandQueue(storage, KEY);
  q.joined({ resumed: false, input_n: 0 });
  for (const t of texts) q.add(t);
  q.take();
  return q;
}

test("commands are numbered from 1, growing, and held until confirmed", () => {
  const q = new CommandQueue(new MemoryStorage(), KEY);
  assert.deepEqual([q.add("look"), q.add("north")], [
    { n: 1, text: "look", secret: false }, { n: 2, text: "north", secret: false }]);
  assert.deepEqual(numbers(q.pending), [1, 2]);
  q.confirm(2); // replies may come in any order
  assert.deepEqual(numbers(q.pending), [1]);
  q.confirm(1);
  q.confirm(1); // a second answer for it (a duplicate reply after a resend) changes nothing
  assert.deepEqual(q.pending, []);
  assert.equal(q.add("east").n, 3);
});

test("a refused command is removed and handed back, not sent again", () => {
  const q = new CommandQueue(null, KEY);
  q.add("a");
  q.add("b");
  assert.deepEqual(q.refuse(1), { n: 1, text: "a", secret: false });
  assert.equal(q.refuse(1), null);
  assert.deepEqual(texts(q.joined({ resumed: true, input_n: 0 }).resend), ["b"]);
});

test("a rejoin drops what the game got (n <= input_n) and sends the rest again, in order", () => {
  const q = new CommandQueue(new MemoryStorage(), KEY);
  assert.deepEqual(q.joined({ game: "g", resumed: false, input_n: 0 }), { resend: [], lost: [] });
  for (const t of ["one", "two", "three", "four"]) q.add(t);
  q.confirm(1);
  const { resend, lost } = q.joined({ game: "g", resumed: true, replayed: 0, gap: false, input_n: 3 });
  assert.deepEqual(texts(resend), ["four"]);
  assert.deepEqual(lost, []);
  assert.deepEqual(numbers(q.pending), [4]); // still pending until its push is answered
  // The link drops again before the answer: the next rejoin sends it again, with the same n
  // (the gateway's input_n makes it reach the game once).
  assert.deepEqual(numbers(q.joined({ resumed: true, input_n: 3 }).resend), [4]);
  assert.deepEqual(q.joined({ resumed: true, input_n: 4 }).resend, []);
  assert.equal(q.add("five").n, 5);
});

test("commands typed before the first join are for the session it starts", () => {
  const q = new CommandQueue(new MemoryStorage(), KEY);
  q.add("name");
  assert.deepEqual(texts(q.joined({ resumed: false, input_n: 0 }).resend), ["name"]);
});

test("a new session after a known one: what was pending can no longer be delivered", () => {
  const q = new CommandQueue(new MemoryStorage(), KEY);
  q.joined({ resumed: false, input_n: 0 });
  q.add("north");
  q.add("kill rat");
  const { resend, lost } = q.joined({ resumed: false, input_n: 0 });
  assert.deepEqual(resend, []);
  assert.deepEqual(texts(lost), ["north", "kill rat"]);
  assert.deepEqual(q.pending, []);
  assert.ok(q.add("look").n > 2); // numbers keep growing: any positive growing n is fine
});

test("the end of the session: everything pending is lost, the storage cleared", () => {
  const storage = new MemoryStorage();
  const q = new CommandQueue(storage, KEY);
  q.joined({ resumed: false, input_n: 0 });
  q.add("a");
  q.add("b");
  assert.deepEqual(texts(q.end()), ["a", "b"]);
  assert.deepEqual(q.pending, []);
  assert.equal(storage.getItem(KEY), null);
  assert.deepEqual(q.end(), []);
});

test("a reload goes on counting and sends again only what the game did not get", () => {
  const storage = new MemoryStorage();
  const q = new CommandQueue(storage, KEY);
  q.joined({ resumed: false, input_n: 0 });
  q.add("one");
  q.confirm(1);
  q.add("two"); // pushed, the reply lost with the page
  q.add("three"); // not pushed yet
  const again = new CommandQueue(storage, KEY); // the reloaded page
  assert.deepEqual(numbers(again.pending), [2, 3]);
  const { resend, lost } = again.joined({ resumed: true, replayed: 5, gap: false, input_n: 2 });
  assert.deepEqual(texts(resend), ["three"]);
  assert.deepEqual(lost, []);
  assert.equal(again.add("four").n, 4);
  // A reload whose session ended meanwhile (the topic now starts a new one): not delivered.
  const third = new CommandQueue(storage, KEY);
  assert.deepEqual(texts(third.joined({ resumed: false, input_n: 0 }).lost), ["three", "four"]);
});

test("other topics have their own queue", () => {
  const storage = new MemoryStorage();
  new CommandQueue(storage, KEY).add("here");
  const other = new CommandQueue(storage, queueKey("telnet:11111111-1111-4111-8111-111111111111"));
  assert.deepEqual(other.pending, []);
  assert.equal(other.add("there").n, 1);
});

test("a line typed while echo was off is never stored, only its number", () => {
  const storage = new MemoryStorage();
  const q = new CommandQueue(storage, KEY);
  q.joined({ resumed: false, input_n: 0 });
  assert.deepEqual(q.add("hunter2", true), { n: 1, text: "hunter2", secret: true });
  q.add("look");
  assert.ok(!storage.getItem(KEY).includes("hunter2"));
  // In this page it is sent again like any other command.
  assert.deepEqual(texts(q.joined({ resumed: true, input_n: 0 }).resend), ["hunter2", "look"]);
  // After a reload its text is gone: confirmed if the game got it, else reported lost.
  const reloaded = new CommandQueue(storage, KEY);
  assert.deepEqual(reloaded.pending, [{ n: 1, text: undefined, secret: true }, { n: 2, text: "look", secret: false }]);
  const { resend, lost } = reloaded.joined({ resumed: true, input_n: 0 });
  assert.deepEqual(texts(resend), ["look"]);
  assert.deepEqual(lost, [{ n: 1, text: undefined, secret: true }]);
  const other = new MemoryStorage();
  new CommandQueue(other, KEY).add("swordfish", true);
  const gotIt = new CommandQueue(other, KEY); // reloaded: the game had got it
  assert.deepEqual(gotIt.joined({ resumed: true, input_n: 1 }), { resend: [], lost: [] });
});

test("a join reply's input_n above the counter moves it on (a counter lost with its storage)", () => {
  const q = new CommandQueue(null, KEY);
  q.joined({ resumed: true, input_n: 41 });
  assert.equal(q.add("look").n, 42);
  const odd = new CommandQueue(null, KEY);
  odd.add("a");
  assert.deepEqual(texts(odd.joined({ resumed: true, input_n: "7" }).resend), ["a"]); // not a number: 0
});

test("broken or foreign storage is ignored, full storage does not stop the queue", () => {
  const storage = new MemoryStorage();
  storage.setItem(KEY, "{not json");
  assert.equal(new CommandQueue(storage, KEY).add("a").n, 1);
  storage.setItem(KEY, JSON.stringify({ next: 3, session: true, pending: [{ n: 9, text: "x" }, { n: 2 }, "y",
    { n: 1, text: "ok" }] }));
  const q = new CommandQueue(storage, KEY);
  assert.deepEqual(q.pending, [{ n: 1, text: "ok", secret: false }]);
  assert.equal(q.add("b").n, 3);
  const full = { getItem: () => null, setItem: () => { throw new Error("QuotaExceededError"); }, removeItem() {} };
  const f = new CommandQueue(full, KEY);
  assert.equal(f.add("a").n, 1);
  assert.deepEqual(texts(f.end()), ["a"]);
  const disabled = { getItem() { throw new Error("SecurityError"); }, setItem() { throw new Error("x"); },
    removeItem() { throw new Error("x"); } };
  const d = new CommandQueue(disabled, KEY);
  assert.equal(d.add("a").n, 1);
  assert.deepEqual(texts(d.end()), ["a"]);
});

// Pacing: SPEC 3's token bucket refuses a `recv` past the burst ("rate limited", not sent).

test("a command refused rate limited stays queued; nothing is pushed until the pause is over", () => {
  const q = new CommandQueue(new MemoryStorage(), KEY);
  q.joined({ resumed: false, input_n: 0 });
  for (const t of ["a", "b", "c", "d"]) q.add(t);
  assert.deepEqual(numbers(q.take()), [1, 2, 3, 4]); // pushed at once, each marked in flight
  assert.deepEqual(q.take(), []); // (not twice)
  q.confirm(1);
  assert.equal(q.refuse(2, RATE_LIMITED), null); // kept, to be sent again
  assert.equal(q.refuse(3, RATE_LIMITED), null);
  assert.ok(q.held);
  q.add("e");
  assert.deepEqual(q.take(), []); // typed meanwhile: waits behind the refused ones
  assert.equal(q.refuse(4, RATE_LIMITED), null);
  assert.deepEqual(texts(q.pending), ["b", "c", "d", "e"]);
  q.resume();
  // From the refused one, in order, one push at a time: none overtakes a refused one.
  for (const [n, t] of [[2, "b"], [3, "c"], [4, "d"], [5, "e"]]) {
    const pushed = q.take();
    assert.deepEqual(pushed, [{ n, text: t, secret: false }]);
    assert.deepEqual(q.take(), []); // one in flight: the next waits for its answer
    q.confirm(n);
  }
  assert.deepEqual(q.pending, []);
  // Caught up: pushes go at once again.
  q.add("f");
  q.add("g");
  assert.deepEqual(numbers(q.take()), [6, 7]);
});

test("after the pause, the refused command waits for every push still in flight", () => {
  const q = pushed(["a", "b", "c"]);
  q.refuse(1, RATE_LIMITED);
  q.resume(); // the pause is over before 2 and 3 are answered
  assert.deepEqual(q.take(), []);
  q.refuse(2, RATE_LIMITED);
  assert.ok(q.held); // a refusal again: paused again
  q.resume();
  assert.deepEqual(q.take(), []); // 3 still in flight
  q.refuse(3, RATE_LIMITED);
  q.resume();
  assert.deepEqual(numbers(q.take()), [1]);
});

test("a command accepted behind a refused one: the refused one is numbered again, not a duplicate", () => {
  const storage = new MemoryStorage();
  const q = pushed(["a", "b", "c", "d"], storage);
  q.confirm(1);
  q.refuse(2, RATE_LIMITED); // the bucket empty...
  q.confirm(3); // ...and refilled by the time 3 came: the gateway's input_n is 3
  q.refuse(4, RATE_LIMITED);
  q.resume();
  // Sent again as 2, b would be answered "duplicate" and never reach the game: it gets a number
  // above 3, and d one after it (neither reached the game); b is marked late, d is not.
  assert.deepEqual(q.take(), [{ n: 5, text: "b", secret: false, late: true }]);
  q.confirm(5);
  assert.deepEqual(q.take(), [{ n: 6, text: "d", secret: false }]);
  assert.deepEqual(JSON.parse(storage.getItem(KEY)), { next: 7, session: true, pending: [{ n: 6, text: "d" }] });
  q.confirm(6);
  assert.equal(q.add("e").n, 7);
});

test("the pause doubles with each refusal in a row, up to its longest; a command taken resets it", () => {
  const q = new CommandQueue(null, KEY);
  q.joined({ resumed: false, input_n: 0 });
  q.add("a");
  const pauses = [];
  for (let i = 0; i < 7; i++) {
    q.take();
    q.refuse(1, RATE_LIMITED);
    pauses.push(q.pauseMs);
    q.resume();
  }
  assert.deepEqual(pauses, [PAUSE_MS, 2 * PAUSE_MS, 4 * PAUSE_MS, 8 * PAUSE_MS, 16 * PAUSE_MS, MAX_PAUSE_MS,
    MAX_PAUSE_MS].map((ms) => Math.min(ms, MAX_PAUSE_MS)));
  q.add("b");
  q.take();
  q.confirm(1);
  q.take();
  q.refuse(2, RATE_LIMITED);
  assert.equal(q.pauseMs, PAUSE_MS);
});

test("several refusals of one burst make one pause, not one each", () => {
  const q = pushed(["a", "b", "c"]);
  for (const n of [1, 2, 3]) q.refuse(n, RATE_LIMITED);
  assert.equal(q.pauseMs, PAUSE_MS);
});

test("other refusals still remove the command, and the queue goes on", () => {
  const q = pushed(["a", "b", "c"]);
  q.refuse(1, RATE_LIMITED);
  q.resume();
  q.refuse(2, "message too long");
  q.confirm(3);
  assert.deepEqual(q.take(), [{ n: 4, text: "a", secret: false, late: true }]); // 3 went first
  assert.deepEqual(q.refuse(4, "message too long"), { n: 4, text: "a", secret: false });
  assert.deepEqual(q.pending, []);
  assert.equal(q.refuse(9, RATE_LIMITED), null); // not pending: nothing to hold
  assert.ok(!q.held);
});

test("a rejoin ends the pause: everything the game did not get is pushed again, at once", () => {
  const q = pushed(["a", "b", "c"], new MemoryStorage());
  q.confirm(1);
  q.refuse(2, RATE_LIMITED);
  const { resend } = q.joined({ resumed: true, input_n: 1 }); // 3's answer lost with the link
  assert.deepEqual(numbers(resend), [2, 3]);
  assert.ok(!q.held);
  assert.deepEqual(q.take(), []); // in flight already
  q.add("d");
  assert.deepEqual(numbers(q.take()), [4]);
  // A refusal now, with the gateway's input_n at 3 after the rejoin's pushes: 2 goes again as 5.
  q.refuse(2, RATE_LIMITED);
  q.confirm(3);
  q.refuse(4, RATE_LIMITED);
  q.resume();
  assert.deepEqual(q.take(), [{ n: 5, text: "b", secret: false, late: true }]);
});

test("a line typed while echo was off keeps out of storage when numbered again", () => {
  const storage = new MemoryStorage();
  const q = new CommandQueue(storage, KEY);
  q.joined({ resumed: false, input_n: 0 });
  q.add("hunter2", true);
  q.add("look");
  q.take();
  q.refuse(1, RATE_LIMITED);
  q.confirm(2);
  q.resume();
  assert.deepEqual(q.take(), [{ n: 3, text: "hunter2", secret: true, late: true }]);
  assert.ok(!storage.getItem(KEY).includes("hunter2"));
});

test("a command no pause lets through is given up after MAX_PAUSES, and the queue goes on", () => {
  const q = new CommandQueue(null, KEY);
  q.joined({ resumed: false, input_n: 0 });
  q.add("a\nb\nc"); // more lines than the gateway's burst, or a game that does not read
  q.add("look");
  q.take();
  q.refuse(2, RATE_LIMITED); // (pipelined behind it)
  let total = 0;
  for (let i = 0; i < MAX_PAUSES; i++) {
    assert.equal(q.refuse(1, RATE_LIMITED), null);
    total += q.pauseMs;
    q.resume();
    assert.deepEqual(numbers(q.take()), [1]);
  }
  assert.ok(total >= 15000 && total <= 30000, total); // waited on the order of 20 s
  assert.deepEqual(q.refuse(1, RATE_LIMITED), { n: 1, text: "a\nb\nc", secret: false }); // reported
  assert.ok(!q.held);
  assert.deepEqual(numbers(q.take()), [2]); // at once, its own pauses from the first again
  q.refuse(2, RATE_LIMITED);
  assert.equal(q.pauseMs, PAUSE_MS);
});
