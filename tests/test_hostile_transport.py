"""A hostile client's socket against the transport (routes.py, transport/, nesting.py), over
real sockets: what the other transport tests (test_frames.py, test_frame_bounds.py,
test_websocket_connection.py, test_fuzz_socket.py) do not already try."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from tests.conftest import EVENTUALLY
from tests.test_websocket_connection import UPGRADE, RawWs, start
from gateway.transport.frames import TEXT

#: The frames' size: a max_frame_bytes three times the default's, so that what these frames
#: cost before their fix (quadratic: 20 s for 64 KB here, about 9 times that for 192 KB) is
#: far past the tests' ceiling on any machine; after it, a few milliseconds.
SIZE = 3 * 65536
#: A V2 frame with a ref whose payload nests 101 levels, then opens a string that never ends:
#: a quote and escaped quotes to the end of the frame.
UNENDED_STRING = '[null,"1","phoenix","heartbeat",' + "[" * 101 + '"'
UNENDED_STRING += '\\"' * ((SIZE - len(UNENDED_STRING)) // 2)
#: A V1-shaped frame (ref before its payload, more members after it, as phoenix.js writes V1)
#: whose payload nests 101 levels and is `,"a":1` members to the end of the frame.
MANY_MEMBERS_HEAD = '{"topic":"phoenix","event":"heartbeat","ref":"1","payload":' + "[" * 101 + "0"
MANY_MEMBERS_TAIL = "]" * 101 + ',"join_ref":null}'
MANY_MEMBERS = (MANY_MEMBERS_HEAD + ',"a":1' * ((SIZE - len(MANY_MEMBERS_HEAD) - len(MANY_MEMBERS_TAIL)) // 6)
                + MANY_MEMBERS_TAIL)


@pytest.mark.parametrize("frame", [UNENDED_STRING, MANY_MEMBERS], ids=["unended string", "many members"])
async def test_a_too_deep_frame_that_is_costly_to_salvage_is_answered_and_the_loop_goes_on(mud, gateway, frame):
    """A frame nested too deeply to parse is read for its ref with regular expressions
    (nesting.py, serializer.py): these frames took one scan from each quote (each comma) to
    the end of the frame, 20 s for 64 KB (the default max_frame_bytes) of the one event loop
    every player shares. Now each is one scan: the error reply SPEC 4.1 asks for, and the
    socket goes on."""
    _, port = await start(mud, gateway, extra=f"limits: {{max_frame_bytes: {SIZE}}}")
    ws = await RawWs.open(port)
    ws.send(TEXT, frame.encode())
    ws.send_json([None, "2", "phoenix", "heartbeat", {}])
    assert await ws.message(lambda m: True) == [
        None, "1", "phoenix", "phx_reply", {"status": "error", "response": {"reason": "malformed message"}}]
    assert (await ws.message(lambda m: True))[1:] == ["2", "phoenix", "phx_reply", {"status": "ok", "response": {}}]
    await ws.close()



@pytest.mark.parametrize("bits", ["\u00b2", "\u0669", "\uff19"], ids=["superscript two", "arabic-indic nine",
                                                                    "fullwidth nine"])
@pytest.mark.parametrize("param", ["server_max_window_bits", "client_max_window_bits"])
async def test_a_window_bits_value_of_non_ascii_digits_declines_deflate_not_the_upgrade(mud, gateway, param, bits):
    """RFC 7692 7.1.2: a window bits value is 1*DIGIT (ASCII). str.isdigit takes "\u00b2" too,
    which int() then refused: the handler raised, and the upgrade was answered 500 with a
    traceback in the log (other Unicode digits were taken, and written back in the 101).
    Now such an offer is declined like any invalid one: the 101 without compression."""
    _, port = await start(mud, gateway)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = UPGRADE.format(key=base64.b64encode(os.urandom(16)).decode())
        writer.write(request.replace("\r\n\r\n", f"\r\nSec-WebSocket-Extensions: permessage-deflate; "
                                                     f"{param}={bits}\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EVENTUALLY)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"sec-websocket-extensions" not in head.lower(), head
        ws = RawWs(reader, writer)
        ws.send_json([None, "1", "phoenix", "heartbeat", {}])
        assert (await ws.message(lambda m: True))[1:] == ["1", "phoenix", "phx_reply", {"status": "ok", "response": {}}]
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)
