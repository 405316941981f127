"""Loopback tests of the bundled demo game and of the FakeMud test server."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.demo import DemoGame, TelnetParser, start_demo_game
from tests.conftest import read_through, until
from tests.fakemud import EVENTUALLY

try:
    from tests.fakemud import FakeConnection, FakeMud
except ImportError:  # pragma: no cover - tests/ itself on sys.path
    from fakemud import FakeConnection, FakeMud  # type: ignore[no-redef]

IAC, DONT, DO, WONT, WILL, SB, GA, SE, EOR = 255, 254, 253, 252, 251, 250, 249, 240, 239
ECHO, OPT_EOR, GMCP = 1, 25, 201

WILL_GMCP = bytes([IAC, WILL, GMCP])
WILL_EOR = bytes([IAC, WILL, OPT_EOR])
WILL_ECHO = bytes([IAC, WILL, ECHO])
WONT_ECHO = bytes([IAC, WONT, ECHO])
DO_GMCP = bytes([IAC, DO, GMCP])
DO_EOR = bytes([IAC, DO, OPT_EOR])
IAC_GA = bytes([IAC, GA])
IAC_EOR = bytes([IAC, EOR])
NAME_PROMPT = b"By what name do you wish to be known? "

GMCP_RE = re.compile(rb"\xff\xfa\xc9(.*?)\xff\xf0", re.S)
PROMPT_RE = re.compile(rb"<\d+hp \d+mp> ")

TIMEOUT = EVENTUALLY


def gmcp(module: str, data: object = None) -> bytes:
    body = module if data is None else f"{module} {json.dumps(data)}"
    return bytes([IAC, SB, GMCP]) + body.encode() + bytes([IAC, SE])


class Client:
    """A minimal raw telnet client: it answers nothing by itself."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.cursor = 0
        self.eof = False

    @classmethod
    async def connect(cls, port: int) -> "Client":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def line(self, text: str, end: bytes = b"\r\n") -> None:
        self.writer.write(text.encode() + end)

    async def _read_more(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0 or self.eof:
            raise asyncio.TimeoutError(
                f"eof={self.eof}; got after cursor: {bytes(self.buf[self.cursor:])[-3000:]!r}"
            )
        try:
            data = await asyncio.wait_for(self.reader.read(65536), remaining)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"timeout; got after cursor: {bytes(self.buf[self.cursor:])[-3000:]!r}"
            ) from None
        if not data:
            self.eof = True
        self.buf += data

    async def expect(self, needle: bytes, timeout: float = TIMEOUT) -> bytes:
        """Read until ``needle``; return everything from the cursor to past it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            idx = self.buf.find(needle, self.cursor)
            if idx >= 0:
                end = idx + len(needle)
                chunk = bytes(self.buf[self.cursor:end])
                self.cursor = end
                return chunk
            await self._read_more(deadline)

    async def expect_prompt(self, mark: bytes = IAC_EOR) -> bytes:
        chunk = await self.expect(mark)
        while not PROMPT_RE.search(chunk[-(len(mark) + 20):]):
            chunk += await self.expect(mark)
        return chunk

    async def read_to_eof(self, timeout: float = TIMEOUT) -> bytes:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.eof:
            await self._read_more(deadline)
        chunk = bytes(self.buf[self.cursor:])
        self.cursor = len(self.buf)
        return chunk

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def login(self, name: str = "Alice", gmcp: bool = True, eor: bool = True) -> bytes:
        """Negotiate, log in; return everything up to the first game prompt."""
        if gmcp:
            self.send(DO_GMCP)
        if eor:
            self.send(DO_EOR)
        await self.expect(NAME_PROMPT + IAC_GA)
        self.line(name)
        await self.expect(b"Password: " + IAC_GA)
        self.send(bytes([IAC, DO, ECHO]))
        self.line("hunter2")
        await self.expect(WONT_ECHO)
        return await self.expect_prompt(IAC_EOR if eor else IAC_GA)


def gmcp_messages(data: bytes) -> list[tuple[str, object]]:
    out = []
    for m in GMCP_RE.finditer(data):
        module, _, payload = m.group(1).decode().partition(" ")
        out.append((module, json.loads(payload) if payload else None))
    return out


def gmcp_of(data: bytes, module: str) -> object:
    found = [d for m, d in gmcp_messages(data) if m == module]
    assert found, f"no {module} in {data!r}"
    return found[-1]


@pytest.fixture
async def game():
    g = await start_demo_game()
    try:
        yield g
    finally:
        await g.close()


@pytest.fixture
async def client_factory(game: DemoGame):
    clients: list[Client] = []

    async def make() -> Client:
        c = await Client.connect(game.port)
        clients.append(c)
        return c

    try:
        yield make
    finally:
        for c in clients:
            await c.close()


# ---------------------------------------------------------------------------
# Demo game
# ---------------------------------------------------------------------------


async def test_api_shape(game: DemoGame) -> None:
    assert isinstance(game.port, int) and 0 < game.port < 65536


async def test_offer_banner_and_name_prompt(client_factory) -> None:
    c = await client_factory()
    # The client has sent nothing: the offers come unasked (no wall-clock bound: CI is loaded).
    first = await c.expect(WILL_EOR, timeout=10)
    assert first.startswith(WILL_GMCP + WILL_EOR)
    upto = await c.expect(NAME_PROMPT)
    assert "Bienvenue · ☕".encode() in upto
    assert b"\x1b[" in upto  # coloured
    assert b"\r\n" in upto and b"\n" not in upto.replace(b"\r\n", b"")
    # the prompt has no newline and is terminated with IAC GA
    assert await c.expect(IAC_GA) == IAC_GA


async def test_bad_name_asks_again(client_factory) -> None:
    c = await client_factory()
    await c.expect(NAME_PROMPT + IAC_GA)
    c.line("x")
    again = await c.expect(NAME_PROMPT + IAC_GA)
    assert WILL_ECHO not in again
    c.line("not a name 123")
    await c.expect(NAME_PROMPT + IAC_GA)
    c.line("Bob")
    await c.expect(b"Password: " + IAC_GA)


async def test_password_echo_negotiation(client_factory) -> None:
    c = await client_factory()
    await c.expect(NAME_PROMPT + IAC_GA)
    c.line("alice")
    chunk = await c.expect(b"Password: " + IAC_GA)
    assert chunk.endswith(WILL_ECHO + b"Password: " + IAC_GA)
    c.line("secret")
    after = await c.expect(WONT_ECHO + b"\r\n")
    assert after == WONT_ECHO + b"\r\n"
    rest = await c.expect_prompt(IAC_GA)
    assert b"Welcome, Alice" in rest
    assert b"secret" not in c.buf


async def test_gmcp_after_login(client_factory) -> None:
    c = await client_factory()
    data = await c.login("alice", gmcp=True, eor=True)
    vitals = gmcp_of(data, "Char.Vitals")
    assert set(vitals) >= {"hp", "maxhp", "mp", "maxmp"}
    assert all(isinstance(vitals[k], int) for k in ("hp", "maxhp", "mp", "maxmp"))
    room = gmcp_of(data, "Room.Info")
    assert room["area"] == "Demo"
    assert isinstance(room["num"], int) and room["name"]
    assert room["exits"] and all(isinstance(v, int) for v in room["exits"].values())
    # the room text and the prompt marked with EOR
    assert room["name"].encode() in data
    assert data.endswith(IAC_EOR)
    assert PROMPT_RE.search(data)
    assert IAC_GA not in data[data.rfind(b"Welcome"):]


async def test_no_gmcp_without_do_and_ga_without_eor(client_factory) -> None:
    c = await client_factory()
    data = await c.login("alice", gmcp=False, eor=False)
    assert bytes([IAC, SB]) not in data
    assert data.endswith(b"> " + IAC_GA)
    c.line("score")
    data = await c.expect_prompt(IAC_GA)
    assert bytes([IAC, SB]) not in data
    assert IAC_EOR not in data


async def test_dont_gmcp_turns_it_off(client_factory) -> None:
    c = await client_factory()
    await c.login("alice", gmcp=True, eor=True)
    c.send(bytes([IAC, DONT, GMCP]))
    await c.expect(bytes([IAC, WONT, GMCP]))
    c.line("score")
    data = await c.expect_prompt()
    assert bytes([IAC, SB]) not in data


async def test_moving_changes_room_info(client_factory) -> None:
    c = await client_factory()
    data = await c.login()
    start = gmcp_of(data, "Room.Info")
    assert "north" in start["exits"]
    c.line("n")
    data = await c.expect_prompt()
    north = gmcp_of(data, "Room.Info")
    assert north["num"] == start["exits"]["north"] != start["num"]
    assert north["name"] != start["name"]
    assert north["name"].encode() in data
    c.line("south")
    back = gmcp_of(await c.expect_prompt(), "Room.Info")
    assert back["num"] == start["num"]
    # a blocked exit moves nowhere and sends no Room.Info
    blocked = next(d for d in ("north", "south", "east", "west", "up", "down")
                   if d not in start["exits"])
    c.line(blocked)
    data = await c.expect_prompt()
    assert b"can't go" in data
    assert not gmcp_messages(data)


async def test_rooms_connected(client_factory) -> None:
    """At least four rooms, all reachable, every exit leads to a room with a way back."""
    c = await client_factory()
    first = gmcp_of(await c.login(), "Room.Info")
    seen = {first["num"]: first}
    back = {"north": "south", "south": "north", "east": "west", "west": "east",
            "up": "down", "down": "up"}

    async def explore(room: dict) -> None:
        for direction, dest in room["exits"].items():
            if dest in seen:
                continue
            c.line(direction)
            info = gmcp_of(await c.expect_prompt(), "Room.Info")
            assert info["num"] == dest
            assert info["exits"].get(back[direction]) == room["num"]
            seen[dest] = info
            await explore(info)
            c.line(back[direction])
            assert gmcp_of(await c.expect_prompt(), "Room.Info")["num"] == room["num"]

    await explore(first)
    assert len(seen) >= 4


async def test_say_seen_by_second_player(client_factory) -> None:
    a = await client_factory()
    b = await client_factory()
    await a.login("alice")
    await b.login("bob")
    await a.expect(b"Bob has entered the game")
    await a.expect_prompt()
    a.line("say hello there ☕")
    mine = await a.expect_prompt()
    assert "You say, 'hello there ☕'".encode() in mine
    theirs = await b.expect(b"says, ")
    theirs += await b.expect_prompt()
    assert "Alice says, 'hello there ☕'".encode() in theirs
    # who lists both
    b.line("who")
    who = await b.expect_prompt()
    assert b"Alice" in who and b"Bob" in who
    # after bob walks away, he no longer hears alice
    b.line("n")
    await b.expect_prompt()
    await a.expect(b"Bob leaves north")
    a.line("say secret plans")
    await a.expect_prompt()
    a.line("look")
    await a.expect_prompt()
    b.line("look")
    data = await b.expect_prompt()
    assert b"secret plans" not in data


async def test_look_help_unknown_and_empty(client_factory) -> None:
    c = await client_factory()
    await c.login()
    c.line("l")
    data = await c.expect_prompt()
    assert b"\x1b[" in data and b"Exits" in data and data.endswith(IAC_EOR)
    c.line("help")
    data = await c.expect_prompt()
    assert b"say" in data and b"colors" in data
    c.line("xyzzy")
    data = await c.expect_prompt()
    assert b"Huh?" in data
    c.line("")
    data = await c.expect(IAC_EOR)
    assert PROMPT_RE.fullmatch(data[:-2].lstrip(b"\r\n"))
    # LF-only line ending works too
    c.line("look", end=b"\n")
    data = await c.expect_prompt()
    assert b"Exits" in data
    # every line sent ends with CRLF
    assert re.search(rb"(?<!\r)\n", bytes(c.buf)) is None


async def test_colors(client_factory) -> None:
    c = await client_factory()
    await c.login()
    c.line("colors")
    data = await c.expect_prompt()
    assert re.search(rb"\x1b\[3[0-7]m", data)
    assert re.search(rb"\x1b\[38;5;\d{1,3}m", data)
    assert re.search(rb"\x1b\[38;2;\d{1,3};\d{1,3};\d{1,3}m", data)


async def test_score_sends_vitals(client_factory) -> None:
    c = await client_factory()
    await c.login()
    c.line("score")
    data = await c.expect_prompt()
    assert gmcp_of(data, "Char.Vitals")["maxhp"] > 0


async def test_quit_closes(client_factory) -> None:
    c = await client_factory()
    await c.login()
    c.line("quit")
    data = await c.read_to_eof()
    assert b"Goodbye" in data
    assert c.eof


async def test_quit_tells_the_room(client_factory) -> None:
    a = await client_factory()
    b = await client_factory()
    await a.login("alice")
    await b.login("bob")
    b.line("quit")
    await b.read_to_eof()
    await a.expect(b"Bob has left the game")


async def test_core_ping_answered_and_hello_ignored(client_factory) -> None:
    c = await client_factory()
    await c.login()
    c.send(gmcp("Core.Hello", {"client": "test", "version": "1"}))
    c.send(gmcp("Core.Supports.Set", ["Char 1", "Room 1"]))
    c.send(gmcp("Core.Ping"))
    pong = await c.expect(gmcp("Core.Ping"))
    assert pong.endswith(bytes([IAC, SB, GMCP]) + b"Core.Ping" + bytes([IAC, SE]))
    assert b"Huh?" not in pong
    # still playing
    c.line("look")
    assert b"Exits" in await c.expect_prompt()


async def test_iac_sequences_inside_a_line(client_factory) -> None:
    c = await client_factory()
    await c.login()
    # IAC SB ... IAC SE and a negotiation inside a line are stripped; IAC NOP too
    c.send(b"lo" + gmcp("Core.Hello", {"a": "b"}) + b"o" + bytes([IAC, 241])
           + bytes([IAC, WONT, 31]) + b"k\r\n")
    data = await c.expect_prompt()
    assert b"Exits" in data and b"Huh?" not in data
    # IAC IAC is data 0xFF (an invalid UTF-8 byte here -> unknown command)
    c.send(b"lo\xff\xffok\r\n")
    data = await c.expect_prompt()
    assert b"Huh?" in data


async def test_unknown_options_refused(client_factory) -> None:
    c = await client_factory()
    await c.expect(NAME_PROMPT + IAC_GA)
    c.send(bytes([IAC, WILL, 31, IAC, DO, 3]))  # WILL NAWS, DO SGA
    await c.expect(bytes([IAC, DONT, 31]))
    await c.expect(bytes([IAC, WONT, 3]))


async def test_long_line_without_newline(client_factory, game: DemoGame) -> None:
    c = await client_factory()
    await c.login()
    c.send(b"x" * 10240)
    await c.writer.drain()
    await read_through(c.writer, what="the game read the first part")  # two reads of the game's
    c.send(b"y" * 50000 + b"\r\n")
    data = await c.expect_prompt()
    assert b"too long" in data
    c.line("look")
    assert b"Exits" in await c.expect_prompt()
    # and the game still takes new players
    d = await client_factory()
    await d.login("dora")


async def test_close_disconnects_players() -> None:
    g = await start_demo_game()
    c = await Client.connect(g.port)
    await c.login()
    port = g.port
    await g.close()
    await c.read_to_eof(timeout=EVENTUALLY)
    assert c.eof
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await c.close()


async def test_pipelined_login(client_factory) -> None:
    """All input in one write (answers to our WILLs arrive late) still works."""
    c = await client_factory()
    c.send(DO_GMCP + DO_EOR + b"alice\r\npw\r\n" + bytes([IAC, DO, ECHO]) + b"look\r\n")
    data = await c.expect(b"Exits")
    data += await c.expect(b"Exits")
    data += await c.expect(IAC_EOR)
    # no WILL ECHO re-offered after the password was taken
    assert data.count(WILL_ECHO) == 1
    assert data.index(WILL_ECHO) < data.index(b"Password: ") < data.index(WONT_ECHO)


# ---------------------------------------------------------------------------
# The demo's telnet parser
# ---------------------------------------------------------------------------


def _events(chunks: list[bytes]) -> list:
    p = TelnetParser()
    out: list = []
    for ch in chunks:
        out.extend(p.feed(ch))
    return out


def test_parser_basic() -> None:
    ev = _events([b"hel", b"lo\r\n", b"\xff\xfd\xc9", b"a\xff\xff\x00b\n",
                  b"\xff\xfa\xc9Core.Ping\xff\xf0", b"x\xff", b"\xf9y\r\n"])
    assert ev == [
        ("line", b"hello"),
        ("neg", DO, GMCP),
        ("line", b"a\xffb"),
        ("sb", GMCP, b"Core.Ping"),
        ("cmd", GA, None),
        ("line", b"xy"),
    ]


def test_parser_sb_escaping_and_caps() -> None:
    ev = _events([b"\xff\xfa\xc9a\xff\xffb\xff\xf0"])
    assert ev == [("sb", GMCP, b"a\xffb")]
    p = TelnetParser(max_line=10, max_sb=10)
    assert p.feed(b"a" * 11) == []
    assert p.feed(b"b\nok\n") == [("toolong", None), ("line", b"ok")]
    assert p.feed(b"\xff\xfa\xc9" + b"z" * 20 + b"\xff\xf0done\n") == [("line", b"done")]
    assert len(p._line) == 0 and p._sb is None


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            st.binary(max_size=20).map(lambda b: b.replace(b"\xff", b"")),
            st.sampled_from([b"\r\n", b"\n", b"\xff\xff", b"\xff\xf9", b"\xff\xfb\x01",
                             b"\xff\xfa\xc9Core.Ping {}\xff\xf0", b"\xff\xfa\x18\xff\xff\xff\xf0"]),
        ),
        max_size=30,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_parser_chunking_invariant(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    whole = _events([data])
    points = sorted({c for c in cuts if c <= len(data)})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    assert _events(chunks) == whole


def test_parser_is_linear_on_big_input() -> None:
    p = TelnetParser()
    # 4 MB of text with no IAC and no newline stays bounded
    for _ in range(64):
        assert p.feed(b"q" * 65536) == []
    assert len(p._line) == 0
    assert p.feed(b"\n") == [("toolong", None)]


# ---------------------------------------------------------------------------
# FakeMud
# ---------------------------------------------------------------------------


@pytest.fixture
async def mud():
    m = await FakeMud().start()
    try:
        yield m
    finally:
        await m.close()


async def test_fakemud_bytes_both_ways(mud: FakeMud) -> None:
    assert mud.host == "127.0.0.1" and mud.port > 0
    reader, writer = await asyncio.open_connection(mud.host, mud.port)
    conn = await mud.next_connection()
    assert isinstance(conn, FakeConnection)
    assert mud.connections == [conn]
    assert conn.peer[1] == writer.get_extra_info("sockname")[1]
    raw = bytes([IAC, WILL, GMCP, IAC, IAC]) + b"hello\r\n" + bytes(range(256))
    conn.send(raw)
    await conn.drain()
    got = await asyncio.wait_for(reader.readexactly(len(raw)), TIMEOUT)
    assert got == raw  # no escaping, no negotiation of its own
    writer.write(bytes([IAC, DO, GMCP]) + b"\xff\xfa\xc9Core.Hello {}\xff\xf0" + b"look\r\n")
    await writer.drain()
    await conn.wait_for(b"look\r\n")
    assert conn.received == bytearray(
        bytes([IAC, DO, GMCP]) + b"\xff\xfa\xc9Core.Hello {}\xff\xf0" + b"look\r\n")
    writer.close()
    await writer.wait_closed()
    await conn.wait_closed()
    assert conn.closed


async def test_fakemud_sends_nothing_unasked(mud: FakeMud) -> None:
    reader, writer = await asyncio.open_connection(mud.host, mud.port)
    conn = await mud.next_connection()
    conn.send(b"--marker--")  # what it sent of itself would come first
    assert await asyncio.wait_for(reader.readexactly(10), TIMEOUT) == b"--marker--"
    writer.close()


async def test_fakemud_on_connect(mud: FakeMud) -> None:
    mud.on_connect = WILL_GMCP + b"Welcome!\r\n"
    reader, writer = await asyncio.open_connection(mud.host, mud.port)
    got = await asyncio.wait_for(reader.readexactly(len(mud.on_connect)), TIMEOUT)
    assert got == WILL_GMCP + b"Welcome!\r\n"
    writer.close()


async def test_fakemud_wait_for_successive(mud: FakeMud) -> None:
    reader, writer = await asyncio.open_connection(mud.host, mud.port)
    conn = await mud.next_connection()
    writer.write(b"ab--ab--")
    await writer.drain()
    assert await conn.wait_for(b"ab") == 2
    assert await conn.wait_for(b"ab") == 6
    with pytest.raises(asyncio.TimeoutError) as info:
        await conn.wait_for(b"ab", timeout=0.2)
    assert "ab--ab--" in str(info.value)
    # a match arriving later, split over two writes, is found
    waiter = asyncio.create_task(conn.wait_for(b"xyz"))
    await asyncio.sleep(0)  # the waiter waits
    writer.write(b"--x")
    await writer.drain()
    await until(lambda: conn.received.endswith(b"--x"), what="the first part received")
    assert not waiter.done()
    writer.write(b"yz")
    assert await waiter == 13
    writer.close()


async def test_fakemud_accept_false(mud: FakeMud) -> None:
    mud.accept = False
    mud.on_connect = b"never sent"
    reader, writer = await asyncio.open_connection(mud.host, mud.port)
    assert await asyncio.wait_for(reader.read(100), TIMEOUT) == b""
    writer.close()
    assert mud.connections == [] and mud.unclaimed() == 0  # it was refused: the read above ended
    mud.accept = True
    reader, writer = await asyncio.open_connection(mud.host, mud.port)
    conn = await mud.next_connection()
    assert mud.connections == [conn]
    writer.close()


async def test_fakemud_next_connection_order(mud: FakeMud) -> None:
    writers = []
    for _ in range(3):
        _, w = await asyncio.open_connection(mud.host, mud.port)
        writers.append(w)
        # make the accept order well defined
        await until(lambda: len(mud.connections) == len(writers), what="accepted")
    ports = [w.get_extra_info("sockname")[1] for w in writers]
    got = [await mud.next_connection() for _ in range(3)]
    assert [c.peer[1] for c in got] == ports
    assert got == mud.connections
    assert mud.unclaimed() == 0  # three connected, three accepted, three returned
    for w in writers:
        w.close()


async def test_fakemud_server_close(mud: FakeMud) -> None:
    reader, writer = await asyncio.open_connection(mud.host, mud.port)
    conn = await mud.next_connection()
    conn.send(b"bye\r\n")
    conn.close()
    assert conn.closed
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b"bye\r\n"
    conn.send(b"ignored")  # no error after close
    writer.close()


async def test_fakemud_close_all() -> None:
    m = await FakeMud().start()
    pairs = []
    for _ in range(2):
        pairs.append(await asyncio.open_connection(m.host, m.port))
        await m.next_connection()
    await m.close()
    for r, w in pairs:
        assert await asyncio.wait_for(r.read(), TIMEOUT) == b""
        w.close()
    assert all(c.closed for c in m.connections)
    with pytest.raises(OSError):
        await asyncio.open_connection(m.host, m.port)


async def test_mssp_on_do(client_factory) -> None:
    c = await client_factory()
    await c.expect(bytes([IAC, WILL, 70]))
    c.send(bytes([IAC, DO, 70]))
    got = await c.expect(bytes([IAC, SE]))
    body = got[got.index(bytes([IAC, SB, 70])) + 3:-2]
    pairs = dict(p.split(b"\x02", 1) for p in body.split(b"\x01")[1:])
    assert pairs[b"NAME"] == b"Demo MUD" and pairs[b"PLAYERS"] == b"0"
