"""Fuzz targets (hypothesis) for the long run outside CI: ``./dev fuzz [SECONDS]``.

Five targets, each a plain hypothesis test that :mod:`tests.fuzz.run` calls
again and again (fresh random examples each round) until its time is spent:

* ``telnet_stream``: any bytes from a game, cut into any reads, into
  :class:`gateway.telnet.stream.TelnetStream` (with and without MCCP2
  accepted, in several encodings): random IAC, SB without SE, nested IAC SB,
  subnegotiations around the 1 MiB limit, GMCP with broken or deeply nested
  JSON, invalid UTF-8, MCCP2 streams that are valid, truncated, corrupted or
  bombs. No exception escapes, every event is well formed, and what the
  stream holds back stays within its limits after every read.
* ``subnegotiations``: MSSP tables and CHARSET REQUEST bodies, random and
  hostile (NUL bytes, non-ASCII names), through the pure readers the
  negotiation uses (``gateway/telnet/subnegotiation.py``, ``is_utf8``).
* ``phoenix_serializer``: any text or bytes as a browser frame into both
  serializers: ``decode`` returns a message or raises ``MalformedMessage``
  (nothing else); a decoded message encodes and decodes back to itself;
  replies always encode.
* ``websocket_frames``: hostile WebSocket frame streams
  (:mod:`tests.fuzz.websocket_frames`), cut into any reads, into a
  ``FrameReader``: the model's messages and exact close code, and what the
  reader holds (and allocates, by tracemalloc) within its bound.
* ``websocket_socket``: the same streams over a real socket to a real gateway
  (``tests/test_fuzz_socket.py``), on asyncio and uvloop: replies, pongs, the
  exact close code, the socket's memory within its bound.

The files are not named ``test_*.py``, so the normal suite does not run them.
"""

from __future__ import annotations

import zlib

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.telnet.stream import (
    INFLATE_STEP,
    MAX_ESCAPE,
    MAX_PENDING_LINE,
    MAX_SUBNEGOTIATION,
    CompressionError,
    EchoMode,
    Gmcp,
    Lines,
    Negotiation,
    Prompt,
    TelnetStream,
    Text,
)
from gateway.telnet.client import is_utf8
from gateway.telnet.msdp import decode_msdp
from gateway.telnet.subnegotiation import MAX_MSSP_VARIABLES, charset_offers, decode_mssp
from gateway.jsonstring import escape_utf8
from gateway.transport.serializer import MalformedMessage, Message, V1Serializer, V2Serializer
from tests.fuzz.websocket_frames import check_reader, ended_streams, streams
from tests.test_fuzz_socket import socket_example

IAC, DONT, DO, WONT, WILL, SB, GA, NOP, SE, EOR = 255, 254, 253, 252, 251, 250, 249, 241, 240, 239
OPTIONS = [0, 1, 3, 24, 25, 31, 39, 42, 69, 70, 86, 90, 91, 201, 255]

#: Examples per hypothesis call; the runner repeats calls until its budget is spent.
BATCH = 200
FUZZ_SETTINGS = settings(max_examples=BATCH, deadline=None, database=None, derandomize=False,
                         suppress_health_check=list(HealthCheck), print_blob=True)

counts = {"telnet_stream": 0, "subnegotiations": 0, "phoenix_serializer": 0, "websocket_frames": 0,
          "websocket_socket": 0}

# -- telnet ------------------------------------------------------------------------

option = st.sampled_from(OPTIONS) | st.integers(0, 255)
small = st.binary(max_size=48)
json_text = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
).map(msgspec.json.encode)


