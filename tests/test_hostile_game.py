"""A hostile or broken game (the telnet side): what it can make the gateway hold, raise or answer.

Each test is a defect found by reading the telnet core with a malicious game in mind,
and failed before its fix: byte-level cases through the sans-I/O ``TelnetStream``
(and the MXP client behind it), the negotiation through the telnet adapter over a
real socket to the scripted fake MUD (tests/test_telnet_client.py ``adapter``).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import termios
import tracemalloc
import zlib

import pytest

from gateway.telnet import stream as stream_module
from gateway.telnet import mxp as mxp_module
from gateway.telnet.mxp import MAX_DEFINITION, MxpParser, MxpReply
from gateway.telnet.stream import MAX_PENDING_LINE, Gmcp, Lines, TelnetStream, Text
from tests.conftest import queued, until
from tests.fakemud import EVENTUALLY, FakeMud
from tests.test_telnet_client import adapter

IAC, WILL, DO, SB, SE = 255, 251, 253, 250, 240
GMCP, MCCP2, CHARSET, MXP = 201, 86, 42, 91
MCCP2_START = bytes([IAC, SB, MCCP2, IAC, SE])


def texts(events: list) -> str:
    return "".join((e.text() if type(e) is Lines else e).message for e in events if type(e) in (Text, Lines))


# -- MCCP2 ---------------------------------------------------------------------------------


def test_mccp2_started_and_ended_thousands_of_times_in_one_read():
    """A game may end its compressed stream (Z_FINISH) and start a new one (IAC SB MCCP2 IAC SE)
    as often as it likes: 13 bytes a time. Each start was a call from the scanner into the
    inflater and each end one back: 500 in one read raised RecursionError out of ``feed``
    (which never raises), and the session ended with an unhandled exception."""
    s = TelnetStream()
    s.inflating = True
    unit = MCCP2_START + zlib.compress(b"x\n")
    events = s.feed(unit * 3000 + b"plain again\n", 0.0)
    while s.backlog:  # each start is a command: COMMANDS_PER_STEP of them a step
        events += s.resume(0.0)
    assert texts(events) == "x\n" * 3000 + "plain again\n"
    assert not s.failed and not s.backlog
    # and the stream goes on: compressed again, then plain
    events = s.feed(MCCP2_START + zlib.compress(b"more\n") + b"end\n", 1.0)
    assert texts(events) == "more\nend\n"


# -- GMCP ----------------------------------------------------------------------------------


def test_long_gmcp_module_names_are_not_kept_for_the_process():
    """GMCP module names are decoded once and kept in a cache of the process (1,024 names),
    which outlives the session: names of any length were kept, so a game sending 1,024
    messages of a 1 MiB name each (no space: all of it is the name) left 2-3 GiB behind."""
    saved = dict(stream_module._module_names)
    stream_module._module_names.clear()
    try:
        s = TelnetStream()
        long_names = [b"N%04d." % i + b"x" * 16_000 for i in range(stream_module.MAX_MODULE_NAMES)]
        for name in long_names:
            (event,) = s.feed(bytes([IAC, SB, GMCP]) + name + b' {"a": 1}' + bytes([IAC, SE]), 0.0)
            assert event == Gmcp(name.decode(), {"a": 1})
        kept = sum(map(len, stream_module._module_names))
        assert kept <= stream_module.MAX_MODULE_NAMES * 1024, kept
        # a real module name is still kept (decoded once)
        s.feed(bytes([IAC, SB, GMCP]) + b"Char.Vitals {}" + bytes([IAC, SE]), 0.0)
        assert stream_module._module_names.get(b"Char.Vitals") == "Char.Vitals"
    finally:
        stream_module._module_names.clear()
        stream_module._module_names.update(saved)


# -- MXP -----------------------------------------------------------------------------------


def mxp_stream() -> TelnetStream:
    s = TelnetStream(flush_after=0.1, bytes_lines=True)
    s.mxp = MxpParser("9.9")
    return s


def test_a_link_on_a_line_without_end_holds_no_more_than_its_first_event():
    """A secure <SEND> on a line that never ends: the stream sends the line in pieces
    (64 KiB, or at prompt_flush_ms), the link is closed and reopened in each, with the
    command made from the text of the first. All the text after it was still kept for
    the command: without end, as long as the game sends."""
    s = mxp_stream()
    parser = s.mxp
    events = s.feed(b"\x1b[1z<SEND>north", 0.0) + s.poll(1.0)
    assert texts(events) == "\x1b]8;;send:north\x1b\\north\x1b]8;;\x1b\\"
    piece = b"y" * 4096
    for i in range(64):  # 4 MiB of one line
        events = s.feed(piece * 16, 2.0 + i)
        assert all(type(e) is Text and e.partial for e in events)
    held = sum(map(len, parser.link.text))
    assert held <= MAX_PENDING_LINE, held
    events = s.feed(b"yy</SEND> done\r\n", 100.0)
    assert texts(events) == "\x1b]8;;send:north\x1b\\yy\x1b]8;;\x1b\\ done\n"  # the first event's command


def test_a_var_left_open_holds_no_more_than_an_entity_may():
    """<VAR> (secure) sets an entity to its text, at most 1 KiB; inside <P> it stays open
    across line ends, and on a line without end for ever. Its text was kept whole until
    it closed: as much as the game sent."""
    s = mxp_stream()
    parser = s.mxp
    s.feed(b"\x1b[6z<P><VAR hp>", 0.0)
    for i in range(256):  # 4 MiB of lines, inside the open P and VAR
        s.feed(b"z" * 16_000 + b"\r\n", float(i))
    ((name, parts),) = parser.vars
    held = sum(map(len, parts))
    assert held <= 64 * MAX_DEFINITION, held
    s.feed(b"</VAR></P>\r\n<VAR short>\x07full\x1b[1m 100\x1b[0m</VAR>\r\n", 300.0)
    assert "hp" not in parser.entities  # too long for an entity: not kept, as before
    assert parser.entities["short"] == "full 100"
    # a VAR just within the bound, given in many small pieces, is still kept whole
    s.feed(b"<P><VAR big>", 301.0)
    for i in range(100):
        s.feed(b"\x01abcdefgh\r\n", 302.0 + i)  # controls dropped, each line end a space
    s.feed(b"</VAR></P>\r\n", 500.0)
    assert parser.entities["big"] == "abcdefgh " * 100


@pytest.mark.parametrize("number", ["\u00b2", "\u0663", "-\uff19"], ids=["superscript two", "arabic-indic three",
                                                                       "fullwidth nine"])
def test_a_sound_whose_numbers_are_not_ascii_digits_plays_at_the_defaults(number):
    """<SOUND>'s V, L and P are numbers; str.isdigit takes a superscript two and other
    scripts' digits, which int() refused or read: a ValueError out of the stream, which
    never raises. Now such a value is no number, as any other: the default."""
    s = TelnetStream(flush_after=0.1, bytes_lines=True)
    s.mxp = MxpParser("9.9", "https://game.example/media/")
    data = f"\x1b[1z<SOUND rain.wav V={number} L={number} P={number}>Rain.\r\n".encode()
    events = s.feed(data, 0.0)
    (media,) = [e for e in events if type(e) is Gmcp]
    assert (media.data["volume"], media.data["loops"], media.data["priority"]) == (100, 1, 50)
    assert texts(events) == "Rain.\n"


VITALS = bytes([IAC, SB, GMCP]) + b'Char.Vitals {"hp": 1}' + bytes([IAC, SE])


@pytest.mark.parametrize("unit, mark", [(b"<B>", "\x1b[1m"), (b"&amp;", "&"), (b"<B>x</B>\r\n", "\x1b[1m"),
                                        (b"\x1b[1z<SUPPORT>\r\n", None), (b"<BR>", "\n")],
                         ids=["open tags", "entities", "styled lines", "SUPPORT lines", "BR"])
def test_a_read_of_markup_is_parsed_a_step_at_a_time(unit, mark, monkeypatch):
    """A read of 256 KiB of MXP markup (87,000 ``<B>``, 23,000 ``<SUPPORT>`` lines) was parsed
    whole in the call that read it: 0.1 to 0.3 s of the event loop, every other player's, a
    read, for as long as the game sends them. Now a call parses at most MARKUP_PER_STEP
    (tags, entities, line ends, mode changes); the rest waits, every event after it too, as
    the stream's backlog, stepped through as MCCP2's output and unscanned commands are. The
    text is the same as parsed whole, in the game's order; no tag or escape is cut."""
    count = (1 << 18) // len(unit)
    data = unit * count + b"\r\nafter\r\n" + VITALS
    whole = mxp_stream()
    with monkeypatch.context() as m:
        m.setattr(MxpParser, "markup_per_step", 1 << 30)
        reference = whole.feed(data, 0.0)
    assert not whole.backlog
    s = mxp_stream()
    calls = steps_of(s, data)
    per_step = mxp_module.MARKUP_PER_STEP
    assert len(calls) >= count // per_step
    for events in calls:
        if mark is None:  # each line one answer
            assert sum(type(e) is MxpReply for e in events) <= per_step
        else:
            assert texts(events).count(mark) <= per_step
        assert all(stream_module.safe_end(m) == len(m) for m in map(message, events) if m is not None)
    events = [e for events in calls for e in events]
    assert texts(events) == texts(reference)
    assert [e for e in events if type(e) is MxpReply] == [e for e in reference if type(e) is MxpReply]
    assert type(events[-1]) is Gmcp and texts(events).endswith("after\n")  # in the game's order
    assert s.resume(1.0) == []


