"""Game text bytes -> JSON in one pass (gateway/jsonstring.py, _jsonstring.c).

The C escaper is held to its definition (drop ``\\r`` and NUL, decode UTF-8 with
replacement, encode with msgspec) on any bytes, and a flood's ``echo`` payload made
from the bytes is byte for byte the one ``EchoPayload`` encodes from the decoded text.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import shutil
import subprocess
import sysconfig
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.channel import EchoPayload, event_payload, text_payload
from gateway.gametext import drop_cr_nul
from gateway.telnet.stream import Lines, Text
from gateway import jsonstring
from gateway.jsonstring import escape_utf8, escape_utf8_python

_encode = msgspec.json.Encoder().encode


def definition(data: bytes) -> bytes:
    return _encode(drop_cr_nul(data).decode("utf-8", "replace"))


def test_the_c_escaper_is_built():
    """`pip install` builds it where a C compiler is found (setup.py); the suite needs it,
    or the tests below would compare the Python definition with itself."""
    assert jsonstring.COMPILED, ("gateway/_jsonstring.c was not built: install a C compiler "
                                 "(Debian: apt-get install gcc) and run ./dev setup again")
    assert escape_utf8 is not escape_utf8_python


# Bytes that matter to an escaper: every control, quote and backslash, line ends, the
# bytes around each UTF-8 boundary (Unicode Table 3-7), and whole characters.
_PIECES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([bytes([b]) for b in (0, 9, 10, 13, 27, 31, 32, 34, 92, 127, 0x80, 0x8F, 0x90, 0x9F,
                                          0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED,
                                          0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF)]),
    st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\x1b[1;31m", b"\r\n", "é".encode(), "☕".encode(), "𝄞".encode(), b" " * 17,
                     b"plain text of a room, long enough to fill a block or two: "]),
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_PIECES, max_size=40))
def test_escape_matches_the_definition(pieces):
    data = b"".join(pieces)
    assert escape_utf8(data) == definition(data)


@pytest.fixture(scope="module")
def scalar_escape(tmp_path_factory):
    """The same C built without its SSE2 blocks: the loop machines without SSE2 (ARM) run."""
    cc = sysconfig.get_config_var("CC") or "cc"
    if shutil.which(cc.split()[0]) is None:
        pytest.skip(f"no C compiler ({cc})")
    source = Path(__file__).resolve().parent.parent / "gateway" / "_jsonstring.c"
    built = tmp_path_factory.mktemp("scalar") / "_jsonstring.so"
    subprocess.run([*cc.split(), "-shared", "-fPIC", "-O2", "-U__SSE2__", "-I", sysconfig.get_paths()["include"],
                    str(source), "-o", str(built)], check=True, capture_output=True)
    loader = importlib.machinery.ExtensionFileLoader("_jsonstring", str(built))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("_jsonstring", loader))
    loader.exec_module(module)
    return module.escape_utf8


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=40), st.binary(max_size=20), st.binary(max_size=20))
def test_escape_without_sse2_matches_the_definition(scalar_escape, pieces, head, tail):
    data = b"".join(pieces)
    assert scalar_escape(data, head, tail) == head + definition(data) + tail


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=200), st.binary(max_size=200), st.integers(0, 300))
def test_head_tail_and_memoryview(data, head, tail, cut):
    view = memoryview(data)[:cut]
    want = head + definition(bytes(view)) + tail
    assert escape_utf8(view, head, tail) == want
    assert escape_utf8_python(view, head, tail) == want
    assert escape_utf8(data, head) == head + definition(data)


@pytest.mark.parametrize("data, want", [
    (b"", b'""'),
    (b'\x1b[1;31m"red"\\\x1b[0m\r\n', b'"\\u001b[1;31m\\"red\\"\\\\\\u001b[0m\\n"'),
    (b"\x00\x01\x08\t\x0b\x0c\x1f\x7f", b'"\\u0001\\b\\t\\u000b\\f\\u001f\x7f"'),
    ("café ☕ 𝄞".encode(), '"café ☕ 𝄞"'.encode()),
    (b"\xe2\r\x98\x95", '"☕"'.encode()),                   # \r dropped first, inside a character
    (b"\xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80", '"\ufffd\ufffd\ufffd \ufffd\ufffd \ufffd\ufffd\ufffd\ufffd"'.encode()),
    (b"\xf0\x9f\x98 \xe2\x98", '"\ufffd \ufffd"'.encode()),  # cut short: one U+FFFD each
])
def test_escape_examples(data, want):
    assert escape_utf8(data) == want == definition(data)


def test_large_inputs_that_grow_past_the_first_guess():
    """Controls are 6 bytes each: the output buffer grows (a quarter more is the first guess)."""
    for data in (bytes(range(32)) * 5000, b"\x1b" * 100_000 + "☕".encode() * 1000, b"\xff" * 70_000):
        assert escape_utf8(data, b"[", b"]") == b"[" + definition(data) + b"]"


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=20), st.integers(0, 2**40),
       st.sampled_from(["2018-12-04T21:37:06.061238Z", "2026-11-27T23:59:59.000000Z"]))
def test_text_payload_is_the_echo_payload_of_the_decoded_text(pieces, seq, stamp):
    data = b"".join(pieces)
    text = drop_cr_nul(data).decode("utf-8", "replace")
    assert text_payload(data, seq, stamp) == _encode(EchoPayload(text, seq, stamp))
    name, payload = event_payload(Lines(data), seq, stamp)
    want_name, want = event_payload(Text(text), seq, stamp)
    assert (name, _encode(payload)) == (want_name, _encode(want))
