"""Build hooks: a wheel carries the browser client's npm files (gateway/web/vendor/), and
the game text's JSON escaper in C (gateway/_jsonstring.c) where it compiles.

Everything else is in pyproject.toml. When gateway/web/vendor/ is missing,
the build runs `npm ci && npm run build` (Node.js with npm needed), or stops
with a message saying what to run. Installing the wheel needs no Node.
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
VENDORED = ROOT / "gateway" / "web" / "vendor" / "phoenix.js"
FIX = "npm ci && npm run build"


def ensure_web_assets() -> None:
    if VENDORED.is_file():
        return
    npm = shutil.which("npm")
    if npm is None or not (ROOT / "package-lock.json").is_file():
        raise SystemExit(
            f"mud-gateway: the browser client's files are missing ({VENDORED.relative_to(ROOT)}).\n"
            f"Run `{FIX}` in the repository root (needs Node.js with npm), or `./dev setup`, "
            "then build again.")
    print(f"mud-gateway: {VENDORED.relative_to(ROOT)} is missing: running `{FIX}`")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True)
    subprocess.run([npm, "run", "build"], cwd=ROOT, check=True)


class BuildPyWithWebAssets(build_py):
    def run(self) -> None:
        ensure_web_assets()
        super().run()


# Optional: without a C compiler the install goes on, and gateway/jsonstring.py
# does the same in Python (about twice the CPU per MB of game text: docs/performance.md).
JSON_STRING = Extension("gateway._jsonstring", ["gateway/_jsonstring.c"],
                        optional=True)

setup(cmdclass={"build_py": BuildPyWithWebAssets}, ext_modules=[JSON_STRING])
