"""Configuration loading and validation (SPEC section 3)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import msgspec
import msgspec.yaml
import pytest

from gateway.config import (
    Config,
    ConfigError,
    MAX_CONNECT_SECONDS,
    Game,
    demo_config,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "gateway.yaml"

GAME = "{name: g, host: h, port: 4000}"
PIN = "ab" * 32
DEFAULT_GMCP = ["Char 1", "Char.Vitals 1", "Room 1", "Comm.Channel 1"]


def cfg(extra: str = "", *, games: str = f"games: [{GAME}]") -> str:
    return f"{games}\n{extra}"


# -- the shipped example --------------------------------------------------


def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert [g.name for g in config.games] == ["mygame"]
    assert config.default_game.display_title == "My Game"


def test_example_config_spells_out_every_key_with_its_default():
    raw = msgspec.yaml.decode(EXAMPLE.read_bytes())

    def keys(struct_type, value, path):
        fields = {f.name: f.type for f in msgspec.structs.fields(struct_type)}
        assert set(value) == set(fields), path
        for name, sub in value.items():
            t = fields[name]
            if isinstance(t, type) and issubclass(t, msgspec.Struct):
                keys(t, sub, f"{path}.{name}")

    keys(Config, raw | {"games": []}, "$")
    for game in raw["games"]:
        assert set(game) == {f.name for f in msgspec.structs.fields(Game)}
    # apart from the game's own values, it shows the defaults
    minimal = parse_config(
        "games: [{name: mygame, title: My Game, host: 127.0.0.1, port: 4000,"
        " default: true}]"
    )
    assert load_config(EXAMPLE) == minimal


# -- defaults -------------------------------------------------------------


def test_minimal_config_gets_every_default():
    c = parse_config(cfg())
    assert (c.listen.host, c.listen.port) == ("127.0.0.1", 8080)
    (g,) = c.games
    assert (g.name, g.host, g.port) == ("g", "h", 4000)
    assert g.title is None and g.display_title == "g"
    assert g.default is False
    assert g.encoding == "utf-8"
    assert g.tls is False and g.tls_verify is True and g.tls_pin_sha256 is None
    assert g.connect_timeout == 5
    assert g.prompt_flush_ms == 100
    assert g.gmcp_supports == DEFAULT_GMCP
    assert g.forward_client_ip is True
    assert g.proxy_protocol == "none"
    s = c.sessions
    assert s.linger_seconds == 60
    assert s.replay_bytes == 1048576
    assert s.idle_timeout_seconds == 0
    sec = c.security
    assert sec.allowed_origins == [] and sec.trusted_proxies == []
    assert sec.auth.required is False
    assert sec.auth.secret is None and sec.auth.secret_env is None
    assert sec.auth.max_age_seconds == 86400
    assert sec.auth.resolved_secret() is None
    lim = c.limits
    assert msgspec.structs.asdict(lim) == {
        "max_sessions": 10000,
        "max_sessions_per_ip": 20,
        "max_channels_per_socket": 4,
        "max_frame_bytes": 65536,
        "max_input_bytes": 4096,
        "input_lines_per_second": 10,
        "input_burst": 50,
        "heartbeat_timeout_seconds": 60,
        "slow_consumer_seconds": 60,
    }
    assert c.metrics.enabled is True
    assert (c.logging.format, c.logging.level) == ("text", "info")


def test_mutable_defaults_are_not_shared():
    a, b = parse_config(cfg()), parse_config(cfg())
    a.games[0].gmcp_supports.append("X 1")
    a.security.allowed_origins.append("https://x")
    assert b.games[0].gmcp_supports == DEFAULT_GMCP
    assert b.security.allowed_origins == []


# -- game selection -------------------------------------------------------


def test_default_game_is_the_first_when_none_marked():
    c = parse_config("games: [{name: a, host: h, port: 1}, {name: b, host: h, port: 2}]")
    assert c.default_game.name == "a"
    assert c.game(None) is c.games[0]
    assert c.game("b") is c.games[1]
    assert c.game("nope") is None
    assert c.game(["a"]) is None  # a join payload may carry anything


def test_default_game_is_the_marked_one():
    c = parse_config(
        "games: [{name: a, host: h, port: 1}, {name: b, host: h, port: 2, default: true}]"
    )
    assert c.default_game.name == "b"
    assert c.game(None).name == "b"
    assert c.game("a").name == "a"


def test_demo_config():
    c = demo_config(4321, listen_port=9000)
    assert (c.listen.host, c.listen.port) == ("127.0.0.1", 9000)
    (g,) = c.games
    assert (g.name, g.title, g.host, g.port) == ("demo", "Demo MUD", "127.0.0.1", 4321)
    assert g.default is True
    assert c.game(None) is g
    assert demo_config(1).listen.port == 8080


# -- normalisation and small helpers --------------------------------------


def test_values_are_normalised():
    pin = ":".join(["AB"] * 32)
    c = parse_config(
        f"""
