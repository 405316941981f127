// "Save log": the scrollback the page keeps as plain text. The log's lines
// already hold text only (ANSI was turned into styles, never kept as codes);
// the player's own commands are marked with "> ". Input typed while echo was
// off never enters the log, so it cannot be in the file.

import { download, fileName } from "./download.js";
import { logLines } from "./output.js";

/** The text of the log element's lines, one per line, commands marked. */
export function logText(logEl) {
  const out = [];
  for (const line of logLines(logEl)) {
    out.push(line.classList.contains("command") ? `> ${line.textContent}` : line.textContent);
  }
  return out.length ? `${out.join("\n")}\n` : "";
}

export function saveLog(logEl, game) {
  download(fileName(game, "log", "txt"), logText(logEl));
}
