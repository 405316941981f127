"""The socket's frames (gateway/transport/frames.py): whatever the messages, a WebSocket reader
gets them back one frame each, compressed or not; whatever the browser's frames and however
its bytes are cut, the reader gets its messages back, and a frame that breaks RFC 6455 gets
the RFC's close code."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.transport.frames import (BINARY, CLOSE, CONTINUATION, DEFLATE_MIN_SIZE, DEFLATE_WBITS,
                                      MAX_FRAGMENTS, NO_STATUS, PING, TEXT, FrameEncoder, FrameError, FrameReader, close_frame,
                                      negotiate_deflate, unmask)

from tests.conftest import make_config, new_topic
from gateway.telnet.stream import IAC, SB, SE
from tests.fuzz.websocket_frames import check_reader, streams


def read_frames(data: bytes, wbits: int = 15) -> list[tuple[bool, bytes]]:
    """RFC 6455 / 7692 the long way: (compressed?, message) per frame, one inflater per stream."""
    inflater = zlib.decompressobj(-wbits)
    out, pos = [], 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        assert first & 0x80 and first & 0x0F == 1     # FIN, text
        assert not second & 0x80                       # a server never masks
        n, pos = second & 0x7F, pos + 2
        if n == 126:
            (n,), pos = struct.unpack("!H", data[pos:pos + 2]), pos + 2
        elif n == 127:
            (n,), pos = struct.unpack("!Q", data[pos:pos + 8]), pos + 8
        payload, pos = data[pos:pos + n], pos + n
        compressed = bool(first & 0x40)
        if compressed:
            payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
        out.append((compressed, payload))
    return out


messages = st.lists(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                              # long ones (2- and 8-byte lengths): a short piece repeated
                              st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=40),
                                        st.sampled_from([126, 1000, 1700, 3000]))), max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(messages, max_size=4),
       st.sampled_from([None, (15, False), (15, True), (10, False), (9, True)]))
def test_batches_read_back_as_the_messages(batches, deflate):
    enc = FrameEncoder(deflate)
    wire = b"".join(piece for batch in batches for piece in enc.encode(batch))
    got = read_frames(wire, deflate[0] if deflate else 15)
    assert [m for _, m in got] == [m for batch in batches for m in batch]
    for (compressed, _), m in zip(got, [m for batch in batches for m in batch]):
        assert compressed == (deflate is not None and len(m) >= DEFLATE_MIN_SIZE)


def test_every_length_reads_back_in_the_shortest_header():
    """The headers made once (frames._TEXT_HEADERS) and those packed per frame, across their
    boundaries: each message reads back as itself, and the length takes its shortest form."""
    lengths = list(range(0, 1100)) + [65535, 65536]
    msgs = [b"x" * n for n in lengths]
    pieces = FrameEncoder().encode(msgs)
    assert [m for _, m in read_frames(b"".join(pieces))] == msgs
    for n, header in zip(lengths, pieces[::2]):
        assert len(header) == (2 if n < 126 else 4 if n < 65536 else 10), n


def test_no_context_takeover_messages_inflate_on_their_own():
    enc = FrameEncoder((15, True))
    msg = b'{"message":"The orc hits you. The orc hits you. The orc hits you."}' * 3
    wire = b"".join(enc.encode([msg, msg]))
    for frame in (wire[:len(wire) // 2], wire[len(wire) // 2:]):
        assert read_frames(frame) == [(True, msg)]   # a fresh inflater each: nothing refers back


def test_negotiate_deflate():
    """RFC 7692: the first offer we can keep to; we always ask for client_no_context_takeover."""
    assert negotiate_deflate(None) is None
    assert negotiate_deflate("x-webkit-deflate-frame") is None
    # Chrome's and Firefox's offer, and the plainest one.
    assert negotiate_deflate("permessage-deflate; client_max_window_bits") \
        == ("permessage-deflate; client_no_context_takeover", (DEFLATE_WBITS, False))
    assert negotiate_deflate("permessage-deflate") \
        == ("permessage-deflate; client_no_context_takeover", (DEFLATE_WBITS, False))
    assert negotiate_deflate("permessage-deflate; server_no_context_takeover; server_max_window_bits=10") \
        == ("permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
            "server_max_window_bits=10", (10, True))
    assert negotiate_deflate('permessage-deflate; client_no_context_takeover; client_max_window_bits="10"') \
        == ("permessage-deflate; client_no_context_takeover", (DEFLATE_WBITS, False))
    # Declined: unknown, repeated or invalid parameters, a window zlib cannot keep to; the next
    # offer is taken.
    for bad in ("permessage-deflate; foo", "permessage-deflate; server_no_context_takeover; "
                "server_no_context_takeover", "permessage-deflate; server_max_window_bits=16",
                "permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; client_max_window_bits=7", "permessage-deflate; server_no_context_takeover=1"):
        assert negotiate_deflate(bad) is None, bad
        assert negotiate_deflate(bad + ", permessage-deflate")[1] == (DEFLATE_WBITS, False), bad


def test_each_browser_message_is_inflated_on_its_own():
    """We asked for client_no_context_takeover: a message compressed with the context of the
    one before (against that) does not inflate, and fails with 1007; each on its own does."""
    msg = b'["1","2","telnet:x","recv",{"message":"kill the orc with the sword of the north"}]'
    reader = FrameReader(1000, deflate=True)
    reader.feed(client_frame(TEXT, deflated(msg), rsv=0x40) * 2)
    assert read_all(reader) == [(TEXT, msg.decode())] * 2
    z = zlib.compressobj(wbits=-15)
    first = (z.compress(msg) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
    second = (z.compress(msg) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]  # refers back to the first
    assert len(second) < len(first) // 2
    reader.feed(client_frame(TEXT, first, rsv=0x40) + client_frame(TEXT, second, rsv=0x40))
    assert reader.next() == (TEXT, msg.decode())
    with pytest.raises(FrameError) as err:
        reader.next()
    assert err.value.code == 1007


def test_a_released_context_starts_afresh_and_the_stream_reads_on():
    """A quiet socket frees its deflate context; the browser's one inflater reads on."""
    enc = FrameEncoder((15, False))
    msg = b'{"message":"The orc hits you. The orc hits you. The orc hits you."}' * 3
    wire = b"".join(enc.encode([msg]))
    enc.release()
    wire += b"".join(enc.encode([msg, msg]))
    assert read_frames(wire) == [(True, msg)] * 3