games: [{{name: g, host: h, port: 1, tls: true, tls_pin_sha256: "{pin}"}}]
security:
  allowed_origins: ["HTTPS://Play.Example.COM:443/", "http://localhost:8080"]
  trusted_proxies: [10.0.0.1, 192.168.0.0/16, "::1"]
"""
    )
    assert c.games[0].tls_pin_sha256 == PIN
    assert c.security.allowed_origins == ["https://play.example.com", "http://localhost:8080"]
    networks = [str(n) for n in c.security.trusted_networks]
    assert networks == ["10.0.0.1/32", "192.168.0.0/16", "::1/128"]


def test_resolved_secret():
    c = parse_config(cfg("security: {auth: {required: true, secret_env: GW_SECRET}}"))
    auth = c.security.auth
    assert auth.resolved_secret({"GW_SECRET": "k"}) == "k"
    assert auth.resolved_secret({}) is None
    os.environ["GW_TEST_SECRET_X"] = "from-env"
    try:
        c2 = parse_config(cfg("security: {auth: {secret_env: GW_TEST_SECRET_X}}"))
        assert c2.security.auth.resolved_secret() == "from-env"
    finally:
        del os.environ["GW_TEST_SECRET_X"]
    c3 = parse_config(cfg("security: {auth: {secret: s3}}"))
    assert c3.security.auth.resolved_secret({"X": "y"}) == "s3"


@pytest.mark.parametrize("enc", ["utf-8", "UTF8", "latin-1", "cp437", "gbk", "big5", "ascii"])
def test_good_encodings(enc):
    c = parse_config(f"games: [{{name: g, host: h, port: 1, encoding: {enc}}}]")
    assert c.games[0].encoding == enc


# -- bad files ------------------------------------------------------------


def one(keys: str) -> str:
    """A config whose only game has the extra ``keys``."""
    return cfg(games=f"games: [{{name: g, host: h, port: 1, {keys}}}]")


def second(keys: str) -> str:
    """A config whose second game (``$.games[1]``) has the extra ``keys``."""
    return cfg(games=f"games: [{GAME}, {{name: h, host: h, port: 2, {keys}}}]")


def origin(value: str) -> str:
    return cfg(f'security: {{allowed_origins: ["https://ok.example", "{value}"]}}')


AT_GAME0 = "- at `$.games[0]"
AT_ORIGIN1 = "- at `$.security.allowed_origins[1]`"

BAD = {
    # unknown keys
    "unknown top-level key": (
        cfg("colour: red"),
        "Object contains unknown field `colour` - at `$`",
    ),
    "unknown nested key": (
        one("colour: red"),
        "Object contains unknown field `colour` - at `$.games[0]`",
    ),
    "unknown deep key": (cfg("security: {auth: {secrets: x}}"), "- at `$.security.auth`"),
    # types
    "wrong type": (second('port: "4000"'), "Expected `int`, got `str` - at `$.games[1].port`"),
    "wrong type in section": (cfg("limits: {max_sessions: many}"), "- at `$.limits.max_sessions`"),
    "bad literal": (cfg("logging: {level: verbose}"), "- at `$.logging.level`"),
    "bad proxy protocol": (one("proxy_protocol: v3"), AT_GAME0 + ".proxy_protocol`"),
    # games
    "missing games": ("listen: {port: 80}", "Object missing required field `games` - at `$`"),
    "empty games": (cfg(games="games: []"), "- at `$.games`"),
    "missing game key": (
        cfg(games="games: [{name: g, port: 1}]"),
        "Object missing required field `host` - at `$.games[0]`",
    ),
    "bad name": (cfg(games="games: [{name: 'a b', host: h, port: 1}]"), AT_GAME0 + ".name`"),
    "empty name": (cfg(games="games: [{name: '', host: h, port: 1}]"), AT_GAME0 + ".name`"),
    "duplicate names": (
        cfg(games=f"games: [{GAME}, {{name: h, host: h, port: 2}}, {GAME}]"),
        "Duplicate game name `g` - at `$.games[2].name`",
    ),
    "two defaults": (
        cfg(games="games: [{name: a, host: h, port: 1, default: true}, "
            "{name: b, host: h, port: 2, default: true}]"),
        "- at `$.games[1].default`",
    ),
    # ranges
    "port zero": (cfg(games="games: [{name: g, host: h, port: 0}]"), AT_GAME0 + ".port`"),
    "port too big": (second("port: 65536"), "- at `$.games[1].port`"),
    "listen port too big": (cfg("listen: {port: 70000}"), "- at `$.listen.port`"),
    "zero timeout": (one("connect_timeout: 0"), AT_GAME0 + ".connect_timeout`"),
    "timeout past a minute": (
        one("connect_timeout: 61"), "Expected `float` <= 60.0 - at `$.games[0].connect_timeout`",
    ),
    "zero limit": (cfg("limits: {max_sessions_per_ip: 0}"), "- at `$.limits.max_sessions_per_ip`"),
    "negative linger": (cfg("sessions: {linger_seconds: -1}"), "- at `$.sessions.linger_seconds`"),
    # encodings
    "unknown encoding": (
        second("encoding: klingon"),
        "Unknown encoding `klingon` - at `$.games[1].encoding`",
    ),
    "binary codec rot13": (one("encoding: rot13"), AT_GAME0 + ".encoding`"),
    "binary codec base64": (one("encoding: base64"), AT_GAME0 + ".encoding`"),
    "binary codec hex": (one("encoding: hex"), AT_GAME0 + ".encoding`"),
    "not ascii-compatible": (one("encoding: utf-16"), AT_GAME0 + ".encoding`"),
    # TLS pin
    "short pin": (one("tls: true, tls_pin_sha256: abcd"), AT_GAME0 + ".tls_pin_sha256`"),
    "non-hex pin": (one(f"tls: true, tls_pin_sha256: {'zz' * 32}"), AT_GAME0 + ".tls_pin_sha256`"),
    "pin without tls": (one(f"tls_pin_sha256: {PIN}"), AT_GAME0 + ".tls_pin_sha256`"),
    # security
    "bad cidr": (
        cfg("security: {trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]}"),
        "Invalid address or CIDR `10.0.0.0/33` - at `$.security.trusted_proxies[1]`",
    ),
    "cidr garbage": (
        cfg("security: {trusted_proxies: [localhost]}"),
        "- at `$.security.trusted_proxies[0]`",
    ),
    "bad deny cidr": (
        cfg("security: {deny: ['2001:db8::/32', 2001:db8::/129]}"),
        "Invalid address or CIDR `2001:db8::/129` - at `$.security.deny[1]`",
    ),
    "admin token_env not a name": (cfg("admin: {token_env: 'MY TOKEN'}"), "- at `$.admin.token_env`"),
    "admin unknown key": (cfg("admin: {token: abc}"), "- at `$.admin`"),
    "origin with path": (origin("https://b.example/play"), AT_ORIGIN1),
    "origin without scheme": (origin("play.example.com"), AT_ORIGIN1),
    "origin bad scheme": (origin("ftp://a.example"), AT_ORIGIN1),
    "origin wildcard": (origin("*"), AT_ORIGIN1),
    "origin bad port": (origin("https://a.example:99999"), AT_ORIGIN1),
    "auth required without secret": (
        cfg("security: {auth: {required: true}}"),
        "- at `$.security.auth.required`",
    ),
    "secret and secret_env": (
        cfg("security: {auth: {secret: a, secret_env: B}}"),
        "- at `$.security.auth.secret_env`",
    ),
    "empty secret": (cfg("security: {auth: {secret: ''}}"), "- at `$.security.auth.secret`"),
    "bad env name": (
        cfg("security: {auth: {secret_env: A-B}}"),
        "- at `$.security.auth.secret_env`",
    ),
    # a key that is not a string (YAML reads `5:`, `yes:` or `null:` as a number, a bool, null)
    "key not a string in a game": (one("5: x"), "Expected `str` for a key, got 5 - at `$.games[0]`"),
    "key not a string at the top": (
        "yes: 1\n" + cfg(), "Expected `str` for a key, got True - at `$`",
    ),
    "key not a string in a section": (
        cfg("security: {auth: {null: 1}}"), "Expected `str` for a key, got None - at `$.security.auth`",
    ),
    # the file as a whole
    "invalid yaml": ("games: [\n  {name: g\n", "Invalid YAML"),
    "empty file": ("", "empty"),
    "comments only": ("# nothing here\n", "empty"),
    "top level list": ("- name: g\n", "mapping"),
    "top level scalar": ("just text\n", "mapping"),
}


@pytest.mark.parametrize("text, expected", list(BAD.values()), ids=list(BAD))
def test_bad_config(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert expected in message
    if "- at `" in expected:
        assert message.endswith(expected)  # the full path, nothing after it


def test_the_clients_join_outwaits_the_longest_connect_timeout():
    """The browser client leaves a join unanswered for JOIN_TIMEOUT_MS and joins again; a session's
    join is answered within the game's connect_timeout. Were that longer, a slow game would be
    dialled, given up and dialled again for ever: the config bounds it below the client's wait,
    with room for the join's own round trip."""
    source = (ROOT / "gateway" / "web" / "connection.js").read_text()
    match = re.search(r"export const JOIN_TIMEOUT_MS = (\d+);", source)
    assert match, "connection.js no longer says JOIN_TIMEOUT_MS = <ms>"
    assert int(match.group(1)) >= 2 * MAX_CONNECT_SECONDS * 1000
    parse_config(cfg().replace("port: 4000", f"port: 4000, connect_timeout: {MAX_CONNECT_SECONDS}"))


