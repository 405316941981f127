// GMCP panels: gauges from Char.Vitals, the room from Room.Info (exits as
// buttons), and the direction pad whose buttons light up for the room's exits.
// Everything from the game enters the page as text (textContent), never HTML.

const DIRECTIONS = {
  n: "north", s: "south", e: "east", w: "west", u: "up", d: "down",
  ne: "northeast", nw: "northwest", se: "southeast", sw: "southwest",
};

/** A direction's full name ("n" -> "north"); other exit names stay as they are. */
export function fullDirection(name) {
  const key = String(name).toLowerCase();
  return DIRECTIONS[key] || key;
}

/**
 * The gauges a Char.Vitals message describes: every key K with a maximum
 * (maxK, max_K, K_max or Kmax) is one gauge {name, value, max}.
 */
export function vitalsGauges(data) {
  if (!data || typeof data !== "object") return [];
  const gauges = [];
  for (const [key, raw] of Object.entries(data)) {
    if (/^max_?|_?max$/i.test(key)) continue;
    const maxKey = [`max${key}`, `max_${key}`, `${key}_max`, `${key}max`].find((k) => k in data);
    if (maxKey === undefined) continue;
    const value = Number(raw);
    const max = Number(data[maxKey]);
    if (!Number.isFinite(value) || !Number.isFinite(max) || max <= 0) continue;
    gauges.push({ name: key, value, max });
  }
  return gauges;
}

export class Vitals {
  constructor(container) {
    this.el = container;
    this.gauges = new Map(); // name -> {meter, fill, text}
  }

  update(data) {
    for (const { name, value, max } of vitalsGauges(data)) {
      let g = this.gauges.get(name);
      if (!g) {
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

/** The exits of a Room.Info message: {name: target} or a list of names -> names. */
export function roomExits(info) {
  const exits = info && info.exits;
  if (Array.isArray(exits)) return exits.map(String);
  if (exits && typeof exits === "object") return Object.keys(exits);
  return [];
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

  update(info) {
    if (!info || typeof info !== "object") return;
    this.panel.hidden = false;
    this.nameEl.textContent = info.name ? String(info.name) : "";
    this.areaEl.textContent = info.area ? String(info.area) : "";
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
    const open = new Set(this.exits.map(fullDirection));
    for (const button of this.pad.querySelectorAll("button[data-dir]")) {
      const lit = open.has(button.dataset.dir);
      button.classList.toggle("lit", lit);
      button.setAttribute("aria-label", `${button.dataset.dir}${lit ? " (exit)" : ""}`);
    }
  }
}