def message(event) -> str | None:
    if type(event) is Lines:
        event = event.text()
    return event.message if type(event) in (Text, stream_module.Prompt) else None


def test_a_step_cut_in_a_prompt_or_a_link_changes_nothing_of_them(monkeypatch):
    """Cut where the step's markup is spent: a prompt's head goes as text and the prompt
    follows, a link's command is made from all of its text, not the part before the cut."""
    monkeypatch.setattr(MxpParser, "markup_per_step", 8)
    s = mxp_stream()
    data = (b"\x1b[1z<SEND>" + b"<B>n</B>" * 10 + b"</SEND>\r\n"
            + b"<I>hp</I> " * 10 + b"> " + bytes([IAC, 249]))
    calls = steps_of(s, data)
    assert len(calls) > 4
    events = [e for events in calls for e in events]
    look = "\x1b[1mn\x1b[0m" * 10
    joined = "".join(m for m in map(message, events) if m is not None)
    assert joined.startswith("\x1b]8;;send:" + "n" * 10 + "\x1b\\" + look + "\x1b]8;;\x1b\\\n")
    assert type(events[-1]) is stream_module.Prompt and events[-1].message.endswith("> ")
    assert joined.endswith("\x1b[3mhp\x1b[0m " * 10 + "> ")


async def test_a_flood_of_markup_is_read_a_step_at_a_time_over_a_socket():
    """Through the adapter, over a real socket: a game that negotiated MXP sends 512 KiB of
    ``<B>x</B>`` lines, then a line. The adapter parses it a step a turn of the loop (the
    game not read meanwhile), every line arrives, in order, and the game is read again."""
    mud = await FakeMud().start()
    try:
        client, conn, sink, stream = await stepped_adapter(mud, mxp=True)
        conn.send(bytes([IAC, WILL, MXP]))
        await conn.wait_for(bytes([IAC, DO, MXP]))
        line = b"<B>x</B>\r\n"
        count = (1 << 19) // len(line)
        conn.send(line * count + b"after the flood\r\n")
        want = "\x1b[1mx\x1b[0m\n" * count + "after the flood\n"
        await until(lambda: texts(sink.events) == want, what="every line, then the one after")
        steps = [events for events in stream.steps if events]
        assert len(steps) >= count // mxp_module.MARKUP_PER_STEP
        assert max(texts(events).count("\x1b[1m") for events in steps) <= mxp_module.MARKUP_PER_STEP
        assert client.transport.is_reading() and not stream.backlog
        client.close("test over")
        await asyncio.wait_for(sink.closed, EVENTUALLY)
    finally:
        await mud.close()