def test_a_key_written_twice_is_refused_and_a_merged_or_aliased_one_is_not():
    # YAML: a mapping's keys are unique. PyYAML keeps the last and said nothing (a second
    # `security:` block dropped the first's auth.required): a problem with its path now.
    with pytest.raises(ConfigError, match=r"^Duplicate key `security` \(line 3, first at line 1\) - at `\$\.security`$"):
        parse_config("security: {auth: {required: true, secret: s}}\n" + cfg("security: {deny: [10.0.0.0/8]}"))
    with pytest.raises(ConfigError, match=r"^Duplicate key `max_sessions` \(line 5, first at line 3\) "
                                          r"- at `\$\.limits\.max_sessions`$"):
        parse_config(cfg("limits:\n  max_sessions: 5\n  input_burst: 9\n  max_sessions: 50\n"))
    # YAML's merge key: an explicit key beside `<<` overrides the merged one; one anchored
    # mapping used twice is two games' settings. Neither is a key written twice.
    c = parse_config("games:\n  - &g {name: a, host: h, port: 1, encoding: latin-1}\n"
                     "  - {<<: *g, name: b, port: 2}\n")
    assert [(g.name, g.port, g.encoding) for g in c.games] == [("a", 1, "latin-1"), ("b", 2, "latin-1")]
    demo_config(1)


