"""The bundled demo MUD.

A tiny telnet game used by ``mud-gateway --demo`` and by the test-suite.  It
speaks just enough telnet to exercise the gateway: it offers GMCP (201) and
EOR (25) and MSSP (70), marks prompts with IAC GA / IAC EOR, asks for a password behind
IAC WILL ECHO, and answers ``Core.Ping``.

This module deliberately imports nothing from the rest of :mod:`gateway`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemoGame", "start_demo_game", "TelnetParser"]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# Telnet constants
# --------------------------------------------------------------------------

IAC = 255
DONT = 254
DO = 253
WONT = 252
WILL = 251
SB = 250
GA = 249
SE = 240
EOR_CMD = 239  # the EOR *command* (RFC 885)

OPT_ECHO = 1
OPT_EOR = 25
OPT_GMCP = 201
OPT_MSSP = 70
MSSP_VAR, MSSP_VAL = 1, 2

MAX_LINE = 4096  # bytes of one input line; longer lines are refused
MAX_SB = 8192  # bytes of one subnegotiation; longer ones are discarded
MAX_WRITE_BUFFER = 1 << 20  # a player who does not read is disconnected

_IAC_B = bytes([IAC])


def _cmd(*codes: int) -> bytes:
    return bytes([IAC, *codes])


def gmcp_frame(module: str, data: Any = None) -> bytes:
    """``IAC SB GMCP <module> [json] IAC SE``; UTF-8 never contains 0xFF."""
    body = module if data is None else f"{module} {json.dumps(data, ensure_ascii=False)}"
    return _cmd(SB, OPT_GMCP) + body.encode("utf-8").replace(_IAC_B, _IAC_B * 2) + _cmd(SE)


# --------------------------------------------------------------------------
# Incremental telnet parser (server side)
# --------------------------------------------------------------------------


class TelnetParser:
    """Split a client's byte stream into events, incrementally.

    ``feed(data)`` returns a list of events, in stream order:

    * ``("line", bytes)``  -- a complete input line, CR/LF and NUL removed,
      IAC sequences stripped, IAC IAC turned into 0xFF;
    * ``("toolong", None)`` -- a line longer than ``MAX_LINE`` bytes ended
      (its content was discarded);
    * ``("neg", cmd, opt)`` -- IAC DO/DONT/WILL/WONT <opt>;
    * ``("cmd", cmd, None)`` -- any other two-byte IAC command;
    * ``("sb", opt, payload)`` -- a complete IAC SB <opt> ... IAC SE (payload
      unescaped; oversize subnegotiations are dropped).

    Memory is bounded: at most ``MAX_LINE`` bytes of a pending line, at most
    ``MAX_SB`` bytes of a pending subnegotiation and two bytes of a split IAC
    sequence are kept between calls.
    """

    def __init__(self, max_line: int = MAX_LINE, max_sb: int = MAX_SB) -> None:
        self.max_line = max_line
        self.max_sb = max_sb
        self._pending = b""  # an incomplete IAC sequence (at most 2 bytes)
        self._line = bytearray()
        self._line_overflow = False
        self._sb: bytearray | None = None
        self._sb_opt = 0
        self._sb_overflow = False

    # -- text -------------------------------------------------------------
    def _text(self, data: bytes, events: list) -> None:
        start = 0
        n = len(data)
        while start < n:
            nl = data.find(b"\n", start)
            end = n if nl < 0 else nl
            self._append_line(data, start, end)
            if nl < 0:
                return
            if self._line_overflow:
                events.append(("toolong", None))
            else:
                line = bytes(self._line)
                if b"\r" in line or b"\0" in line:
                    line = line.replace(b"\r", b"").replace(b"\0", b"")
                events.append(("line", line))
            self._line.clear()
            self._line_overflow = False
            start = nl + 1

    def _append_line(self, data: bytes, start: int, end: int) -> None:
        if self._line_overflow or end <= start:
            return
        room = self.max_line - len(self._line)
        if end - start > room:
            self._line.clear()
            self._line_overflow = True
            return
        self._line += data[start:end]

    def _sb_append(self, data: bytes, start: int, end: int) -> None:
        assert self._sb is not None
        if self._sb_overflow or end <= start:
            return
        if len(self._sb) + (end - start) > self.max_sb:
            self._sb.clear()
            self._sb_overflow = True
            return
        self._sb += data[start:end]

    # -- main entry ---------------------------------------------------------
    def feed(self, data: bytes) -> list:
        events: list = []
        if self._pending:
            data = self._pending + data
            self._pending = b""
        i = 0
        n = len(data)
        while i < n:
            j = data.find(_IAC_B, i)
            if self._sb is not None:
                if j < 0:
                    self._sb_append(data, i, n)
                    break
                self._sb_append(data, i, j)
                if j + 1 >= n:
                    self._pending = data[j:]
                    break
                c = data[j + 1]
                if c == SE:
                    if not self._sb_overflow:
                        events.append(("sb", self._sb_opt, bytes(self._sb)))
                    self._sb = None
                    self._sb_overflow = False
                    i = j + 2
                elif c == IAC:
                    self._sb_append(_IAC_B, 0, 1)
                    i = j + 2
                else:
                    # Malformed: an IAC command inside SB ends it; reprocess.
                    self._sb = None
                    self._sb_overflow = False
                    i = j
                continue

            if j < 0:
                self._text(data[i:] if i else data, events)
                break
            if j > i:
                self._text(data[i:j], events)
            if j + 1 >= n:
                self._pending = data[j:]
                break
            c = data[j + 1]
            if c == IAC:
                self._text(_IAC_B, events)
                i = j + 2
            elif c in (WILL, WONT, DO, DONT):
                if j + 2 >= n:
                    self._pending = data[j:]
                    break
                events.append(("neg", c, data[j + 2]))
                i = j + 3
            elif c == SB:
                if j + 2 >= n:
                    self._pending = data[j:]
                    break
                self._sb = bytearray()
                self._sb_opt = data[j + 2]
                self._sb_overflow = False
                i = j + 3
            else:
                events.append(("cmd", c, None))
                i = j + 2
        return events


# --------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------

ESC = "\x1b"
RESET = f"{ESC}[0m"
BOLD_CYAN = f"{ESC}[1;36m"
GREEN = f"{ESC}[32m"
YELLOW = f"{ESC}[33m"
MAGENTA = f"{ESC}[35m"


@dataclass(frozen=True)
class Room:
    num: int
    name: str
    desc: str
    exits: dict[str, int]


ROOMS: dict[int, Room] = {
    1: Room(
        1,
        "The Village Square",
        "Cobblestones ring an old stone fountain whose water tastes faintly of\n"
        "mint. A café spills its tables onto the square. A road leads north to\n"
        "a gate; an inn stands to the east and a garden lies to the west. A\n"
        "narrow stair winds down beneath the fountain.",
        {"north": 2, "east": 3, "west": 4, "down": 5},
    ),
    2: Room(
        2,
        "The North Gate",
        "A weathered gate of oak and iron looks out over misty hills. A watch\n"
        "tower rises above it.",
        {"south": 1, "up": 6},
    ),
    3: Room(
        3,
        "The Sleeping Dragon Inn",
        "A warm common room smelling of woodsmoke and spiced wine. A sign over\n"
        "the bar reads: « Ici on parle MUD ».",
        {"west": 1},
    ),
    4: Room(
        4,
        "The Herb Garden",
        "Neat rows of sage, thyme and lavender hum with bees.",
        {"east": 1},
    ),
    5: Room(
        5,
        "The Old Cellar",
        "Damp stone walls and the drip of water. Something skitters away from\n"
        "the light.",
        {"up": 1},
    ),
    6: Room(
        6,
        "The Watch Tower",
        "Wind tugs at your cloak. From up here the whole village is laid out\n"
        "below you like a map.",
        {"down": 2},
    ),
}
START_ROOM = 1

DIRECTIONS = {
    "n": "north", "north": "north",
    "s": "south", "south": "south",
    "e": "east", "east": "east",
    "w": "west", "west": "west",
    "u": "up", "up": "up",
    "d": "down", "down": "down",
}
OPPOSITE = {"north": "the south", "south": "the north", "east": "the west",
            "west": "the east", "up": "below", "down": "above"}

NAME_RE = re.compile(r"[A-Za-z]{2,20}")

BANNER = (
    f"{BOLD_CYAN}"
    "  __  __ _   _ ____     ____       _                           \n"
    " |  \\/  | | | |  _ \\   / ___| __ _| |_ _____      ____ _ _   _ \n"
    " | |\\/| | | | | | | | | |  _ / _` | __/ _ \\ \\ /\\ / / _` | | | |\n"
    " | |  | | |_| | |_| | | |_| | (_| | ||  __/\\ V  V / (_| | |_| |\n"
    " |_|  |_|\\___/|____/   \\____|\\__,_|\\__\\___| \\_/\\_/ \\__,_|\\__, |\n"
    "                                                         |___/ \n"
    f"{RESET}"
    f"        {YELLOW}Welcome to the mud-gateway demo!{RESET}  "
    f"{MAGENTA}Bienvenue · ☕ · Willkommen · ようこそ{RESET}\n"
    "\n"
)

HELP = (
    f"{BOLD_CYAN}Commands{RESET}\n"
    "  look (l)                 look around\n"
    "  north south east west up down (n s e w u d)\n"
    "  say <text>               talk to everyone in the room\n"
    "  who                      who is playing\n"
    "  score                    your vitals\n"
    "  colors                   colour test card\n"
    "  help                     this text\n"
    "  quit                     leave the game"
)


def colour_card() -> str:
    lines = [f"{BOLD_CYAN}16 colours{RESET}"]
    lines.append(" ".join(f"{ESC}[{30 + i}m{i:>3}{RESET}" for i in range(8)))
    lines.append(" ".join(f"{ESC}[{90 + i}m{8 + i:>3}{RESET}" for i in range(8)))
    lines.append(" ".join(f"{ESC}[{40 + i}m   {RESET}" for i in range(8)))
    lines.append(f"{BOLD_CYAN}256 colours{RESET}")
    for row in range(16):
        lines.append("".join(
            f"{ESC}[38;5;{row * 16 + col}m{row * 16 + col:>4}" for col in range(16)
        ) + RESET)
    lines.append(f"{BOLD_CYAN}Truecolour{RESET}")
    grad = []
    for k in range(64):
        r = 255 - k * 4
        g = k * 4
        b = 128 + (k * 2 if k < 32 else (63 - k) * 2)
        grad.append(f"{ESC}[38;2;{r};{g};{b}m█")
    lines.append("".join(grad) + RESET)
    lines.append(
        "".join(f"{ESC}[48;2;{k * 4};{k * 2};{255 - k * 4}m " for k in range(64)) + RESET
    )
    return "\n".join(lines)


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


# --------------------------------------------------------------------------
# Players
# --------------------------------------------------------------------------


@dataclass(eq=False)
class Player:
    game: "DemoGame"
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    state: str = "name"  # name -> password -> playing -> gone
    name: str = ""
    room: int = START_ROOM
    hp: int = 100
    maxhp: int = 100
    mp: int = 50
    maxmp: int = 50
    # our (server-side) options, RFC 1143 style: "no", "yes", "wantyes", "wantno"
    us: dict[int, str] = field(
        default_factory=lambda: {OPT_GMCP: "no", OPT_EOR: "no", OPT_ECHO: "no"})

    @property
    def gmcp(self) -> bool:
        return self.us[OPT_GMCP] == "yes"

    @property
    def eor(self) -> bool:
        return self.us[OPT_EOR] == "yes"

    # -- output -------------------------------------------------------------
    def raw(self, data: bytes) -> None:
        if self.state == "gone" or self.writer.is_closing():
            return
        transport = self.writer.transport
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.info("demo: dropping %s: not reading", self.name or "a player")
            self.disconnect()
            return
        self.writer.write(data)

    def send(self, text: str) -> None:
        """Send text; every line ends with CRLF."""
        if not text.endswith("\n"):
            text += "\n"
        self.raw(_crlf(text))

    def ask(self, option: int, cmd: int) -> None:
        """Offer (WILL) or withdraw (WONT) one of our options.

        The command is always sent (the password prompt relies on it); the
        state only records what answer to expect.
        """
        self.us[option] = "wantyes" if cmd == WILL else "wantno"
        self.raw(_cmd(cmd, option))

    def mssp(self) -> None:
        """MSSP: the game's status, for crawlers and the gateway's /api/games."""
        status = {"NAME": "Demo MUD", "PLAYERS": str(len(self.game.playing())),
                  "UPTIME": str(int(self.game.started)), "CODEBASE": "mud-gateway demo",
                  "LANGUAGE": "English", "CHARSET": "UTF-8", "GMCP": "1", "PORT": str(self.game.port)}
        body = b"".join(bytes([MSSP_VAR]) + k.encode() + bytes([MSSP_VAL]) + v.encode()
                        for k, v in status.items())
        self.raw(_cmd(SB, OPT_MSSP) + body + _cmd(SE))

    def gmcp_send(self, module: str, data: Any = None) -> None:
        if self.gmcp:
            self.raw(gmcp_frame(module, data))

    def prompt(self) -> None:
        mark = _cmd(EOR_CMD) if self.eor else _cmd(GA)
        self.raw(f"<{self.hp}hp {self.mp}mp> ".encode() + mark)

    def disconnect(self) -> None:
        if self.state != "gone":
            was_playing = self.state == "playing"
            self.state = "gone"
            self.game._leave(self, was_playing)
        with contextlib.suppress(Exception):
            self.writer.close()

    # -- negotiation --------------------------------------------------------
    def negotiate(self, cmd: int, opt: int) -> None:
        """Answer the client's DO/DONT/WILL/WONT without loops (RFC 1143)."""
        if cmd in (DO, DONT):
            state = self.us.get(opt)
            if state is None:  # an option we do not have
                if cmd == DO:
                    self.raw(_cmd(WONT, opt))
                return
            if cmd == DO:
                if state == "wantyes":
                    self.us[opt] = "yes"
                    if opt == OPT_MSSP:
                        self.mssp()
                elif state == "wantno":
                    # The answer to an earlier WILL crossed our WONT; the
                    # client will answer the WONT with DONT.
                    self.us[opt] = "no"
                elif state == "no":
                    if opt == OPT_ECHO:  # only while asking for a password
                        self.raw(_cmd(WONT, opt))
                    else:
                        self.us[opt] = "yes"
                        self.raw(_cmd(WILL, opt))
            else:
                if state == "yes":
                    self.raw(_cmd(WONT, opt))
                self.us[opt] = "no"
        elif cmd == WILL:
            # We ask the client to enable nothing: refuse.
            self.raw(_cmd(DONT, opt))
        # WONT: we never asked the client for anything; nothing to answer.

    def subneg(self, opt: int, payload: bytes) -> None:
        if opt != OPT_GMCP:
            return
        text = payload.decode("utf-8", "replace")
        module, _, _data = text.partition(" ")
        if module.lower() == "core.ping":
            self.raw(gmcp_frame("Core.Ping"))
        # Core.Hello, Core.Supports.* and the rest are accepted and ignored.

    # -- input --------------------------------------------------------------
    def line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        if self.state == "name":
            self._got_name(text.strip())
        elif self.state == "password":
            # Any password is accepted; it is neither stored nor logged.
            self.ask(OPT_ECHO, WONT)
            self.raw(b"\r\n")
            self.state = "playing"
            self.game._enter(self)
        elif self.state == "playing":
            self.command(text.strip())

    def _got_name(self, name: str) -> None:
        if not NAME_RE.fullmatch(name):
            self.send("Names must be 2 to 20 letters (A-Z), nothing else.")
            self.name_prompt()
            return
        self.name = name.capitalize()
        self.state = "password"
        self.ask(OPT_ECHO, WILL)
        self.raw(b"Password: " + _cmd(GA))

    def name_prompt(self) -> None:
        self.raw(b"By what name do you wish to be known? " + _cmd(GA))

    def vitals(self) -> None:
        self.gmcp_send("Char.Vitals", {"hp": self.hp, "maxhp": self.maxhp,
                                       "mp": self.mp, "maxmp": self.maxmp})

    def room_info(self) -> None:
        room = ROOMS[self.room]
        self.gmcp_send("Room.Info", {"num": room.num, "name": room.name, "area": "Demo",
                                     "exits": dict(room.exits)})

    def look(self) -> None:
        room = ROOMS[self.room]
        exits = " ".join(room.exits) or "none"
        others = [p.name for p in self.game.players_in(self.room) if p is not self]
        text = f"{BOLD_CYAN}{room.name}{RESET}\n{room.desc}\n{GREEN}[Exits: {exits}]{RESET}"
        if others:
            text += "\n" + "\n".join(f"{YELLOW}{n} is here.{RESET}" for n in others)
        self.send(text)

    def command(self, text: str) -> None:
        if not text:
            self.prompt()
            return
        verb, _, rest = text.partition(" ")
        verb = verb.lower()
        rest = rest.strip()
        if verb in ("look", "l"):
            self.look()
        elif verb in DIRECTIONS:
            self.move(DIRECTIONS[verb])
        elif verb == "say" or text.startswith("'"):
            if text.startswith("'"):
                rest = text[1:].strip()
            self.say(rest)
        elif verb == "who":
            names = sorted(p.name for p in self.game.playing())
            self.send(f"{BOLD_CYAN}Players online ({len(names)}):{RESET}\n"
                      + "\n".join(f"  {n}" for n in names))
        elif verb in ("help", "?"):
            self.send(HELP)
        elif verb in ("colors", "colours", "color", "colour"):
            self.send(colour_card())
        elif verb == "score":
            self.send(f"You are {self.name}. HP {self.hp}/{self.maxhp}, MP {self.mp}/{self.maxmp}.")
            self.vitals()
        elif verb == "quit":
            self.send(f"{YELLOW}Goodbye, {self.name}! À bientôt.{RESET}")
            self.disconnect()
            return
        else:
            self.send("Huh?")
        self.prompt()

    def move(self, direction: str) -> None:
        room = ROOMS[self.room]
        dest = room.exits.get(direction)
        if dest is None:
            self.send("You can't go that way.")
            return
        self.game.tell_room(self.room, f"{self.name} leaves {direction}.", exclude=self)
        self.room = dest
        self.game.tell_room(self.room, f"{self.name} arrives from {OPPOSITE[direction]}.",
                            exclude=self)
        self.room_info()
        self.look()

    def say(self, message: str) -> None:
        if not message:
            self.send("Say what?")
            return
        self.send(f"{YELLOW}You say, '{message}'{RESET}")
        self.game.tell_room(self.room, f"{YELLOW}{self.name} says, '{message}'{RESET}",
                            exclude=self)


