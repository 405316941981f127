"""Phoenix Channels wire format V1/V2 (gateway/transport/serializer.py): SPEC 4.1."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.transport.serializer import (
    MalformedMessage,
    Message,
    V1Serializer,
    V2Serializer,
    serializer_for,
)

TOPIC = "telnet:0b9e4a8c-3b6f-4a7e-9d2c-1f2e3d4c5b6a"


# -- selection ------------------------------------------------------------------


@pytest.mark.parametrize("vsn, cls", [
    ("2.0.0", V2Serializer),
    ("1.0.0", V1Serializer),
    (None, V1Serializer),
])
def test_serializer_for(vsn, cls):
    s = serializer_for(vsn)
    assert type(s) is cls
    assert s.vsn == ("2.0.0" if cls is V2Serializer else "1.0.0")


@pytest.mark.parametrize("vsn", ["3.0.0", "", "banana", "0.9"])
def test_serializer_for_unknown(vsn):
    assert serializer_for(vsn) is None


# -- V2 arrays --------------------------------------------------------------------


def test_v2_decode_join():
    frame = json.dumps(["1", "1", TOPIC, "phx_join", {"game": "g", "last_seq": 3}])
    assert V2Serializer().decode(frame) == Message("1", "1", TOPIC, "phx_join", {"game": "g", "last_seq": 3})


def test_v2_decode_bytes_and_nulls():
    frame = b'[null, "7", "phoenix", "heartbeat", {}]'
    assert V2Serializer().decode(frame) == Message(None, "7", "phoenix", "heartbeat", {})


@pytest.mark.parametrize("join_ref, ref", [("1", "2"), (1, 2), (None, None), ("a", 99), (0, "0")])
def test_v2_round_trip_refs_echoed_as_sent(join_ref, ref):
    s = V2Serializer()
    frame = s.encode(join_ref, ref, TOPIC, "recv", {"message": "look"})
    assert json.loads(frame) == [join_ref, ref, TOPIC, "recv", {"message": "look"}]
    assert s.decode(frame) == Message(join_ref, ref, TOPIC, "recv", {"message": "look"})


def test_v2_reply_and_error_shapes():
    s = V2Serializer()
    assert json.loads(s.reply("1", "5", TOPIC, "ok", {})) == [
        "1", "5", TOPIC, "phx_reply", {"status": "ok", "response": {}}]
    assert json.loads(s.error("1", 6, TOPIC, "unknown game")) == [
        "1", 6, TOPIC, "phx_reply", {"status": "error", "response": {"reason": "unknown game"}}]
    assert json.loads(s.error(None, "7", TOPIC, "game unavailable", detail="refused")) == [
        None, "7", TOPIC, "phx_reply",
        {"status": "error", "response": {"reason": "game unavailable", "detail": "refused"}}]


def test_v2_heartbeat_reply_matches_spec():
    s = V2Serializer()
    m = s.decode('[null, "12", "phoenix", "heartbeat", {}]')
    out = s.reply(m.join_ref, m.ref, m.topic, "ok", {})
    assert json.loads(out) == [None, "12", "phoenix", "phx_reply", {"status": "ok", "response": {}}]


def test_v2_unicode_payload_round_trip():
    s = V2Serializer()
    frame = s.encode(None, None, TOPIC, "echo", {"message": "café ☕ 𝄞\x1b[0m"})
    assert s.decode(frame).payload == {"message": "café ☕ 𝄞\x1b[0m"}


@pytest.mark.parametrize("frame, ref, topic, join_ref", [
    ('["1", "2", "t", "e"]', "2", "t", "1"),                      # wrong arity: too short
    ('["1", "2", "t", "e", {}, "extra"]', "2", "t", "1"),          # too long
    ('[null, "3", 5, "e", {}]', "3", None, None),                  # non-string topic
    ('[null, 4, "t", 5, {}]', 4, "t", None),                       # non-string event
    ('[null, 1.5, "t", "e", {}]', None, "t", None),                # ref of a wrong type
    ('[[1], {"x": 1}, "t", "e", {}]', None, "t", None),
    ('["1"]', None, None, "1"),
    ('[]', None, None, None),
    ('{"topic": "t", "event": "e", "ref": "9"}', "9", "t", None),  # a V1 object sent to V2
    ('"just a string"', None, None, None),
    ('42', None, None, None),
    ('null', None, None, None),
])
def test_v2_malformed_salvages_ref_and_topic(frame, ref, topic, join_ref):
    with pytest.raises(MalformedMessage) as info:
        V2Serializer().decode(frame)
    assert info.value.ref == ref
    assert info.value.topic == topic
    assert info.value.join_ref == join_ref
    assert info.value.reason == "malformed message"


@pytest.mark.parametrize("frame", ['["1", "2", "t"', "", "not json", b"\xff\xfe", '[null, "1", "t", "e", {}]]'])
def test_v2_invalid_json_has_no_ref(frame):
    with pytest.raises(MalformedMessage) as info:
        V2Serializer().decode(frame)
    assert info.value.ref is None
    assert info.value.topic is None
    assert info.value.reason == "invalid JSON"


# -- V1 objects -------------------------------------------------------------------------


def test_v1_decode_full():
    frame = json.dumps({"join_ref": "1", "ref": "2", "topic": TOPIC, "event": "phx_join", "payload": {"game": "g"}})
    assert V1Serializer().decode(frame) == Message("1", "2", TOPIC, "phx_join", {"game": "g"})


def test_v1_decode_defaults():
    m = V1Serializer().decode('{"topic": "phoenix", "event": "heartbeat"}')
    assert m == Message(None, None, "phoenix", "heartbeat", {})


def test_v1_decode_ignores_key_order_and_unknown_keys():
    m = V1Serializer().decode(b'{"payload": [], "event": "x", "extra": 1, "ref": 3, "topic": "t"}')
    assert m == Message(None, 3, "t", "x", [])


@pytest.mark.parametrize("join_ref, ref", [("1", "2"), (1, 2), (None, None), (None, "x")])
def test_v1_round_trip_refs_echoed_as_sent(join_ref, ref):
    s = V1Serializer()
    frame = s.encode(join_ref, ref, TOPIC, "echo", {"message": "hi", "seq": 1})
    assert json.loads(frame) == {"join_ref": join_ref, "ref": ref, "topic": TOPIC, "event": "echo",
                                 "payload": {"message": "hi", "seq": 1}}
    assert s.decode(frame) == Message(join_ref, ref, TOPIC, "echo", {"message": "hi", "seq": 1})


def test_v1_reply_shape():
    out = json.loads(V1Serializer().error("1", "2", TOPIC, "unmatched topic"))
    assert out == {"join_ref": "1", "ref": "2", "topic": TOPIC, "event": "phx_reply",
                   "payload": {"status": "error", "response": {"reason": "unmatched topic"}}}


@pytest.mark.parametrize("frame, ref, topic, join_ref", [
    ('{"event": "e", "ref": "5"}', "5", None, None),                            # no topic
    ('{"topic": "t", "ref": 6, "join_ref": "1"}', 6, "t", "1"),                  # no event
    ('{"topic": 7, "event": "e", "ref": "8"}', "8", None, None),                # non-string topic
    ('{"topic": "t", "event": "e", "ref": 1.5}', None, "t", None),              # bad ref type
    ('{"topic": "t", "event": "e", "ref": "1", "join_ref": [1]}', "1", "t", None),
    ('["1", "2", "t", "e", {}]', "2", "t", "1"),                                # a V2 array sent to V1
    ('[]', None, None, None),
    ('"x"', None, None, None),
])
def test_v1_malformed_salvages_ref_and_topic(frame, ref, topic, join_ref):
    with pytest.raises(MalformedMessage) as info:
        V1Serializer().decode(frame)
    assert (info.value.ref, info.value.topic, info.value.join_ref) == (ref, topic, join_ref)
    assert info.value.reason == "malformed message"


@pytest.mark.parametrize("frame", ['{"topic": "t"', "{", "", "nope"])
def test_v1_invalid_json_has_no_ref(frame):
    with pytest.raises(MalformedMessage) as info:
        V1Serializer().decode(frame)
    assert (info.value.ref, info.value.topic, info.value.reason) == (None, None, "invalid JSON")


def test_malformed_is_an_exception_with_reason():
    err = MalformedMessage("malformed message", "1", "t")
    assert str(err) == "malformed message"
    assert isinstance(err, Exception)


@pytest.mark.parametrize("cls", [V1Serializer, V2Serializer])
@pytest.mark.parametrize("frame, ref", [
    ("[" * 5000, None),                                                # deeper than any decoder goes
    ('[null, "5", "t", "e", ' + "[" * 5000 + "]" * 5000 + "]", "5"),   # a frame whose payload is
    ('{"topic": "t", "event": "e", "ref": "5", "payload": ' + '{"a":' * 5000 + "1" + "}" * 5001, "5"),
])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_too_deeply_nested_json_is_malformed_not_a_crash(cls, frame, ref, as_bytes):
    # msgspec raises RecursionError past Python's recursion limit: a 2 KB frame must not end
    # the socket's handler (nesting.py); the ref is still read when the frame has one of its shape.
    with pytest.raises(MalformedMessage) as err:
        cls().decode(frame.encode() if as_bytes else frame)
    assert err.value.ref == ref


@pytest.mark.parametrize("cls", [V1Serializer, V2Serializer])
@pytest.mark.parametrize("frame", [b'[null,null,null,null,"\x80"]', b'{"topic": "\xff", "event": "e"}'])
def test_invalid_utf8_in_a_bytes_frame_is_malformed(cls, frame):
    # Found by the fuzz run: msgspec raises UnicodeDecodeError for these, not DecodeError.
    with pytest.raises(MalformedMessage):
        cls().decode(frame)


# -- the push fast path: a cached head, then the payload -----------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=6), st.integers(-10**20, 10**20)),
       st.text(max_size=40), st.sampled_from(["echo", "prompt", "gmcp", "option", "disconnect", "é\"\\"]),
       st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                    max_leaves=8))
def test_push_head_plus_payload_is_the_encoded_message(join_ref, topic, event, payload):
    s = V2Serializer()
    raw = msgspec.json.encode(payload)
    head = s.push_head(join_ref, topic, event)
    assert head + raw + b"]" == s.encode(join_ref, None, topic, event, msgspec.Raw(raw))
    assert V1Serializer().push_head(join_ref, topic, event) is None
