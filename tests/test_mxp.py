"""MXP (SPEC 5): the parser behind the telnet stream, and its negotiation over a real socket."""

from __future__ import annotations

import asyncio
import re
import socket
from urllib.parse import unquote

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import __version__
from gateway.config import parse_config
from gateway.telnet import client as telnet
from gateway.telnet import mxp as mxp_module
from gateway.telnet.mxp import MAX_ELEMENTS, MAX_ENTITIES, MAX_OPEN_TAGS, MxpParser, MxpReply
from gateway.telnet.stream import Gmcp, Lines, Negotiation, Prompt, TelnetStream, Text, safe_end
from tests.conftest import until
from tests.fakemud import EVENTUALLY, FakeMud
from tests.test_telnet_client import Recorder, adapter

IAC, WILL, WONT, DO, DONT, SB, SE, GA = 255, 251, 252, 253, 254, 250, 240, 249
MXP = 91
MEDIA = "https://game.example/media/"
OSC8 = re.compile(r"\x1b\]8;;([^\x1b\x07]*)\x1b\\")


def stream(media_url: str | None = MEDIA, per_step: int | None = None) -> TelnetStream:
    s = TelnetStream(flush_after=0.1, bytes_lines=True)
    parser = MxpParser if per_step is None else \
        type("SteppedMxpParser", (MxpParser,), {"__slots__": (), "markup_per_step": per_step})
    s.mxp = parser("9.9", media_url)
    return s


def run(data: bytes, media_url: str | None = MEDIA, cuts: list[int] = (), per_step: int | None = None) -> list:
    """The events of ``data`` fed in pieces cut at ``cuts``, each read's backlog stepped through
    (``per_step``: the markup a step parses) as the adapter does (Lines as the Text they stand for)."""
    s = stream(media_url, per_step)
    events: list = []
    points = sorted({c % (len(data) + 1) for c in cuts})
    for a, b in zip([0, *points], [*points, len(data)]):
        if b > a:
            events += s.feed(data[a:b], 0.0)
            while s.backlog:
                events += s.resume(0.0)
    events += s.finish()
    return [e.text() if type(e) is Lines else e for e in events]


def text(data: bytes, **kw) -> str:
    return "".join(e.message for e in run(data, **kw) if type(e) in (Text, Prompt))


# -- modes, tags, styles -----------------------------------------------------------

def test_a_line_without_mxp_passes_through_untouched_as_bytes():
    s = stream()
    data = b"\x1b[1;31mHello\x1b[0m, world: 5 > 3\r\n"
    events = s.feed(data, 0.0)
    assert events == [Lines(data)]


def test_open_mode_styles_become_sgr_and_a_closing_tag_restores_the_state():
    assert text(b"<B>x</B>y\r\n") == "\x1b[1mx\x1b[0my\n"
    # the game's own SGR is part of the state a closing tag restores
    assert text(b"\x1b[31m<I>x</I>y\r\n") == "\x1b[31m\x1b[3mx\x1b[0m\x1b[31my\n"
    assert text(b"<COLOR fore=red back=#102030>x</COLOR>\r\n") == \
        "\x1b[38;2;255;0;0;48;2;16;32;48mx\x1b[0m\n"
    assert text(b"<FONT COLOR=navy FACE=Arial SIZE=9>x</FONT>\r\n") == "\x1b[38;2;0;0;128mx\x1b[0m\n"
    assert text(b"<H1>T</H1> <U>u</U> <S>s</S>\r\n") == "\x1b[1mT\x1b[0m \x1b[4mu\x1b[0m \x1b[9ms\x1b[0m\n"


def test_open_tags_unclosed_at_the_line_end_are_closed_there():
    assert text(b"<B>bold\r\nplain\r\n") == "\x1b[1mbold\x1b[0m\nplain\n"


def test_br_p_nobr_sbr():
    assert text(b"a<BR>b<SBR>c\r\n") == "a\nb c\n"
    assert text(b"<P>one\r\ntwo</P>\r\nthree\r\n") == "one two\nthree\n"
    assert text(b"a<NOBR>\r\nb\r\n") == "ab\n"


def test_secure_tags_in_open_mode_and_unknown_tags_stay_as_text():
    line = b"<SEND href='quit'>x</SEND> <A href='https://x.example'>y</A> <script>alert(1)</script> <IMAGE x.png>\r\n"
    assert text(line) == line.decode().replace("\r", "")
    # unknown tags stay even in secure mode
    assert text(b"\x1b[1z<blink>x</blink> <B>y</B>\r\n") == "<blink>x</blink> \x1b[1my\x1b[0m\n"