async def test_deflate_browser_gets_every_event(mud, gateway):
    """A browser that offers permessage-deflate (as browsers do): text and GMCP, small and large."""
    _, connect = await gateway(make_config(mud.port))
    phx = await connect(compress=15)
    assert phx.ws.compress == 15
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    big = "".join(f"\x1b[1;3{i % 8}mline {i} of the long room description\x1b[0m\n" for i in range(3000))
    conn.send(b"hi\r\n" + big.replace("\n", "\r\n").encode()
              + bytes([IAC, SB, 201]) + b'Char.Vitals {"hp":7}' + bytes([IAC, SE]) + b"end\r\n")
    text = ""
    while "end\n" not in text:
        frame = await phx.expect(lambda f: f[3] in ("echo", "gmcp"))
        if frame[3] == "echo":
            text += frame[4]["message"]
        else:
            assert frame[4]["module"] == "Char.Vitals" and frame[4]["data"] == {"hp": 7}
    assert text == "hi\n" + big + "end\n"
    assert (await phx.request(topic, "recv", {"message": "look"}))["status"] == "ok"


# -- the browser's frames (FrameReader) ---------------------------------------------------------

def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, masked: bool = True,
                 width: int | None = None, length: int | None = None) -> bytes:
    """A frame as a browser sends it (RFC 6455 5.2): masked with a random key. ``width``
    (126, 127) forces that length encoding, shortest or not; ``length`` writes that length
    in the header whatever the payload's."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv | opcode
    bit = 0x80 if masked else 0
    if width is None:
        width = n if n < 126 else 126 if n < 65536 else 127
    head = (bytes((first, bit | n)) if width < 126 else struct.pack("!BBH", first, bit | 126, n) if width == 126
            else struct.pack("!BBQ", first, bit | 127, n))
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def deflated(message: bytes) -> bytes:
    """A message compressed as permessage-deflate sends it (the 4-byte tail dropped)."""
    z = zlib.compressobj(wbits=-15)
    return (z.compress(message) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]


def read_all(reader: FrameReader) -> list[tuple[int, object]]:
    out = []
    while (msg := reader.next()) is not None:
        out.append(msg)
    return out


def test_unmask_is_xor_with_the_key_repeated():
    for n in (0, 1, 3, 4, 5, 125, 1000):
        data, key = os.urandom(n), os.urandom(4)
        assert unmask(data, key) == bytes(b ^ key[i % 4] for i, b in enumerate(data))


browser_messages = st.lists(st.tuples(st.sampled_from([TEXT, BINARY, PING]),
                                      st.text(max_size=300).map(str.encode)
                                      | st.binary(min_size=126, max_size=70000).map(lambda b: b.hex().encode()),
                                      st.integers(1, 3), st.booleans()), max_size=6)


@settings(max_examples=150, deadline=None)
@given(browser_messages, st.data())
def test_any_chunking_of_the_browsers_frames_gives_the_same_messages(msgs, data):
    """Fragmented (pings between the fragments), compressed or not, cut anywhere: the same messages."""
    wire, want, deflate = b"", [], data.draw(st.booleans())
    for opcode, payload, pieces, compress in msgs:
        if opcode == PING:
            payload = payload[:125]
            wire += client_frame(PING, payload)
            want.append((PING, payload))
            continue
        compress = compress and deflate
        body = deflated(payload) if compress else payload
        cut = [len(body) * i // pieces for i in range(pieces + 1)]
        for i in range(pieces):
            wire += client_frame(opcode if i == 0 else CONTINUATION, body[cut[i]:cut[i + 1]],
                                 fin=i == pieces - 1, rsv=0x40 if compress and i == 0 else 0)
            if i == 0 and pieces > 1:
                wire += client_frame(PING, b"between")
                want.append((PING, b"between"))
        want.append((opcode, payload.decode() if opcode == TEXT else payload))
    # A ping between fragments comes out before the message it interrupts.
    reader = FrameReader(200_000, deflate=deflate)
    got = []
    points = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    for a, b in zip([0, *points], [*points, len(wire)]):
        reader.feed(wire[a:b])
        got += read_all(reader)
    assert got == want
    assert reader._buf == b"" and reader._parts is None


def test_close_frames():
    reader = FrameReader(100)
    reader.feed(client_frame(CLOSE, b"") + client_frame(CLOSE, struct.pack("!H", 4000) + "bye ☕".encode()))
    assert read_all(reader) == [(CLOSE, (NO_STATUS, "")), (CLOSE, (4000, "bye ☕"))]
    assert close_frame(1001, b"x" * 200) == bytes((0x88, 125)) + struct.pack("!H", 1001) + b"x" * 123


@pytest.mark.parametrize("wire, code", [
    (client_frame(TEXT, b"hi", masked=False), 1002),                       # unmasked
    (client_frame(TEXT, b"hi", rsv=0x40), 1002),                           # RSV1 without deflate
    (client_frame(TEXT, b"hi", rsv=0x20), 1002),                           # RSV2
    (client_frame(CONTINUATION, b"hi"), 1002),                              # no message to continue
    (client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"), 1002),  # a new message mid-way
    (client_frame(PING, b"x" * 126), 1002),                                 # long control frame
    (client_frame(PING, b"x", fin=False), 1002),                            # fragmented control frame
    (client_frame(0x3, b"x"), 1002),                                        # reserved opcode
    (client_frame(CLOSE, b"\x03"), 1002),                                   # one-byte close payload
    (client_frame(CLOSE, struct.pack("!H", 1005)), 1002),                   # a code no one may send
    (client_frame(CLOSE, struct.pack("!H", 1000) + b"\xff"), 1007),         # reason not UTF-8
    (client_frame(TEXT, b"\xc3("), 1007),                                   # text not UTF-8
    (client_frame(TEXT, b"x" * 101), 1009),                                 # over max_size
    (client_frame(TEXT, b"x" * 60, fin=False) + client_frame(CONTINUATION, b"x" * 60), 1009),
    # Lengths not in their shortest encoding (RFC 6455 5.2), refused at the header.
    (client_frame(TEXT, b"hi", width=126), 1002),                           # 126 for < 126
    (client_frame(TEXT, b"", width=126, length=125)[:4], 1002),
    (client_frame(TEXT, b"x" * 90, width=127), 1002),                       # 127 for < 65536
    (client_frame(TEXT, b"", width=127, length=65535)[:10], 1002),
    (client_frame(TEXT, b"", width=127, length=1 << 63)[:10], 1002),        # the top bit set
    (client_frame(TEXT, b"", width=127, length=(1 << 64) - 1)[:10], 1002),
    (client_frame(PING, b"x", width=126), 1002),
    (client_frame(0xB, b"x"), 1002),                                        # reserved control opcode
    # Too many fragments: refused at the header of the one too many, empty or not.
    (client_frame(TEXT, b"[", fin=False) + client_frame(CONTINUATION, b"", fin=False) * MAX_FRAGMENTS, 1008),
    (client_frame(TEXT, b"[", fin=False) + client_frame(CONTINUATION, b"", fin=False) * (MAX_FRAGMENTS - 1)
     + client_frame(CONTINUATION, b"]"), 1008),                             # the last one too
])
def test_broken_frames_fail_with_the_rfcs_close_code(wire, code):
    reader = FrameReader(100)
    reader.feed(wire)
    with pytest.raises(FrameError) as err:
        read_all(reader)
    assert err.value.code == code


def test_oversize_is_refused_at_the_header_and_after_inflating():
    reader = FrameReader(1000)
    reader.feed(client_frame(TEXT, b"x" * 2000)[:10])  # only the header: never buffered whole
    with pytest.raises(FrameError) as err:
        reader.next()
    assert err.value.code == 1009
    bomb = FrameReader(1000, deflate=True)
    bomb.feed(client_frame(TEXT, deflated(b"x" * 100_000), rsv=0x40))  # ~100 bytes on the wire
    with pytest.raises(FrameError) as err:
        bomb.next()
    assert err.value.code == 1009
    garbage = FrameReader(1000, deflate=True)
    garbage.feed(client_frame(TEXT, b"\xff\xff\xff\xff", rsv=0x40))
    with pytest.raises(FrameError) as err:
        garbage.next()
    assert err.value.code == 1007


def test_shortest_lengths_of_each_width_are_read():
    """The edges of RFC 6455 5.2's encodings: 125 in 7 bits, 126 and 65535 in 16, 65536 in 64."""
    reader = FrameReader(70_000)
    for n in (0, 125, 126, 65535, 65536):
        reader.feed(client_frame(BINARY, b"x" * n))
        assert reader.next() == (BINARY, b"x" * n)