async def test_an_upgrade_in_place_takes_what_mxp_holds_through_first(monkeypatch):
    """An upgrade in place hands the stream over, not the MXP client's state: the events it
    holds (a step's markup was spent, the session stopped reading) would have been lost.
    freeze() puts them through first, all of them, in order; the stream then hands over
    nothing MXP still holds."""
    monkeypatch.setattr(MxpParser, "markup_per_step", 4)
    async with FakeMud() as mud:
        client, conn, sink = await adapter(mud)
        first = asyncio.get_running_loop().create_future()
        on_events = sink.on_events

        def behind(events) -> None:  # the session's browser is behind after the first events
            on_events(events)
            if texts(events) and not first.done():
                client.pause_reading()
                first.set_result(None)
        sink.on_events = behind
        try:
            conn.send(bytes([IAC, WILL, MXP]))
            await conn.wait_for(bytes([IAC, DO, MXP]))
            conn.send(b"<B>x</B>\r\n" * 20 + VITALS)
            await asyncio.wait_for(first, EVENTUALLY)
            assert client.stream.backlog and client.stream.mxp.behind
            client.freeze()
            assert texts(sink.events) == "\x1b[1mx\x1b[0m\n" * 20
            assert type(sink.events[-1]) is Gmcp
            assert not client.stream.backlog
            client.stream.to_state()  # nothing left but what goes with it
        finally:
            client.close("test over")
            await asyncio.wait_for(sink.closed, EVENTUALLY)


