"""MSDP (SPEC 5): the codec (telnet/msdp.py), the stream's events, and the gateway over real sockets."""

from __future__ import annotations

import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.telnet.msdp import decode_msdp, encode_msdp
from gateway.telnet.subnegotiation import subnegotiation
from gateway.telnet.stream import Gmcp, Negotiation, Text, TelnetStream
from tests.conftest import session

IAC, WILL, WONT, DO, DONT, SB, SE = 255, 251, 252, 253, 254, 250, 240
MSDP, GMCP = 69, 201
VAR, VAL, TO, TC, AO, AC = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06"


def msdp(body: bytes) -> bytes:
    return bytes([IAC, SB, MSDP]) + body.replace(b"\xff", b"\xff\xff") + bytes([IAC, SE])


# The MSDP specification's own examples (tintin.mudhalla.net/protocols/msdp), with their
# "MSDP over GMCP" forms.
SPEC_EXAMPLES = [
    (VAR + b"SEND" + VAL + b"HEALTH", {"SEND": "HEALTH"}),
    (VAR + b"LIST" + VAL + b"COMMANDS", {"LIST": "COMMANDS"}),
    (VAR + b"REPORT" + VAL + AO + VAL + b"HEALTH" + VAL + b"HEALTH_MAX" + AC,
     {"REPORT": ["HEALTH", "HEALTH_MAX"]}),
    (VAR + b"ROOM" + VAL + TO + VAR + b"VNUM" + VAL + b"6008" + VAR + b"NAME" + VAL + b"The forest clearing"
     + VAR + b"AREA" + VAL + b"Haon Dor" + VAR + b"EXITS" + VAL + TO + VAR + b"n" + VAL + b"6011"
     + VAR + b"e" + VAL + b"6007" + TC + TC,
     {"ROOM": {"VNUM": "6008", "NAME": "The forest clearing", "AREA": "Haon Dor",
               "EXITS": {"n": "6011", "e": "6007"}}}),
    (VAR + b"HEALTH" + VAL + b"500" + VAR + b"HEALTH_MAX" + VAL + b"1000",
     {"HEALTH": "500", "HEALTH_MAX": "1000"}),
    (VAR + b"COMMANDS" + VAL + AO + VAL + b"LIST" + VAL + b"REPORT" + VAL + b"SEND" + AC,
     {"COMMANDS": ["LIST", "REPORT", "SEND"]}),
]

MALFORMED = [
    VAL + b"x",                                  # VAL without VAR
    b"junk" + VAR + b"A" + VAL + b"1",           # bytes before the first VAR
    VAR + b"A" + VAL + TO + VAR + b"B" + VAL + b"1",  # table left open
    VAR + b"A" + VAL + AO + VAL + b"1",          # array left open
    VAR + b"A" + VAL + b"1" + TC,                # a close with nothing open
    VAR + b"A" + VAL + AO + VAR + b"B" + AC,     # VAR inside an array
    VAR + b"A" + VAL + TO + VAL + b"1" + TC,     # VAL without VAR inside a table
    VAR + b"A" + VAL + TO + TC + b"x",           # text after a close
    VAR + b"A" + (VAL + TO + VAR + b"A") * 200 + VAL + b"1" + TC * 200,  # nested too deep
]


def test_spec_examples_decode_to_their_msdp_over_gmcp_form():
    for body, want in SPEC_EXAMPLES:
        assert decode_msdp(body, "utf-8") == want, body


def test_several_values_of_one_variable_are_a_list_and_missing_ones_empty():
    assert decode_msdp(VAR + b"A" + VAL + b"1" + VAL + b"2" + VAR + b"B", "utf-8") == {"A": ["1", "2"], "B": ""}
    assert decode_msdp(VAR + b"A" + VAL + AO + AC + VAR + b"T" + VAL + TO + TC, "utf-8") == {"A": [], "T": {}}
    assert decode_msdp(b"", "utf-8") == {}


def test_malformed_gives_none():
    for body in MALFORMED:
        assert decode_msdp(body, "utf-8") is None, body