def test_bad_file_through_load_config(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(BAD["wrong type"][0])
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == "Expected `int`, got `str` - at `$.games[1].port`"
    path.write_text("games: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(path) in str(info.value)  # syntax errors name the file and line


@pytest.mark.parametrize("name", ["missing.yaml", "."])
def test_unreadable_path(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert ("No such file" in str(info.value)) == (name == "missing.yaml")


def test_deny_list_membership_ipv4_and_ipv6():
    sec = parse_config(cfg("security: {deny: [203.0.113.0/24, '2001:db8::/32', 198.51.100.7]}")).security
    assert sec.is_denied("203.0.113.250") and sec.is_denied("198.51.100.7")
    assert sec.is_denied("2001:db8:1::5")
    assert not sec.is_denied("203.0.114.1") and not sec.is_denied("2001:db9::1")
    assert not sec.is_denied("not an address")
    assert sec.deny_message == "Connections from your network are not accepted here."
    assert not parse_config(cfg()).security.is_denied("203.0.113.1")


def test_admin_token_from_the_environment():
    admin = parse_config(cfg("admin: {token_env: GW_ADMIN}")).admin
    assert admin.token({"GW_ADMIN": "t0ken"}) == "t0ken"
    assert admin.token({"GW_ADMIN": ""}) is None and admin.token({}) is None
    assert parse_config(cfg()).admin.token({"GW_ADMIN": "t0ken"}) is None


def test_deny_list_takes_ipv4_mapped_entries_and_addresses_as_ipv4():
    sec = parse_config(cfg("security: {deny: ['::ffff:10.0.0.0/104', 192.0.2.0/24]}")).security
    assert sec.is_denied("10.1.2.3") and sec.is_denied("::ffff:10.1.2.3")
    assert sec.is_denied("::ffff:192.0.2.9")
    assert not sec.is_denied("11.0.0.1")
