"""No command is lost or doubled silently (SPEC 7.1), in real headless Chromium.

The page reaches the gateway through a TCP relay run by the test, which can make the page's
WebSocket connections go silent without closing them (nothing forwarded either way, or one
way; the sockets stay open), as a phone that changes network or a NAT that forgets the
connection does. New connections are forwarded: the network is back for the page's reconnect.
The game is the scripted fake MUD, which records every byte it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import AsyncIterator

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import make_config
from tests.fakemud import FakeConnection, FakeMud
from tests.test_browser import browser, connected, log_has, log_text, open_page, send_line, serve  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: SPEC 7.1: a connection through which nothing arrives counts as dead within 20 s.
DEAD_WITHIN = 20.0
TO_GATEWAY, TO_PAGE = "to gateway", "to page"


class Pipe:
    """One connection through the relay: the page's side and the gateway's."""

    def __init__(self, page_writer: asyncio.StreamWriter, gateway_writer: asyncio.StreamWriter) -> None:
        self.writers = (page_writer, gateway_writer)
        self.websocket = False  # the page's first bytes asked for /socket/websocket
        self.silent: set[str] = set()

    def close(self) -> None:
        for w in self.writers:
            w.close()


class Relay:
    """A TCP relay from a loopback port to the gateway's. ``silence()`` makes the WebSocket
    connections open now forward nothing more (both ways, or one), sockets kept open."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.pipes: list[Pipe] = []
        self.tasks: set[asyncio.Task] = set()
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    async def __aenter__(self) -> "Relay":
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for pipe in self.pipes:
            pipe.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def silence(self, *directions: str) -> int:
        """The page's WebSocket connections open now forward nothing more in ``directions``."""
        pipes = [p for p in self.pipes if p.websocket and not p.silent]
        for pipe in pipes:
            pipe.silent.update(directions or (TO_GATEWAY, TO_PAGE))
        return len(pipes)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        pipe = Pipe(writer, up_writer)
        self.pipes.append(pipe)
        for args in ((pipe, reader, up_writer, TO_GATEWAY), (pipe, up_reader, writer, TO_PAGE)):
            task = asyncio.ensure_future(self._pump(*args))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    @staticmethod
    async def _pump(pipe: Pipe, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        first = direction == TO_GATEWAY
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if first:
                    pipe.websocket = data.startswith(b"GET /socket/websocket")
                    first = False
                if direction in pipe.silent:
                    continue  # swallowed: the other side hears nothing, and no close either
                writer.write(data)
                await writer.drain()
            if direction not in pipe.silent:
                writer.close()


@contextlib.asynccontextmanager
async def relayed_game(browser: Browser) -> AsyncIterator[tuple[Page, FakeMud, FakeConnection, Relay]]:  # noqa: F811
    """The page, through the relay, playing the fake MUD: (page, mud, game connection, relay)."""
    async with FakeMud() as mud:
        async with serve(make_config(mud.port)) as (_, gateway_url):
            port = int(gateway_url.rsplit(":", 1)[1].strip("/"))
            async with Relay(port) as relay:
                async with open_page(browser, relay.url) as page:
                    conn = await mud.next_connection(timeout=20)
                    await connected(page)
                    yield page, mud, conn, relay


async def game_got_once(conn: FakeConnection, page: Page, *lines: bytes) -> None:
    """The game got each of ``lines`` exactly once: a marker typed after them arrives, and each
    occurs once in all the game received."""
    await send_line(page, "--marker--")
    await conn.wait_for(b"--marker--\r\n", timeout=20)
    for line in lines:
        assert conn.received.count(line + b"\r\n") == 1, (line, bytes(conn.received))


async def dead_link_noticed(page: Page) -> float:
    """Seconds until the status line no longer says connected (SPEC 7.1: within 20)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await page.wait_for_selector("#status:not([data-state=connected])", timeout=(DEAD_WITHIN + 10) * 1000)
    elapsed = loop.time() - start
    status = await page.inner_text("#status")
    assert "connected" not in status.lower(), status
    assert await page.get_attribute("#status", "role") == "status"
    return elapsed


async def topic_queue(page: Page) -> dict:
    """The page's command queue as kept in sessionStorage (commandqueue.js)."""
    raw = await page.evaluate("""() => {
        const uuid = sessionStorage.getItem('mud-gateway:topic:fake');
        return sessionStorage.getItem('mud-gateway:queue:telnet:' + uuid);
    }""")
    return json.loads(raw) if raw else {}


async def all_confirmed(page: Page) -> dict:
    """The page's queue once every command in it has been answered (the game gets a command
    just before the page gets its answer): the queue."""
    await page.wait_for_function("""() => {
        const uuid = sessionStorage.getItem('mud-gateway:topic:fake');
        const raw = sessionStorage.getItem('mud-gateway:queue:telnet:' + uuid);
        return raw && JSON.parse(raw).pending.length === 0;
    }""")
    return await topic_queue(page)


async def test_a_dead_link_is_noticed_and_commands_reach_the_game_once(browser: Browser) -> None:  # noqa: F811
    async with relayed_game(browser) as (page, mud, conn, relay):
        await send_line(page, "look")
        await conn.wait_for(b"look\r\n")

        # 1. Nothing arrives from the gateway (the reply is lost), though the push got through:
        # the game has the command, and the rejoin's input_n says so; it is not sent again.
        assert relay.silence(TO_PAGE) == 1
        await send_line(page, "north")
        await conn.wait_for(b"north\r\n")
        assert await dead_link_noticed(page) < DEAD_WITHIN
        await connected(page)  # by itself, on a new connection

        # 2. Nothing gets through either way: the command waits in the page, and goes once the
        # page has reconnected by itself.
        assert relay.silence() == 1
        await send_line(page, "south")
        assert await dead_link_noticed(page) < DEAD_WITHIN
        await connected(page)
        await conn.wait_for(b"south\r\n", timeout=20)

        await game_got_once(conn, page, b"look", b"north", b"south")
        assert (await all_confirmed(page))["next"] == 5  # each one confirmed, none numbered twice
        assert "Not delivered" not in await log_text(page)
        assert len(mud.connections) == 1  # one game session throughout


async def test_a_command_the_session_could_not_take_is_marked_not_delivered(browser: Browser) -> None:  # noqa: F811
    async with relayed_game(browser) as (page, _, conn, relay):
        assert relay.silence(TO_GATEWAY) == 1  # the page's pushes go nowhere
        await send_line(page, "kill rat")
        queue = await topic_queue(page)  # numbered, pushed, not confirmed
        assert [e["text"] for e in queue["pending"]] == ["kill rat"], queue
        conn.close()  # the game hangs up: the session ends, the page hears it
        await page.wait_for_selector("#status[data-state=ended]")
        await log_has(page, "Not delivered (the session ended): kill rat")
        assert b"kill rat" not in conn.received
        assert await topic_queue(page) == {}  # nothing kept of an ended session


async def test_a_reload_goes_on_counting_and_sends_nothing_twice(browser: Browser) -> None:  # noqa: F811
    async with relayed_game(browser) as (page, mud, conn, relay):
        await send_line(page, "one")
        await conn.wait_for(b"one\r\n")
        # The game gets a command just before the page gets its reply: silencing the page now
        # could swallow the reply to "one" as well; wait for the page to have it.
        assert (await all_confirmed(page))["next"] == 2
        # "two" reaches the game but its reply never reaches the page, which reloads meanwhile.
        relay.silence(TO_PAGE)
        await send_line(page, "two")
        await conn.wait_for(b"two\r\n")
        assert [e["n"] for e in (await topic_queue(page))["pending"]] == [2]
        await page.reload()
        await connected(page)
        queue = await topic_queue(page)  # "two" is confirmed by the join's input_n, not sent again
        assert queue["next"] == 3 and queue["pending"] == [], queue
        # The reloaded page knows "two" reached the game (input_n 2) and numbers on from 3: a
        # counter started again at 1 would make the gateway take "three" for a duplicate.
        await send_line(page, "three")
        await conn.wait_for(b"three\r\n", timeout=20)
        await game_got_once(conn, page, b"one", b"two", b"three")
        assert (await all_confirmed(page))["next"] == 5
        assert len(mud.connections) == 1
