"""Configuration: the YAML file of SPEC section 3, validated with msgspec.

``parse_config`` / ``load_config`` turn YAML into a :class:`Config` tree of
plain msgspec Structs, or raise :class:`ConfigError` whose message names the
offending YAML path in msgspec's form, e.g.
``Expected `int`, got `str` - at `$.games[1].port` ``.

Every Struct forbids unknown fields, so a misspelt key is an error rather than
a silently ignored setting. Checks that types cannot express are done in
``__post_init__``; they raise :class:`_FieldError` naming the field relative
to the struct, and ``parse_config`` joins that with the struct's own path,
which msgspec reports.

It imports nothing from the rest of the package but ``addresses.py`` (the
address and network forms of ``security``), so it can be used (and tested) on
its own.
"""

from __future__ import annotations

import codecs
import functools
import os
import re
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
import msgspec.yaml
import yaml

from .addresses import IPNetwork, parse_address, parse_network

__all__ = [
    "Admin",
    "Auth",
    "Config",
    "ConfigError",
    "Game",
    "Limits",
    "Listen",
    "Logging",
    "Metrics",
    "MudStandards",
    "Security",
    "Sessions",
    "demo_config",
    "load_config",
    "parse_config",
]


class ConfigError(Exception):
    """A configuration file that cannot be used; ``str(e)`` is the message."""


class _FieldError(ValueError):
    """A semantic check failed; ``field`` is the path relative to the struct.

    ``field`` starts with ``.`` or ``[`` (``.encoding``, ``.games[2].name``)
    so that it can be appended to the struct's own ``$...`` path.
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# -- constrained scalar types ------------------------------------------------

_YEAR = 365 * 24 * 3600

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
# 0 lets the OS pick a free port (useful in tests).
ListenPort = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Host = Annotated[str, msgspec.Meta(min_length=1)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0, le=_YEAR)]
NonNegativeSeconds = Annotated[float, msgspec.Meta(ge=0, le=_YEAR)]
# A game's connect_timeout: at most a minute. The browser client waits 2 minutes for a join's
# answer (web/connection.js JOIN_TIMEOUT_MS) and then leaves and joins again; a join the game
# could answer later than that would be given up and dialled again for ever
# (tests/test_config.py holds the two together).
MAX_CONNECT_SECONDS = 60
ConnectSeconds = Annotated[float, msgspec.Meta(gt=0, le=MAX_CONNECT_SECONDS)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
GmcpPackage = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]+( [0-9]+)?\Z")]
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\Z")]
Secret = Annotated[str, msgspec.Meta(min_length=1)]

_DEFAULT_GMCP_SUPPORTS = ("Char 1", "Char.Vitals 1", "Room 1", "Comm.Channel 1")

_GAME_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # used with fullmatch
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MEDIA_NETLOC = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?")
# Printable ASCII plus CR LF: the game's encoding must carry these unchanged,
# since telnet commands, line ends and GMCP are ASCII on the wire.
_ASCII_PROBE = "\r\n" + "".join(chr(c) for c in range(0x20, 0x7F))


# -- sections ----------------------------------------------------------------


class Listen(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: Host = "127.0.0.1"
    port: ListenPort = 8080


class Game(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    host: Host
    port: Port
    title: str | None = None
    default: bool = False
    encoding: str = "utf-8"
    tls: bool = False
    tls_verify: bool = True
    tls_pin_sha256: str | None = None
    connect_timeout: ConnectSeconds = 5.0
    prompt_flush_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 100
    gmcp_supports: list[GmcpPackage] = msgspec.field(
        default_factory=lambda: list(_DEFAULT_GMCP_SUPPORTS)
    )
    forward_client_ip: bool = True
    proxy_protocol: Literal["none", "v1", "v2"] = "none"
    media_url: str | None = None
    mxp: bool = True  # accept MXP (SPEC 5): styles and links, never markup in the page

    def __post_init__(self) -> None:
        if not _GAME_NAME.fullmatch(self.name):
            raise _FieldError(
                f"Expected a name of letters, digits, `_`, `.` and `-`, got {self.name!r}",
                ".name",
            )
        _check_encoding(self.encoding)
        if self.tls_pin_sha256 is not None:
            pin = self.tls_pin_sha256.replace(":", "").lower()
            if not _HEX64.fullmatch(pin):
                raise _FieldError(
                    "Expected 64 hex digits (the SHA-256 of the game's DER "
                    "certificate, colons allowed)",
                    ".tls_pin_sha256",
                )
            if not self.tls:
                raise _FieldError(
                    "`tls_pin_sha256` needs `tls: true`", ".tls_pin_sha256"
                )
            self.tls_pin_sha256 = pin
        if self.media_url is not None and not is_media_url(self.media_url):
            raise _FieldError(
                "Expected an absolute http or https URL (the base of the game's sounds), "
                f"got `{self.media_url}`",
                ".media_url",
            )

    @property
    def display_title(self) -> str:
        return self.title or self.name


def is_media_url(url: str) -> bool:
    """An absolute http(s) URL of printable ASCII whose host is a name or an IP address (no
    credentials, no fragment): a ``media_url``. Its origin goes into the page's
    Content-Security-Policy, so nothing else may be in it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and _MEDIA_NETLOC.fullmatch(parts.netloc) is not None
            and not parts.fragment and url.isascii() and url.isprintable() and " " not in url)