def test_a_lone_lt_and_an_unclosed_tag_are_text():
    assert text(b"5 < 6 and <B unclosed\r\n<B\r\n") == "5 < 6 and <B unclosed\n<B\n"
    long_tag = b"<B " + b"x" * 2000 + b">"
    assert text(long_tag + b"\r\n") == long_tag.decode() + "\n"


def test_line_modes_revert_at_the_line_end_and_locked_modes_stay():
    assert text(b"\x1b[1z<SEND>n</SEND>\r\n<SEND>n</SEND>\r\n") == \
        "\x1b]8;;send:n\x1b\\n\x1b]8;;\x1b\\\n<SEND>n</SEND>\n"
    assert text(b"\x1b[6z<SEND>n</SEND>\r\n<SEND>s</SEND>\r\n") == \
        "\x1b]8;;send:n\x1b\\n\x1b]8;;\x1b\\\n\x1b]8;;send:s\x1b\\s\x1b]8;;\x1b\\\n"
    # locked: nothing parsed, ESC[n z still taken
    assert text(b"\x1b[2z<B>x</B> &amp;\r\n<B>y</B>\r\n") == "<B>x</B> &amp;\n\x1b[1my\x1b[0m\n"
    assert text(b"\x1b[7z<B>x</B>\r\n<B>y\x1b[5z</B> <B>z</B>\r\n") == "<B>x</B>\n<B>y \x1b[1mz\x1b[0m\n"
    # 4: secure for the next tag only
    out = text(b"\x1b[4z<SEND>a</SEND> <SEND>b</SEND>\r\n")
    # the closing </SEND> arrives in open mode: judged there, it stays; the link ends at the line end
    assert out == "\x1b]8;;send:a%3C%2FSEND%3E%20%3CSEND%3Eb%3C%2FSEND%3E\x1b\\a</SEND> <SEND>b</SEND>\x1b]8;;\x1b\\\n"
    # other numbers and no number: an open line; a huge number never raises
    assert text(b"\x1b[1z\x1b[z<SEND>a</SEND>\x1b[99999999999999999999999z\r\n") == "<SEND>a</SEND>\n"


def test_reset_closes_tags_and_makes_open_the_default():
    assert text(b"\x1b[6z<B>x\x1b[3z<SEND>y</SEND>\r\n") == "\x1b[1mx\x1b[0m<SEND>y</SEND>\n"


# -- entities ---------------------------------------------------------------------------

def test_entities_are_decoded_in_open_and_secure_mode_and_unknown_ones_stay():
    assert text(b"&lt;b&gt; &amp; &quot;&apos; &eacute; &#65;&#x42; &#7;&#0;|&nosuch; & x\r\n") == \
        "<b> & \"' \u00e9 AB |&nosuch; & x\n"
    # a decoded < is text, never a tag
    assert text(b"\x1b[1z&lt;SEND&gt;x&lt;/SEND&gt;\r\n") == "<SEND>x</SEND>\n"
    # C1 controls (an 8-bit CSI or OSC) are dropped like C0
    assert text(b"&#155;&#157;&Tab;&NewLine;x\r\n") == "x\n"


def test_session_entities_and_var():
    out = text(b"\x1b[1z<!ENTITY hp '100'>HP &hp;\r\n\x1b[1z<VAR mp>50</VAR> &mp; \x1b[1z<!EN hp DELETE>&hp;\r\n")
    assert out == "HP 100\n50 50 &hp;\n"
    # defined only in secure mode
    assert text(b"<!ENTITY x 'y'>&x;\r\n") == "<!ENTITY x 'y'>&x;\n"


# -- custom elements ----------------------------------------------------------------------