@st.composite
def huge_sb(draw) -> bytes:
    """A subnegotiation around the 1 MiB limit, maybe with escaped IACs and maybe without its SE."""
    size = draw(st.sampled_from([MAX_SUBNEGOTIATION - 3, MAX_SUBNEGOTIATION, MAX_SUBNEGOTIATION + 1,
                                 MAX_SUBNEGOTIATION + 5000, 2 * MAX_SUBNEGOTIATION]))
    filler = draw(st.sampled_from([b"x", b"\xff\xff", b"ab\xff\xffc", b"\xff"]))
    body = (filler * (size // len(filler) + 1))[:size]
    end = draw(st.sampled_from([bytes([IAC, SE]), b"", bytes([SE]), bytes([IAC, IAC, SE])]))
    return bytes([IAC, SB, draw(option)]) + body + end


def _compressed(payload: bytes, how: str) -> bytes:
    z = zlib.compressobj()
    data = z.compress(payload)
    if how == "finish":
        return data + z.flush(zlib.Z_FINISH)
    data += z.flush(zlib.Z_SYNC_FLUSH)
    if how == "truncated":
        return data[: max(1, len(data) // 2)]
    if how == "corrupt":
        cut = len(data) // 2
        return data[:cut] + bytes([data[cut] ^ 0x5A]) + data[cut + 1:] + b"\x00garbage"
    return data


@st.composite
def mccp(draw) -> bytes:
    """IAC SB MCCP2 IAC SE, then a zlib stream: good, ended, truncated, corrupt or a bomb."""
    how = draw(st.sampled_from(["sync", "finish", "truncated", "corrupt", "bomb", "raw"]))
    if how == "bomb":
        payload = draw(st.sampled_from([b"a", b"\r\n", b"\xff\xfa\xc9", b"\x1b["])) * \
            draw(st.sampled_from([INFLATE_STEP + 1, 3 * INFLATE_STEP, 128 * INFLATE_STEP + 1]))
        how = "sync"
    elif how == "raw":
        return bytes([IAC, SB, 86, IAC, SE]) + draw(small)
    else:
        payload = b"".join(draw(st.lists(piece_plain, max_size=8)))
    return bytes([IAC, SB, 86, IAC, SE]) + _compressed(payload, how)


piece_plain = st.one_of(
    small,
    st.text(max_size=16).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\r\n", b"\n\r", b"\r", b"\x00", b"\x1b[1;31m", b"\x1b[", b"\x1b]0;t\x07", b"\x1b]8;;",
                     b"\xff", b"\xff\xff", b"\xc3", b"\xe2\x98", b"\xf0\x9f\x98",
                     b"!!SOUND(a.wav V=5)", b"!!MUSIC(Off)", b"!!", b"!"]),  # MSP triggers, whole and cut
    st.lists(st.sampled_from([b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06", b"HP", b"\xff\xff"]),
             max_size=12).map(lambda b: bytes([IAC, SB, 69]) + b"".join(b) + bytes([IAC, SE])),  # MSDP
    st.tuples(st.sampled_from([WILL, WONT, DO, DONT]), option).map(lambda t: bytes([IAC, *t])),
    st.sampled_from([GA, EOR, NOP, SE, 200, 0, 246]).map(lambda c: bytes([IAC, c])),
    st.tuples(option, small).map(lambda t: bytes([IAC, SB, t[0]]) + t[1]),                    # SB, no SE
    st.tuples(option, small).map(lambda t: bytes([IAC, SB, t[0]]) + t[1] + bytes([IAC, SE])),
    st.tuples(option, option, small).map(                                                     # nested
        lambda t: bytes([IAC, SB, t[0], IAC, SB, t[1]]) + t[2] + bytes([IAC, SE, IAC, SE])),
    st.tuples(st.text(max_size=12), json_text | small | st.just(b"[" * 3000)).map(
        lambda t: bytes([IAC, SB, 201]) + t[0].encode("utf-8", "surrogatepass") + b" " + t[1] + bytes([IAC, SE])),
)
piece = st.one_of(piece_plain, piece_plain, piece_plain, mccp(), huge_sb())


def _check_event(ev) -> None:
    if type(ev) in (Text, Prompt):
        assert isinstance(ev.message, str)
        assert "\r" not in ev.message and "\x00" not in ev.message, ev
    elif type(ev) is Lines:  # the browser's JSON, made from the bytes, is the decoded text's
        text = ev.text().message
        assert text.endswith("\n") and escape_utf8(ev.data) == msgspec.json.encode(text), ev
    elif type(ev) is Gmcp:
        assert isinstance(ev.module, str)
        msgspec.json.encode(ev.data)  # what the browser gets must encode
    elif type(ev) is EchoMode:
        assert isinstance(ev.echo, bool)
    elif type(ev) is Negotiation:
        assert ev.raw[:1] == b"\xff" and len(ev.raw) <= MAX_SUBNEGOTIATION + 2, ev.raw[:16]
    else:
        assert type(ev) is CompressionError, ev


def _check_bounded(s: TelnetStream, read: int) -> None:
    assert len(s._carry) <= MAX_SUBNEGOTIATION + 3, len(s._carry)
    assert len(s._backlog) <= read, len(s._backlog)  # the rest of this read, never more
    assert len(s._text) <= MAX_PENDING_LINE + MAX_ESCAPE, len(s._text)


@FUZZ_SETTINGS
@given(
    pieces=st.lists(piece, max_size=12),
    cuts=st.lists(st.integers(0, 3 * MAX_SUBNEGOTIATION), max_size=12),
    encoding=st.sampled_from(["utf-8", "latin-1", "cp437", "gbk", "big5"]),
    inflating=st.booleans(),
    switch=st.sampled_from([None, "utf-8", "latin-1"]),
    bytes_lines=st.booleans(),
    msdp_msp=st.booleans(),
)
def telnet_stream(pieces, cuts, encoding, inflating, switch, bytes_lines, msdp_msp):
    counts["telnet_stream"] += 1
    wire = b"".join(pieces)
    points = sorted({c % (len(wire) + 1) for c in cuts})
    s = TelnetStream(encoding, flush_after=0.1, bytes_lines=bytes_lines)
    s.inflating = inflating
    if msdp_msp:  # both on: MSDP subnegotiations and MSP trigger lines become Gmcp
        s.msdp, s.media_url = True, "https://game.example/sounds/"
    now = 0.0
    failed = False
    for n, (a, b) in enumerate(zip([0] + points, points + [len(wire)])):
        if n == 2 and switch:
            s.set_encoding(switch)  # CHARSET agreed mid-stream
        events = s.feed(wire[a:b], now)
        while True:  # the read, then each step of its backlog (the gateway: one a turn of the loop)
            out = 0
            for ev in events:
                _check_event(ev)
                if type(ev) in (Text, Prompt):
                    out += len(ev.message)
                elif type(ev) is Lines:
                    out += len(ev.data)  # bytes: at least as many as characters
                if type(ev) is CompressionError:
                    assert inflating and not failed
                    failed = True
            # a call never gives more than the inflate step, the read's own bytes (plain before
            # and after a compressed stream) and what was held back
            assert out <= INFLATE_STEP + MAX_PENDING_LINE + MAX_ESCAPE + 2 * (b - a), out
            _check_bounded(s, b - a)
            if not s.backlog:
                break
            events = s.resume(now)
        now += 0.05
        for ev in s.poll(now + 1.0):
            _check_event(ev)
    if failed:
        assert s.feed(b"after\r\n", now) == []  # a failed stream stays failed, quietly
    for ev in s.finish():
        _check_event(ev)


# -- subnegotiation payloads the gateway reads itself (MSSP, CHARSET REQUEST) -------

name_bytes = st.binary(max_size=12) | st.sampled_from(
    [b"UTF-8", b"utf8", b"UTF-8\x80", b"utf\x00-8", b"\x00", b"caf\xc3\xa9", b"[TTABLE]", b"KOI8-R"])
mssp_body = st.lists(st.tuples(name_bytes, st.lists(name_bytes, max_size=3)), max_size=20).map(
    lambda entries: b"".join(b"\x01" + k + b"".join(b"\x02" + v for v in vs) for k, vs in entries))
charset_body = st.tuples(st.sampled_from([b"", b"[TTABLE]\x01", b"[TTABLE]"]), st.binary(max_size=1),
                         st.lists(name_bytes, max_size=8)).map(lambda t: t[0] + t[1] + t[1].join(t[2]))


@FUZZ_SETTINGS
@given(body=st.binary(max_size=400) | mssp_body | charset_body,
       encoding=st.sampled_from(["utf-8", "latin-1", "cp437", "gbk", "big5"]))
def subnegotiations(body, encoding):
    counts["subnegotiations"] += 1
    table = decode_mssp(body, encoding)
    assert len(table) <= MAX_MSSP_VARIABLES
    for key, value in table.items():
        assert isinstance(key, str)
        assert isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    msgspec.json.encode(table)  # /api/games serves it
    msdp = decode_msdp(body, encoding)  # an object of strings, lists and objects, or None
    assert msdp is None or isinstance(msdp, dict)
    msgspec.json.encode(msdp)
    # CHARSET REQUEST: what GameClient._charset_request does with each offer never raises,
    # and an accepted name can be sent back.
    for offer in charset_offers(body):
        name = offer.decode("ascii", "replace").strip()
        if name.isascii() and is_utf8(name):
            name.encode("ascii")


# -- Phoenix -----------------------------------------------------------------------

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), max_size=6), inner, max_size=5),
    max_leaves=20,
)
ref = st.none() | st.integers() | st.text(max_size=6) | json_value
text_no_surrogates = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@st.composite
def frame(draw):
    kind = draw(st.sampled_from(["v2", "v1", "json", "text", "bytes", "deep", "mangled"]))
    if kind == "v2":
        value = draw(st.lists(ref, min_size=0, max_size=7))
    elif kind == "v1":
        value = draw(st.dictionaries(st.sampled_from(["topic", "event", "payload", "ref", "join_ref", "x"]),
                                     ref, max_size=6))
    elif kind == "json":
        value = draw(json_value)
    elif kind == "text":
        return draw(text_no_surrogates)  # aiohttp hands over valid UTF-8 text only
    elif kind == "bytes":
        return draw(st.binary(max_size=200))
    elif kind == "deep":
        depth = draw(st.integers(1, 70000))
        opener = draw(st.sampled_from(["[", '{"a":', '[null,"1","t","e",']))
        return opener * depth + draw(st.sampled_from(["", "]" * depth, "1"]))
    else:
        good = msgspec.json.encode(draw(st.lists(ref, min_size=5, max_size=5)))
        at = draw(st.integers(0, len(good)))
        return good[:at] + draw(st.binary(max_size=4)) + good[at:]
    data = msgspec.json.encode(value)
    return data.decode() if draw(st.booleans()) else data