def _check_encoding(name: str) -> None:
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise _FieldError(f"Unknown encoding `{name}`", ".encoding") from None
    if info._is_text_encoding is False:  # rot13, base64, hex, zlib, ...
        raise _FieldError(f"`{name}` is not a text encoding", ".encoding")
    try:
        ok = _ASCII_PROBE.encode(name) == _ASCII_PROBE.encode("ascii") and (
            _ASCII_PROBE.encode("ascii").decode(name) == _ASCII_PROBE
        )
    except (UnicodeError, ValueError):
        ok = False
    if not ok:  # utf-16, utf-8-sig, EBCDIC, ...
        raise _FieldError(
            f"Encoding `{name}` is not ASCII-compatible, telnet needs one "
            "that is (utf-8, latin-1, cp437, gbk, big5, ...)",
            ".encoding",
        )


class Auth(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    required: bool = False
    secret: Secret | None = None
    secret_env: EnvName | None = None
    max_age_seconds: PositiveInt = 86400

    def __post_init__(self) -> None:
        if self.secret is not None and self.secret_env is not None:
            raise _FieldError(
                "Set only one of `secret` and `secret_env`", ".secret_env"
            )
        if self.required and self.secret is None and self.secret_env is None:
            raise _FieldError(
                "`required: true` needs `secret` or `secret_env`", ".required"
            )

    def resolved_secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The HS256 key: ``secret``, or the environment variable named by
        ``secret_env`` (``None`` when neither gives a non-empty value)."""
        if self.secret is not None:
            return self.secret
        if self.secret_env is not None:
            env = os.environ if environ is None else environ
            return env.get(self.secret_env) or None
        return None


def _networks(entries: list[str], key: str) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) -> networks; a bad entry is a _FieldError at ``key[i]``."""
    networks = []
    for i, entry in enumerate(entries):
        try:
            networks.append(parse_network(entry))
        except ValueError:
            raise _FieldError(f"Invalid address or CIDR `{entry}`", f".{key}[{i}]") from None
    return tuple(networks)


class Security(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, dict=True):
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    auth: Auth = msgspec.field(default_factory=Auth)
    deny: list[str] = msgspec.field(default_factory=list)
    deny_message: str = "Connections from your network are not accepted here."

    def __post_init__(self) -> None:
        self.allowed_origins = [
            _normalise_origin(o, i) for i, o in enumerate(self.allowed_origins)
        ]
        self.trusted_networks = _networks(self.trusted_proxies, "trusted_proxies")
        self.deny_networks = _networks(self.deny, "deny")

    def is_denied(self, ip: str) -> bool:
        """Whether the player address ``ip`` is in ``deny`` (False for what is not an address)."""
        if not self.deny_networks:
            return False
        addr = parse_address(ip)
        if addr is None:
            return False
        return any(addr in net for net in self.deny_networks)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_parts(origin: str) -> tuple[str, str, int] | None:
    """``https://Play.Example.com/`` -> ``("https", "play.example.com", 443)``: scheme,
    host and port (the scheme's default when none is written); None when it is not
    an http(s) origin. Used for the config's entries and for the Origin header alike."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "?" in origin
        or "#" in origin
    ):
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def normalise_origin(origin: str) -> str | None:
    """``https://Play.Example.com:443/`` -> ``https://play.example.com``
    (the form browsers send in the Origin header), or None."""
    parts = origin_parts(origin)
    if parts is None:
        return None
    scheme, host, port = parts
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _normalise_origin(origin: str, index: int) -> str:
    normal = normalise_origin(origin)
    if normal is None:
        raise _FieldError(
            f"Expected an origin `http(s)://host[:port]` without a path, got `{origin}`",
            f".allowed_origins[{index}]",
        )
    return normal


class Admin(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token_env: EnvName | None = None

    def token(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The bearer token of ``/admin/*``: the environment variable ``token_env``
        names; ``None`` (no admin API) when unnamed, unset or empty."""
        if self.token_env is None:
            return None
        env = os.environ if environ is None else environ
        return env.get(self.token_env) or None


class Sessions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    linger_seconds: NonNegativeSeconds = 60.0
    replay_bytes: NonNegativeInt = 1048576
    idle_timeout_seconds: NonNegativeSeconds = 0.0


class Limits(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_sessions: PositiveInt = 10000
    max_sessions_per_ip: PositiveInt = 20
    max_channels_per_socket: PositiveInt = 4
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 65536
    max_input_bytes: PositiveInt = 4096
    input_lines_per_second: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] = 10.0
    input_burst: PositiveInt = 50
    heartbeat_timeout_seconds: PositiveSeconds = 60.0
    slow_consumer_seconds: PositiveSeconds = 60.0


#: The MUD Standards WebSocket subprotocols ``/ws`` can serve (SPEC 9.2), by short name.
MUDSTANDARDS_SUBPROTOCOLS = ("terminal", "gmcp", "json", "telnet")


class MudStandards(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """SPEC 9: which subprotocols ``/ws`` serves; an empty list turns ``/ws`` off (404)."""

    subprotocols: list[Literal["terminal", "gmcp", "json", "telnet"]] = msgspec.field(
        default_factory=lambda: list(MUDSTANDARDS_SUBPROTOCOLS)
    )

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, name in enumerate(self.subprotocols):
            if name in seen:
                raise _FieldError(f"Duplicate subprotocol `{name}`", f".subprotocols[{i}]")
            seen.add(name)


class Metrics(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True


class Logging(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, dict=True):
    listen: Listen = msgspec.field(default_factory=Listen)
    games: Annotated[list[Game], msgspec.Meta(min_length=1)]
    sessions: Sessions = msgspec.field(default_factory=Sessions)
    security: Security = msgspec.field(default_factory=Security)
    admin: Admin = msgspec.field(default_factory=Admin)
    limits: Limits = msgspec.field(default_factory=Limits)
    mudstandards: MudStandards = msgspec.field(default_factory=MudStandards)
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    logging: Logging = msgspec.field(default_factory=Logging)

    def __post_init__(self) -> None:
        if not self.games:
            raise _FieldError("At least one game is required", ".games")
        seen: set[str] = set()
        default_seen = False
        for i, g in enumerate(self.games):
            if g.name in seen:
                raise _FieldError(f"Duplicate game name `{g.name}`", f".games[{i}].name")
            seen.add(g.name)
            if g.default:
                if default_seen:
                    raise _FieldError(
                        "Only one game may have `default: true`", f".games[{i}].default"
                    )
                default_seen = True

    @functools.cached_property
    def _games_by_name(self) -> dict[str, Game]:
        return {g.name: g for g in self.games}

    @functools.cached_property
    def default_game(self) -> Game:
        """The game marked ``default: true``, else the first one."""
        for g in self.games:
            if g.default:
                return g
        return self.games[0]

    def game(self, name: str | None) -> Game | None:
        """The game called ``name``; no name (``None`` or ``""``) means the
        default game. ``None`` for an unknown name (or a name that is not a
        string, as a join payload may carry)."""
        if name is None or name == "":
            return self.default_game
        if not isinstance(name, str):
            return None
        return self._games_by_name.get(name)


# -- loading -----------------------------------------------------------------

_AT_PATH = re.compile(r" - at `(\$[^`]*)`$")
_AT_KEY = re.compile(r"^Expected `str` - at `key` in `(\$[^`]*)`$")
_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")
_TOP_LEVEL = re.compile(r"^Expected `object`, got `(\w+)`$")


def parse_config(data: bytes | str, *, source: str | None = None) -> Config:
    """YAML text -> :class:`Config`; raises :class:`ConfigError`.

    ``source`` (a file name) replaces PyYAML's ``<unicode string>`` in
    syntax error messages.
    """
    try:
        config = msgspec.yaml.decode(data, type=Config)
    except msgspec.ValidationError as exc:
        m = _AT_KEY.match(str(exc))
        if m:  # msgspec's "- at `key` in `$.x`": said as every other problem, the path last
            raise ConfigError(f"Expected `str` for a key, got {_key_at(data, m.group(1))!r} "
                              f"- at `{m.group(1)}`") from None
        raise ConfigError(_validation_message(exc)) from None
    except msgspec.DecodeError as exc:
        msg = str(exc)
        if source is not None:
            msg = msg.replace('"<unicode string>"', source).replace(
                '"<byte string>"', source
            )
        raise ConfigError(f"Invalid YAML: {_one_line(msg)}") from None
    duplicate = first_duplicate_key(data)
    if duplicate is not None:
        raise ConfigError(duplicate)
    return config


def first_duplicate_key(data: bytes | str) -> str | None:
    """The first key written twice in one mapping, as a problem with its YAML path, or None.
    YAML requires a mapping's keys to be unique; PyYAML keeps the last and says nothing, so a
    second ``security:`` block (written for ``deny``, say) would drop the first's ``auth:
    {required: true}`` without a word, and the gateway take players without tokens. Refused
    as any other problem (SPEC 2). Walks the parsed nodes; one reached again through an alias
    once. (YAML's merge key ``<<`` is no duplicate: a key beside it overrides the merged one.)"""
    try:
        root = yaml.compose(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, ValueError, LookupError, AttributeError):
        return None  # the decode has said why
    walked: set[int] = set()
    todo: list[tuple[yaml.Node | None, str]] = [(root, "$")]
    while todo:
        node, path = todo.pop()
        if node is None or id(node) in walked:
            continue
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[tuple[str, str], int] = {}
            children = []
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue  # not a string key: the decode refuses it
                line, first = key.start_mark.line + 1, lines.get((key.tag, key.value))
                if first is not None:
                    return (f"Duplicate key `{key.value}` (line {line}, first at line {first}) "
                            f"- at `{path}.{key.value}`")
                lines[(key.tag, key.value)] = line
                children.append((value, f"{path}.{key.value}"))
            todo.extend(reversed(children))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(reversed([(item, f"{path}[{i}]") for i, item in enumerate(node.value)]))
    return None


def _key_at(data: bytes | str, path: str) -> object:
    """The first key that is not a string in the mapping at ``path`` (``$.games[0]``) of the
    YAML ``data``: YAML 1.1 reads ``yes:``, ``null:`` or ``5:`` as a bool, null, a number."""
    try:
        node = msgspec.yaml.decode(data)
        for name, index in _PATH_STEP.findall(path[1:]):
            node = node[name] if name else node[int(index)]
        return next((k for k in node if not isinstance(k, str)), None)
    except (LookupError, TypeError, ValueError):  # not reached by msgspec's paths; said as unknown
        return None


def _one_line(msg: str) -> str:
    """PyYAML's message on one line: each part ("while parsing ...", "did not find ...") with
    its place ("in FILE, line L, column C"), parts joined by "; ". A config error is one
    line wherever it is shown: the upgrade's check gives its last line as the reason (SPEC 6.1)."""
    parts: list[str] = []
    for line in msg.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("in ") and parts:
            parts[-1] += " " + line
        else:
            parts.append(line)
    return "; ".join(parts)


def _validation_message(exc: msgspec.ValidationError) -> str:
    msg = str(exc)
    cause = exc.__cause__
    if isinstance(cause, _FieldError):
        m = _AT_PATH.search(msg)
        base = m.group(1) if m else "$"
        return f"{cause.message} - at `{base}{cause.field}`"
    m = _TOP_LEVEL.match(msg)
    if m:
        if m.group(1) == "null":
            return "The configuration is empty: expected a mapping with at least `games`"
        return (
            "The configuration must be a mapping (`key: value` lines) at the "
            f"top level, got {m.group(1)}"
        )
    if not _AT_PATH.search(msg):  # e.g. "Object missing required field `games`"
        msg += " - at `$`"
    return msg


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the YAML file at ``path``; raises :class:`ConfigError`
    (also when the file cannot be read, with the OS's reason)."""
    name = os.fsdecode(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"Cannot read {name}: {exc.strerror or exc}") from None
    return parse_config(data, source=name)


def demo_config(game_port: int, listen_port: int = 8080) -> Config:
    """The configuration of ``--demo``: the bundled demo game only."""
    return Config(
        listen=Listen(host="127.0.0.1", port=listen_port),
        games=[
            Game(
                name="demo",
                title="Demo MUD",
                host="127.0.0.1",
                port=game_port,
                default=True,
            )
        ],
    )