def test_the_spec_s_other_names_and_definition_words_each_take_effect():
    """SPEC 5 clauses no test named: the open tags' other names (BOLD, STRONG, ITALIC, EM,
    UNDERLINE, STRIKEOUT, HIGH, H, H1-H6), ``&nbsp;``, ``ESC[0z``, ``<V>``; ``<!ELEMENT>``'s
    EMPTY, DELETE, FLAG and TAG (accepted and ignored), ``<!ATTLIST>`` (secure only); a line
    holding only MXP keeps its line end."""
    assert text(b"<BOLD>a</BOLD><STRONG>b</STRONG><ITALIC>c</ITALIC><EM>d</EM><UNDERLINE>e</UNDERLINE>"
                b"<STRIKEOUT>f</STRIKEOUT><HIGH>g</HIGH><H>h</H><H6>i</H6>\r\n") == "".join(
        f"\x1b[{code}m{c}\x1b[0m" for code, c in zip("113349111", "abcdefghi")) + "\n"
    assert text(b"a&nbsp;b\r\n") == "a\xa0b\n"
    assert text(b"\x1b[1z\x1b[0z<SEND>a</SEND>\r\n") == "<SEND>a</SEND>\n"
    assert text(b"\x1b[1z<V hp>42</V> &hp;\r\n") == "42 42\n"
    sec = b"\x1b[1z"
    assert text(sec + b"<!EL sep '<B>--</B>' EMPTY>\r\n" + sec + b"x<sep>y\r\n") == "\nx\x1b[1m--\x1b[0my\n"
    assert text(sec + b"<!EL hp '<B>' FLAG='Set hp' TAG=20>\r\n" + sec + b"<hp>5</hp>\r\n"
                + sec + b"<!EL hp DELETE>\r\n" + sec + b"<hp>5</hp>\r\n") == "\n\x1b[1m5\x1b[0m\n\n<hp>5</hp>\n"
    assert text(sec + b"<!EL hp '<C &col;>&max;'>\r\n" + sec + b"<!ATTLIST hp 'col=red max=9'>\r\n"
                + sec + b"<hp>5</hp> <hp blue 3>6</hp>\r\n") == \
        "\n\n\x1b[38;2;255;0;0m95\x1b[0m \x1b[38;2;0;0;255m36\x1b[0m\n"
    assert text(b"<!ATTLIST hp 'col=red'>\r\n") == "<!ATTLIST hp 'col=red'>\n"


def test_custom_elements_expand_with_attributes_and_text():
    out = text(b"\x1b[1z<!ELEMENT Ex '<SEND href=\"go &text;\">' ATT='x'>\x1b[1z<!EL RName '<B><COLOR &col;>' ATT='col=red'>\r\n"
               b"\x1b[1z<Ex>north</Ex> <RName>Hall</RName> <RName blue>Yard</RName>\r\n")
    assert out == ("\n\x1b]8;;send:go%20north\x1b\\north\x1b]8;;\x1b\\ "
                   "\x1b[1m\x1b[38;2;255;0;0mHall\x1b[0m "
                   "\x1b[1m\x1b[38;2;0;0;255mYard\x1b[0m\n")


def test_an_open_element_is_open_content_and_can_never_make_a_link():
    out = text(b"\x1b[1z<!EL lk '<SEND href=\"quit\">' OPEN>\x1b[1z<!EL st '<B>' OPEN>\r\n"
               b"<lk>x</lk> <st>y</st>\r\n\x1b[1z<lk>z</lk>\r\n")
    assert "\x1b]8" not in out
    assert out == "\n<SEND href=\"quit\">x <B>y\n<SEND href=\"quit\">z\n".replace("<B>y", "\x1b[1my\x1b[0m")


def test_definitions_are_bounded():
    defs = b"".join(b"\x1b[1z<!EL e%d '<B>'><!EN n%d 'v'>\r\n" % (i, i) for i in range(MAX_ELEMENTS + 20))
    s = stream()
    s.feed(defs, 0.0)
    assert len(s.mxp.elements) == MAX_ELEMENTS and "E0" in s.mxp.elements and "E300" not in s.mxp.elements
    assert len(s.mxp.entities) == MAX_ENTITIES and "n0" in s.mxp.entities
    # one over 1 KiB is ignored; the earlier value stays
    s.feed(b"\x1b[1z<!EN n0 '" + b"v" * 1100 + b"'>\r\n\x1b[1z<VAR n1>" + b"w" * 1100 + b"</VAR>\r\n", 0.0)
    assert s.mxp.entities["n0"] == "v" and s.mxp.entities["n1"] == "v"


def test_expansion_depth_and_size_are_bounded():
    # an element that uses itself: at most MAX_DEPTH levels, then it stays as text
    out = text(b"\x1b[1z<!EL r '<r>x'>\r\n\x1b[1z<r>\r\n")
    assert out.count("x") <= mxp_module.MAX_DEPTH and "<r>" in out
    # a large entity used on a short line: at most 8x the event's text
    big = b"y" * 1000
    out = text(b"\x1b[1z<!EN big '" + big + b"'>\r\n&big;&big;\r\n")
    assert out == "\n&big;&big;\n"


