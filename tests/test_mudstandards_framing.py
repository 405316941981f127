"""The sans-I/O cores of /ws (SPEC 9): subprotocol choice, frames both ways, the relay's
NEW-ENVIRON rewrite (properties over every way a stream can be cut into frames)."""

from __future__ import annotations

import re

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.channel import SendGmcp, SendLines, SetSize
from gateway.mudstandards.framing import ClientFrames, GameFrames, choose, gmcp_text
from gateway.mudstandards.relay import MAX_ENVIRON, RelayInput, rewrite_environ
from gateway.telnet.stream import EchoMode, Gmcp, Lines, Prompt, Text
from gateway.transport.frames import BINARY, TEXT, FrameError

IAC, SB, SE = 255, 250, 240
IP = "10.0.0.1"


def test_choice_follows_the_clients_order_and_matches_exactly():
    served = ["terminal", "gmcp", "json", "telnet"]
    assert choose(["json.mudstandards.org, gmcp.mudstandards.org"], served) == "json"
    assert choose(["phoenix", "gmcp.mudstandards.org", "json.mudstandards.org"], served) == "gmcp"
    assert choose(["telnet.mudstandards.org"], ["terminal"]) is None
    assert choose(["JSON.mudstandards.org", "json.mudstandards.org.", "v1.evennia.com"], served) is None
    assert choose([], served) is None


def test_game_frames_per_subprotocol():
    events = [Lines(b"a\r\nb\x00\n"), Text("partial", partial=True), Prompt("> "),
              Gmcp("Char.Vitals", msgspec.Raw(b'{"hp":1}')), Gmcp("Core.Goodbye", None), EchoMode(False)]
    assert GameFrames("terminal").frames(events) == [(BINARY, b"a\r\nb\r\n"), (BINARY, b"partial"), (BINARY, b"> ")]
    assert GameFrames("gmcp").frames(events) == [
        (BINARY, b"a\r\nb\r\n"), (BINARY, b"partial"), (BINARY, b"> "),
        (TEXT, b'Char.Vitals {"hp":1}'), (TEXT, b"Core.Goodbye")]
    assert GameFrames("json").frames(events) == [
        (BINARY, b"a\r\nb\r\n"), (BINARY, b"partial"),
        (TEXT, b'{"proto":"prompt","id":"","data":"> "}'),
        (TEXT, b'{"proto":"gmcp","id":"Char.Vitals","data":"{\\"hp\\":1}"}'),
        (TEXT, b'{"proto":"gmcp","id":"Core.Goodbye","data":""}'),
        (TEXT, b'{"proto":"telnet_1","id":"ECHO","data":"WILL"}')]
    assert GameFrames("json").frames([EchoMode(True)]) == [(TEXT, b'{"proto":"telnet_1","id":"ECHO","data":"WONT"}')]


def test_gmcp_text():
    assert gmcp_text(None) == ""
    assert gmcp_text(msgspec.Raw(b'[1, 2]')) == "[1, 2]"   # as the game wrote it
    assert gmcp_text({"é": [1]}) == '{"é":[1]}'             # parsed (not ASCII): JSON again
    assert gmcp_text("not json") == "not json"


@settings(deadline=None)
@given(st.text())
def test_no_game_frame_holds_an_iac(text):
    for proto in ("terminal", "gmcp", "json"):
        for _, payload in GameFrames(proto).frames([Text(text), Prompt(text), Gmcp("M", text)]):
            assert b"\xff" not in payload