def test_at_most_max_elements_structure_bytes_are_read():
    """Bounded Python work per message: one over MAX_ELEMENTS structure bytes gives no event."""
    from gateway.telnet.msdp import MAX_ELEMENTS
    pairs = MAX_ELEMENTS // 2
    body = b"".join(VAR + b"V%d" % i + VAL + b"%d" % i for i in range(pairs))
    assert len(decode_msdp(body, "utf-8")) == pairs
    assert decode_msdp(body + VAR + b"ONE_MORE", "utf-8") is None
    assert decode_msdp((VAR + b"a" + VAL + b"b") * (1 << 18), "utf-8") is None  # 1 MiB: split in C, dropped


def test_scalars_decoded_with_the_game_encoding():
    assert decode_msdp(VAR + b"NAME" + VAL + b"Caf\xe9 \xff", "latin-1") == {"NAME": "Café ÿ"}
    assert decode_msdp(VAR + b"ROOM" + VAL + "北京".encode("gbk"), "gbk") == {"ROOM": "北京"}
    assert decode_msdp(VAR + b"X" + VAL + b"\xc3(", "utf-8") == {"X": "\ufffd("}


def test_encode_keys_in_order_strings_in_encoding_other_scalars_as_json_and_iac_doubled():
    data = {"SEND": "HEALTH", "REPORT": ["A", "B"], "n": 5, "f": 1.5, "t": True, "z": None,
            "T": {"k": "é"}}
    assert encode_msdp(data, "latin-1") == (
        VAR + b"SEND" + VAL + b"HEALTH" + VAR + b"REPORT" + VAL + AO + VAL + b"A" + VAL + b"B" + AC
        + VAR + b"n" + VAL + b"5" + VAR + b"f" + VAL + b"1.5" + VAR + b"t" + VAL + b"true"
        + VAR + b"z" + VAL + b"null" + VAR + b"T" + VAL + TO + VAR + b"k" + VAL + b"\xe9" + TC)
    # IAC doubled as the subnegotiation is framed (one home for every subnegotiation written).
    assert subnegotiation(69, encode_msdp({"X": "ÿ"}, "latin-1")) == (
        b"\xff\xfa\x45" + VAR + b"X" + VAL + b"\xff\xff" + b"\xff\xf0")
    # The structure bytes cannot be in a name or a value: left out, the structure stays whole.
    assert encode_msdp({"A\x01": "b\x02\x06c"}, "utf-8") == VAR + b"A" + VAL + b"bc"


def _as_msdp_sees_it(value):
    """What the JSON form of ``value`` comes back as: every scalar a string."""
    if isinstance(value, dict):
        return {k: _as_msdp_sees_it(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_msdp_sees_it(v) for v in value]
    return value if isinstance(value, str) else json.dumps(value)


KEYS = st.text(st.characters(blacklist_characters="\x00\x01\x02\x03\x04\x05\x06", blacklist_categories=("Cs",)),
               min_size=1, max_size=6)
SCALARS = (st.none() | st.booleans() | st.integers(-10**9, 10**9)
           | st.text(st.characters(blacklist_characters="\x01\x02\x03\x04\x05\x06", blacklist_categories=("Cs",)),
                     max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=12)
OBJECTS = st.dictionaries(KEYS, VALUES, max_size=5)


@settings(max_examples=300, deadline=None)
@given(OBJECTS)
def test_round_trip_json_form_to_msdp_and_back(data):
    body = encode_msdp(data, "utf-8")  # (IAC is doubled by the framing: subnegotiation)
    assert decode_msdp(body, "utf-8") == _as_msdp_sees_it(data)


def _msdp_by_definition(data, encoding):
    """encode_msdp's definition, a piece at a time: each name and string in the game's encoding
    ("replace"), other scalars as their JSON text, the structure bytes left out of all of them."""
    def scalar(value):
        raw = value.encode(encoding, "replace") if isinstance(value, str) else msgspec.json.encode(value)
        return bytes(b for b in raw if not 1 <= b <= 6)

    def pairs(obj):
        return b"".join(VAR + scalar(k) + value(v) for k, v in obj.items())

    def value(v):
        if isinstance(v, dict):
            return VAL + TO + pairs(v) + TC
        if isinstance(v, list):
            return VAL + AO + b"".join(value(i) for i in v) + AC
        return VAL + scalar(v)
    return pairs(data)


ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
ANY_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ANY_TEXT, ANY_VALUES, max_size=5),
       st.sampled_from(["utf-8", "latin-1", "cp1252", "gbk", "shift_jis", "ascii"]))