def test_a_message_in_max_fragments_frames_is_read_and_its_size_bounds_the_whole():
    """MAX_FRAGMENTS frames (1-byte and empty ones too) make a message; the sizes of all its
    fragments count against max_size, and nothing but the fragments so far is held."""
    msg = b"a" * (MAX_FRAGMENTS - 10)
    wire = client_frame(TEXT, msg[:1], fin=False)
    wire += b"".join(client_frame(CONTINUATION, msg[i:i + 1], fin=False) for i in range(1, len(msg)))
    wire += b"".join(client_frame(CONTINUATION, b"", fin=False) for _ in range(8)) + client_frame(CONTINUATION, b"")
    reader = FrameReader(1000)
    reader.feed(wire)
    assert read_all(reader) == [(TEXT, msg.decode())]
    assert reader._parts is None and reader._size == 0 and not reader._buf
    reader = FrameReader(1000)
    reader.feed(client_frame(TEXT, b"x" * 600, fin=False) + client_frame(CONTINUATION, b"y" * 300, fin=False))
    assert read_all(reader) == [] and reader._size == 900 and len(reader._parts) == 2
    reader.feed(client_frame(CONTINUATION, b"z" * 101)[:8])  # its header is enough
    with pytest.raises(FrameError) as err:
        reader.next()
    assert err.value.code == 1009


def test_what_a_header_can_tell_is_refused_before_the_payload_comes():
    """A frame that is wrong by its header alone is refused at its header: no payload is
    waited for (nor held) first."""
    for first in (client_frame(TEXT, b"[", fin=False), b""):
        head = (client_frame(TEXT, b"x" * 1000) if first else client_frame(CONTINUATION, b"x" * 1000))[:8]
        reader = FrameReader(2000)
        reader.feed(first + head)
        with pytest.raises(FrameError) as err:
            read_all(reader)
        assert err.value.code == 1002


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_hostile_streams_get_the_models_messages_and_close_code_within_the_bound(data):
    """The frame-layer fuzz (tests/fuzz/websocket_frames.py) with CI's budget: any stream of
    good and broken frames, cut anywhere, gives the model's messages and its exact close code,
    and the reader never holds more than one frame and the fragments so far."""
    max_size = data.draw(st.sampled_from([1024, 1500, 4096]))
    deflated = data.draw(st.booleans())
    frames = data.draw(streams(max_size, deflated))
    check_reader(frames, max_size, deflated, data.draw(st.lists(st.integers(0, 1 << 20), max_size=10)))
