"""A hostile or broken game at the edges of SPEC 5: requests whose handling cost grew with
their size in Python steps, and what they must still be answered with.

Each test failed before the fix it names. Negotiation goes through the telnet adapter over
a real socket to the scripted fake MUD (tests/test_telnet_client.py ``adapter``); the work a
request costs is counted in the Python lines run for it (no timing).
"""

from __future__ import annotations

import asyncio
import json
import sys

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telnetlib3.stream_writer import _decode_env_buf

from gateway.mudstandards.framing import gmcp_text
from gateway.telnet import client as telnet
from gateway.telnet import stream as stream_module
from gateway.telnet.proxy import proxy_header
from gateway.telnet.stream import Gmcp, Negotiation, TelnetStream, Text
from gateway.telnet.subnegotiation import (MAX_MSSP_VALUES, decode_mssp, encode_environ, environ_names,
                                           environ_request)
from tests.fakemud import EVENTUALLY, FakeMud
from tests.test_hostile_game import python_lines
from tests.test_telnet_client import adapter

IAC, WILL, DO, SB, SE = 255, 251, 253, 250, 240
NEW_ENVIRON, MSDP, MSSP, GMCP = 39, 69, 70, 201
VAR, VALUE, ESC, USERVAR = b"\x00", b"\x01", b"\x02", b"\x03"


def sb(opt: int, body: bytes) -> bytes:
    return bytes([IAC, SB, opt]) + body.replace(b"\xff", b"\xff\xff") + bytes([IAC, SE])


# -- NEW-ENVIRON ---------------------------------------------------------------------------


async def test_a_large_new_environ_send_is_read_without_a_step_per_byte():
    """A NEW-ENVIRON SEND up to 64 KiB went to telnetlib3's handler, which finds the VAR and
    USERVAR bytes in a Python loop per byte and splits each name: 64 KiB of them held the
    event loop, every other player's, 0.1-0.17 s per request, four a read. Now the request
    is read with two regex searches (subnegotiation.environ_request): a few hundred lines
    of Python whatever its size, and the variables asked for are answered as before."""
    mud = await FakeMud().start()
    try:
        client, conn, sink = await adapter(mud)
        conn.send(bytes([IAC, DO, NEW_ENVIRON]))
        await conn.wait_for(bytes([IAC, WILL, NEW_ENVIRON]))
        for junk in (USERVAR * 65000, (VAR + b"x") * 32000, (VAR + ESC + USERVAR) * 21000):
            body = b"\x01" + junk + VAR + b"CLIENT_NAME" + USERVAR + b"MTTS"
            raw = bytes([IAC, SB, NEW_ENVIRON]) + body + bytes([IAC, SE])
            lines = python_lines(lambda: client._subnegotiation(raw))
            assert lines < 400, lines
            await conn.wait_for(bytes([IAC, SB, NEW_ENVIRON, 0]) + b"\x00CLIENT_NAME\x01MUD-GATEWAY\x00MTTS\x01"
                                + str(client.mtts).encode() + bytes([IAC, SE]))
        # the same through the stream: a read of three such requests, each answered
        before = bytes(conn.received).count(bytes([IAC, SB, NEW_ENVIRON, 0]))
        conn.send(sb(NEW_ENVIRON, b"\x01" + USERVAR * 65000 + VAR + b"CHARSET") * 3)
        await conn.wait_for(bytes([IAC, SB, NEW_ENVIRON, 0]) + b"\x00CHARSET\x01UTF-8" + bytes([IAC, SE]))
        await asyncio.sleep(0)
        while bytes(conn.received).count(bytes([IAC, SB, NEW_ENVIRON, 0])) < before + 3:
            await conn.wait_for(b"\x00CHARSET\x01UTF-8" + bytes([IAC, SE]))
        client.close("test over")
        await asyncio.wait_for(sink.closed, EVENTUALLY)
    finally:
        await mud.close()


MNES = {"CLIENT_NAME": "MUD-GATEWAY", "CLIENT_VERSION": "1.2", "CHARSET": "UTF-8", "MTTS": "457",
        "TERMINAL_TYPE": "XTERM-256COLOR", "IPADDRESS": "10.1.2.3"}
KNOWN = environ_names(tuple(MNES))
_PIECES = st.sampled_from([VAR, USERVAR, VALUE, ESC, b"CLIENT_NAME", b"MTTS", b"IPADDRESS", b"CHARSET",
                           b"TERMINAL_TYPE", b"X", b"\xc3\xa9", b"MTT"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=12))
def test_new_environ_send_names_the_variables_telnetlib3_read(pieces):
    """environ_request reads a SEND as telnetlib3's handler did (the oracle: its decoder and
    the MNES rule ``send_env`` applies: no name asks for all, else those known, in order)."""
    body = b"".join(pieces)
    names = [k for k in _decode_env_buf(body, "utf-8") if k]
    expected = MNES if not names else {k: MNES[k] for k in names if k in MNES}
    got = environ_request(body, KNOWN)
    assert (MNES if got is None else {k: MNES[k] for k in got}) == expected


def test_new_environ_answer_escapes_what_rfc_1572_escapes():
    assert encode_environ({"A": "v"}, "ascii") == VAR + b"A" + VALUE + b"v"
    assert encode_environ({"A": "x\x00y\x01\x02\x03é\xff"}, "utf-8") == \
        VAR + b"A" + VALUE + b"x\x02\x00y\x02\x01\x02\x02\x02\x03\xc3\xa9\xc3\xbf"
    assert encode_environ({"A": "é"}, "ascii") == VAR + b"A" + VALUE + b"?"


# -- MSDP and MSSP: a step's work ----------------------------------------------------------