# -- links ---------------------------------------------------------------------------

def test_send_links_are_percent_encoded_with_hints_and_menus():
    assert text(b"\x1b[1z<SEND>look at \xc3\xa9</SEND>\r\n") == \
        "\x1b]8;;send:look%20at%20%C3%A9\x1b\\look at \u00e9\x1b]8;;\x1b\\\n"
    assert text(b"\x1b[1z<SEND PROMPT>say </SEND>\r\n") == "\x1b]8;;prompt:say%20\x1b\\say \x1b]8;;\x1b\\\n"
    out = text(b"\x1b[1z<SEND href=\"buy &text;|sell &text;\" hint=\"Trade|Buy it|Sell it\">sword</SEND>\r\n")
    uri = OSC8.search(out).group(1)
    command, _, config = uri.partition("?config=")
    assert command == "send:buy%20sword"
    assert msgspec.json.decode(unquote(config)) == {
        "tooltip": "Trade", "menu": [{"Buy it": "send:buy%20sword"}, {"Sell it": "send:sell%20sword"}]}
    # n commands, n hint parts: the parts label the menu, the whole hint is the tooltip
    out = text(b"\x1b[1z<SEND href=\"n|s\" hint=\"North|South\">go</SEND>\r\n")
    config = msgspec.json.decode(unquote(OSC8.search(out).group(1).partition("?config=")[2]))
    assert config == {"tooltip": "North|South", "menu": [{"North": "send:n"}, {"South": "send:s"}]}
    out = text(b"\x1b[1z<SEND \"look\" \"Look around\">l</SEND>\r\n")
    assert OSC8.search(out).group(1) == "send:look?config=" + mxp_module.percent('{"tooltip":"Look around"}')


def test_a_command_with_a_control_character_is_plain_text():
    assert text(b"\x1b[1z<SEND href='say a\tb'>x</SEND> <SEND href='a\x7fb'>y</SEND>\r\n") == "x y\n"
    assert text(b"\x1b[1z<SEND>a\tb</SEND>\r\n") == "a\tb\n"
    # a control character given as an entity is dropped (SPEC: a value below 32)
    assert text(b"\x1b[1z<SEND href='a&#9;b'>y</SEND>\r\n") == "\x1b]8;;send:ab\x1b\\y\x1b]8;;\x1b\\\n"


def test_a_links_only_http_or_https_and_only_from_secure_tags():
    assert text(b"\x1b[1z<A href='https://ex.example/a?b=1'>ok</A>\r\n") == \
        "\x1b]8;;https://ex.example/a?b=1\x1b\\ok\x1b]8;;\x1b\\\n"
    for bad in (b"javascript:alert(1)", b"data:text/html,x", b"send:quit", b"//ex.example", b"ftp://x"):
        assert text(b"\x1b[1z<A href='" + bad + b"'>t</A>\r\n") == "t\n"
    assert text(b"\x1b[1z<SEND href='https://ex.example'>t</SEND>\r\n") == \
        "\x1b]8;;send:https%3A%2F%2Fex.example\x1b\\t\x1b]8;;\x1b\\\n"


def test_a_link_still_open_at_the_end_of_an_event_is_closed_and_reopened():
    s = stream()
    first = s.feed(b"\x1b[1z<SEND>north", 0.0) + s.poll(1.0)
    second = s.feed(b" gate</SEND> x\r\n", 2.0)
    assert [type(e) for e in first] == [Text] and first[0].partial
    assert first[0].message == "\x1b]8;;send:north\x1b\\north\x1b]8;;\x1b\\"
    assert second[0].message == "\x1b]8;;send:north\x1b\\ gate\x1b]8;;\x1b\\ x\n"


def test_a_tag_unclosed_at_prompt_flush_is_text():
    s = stream()
    events = s.feed(b"\x1b[1z<SEND hr", 0.0) + s.poll(1.0) + s.feed(b"ef='x'>y\r\n", 2.0)
    assert "".join(e.message for e in events) == "<SEND href='x'>y\n"


def test_prompts_go_through_mxp():
    events = run(b"\x1b[1z<B>HP</B>: <SEND>rest</SEND>> " + bytes([IAC, GA]))
    assert events == [Prompt("\x1b[1mHP\x1b[0m: \x1b]8;;send:rest\x1b\\rest\x1b]8;;\x1b\\> ")]


# -- replies, sound, ignored tags -----------------------------------------------------