@FUZZ_SETTINGS
@given(frame=frame())
def phoenix_serializer(frame):
    counts["phoenix_serializer"] += 1
    for s in (V2Serializer(), V1Serializer()):
        try:
            msg = s.decode(frame)
        except MalformedMessage as exc:
            assert isinstance(exc.reason, str)
            assert exc.ref is None or isinstance(exc.ref, (str, int))
            s.error(exc.join_ref, exc.ref, exc.topic or "phoenix", exc.reason)  # the answer encodes
            continue
        assert isinstance(msg, Message) and isinstance(msg.topic, str) and isinstance(msg.event, str)
        again = s.decode(s.encode(msg.join_ref, msg.ref, msg.topic, msg.event, msg.payload))
        assert again == msg
        s.reply(msg.join_ref, msg.ref, msg.topic, "ok", msg.payload)


# -- WebSocket frames --------------------------------------------------------------

@FUZZ_SETTINGS
@given(data=st.data())
def websocket_frames(data):
    counts["websocket_frames"] += 1
    max_size = data.draw(st.sampled_from([1024, 1500, 4096, 65536]))
    deflated = data.draw(st.booleans())
    frames = data.draw(streams(max_size, deflated) | ended_streams(max_size, deflated))
    check_reader(frames, max_size, deflated, data.draw(st.lists(st.integers(0, 1 << 20), max_size=20)))


@FUZZ_SETTINGS
@given(data=st.data())
def websocket_socket(data):
    counts["websocket_socket"] += 1
    socket_example(data)


TARGETS = {"telnet_stream": telnet_stream, "subnegotiations": subnegotiations,
           "phoenix_serializer": phoenix_serializer, "websocket_frames": websocket_frames,
           "websocket_socket": websocket_socket}
