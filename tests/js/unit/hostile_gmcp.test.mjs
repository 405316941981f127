// Unit tests: GMCP data from a hostile game (any JSON where strings or numbers are expected)
// in the panels (gateway/web/panels.js) and the sound board (sound.js). Nothing throws, and
// what is not text or a number is not shown.
// Run with Node's test runner: `node --test tests/js/unit/` (tests/test_browser_assets.py runs it).

import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_EXITS, fullDirection, roomExits, vitalsGauges } from "../../../gateway/web/panels.js";
import { SoundBoard } from "../../../gateway/web/sound.js";

// JSON.parse, as the gateway's events arrive: objects whose toString/valueOf are not functions.
const NOT_TEXT = JSON.parse('{"toString": 1, "valueOf": "x"}');

test("exit names that are Object.prototype's keys stay as they are", () => {
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"]) {
    assert.equal(fullDirection(name), name.toLowerCase());
  }
  assert.equal(fullDirection("NW"), "northwest");
});

test("exits: objects in a list are left out, keys of an object are names", () => {
  const info = JSON.parse('{"exits": [{"toString": 1}, "north", 3, null, ["s"]]}');
  assert.deepEqual(roomExits(info), ["north", "3"]);
  assert.deepEqual(roomExits(JSON.parse('{"exits": {"__proto__": 1, "constructor": 2}}')), ["__proto__", "constructor"]);
});

test("vitals: a value or maximum that is not a number or a string is no gauge", () => {
  assert.deepEqual(vitalsGauges({ hp: NOT_TEXT, maxhp: 10, mp: 5, maxmp: NOT_TEXT, sp: 1, maxsp: 2 }),
    [{ name: "sp", value: 1, max: 2 }]);
  assert.deepEqual(vitalsGauges(JSON.parse('{"__proto__": 1, "max__proto__": 4}')), [{ name: "__proto__", value: 1, max: 4 }]);
});

test("sound: a name, volume or loops that is not text or a number is refused or ignored, never thrown", () => {
  const refused = [];
  const played = [];
  const b = new SoundBoard({
    mediaUrl: "https://game.example/sounds/",
    createAudio: () => ({ addEventListener() {}, play() { played.push(this.src); }, pause() {} }),
    onRefused: (t) => refused.push(t),
  });
  b.setEnabled(true);
  b.play({ name: NOT_TEXT });
  assert.equal(refused.length, 1);
  assert.ok(!refused[0].includes("[object"), refused[0]);
  b.play({ name: "a.wav", volume: NOT_TEXT, loops: NOT_TEXT });
  assert.deepEqual(played, ["https://game.example/sounds/a.wav"]);
  assert.equal(b.playing.get("a.wav").volume, 1);
  assert.equal(b.playing.get("a.wav").loops, 1);
});

test("exits: at most MAX_EXITS, the first ones in the game's order", () => {
  const many = Array.from({ length: 1000 }, (_, i) => `e${i}`);
  assert.deepEqual(roomExits({ exits: many }), many.slice(0, MAX_EXITS));
  assert.deepEqual(roomExits({ exits: Object.fromEntries(many.map((e) => [e, 1])) }), many.slice(0, MAX_EXITS));
});