def test_version_and_support_are_answered_only_in_secure_mode():
    events = run(b"<VERSION>\r\n\x1b[1z<VERSION>\r\n\x1b[1z<SUPPORT send image send.href>\r\n")
    replies = [e.data for e in events if type(e) is MxpReply]
    assert replies == [b"\x1b[1z<VERSION MXP=1.0 CLIENT=mud-gateway VERSION=9.9>\r\n",
                       b"\x1b[1z<SUPPORTS +send -image +send.href>\r\n"]
    assert text(b"<VERSION>\r\n\x1b[1z<VERSION>\r\n") == "<VERSION>\n\n"
    events = run(b"\x1b[1z<SUPPORT>\r\n")
    (reply,) = [e.data for e in events if type(e) is MxpReply]
    assert b"+send" in reply and b"+a" in reply and b"image" not in reply


def test_sound_and_music_become_client_media_only_with_a_media_url():
    data = b"\x1b[1z<SOUND rain.wav V=40 L=2 P=70 T=weather>Rain.\r\n\x1b[1z<MUSIC theme.mid><SOUND Off>\r\n"
    events = run(data)
    media = [(e.module, e.data) for e in events if type(e) is Gmcp]
    assert media == [
        ("Client.Media.Play", {"name": "rain.wav", "url": MEDIA, "type": "sound", "volume": 40, "loops": 2,
                               "priority": 70, "tag": "weather", "key": "rain.wav"}),
        ("Client.Media.Play", {"name": "theme.mid", "url": MEDIA, "type": "music", "volume": 100, "loops": 1,
                               "priority": 50, "key": "theme.mid"}),
        ("Client.Media.Stop", {"type": "sound"})]
    assert text(data, media_url=None) == "Rain.\n\n"
    assert not [e for e in run(data, media_url=None) if type(e) is Gmcp]


def test_ignored_tags_are_removed_and_their_text_kept():
    out = text(b"\x1b[1z<IMAGE x.png><FRAME main><DEST main>in</DEST><GAUGE hp><USER><PASSWORD>"
               b"<SCRIPT>s</SCRIPT><HR><SMALL>m</SMALL><TT>t</TT><EXPIRE x><RELOCATE h 1><FILTER>\r\n")
    assert out == "insmt\n"
    assert text(b"\x1b[1z<IMAGE x.png>\r\n") == "\n"


# -- turning off -------------------------------------------------------------------------

def test_sb_mxp_resets_to_open_and_wont_stops_parsing():
    sb = bytes([IAC, SB, MXP, IAC, SE])
    assert text(b"\x1b[6z\r\n" + sb + b"<SEND>x</SEND>\r\n") == "\n<SEND>x</SEND>\n"
    s = stream()
    events = s.feed(b"<B>a</B>\r\n" + bytes([IAC, WONT, MXP]) + b"<B>b</B>\r\n", 0.0)
    texts = "".join(e.text().message if type(e) is Lines else e.message for e in events
                    if type(e) in (Text, Lines))
    assert texts == "\x1b[1ma\x1b[0m\n<B>b</B>\n" and s.mxp is None
    assert Negotiation(bytes([IAC, WONT, MXP])) in events


# -- properties ---------------------------------------------------------------------------

_PIECES = st.sampled_from([
    "<B>", "</B>", "<I>", "</I>", "<C red>", "</C>", "<COLOR #00ff00 blue>", "<FONT COLOR=x>", "<P>", "</P>",
    "<BR>", "<NOBR>", "<SBR>", "<SEND>", "</SEND>", "<SEND href='a|b' hint='h|1|2'>", "<SEND PROMPT>",
    "<A href='https://e.example/'>", "<A href='javascript:x'>", "</A>", "<VAR v>", "</VAR>", "&v;",
    "<!EL e '<B><SEND href=\"&text;\">' ATT='a'>", "<!EL o '<I>&a;' ATT='a=q' OPEN>", "<e>", "</e>",
    "<o 1>", "</o>", "<!EN x 'ent'>", "&x;", "&lt;", "&amp;", "&#65;", "&#1;", "&bogus;", "&", "<", ">",
    "<VERSION>", "<SUPPORT a b.c>", "<SOUND s.wav>", "<MUSIC Off>", "<IMAGE i>", "<script>", "\x1b[31m",
    "\x1b[0m", "\x1b[0z", "\x1b[1z", "\x1b[2z", "\x1b[3z", "\x1b[4z", "\x1b[5z", "\x1b[6z", "\x1b[7z",
    "\x1b[z", "\x1b[12z", "\r\n", "\n", "text ", "é☕", "\t", "'", '"', "<r>", "<!EL r '<r>x'>",
    "\xff\xfa[\xff\xf0", "\xff\xfc[", "\xff\xf9",
])