# --------------------------------------------------------------------------
# The game server
# --------------------------------------------------------------------------


class DemoGame:
    """A running demo game; use :func:`start_demo_game` to create one."""

    port: int

    def __init__(self) -> None:
        self.port = 0
        self.host = "127.0.0.1"
        self._server: asyncio.base_events.Server | None = None
        self._players: set[Player] = set()
        self._tasks: set[asyncio.Task] = set()
        self._closing = False
        self.started = time.time()

    # -- helpers used by players -------------------------------------------
    def playing(self) -> list[Player]:
        return [p for p in self._players if p.state == "playing"]

    def players_in(self, room: int) -> list[Player]:
        return [p for p in self.playing() if p.room == room]

    def tell_room(self, room: int, text: str, exclude: Player | None = None) -> None:
        for p in self.players_in(room):
            if p is not exclude:
                # Start on a fresh line (the player may be looking at a prompt).
                p.raw(b"\r\n")
                p.send(text)
                p.prompt()

    def _enter(self, player: Player) -> None:
        player.send(f"\n{YELLOW}Welcome, {player.name}!{RESET} Type {GREEN}help{RESET} "
                    "for a list of commands.\n")
        player.vitals()
        player.room_info()
        player.look()
        self.tell_room(player.room, f"{player.name} has entered the game.", exclude=player)
        player.prompt()

    def _leave(self, player: Player, was_playing: bool) -> None:
        self._players.discard(player)
        if was_playing and not self._closing:
            self.tell_room(player.room, f"{player.name} has left the game.")

    # -- connections --------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        player = Player(self, reader, writer)
        self._players.add(player)
        parser = TelnetParser()
        try:
            if self._closing:
                return
            player.ask(OPT_GMCP, WILL)
            player.ask(OPT_EOR, WILL)
            player.ask(OPT_MSSP, WILL)
            player.raw(_crlf(BANNER))
            player.name_prompt()
            await writer.drain()
            while player.state != "gone":
                data = await reader.read(65536)
                if not data:
                    break
                for ev in parser.feed(data):
                    if player.state == "gone":
                        break
                    kind = ev[0]
                    if kind == "line":
                        player.line(ev[1])
                    elif kind == "toolong":
                        player.send("Line too long (max 4096 bytes); ignored.")
                        if player.state == "playing":
                            player.prompt()
                        elif player.state == "name":
                            player.name_prompt()
                        else:
                            player.raw(b"Password: " + _cmd(GA))
                    elif kind == "neg":
                        player.negotiate(ev[1], ev[2])
                    elif kind == "sb":
                        player.subneg(ev[1], ev[2])
                if not writer.is_closing():
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            player.disconnect()
            if task is not None:
                self._tasks.discard(task)

    async def _start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, host, port)
        sock = self._server.sockets[0]
        self.host, self.port = sock.getsockname()[:2]

    async def close(self) -> None:
        """Stop listening and disconnect all players."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for player in list(self._players):
            player.disconnect()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def __aenter__(self) -> "DemoGame":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def start_demo_game(host: str = "127.0.0.1", port: int = 0) -> DemoGame:
    """Start the demo game listening on ``host:port`` (0 = a free port)."""
    game = DemoGame()
    await game._start(host, port)
    log.info("demo game listening on %s:%d", game.host, game.port)
    return game


if __name__ == "__main__":  # pragma: no cover - manual play: telnet 127.0.0.1 4000
    import sys

    async def _main() -> None:
        port = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
        game = await start_demo_game(port=port)
        print(f"demo game on 127.0.0.1:{game.port}")
        try:
            await asyncio.Event().wait()
        finally:
            await game.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