async def test_what_a_prompt_flush_leaves_to_mxp_is_stepped_through_and_its_answers_written(monkeypatch):
    """An open line (no line end: a prompt without GA) goes out ``prompt_flush_ms`` after it
    came, through MXP. What MXP held of it (its step's markup spent) waited for the game's
    next read, which may not come; and an answer MXP made of it (``<VERSION>``) went to the
    session as an event instead of to the game."""
    monkeypatch.setattr(MxpParser, "markup_per_step", 8)
    async with FakeMud() as mud:
        client, conn, sink = await adapter(mud, ", prompt_flush_ms: 50")
        try:
            conn.send(bytes([IAC, WILL, MXP]))
            await conn.wait_for(bytes([IAC, DO, MXP]))
            conn.send(b"\x1b[1z<VERSION>" + b"<B>x</B>" * 20 + b"> ")
            await until(lambda: texts(sink.events) == "\x1b[1mx\x1b[0m" * 20 + "> ",
                        what="the whole open line, with no more from the game")
            await conn.wait_for(b"\x1b[1z<VERSION MXP=1.0")
            assert not [e for e in sink.events if type(e) is MxpReply]
            assert not client.stream.backlog
        finally:
            client.close("test over")
            await asyncio.wait_for(sink.closed, EVENTUALLY)


async def test_an_open_line_is_not_sent_in_part_while_the_game_is_not_read():
    """``prompt_flush_ms`` sends an open line the game stopped in (a prompt without GA). While
    the gateway itself does not read the game (the session holds it: its browser is behind;
    or a backlog is stepped through), the rest of the line may wait unread in TCP: the line
    was sent in part all the same, and a tag cut there was text (``x</B>``)."""
    async with FakeMud() as mud:
        client, conn, sink = await adapter(mud, ", prompt_flush_ms: 20")
        try:
            conn.send(bytes([IAC, WILL, MXP]))
            await conn.wait_for(bytes([IAC, DO, MXP]))
            conn.send(b"<B>x</")
            await until(lambda: client.stream._text == "<B>x</", what="the open line read")
            client.pause_reading()  # the session holds the game (its browser is behind)
            conn.send(b"B> done\r\n")
            await asyncio.sleep(0.2)  # ten times prompt_flush_ms
            assert texts(sink.events) == ""
            client.resume_reading()
            await until(lambda: texts(sink.events) == "\x1b[1mx\x1b[0m done\n", what="the whole line")
        finally:
            client.close("test over")
            await asyncio.wait_for(sink.closed, EVENTUALLY)


# -- negotiation -----------------------------------------------------------------------------


def charset_request(names: list[bytes]) -> bytes:
    return bytes([IAC, SB, CHARSET, 1]) + b";" + b";".join(names) + bytes([IAC, SE])


async def test_charset_offers_of_ever_new_names_leave_nothing_behind():
    """Every name a CHARSET REQUEST offers was looked up with ``codecs.lookup``, and the
    encodings package keeps every name it is asked about, one that names no encoding too,
    for the life of the process: a game offering ever new names (or one name as long as
    its subnegotiation) grew the gateway's memory without end, whatever became of the
    session."""
    rejected = bytes([IAC, SB, CHARSET, 3, IAC, SE])
    mud = await FakeMud().start()
    try:
        client, conn, sink = await adapter(mud)
        conn.send(bytes([IAC, WILL, CHARSET]))
        await conn.wait_for(bytes([IAC, DO, CHARSET]))
        conn.send(charset_request([b"warm-up"]))
        await conn.wait_for(rejected)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(4):
                conn.send(charset_request([b"enc-%d-%d" % (i, j) for j in range(2000)]))
                await conn.wait_for(rejected)
            conn.send(charset_request([b"long-" + b"n" * 200_000]))
            await conn.wait_for(rejected)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert grown < 100_000, grown
        # UTF-8 is still accepted, by any of its names
        conn.send(charset_request([b"latin1", b"utf8"]))
        await conn.wait_for(bytes([IAC, SB, CHARSET, 2]) + b"utf8" + bytes([IAC, SE]))
        client.close("test over")
        await asyncio.wait_for(sink.closed, EVENTUALLY)
    finally:
        await mud.close()


