// GMCP panels: gauges from Char.Vitals, the room from Room.Info (exits as
// buttons), and the direction pad whose buttons light up for the room's exits.
// MSDP data (gmcp module "MSDP") feeds the same panels: MsdpPanels.
// Everything from the game enters the page as text (textContent), never HTML.

const DIRECTIONS = {
  n: "north", s: "south", e: "east", w: "west", u: "up", d: "down",
  ne: "northeast", nw: "northwest", se: "southeast", sw: "southwest",
};

/** A direction's full name ("n" -> "north"); other exit names stay as they are. */
export function fullDirection(name) {
  const key = String(name).toLowerCase();
  return Object.hasOwn(DIRECTIONS, key) ? DIRECTIONS[key] : key; // ("constructor" is no direction)
}

/** Whether a value from the game is a string or a number (JSON may hold anything where they are expected). */
function scalar(v) {
  return typeof v === "string" || typeof v === "number";
}

/**
 * The gauges a Char.Vitals message describes: every key K with a maximum
 * (maxK, max_K, K_max or Kmax, in any case: MSDP's HEALTH has HEALTH_MAX) is
 * one gauge {name, value, max}.
 */
export function vitalsGauges(data) {
  if (!data || typeof data !== "object") return [];
  const keys = new Map(Object.keys(data).map((k) => [k.toLowerCase(), k]));
  const gauges = [];
  for (const [key, raw] of Object.entries(data)) {
    if (/^max_?|_?max$/i.test(key)) continue;
    const k = key.toLowerCase();
    const maxKey = [`max${k}`, `max_${k}`, `${k}_max`, `${k}max`].find((m) => keys.has(m));
    if (maxKey === undefined) continue;
    const value = scalar(raw) ? Number(raw) : NaN;
    const maxRaw = data[keys.get(maxKey)];
    const max = scalar(maxRaw) ? Number(maxRaw) : NaN;
    if (!Number.isFinite(value) || !Number.isFinite(max) || max <= 0) continue;
    gauges.push({ name: key, value, max });
  }
  return gauges;
}

/**
 * Gauges at most: a game has a handful (hp, mp, moves, ...); each key with a maximum
 * would be one more, so a game sending new keys would grow the page without end.
 * Past this, new keys are not drawn (the gauges already there go on updating).
 */
export const MAX_GAUGES = 24;

export class Vitals {
  constructor(container) {
    this.el = container;
    this.gauges = new Map(); // name -> {meter, fill, text}
  }

  update(data) {
    for (const { name, value, max } of vitalsGauges(data)) {
      let g = this.gauges.get(name);
      if (!g) {
        if (this.gauges.size >= MAX_GAUGES) continue;
        g = this._gauge(name);
        this.gauges.set(name, g);
      }
      const shown = Math.max(0, Math.min(value, max));
      g.meter.setAttribute("aria-valuemax", String(max));
      g.meter.setAttribute("aria-valuenow", String(shown));
      g.meter.setAttribute("aria-valuetext", `${value} of ${max}`);
      g.fill.style.width = `${(100 * shown) / max}%`;
      g.text.textContent = `${value}/${max}`;
      g.meter.classList.toggle("low", shown / max < 0.25);
    }
    this.el.hidden = this.gauges.size === 0;
  }

  /** No gauges (a new game session: the last one's are not its state). */
  clear() {
    this.gauges.clear();
    this.el.replaceChildren();
    this.el.hidden = true;
  }

  _gauge(name) {
    const meter = document.createElement("div");
    meter.className = "gauge";
    meter.dataset.name = name.toLowerCase();
    meter.setAttribute("role", "meter");
    meter.setAttribute("aria-label", name);
    meter.setAttribute("aria-valuemin", "0");
    const label = document.createElement("span");
    label.className = "gauge-name";
    label.textContent = name;
    const bar = document.createElement("span");
    bar.className = "gauge-bar";
    const fill = document.createElement("span");
    fill.className = "gauge-fill";
    bar.append(fill);
    const text = document.createElement("span");
    text.className = "gauge-text";
    meter.append(label, bar, text);
    this.el.append(meter);
    return { meter, fill, text };
  }
}

/**
 * Exit buttons at most: a room has a dozen exits at most; a message listing thousands
 * would make as many buttons. The first ones (in the game's order) are shown.
 */
export const MAX_EXITS = 40;

/** The exits of a Room.Info message: {name: target} or a list of names -> names (MAX_EXITS at most). */
export function roomExits(info) {
  const exits = info && info.exits;
  if (Array.isArray(exits)) return exits.filter(scalar).slice(0, MAX_EXITS).map(String);
  if (exits && typeof exits === "object") return Object.keys(exits).slice(0, MAX_EXITS);
  return [];
}

