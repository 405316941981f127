"""The deployment of docs/operations.md, proven: Debian's nginx with the doc's own server
blocks, in front of the gateway with the doc's own gateway config, over wss:// on loopback.

nginx runs from a temporary prefix (its config, pid, logs and temp dirs in tmp_path) on free
ports, with a throwaway certificate (trustme). What the test changes in the doc's blocks is only
what a test machine must: ports, certificate paths, no IPv6 listeners, and a short
``proxy_read_timeout`` (each edit must match the doc, so a doc change cannot leave this test
checking something else). The official phoenix client (Node, tests/js/through_proxy.mjs) plays
a session through it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import ssl
from pathlib import Path

import aiohttp
import msgspec
import pytest
import trustme
from aiohttp import web

from gateway.config import parse_config
from gateway.routes import create_app
from tests.conftest import free_port, until
from tests.test_gateway import ipaddress_sent

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "operations.md"
JS_DIR = ROOT / "tests" / "js"
READ_TIMEOUT = 2          # seconds: the test's proxy_read_timeout (the doc's is 75 s)
PLAYER = "127.0.0.5"      # the browser's address, as nginx sees it
SITE = "https://play.example.com"


def doc_block(language: str, after: str) -> str:
    """The first fenced ``language`` block of docs/operations.md after the text ``after``."""
    text = DOC.read_text()
    start = text.index(after)
    m = re.compile(rf"^```{language}\n(.*?)^```", re.S | re.M).search(text, start)
    assert m, f"no ```{language} block after {after!r} in {DOC}"
    return m.group(1)


def edit(text: str, pattern: str, replacement: str, count: int = 1) -> str:
    new, n = re.subn(pattern, replacement, text, flags=re.M)
    assert n == count, f"{pattern!r} matched {n} times in the doc's nginx block, expected {count}"
    return new


def nginx_site(http_port: int, https_port: int, gateway_port: int, cert: Path, key: Path) -> str:
    """The doc's server blocks, with only what a test machine needs changed."""
    site = doc_block("nginx", "## 2. Behind nginx with TLS")
    site = edit(site, r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{http_port};")
    site = edit(site, r"^(\s*)listen 443 ssl( http2)?;", rf"\1listen 127.0.0.1:{https_port} ssl\2;")
    site = edit(site, r"^\s*listen \[::\]:\d+.*\n", "", count=2)
    site = edit(site, r"^(\s*)ssl_certificate\s+\S+;", rf"\1ssl_certificate {cert};")
    site = edit(site, r"^(\s*)ssl_certificate_key\s+\S+;", rf"\1ssl_certificate_key {key};")
    site = edit(site, r"proxy_pass http://127\.0\.0\.1:8080;", f"proxy_pass http://127.0.0.1:{gateway_port};",
                count=2)
    site = edit(site, r"proxy_read_timeout \d+s;", f"proxy_read_timeout {READ_TIMEOUT}s;")
    return site


def nginx_conf(prefix: Path, site: str) -> str:
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root root;\n" if os.geteuid() == 0 else ""  # as root, workers would be nobody
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} info;
events {{ worker_connections 128; }}
http {{
    access_log {prefix / 'access.log'};
{temp}
{site}
}}
"""


def gateway_config(mud_port: int):
    """The doc's gateway config, pointing at the fake MUD, on a free port."""
    doc = msgspec.yaml.decode(doc_block("yaml", "The matching gateway config: merge it into"))
    assert doc["security"]["allowed_origins"] == [SITE]
    doc["listen"]["port"] = 0
    doc["games"] = [{"name": "fake", "host": "127.0.0.1", "port": mud_port}]
    return parse_config(msgspec.yaml.encode(doc))


async def wait_listening(port: int, proc, log: Path) -> None:
    async def listening() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"nginx exited {proc.returncode}:\n{log.read_text()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    await until(listening, what=f"nginx listening on {port}")