@pytest.mark.both_loops
async def test_a_game_that_asks_without_reading_the_answers_is_not_read():
    """Each of a game's requests is answered: MXP's <SUPPORT> (15 bytes) with ~300 bytes, a
    NEW-ENVIRON SEND (6) with ~120, CHARSET, TTYPE, each DO/DONT flip. A game that sends
    them and reads nothing made the answers pile up in the gateway's write buffer, as many
    as it asked: without end. Now the game is not read while more than UNREAD_BY_GAME waits
    for it (its requests wait in TCP), and is read again, every request answered, once it
    reads."""
    line = b"\x1b[1z<SUPPORT>\r\n"
    rounds, per_round = 40, 2000  # 1.2 MB of requests; ~20 MB of answers
    mud = await FakeMud().start()
    try:
        # (a read that ends inside a line leaves the rest of it held; not at prompt_flush_ms,
        # where the tag it cuts would be text: SPEC 5)
        client, conn, sink = await adapter(mud, ", prompt_flush_ms: 60000")
        conn.send(bytes([IAC, WILL, MXP]))
        await conn.wait_for(bytes([IAC, DO, MXP]))
        # The game stops reading; the kernel's buffers between the two are kept small, so
        # that what piles up, piles up in the gateway (where TCP can no longer push back).
        conn.pause_reading()
        conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        client.raw_socket().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        transport = client.transport
        gateway_sock = client.raw_socket()

        def settled() -> bool:
            # the gateway read all the game sent, or it does not read the game
            read_all = (conn.unsent() == 0 and queued(conn.socket, termios.TIOCOUTQ) == 0
                        and queued(gateway_sock, termios.FIONREAD) == 0)
            return read_all or not transport.is_reading()

        for _ in range(rounds):
            conn.send(line * per_round)
            await until(settled, what="the gateway read the requests or stopped reading")
        assert not transport.is_reading()
        # client.UNREAD_BY_GAME (256 KiB) and the answers to the read that passed it
        assert client.unsent() <= (1 << 18) + 2 * per_round * 400, client.unsent()
        # The game reads again: so does the gateway read it, and every request is answered.
        conn.resume_reading()
        await until(lambda: conn.received.count(b"<SUPPORTS ") == rounds * per_round,
                    what="every <SUPPORT> answered")
        assert transport.is_reading()
        client.close("test over")
        await asyncio.wait_for(sink.closed, EVENTUALLY)
    finally:
        await mud.close()


# -- a read packed with telnet commands ----------------------------------------------------

WONT, DONT, GA, NOP, TTYPE = 252, 254, 249, 241, 24
DO_DONT_TTYPE = bytes([IAC, DO, TTYPE, IAC, DONT, TTYPE])
#: The most negotiations one step scans.
PER_STEP = stream_module.COMMANDS_PER_STEP // stream_module.NEGOTIATION_COST


def negotiations(events: list) -> list[bytes]:
    return [e.raw for e in events if type(e) is stream_module.Negotiation]


def steps_of(s: TelnetStream, data: bytes) -> list[list]:
    """``feed`` then ``resume`` until no backlog: the events of each call."""
    calls = [s.feed(data, 0.0)]
    while s.backlog:
        calls.append(s.resume(0.0))
    return calls


def test_a_read_of_negotiations_is_scanned_a_step_at_a_time():
    """A read of 256 KiB packed with commands (87,380 of ``IAC DO TTYPE IAC DONT TTYPE``) was
    scanned whole in one ``feed``, and each of its commands answered by telnetlib3 before the
    loop could run anything else: a second of the loop, every other player's, per read, for
    as long as the game sends them. Now a call scans at most COMMANDS_PER_STEP (a negotiation
    counts NEGOTIATION_COST), the rest waits as the backlog (as MCCP2's output does), and all
    of it comes, in order, text and commands, over the steps."""
    count = (1 << 18) // len(DO_DONT_TTYPE)
    s = TelnetStream()
    calls = steps_of(s, b"before\r\n" + DO_DONT_TTYPE * count + b"after\r\n")
    assert len(calls) >= 2 * count // PER_STEP
    for events in calls:
        assert len(negotiations(events)) <= PER_STEP
    events = [e for events in calls for e in events]
    assert negotiations(events) == [DO_DONT_TTYPE[:3], DO_DONT_TTYPE[3:]] * count
    assert texts(events) == "before\nafter\n"
    assert texts(calls[0]) == "before\n" and texts(calls[-1]) == "after\n"  # in the game's order
    assert not s.backlog and s.resume(1.0) == []


@pytest.mark.parametrize("unit", [bytes([IAC, SB, TTYPE, 1, IAC, SE]), bytes([IAC, SB, 39, 1, IAC, SE]),
                                  bytes([IAC, 246]), bytes([IAC, WILL, 1, IAC, WONT, 1])],
                         ids=["TTYPE SEND", "NEW-ENVIRON SEND", "AYT", "WILL/WONT ECHO"])
