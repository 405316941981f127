// Hands the player a file made in the page (a saved log, exported tools).

/** Download `text` as a file named `name`. */
export function download(name, text, type = "text/plain") {
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A name for a file of this game, made now: `demo-2026-12-04-1830.txt`. */
export function fileName(game, what, ext) {
  const d = new Date();
  const p = (n) => String(n).padStart(2, "0");
  const stamp = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}`;
  const safe = (game || "game").replace(/[^A-Za-z0-9_-]+/g, "_");
  return `${safe}-${what}-${stamp}.${ext}`;
}
