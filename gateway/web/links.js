// Links from the game (OSC 8, SPEC 7.1), as elements made with DOM calls only.
//
// ansi.js turns an OSC 8 URI into a link object (parseLinkUri); this module
// draws it and makes it work:
// - http(s): an <a target=_blank rel="noopener noreferrer"> whose title is the URL;
// - send:/prompt:: a control (role=button, in the tab order) whose title and
//   accessible description show the command. Activating it (click, Enter,
//   Space) hands the command to `send` (sent exactly as it is: no aliases,
//   no ";;", no "#") or `prompt` (put into the input line);
// - a link with a menu: a context menu of its commands by right-click, long
//   press, Shift+F10 or the context-menu key; a role=menu that takes the focus
//   (screen readers announce it), arrow keys move, Escape closes.
// The command rides in the element's data-* attributes (set as properties,
// never parsed as markup), so the split's copies of the log work as well, by
// delegation from the document.

const CONTROLS = /[\x00-\x1f\x7f-\x9f]/;
const LONG_PRESS_MS = 500;

/** The element a run of link text goes into: `parent`'s last child when it is that link's. */
export function linkParent(parent, link) {
  const last = parent.lastChild;
  if (last && last.mudLink === link) return last;
  const el = linkElement(link);
  el.mudLink = link; // a property of the element, not markup
  parent.append(el);
  return el;
}

/** A new element for a link (see parseLinkUri in ansi.js); its text is appended by the caller. */
export function linkElement(link) {
  if (link.kind === "url") {
    const a = document.createElement("a");
    a.href = link.href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.title = link.href;
    return a;
  }
  const el = document.createElement("span");
  el.className = `game-link game-${link.kind}`;
  el.setAttribute("role", "button");
  el.tabIndex = 0;
  el.dataset.kind = link.kind;
  el.dataset.command = link.command;
  const what = `${link.kind === "send" ? "Sends" : "Types"}: ${link.command}`;
  el.setAttribute("aria-description", what);
  let title = link.tooltip ? `${link.tooltip} (${what})` : what;
  if (link.menu.length) {
    el.dataset.menu = JSON.stringify(link.menu);
    el.setAttribute("aria-haspopup", "menu");
    el.setAttribute("aria-expanded", "false");
    title += " — more: right-click, long press or Shift+F10";
  }
  el.title = title;
  return el;
}

/**
 * Take everything focusable under `root` out of the tab order (copies the page
 * keeps aria-hidden): the game's send:/prompt: controls, its http(s) links and
 * the URLs found in plain text (output.js).
 */
export function outOfTabOrder(root) {
  for (const el of root.querySelectorAll(".game-link, a[href]")) el.tabIndex = -1;
}

/**
 * Make the game's links work in `root` (the page): send(command) sends a
 * command as it is, prompt(text) puts text into the input line.
 */