def test_other_commands_answered_by_the_engine_count_as_negotiations(unit):
    count = (1 << 18) // len(unit)
    calls = steps_of(TelnetStream(), unit * count)
    for events in calls:
        assert len(negotiations(events)) <= PER_STEP
    assert len(negotiations([e for events in calls for e in events])) == count * (2 if len(unit) == 6 and unit[1] != SB else 1)


@pytest.mark.parametrize("unit", [bytes([IAC, SB, GMCP]) + b"A 1" + bytes([IAC, SE]),
                                  bytes([IAC, SB, GMCP]) + b'Char.Vitals {"hp": 1}' + bytes([IAC, SE]),
                                  bytes([IAC, SB, GMCP]) + b"A \xff\xff" + bytes([IAC, SE])],
                         ids=["tiny", "vitals", "escaped IAC"])
def test_gmcp_messages_back_to_back_are_counted_each(unit):
    """A run of GMCP messages was one command, however long: a read of 32,768 tiny ones was
    parsed in one call (25 ms), and each then made an event, a kept payload and a frame in the
    same turn of the loop (as much again). Each message counts a command now: at most
    COMMANDS_PER_STEP a step, all of them over the steps, in order, the text after them last."""
    count = (1 << 18) // len(unit)
    calls = steps_of(TelnetStream(raw_gmcp=True), unit * count + b"after\r\n")
    assert len(calls) >= count // stream_module.COMMANDS_PER_STEP
    for events in calls:
        assert sum(type(e) is Gmcp for e in events) <= stream_module.COMMANDS_PER_STEP
    events = [e for events in calls for e in events]
    assert sum(type(e) is Gmcp for e in events) == count
    assert texts(calls[-1]) == "after\n" and type(events[-1]) is not Gmcp


@pytest.mark.parametrize("unit", [b"x" + bytes([IAC, GA]), bytes([IAC, IAC]), bytes([IAC, NOP])],
                         ids=["prompts", "IAC IAC", "NOP"])
def test_cheap_commands_are_counted_too(unit):
    """Commands the stream handles itself cost Python time each as well (a read of IAC IAC
    took 0.4 s, of prompts 0.3 s): at most COMMANDS_PER_STEP of them a step."""
    count = (1 << 18) // len(unit)
    s = TelnetStream(encoding="latin-1")
    calls = steps_of(s, unit * count + b"\r\n")
    assert len(calls) >= count // stream_module.COMMANDS_PER_STEP
    for events in calls:
        assert sum(type(e) is stream_module.Prompt for e in events) <= stream_module.COMMANDS_PER_STEP
    events = [e for events in calls for e in events] + s.finish()
    if unit[0] == ord("x"):
        assert sum(type(e) is stream_module.Prompt for e in events) == count
    elif unit[1] == IAC:
        assert texts(events) == "\xff" * count + "\n"


