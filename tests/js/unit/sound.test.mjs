// Unit tests of the browser client's sound (gateway/web/sound.js) and MSDP panels (panels.js).
// Run with Node's test runner: `node --test tests/js/unit/` (tests/test_browser_assets.py runs it).

import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_PLAYING, SoundBoard, mediaBase, mediaSource } from "../../../gateway/web/sound.js";
import { MsdpPanels, msdpRoom, vitalsGauges } from "../../../gateway/web/panels.js";

const BASE = mediaBase("https://game.example/sounds");

test("names resolve under media_url only", () => {
  assert.equal(BASE.href, "https://game.example/sounds/");
  assert.equal(mediaSource(BASE, "rain.wav"), "https://game.example/sounds/rain.wav");
  assert.equal(mediaSource(BASE, "weather/rain.wav", "https://game.example/sounds"),
    "https://game.example/sounds/weather/rain.wav");
  assert.equal(mediaSource(BASE, "a.wav", "https://game.example/sounds/sub/"), "https://game.example/sounds/sub/a.wav");
  for (const [name, url] of [
    ["x.wav", "https://other.example/sounds/"],
    ["https://other.example/x.wav", undefined],
    ["//other.example/x.wav", undefined],
    ["../secret.wav", undefined],
    ["%2e%2e/secret.wav", undefined],
    ["/x.wav", undefined],
    ["x.wav", "https://game.example/"],
    ["x.wav", "http://game.example/sounds/"],
    ["javascript:alert(1)", undefined],
    ["", undefined],
    [5, undefined],
  ]) {
    assert.equal(mediaSource(BASE, name, url), null, `${name} ${url}`);
  }
  assert.equal(mediaBase("ftp://x/"), null);
  assert.equal(mediaBase("not a url"), null);
});

class FakeAudio {
  constructor(log) {
    this.log = log;
    this.paused = true;
    this.listeners = {};
    this.attrs = {};
  }
  set src(v) { this._src = v; this.log.push(["src", v]); }
  get src() { return this._src; }
  addEventListener(name, f) { this.listeners[name] = f; }
  play() { this.paused = false; this.log.push(["play", this._src]); return Promise.resolve(); }
  pause() { this.paused = true; this.log.push(["pause", this._src]); }
  removeAttribute() {}
  end() { this.paused = true; this.listeners.ended(); }
}

function board() {
  const log = [];
  const made = [];
  const refused = [];
  const b = new SoundBoard({
    mediaUrl: "https://game.example/sounds/",
    createAudio: () => { const a = new FakeAudio(log); made.push(a); return a; },
    onRefused: (t) => refused.push(t),
  });
  return { b, log, made, refused };
}

test("off until turned on: nothing fetched; looping music starts when turned on", () => {
  const { b, log, made } = board();
  b.handle("Client.Media.Play", { name: "hit.wav", url: "https://game.example/sounds/", type: "sound" });
  b.handle("Client.Media.Play", { name: "theme.mid", type: "music", loops: -1 });
  assert.equal(made.length, 0);
  assert.deepEqual(log, []);
  b.setEnabled(true);
  assert.equal(made.length, 1);
  assert.equal(made[0].loop, true);
  b.setEnabled(false); // off and on again: the looping music comes back, nothing else
  assert.equal(made[0].paused, true);
  b.setEnabled(true);
  assert.equal(made.length, 2);
  assert.equal(made[1].src, "https://game.example/sounds/theme.mid");
  assert.deepEqual(log.slice(0, 2), [["src", "https://game.example/sounds/theme.mid"], ["play", "https://game.example/sounds/theme.mid"]]);
});

test("one sound per key, volume from message and master, loops counted, stop by type", () => {
  const { b, made, refused } = board();
  b.setEnabled(true);
  b.setVolume(0.5);
  b.play({ name: "a.wav", type: "sound", volume: 50, loops: 2, key: "k" });
  assert.equal(made[0].volume, 0.25);
  b.play({ name: "b.wav", type: "sound", key: "k" });
  assert.equal(made[0].paused, true); // the first sound of key k stopped
  assert.equal(b.playing.size, 1);
  b.play({ name: "m.mid", type: "music", loops: 2 });
  made[2].end();
  assert.equal(made[2].paused, false); // a second loop
  made[2].end();
  assert.equal(b.playing.has("m.mid"), false);
  b.play({ name: "m.mid", type: "music", loops: -1 });
  b.play({ name: "m.mid", type: "music", loops: -1 }); // the same music goes on
  assert.equal(made.length, 4);
  b.setVolume(1);
  assert.equal(made[3].volume, 1);
  b.stop({ type: "music" });
  assert.equal(made[3].paused, true);
  assert.equal(made[1].paused, false);
  b.play({ name: "x.wav", url: "https://evil.example/" });
  assert.equal(made.length, 4);
  assert.equal(refused.length, 1);
  b.setEnabled(false);
  assert.equal(made[1].paused, true);
  assert.equal(b.playing.size, 0);
});