@pytest.fixture
async def proxied(mud, tmp_path):
    """(https_port, http_port, ssl context trusting the CA, CA file): nginx in front of a gateway."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (./dev test installs Debian's nginx, as root)")
    ca = trustme.CA()
    cert = ca.issue_cert("play.example.com", "localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))

    runner = web.AppRunner(create_app(gateway_config(mud.port)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    gateway_port = site._server.sockets[0].getsockname()[1]

    prefix = tmp_path / "nginx"
    prefix.mkdir()
    https_port, http_port = free_port(), free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, nginx_site(http_port, https_port, gateway_port, cert_file, key_file)))
    error_log = prefix / "error.log"
    proc = await asyncio.create_subprocess_exec(
        nginx, "-p", f"{prefix}/", "-c", str(conf), "-e", str(error_log),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)  # errors: error.log
    try:
        await wait_listening(https_port, proc, error_log)
        context = ssl.create_default_context(cafile=str(ca_file))
        yield https_port, http_port, context, ca_file
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
        await runner.cleanup()


async def test_official_client_plays_through_nginx(mud, proxied):
    https_port, _, _, ca_file = proxied
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the phoenix.js test needs Node.js")
    idle_ms = 3 * READ_TIMEOUT * 1000
    js = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / "through_proxy.mjs"), f"wss://localhost:{https_port}/socket", SITE, PLAYER,
        str(idle_ms), cwd=JS_DIR, env={**os.environ, "NODE_EXTRA_CA_CERTS": str(ca_file)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        conn = await mud.next_connection(timeout=20)
        # The game is told the address nginx saw (X-Forwarded-For from a trusted proxy),
        # not the proxy's, nor the one the client forged.
        assert await ipaddress_sent(conn) == b"\x00IPADDRESS\x01" + PLAYER.encode()
        conn.send(b"hello through nginx\r\n")
        await conn.wait_for(b"look\r\n", timeout=20)
        await conn.wait_for(b"after idle\r\n", timeout=idle_ms / 1000 + 30)
        await conn.wait_closed(timeout=20)  # the leave
        out, err = await asyncio.wait_for(js.communicate(), 30)
    finally:
        if js.returncode is None:
            js.kill()
            await js.wait()
    checks = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert js.returncode == 0, (out.decode(), err.decode())
    assert all(c["ok"] for c in checks) and checks[-1]["check"] == "all", checks
    idle = next(c for c in checks if c["check"] == "outlives_proxy_read_timeout")
    assert idle["heartbeats"] >= 2 * READ_TIMEOUT  # heartbeats were what kept it alive


async def test_nginx_read_timeout_is_in_force_and_foreign_origins_are_refused(mud, proxied):
    https_port, http_port, context, _ = proxied
    url = f"wss://localhost:{https_port}/socket/websocket?vsn=2.0.0"
    async with aiohttp.ClientSession() as http:
        # Pages of other sites may not drive a player's session.
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, ssl=context, headers={"Origin": "https://evil.example.com"})
        assert refused.value.status == 403
        # The control: a socket that sends nothing, not even heartbeats, is cut by nginx after
        # proxy_read_timeout (the gateway itself would wait heartbeat_timeout_seconds = 60).
        ws = await http.ws_connect(url, ssl=context, headers={"Origin": SITE}, autoping=False)
        assert (await ws.receive(timeout=READ_TIMEOUT * 10)).type in (
            aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        await ws.close()
        # The rest of the site goes through; the admin API and metrics do not.
        async with http.get(f"https://localhost:{https_port}/healthz", ssl=context) as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        for path in ("/admin/sessions", "/metrics"):
            async with http.get(f"https://localhost:{https_port}{path}", ssl=context) as resp:
                assert resp.status == 404, path
        async with http.get(f"http://127.0.0.1:{http_port}/healthz", allow_redirects=False) as resp:
            assert resp.status == 301 and resp.headers["Location"].startswith("https://")



async def test_mud_client_plays_ws_through_nginx(mud, proxied):
    """/ws (SPEC 9) through the doc's nginx: the subprotocol is agreed end to end, frames both ways."""
    https_port, _, context, _ = proxied
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"wss://localhost:{https_port}/ws", ssl=context,
                                   protocols=("gmcp.mudstandards.org",))
        assert ws.protocol == "gmcp.mudstandards.org"
        conn = await mud.next_connection(timeout=20)
        conn.send(b"hello through nginx\r\n")
        assert (await ws.receive(timeout=20)).data == b"hello through nginx\r\n"
        await ws.send_bytes(b"look")
        await conn.wait_for(b"look\r\n", timeout=20)
        await ws.close()
