// The "Player tools" part of the settings panel: the aliases, triggers and
// highlights of this game as lists (Edit fills the form, Remove removes),
// forms that add or change them (checked like the `#` commands: each form
// makes the command line and runs it through the same parser), and JSON
// export and import. Every text enters the page with textContent.
//
// A form filled by Edit changes that entry when saved, also when its name or
// pattern was changed (the old one is removed: it is not a second entry), until
// the form is saved or emptied.

import { parseClientCommand, patternText } from "./commands.js";
import { download, fileName } from "./download.js";

const $ = (id) => document.getElementById(id);

export class ToolsPanel {
  /** store: the ToolsStore; run(parsed command): what `#...` typed would do; game: its name. */
  constructor({ store, run, game }) {
    this.store = store;
    this.run = run;
    this.message = $("tools-message");
    // The entry each form was filled with by Edit ({text, remove()}), or null.
    this.editing = { alias: null, trigger: null, highlight: null };
    const forms = {
      alias: () => `#alias ${$("alias-name").value.trim()} ${$("alias-text").value}`,
      trigger: () => `#trigger ${$("trigger-pattern").value.trim()} ${$("trigger-commands").value}`,
      highlight: () => `#highlight ${$("highlight-pattern").value.trim()} ${$("highlight-colour").value}`,
    };
    // What names an entry, as the store finds it: a changed key is a new entry.
    const keys = {
      alias: (c) => c.alias,
      trigger: (c) => patternText(c),
      highlight: (c) => patternText(c),
    };
    for (const [name, line] of Object.entries(forms)) {
      const form = $(`${name}-form`);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const parsed = parseClientCommand(line());
        if (parsed.error) return this.say(parsed.error);
        this.run(parsed);
        const old = this.editing[name];
        this.editing[name] = null;
        form.reset();
        // (The old one may be gone meanwhile: Remove, #unalias ... .)
        if (old && old.key !== keys[name](parsed) && old.remove()) {
          return this.say(`Saved (${name}), in place of ${old.key}.`);
        }
        this.say(`Saved (${name}).`);
        return undefined;
      });
      form.addEventListener("input", () => {
        if ([...form.elements].every((el) => el.tagName !== "INPUT" || !el.value)) this.editing[name] = null;
      });
    }
    $("tools-export").addEventListener("click", () => {
      download(fileName(game, "tools", "json"), store.exportJson(), "application/json");
      this.say("Exported.");
    });
    $("tools-import").addEventListener("change", async (e) => {
      const file = e.target.files && e.target.files[0];
      if (!file) return;
      const { added, errors } = store.importJson(await file.text());
      e.target.value = "";
      this.say(`Imported ${added} entr${added === 1 ? "y" : "ies"}.${errors.length ? ` Left out: ${errors.join("; ")}` : ""}`);
    });
    store.onChange(() => this.draw());
    this.draw();
  }

  say(text) {
    this.message.textContent = text;
  }

  draw() {
    const { aliases, triggers, highlights } = this.store.tools;
    const removeAlias = (a) => this.store.removeAlias(a.name);
    const removeTrigger = (t) => this.store.remove("triggers", t);
    const removeHighlight = (h) => this.store.remove("highlights", h);
    this._list("alias-list", aliases, (a) => `${a.name} = ${a.text}`, (a) => {
      this.editing.alias = { key: a.name, remove: () => removeAlias(a) };
      $("alias-name").value = a.name;
      $("alias-text").value = a.text;
      $("alias-text").focus();
    }, removeAlias);
    this._list("trigger-list", triggers, (t) => `${patternText(t)} → ${t.commands}`, (t) => {
      this.editing.trigger = { key: patternText(t), remove: () => removeTrigger(t) };
      $("trigger-pattern").value = patternText(t);
      $("trigger-commands").value = t.commands;
      $("trigger-commands").focus();
    }, removeTrigger);
    this._list("highlight-list", highlights, (h) => `${patternText(h)} in ${h.colour}`, (h) => {
      this.editing.highlight = { key: patternText(h), remove: () => removeHighlight(h) };
      $("highlight-pattern").value = patternText(h);
      $("highlight-colour").value = h.colour;
      $("highlight-colour").focus();
    }, removeHighlight);
  }

  _list(id, entries, label, edit, remove) {
    // Remove takes its button out of the page (the list is drawn again): the focus goes to the
    // Remove button now in its place (the next entry's, else the one before), else to the form,
    // not to nothing (the body), where a keyboard or screen-reader player loses their place.
    const removeHere = (entry, i) => {
      remove(entry);
      if (document.activeElement && document.activeElement !== document.body) return;
      const items = $(id).children;
      const near = items[Math.min(i, items.length - 1)];
      const form = $(id.replace(/-list$/, "-form"));
      (near ? near.querySelector(".tool-remove") : form.querySelector("input")).focus();
    };
    const items = entries.map((entry, i) => {
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.className = "tool-text";
      text.textContent = label(entry);
      li.append(text);
      if (entry.disabled) {
        li.classList.add("disabled");
        const why = document.createElement("span");
        why.className = "tool-disabled";
        why.textContent = ` (disabled: ${entry.disabled})`;
        li.append(why);
      }
      const name = label(entry);
      const removing = button("Remove", `Remove ${name}`, () => removeHere(entry, i));
      removing.className = "tool-remove";
      li.append(button("Edit", `Edit ${name}`, () => edit(entry)), removing);
      return li;
    });
    $(id).replaceChildren(...items);
  }
}

function button(text, accessibleName, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", accessibleName);
  b.addEventListener("click", onClick);
  return b;
}