test("no media_url: no sound at all", () => {
  const b = new SoundBoard({ mediaUrl: null, createAudio: () => assert.fail("made") });
  b.setEnabled(true);
  b.play({ name: "a.wav" });
  assert.equal(b.available, false);
});

test("MSDP vitals and room feed the same panels as GMCP", () => {
  assert.deepEqual(vitalsGauges({ HEALTH: "50", HEALTH_MAX: "100", MANA: "3" }), [{ name: "HEALTH", value: 50, max: 100 }]);
  assert.deepEqual(vitalsGauges({ hp: 1, maxhp: 2 }), [{ name: "hp", value: 1, max: 2 }]);
  const drawn = [];
  const rooms = [];
  const panels = new MsdpPanels({ vitals: { update: (d) => drawn.push(vitalsGauges(d)) }, room: { update: (r) => rooms.push(r) } });
  panels.update({ HEALTH_MAX: "200" });
  panels.update({ HEALTH: "150" });
  assert.deepEqual(drawn.at(-1), [{ name: "HEALTH", value: 150, max: 200 }]);
  panels.update({ ROOM: { VNUM: "1", NAME: "Clearing", AREA: "Forest", EXITS: { n: "2", e: "3" } } });
  assert.deepEqual(rooms, [{ name: "Clearing", area: "Forest", exits: { n: "2", e: "3" } }]);
  assert.deepEqual(msdpRoom({ ROOM_NAME: "Hall", AREA_NAME: "Keep", ROOM_EXITS: { s: "9" } }),
    { name: "Hall", area: "Keep", exits: { s: "9" } });
  assert.equal(msdpRoom({ HEALTH: "1" }), null);
});

test("at most MAX_PLAYING sounds at once: a new key stops the one started longest ago", () => {
  const { b, made } = board();
  b.setEnabled(true);
  for (let i = 0; i < MAX_PLAYING + 10; i++) b.play({ name: "loop.wav", key: `k${i}`, loops: -1 });
  assert.equal(b.playing.size, MAX_PLAYING);
  assert.equal(made.filter((a) => !a.paused).length, MAX_PLAYING);
  assert.ok(made.slice(-MAX_PLAYING).every((a) => !a.paused));
  // A key played again is the newest: the next one stops another.
  b.play({ name: "again.wav", key: "k10", loops: -1 });
  b.play({ name: "new.wav", key: "new", loops: -1 });
  assert.ok(b.playing.has("k10") && b.playing.has("new") && !b.playing.has("k11"));
  assert.equal(made.filter((a) => !a.paused).length, MAX_PLAYING);
});

test("a session's end stops its loops and forgets music kept for later; a sound played once ends by itself", () => {
  const { b, made } = board();
  b.play({ name: "theme.mid", type: "music", loops: -1 }); // sound off: kept for when it is turned on
  b.endSession();
  b.setEnabled(true);
  assert.equal(made.length, 0); // the ended session's music does not start
  b.play({ name: "theme.mid", type: "music", loops: -1 });
  b.play({ name: "rain.wav", key: "rain", loops: -1 });
  b.play({ name: "bells.wav", key: "bells", loops: 3 });
  b.play({ name: "hit.wav" });
  b.endSession();
  assert.deepEqual(made.map((a) => a.paused), [true, true, true, false]);
  assert.deepEqual([...b.playing.keys()], ["hit.wav"]);
});

test("MSDP: what is kept for the gauges is bounded (names and text values of 100 characters at most)", () => {
  const drawn = [];
  const panels = new MsdpPanels({ vitals: { update: (d) => drawn.push(vitalsGauges(d)) }, room: { update() {} } });
  const mega = "9".repeat(1 << 20);
  for (let i = 0; i < 2000; i++) panels.update({ [`V${i}`]: mega, [`${"N".repeat(200)}${i}`]: "1" });
  assert.equal(panels.count, 1024);
  const kept = Object.entries(panels.values);
  assert.equal(kept.length, 1024);
  assert.ok(kept.every(([k, v]) => k.length <= 100 && v === null));
  panels.update({ HEALTH: "1".repeat(200), HEALTH_MAX: "100" }); // (past the 1,024: not kept)
  const fresh = new MsdpPanels({ vitals: { update: (d) => drawn.push(vitalsGauges(d)) }, room: { update() {} } });
  fresh.update({ HEALTH: "50", HEALTH_MAX: "100" });
  fresh.update({ HEALTH: "5".repeat(200) }); // a text too long for a number: the gauge is gone, not stale
  assert.deepEqual(drawn.at(-1), []);
  fresh.update({ HEALTH: "40" });
  assert.deepEqual(drawn.at(-1), [{ name: "HEALTH", value: 40, max: 100 }]);
});

test("a sound whose file cannot be played is stopped and forgotten (it never ends)", () => {
  const { b, made } = board();
  b.setEnabled(true);
  b.play({ name: "missing.wav", key: "m", loops: -1 });
  made[0].listeners.error();
  assert.equal(made[0].paused, true);
  assert.equal(b.playing.has("m"), false);
});