def steps_of(s, data: bytes) -> list[list]:
    """``feed`` then ``resume`` until no backlog: the events of each call."""
    calls = [s.feed(data, 0.0)]
    while s.backlog:
        calls.append(s.resume(0.0))
    return calls


@pytest.mark.parametrize("option", [MSDP, MSSP], ids=["MSDP", "MSSP"])
def test_large_tables_count_their_reading_against_the_step(option):
    """A step of the stream scans at most COMMANDS_PER_STEP commands' worth (stream.py), and a
    subnegotiation counted one negotiation (NEGOTIATION_COST) whatever it held; MSDP
    messages and MSSP tables are read a Python step per VAR and VAL (msdp.py,
    subnegotiation.py): a read of 256 KiB of them, 16-32 of thousands of pairs, was one step
    (MSDP 0.18 s of the loop, MSSP 0.1 s). Now each counts its VARs and VALs too: a step
    reads a table or two of these, the rest waits as the backlog, all of it comes in order."""
    pairs = 2000
    table = bytes([IAC, SB, option]) + b"\x01k\x02v" * pairs + bytes([IAC, SE])
    count = (1 << 18) // len(table)
    s = TelnetStream()
    s.msdp = True
    calls = steps_of(s, b"before\r\n" + table * count + b"after\r\n")

    def tables(events):
        if option == MSDP:
            return [e for e in events if type(e) is Gmcp and e.module == "MSDP"]
        return [e for e in events if type(e) is Negotiation and e.raw[2] == MSSP]
    per_step = stream_module.COMMANDS_PER_STEP // (2 * pairs) + 1
    assert len(calls) >= count // per_step
    for events in calls:
        assert len(tables(events)) <= per_step
    everything = [e for events in calls for e in events]
    assert len(tables(everything)) == count
    assert [e.message for e in everything if type(e) is Text] == ["before\n", "after\n"]
    if option == MSDP:
        assert tables(everything)[0].data == {"k": "v"}


def test_an_mssp_table_reads_a_bounded_number_of_values():
    """decode_mssp read at most MAX_MSSP_VARIABLES variables, but every value of each: one
    variable with a VAL per byte of a 1 MiB table was a list of a million strings, made a
    Python step each (0.15 s of the loop), kept as the game's ``mssp`` and sent whole with
    each ``/api/games``. Now at most MAX_MSSP_VALUES values a table; those first are kept."""
    table = decode_mssp(b"\x01NAME\x02Game\x01PORT\x024000\x024001\x01JUNK" + b"\x02" * (1 << 20), "utf-8")
    assert table["NAME"] == "Game" and table["PORT"] == ["4000", "4001"]
    assert len(table["JUNK"]) == MAX_MSSP_VALUES - 3
    many = b"".join(b"\x01V%d" % i + b"\x02x" * 100 for i in range(1000))
    table = decode_mssp(many + b"\x01LAST\x02y", "utf-8")
    assert sum(len(v) if isinstance(v, list) else 1 for v in table.values()) == MAX_MSSP_VALUES
    assert table["V0"] == ["x"] * 100 and "LAST" not in table


# -- the PROXY header ----------------------------------------------------------------------


@pytest.mark.parametrize("player", ["fe80::1%eth0", "fe80::1%x y"])
def test_the_proxy_v1_line_has_no_ipv6_zone(player):
    """A player's address may carry an IPv6 zone (a link-local peer's ``%eth0``; the text after
    ``%`` is anything, spaces included): it went into the v1 line as it was, a line the PROXY
    protocol has no syntax for (a field more with a space), which the game refuses."""
    assert proxy_header("v1", player, 5, "fe80::2%eth0", 23) == b"PROXY TCP6 fe80::1 fe80::2 5 23\r\n"
    assert proxy_header("v2", player, 5, "::1", 23) == proxy_header("v2", "fe80::1", 5, "::1", 23)


# -- GMCP: a JSON string is JSON -----------------------------------------------------------


@pytest.mark.parametrize("data", ['"h\u00e9llo"', '"Zo\u00eb says \\"hi\\""', ' "\u2615" '])
def test_a_non_ascii_json_string_stays_json_and_text_that_is_no_json_a_str(data):
    """SPEC 5/9.3: GMCP data is the JSON the game sent, or the raw string when it is not JSON.
    With ``raw`` (the gateway's streams), ASCII JSON is kept as it came (``msgspec.Raw``), but
    non-ASCII JSON was parsed, and a JSON *string* came out a ``str``: the type that means "no
    JSON", so /ws sent it without its quotes. Now it is kept as JSON (``Raw``), the same value."""
    (event,) = TelnetStream(raw_gmcp=True).feed(sb(GMCP, b"Comm.Say " + data.encode()), 0.0)
    assert type(event.data) is msgspec.Raw
    assert json.loads(bytes(event.data)) == json.loads(data)
    assert bytes(event.data).isascii() and json.loads(gmcp_text(event.data)) == json.loads(data)
    # the Phoenix payload is what it was: the JSON value
    assert msgspec.json.decode(msgspec.json.encode({"data": event.data})) == {"data": json.loads(data)}
    # data that is no JSON stays the raw string, JSON objects parsed as before
    (text,) = TelnetStream(raw_gmcp=True).feed(sb(GMCP, "Comm.Say h\u00e9llo".encode()), 0.0)
    assert text.data == "h\u00e9llo" and gmcp_text(text.data) == "h\u00e9llo"
    (obj,) = TelnetStream(raw_gmcp=True).feed(sb(GMCP, 'Char {"n": "Zo\u00eb"}'.encode()), 0.0)
    assert obj.data == {"n": "Zo\u00eb"}
