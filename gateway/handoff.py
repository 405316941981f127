"""The state an upgrade in place hands to the next process (SPEC 6.1 step 3), sans-I/O.

One versioned msgspec Struct per session (``SessionState``), inside one
``Handoff`` with the format version, the generation and each game's MSSP.
Each long-lived object exports and imports its own part
(``TelnetStream.to_state``, ``ReplayBuffer.to_state``, ``GameClient.to_state``,
``TokenBucket.to_state``, ``Session.to_state`` and their ``from_state``);
this module only defines the shapes and the encoding (MessagePack).

Compatibility rules, so that the next release reads what this one wrote:
fields are encoded by name; a field added later has a default; unknown
fields are ignored; a change that an older reader would misread bumps
``FORMAT`` and the reader refuses formats newer than its own.

Times are ``time.monotonic()`` values (asyncio's loop clock): the clock is
system-wide and survives the ``exec``, so deadlines carry over unchanged.
"""

from __future__ import annotations

from typing import Any

import msgspec

#: The format this release writes, and the newest it reads.
FORMAT = 1


class HandoffError(Exception):
    """The state cannot be read; ``str()`` says why."""


class StreamState(msgspec.Struct, kw_only=True):
    """``TelnetStream``: bytes read from the game but not yet events."""

    encoding: str
    decoder_buffer: bytes = b""   # half a character (the incremental decoder's getstate())
    decoder_flag: int = 0
    carry: bytes = b""            # half a telnet command (half a GMCP message)
    carry_scanned: int = 0
    discarding: bool = False
    polled: bool = False
    text: str = ""                # the held partial line (and complete lines not yet sent)
    line_open: bool = False
    last_text: float = 0.0        # when text last arrived (the partial-line clock)
    flush_after: float = 0.1
    max_pending: int = 1 << 16
    echo: bool = True
    inflating: bool = False       # MCCP2 accepted; compression itself is never carried
    failed: bool = False
    raw_gmcp: bool = False        # GMCP JSON kept as msgspec.Raw (parse_gmcp)
    bytes_lines: bool = False     # a read's complete lines as Lines (bytes), not Text


class TelnetState(msgspec.Struct, kw_only=True):
    """``GameClient``: telnetlib3's option state and our answers' state."""

    local_options: list[tuple[bytes, bool]] = []
    remote_options: list[tuple[bytes, bool]] = []
    pending_options: list[tuple[bytes, bool]] = []
    mtts: int = 0
    naws: tuple[int, int] = (80, 24)
    ttype_count: int = 0          # position in the MTTS cycle
    gmcp_hello_sent: bool = False
    client_ip: str | None = None  # NEW-ENVIRON IPADDRESS, None when not forwarded


class ReplayState(msgspec.Struct, kw_only=True):
    """``ReplayBuffer``; a kept event is (seq, event, payload, key), as replay.Kept."""

    max_bytes: int
    size: int = 0
    kept: list[tuple[int, str, bytes, str | None]] = []
    dropped_state: list[tuple[int, str, bytes, str | None]] = []
    dropped_upto: int = 0


class BucketState(msgspec.Struct, kw_only=True):
    tokens: float
    stamp: float


class SessionState(msgspec.Struct, kw_only=True):
    """One session: everything resume, /admin, /metrics and the logs need."""

    version: int = 1
    key: str                       # the topic's UUID
    game: str                      # its name
    game_settings: dict[str, Any] = {}  # the session's config.Game (a removed game's sessions go on)
    sub: str | None = None
    client_ip: str = ""
    client_port: int = 0
    admin_id: str | None = None    # the /admin handle, where the session has one
    started: float = 0.0           # monotonic
    started_wall: float = 0.0      # time.time() at start, for ISO timestamps
    bytes_to_browser: int = 0
    bytes_to_game: int = 0
    seq: int = 0
    last_input: float = 0.0        # the idle clock (monotonic)
    input_n: int = 0               # the highest recv ``n`` sent to the game (SPEC 4.4)
    linger_deadline: float | None = None  # when it ends without a browser (monotonic)
    replay: ReplayState
    bucket: BucketState
    stream: StreamState
    telnet: TelnetState
    fd: int                        # the telnet socket, inherited across the exec


class Listen(msgspec.Struct):
    host: str
    port: int


class Handoff(msgspec.Struct, kw_only=True):
    format: int = FORMAT
    generation: int                # of the process that wrote it
    listen: Listen | None = None   # the config's listen (the socket itself is inherited)
    mssp: dict[str, dict[str, Any]] = {}
    sessions: list[SessionState] = []
    ended: int = 0                 # sessions the upgrade could not carry


class _Header(msgspec.Struct):
    format: int


_encoder = msgspec.msgpack.Encoder()
_header = msgspec.msgpack.Decoder(_Header)
_decoder = msgspec.msgpack.Decoder(Handoff)


def encode(handoff: Handoff) -> bytes:
    return _encoder.encode(handoff)


def decode(data: bytes) -> Handoff:
    """The handoff in ``data``; HandoffError when it is not one this release can read."""
    try:
        header = _header.decode(data)
    except msgspec.DecodeError as exc:
        raise HandoffError(f"not an upgrade state: {exc}") from None
    if header.format > FORMAT or header.format < 1:
        raise HandoffError(f"upgrade state format {header.format}, this version reads 1..{FORMAT}")
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise HandoffError(f"upgrade state unreadable: {exc}") from None
