"""The browser client (SPEC 7, ``GET /``): the page and its files in ``gateway/web/``.

Our own modules, CSS and page are in the package; phoenix.js comes from npm
into ``gateway/web/vendor/`` (``npm ci && npm run build``, run by ``./dev setup``;
a wheel carries them). When those files are missing, ``GET /`` answers with a
plain page that says which command fixes it, instead of a page that cannot
connect.

Every response of the client (``/``, anything under ``/client/``, their 304s, 404s
and other errors) gets its security headers in one place, the app's response-preparation
hook that :func:`add_routes` installs: aiohttp's static files and its error answers never
pass through a handler of ours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

log = logging.getLogger("gateway.http")

#: Where the client's files are (a directory in the installed package).
WEB_ROOT = Path(str(resources.files("gateway").joinpath("web")))
#: What the page cannot work without; vendor/ is built from npm.
REQUIRED = ("index.html", "client.css", "theme.css", "main.js", "ansi.js", "output.js", "input.js",
            "connection.js", "panels.js", "sound.js", "commands.js", "triggers.js", "matcher.js",
            "match_worker.js", "tools.js", "tools_store.js", "commandlog.js", "highlight.js", "textrange.js",
            "search.js", "savelog.js", "download.js", "settings.js", "page_tools.js", "links.js",
            "commandqueue.js",
            "vendor/phoenix.js")
FIX_COMMAND = "npm ci && npm run build"

# frame-ancestors must be a header (a <meta> CSP ignores it); X-Frame-Options is for
# browsers without it. The same policy serves the files: match_worker.js runs under its own
# response's CSP, and imports triggers.js ('self').
_CSP = ("default-src 'self'; connect-src 'self' ws: wss:; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_HEADERS = {
    # Game text only ever enters the page as text; no inline script or style, no plugins.
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_MISSING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mud-gateway: client not built</title></head>
<body>
<h1>The browser client is not built</h1>
<p>This gateway runs, but the files of its browser client are missing: {missing}.</p>
<p>In the mud-gateway checkout, run <code>./dev setup</code> (or <code>{fix}</code>),
then restart the gateway. A wheel built from the checkout carries the files.</p>
</body></html>
"""


def missing_files(root: Path) -> list[str]:
    return [name for name in REQUIRED if not (root / name).is_file()]


def media_policy(media_urls: Iterable[str]) -> str:
    """The page's Content-Security-Policy, with ``media-src`` allowing the origins of the games'
    ``media_url`` (sound, SPEC 5; sound.js further keeps each game's sound under its own URL)."""
    origins = sorted({f"{p.scheme}://{p.netloc}" for p in map(urlsplit, media_urls)})
    return f"{_CSP}; media-src 'self' {' '.join(origins)}" if origins else _CSP


def add_routes(app: web.Application, root: Path = WEB_ROOT,
               media_urls: Callable[[], Iterable[str]] | None = None) -> None:
    """``GET /`` (the page, read once) and ``/client/`` (its files); ``media_urls`` gives the
    games' ``media_url`` now (the live config), for the page's ``media-src``."""
    missing = missing_files(root)
    if missing:
        log.warning("browser client files missing in %s (%s): run `%s`", root, ", ".join(missing),
                    FIX_COMMAND)
        page = _MISSING_PAGE.format(missing=", ".join(missing), fix=FIX_COMMAND).encode()
        status = 503
    else:
        page = (root / "index.html").read_bytes()
        status = 200

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=page, status=status, content_type="text/html", charset="utf-8")

    async def client_headers(request: web.Request, response: web.StreamResponse) -> None:
        """The one place the client's responses get their headers (module docstring)."""
        path = request.path
        if path == "/":
            response.headers.update(_HEADERS)
            if media_urls is not None:
                response.headers["Content-Security-Policy"] = media_policy(media_urls())
        elif path == "/client" or path.startswith("/client/"):
            response.headers.update(_HEADERS)

    app.on_response_prepare.append(client_headers)
    app.router.add_get("/", index)
    if not missing:
        app.router.add_static("/client/", root, follow_symlinks=False, show_index=False)
        app.middlewares.append(_no_such_file)


@web.middleware
async def _no_such_file(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    """A ``/client/`` path the file system cannot even look up is not a file of the client:
    404. aiohttp's static route stats the path as sent and lets an OSError other than
    "not found" through (a name over 255 bytes: ENAMETOOLONG), which answered 500 and logged
    an ERROR with a traceback quoting the name, as often as anyone asked. The response is
    made after the handler returns, so nothing here is an error of sending it."""
    try:
        return await handler(request)
    except OSError:
        if not request.path.startswith("/client/"):
            raise
        raise web.HTTPNotFound() from None
