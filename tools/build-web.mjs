// Copy the browser client's third-party files from node_modules into
// gateway/web/vendor/ (git-ignored; packaged into the wheel by pyproject.toml).
//
//   npm ci && npm run build        (./dev setup does both)
//
// Only what the page loads is copied: phoenix's ES module build, its source
// map, and its licence (MIT asks for the notice to travel with the code).

import { copyFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendor = join(root, "gateway", "web", "vendor");
const phoenix = join(root, "node_modules", "phoenix");

// [from (inside node_modules/phoenix), to (inside gateway/web/vendor)]
const FILES = [
  ["priv/static/phoenix.mjs", "phoenix.js"],
  ["priv/static/phoenix.mjs.map", "phoenix.mjs.map"],
  ["LICENSE.md", "phoenix-LICENSE.md"],
];

if (!existsSync(phoenix)) {
  console.error("build-web: node_modules/phoenix is missing: run `npm ci` first");
  process.exit(1);
}
mkdirSync(vendor, { recursive: true });
for (const [from, to] of FILES) {
  copyFileSync(join(phoenix, from), join(vendor, to));
}
console.log(`build-web: ${FILES.length} files in gateway/web/vendor/`);