_TELNET = {"\xff\xfa[\xff\xf0", "\xff\xfc[", "\xff\xf9"}


def _bytes(pieces: list[str]) -> bytes:
    # the telnet command pieces as bytes (latin-1), the rest UTF-8 text
    return b"".join(p.encode("latin-1") if p in _TELNET else p.encode() for p in pieces)


def _outcome(events: list) -> tuple[str, list]:
    text_out = "".join(e.message for e in events if type(e) in (Text, Prompt))
    # links reopened at an event's start are the same link: join them back
    text_out = re.sub(r"\x1b\]8;;\x1b\\\x1b\]8;;[^\x1b]*\x1b\\", "", text_out)
    others = [e for e in events if type(e) not in (Text, Prompt)]
    return text_out, others


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=40), st.lists(st.integers(0, 10_000), max_size=10))
def test_any_chunking_gives_the_same_output(pieces, cuts):
    data = _bytes(pieces)
    assert _outcome(run(data, cuts=cuts)) == _outcome(run(data))


#: The game's own escape sequences with what looks like markup inside (a failed stop: no
#: tag runs past an ESC).
_ESCAPES_WITH_STOPS = st.sampled_from([
    "\x1b]8;;https://e.example/?a=1&b=2&c=3\x1b\\", "\x1b]8;;\x1b\\", "\x1b[&A", "\x1b]0;<a <b &c\x1b\\",
    "\x1b]0;<B>t &amp;\x07", "\x1b]0;<a <b &c\x07",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_PIECES, _ESCAPES_WITH_STOPS), max_size=40), st.lists(st.integers(0, 10_000), max_size=10),
       st.integers(1, 6))
def test_any_step_size_gives_the_same_output_and_cuts_no_escape(pieces, cuts, per_step):
    """The markup a step parses (MARKUP_PER_STEP) cuts the text where it is spent: the
    output is the same, and no event ends inside an escape sequence (SPEC 4.2)."""
    data = _bytes(pieces)
    events = run(data, cuts=cuts, per_step=per_step)
    assert _outcome(events) == _outcome(run(data))
    assert all(safe_end(e.message) == len(e.message) for e in events if type(e) in (Text, Prompt))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_PIECES, st.text(max_size=20)), max_size=60), st.lists(st.booleans(), max_size=10))
def test_no_input_raises_or_grows_past_bounds_and_every_event_has_balanced_safe_links(pieces, polls):
    s = stream()
    events: list = []
    data_len = 0
    for i, piece in enumerate(pieces):
        data = _bytes([piece])
        data_len += len(data)
        events += s.feed(data, float(i))
        if i < len(polls) and polls[i]:
            events += s.poll(float(i) + 1)
    events += s.finish()
    parser = s.mxp
    if parser is not None:
        assert len(parser.entities) <= MAX_ENTITIES and len(parser.elements) <= MAX_ELEMENTS
        assert all(len(k) + len(v) <= 1024 for k, v in parser.entities.items())
        assert len(parser.stack) <= MAX_OPEN_TAGS
    total = 0
    for e in events:
        if type(e) is Lines:
            e = e.text()
        if type(e) not in (Text, Prompt):
            continue
        total += len(e.message)
        links = OSC8.findall(e.message)
        assert len(links) % 2 == 0 and all(u == "" for u in links[1::2])
        for uri in links[0::2]:
            assert uri.startswith(("https:", "http:", "send:", "prompt:"))
            assert not re.search(r"[\x00-\x20\x7f-\x9f]", uri)
    assert total <= 32 * data_len + 4096


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES.filter(lambda p: not p.endswith("z") and p not in _TELNET), max_size=40))
def test_without_a_secure_mode_nothing_becomes_a_link(pieces):
    assert "\x1b]8" not in text(_bytes(pieces))


# -- over a real socket: negotiation, replies --------------------------------------

def received_text(sink: Recorder) -> str:
    return "".join((e.text() if type(e) is Lines else e).message for e in sink.events
                   if type(e) in (Text, Lines, Prompt))