def test_encode_is_its_definition_in_any_encoding_with_structure_bytes_anywhere(data, encoding):
    """The body is built as one text and encoded once: the same bytes as each piece encoded on
    its own, whatever the names and values hold (structure bytes, controls, characters the
    encoding lacks)."""
    assert encode_msdp(data, encoding) == _msdp_by_definition(data, encoding)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.lists(st.sampled_from([VAR, VAL, TO, TC, AO, AC, b"x", b"\xff", b""]),
                                          max_size=30).map(b"".join))
def test_any_bytes_decode_to_an_object_or_none(body):
    result = decode_msdp(body, "utf-8")
    assert result is None or isinstance(result, dict)


# -- the stream ------------------------------------------------------------------------

def merged(events):
    """Events with adjacent text joined (how a read is cut may split text differently)."""
    out = []
    for ev in events:
        if type(ev) is not Text and hasattr(ev, "text"):
            ev = ev.text()
        if type(ev) is Text and out and type(out[-1]) is Text:
            out[-1] = Text(out[-1].message + ev.message)
        else:
            out.append(ev)
    return out


def feed_all(data: bytes, cuts, encoding="utf-8") -> list:
    stream = TelnetStream(encoding, bytes_lines=True)
    stream.msdp = True
    events = []
    last = 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        events += stream.feed(data[last:cut], 0.0)
        last = cut
    events += stream.finish()
    return merged(events)


def test_stream_msdp_in_byte_order_with_text_and_only_while_on():
    data = b"one\r\n" + msdp(SPEC_EXAMPLES[0][0]) + b"two\r\n" + msdp(VAL + b"bad") + b"three\r\n"
    assert feed_all(data, []) == [Text("one\n"), Gmcp("MSDP", {"SEND": "HEALTH"}), Text("two\nthree\n")]
    off = TelnetStream("utf-8")
    events = off.feed(data, 0.0)
    assert Gmcp("MSDP", {"SEND": "HEALTH"}) not in events
    assert any(type(e) is Negotiation and e.raw[2] == MSDP for e in events)


def test_stream_msdp_iac_in_a_value():
    body = VAR + b"NAME" + VAL + b"\xff\xfe"
    assert feed_all(msdp(body), [], "latin-1") == [Gmcp("MSDP", {"NAME": "ÿþ"})]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([b"text ", b"line\r\n", b"\xc3\xa9", *(msdp(b) for b, _ in SPEC_EXAMPLES),
                                 *(msdp(b) for b in MALFORMED[:4])]), min_size=1, max_size=12),
       st.lists(st.integers(0, 2000), max_size=10))
def test_stream_msdp_any_chunking_gives_the_same_events(items, cuts):
    data = b"".join(items)
    whole = feed_all(data, [])
    assert feed_all(data, cuts) == whole
    want = [Gmcp("MSDP", v) for b, v in SPEC_EXAMPLES for item in items if item == msdp(b)]
    assert sorted(map(repr, (e for e in whole if type(e) is Gmcp))) == sorted(map(repr, want))


# -- the gateway, with the fake MUD ---------------------------------------------------------

def cmd(*codes: int) -> bytes:
    return bytes(codes)


async def test_msdp_negotiated_examples_as_gmcp_events_and_malformed_skipped(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway)
    conn.send(cmd(IAC, WILL, MSDP))
    await conn.wait_for(cmd(IAC, DO, MSDP))
    for body, want in SPEC_EXAMPLES:
        conn.send(msdp(body))
        event = await phx.event(topic, "gmcp")
        assert event["module"] == "MSDP" and event["data"] == want
    for body in MALFORMED:
        conn.send(msdp(body))
    conn.send(b"still here\r\n" + msdp(VAR + b"HEALTH" + VAL + b"7"))
    assert (await phx.event(topic, "echo"))["message"] == "still here\n"
    event = await phx.event(topic, "gmcp")
    assert event["data"] == {"HEALTH": "7"}


