"""Sound and MSDP panels in real headless Chromium (SPEC 5, MSP and MSDP): the page plays media only
from the game's media_url, off until the player turns it on; MSDP vitals draw the same gauges as GMCP.

The media server is a local aiohttp app on its own port (its own origin), serving a small WAV;
a second one, another origin, is what a game's Client.Media may name and must never be asked.
"""

from __future__ import annotations

import contextlib
import struct
from typing import AsyncIterator

import pytest
from aiohttp import web
from playwright.async_api import Browser

from tests.conftest import make_config, until
from tests.fakemud import FakeMud
from tests.test_browser import browser, connected, log_has, open_page, serve, serve_app  # noqa: F401 (fixture)

pytestmark = pytest.mark.asyncio(loop_scope="module")

IAC, SB, SE, DO, WILL = 255, 250, 240, 253, 251
MSP, MSDP, GMCP = 90, 69, 201


def cmd(*codes: int) -> bytes:
    return bytes(codes)


def wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    """A mono 16-bit PCM WAV of silence."""
    frames = b"\x00\x00" * int(seconds * rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames)) + frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


@contextlib.asynccontextmanager
async def media_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A server of /sounds/*.wav on a free port: (its base URL, the paths asked for)."""
    asked: list[str] = []
    sound = wav()

    async def handle(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(body=sound, content_type="audio/wav")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    async with serve_app(app) as url:
        yield url + "sounds/", asked


async def test_sound_only_from_media_url_and_off_until_turned_on(browser: Browser) -> None:
    async with media_server() as (media_url, asked), media_server() as (other_url, other_asked), \
            FakeMud() as mud:
        config = make_config(mud.port, game_extra=f"    title: Fake Game\n    media_url: {media_url}")
        async with serve(config) as (app, url):
            async with open_page(browser, url) as page:
                requests: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                conn = await mud.next_connection(timeout=20)
                await connected(page)
                toggle = page.locator("#sound-toggle")
                assert await toggle.get_attribute("aria-pressed") == "false"
                assert await page.get_by_role("button", name="Sound", exact=True).count() == 1
                assert await page.locator("#sound-volume").count() == 1
                conn.send(cmd(IAC, WILL, MSP))
                await conn.wait_for(cmd(IAC, DO, MSP))
                # Off: the trigger leaves the text and nothing is fetched.
                conn.send(b"You hear a beep.\r\n!!SOUND(beep.wav V=50)\r\nafter the beep\r\n")
                await log_has(page, "after the beep")
                assert "!!SOUND" not in await page.inner_text("#log")
                assert asked == [] and not [r for r in requests if "/sounds/" in r]
                # On: played from media_url.
                await toggle.click()
                assert await toggle.get_attribute("aria-pressed") == "true"
                conn.send(b"!!SOUND(beep.wav V=50)\r\n")
                await until(lambda: "/sounds/beep.wav" in asked, what="beep.wav asked for")
                # GMCP Client.Media from the game works the same, under media_url ...
                conn.send(cmd(IAC, WILL, GMCP))
                await conn.wait_for(cmd(IAC, DO, GMCP))
                conn.send(cmd(IAC, SB, GMCP) + b'Client.Media.Play {"name": "gmcp.wav", "url": "'
                          + media_url.encode() + b'", "type": "music", "loops": -1}' + cmd(IAC, SE))
                await until(lambda: "/sounds/gmcp.wav" in asked, what="gmcp.wav asked for")
                # ... and naming another origin it is refused, and said so.
                conn.send(cmd(IAC, SB, GMCP) + b'Client.Media.Play {"name": "evil.wav", "url": "'
                          + other_url.encode() + b'", "type": "sound"}' + cmd(IAC, SE)
                          + cmd(IAC, SB, GMCP) + b'Client.Media.Play {"name": "' + other_url.encode()
                          + b'x.wav"}' + cmd(IAC, SE) + b"done\r\n")
                await log_has(page, "done")
                await log_has(page, "refused")
                assert other_asked == []
                media_origin = media_url.rsplit("/sounds/", 1)[0]
                page_origin = url.rstrip("/")
                assert all(r.startswith((media_origin, page_origin)) for r in requests), requests
                # Off again: what plays stops.
                await toggle.click()
                assert await toggle.get_attribute("aria-pressed") == "false"


async def test_no_media_url_no_sound_controls(browser: Browser) -> None:
    async with FakeMud() as mud:
        async with serve(make_config(mud.port)) as (app, url):
            async with open_page(browser, url) as page:
                await mud.next_connection(timeout=20)
                await connected(page)
                assert await page.locator("#sound-toggle").count() == 0


async def test_msdp_vitals_and_room_in_the_panels(browser: Browser) -> None:
    async with FakeMud() as mud:
        async with serve(make_config(mud.port)) as (app, url):
            async with open_page(browser, url) as page:
                conn = await mud.next_connection(timeout=20)
                await connected(page)
                conn.send(cmd(IAC, WILL, MSDP))
                await conn.wait_for(cmd(IAC, DO, MSDP))

                def msdp(body: bytes) -> bytes:
                    return cmd(IAC, SB, MSDP) + body + cmd(IAC, SE)

                conn.send(msdp(b"\x01HEALTH_MAX\x02120") + msdp(b"\x01HEALTH\x0290\x01MANA\x0210\x01MANA_MAX\x0240"))
                await page.wait_for_selector(".gauge[data-name=health][aria-valuenow='90']")
                assert await page.get_attribute(".gauge[data-name=health]", "aria-valuemax") == "120"
                conn.send(msdp(b"\x01HEALTH\x0230"))
                await page.wait_for_selector(".gauge[data-name=health][aria-valuenow='30']")
                assert await page.get_attribute(".gauge[data-name=mana]", "aria-valuenow") == "10"
                conn.send(msdp(b"\x01ROOM\x02\x03\x01VNUM\x026008\x01NAME\x02The forest clearing\x01AREA\x02Haon Dor"
                               b"\x01EXITS\x02\x03\x01n\x026011\x01e\x026007\x04\x04"))
                await page.wait_for_selector("#room-name:has-text('The forest clearing')")
                assert await page.inner_text("#room-area") == "Haon Dor"
                assert await page.locator("#exits .exit").all_inner_texts() == ["n", "e"]