async def test_do_mxp_on_will_then_styles_links_and_replies_over_a_socket():
    async with FakeMud() as mud:
        client, conn, sink = await adapter(mud)
        try:
            conn.send(bytes([IAC, WILL, MXP]))
            await conn.wait_for(bytes([IAC, DO, MXP]))
            conn.send(b"\x1b[1z<VERSION>\r\n\x1b[1z<SEND href=\"look\">Look</SEND> &amp; <B>b</B>\r\n")
            await conn.wait_for(b"\x1b[1z<VERSION MXP=1.0 CLIENT=mud-gateway VERSION=" + __version__.encode() + b">\r\n")
            await until(lambda: "b\x1b[0m\n" in received_text(sink))
            assert received_text(sink) == "\n\x1b]8;;send:look\x1b\\Look\x1b]8;;\x1b\\ & \x1b[1mb\x1b[0m\n"
            # WONT: MXP off, text as it comes
            conn.send(bytes([IAC, WONT, MXP]) + b"<B>x</B>\r\n")
            await until(lambda: received_text(sink).endswith("<B>x</B>\n"))
        finally:
            client.close("test over")
            await asyncio.wait_for(sink.closed, EVENTUALLY)


async def test_dont_mxp_when_the_game_says_mxp_false():
    async with FakeMud() as mud:
        client, conn, sink = await adapter(mud, ", mxp: false")
        try:
            conn.send(bytes([IAC, WILL, MXP]) + b"\x1b[1z<B>x</B>\r\n")
            await conn.wait_for(bytes([IAC, DONT, MXP]))
            await until(lambda: received_text(sink).endswith("<B>x</B>\n"))
            assert bytes([IAC, DO, MXP]) not in conn.received
            assert client.stream.mxp is None
        finally:
            client.close("test over")
            await asyncio.wait_for(sink.closed, EVENTUALLY)


def test_config_mxp_defaults_to_true_and_media_url_must_be_http():
    game = parse_config("games: [{name: g, host: h, port: 1}]").games[0]
    assert game.mxp is True and game.media_url is None
    with pytest.raises(Exception):
        parse_config("games: [{name: g, host: h, port: 1, media_url: 'javascript:x'}]")
    assert parse_config("games: [{name: g, host: h, port: 1, media_url: 'https://m.example/s/'}]") \
        .games[0].media_url == "https://m.example/s/"


def test_failed_tags_cost_bounded_work():
    # "<" never sits inside a tag (except in a definition's quoted values): a run of
    # would-be tags fails at the next "<", so a line costs linear work; they stay as text
    line = '<a "' * 5000 + "<B>x</B>"
    assert text(line.encode() + b"\r\n") == '<a "' * 5000 + "\x1b[1mx\x1b[0m\n"
    assert text(b"\x1b[1z<SEND href=\"say <grin>\">x</SEND>\r\n") == "<SEND href=\"say <grin>\">x\n"
    # failed definition matches are paid from a budget per line: beyond it, "<!" is text
    hostile = "<!EL \"" * 3000
    out = text(b"\x1b[1z" + hostile.encode() + b"<!EL ok '<B>'>\r\n\x1b[1z<!EL ok2 '<I>'><ok2>y</ok2>\r\n")
    # (the <B> inside the failed definition is then an open tag of its own)
    assert out == hostile + "<!EL ok '\x1b[1m'>\x1b[0m\n\x1b[3my\x1b[0m\n"


def test_every_line_of_an_event_has_its_own_expansion_budget():
    # regression: lines passed over at the default state kept the first line's budget
    assert text(b"\r\n&lt;\r\n") == "\n<\n"
    assert text(b"plain\r\nmore &amp; &lt;b&gt;\r\n") == "plain\nmore & <b>\n"


def test_a_link_ends_at_its_line_end_inside_p_and_nobr_too():
    # (events end at line ends: a link never spans them without a prompt flush)
    # (the next line secure too, so that its </SEND> is taken: a closing tag is judged by the
    # mode it arrives in, and the line mode ends with the line, P and NOBR or not)
    assert text(b"\x1b[1z<P><SEND>a\r\n\x1b[1zb</SEND></P>\r\n") == "\x1b]8;;send:a\x1b\\a\x1b]8;;\x1b\\ b\n"
    assert text(b"\x1b[1z<SEND>a<NOBR>\r\n\x1b[1zb</SEND>\r\n") == "\x1b]8;;send:a\x1b\\a\x1b]8;;\x1b\\b\n"


