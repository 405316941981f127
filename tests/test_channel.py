"""The telnet:<uuid> channel protocol (gateway/channel.py) and player input (gateway/telnet/input.py).

SPEC 4.2-4.4: topics, join payloads, pushes from the browser, payloads of the
events pushed to it; and how input becomes telnet bytes.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import msgspec
import pytest
from telnetlib3.mud import gmcp_encode

from gateway import channel
from gateway.channel import (
    INVALID_MODULE,
    INVALID_PAYLOAD,
    INVALID_SIZE,
    MESSAGE_TOO_LONG,
    UNKNOWN_EVENT,
    ChannelError,
    JoinParams,
    SendGmcp,
    SendLines,
    SetSize,
    event_payload,
    parse_join,
    parse_push,
    sent_at,
    session_key,
)
from gateway.telnet.input import (
    encode_lines,
    encode_naws,
    split_lines,
    valid_gmcp_module,
    valid_size,
)
from gateway.telnet.stream import (
    CompressionError,
    EchoMode,
    Gmcp,
    Negotiation,
    Prompt,
    Text,
    parse_gmcp,
)

SENT_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
UUID = "0b9e4a8c-3b6f-4a7e-9d2c-1f2e3d4c5b6a"
MAX = 4096


def push_error(event, payload, max_input_bytes=MAX) -> str:
    with pytest.raises(ChannelError) as info:
        parse_push(event, payload, max_input_bytes)
    return info.value.reason


# -- topics -----------------------------------------------------------------------


def test_session_key_valid():
    assert session_key(f"telnet:{UUID}") == UUID


def test_session_key_lower_cases():
    assert session_key(f"telnet:{UUID.upper()}") == UUID


@pytest.mark.parametrize("topic", [
    "telnet:",
    "telnet:abc",
    f"room:{UUID}",
    f"Telnet:{UUID}",
    f"telnet:{UUID}x",
    f"telnet:{UUID}\n",
    f" telnet:{UUID}",
    f"telnet:{UUID.replace('-', '')}",
    f"telnet:{{{UUID}}}",
    "telnet:0b9e4a8c-3b6f-4a7e-9d2c-1f2e3d4c5b6g",
    "telnet:0b9e4a8c3-b6f-4a7e-9d2c-1f2e3d4c5b6a",
    "phoenix",
    "",
])
def test_session_key_rejects_other_topics(topic):
    assert session_key(topic) is None


# -- join ------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [None, {}])
def test_parse_join_defaults(payload):
    assert parse_join(payload) == JoinParams(game=None, last_seq=None, screen_reader=False)


def test_parse_join_all_fields():
    assert parse_join({"game": "g", "last_seq": 42, "screen_reader": True}) == JoinParams("g", 42, True)


def test_parse_join_explicit_nulls_and_unknown_keys():
    assert parse_join({"game": None, "last_seq": None, "other": 1}) == JoinParams()


@pytest.mark.parametrize("payload", [
    {"game": 5},
    {"last_seq": "5"},
    {"last_seq": 1.5},
    {"screen_reader": "yes"},
    {"screen_reader": 1},
    [],
    "game",
    7,
])
def test_parse_join_invalid(payload):
    with pytest.raises(ChannelError) as info:
        parse_join(payload)
    assert info.value.reason == INVALID_PAYLOAD
    assert info.value.response()["reason"] == INVALID_PAYLOAD


def test_channel_error_response():
    assert ChannelError("unknown game").response() == {"reason": "unknown game"}
    assert ChannelError("game unavailable", "refused").response() == {
        "reason": "game unavailable", "detail": "refused"}


# -- recv ----------------------------------------------------------------------------------


@pytest.mark.parametrize("message, lines", [
    ("", [""]),
    ("look", ["look"]),
    ("look\n", ["look"]),
    ("look\r\n", ["look"]),
    ("a\nb", ["a", "b"]),
    ("a\r\nb\r\n", ["a", "b"]),
    ("a\n\n", ["a", ""]),
    ("\n", [""]),
    ("\n\n", ["", ""]),
    ("a\rb", ["ab"]),
    ("\r", [""]),
    ("say hi\nsay bye\n\nquit", ["say hi", "say bye", "", "quit"]),
])
def test_recv_line_splitting(message, lines):
    assert split_lines(message) == lines
    assert parse_push("recv", {"message": message}, MAX) == SendLines(lines)


def test_recv_message_too_long_counts_utf8_bytes():
    assert parse_push("recv", {"message": "abcd"}, 4) == SendLines(["abcd"])
    assert push_error("recv", {"message": "abcde"}, 4) == MESSAGE_TOO_LONG
    assert parse_push("recv", {"message": "éé"}, 4) == SendLines(["éé"])    # 4 bytes
    assert push_error("recv", {"message": "ééé"}, 4) == MESSAGE_TOO_LONG   # 3 characters, 6 bytes
    assert push_error("recv", {"message": "𝄞a"}, 4) == MESSAGE_TOO_LONG    # 5 bytes
    assert push_error("recv", {"message": "x" * (MAX + 1)}) == MESSAGE_TOO_LONG


@pytest.mark.parametrize("payload", [{}, {"message": None}, {"message": 5}, {"message": ["a"]}, [], "look", None])
def test_recv_invalid_payload(payload):
    assert push_error("recv", payload) == INVALID_PAYLOAD


# -- gmcp push -------------------------------------------------------------------------------


def test_gmcp_push_with_data():
    cmd = parse_push("gmcp", {"module": "Char.Skills.Get", "data": {"group": "combat"}}, MAX)
    assert cmd == SendGmcp("Char.Skills.Get", {"group": "combat"})


@pytest.mark.parametrize("payload", [{"module": "Core.Ping"}, {"module": "Core.Ping", "data": None}])
def test_gmcp_push_without_data(payload):
    assert parse_push("gmcp", payload, MAX) == SendGmcp("Core.Ping", None)


@pytest.mark.parametrize("data", [0, False, "", [], {}])
def test_gmcp_push_falsy_data_is_still_data(data):
    assert parse_push("gmcp", {"module": "M", "data": data}, MAX) == SendGmcp("M", data)
    # ... and goes on the wire as JSON: only None means "no data".
    assert gmcp_encode("M", data) == b"M " + json.dumps(data, separators=(",", ":")).encode()


@pytest.mark.parametrize("module", ["Core", "Char.Vitals", "Comm.Channel.Text", "IRE.Rift-2", "a_b.C1", "X" * 128])
def test_valid_gmcp_modules(module):
    assert valid_gmcp_module(module)
    assert parse_push("gmcp", {"module": module}, MAX).module == module


@pytest.mark.parametrize("module", [
    None, 5, "", "1Char", ".Char", "Char.", "Char..Vitals", "Char Vitals", "Char.Vitals {}",
    "Char\n", "Ch\xe4r", "X" * 129, ["Char"],
])
def test_invalid_gmcp_modules(module):
    assert not valid_gmcp_module(module)
    assert push_error("gmcp", {"module": module, "data": 1}) == INVALID_MODULE


def test_gmcp_push_not_a_dict():
    assert push_error("gmcp", ["Core.Ping"]) == INVALID_PAYLOAD


# GMCP pushes are framed by telnetlib3 (TelnetWriter.send_gmcp -> gmcp_encode):
# what it writes is what GMCP games expect, and what our own parser reads back.

def test_encode_gmcp():
    assert gmcp_encode("Core.Hello", {"client": "mud-gateway", "version": "1"}) == (
        b'Core.Hello {"client":"mud-gateway","version":"1"}')
    assert gmcp_encode("Core.Ping") == b"Core.Ping"
    assert gmcp_encode("Core.Supports.Set", ["Char 1", "Room 1"]) == b'Core.Supports.Set ["Char 1","Room 1"]'
    assert gmcp_encode("M", None) == b"M"  # a push's null data is no data


@pytest.mark.parametrize("data", [{"a": [1, "é", None]}, "text", 3, True, [], {}])
def test_encode_gmcp_round_trips_through_parse(data):
    assert parse_gmcp(gmcp_encode("Mod.Name", data)) == Gmcp("Mod.Name", data)


# -- naws ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("w, h", [(1, 1), (80, 24), (1000, 1000), (255, 255)])
def test_naws_valid(w, h):
    assert valid_size(w, h)
    assert parse_push("naws", {"width": w, "height": h}, MAX) == SetSize(w, h)


@pytest.mark.parametrize("w, h", [
    (0, 24), (80, 0), (1001, 24), (80, 1001), (-1, 24), (True, 24), (80, True), (True, True),
    (80.0, 24), (80, "24"), (None, 24), (80, None), ([80], 24),
])
def test_naws_invalid(w, h):
    assert not valid_size(w, h)
    assert push_error("naws", {"width": w, "height": h}) == INVALID_SIZE


def test_naws_missing_fields():
    assert push_error("naws", {}) == INVALID_SIZE
    assert push_error("naws", {"width": 80}) == INVALID_SIZE


def test_naws_not_a_dict():
    assert push_error("naws", [80, 24]) == INVALID_PAYLOAD


def test_encode_naws():
    assert encode_naws(80, 24) == b"\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0"
    assert encode_naws(1000, 1000) == b"\xff\xfa\x1f\x03\xe8\x03\xe8\xff\xf0"


def test_encode_naws_escapes_iac():
    assert encode_naws(255, 24) == b"\xff\xfa\x1f\x00\xff\xff\x00\x18\xff\xf0"
    assert encode_naws(255, 255) == b"\xff\xfa\x1f\x00\xff\xff\x00\xff\xff\xff\xf0"
    # 0x03FF: the low byte is 0xFF too
    assert encode_naws(1023 - 23, 511) == b"\xff\xfa\x1f\x03\xe8\x01\xff\xff\xff\xf0"


# -- other events ---------------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["phx_join", "echo", "prompt", "", "RECV", "heartbeat"])
def test_unknown_event(event):
    assert push_error(event, {"message": "x"}) == UNKNOWN_EVENT


def test_unknown_event_checked_before_payload():
    assert push_error("bogus", None) == UNKNOWN_EVENT


# -- encoding input for the game ----------------------------------------------------------------------


def test_encode_lines_utf8():
    assert encode_lines(["look"], "utf-8") == b"look\r\n"
    assert encode_lines(["a", "b"], "utf-8") == b"a\r\nb\r\n"
    assert encode_lines([""], "utf-8") == b"\r\n"
    assert encode_lines(["a", ""], "utf-8") == b"a\r\n\r\n"
    assert encode_lines(["say café ☕"], "utf-8") == "say café ☕\r\n".encode()


def test_encode_lines_latin1_unencodable_becomes_question_mark():
    assert encode_lines(["say café"], "latin-1") == b"say caf\xe9\r\n"
    assert encode_lines(["☕ 𝄞 ok"], "latin-1") == b"? ? ok\r\n"


def test_encode_lines_cp437():
    assert encode_lines(["é"], "cp437") == b"\x82\r\n"


def test_recv_to_bytes_end_to_end():
    cmd = parse_push("recv", {"message": "north\r\nsay hé\n"}, MAX)
    assert encode_lines(cmd.lines, "latin-1") == b"north\r\nsay h\xe9\r\n"


# -- events to the browser ------------------------------------------------------------------------------


def test_sent_at_format():
    assert SENT_AT.match(sent_at())


def test_sent_at_is_utc_now(monkeypatch):
    monkeypatch.setattr(channel.time, "time_ns", lambda: 1543959426_500_000_000)
    assert sent_at() == "2018-12-04T21:37:06.500000Z"
    monkeypatch.setattr(channel.time, "time_ns", lambda: 1543959426_250_000_000)
    assert sent_at() == "2018-12-04T21:37:06.250000Z"          # same second (cached prefix)
    monkeypatch.setattr(channel.time, "time_ns", lambda: 1543959427_000_000_000)
    assert sent_at() == "2018-12-04T21:37:07.000000Z"          # next second
    monkeypatch.setattr(channel.time, "time_ns", lambda: 1700000000_125_000_000)
    assert sent_at() == "2023-11-14T22:13:20.125000Z"


def test_sent_at_follows_the_clock():
    before = datetime.now(timezone.utc)
    stamp = datetime.strptime(sent_at(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    after = datetime.now(timezone.utc)
    assert before.replace(microsecond=0) <= stamp <= after


def encoded(event, seq=3, stamp="2018-12-04T21:37:06.061238Z"):
    name, payload = event_payload(event, seq, stamp)
    return name, msgspec.json.decode(msgspec.json.encode(payload))


def test_event_payload_echo():
    assert encoded(Text("hello\n")) == ("echo", {"message": "hello\n", "seq": 3, "sent_at": "2018-12-04T21:37:06.061238Z"})
    assert encoded(Text("part", partial=True))[0] == "echo"
    assert encoded(Text("part", partial=True))[1]["message"] == "part"


def test_event_payload_prompt():
    assert encoded(Prompt("HP> "), 7) == ("prompt", {"message": "HP> ", "seq": 7, "sent_at": "2018-12-04T21:37:06.061238Z"})


def test_event_payload_gmcp():
    assert encoded(Gmcp("Char.Vitals", {"hp": 1})) == (
        "gmcp", {"module": "Char.Vitals", "data": {"hp": 1}, "seq": 3, "sent_at": "2018-12-04T21:37:06.061238Z"})
    assert encoded(Gmcp("Core.Ping", None))[1]["data"] is None
    assert "data" in encoded(Gmcp("Core.Ping", None))[1]


@pytest.mark.parametrize("echo", [False, True])
def test_event_payload_option(echo):
    assert encoded(EchoMode(echo), 9) == (
        "option", {"type": "echo", "echo": echo, "seq": 9, "sent_at": "2018-12-04T21:37:06.061238Z"})


@pytest.mark.parametrize("event", [Negotiation(b"\xff\xfd\x01"), CompressionError("bad")])
def test_event_payload_rejects_non_browser_events(event):
    with pytest.raises(TypeError):
        event_payload(event, 1, sent_at())


def test_event_payload_with_real_stamp():
    _, payload = encoded(Text("x"), 1, sent_at())
    assert SENT_AT.match(payload["sent_at"])


def test_recv_lone_surrogate_does_not_crash():
    cmd = parse_push("recv", {"message": "a\ud800b"}, MAX)
    assert cmd == SendLines(["a\ud800b"])
    assert encode_lines(cmd.lines, "utf-8") == b"a?b\r\n"
