"""The WebSocket connection's state machine (transport/connection.py), sans-I/O: bytes in, events
and bytes out, one ``state`` field; the socket over real TCP is tests/test_websocket_connection.py."""

from __future__ import annotations

import struct

import pytest

from gateway.transport.connection import DROPPED, Connection, State
from gateway.transport.frames import BINARY, CLOSE, NO_STATUS, PING, PONG, TEXT, FrameError
from tests.test_frames import client_frame


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def opened() -> Connection:
    conn = Connection(1000)
    conn.start()
    return conn


def test_bytes_before_the_101_wait_for_it():
    conn = Connection(1000)
    conn.receive_data(client_frame(TEXT, b"early"))
    assert conn.state is State.CONNECTING
    assert conn.next_event() is None  # the 101 is not written yet
    conn.start()
    assert conn.state is State.OPEN
    assert conn.next_event() == (TEXT, "early")
    assert conn.next_event() is None


def test_messages_pings_and_pongs():
    conn = opened()
    conn.receive_data(client_frame(PING, b"p") + client_frame(PONG, b"x") + client_frame(BINARY, b"\x00\xff"))
    assert conn.next_event() == (PING, b"p")
    assert conn.next_event() == (PONG, b"x")  # unasked: the caller drops it, counting it as work
    assert conn.next_event() == (BINARY, b"\x00\xff")
    assert conn.pong(b"p") == b"\x8a\x01p"


def test_peer_closes_first_and_is_answered_with_its_code():
    conn = opened()
    conn.receive_data(client_frame(CLOSE, close_payload(1001, b"bye")) + client_frame(TEXT, b"after"))
    assert conn.next_event() == (CLOSE, 1001)
    assert conn.state is State.REMOTE_CLOSING
    assert conn.next_event() is None  # nothing after a close frame
    assert conn.close(1001) == b"\x88\x02\x03\xe9"
    assert conn.state is State.CLOSED
    assert conn.close(1000) == b""  # one close frame at most
    assert conn.send([b"x"]) == []


def test_a_close_frame_without_a_code():
    conn = opened()
    conn.receive_data(client_frame(CLOSE, b""))
    assert conn.next_event() == (CLOSE, NO_STATUS)


def test_we_close_first_then_only_the_peers_close_frame_counts():
    conn = opened()
    frame = conn.close(1000, b"done")
    assert frame == b"\x88\x06\x03\xe8done"
    assert conn.state is State.LOCAL_CLOSING and conn.closed_for_sending
    assert conn.send([b"late"]) == []  # nothing is written after our close frame
    assert conn.close(1000) == b""
    conn.receive_data(client_frame(TEXT, b"in flight") + client_frame(PING, b""))
    # Dropped: the close handshake is under way. One frame a call, as in OPEN, so that the
    # caller's bound on events a turn bounds the work a flooding peer gets (issue 17's soak).
    assert conn.next_event() is DROPPED
    assert conn.next_event() is DROPPED
    assert conn.next_event() is None
    conn.receive_data(client_frame(CLOSE, close_payload(1000)))
    assert conn.next_event() == (CLOSE, 1000)
    assert conn.state is State.CLOSED
    assert conn.next_event() is None


@pytest.mark.parametrize("frame, code", [
    (client_frame(TEXT, b"x", masked=False), 1002),
    (client_frame(TEXT, b"\xff\xfe"), 1007),
    (client_frame(TEXT, b"x" * 1001), 1009),
    (client_frame(TEXT, b"x", width=126), 1002),
])
def test_a_protocol_error_ends_the_events_and_our_close_carries_its_code(frame: bytes, code: int):
    conn = opened()
    conn.receive_data(frame + client_frame(TEXT, b"after"))
    with pytest.raises(FrameError) as caught:
        conn.next_event()
    assert caught.value.code == code
    assert conn.state is State.REMOTE_CLOSING
    assert conn.next_event() is None
    assert conn.close(code) == b"\x88\x02" + struct.pack("!H", code)
    assert conn.state is State.CLOSED


def test_a_protocol_error_while_closing_closes():
    conn = opened()
    conn.close(1000)
    conn.receive_data(client_frame(TEXT, b"x", masked=False))
    with pytest.raises(FrameError):
        conn.next_event()
    assert conn.state is State.CLOSED
    assert conn.close(1002) == b""  # ours is out already


def test_a_lost_transport_closes_everything():
    conn = opened()
    conn.receive_data(client_frame(TEXT, b"x"))
    conn.fail()
    assert conn.state is State.CLOSED
    assert conn.next_event() is None
    assert conn.close(1000) == b"" and conn.send([b"x"]) == []


def test_deflate_is_what_the_101_agreed():
    conn = Connection(1000)
    conn.start((15, False))
    assert conn.reader.deflate and conn.encoder.deflate
    pieces = conn.send([b"a" * 200])
    assert pieces[0][0] == 0xC1  # FIN + RSV1 + text: compressed
    assert conn.release() > 0 and conn.release() == 0