def test_the_line_mode_reverts_at_a_line_end_inside_p_and_after_nobr_too():
    """SPEC 5: after a line end the mode reverts to the default. Inside P (the line end a
    space) and after NOBR (dropped) the mode was kept: a secure line that opened P or ended
    in NOBR left the next lines, a player's chat among them, secure, and its SEND a link;
    a locked line inside P left the lines after it locked, the </P> ending it unread."""
    chat = b"Bob says <SEND href='quit'>gold</SEND>\r\n"
    assert text(b"\x1b[1z<P>Chat:\r\n" + chat + b"</P>\r\n") == \
        "Chat: Bob says <SEND href='quit'>gold</SEND> \n"
    assert text(b"\x1b[1zRoom<NOBR>\r\n" + chat) == "RoomBob says <SEND href='quit'>gold</SEND>\n"
    assert text(b"<P>\x1b[4z\r\n<SEND>x</SEND></P>\r\n") == " <SEND>x</SEND>\n"  # nor a secure next tag
    assert text(b"<P>a\r\n\x1b[2z<B>b</B>\r\nc</P>\r\n<B>d</B>\r\n") == "a <B>b</B> c\n\x1b[1md\x1b[0m\n"
    # what the game meant stays: each line of P secure when it says so, a default it locked
    assert text(b"\x1b[1z<P><SEND>a</SEND>\r\n\x1b[1z<SEND>b</SEND></P>\r\n").count("\x1b]8;;send:") == 2
    assert text(b"\x1b[6z<P><SEND>a</SEND>\r\n<SEND>b</SEND></P>\r\n").count("\x1b]8;;send:") == 2


async def test_a_connection_adopted_with_mxp_on_goes_on_parsing_mxp():
    """Upgrade in place (handoff): MXP stays on for an adopted connection (its definitions start over)."""
    from gateway.handoff import TelnetState
    from telnetlib3 import telopt

    game = parse_config("games: [{name: g, host: 127.0.0.1, port: 1}]").games[0]
    ours, theirs = socket.socketpair()
    sink = Recorder()
    state = TelnetState(remote_options=[(telopt.MXP, True)])
    client = await telnet.adopt(ours, game, sink, TelnetStream().to_state(), state)
    try:
        theirs.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(theirs, b"\x1b[1z<SEND>go</SEND> &amp;\r\n")
        await until(lambda: received_text(sink) == "\x1b]8;;send:go\x1b\\go\x1b]8;;\x1b\\ &\n")
    finally:
        client.close("test over")
        await asyncio.wait_for(sink.closed, EVENTUALLY)
        theirs.close()


def test_a_line_cut_by_a_step_keeps_its_expansion_budget():
    """Elements expand to at most EXPANSION_FACTOR times their line: a line cut where a
    step's markup is spent goes on with what is left of it, not a new one."""
    data = b"\x1b[6z<!EL e '" + b"e" * 40 + b"'>\r\n" + b"<e>" * 10 + b"\r\n"
    whole = "".join(e.message for e in run(data) if type(e) is Text)
    assert whole.count("e" * 40) == 6 and whole.count("<e>") == 4
    assert _outcome(run(data, per_step=2)) == _outcome(run(data))


@pytest.mark.parametrize("escape", ["\x1b]0;<B>bold &amp; <b x\x07", "\x1b]0;<B>title\x1b\\",
                                    "\x1b]8;;https://e.example/?a=1&amp;b=<i>\x1b\\link\x1b]8;;\x1b\\",
                                    "\x1bP<SEND>&lt;\x1b\\"],
                         ids=["OSC BEL", "OSC ST", "OSC 8", "DCS"])
def test_the_games_own_escape_strings_pass_through_whole(escape):
    """SPEC 4.2: escape sequences are kept intact. MXP matched tags and entities inside the
    game's own escape strings (OSC, DCS...): a tag took the string's BEL as its text, a
    style put an ESC inside a title, so the event held a broken escape sequence."""
    line = "\x1b[1z<B>x</B> " + escape + " <I>y</I>\r\n"
    out = text(line.encode())
    assert out == "\x1b[1mx\x1b[0m " + escape + " \x1b[3my\x1b[0m\n"

    # Not over a line end: a line's mode ends with it, whatever it holds (an escape string
    # opened in a secure line and closed later does not make the text after it secure).
    out = text(b"\x1b[1z<B>x</B> \x1b]0;t\r\n<SEND>no</SEND>\x07 <SEND>go</SEND>\r\n")
    assert "send:" not in out and out.endswith("<SEND>no</SEND>\x07 <SEND>go</SEND>\n")