def test_client_frames():
    terminal, gmcp, js = ClientFrames("terminal"), ClientFrames("gmcp"), ClientFrames("json")
    assert terminal.command(BINARY, b"look", 100) == SendLines(["look"])
    assert terminal.command(BINARY, b"", 100) == SendLines([""])
    assert terminal.command(TEXT, "a\r\nb\n", 100) == SendLines(["a", "b"])
    assert gmcp.command(TEXT, "Core.Ping", 100) == SendGmcp("Core.Ping", None)
    assert gmcp.command(TEXT, 'Char.Login {"name": "x"}', 100) == SendGmcp("Char.Login", {"name": "x"})
    assert js.command(TEXT, '{"proto": "text", "data": "x\\ny"}', 100) == SendLines(["x", "y"])
    assert js.command(TEXT, '{"proto": "gmcp", "id": "A.B", "data": "[1]"}', 100) == SendGmcp("A.B", [1])
    assert js.command(TEXT, '{"proto": "telnet_31", "id": "NAWS", "data": "AFAAGA=="}', 100) == SetSize(80, 24)
    assert js.command(TEXT, '{"proto": "telnet_31", "id": "TTYPE", "data": ""}', 100) is None
    assert js.command(TEXT, '{"proto": "oob", "data": ""}', 100) is None
    for sub, opcode, data, code in [
        (terminal, BINARY, b"\xff", 1007), (terminal, BINARY, b"x" * 101, 1009), (terminal, TEXT, "é" * 51, 1009),
        (gmcp, TEXT, "", 1007), (gmcp, TEXT, "A.B [", 1007),
        (js, TEXT, '{"proto": "gmcp", "id": 5, "data": ""}', 1007),
        (js, TEXT, '{"proto": "telnet_31", "id": "NAWS", "data": "!!"}', 1007),
        (js, TEXT, '{"proto": "telnet_31", "id": "NAWS", "data": "A+kD6A=="}', 1007),  # 1001 wide
    ]:
        with pytest.raises(FrameError) as exc:
            sub.command(opcode, data, 100)
        assert exc.value.code == code, data


# -- the relay ---------------------------------------------------------------------

def env(kind: int, body: bytes, option: int = 39) -> bytes:
    return bytes([IAC, SB, option, kind]) + body.replace(b"\xff", b"\xff\xff") + bytes([IAC, SE])


def relay(chunks: list[bytes], ip: str | None = IP) -> bytes:
    r = RelayInput(ip)
    return b"".join(c for chunk in chunks for c, _ in r.feed(chunk))


def test_rewrite_environ():
    assert rewrite_environ(b"\x00\x00USER\x01bob\x00IPADDRESS\x016.6.6.6\x03ipaddress\x01x\x00 IPADDRESS", IP) == (
        b"\x00\x00USER\x01bob\x00IPADDRESS\x0110.0.0.1")
    # A name whose letters spell IPADDRESS, whatever is between them, is taken as one.
    assert rewrite_environ(b"\x02\x00IP\x02\x00ADDRESS\x01q\x00IP_Address\x01r\x00IPADDR\x01s", None) == (
        b"\x02\x00IPADDR\x01s")
    assert rewrite_environ(b"\x01\x00IPADDRESS", IP) == b"\x01\x00IPADDRESS"   # SEND: a question, unchanged
    assert rewrite_environ(b"\x07junk", IP) is None
    assert rewrite_environ(b"", IP) is None
    assert rewrite_environ(b"\x00\x01stray\x00A\x01b", None) == b"\x00\x00A\x01b"  # stray bytes dropped


def test_relay_passes_everything_else_unchanged_and_cuts_after_lines():
    stream = b"look\r\nsay \xff\xff\n" + bytes([IAC, 253, 1, IAC, SB, 24, 0, 10, IAC, IAC, IAC, SE, IAC, 249]) + b"x"
    r = RelayInput(IP)
    out = r.feed(stream)
    assert b"".join(c for c, _ in out) == stream
    assert [c for c, n in out if n] == [b"look\r\n", b"say \xff\xff\n"]  # a chunk a line, whole
    assert sum(n for _, n in out) == 2  # the LF inside the TTYPE subnegotiation is no line
    assert len(out) == 3  # and the rest, up to the end of the feed