def test_a_busy_games_read_is_still_one_step():
    """A busy game's read (text, a GMCP message and a prompt every few lines: about 900
    commands in 256 KiB) is scanned in one call, as before: no backlog, no extra turn."""
    vitals = bytes([IAC, SB, GMCP]) + b'Char.Vitals {"hp": 100, "mp": 50}' + bytes([IAC, SE])
    block = b"\x1b[1;31mA town guard hits you\x1b[0m for 12 damage.\r\n" * 5 + vitals + b"HP 100> " + bytes([IAC, GA])
    data = block * ((1 << 18) // len(block))
    s = TelnetStream()
    events = s.feed(data, 0.0)
    assert not s.backlog
    assert sum(type(e) is Gmcp for e in events) == (1 << 18) // len(block)


def test_a_stream_with_commands_left_to_scan_is_handed_over_whole():
    """An upgrade in place while a step's commands are spent: what is left goes with the
    stream (its carry), and the new process scans it before what it reads next."""
    count = 1000
    s = TelnetStream()
    first = s.feed(b"a\r\n" + DO_DONT_TTYPE * count + b"b", 0.0)
    assert s.backlog
    adopted = TelnetStream.from_state(s.to_state())
    events = first + adopted.feed(b"c\r\n", 1.0)
    while adopted.backlog:
        events += adopted.resume(1.0)
    assert negotiations(events) == [DO_DONT_TTYPE[:3], DO_DONT_TTYPE[3:]] * count
    assert texts(events) == "a\nbc\n"


async def test_an_adopted_connection_scans_what_was_left_unscanned_at_once():
    """An upgrade in place while a step's commands were spent: the rest went with the stream
    (its carry) and was scanned only with the game's next read, which may not come: the text
    after the commands (the answer to the player's last command, a prompt) waited for it.
    Now the adopting process steps through it at once, and answers every request."""
    from gateway.config import parse_config
    from gateway.handoff import TelnetState
    from gateway.telnet import client as telnet
    from tests.test_telnet_client import Recorder

    count = 1000
    old = TelnetStream()
    first = old.feed(b"a\r\n" + DO_DONT_TTYPE * count + b"b\r\n", 0.0)  # (answered by the old process)
    assert texts(first) == "a\n"
    assert old.backlog
    game = parse_config("games: [{name: g, host: 127.0.0.1, port: 1}]").games[0]
    ours, theirs = socket.socketpair()
    sink = Recorder()
    client = await telnet.adopt(ours, game, sink, old.to_state(), TelnetState())
    try:
        await until(lambda: texts(sink.events) == "b\n", what="the text after the commands, with no new read")
        theirs.setblocking(False)
        loop = asyncio.get_running_loop()
        answers = bytes([IAC, WILL, TTYPE, IAC, WONT, TTYPE]) * (count - len(negotiations(first)) // 2)
        got = b""
        while len(got) < len(answers):
            got += await asyncio.wait_for(loop.sock_recv(theirs, 1 << 16), EVENTUALLY)
        assert got == answers
    finally:
        client.close("test over")
        await asyncio.wait_for(sink.closed, EVENTUALLY)
        theirs.close()


class StepRecorder(TelnetStream):
    """The telnet stream, recording the events of each call (each step of the adapter)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.steps: list[list] = []

    def feed(self, data: bytes, now: float) -> list:
        events = super().feed(data, now)
        self.steps.append(events)
        return events

    def resume(self, now: float) -> list:
        events = super().resume(now)
        self.steps.append(events)
        return events


async def stepped_adapter(mud: FakeMud, mxp: bool = False) -> tuple:
    """The telnet adapter connected to ``mud`` with a StepRecorder stream: (client, the
    fake's connection, the Recorder of its events, the stream)."""
    from gateway.config import parse_config
    from gateway.telnet import client as telnet
    from tests.test_telnet_client import Recorder

    game = parse_config(f"games: [{{name: g, host: 127.0.0.1, port: {mud.port}}}]").games[0]
    sink = Recorder()
    stream = StepRecorder(game.encoding, flush_after=game.prompt_flush_ms / 1000, raw_gmcp=True,
                          bytes_lines=True)
    client = await telnet.open_connection(
        game, lambda: telnet.GameClient(sink, stream, gmcp_supports=game.gmcp_supports, mxp=mxp))
    return client, await mud.next_connection(), sink, stream


async def test_a_flood_of_negotiations_is_answered_whole_a_step_at_a_time():
    """Through the adapter, over a real socket: a game floods ``IAC DO TTYPE IAC DONT TTYPE``
    (128 KiB: 43,690 requests). Each read of it was answered whole in one callback of the
    loop (~1 s a read of 256 KiB, every other player stalled). Now the adapter steps through
    it (COMMANDS_PER_STEP a turn of the loop, not reading the game meanwhile), and every
    request is still answered, in order, and the text after the flood arrives after it."""
    mud = await FakeMud().start()
    try:
        client, conn, sink, stream = await stepped_adapter(mud)
        conn.send(b"hello\r\n")
        await until(lambda: texts(sink.events) == "hello\n", what="hello")
        start = len(conn.received)
        count = (1 << 17) // len(DO_DONT_TTYPE)
        conn.send(DO_DONT_TTYPE * count + b"after the flood\r\n")
        await until(lambda: texts(sink.events) == "hello\nafter the flood\n", what="the text after the flood")
        answers = bytes([IAC, WILL, TTYPE, IAC, WONT, TTYPE]) * count
        await until(lambda: len(conn.received) - start >= len(answers), what="every request answered")
        assert bytes(conn.received[start:]) == answers  # each answered once, in order
        assert sum(len(negotiations(events)) for events in stream.steps) == 2 * count
        assert max(len(negotiations(events)) for events in stream.steps) <= PER_STEP
        assert len(stream.steps) >= 2 * count // PER_STEP
        assert client.transport.is_reading() and not stream.backlog
        client.close("test over")
        await asyncio.wait_for(sink.closed, EVENTUALLY)
    finally:
        await mud.close()


@pytest.mark.parametrize("command", [bytes([IAC, IAC]), bytes([IAC, NOP])], ids=["IAC IAC", "NOP"])
def test_lines_between_commands_are_not_held_past_max_pending(command):
    """A read of complete lines with a telnet command after each (256 KiB of ``line IAC
    IAC``) kept all its lines in the held text until the step's end, and added each piece
    to it by a copy of all it held: the read's size squared (0.2 s of the loop for one
    read). Lines held past ``max_pending`` go now, as one event, as a long line's text
    does; none is split, and all of them come, in order."""
    line = b"a" * 120 + b"\r\n"
    count = (1 << 18) // (len(line) + len(command))
    s = TelnetStream(encoding="latin-1")
    calls = steps_of(s, (line + command) * count)
    events = [e for events in calls for e in events]
    held = [len(e.message) for e in events if type(e) is Text]
    assert max(held) <= MAX_PENDING_LINE + len(line)
    assert all(e.message.endswith("\n") for e in events if type(e) is Text)
    events += s.finish()
    assert texts(events) == ("a" * 120 + "\n" + ("\xff" if command[1] == IAC else "")) * count


def _distinct_sgr(count: int, between: bytes = b"", every: int = 0) -> bytes:
    """``count`` SGR sequences no two alike (``ESC[38;5;N;Mm``), ``between`` after each ``every``."""
    return b"".join(b"\x1b[38;5;%d;%dm" % (i % 256, i // 256) + (between if every and i % every == every - 1 else b"")
                    for i in range(count))


@pytest.mark.parametrize("between", [b"", b"&amp;", b"\x1b[1z<B>"], ids=["text", "between entities", "between tags"])
def test_the_games_sgr_is_followed_within_the_steps_markup(between, monkeypatch):
    """While MXP is on, every SGR sequence of the game's text was applied to the state MXP
    restores after a closing tag, one Python step each, in the call that read it and outside
    the step's markup: 256 KiB of sequences no two alike (about 17,000) held the loop 60-90 ms
    in one call. Now a text follows the latest of each distinct one (one applied again sets
    what it set: only its last time counts), at most MAX_TRACKED, and each counts as markup."""
    count = (1 << 18) // 16
    data = _distinct_sgr(count, between, 64) + b"\r\n"
    applied = []
    real = mxp_module.SgrState.apply
    monkeypatch.setattr(mxp_module.SgrState, "apply", lambda state, params: (applied.append(params),
                                                                              real(state, params)))
    s = mxp_stream()
    s.feed(data, 0.0)
    assert len(applied) <= 2 * mxp_module.MARKUP_PER_STEP  # the step's markup and one text's MAX_TRACKED
    while s.backlog:
        del applied[:]
        s.resume(0.0)
        assert len(applied) <= 2 * mxp_module.MARKUP_PER_STEP
    assert s.mxp.game_sgr.fg == "38;5;%d" % ((count - 1) % 256)  # the last one's (";M" is no colour)


def test_a_repeated_sgr_sequence_keeps_what_came_before_it():
    """Only a sequence's latest time is applied: the state is still the whole text's."""
    s = mxp_stream()
    events = s.feed(b"\x1b[1m" + b"\x1b[31mx\x1b[44m" * 500 + b"\x1b[1z<I>y</I>\r\n", 0.0)
    assert texts(events).endswith("\x1b[3my\x1b[0m\x1b[1;31;44m\n")


def python_lines(call, module=None) -> int:
    """The lines of ``module`` (None: of any module) Python runs in ``call()``: the work it does
    a step at a time."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if module is not None and frame.f_code.co_filename != module.__file__:
            return None
        if event == "line":
            count += 1
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(old)
    return count


@pytest.mark.parametrize("read, then", [(b"\xff" * (1 << 16), b"\xf0"), (b"", b"\xff\xff\xf0" * (1 << 14))],
                         ids=["a 1-byte read after a run of 0xFF", "escaped IAC SE"])
def test_the_end_of_a_subnegotiation_is_found_in_c(read, then):
    """Whether an IAC SE ends a subnegotiation (the run of 0xFF before it has odd length)
    was worked out a Python step per 0xFF byte of the run and per escaped IAC SE: a 1-byte
    read ending 1 MiB of 0xFF took 53 ms, 256 KiB of ``IAC IAC SE`` 44 ms, in one call (a
    subnegotiation counts one command). Now a few steps, whatever the content; the same end."""
    s = TelnetStream()
    head = bytes([IAC, SB, TTYPE]) + read
    s.feed(head, 0.0)
    got = []
    tail = then + bytes([IAC, SE]) + b"after\r\n"
    assert python_lines(lambda: got.extend(s.feed(tail, 0.0)), stream_module) < 200
    assert got == [stream_module.Negotiation(head + then + bytes([IAC, SE])), Text("after\n")]
