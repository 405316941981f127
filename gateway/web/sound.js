// Sound from the game: GMCP Client.Media.Play / Client.Media.Stop (IRE's
// Client.Media; the gateway makes the same messages from MSP and MXP sound).
//
// Media is played only from under the game's media_url (from /api/games):
// every name is resolved against it and refused unless the result has the
// same origin and lies under its path, whatever URL a message names. Sound is
// off until the player turns it on (nothing is fetched before), has a volume
// control, plays one sound per key at a time, and loops music as asked.

const MIN_LOOPS = -1; // -1: for ever
/**
 * Sounds playing at once at most (one per key): a game naming a new key each time
 * would otherwise start loop after loop, each an audio element that plays for ever.
 * One more stops the one started longest ago.
 */
export const MAX_PLAYING = 16;

/** media_url as a directory URL (a path that does not end with "/" is taken as one). */
export function mediaBase(mediaUrl) {
  let base;
  try {
    base = new URL(mediaUrl);
  } catch {
    return null;
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") return null;
  base.search = "";
  base.hash = "";
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return base;
}

/**
 * The URL to fetch for `name` (and the message's own `url`, which may only
 * point further under the base), or null when it would leave `base`: another
 * origin, a path outside it ("../", an absolute path), or not http(s).
 */
export function mediaSource(base, name, url) {
  if (!base || typeof name !== "string" || name === "") return null;
  let dir = base;
  try {
    if (typeof url === "string" && url !== "") {
      dir = new URL(url, base);
      if (!dir.pathname.endsWith("/")) dir.pathname += "/";
    }
    const full = new URL(name, dir);
    if (full.origin !== base.origin || !full.pathname.startsWith(base.pathname)) return null;
    if (dir.origin !== base.origin || !dir.pathname.startsWith(base.pathname)) return null;
    if (full.username || full.password) return null;
    full.hash = "";
    return full.href;
  } catch {
    return null;
  }
}

function clamp(n, low, high, fallback) {
  const v = typeof n === "number" || typeof n === "string" ? Number(n) : NaN; // (JSON may hold anything)
  return Number.isFinite(v) ? Math.max(low, Math.min(high, v)) : fallback;
}

export class SoundBoard {
  /**
   * mediaUrl: the game's media_url (null: no sound at all). createAudio():
   * a new HTMLAudioElement (a stand-in in unit tests). onRefused(text): a
   * message was not played because of where it points.
   */
  constructor({ mediaUrl, createAudio = () => new Audio(), onRefused = () => {} }) {
    this.base = mediaUrl ? mediaBase(mediaUrl) : null;
    this.createAudio = createAudio;
    this.onRefused = onRefused;
    this.enabled = false; // muted until the player turns sound on
    this.volume = 0.5; // the player's master volume, 0..1
    this.playing = new Map(); // key -> {audio, type, tag, src, volume}
    this.music = null; // the latest looping music asked for while sound was off
  }

  get available() {
    return this.base !== null;
  }

  /** A gmcp event: Client.Media.Play / Stop handled, other modules ignored. */
  handle(module, data) {
    if (module === "Client.Media.Play") this.play(data);
    else if (module === "Client.Media.Stop") this.stop(data);
  }

  play(data) {
    if (!this.base || !data || typeof data !== "object") return;
    const src = mediaSource(this.base, data.name, data.url);
    if (src === null) {
      const name = typeof data.name === "string" ? ` “${data.name}”` : "";
      this.onRefused(`Sound${name} refused: not from this game's media address.`);
      return;
    }
    const type = data.type === "music" ? "music" : "sound";
    const key = typeof data.key === "string" && data.key ? data.key : String(data.name);
    const loops = Math.round(clamp(data.loops, MIN_LOOPS, 1e6, 1)) || 1;
    const volume = clamp(data.volume, 0, 100, 100) / 100;
    const item = { type, tag: data.tag, src, volume, loops, key };
    if (!this.enabled) {
      if (type === "music" && loops === -1) this.music = item; // starts when sound is turned on
      return; // nothing is fetched while sound is off
    }
    this._start(item, data.continue !== false);
  }

  _start(item, keepSame) {
    const old = this.playing.get(item.key);
    if (old) {
      // Music asked for again while it plays goes on (MSP's C=1, Client.Media's continue).
      if (keepSame && item.type === "music" && old.src === item.src && !old.audio.paused) return;
      this._drop(item.key); // (set again below: the newest, last to be stopped for room)
    }
    while (this.playing.size >= MAX_PLAYING) {
      this._drop(this.playing.keys().next().value);
    }
    const audio = this.createAudio();
    let left = item.loops; // -1: for ever
    audio.loop = left === -1;
    audio.volume = item.volume * this.volume;
    audio.src = item.src;
    const entry = { ...item, audio };
    audio.addEventListener("ended", () => {
      if (left > 1) {
        left--;
        audio.currentTime = 0;
        audio.play().catch(() => {});
      } else if (this.playing.get(item.key) === entry) {
        this.playing.delete(item.key);
      }
    });
    // A file that cannot be played never ends: it is stopped and forgotten now.
    audio.addEventListener("error", () => {
      if (this.playing.get(item.key) === entry) this._drop(item.key);
    });
    this.playing.set(item.key, entry);
    const started = audio.play();
    if (started && started.catch) started.catch(() => {}); // autoplay refused or file missing: silence
  }

  /** Client.Media.Stop: every field given (type, name, key, tag) must match; none: everything. */
  stop(data) {
    const d = data && typeof data === "object" ? data : {};
    for (const [key, entry] of [...this.playing]) {
      if (d.type !== undefined && d.type !== entry.type) continue;
      if (d.key !== undefined && d.key !== key) continue;
      if (d.tag !== undefined && d.tag !== entry.tag) continue;
      if (d.name !== undefined && (!this.base || mediaSource(this.base, d.name) !== entry.src)) continue;
      this._drop(key);
    }
    if (this.music && (d.type === undefined || d.type === "music")) this.music = null;
  }

  /** The sound playing under `key` stops and is forgotten. */
  _drop(key) {
    const entry = this.playing.get(key);
    entry.audio.pause();
    entry.audio.removeAttribute("src");
    this.playing.delete(key);
  }

  /**
   * The session ended, or a new one started: what loops (music, a sound with loops) was
   * the last session's and stops, and music kept for when sound is turned on is forgotten.
   * A sound played once ends by itself.
   */
  endSession() {
    for (const [key, entry] of [...this.playing]) {
      if (entry.loops !== 1) this._drop(key);
    }
    this.music = null;
  }

  setEnabled(on) {
    this.enabled = on;
    if (!on) {
      // Looping music goes on when sound is turned on again; everything else just stops.
      const music = [...this.playing.values()].find((e) => e.type === "music" && e.loops === -1);
      this.stop({});
      this.music = music ? { ...music, audio: undefined } : null;
    } else if (this.music) {
      const music = this.music;
      this.music = null;
      this._start(music, true);
    }
  }

  setVolume(fraction) {
    this.volume = clamp(fraction, 0, 1, this.volume);
    for (const entry of this.playing.values()) entry.audio.volume = entry.volume * this.volume;
  }
}

/**
 * The player's controls, made only for a game with a media_url: a "Sound"
 * toggle button in the header bar (aria-pressed; off at every page load) and
 * a volume slider in the settings (kept in `stored`).
 */
export function soundControls(board, { bar, settings, stored, before }) {
  if (!board.available) return;
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.id = "sound-toggle";
  toggle.className = "icon";
  const icon = document.createElement("span");
  icon.setAttribute("aria-hidden", "true");
  const name = document.createElement("span");
  name.className = "sr-only";
  name.textContent = "Sound";
  toggle.append(icon, name);
  const show = () => {
    icon.textContent = board.enabled ? "🔊" : "🔇";
    toggle.setAttribute("aria-pressed", String(board.enabled));
    toggle.title = board.enabled ? "Sound is on: turn it off" : "Sound is off: turn it on";
  };
  toggle.addEventListener("click", () => {
    board.setEnabled(!board.enabled);
    show();
  });
  show();
  bar.insertBefore(toggle, before || null);

  const label = document.createElement("label");
  label.className = "setting";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.id = "sound-volume";
  slider.min = "0";
  slider.max = "100";
  slider.step = "5";
  const volume = clamp(stored.get("sound-volume", 50), 0, 100, 50);
  slider.value = String(volume);
  board.setVolume(volume / 100);
  slider.addEventListener("input", () => {
    board.setVolume(Number(slider.value) / 100);
    stored.set("sound-volume", Number(slider.value));
  });
  label.append("Sound volume ", slider);
  settings.append(label);
}