def _python_lines_run(feed, data: bytes) -> int:
    """How many lines of Python relay.py runs while ``feed(data)`` does its work."""
    import sys

    count = 0

    def trace(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename.endswith("relay.py"):
            if event == "line":
                count += 1
            return trace
        return None

    sys.settrace(trace)
    try:
        feed(data)
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("head, command, tail", [
    (b"", b"\xff\xff", b""), (b"", b"\xff\xf1", b""), (b"", b"\xff\xfb\x01", b""), (b"", b"x\xff\xff", b""),
    (bytes([IAC, SB, 24, 0]), b"\xff\xff", bytes([IAC, SE])),                   # inside a subnegotiation
    (bytes([IAC, SB, 39, 0, 0]) + b"A\x01", b"\xff\xff", bytes([IAC, SE])),      # inside a NEW-ENVIRON
])
def test_relay_work_and_writes_do_not_grow_with_the_commands_in_a_frame(head, command, tail):
    """A frame of telnet commands and no line end (``IAC IAC``, ``IAC NOP``, ``IAC WILL``,
    inside a subnegotiation or not) costs no tokens: its Python work must not be a step per
    command (a loop over every second byte: 1.3 ms a 4 KB frame of ``IAC IAC`` before, so a
    client sending such frames held the loop), nor its output a chunk (a write to the game)
    per command. Counted: the lines of Python run and the chunks made are the same for 100
    commands as for 1,000."""
    work, chunks = [], []
    for n in (100, 1000):
        r = RelayInput(None)
        out: list = []
        work.append(_python_lines_run(lambda d: out.extend(r.feed(d)), head + command * n + tail))
        if b"\x27" not in head:
            assert b"".join(c for c, _ in out) == head + command * n + tail
        chunks.append(len(out))
    assert work[0] == work[1] and chunks == [1, 1], (work, chunks)


def test_oversized_environ_is_dropped():
    r = RelayInput(IP)
    out = r.feed(env(0, b"\x00X\x01" + b"v" * (MAX_ENVIRON + 10)) + b"after")
    assert b"".join(c for c, _ in out) == b"after" and r.dropped == 1


_text = st.binary(max_size=12).map(lambda b: bytes(c for c in b if c not in (IAC,)))
_forged = st.sampled_from([
    env(0, b"\x00IPADDRESS\x016.6.6.6"), env(2, b"\x03IPADDRESS\x016.6.6.6\x00USER\x01me"),
    env(0, b"\x00ipaddress\x016.6.6.6"), env(0, b"\x00I\x02PADDRESS\x016.6.6.6", option=36),
    # a NEW-ENVIRON opened inside another subnegotiation (a lax game may restart there)
    bytes([IAC, SB, 24, 0]) + env(0, b"\x00IPADDRESS\x016.6.6.6"),
    # IAC commands inside the NEW-ENVIRON itself
    bytes([IAC, SB, 39, 0, 0]) + b"IPADDRESS" + bytes([IAC, 241, 1]) + b"6.6.6.6" + bytes([IAC, SE]),
])
_other = st.sampled_from([bytes([IAC, 253, 24]), bytes([IAC, SB, 31, 0, 80, 0, 24, IAC, SE]), b"\r\n",
                          bytes([IAC, IAC]), env(1, b"\x00USER"), bytes([IAC, 249])])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_text, _forged, _other), max_size=12), st.data())
def test_no_cut_of_the_stream_lets_a_forged_ipaddress_through(parts, data):
    stream = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    whole = relay([stream])
    assert relay(chunks) == whole                       # however it is cut, the game gets the same
    # What the game gets holds no forged address, for a strict telnet parser or a lax one.
    assert b"6.6.6.6" not in whole or all(
        not re.search(rb"(?i)i\x02?p\x02?address", m.group(0)) for m in re.finditer(rb"[\x00\x03][^\x00\x03]*6\.6\.6\.6", whole))
    for m in re.finditer(rb"\xff\xfa[\x24\x27]([\s\S]*?)\xff\xf0", whole):
        body = m.group(1).replace(b"\xff\xff", b"\xff")
        assert b"6.6.6.6" not in body


@settings(deadline=None)
@given(st.binary(max_size=200), st.data())
def test_relay_of_any_bytes_is_the_same_however_cut_and_bounded(stream, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    assert relay(chunks) == relay([stream])
    if b"\xff" not in stream:
        assert relay([stream]) == stream
