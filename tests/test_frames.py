"""The socket's frame writer (gateway/transport/frames.py): whatever the messages, a WebSocket
reader gets them back one frame each, compressed or not."""

from __future__ import annotations

import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.transport.frames import DEFLATE_MIN_SIZE, FrameEncoder, parse_deflate

from tests.conftest import make_config, new_topic
from gateway.telnet.stream import IAC, SB, SE


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
    wire = b"".join(enc.encode(batch) for batch in batches)
    got = read_frames(wire, deflate[0] if deflate else 15)
    assert [m for _, m in got] == [m for batch in batches for m in batch]
    for (compressed, _), m in zip(got, [m for batch in batches for m in batch]):
        assert compressed == (deflate is not None and len(m) >= DEFLATE_MIN_SIZE)


def test_no_context_takeover_messages_inflate_on_their_own():
    enc = FrameEncoder((15, True))
    msg = b'{"message":"The orc hits you. The orc hits you. The orc hits you."}' * 3
    wire = enc.encode([msg, msg])
    for frame in (wire[:len(wire) // 2], wire[len(wire) // 2:]):
        assert read_frames(frame) == [(True, msg)]   # a fresh inflater each: nothing refers back


def test_parse_deflate():
    assert parse_deflate(None) is None
    assert parse_deflate("x-webkit-deflate-frame") is None
    assert parse_deflate("permessage-deflate") == (15, False)
    assert parse_deflate("permessage-deflate; server_no_context_takeover; server_max_window_bits=10") \
        == (10, True)


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