/**
 * A pad button's accessible name: it starts with the visible label (WCAG
 * 2.5.3, axe's label-content-name-mismatch), then says the direction in
 * full when the label abbreviates it, and whether the room has that exit:
 * "NW (northwest, exit)", "Up (exit)", "N (north)", "Look".
 */
export function padLabel(label, dir, lit) {
  const extra = [];
  if (label.toLowerCase() !== dir) extra.push(dir);
  if (lit) extra.push("exit");
  return extra.length ? `${label} (${extra.join(", ")})` : label;
}

export class RoomPanel {
  /** onGo(command): an exit button or pad button was pressed. */
  constructor({ panel, name, area, exits, pad, onGo }) {
    this.panel = panel;
    this.nameEl = name;
    this.areaEl = area;
    this.exitsEl = exits;
    this.pad = pad;
    this.onGo = onGo;
    this.exits = [];
    for (const button of pad.querySelectorAll("button[data-dir]")) {
      button.addEventListener("click", () => {
        // Send the exit as the game names it ("n" or "north"); else the direction's name.
        const dir = button.dataset.dir;
        const exit = this.exits.find((x) => fullDirection(x) === dir);
        onGo(exit || dir);
      });
    }
  }

  /** No room (a new game session): the panel hidden, no exit buttons, the pad unlit. */
  clear() {
    this.panel.hidden = true;
    this.nameEl.textContent = "";
    this.areaEl.textContent = "";
    this.exits = [];
    this.exitsEl.replaceChildren();
    this._lightPad();
  }

  update(info) {
    if (!info || typeof info !== "object") return;
    this.panel.hidden = false;
    this.nameEl.textContent = info.name && scalar(info.name) ? String(info.name) : "";
    this.areaEl.textContent = info.area && scalar(info.area) ? String(info.area) : "";
    this.exits = roomExits(info);
    this.exitsEl.replaceChildren(
      ...this.exits.map((exit) => {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "exit";
        b.textContent = exit;
        b.addEventListener("click", () => this.onGo(exit));
        return b;
      }),
    );
    this._lightPad();
  }

  /** The pad's buttons lit for the room's exits. */
  _lightPad() {
    const open = new Set(this.exits.map(fullDirection));
    for (const button of this.pad.querySelectorAll("button[data-dir]")) {
      const lit = open.has(button.dataset.dir);
      button.classList.toggle("lit", lit);
      button.setAttribute("aria-label", padLabel(button.textContent.trim(), button.dataset.dir, lit));
    }
  }
}

/**
 * The room an MSDP message describes, as Room.Info has it ({name, area, exits}),
 * or null: the ROOM table (NAME, AREA, EXITS) or the variables ROOM_NAME,
 * AREA_NAME and ROOM_EXITS.
 */
export function msdpRoom(data) {
  if (!data || typeof data !== "object") return null;
  const room = data.ROOM;
  if (room && typeof room === "object" && !Array.isArray(room)) {
    return { name: room.NAME, area: room.AREA, exits: room.EXITS };
  }
  if ("ROOM_NAME" in data || "ROOM_EXITS" in data) {
    return { name: data.ROOM_NAME, area: data.AREA_NAME, exits: data.ROOM_EXITS };
  }
  return null;
}

const MAX_MSDP_VARIABLES = 1024;
// A variable's name and a text value are kept up to this long: the kept values only feed the
// gauges (numbers and their names), and a game may send a megabyte in each of a thousand variables.
const MAX_MSDP_TEXT = 100;

/**
 * MSDP for the panels: a game sends each variable as it changes (HEALTH now,
 * HEALTH_MAX once), so the latest value of each is kept and the gauges are
 * drawn from all of them, as from one Char.Vitals; a room goes to the room panel.
 */
export class MsdpPanels {
  constructor({ vitals, room }) {
    this.vitals = vitals;
    this.room = room;
    this.values = Object.create(null);
    this.count = 0;
  }

  /** A new game session: the variables kept were the last one's. */
  clear() {
    this.values = Object.create(null);
    this.count = 0;
  }

  update(data) {
    if (!data || typeof data !== "object" || Array.isArray(data)) return;
    let scalars = false;
    for (const [key, value] of Object.entries(data)) {
      if (value === null || typeof value !== "object") {
        if (key.length > MAX_MSDP_TEXT) continue;
        if (!(key in this.values)) {
          if (this.count >= MAX_MSDP_VARIABLES) continue; // a game has a few dozen
          this.count++;
        }
        // (A longer text is no number: kept as none, not a megabyte each.)
        this.values[key] = typeof value === "string" && value.length > MAX_MSDP_TEXT ? null : value;
        scalars = true;
      }
    }
    if (scalars) this.vitals.update(this.values);
    const room = msdpRoom(data);
    if (room) this.room.update(room);
  }
}