export function installLinks(root, { send, prompt }) {
  const run = (kind, command) => {
    if (typeof command !== "string" || !command || CONTROLS.test(command)) return; // never sent
    if (kind === "send") send(command);
    else if (kind === "prompt") prompt(command);
  };
  const linkOf = (target) => (target instanceof Element ? target.closest(".game-link") : null);
  let menu = null;

  const closeMenu = (refocus) => {
    if (!menu) return;
    const { el, box } = menu;
    menu = null;
    box.remove();
    el.setAttribute("aria-expanded", "false");
    if (refocus) el.focus();
  };

  const openMenu = (el, x, y) => {
    closeMenu(false);
    let items;
    try {
      items = JSON.parse(el.dataset.menu || "[]");
    } catch {
      items = [];
    }
    if (!items.length) return false;
    const box = document.createElement("div");
    box.className = "game-link-menu";
    box.setAttribute("role", "menu");
    box.setAttribute("aria-label", `Commands for ${el.textContent}`);
    for (const item of items) {
      const button = document.createElement("button");
      button.type = "button";
      button.setAttribute("role", "menuitem");
      button.textContent = item.label;
      button.title = `${item.kind === "send" ? "Sends" : "Types"}: ${item.command}`;
      button.setAttribute("aria-description", button.title);
      button.addEventListener("click", () => {
        closeMenu(false);
        run(item.kind, item.command);
      });
      box.append(button);
    }
    box.addEventListener("keydown", (e) => {
      const buttons = [...box.querySelectorAll("button")];
      const i = buttons.indexOf(document.activeElement);
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const step = e.key === "ArrowDown" ? 1 : -1;
        buttons[(i + step + buttons.length) % buttons.length].focus();
      } else if (e.key === "Home" || e.key === "End") {
        e.preventDefault();
        buttons[e.key === "Home" ? 0 : buttons.length - 1].focus();
      } else if (e.key === "Escape") {
        e.preventDefault();
        closeMenu(true);
      } else if (e.key === "Tab") {
        // Back to the link first, so that Tab (Shift+Tab) goes on from there, to the element after
        // (before) it: the menu, at the end of the page, would send the focus to the page's top.
        closeMenu(true);
      }
    });
    box.addEventListener("focusout", (e) => {
      if (menu && menu.box === box && !box.contains(e.relatedTarget)) closeMenu(false);
    });
    document.body.append(box);
    const rect = el.getBoundingClientRect();
    const left = x ?? rect.left;
    const top = y ?? rect.bottom;
    box.style.left = `${Math.max(0, Math.min(left, innerWidth - box.offsetWidth))}px`;
    box.style.top = `${Math.max(0, Math.min(top, innerHeight - box.offsetHeight))}px`;
    menu = { el, box };
    el.setAttribute("aria-expanded", "true");
    box.querySelector("button").focus();
    return true;
  };

  root.addEventListener("click", (e) => {
    const el = linkOf(e.target);
    if (!el || e.button !== 0) return;
    e.preventDefault();
    if (pressed && pressed.fired) return; // the long press opened the menu
    run(el.dataset.kind, el.dataset.command);
  });
  // Capture: before the page's own keys (a printable key goes to the input line).
  window.addEventListener("keydown", (e) => {
    const el = linkOf(e.target);
    if (!el) return;
    if ((e.key === "F10" && e.shiftKey) || e.key === "ContextMenu") {
      if (el.dataset.menu && openMenu(el)) {
        e.preventDefault();
        e.stopPropagation();
      }
    } else if ((e.key === "Enter" || e.key === " ") && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      e.stopPropagation();
      run(el.dataset.kind, el.dataset.command);
    }
  }, true);
  root.addEventListener("contextmenu", (e) => {
    const el = linkOf(e.target);
    if (el && el.dataset.menu && openMenu(el, e.clientX, e.clientY)) e.preventDefault();
  });
  // Long press (touch): the menu, and the click that follows is not a send.
  let pressed = null;
  root.addEventListener("pointerdown", (e) => {
    const el = linkOf(e.target);
    if (!el || !el.dataset.menu || e.pointerType === "mouse") return;
    const state = { fired: false, timer: 0 };
    state.timer = setTimeout(() => {
      state.fired = true;
      openMenu(el, e.clientX, e.clientY);
    }, LONG_PRESS_MS);
    pressed = state;
  });
  const release = () => {
    if (pressed) clearTimeout(pressed.timer);
    const was = pressed;
    setTimeout(() => {
      if (pressed === was) pressed = null;
    }, 0);
  };
  root.addEventListener("pointerup", release);
  root.addEventListener("pointercancel", release);
  root.addEventListener("pointermove", (e) => {
    if (pressed && !pressed.fired && (Math.abs(e.movementX) > 8 || Math.abs(e.movementY) > 8)) clearTimeout(pressed.timer);
  });
  root.addEventListener("pointerdown", (e) => {
    if (menu && !menu.box.contains(e.target)) closeMenu(false);
  }, true);
}
