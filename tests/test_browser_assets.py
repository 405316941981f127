"""The browser client's files: served at / and /client/, packaged into the wheel, unit-tested in Node.

- ``node --test tests/js/unit/``: the ANSI parser's unit tests (Node's own test runner).
- ``GET /`` serves the page with a strict Content-Security-Policy; without the
  npm-built files it answers a plain page saying which command fixes it.
- A wheel built from the checkout carries every file the page loads (and the game
  text's JSON escaper, compiled by the build); a build without the npm files and
  without npm stops with the command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aiohttp import web

from gateway.webclient import FIX_COMMAND, REQUIRED, WEB_ROOT, add_routes
from tests.conftest import make_config
from tests.test_webclient_headers import assert_client_headers

ROOT = Path(__file__).resolve().parent.parent
# What a copy of the checkout leaves out (built or installed things, caches).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "dist", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".hypothesis", "screenshots", "*.dat",
                                    "*.so")  # built modules: the build must make its own


def test_ansi_parser_unit_tests_in_node() -> None:
    node = shutil.which("node")
    assert node, "node is needed (./dev setup checks for it)"
    result = subprocess.run([node, "--test", "tests/js/unit/"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


async def test_page_and_files_are_served(aiohttp_client) -> None:
    from gateway.routes import create_app
    client = await aiohttp_client(create_app(make_config(1)))
    resp = await client.get("/")
    assert resp.status == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe" not in csp
    page = await resp.text()
    assert 'src="client/main.js"' in page
    for name in REQUIRED:
        file = await client.get(f"/client/{name}")
        assert file.status == 200, name
    js = await client.get("/client/vendor/phoenix.js")
    assert js.content_type in ("application/javascript", "text/javascript")
    assert "export" in await js.text()
    assert (await client.get("/client/../webclient.py")).status in (403, 404)
    assert (await client.get("/client/")).status in (403, 404)  # no directory listing


async def test_missing_files_page_says_what_to_run(aiohttp_client, tmp_path: Path) -> None:
    shutil.copytree(WEB_ROOT, tmp_path / "web", ignore=shutil.ignore_patterns("vendor"))
    app = web.Application()
    add_routes(app, tmp_path / "web")
    client = await aiohttp_client(app)
    resp = await client.get("/")
    assert resp.status == 503
    assert_client_headers(resp, "503 page")
    text = await resp.text()
    assert "vendor/phoenix.js" in text and FIX_COMMAND in text and "./dev setup" in text
    resp = await client.get("/client/main.js")
    assert resp.status == 404
    assert_client_headers(resp, "404 without the files")


def _checkout_copy(dest: Path, with_vendor: bool) -> Path:
    ignore = NOT_SOURCE
    if not with_vendor:
        def ignore(directory: str, names: list[str]) -> set[str]:
            skipped = set(NOT_SOURCE(directory, names))
            return skipped | ({"vendor"} if directory.endswith(os.path.join("gateway", "web")) else set())
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def _pip_wheel(src: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300, env=env)


def test_wheel_carries_the_client(tmp_path: Path) -> None:
    src = _checkout_copy(tmp_path / "src", with_vendor=True)
    result = _pip_wheel(src, tmp_path / "dist", dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list((tmp_path / "dist").glob("mud_gateway-*.whl"))
    assert len(wheels) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for name in REQUIRED + ("favicon.svg", "vendor/phoenix-LICENSE.md"):
        assert f"gateway/web/{name}" in names, name
    assert not [n for n in names if "node_modules" in n or n.startswith("tests/")]
    # setup.py's extension, built from gateway/_jsonstring.c (none was copied)
    assert [n for n in names if n.startswith("gateway/_jsonstring.") and n.endswith(".so")], names


def test_wheel_build_without_the_npm_files_says_what_to_run(tmp_path: Path) -> None:
    src = _checkout_copy(tmp_path / "src", with_vendor=False)
    # No npm on the PATH: the build cannot make the files itself.
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    if shutil.which("npm", path=env["PATH"]):
        pytest.skip("npm lives next to python here")
    result = _pip_wheel(src, tmp_path / "dist", env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert FIX_COMMAND in output and "gateway/web/vendor/phoenix.js" in output, output
    assert not list((tmp_path / "dist").glob("*.whl"))
