"""MSP (SPEC 5) and games[].media_url (SPEC 3): triggers to Client.Media (telnet/media.py), in the
stream on both text paths, and through the gateway over real sockets."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import ConfigError, parse_config
from gateway.telnet.media import media_play, media_stop, msp_trigger
from gateway.telnet.stream import Gmcp, Lines, Text, TelnetStream
from tests.conftest import make_config, session
from tests.test_msdp import merged

IAC, WILL, WONT, DO, DONT, SB, SE = 255, 251, 252, 253, 254, 250, 240
MSP, GMCP = 90, 201
URL = "https://game.example/sounds/"


def play(name, media_type="sound", **kw):
    return Gmcp(*media_play(name, URL, media_type, **kw))


def test_trigger_defaults_arguments_and_off():
    assert msp_trigger("!!SOUND(rain.wav)", URL) == (
        "Client.Media.Play", {"name": "rain.wav", "url": URL, "type": "sound", "volume": 100, "loops": 1,
                              "priority": 50, "key": "rain.wav"})
    assert msp_trigger("!!MUSIC(town/theme.mid V=40 L=-1 P=90 T=town U=http://evil.example/ C=1)  ", URL) == (
        "Client.Media.Play", {"name": "town/theme.mid", "url": URL, "type": "music", "volume": 40, "loops": -1,
                              "priority": 90, "tag": "town", "key": "town/theme.mid"})
    # Out of range: clamped; not a number, or no loops: the default.
    assert msp_trigger("!!SOUND(a.wav V=250 P=-3 L=x)", URL)[1] | {} == {
        "name": "a.wav", "url": URL, "type": "sound", "volume": 100, "loops": 1, "priority": 0, "key": "a.wav"}
    assert msp_trigger("!!SOUND(a.wav L=0 v=7)", URL)[1]["loops"] == 1
    assert msp_trigger("!!SOUND(a.wav L=0 v=7)", URL)[1]["volume"] == 7
    assert msp_trigger("!!SOUND(Off)", URL) == media_stop("sound") == ("Client.Media.Stop", {"type": "sound"})
    assert msp_trigger("!!MUSIC(off U=http://x/)", URL) == ("Client.Media.Stop", {"type": "music"})
    for not_one in ["!!SOUND()", "!!SOUND( )", "x!!SOUND(a)", "!!SOUND(a) and more", "!!NOISE(a)", "!!SOUND(a"]:
        assert msp_trigger(not_one, URL) is None, not_one


def on(stream: TelnetStream) -> TelnetStream:
    stream.media_url = URL
    return stream


def test_trigger_lines_leave_the_text_with_their_line_end():
    s = on(TelnetStream(bytes_lines=True))
    events = s.feed(b"You hear rain.\r\n!!SOUND(rain.wav V=50)\r\n!!MUSIC(Off)\nIt pours.\r\n", 0.0)
    assert events == [Text("You hear rain.\n"), play("rain.wav", volume=50), Gmcp(*media_stop("music")),
                      Text("It pours.\n")]


def test_not_a_trigger_stays_text():
    s = on(TelnetStream(bytes_lines=True))
    assert s.feed(b"say !!SOUND(x.wav)\r\n!!SOUND(x.wav) loud\r\n", 0.0) == [
        Text("say !!SOUND(x.wav)\n!!SOUND(x.wav) loud\n")]
    # The rest of a line whose start went out already (a partial flush) is not a line start.
    s.feed(b"abc", 0.0)
    s.poll(1.0)
    assert s.feed(b"!!SOUND(x.wav)\r\n", 1.0) == [Text("!!SOUND(x.wav)\n")]


def test_msp_off_triggers_are_text_and_the_fast_path_stays_bytes():
    s = TelnetStream(bytes_lines=True)
    assert s.feed(b"!!SOUND(rain.wav)\r\n", 0.0) == [Lines(b"!!SOUND(rain.wav)\r\n")]
    s = on(TelnetStream(bytes_lines=True))
    assert s.feed(b"plain text\r\nmore\r\n", 0.0) == [Lines(b"plain text\r\nmore\r\n")]


def test_a_trigger_cut_between_reads_anywhere():
    data = b"a\r\n!!SOUND(rain.wav L=2)\r\nb\r\n"
    for cut in range(1, len(data)):
        s = on(TelnetStream(bytes_lines=True))
        events = s.feed(data[:cut], 0.0) + s.feed(data[cut:], 0.0)
        assert merged(events) == [Text("a\n"), play("rain.wav", loops=2), Text("b\n")], cut


LINES = [b"plain line\r\n", b"!!SOUND(hit.wav V=30)\r\n", b"!!MUSIC(theme.mid L=-1)\n", b"!!SOUND(Off)\r\n",
         b"not !!SOUND(x)\r\n", b"!!", b"!", b"SOUND(", b"caf\xc3\xa9 ", b"\r\n", b"\xff\xf9"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=16), st.lists(st.integers(0, 400), max_size=8),
       st.sampled_from(["utf-8", "latin-1"]))
def test_any_chunking_gives_the_same_events_as_one_read(items, cuts, encoding):
    data = b"".join(items)

    def run(points):
        s = on(TelnetStream(encoding, bytes_lines=True))
        events, last = [], 0
        for cut in sorted(set(c % (len(data) + 1) for c in points)) + [len(data)]:
            events += s.feed(data[last:cut], 0.0)
            last = cut
        return merged(events + s.finish())

    whole = run([])
    assert run(cuts) == whole
    # One byte at a time (every read a different path) too.
    assert run(range(len(data))) == whole


def test_media_url_config():
    base = "games: [{name: g, host: h, port: 1%s}]"
    assert parse_config(base % "").games[0].media_url is None
    assert parse_config(base % ", media_url: 'https://g.example/snd/'").games[0].media_url == "https://g.example/snd/"
    for good in ["http://127.0.0.1:8000/a", "https://[::1]:8443/s/", "https://cdn.game-x.example/a%20b/"]:
        assert parse_config(base % f", media_url: '{good}'").games[0].media_url == good
    for bad in ["'/sounds/'", "'ftp://g.example/'", "'javascript:alert(1)'", "'https://'", "'https://u:p@g.example/'",
                "'https://g.example/#x'", "'https://g.example:99999/'", "5", "'https://g.example/a b'",
                "'https://ñ.example/'", "'https://x;script-src/'", "'https://g.example:/'"]:
        with pytest.raises(ConfigError, match=r"games\[0\]\.media_url"):
            parse_config(base % f", media_url: {bad}")


# -- the gateway, with the fake MUD ---------------------------------------------------------

def cmd(*codes: int) -> bytes:
    return bytes(codes)


async def test_msp_accepted_with_media_url_and_triggers_become_client_media(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway, game_extra=f"    media_url: {URL}")
    conn.send(b"!!SOUND(early.wav)\r\n")  # before MSP: text
    assert (await phx.event(topic, "echo"))["message"] == "!!SOUND(early.wav)\n"
    conn.send(cmd(IAC, WILL, MSP))
    await conn.wait_for(cmd(IAC, DO, MSP))
    conn.send(b"Thunder!\r\n!!SOUND(thunder.wav V=80 P=70 T=weather)\r\n!!MUSIC(Off)\r\nquiet\r\n")
    assert (await phx.event(topic, "echo"))["message"] == "Thunder!\n"
    first = await phx.event(topic, "gmcp")
    assert first["module"] == "Client.Media.Play" and first["data"] == {
        "name": "thunder.wav", "url": URL, "type": "sound", "volume": 80, "loops": 1, "priority": 70,
        "tag": "weather", "key": "thunder.wav"}
    stop = await phx.event(topic, "gmcp")
    assert stop["module"] == "Client.Media.Stop" and stop["data"] == {"type": "music"}
    assert (await phx.event(topic, "echo"))["message"] == "quiet\n"
    # GMCP Client.Media from the game passes through as any GMCP.
    conn.send(cmd(IAC, WILL, GMCP))
    await conn.wait_for(cmd(IAC, DO, GMCP))
    conn.send(cmd(IAC, SB, GMCP) + b'Client.Media.Play {"name":"x.mp3","url":"https://other.example/"}' + cmd(IAC, SE))
    passed = await phx.event(topic, "gmcp")
    assert passed["module"] == "Client.Media.Play" and passed["data"]["url"] == "https://other.example/"
    # WONT MSP: triggers are text again.
    conn.send(cmd(IAC, WONT, MSP) + b"!!SOUND(late.wav)\r\n")
    await conn.wait_for(cmd(IAC, DONT, MSP))
    assert (await phx.event(topic, "echo"))["message"] == "!!SOUND(late.wav)\n"


async def test_msp_refused_without_media_url(mud, gateway):
    phx, topic, conn, _ = await session(mud, gateway)
    conn.send(cmd(IAC, WILL, MSP) + b"!!SOUND(rain.wav)\r\n")
    await conn.wait_for(cmd(IAC, DONT, MSP))
    assert (await phx.event(topic, "echo"))["message"] == "!!SOUND(rain.wav)\n"


async def test_api_games_and_page_policy_name_the_media_url(mud, gateway):
    client, _ = await gateway(make_config(mud.port, game_extra=f"    media_url: {URL}",
                                          games="  - {name: quiet, host: 127.0.0.1, port: 1}"))
    games = (await (await client.get("/api/games")).json())["games"]
    assert [(g["name"], g["media_url"]) for g in games] == [("fake", URL), ("quiet", None)]
    csp = (await client.get("/")).headers["Content-Security-Policy"]
    assert csp.endswith("; media-src 'self' https://game.example") and "default-src 'self'" in csp
    # The live config: a reload that drops the URL drops it from the policy.
    from gateway.routes import SESSIONS, apply_config
    apply_config(client.server.app, make_config(mud.port))
    assert "media-src" not in (await client.get("/")).headers["Content-Security-Policy"]
    assert (await (await client.get("/api/games")).json())["games"][0]["media_url"] is None
    assert client.server.app[SESSIONS].config.games[0].media_url is None


async def test_msp_and_msdp_stay_on_across_an_upgrade_in_place(mud, tmp_path):
    """The stream is told again, from the options the new process inherits, that MSDP and MSP are on."""
    from tests.conftest import free_port
    from tests.upgrade_helpers import GatewayProcess, config_text, playing
    gw = GatewayProcess(tmp_path, config_text(mud.port, free_port(), game_extra=f"    media_url: {URL}\n"))
    try:
        await gw.ready()
        _, topic, conn = await playing(gw, mud)
        conn.send(cmd(IAC, WILL, MSP, IAC, WILL, 69))
        await conn.wait_for(cmd(IAC, DO, MSP))
        await conn.wait_for(cmd(IAC, DO, 69))
        await gw.upgrade()
        phx2 = await gw.connect()
        assert (await phx2.join(topic))["response"]["resumed"] is True
        conn.send(b"!!SOUND(after.wav)\r\n" + cmd(IAC, SB, 69) + b"\x01HEALTH\x025" + cmd(IAC, SE))
        played = await phx2.event(topic, "gmcp")
        assert played["module"] == "Client.Media.Play" and played["data"]["name"] == "after.wav"
        assert (await phx2.event(topic, "gmcp")) | {"seq": 0, "sent_at": ""} == {
            "module": "MSDP", "data": {"HEALTH": "5"}, "seq": 0, "sent_at": ""}
        assert not conn.eof
    finally:
        await gw.stop()