async def test_msdp_push_goes_as_msdp_when_on_as_gmcp_when_only_gmcp_else_refused(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway)
    push = {"module": "MSDP", "data": {"REPORT": ["HEALTH", "HEALTH_MAX"], "n": 3}}
    assert await phx.request(topic, "gmcp", push) == {"status": "error", "response": {"reason": "gmcp not enabled"}}
    conn.send(cmd(IAC, WILL, GMCP))
    await conn.wait_for(cmd(IAC, DO, GMCP))
    assert (await phx.request(topic, "gmcp", push))["status"] == "ok"
    await conn.wait_for(cmd(IAC, SB, GMCP) + b'MSDP {"REPORT":["HEALTH","HEALTH_MAX"],"n":3}' + cmd(IAC, SE))
    conn.send(cmd(IAC, WILL, MSDP))
    await conn.wait_for(cmd(IAC, DO, MSDP))
    # MSDP on: MSDP it is (a string may hold 0xFF in the game's encoding: doubled).
    assert (await phx.request(topic, "gmcp", push))["status"] == "ok"
    await conn.wait_for(msdp(VAR + b"REPORT" + VAL + AO + VAL + b"HEALTH" + VAL + b"HEALTH_MAX" + AC
                             + VAR + b"n" + VAL + b"3"))
    # Not an object: GMCP as ever.
    assert (await phx.request(topic, "gmcp", {"module": "MSDP", "data": "x"}))["status"] == "ok"
    await conn.wait_for(cmd(IAC, SB, GMCP) + b'MSDP "x"' + cmd(IAC, SE))
    # The game turns MSDP off: GMCP again.
    conn.send(cmd(IAC, WONT, MSDP))
    await conn.wait_for(cmd(IAC, DONT, MSDP))
    assert (await phx.request(topic, "gmcp", {"module": "MSDP", "data": {"SEND": "ROOM"}}))["status"] == "ok"
    await conn.wait_for(cmd(IAC, SB, GMCP) + b'MSDP {"SEND":"ROOM"}' + cmd(IAC, SE))
    # And MSDP from it is no event now.
    before = len(phx.events(topic, ("gmcp",)))
    conn.send(msdp(VAR + b"HEALTH" + VAL + b"1") + b"text\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "text\n"
    assert len(phx.events(topic, ("gmcp",))) == before  # events keep the game's order: none came


async def test_msdp_only_push_without_gmcp(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway, game_extra="    encoding: latin-1")
    conn.send(cmd(IAC, WILL, MSDP))
    await conn.wait_for(cmd(IAC, DO, MSDP))
    assert (await phx.request(topic, "gmcp", {"module": "MSDP", "data": {"SAY": "ÿé"}}))["status"] == "ok"
    await conn.wait_for(msdp(VAR + b"SAY" + VAL + b"\xff\xe9"))
    # Anything but an object, with GMCP off, has nowhere to go.
    assert await phx.request(topic, "gmcp", {"module": "MSDP", "data": ["x"]}) == {
        "status": "error", "response": {"reason": "gmcp not enabled"}}
    assert await phx.request(topic, "gmcp", {"module": "Char.Ping"}) == {
        "status": "error", "response": {"reason": "gmcp not enabled"}}


async def test_resume_after_a_gap_keeps_each_msdp_variable_and_no_old_sound(mud, gateway):
    """The replay buffer keeps the latest event of each state key past what it drops: MSDP is keyed
    by its variables (HEALTH and HEALTH_MAX arrive apart), Client.Media is no state."""
    phx, topic, conn, connect = await session(
        mud, gateway, extra="sessions: {replay_bytes: 400}",
        game_extra="    media_url: https://game.example/sounds/")
    conn.send(cmd(IAC, WILL, MSDP, IAC, WILL, 90))
    await conn.wait_for(cmd(IAC, DO, 90))
    conn.send(msdp(VAR + b"HEALTH_MAX" + VAL + b"120") + msdp(VAR + b"HEALTH" + VAL + b"90")
              + msdp(VAR + b"HEALTH" + VAL + b"80") + b"!!SOUND(old.wav)\r\n")
    for i in range(8):
        conn.send(b"filler line %d pushing the state events out of the replay buffer\r\n" % i)
        await phx.event(topic, "echo")
    phx2 = await connect()
    reply = await phx2.join(topic)
    assert reply["response"]["resumed"] is True and reply["response"]["gap"] is True, reply
    await phx2.echo_text(topic, lambda t: "filler line 7" in t)
    restored = [(f[4]["module"], f[4]["data"]) for f in phx2.events(topic, ("gmcp",))]
    assert restored == [("MSDP", {"HEALTH_MAX": "120"}), ("MSDP", {"HEALTH": "80"})], restored
