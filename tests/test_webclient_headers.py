"""The browser client's security headers (gateway/webclient.py), on a real aiohttp server of the
gateway: every response that serves the client, the page at ``/`` and every file under
``/client/`` (its 304s and 404s too), carries ``X-Content-Type-Options: nosniff``, a
Content-Security-Policy with ``frame-ancestors 'none'`` (as a header: a ``<meta>`` CSP ignores
frame-ancestors), ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``
(clickjacking and MIME sniffing; docs/security.md). Caching of the files is unchanged:
ETag and Last-Modified, and 304 for a copy the browser already has.
"""

from __future__ import annotations

import asyncio

from tests.conftest import make_config

#: Files of each kind the page loads (module, worker, vendored phoenix.js, CSS, icon).
FILES = ("main.js", "match_worker.js", "vendor/phoenix.js", "client.css", "theme.css", "favicon.svg")


def assert_client_headers(resp, what: str) -> None:
    headers = resp.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    csp = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, (what, csp)
    assert "unsafe" not in csp, (what, csp)
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("Referrer-Policy") == "no-referrer", what


async def _client(aiohttp_client, config=None):
    from gateway.routes import create_app
    return await aiohttp_client(create_app(config or make_config(1)))


async def test_the_page_cannot_be_framed_or_sniffed(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    for method in ("GET", "HEAD"):
        resp = await client.request(method, "/")
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert_client_headers(resp, f"{method} /")
    resp = await client.get("/?game=fake")
    assert_client_headers(resp, "/?game=fake")


async def test_the_page_policy_with_a_media_url_keeps_frame_ancestors(aiohttp_client) -> None:
    client = await _client(aiohttp_client, make_config(
        1, game_extra="    media_url: https://game.example/sounds/"))
    resp = await client.get("/")
    assert_client_headers(resp, "/ with media_url")
    assert resp.headers["Content-Security-Policy"].endswith("; media-src 'self' https://game.example")


async def test_every_client_file_carries_the_headers_and_keeps_its_caching(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    for name in FILES:
        resp = await client.get(f"/client/{name}")
        assert resp.status == 200, name
        await resp.read()
        assert_client_headers(resp, name)
        etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
        assert etag and modified, name
        # The browser's copy is still good: 304, with the same headers.
        again = await client.get(f"/client/{name}", headers={"If-None-Match": etag})
        assert again.status == 304, name
        assert again.headers.get("ETag") == etag, name
        assert_client_headers(again, f"{name} 304 (If-None-Match)")
        since = await client.get(f"/client/{name}", headers={"If-Modified-Since": modified})
        assert since.status == 304, name
        assert_client_headers(since, f"{name} 304 (If-Modified-Since)")
        head = await client.head(f"/client/{name}")
        assert head.status == 200, name
        assert_client_headers(head, f"HEAD {name}")
    js = await client.get("/client/vendor/phoenix.js")
    assert js.content_type in ("application/javascript", "text/javascript")
    css = await client.get("/client/client.css")
    assert css.content_type == "text/css"


async def test_client_errors_carry_the_headers(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    for path in ("/client/nope.js", "/client/vendor/nope.js", "/client/", "/client"):
        resp = await client.get(path)
        assert resp.status in (403, 404), path
        assert_client_headers(resp, path)
    resp = await client.post("/client/main.js")
    assert resp.status == 405
    assert_client_headers(resp, "POST /client/main.js")


async def test_a_path_escaping_client_is_refused_with_the_headers(aiohttp_client) -> None:
    """Sent as is (the test client would normalise the dots away): aiohttp's static route
    answers 404, and that answer is the client's too."""
    client = await _client(aiohttp_client)
    for path in ("/client/../webclient.py", "/client/%2e%2e/webclient.py", "/client/..%2fwebclient.py"):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        raw = await reader.read()
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        status, *fields = head.decode("latin-1").split("\r\n")
        assert status.split()[1] == "404", (path, status)
        assert b"import" not in body, path  # not webclient.py
        headers = dict(f.split(": ", 1) for f in fields)
        assert headers.get("X-Content-Type-Options") == "nosniff", (path, head)
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), (path, head)


async def test_other_endpoints_are_left_as_they_were(aiohttp_client) -> None:
    """The hook is the client's: the API and health answers get none of the page's headers."""
    client = await _client(aiohttp_client)
    for path in ("/healthz", "/api/games"):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert "X-Frame-Options" not in resp.headers, path
        assert "Content-Security-Policy" not in resp.headers, path


async def test_a_name_too_long_for_the_file_system_is_404_not_a_500_and_a_traceback(aiohttp_client, caplog) -> None:
    """aiohttp's static route asks the file system about the path as sent: a name over its 255
    bytes (ENAMETOOLONG, an OSError aiohttp does not catch) answered 500 and logged an ERROR
    with a traceback holding the name, ~5 KB of log a request, as often as anyone asked (the
    bound on lines a client can cause, docs/security.md). Such a file is not there: 404."""
    caplog.set_level("DEBUG")
    client = await _client(aiohttp_client)
    paths = ["/client/" + "a" * 256, "/client/vendor/" + "b" * 4000, "/client/" + "%C3%A9" * 128,
             "/client/" + "c" * 300 + "/main.js", "/client/" + "/".join(["d" * 200] * 30)]
    for path in paths:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        raw = await reader.read()
        writer.close()
        head = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
        assert head.split()[1] == "404", (path[:40], head)
        assert "frame-ancestors 'none'" in head, head  # the client's answer, with its headers
    assert not [r for r in caplog.records if r.levelno >= 40], [r.getMessage() for r in caplog.records]
    assert (await client.get("/client/main.js")).status == 200  # the files are still served
