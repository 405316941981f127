"""The telnet connection to a game: telnetlib3 for negotiation, TelnetStream for the bytes.

``GameClient`` is a telnetlib3 ``TelnetClient`` protocol whose
``data_received`` runs the game's bytes synchronously through the sans-I/O
``TelnetStream``: text, prompt marks, GMCP and ECHO changes become events in
the game's byte order, and every other telnet command is handed to
telnetlib3's option engine (``TelnetWriter.feed_byte``), which answers it.
telnetlib3's own receive path parses subnegotiations a byte at a time in
Python and runs in a separate task; it is bypassed for speed and ordering
(see docs/performance.md). Whole subnegotiations never go through
``feed_byte``: MSSP, CHARSET REQUEST and NEW-ENVIRON SEND are read here
(subnegotiation.py), TTYPE requests are handed to telnetlib3's handler in one
call, and those of options we refused are dropped (SPEC 5: bounded time).

Option policy (SPEC 5): GMCP, MCCP2, MSSP, MSDP, EOR, SGA, ECHO, NAWS, TTYPE (MTTS cycle),
NEW-ENVIRON (MNES) and CHARSET (UTF-8 only) are accepted, and MSP when the game has a
``media_url``; everything else is refused. MSDP subnegotiations and MSP trigger lines are
read by the stream (stream.py), told here whether each is on (``_sync_options``). Refusals and
acknowledgements follow RFC 1143: a request is answered only when it changes
the option's state, so no negotiation loops.
"""

from __future__ import annotations

import asyncio
import collections
import encodings
import encodings.aliases
import hashlib
import logging
import socket
import ssl
import struct
from typing import Any, Protocol

from telnetlib3 import telopt

from .. import __version__
from ..handoff import StreamState, TelnetState
from ..logs import clip
from .input import encode_naws
from . import resolver
from .msdp import encode_msdp
from .mxp import MxpParser, MxpReply
from .proxy import proxy_header
from .stream import SB, CompressionError, Event, Negotiation, TelnetStream
from .telnetlib3_private import LeanTelnetClient, LeanTelnetWriter
from .subnegotiation import (CHARSET_ACCEPTED, CHARSET_REJECTED, CHARSET_REQUEST, ENVIRON_IS, ENVIRON_SEND,
                             charset_offers, decode_mssp, encode_environ, environ_names, environ_request,
                             subnegotiation)

log = logging.getLogger("gateway.telnet")

TERMINAL_TYPE = "XTERM-256COLOR"
CLIENT_NAME = "MUD-GATEWAY"

# MTTS bits (https://tintin.mudhalla.net/protocols/mtts/)
MTTS_ANSI, MTTS_UTF8, MTTS_256, MTTS_SCREEN_READER, MTTS_PROXY, MTTS_TRUECOLOR = 1, 4, 8, 64, 128, 256

#: How long a closed game connection may take to write what is queued for the game
#: before it is reset (a game that stopped reading must not hold it open).
CLOSE_SECONDS = 2.0
#: Bytes written to a game and not yet taken by it past which the game is not read until
#: it takes all but a quarter of them (asyncio's write buffer limits: pause_writing). Each
#: request of a game is answered (negotiation, NEW-ENVIRON, CHARSET, MXP's <SUPPORT>), many
#: with more bytes than the request, so a game that asks without reading the answers would
#: make them pile up here without end; unread, its requests wait in TCP instead. Above what
#: the player's input alone can leave (session.UNSENT_BYTES and one push), so that a game
#: slow to read its input is still read.
UNREAD_BY_GAME = 1 << 18

#: Options refused even though telnetlib3 would accept them (SPEC 5: "everything else: refused").
_REFUSED = {telopt.BINARY, telopt.LINEMODE, telopt.LFLOW, telopt.XDISPLOC, telopt.TSPEED,
            telopt.STATUS, telopt.SNDLOC, telopt.MCCP3_COMPRESS,
            telopt.ZMP, telopt.AARDWOLF, telopt.ATCP, telopt.COM_PORT_OPTION, telopt.LOGOUT}
#: What a game is refused, by (it has a ``media_url``, its ``mxp``): MSP without a media_url,
#: MXP unless ``mxp`` is true (SPEC 5); one shared set per combination.
_REFUSALS = {(media, mxp): frozenset(_REFUSED | ({telopt.MSP} if not media else set())
                                     | ({telopt.MXP} if not mxp else set()))
             for media in (False, True) for mxp in (False, True)}
#: Options whose state the stream is told of when the game says WILL or WONT.
_STREAM_OPTIONS = frozenset((telopt.MSDP[0], telopt.MSP[0]))
#: The events _dispatch acts on itself; a read with none of them goes to the session as it is.
_OURS = frozenset((Negotiation, MxpReply, CompressionError))
_NONE: frozenset[bytes] = frozenset()
#: The variables NEW-ENVIRON may send (MNES; IPADDRESS only when forward_client_ip): send_env.
_ENVIRON_NAMES = environ_names(("CLIENT_NAME", "CLIENT_VERSION", "CHARSET", "MTTS", "TERMINAL_TYPE", "IPADDRESS"))
#: Largest TTYPE / NEW-ENVIRON subnegotiation answered (TTYPE's handed to telnetlib3);
#: real requests are a few dozen bytes.
MAX_DELEGATED_SUBNEGOTIATION = 1 << 16


#: codecs' other names of UTF-8 (``utf8``, ``u8``, ``cp65001``, ...), normalised.
_UTF8_ALIASES = frozenset(alias for alias, codec in encodings.aliases.aliases.items() if codec == "utf_8")
#: Longer than any name of UTF-8 (a game's CHARSET offer can be as long as its subnegotiation).
MAX_ENCODING_NAME = 64


def is_utf8(encoding: str) -> bool:
    """Whether ``encoding`` names UTF-8, as ``codecs.lookup`` would find it, worked out
    without asking codecs: the encodings package caches every name it is asked about, one
    that is no encoding too, for the life of the process, and a game's CHARSET REQUEST
    offers names of its choice, ever new ones if it likes. A name that is not ASCII, holds a
    NUL (``codecs.lookup`` raises ValueError) or is over MAX_ENCODING_NAME is not UTF-8."""
    if len(encoding) > MAX_ENCODING_NAME or not encoding.isascii() or "\x00" in encoding:
        return False
    # What codecs.lookup does to a name (lower case, punctuation runs as one "_"), then the
    # encodings package's search: the name itself, or an alias of it (with "." as "_").
    name = encodings.normalize_encoding(encoding.lower())
    return name == "utf_8" or name in _UTF8_ALIASES or name.replace(".", "_") in _UTF8_ALIASES


def mtts_bits(encoding: str, screen_reader: bool) -> int:
    bits = MTTS_ANSI | MTTS_256 | MTTS_PROXY | MTTS_TRUECOLOR
    if is_utf8(encoding):
        bits |= MTTS_UTF8
    if screen_reader:
        bits |= MTTS_SCREEN_READER
    return bits


class EventSink(Protocol):
    """What a game connection reports to (the session)."""

    def on_events(self, events: list[Event]) -> None: ...
    def on_game_closed(self, reason: str) -> None: ...
    def on_mssp(self, variables: dict[str, Any]) -> None: ...


class _NoSink:
    """The sink of a game connection that is over: anything it might still report goes nowhere."""

    def on_events(self, events: list[Event]) -> None:
        pass

    def on_game_closed(self, reason: str) -> None:
        pass

    def on_mssp(self, variables: dict[str, Any]) -> None:
        pass


_NO_SINK = _NoSink()


class GameWriter(LeanTelnetWriter):
    """telnetlib3's option engine, made to acknowledge disabling as RFC 1143 asks."""

    __slots__ = ()
    #: DO on WILL: GMCP and ZMP (telnetlib3's TelnetClient adds them to every connection's),
    #: MSSP (the variables go to /api/games: GameClient._subnegotiation), MSDP, MSP and MXP
    #: unless refused for the game (no media_url; mxp false). ZMP is refused anyway (_REFUSED
    #: comes first). One set for every connection until one changes its own.
    passive_do = LeanTelnetWriter.passive_do.starting_with(
        {telopt.GMCP, telopt.ZMP, telopt.MSSP, telopt.MSDP, telopt.MSP, telopt.MXP})

    def handle_wont(self, opt: bytes) -> None:
        if self.remote_option.enabled(opt):
            self.iac(telopt.DONT, opt)  # YES -> NO: acknowledge
        super().handle_wont(opt)

    def handle_dont(self, opt: bytes) -> None:
        if self.local_option.enabled(opt):
            self.iac(telopt.WONT, opt)  # YES -> NO: acknowledge
        super().handle_dont(opt)
        # telnetlib3 has no callback for DONT: the protocol is told, when it listens.
        on_dont = getattr(self.protocol, "on_dont", None)
        if on_dont is not None:
            on_dont(opt)


class GameClient(LeanTelnetClient, writer=GameWriter):
    """One telnet connection to a game, reporting events to an ``EventSink``."""

    # No dict per connection (idle memory): ours (telnetlib3's: LeanTelnetClient).
    __slots__ = ("sink", "stream", "gmcp_supports", "mtts", "naws_size", "client_ip",
                 "_ttype_count", "_timer", "_closed_reason", "_proxy", "_pin", "pin_failed", "loop", "read_at",
                 "_restore", "_ending_compression", "media_url", "_mxp", "_poll_at", "_held", "_stepping",
                 "_unread")

    def __init__(self, sink: EventSink, stream: TelnetStream, *,
                 gmcp_supports: list[str], screen_reader: bool = False,
                 naws: tuple[int, int] = (80, 24), client_ip: str | None = None,
                 proxy: tuple[str, str, int] | None = None, pin_sha256: str | None = None,
                 restore: TelnetState | None = None, media_url: str | None = None,
                 mxp: bool = False) -> None:
        super().__init__(term=TERMINAL_TYPE, cols=naws[0], rows=naws[1], encoding=False,
                         compression=None, connect_maxwait=0.0, gmcp_modules=gmcp_supports)
        self.sink = sink
        self.stream = stream  # holds the game's encoding (game_encoding): the one place
        self.gmcp_supports = gmcp_supports  # the game's (config), not a copy
        self.mtts = mtts_bits(stream.encoding, screen_reader)
        self.naws_size = naws
        self.client_ip = client_ip
        self._ttype_count = 0
        self._timer: asyncio.Handle | None = None  # _poll's, due at _poll_at
        self._poll_at = 0.0
        self._closed_reason: str | None = None
        self._proxy = proxy
        self._pin = pin_sha256
        #: The game's certificate failed ``tls_pin_sha256``: not one byte was sent, none is read.
        self.pin_failed = False
        self.loop = asyncio.get_event_loop()
        self.read_at: float | None = None  # loop time of the latest read from the game
        self._held = False  # the session stopped reading (its browser is behind, or an upgrade)
        self._unread = False  # the game leaves what we wrote unread (pause_writing): not read either
        self._stepping: asyncio.Handle | None = None  # the next step of a backlog (stream.py)
        self._restore = restore  # an adopted connection's negotiated state (upgrade in place)
        self._ending_compression = False  # an upgrade asked the game to end MCCP2
        self.media_url = media_url  # the game's, at connect: MSP is accepted only with one
        self._mxp = mxp  # the game's ``mxp``: DO MXP on WILL
        if restore is not None:
            self.mtts = restore.mtts
            self.naws_size = restore.naws
            self._ttype_count = restore.ttype_count
            self.gmcp_hello_sent = restore.gmcp_hello_sent
            self.client_ip = restore.client_ip

    @property
    def game_encoding(self) -> str:
        """The game's text encoding: the config's, or UTF-8 once CHARSET agreed it. The stream
        holds it (it decodes with it); input, MSSP, MSDP and NEW-ENVIRON read it from there."""
        return self.stream.encoding

    def _set_encoding(self, encoding: str) -> None:
        self.stream.set_encoding(encoding)
        self._follow_encoding()

    def _follow_encoding(self) -> None:
        # telnetlib3 keeps its own copy for NEW-ENVIRON values (ASCII unless told UTF-8).
        self.writer.environ_encoding = "utf-8" if is_utf8(self.stream.encoding) else "ascii"

    # -- telnetlib3 protocol hooks ------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # SPEC 5: nothing (not the PROXY header, not an answer to the game's
        # requests) goes to a game whose certificate fails the pin, so the check
        # comes before anything else, as soon as the handshake is done.
        if self._pin is not None and not pin_matches(transport, self._pin):
            self.pin_failed = True
            transport.close()  # the handshake's last bytes and close_notify; no data
            return
        transport.set_write_buffer_limits(high=UNREAD_BY_GAME)  # type: ignore[attr-defined]
        if self._proxy is not None and self._restore is None:
            # The PROXY header goes before any telnet byte.
            version, src, src_port = self._proxy
            dst, dst_port = transport.get_extra_info("peername")[:2]
            transport.write(proxy_header(version, src, src_port, dst, dst_port))  # type: ignore[attr-defined]
        super().connection_made(transport)
        w = self.writer
        # One shared set for every connection (telnetlib3 only tests membership): a set
        # of 16 options per connection cost 1 KiB each, times two, per idle player.
        # DONT for what the game is refused; WONT also for MXP always (we are no MXP server).
        w.always_dont = _REFUSALS[bool(self.media_url), self._mxp]
        w.always_wont = _REFUSALS[bool(self.media_url), False]
        w.always_do = w.always_will = _NONE
        w.add_will_callback(telopt.MCCP2_COMPRESS, self._on_will_mccp2)
        w.add_will_callback(telopt.MXP, self._on_will_mxp)
        w.share_protocol_callbacks()  # all set: looked up by name, not held per connection
        self._follow_encoding()
        if self._restore is not None:
            # Adopted from the previous process: the options are on as they were, with
            # no new negotiation (telnetlib3 sends nothing on connect for a client).
            for option, state in ((w.local_option, self._restore.local_options),
                                  (w.remote_option, self._restore.remote_options),
                                  (w.pending_option, self._restore.pending_options)):
                for opt, on in state:
                    option[opt] = on
            self._restore = None
            self._sync_options()
            if self._mxp and w.remote_option.enabled(telopt.MXP):
                self._on_will_mxp(telopt.MXP)  # its entities and elements were not handed over

    def on_dont(self, opt: bytes) -> None:
        """The game said DONT ``opt`` (GameWriter)."""
        if opt == telopt.TTYPE:
            # MTTS "Disabling TTYPE": DONT TTYPE resets the cycle, so a game that
            # re-negotiates (after a copyover) hears MUD-GATEWAY first again.
            self._ttype_count = 0

    def _on_will_mccp2(self, opt: bytes) -> None:
        # We said DO (telnetlib3 refuses it under TLS): the stream core inflates
        # from the IAC SB MCCP2 IAC SE on; telnetlib3 never sees the compressed bytes.
        self.stream.inflating = self.writer.remote_option.enabled(telopt.MCCP2_COMPRESS)

    def _on_will_mxp(self, opt: bytes) -> None:
        # We said DO: the stream's text goes through the MXP client from now on (SPEC 5).
        if self.stream.mxp is None:
            self.stream.mxp = MxpParser(__version__, self.media_url)

    def data_received(self, data: bytes) -> None:
        if self.pin_failed:
            return
        self.read_at = now = self.loop.time()
        self._dispatch(self.stream.feed(data, now))
        if self.stream.backlog:
            self._behind()

    def _behind(self) -> None:
        """A read of more than one step (MCCP2 output beyond INFLATE_STEP, more than
        COMMANDS_PER_STEP telnet commands: stream.py, or more than MARKUP_PER_STEP of MXP
        markup: mxp.py): the game is not read until the rest is
        done, one step a turn of the loop while the session reads (backpressure between
        steps: a step adds what one read would, transport/websocket.py READ_BURST), so that a
        read packed with commands holds the loop, every other player's, a few ms at a time."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._closed_reason:
            return
        transport.pause_reading()
        if not self._held and not self._unread and self._stepping is None:
            self._stepping = self.loop.call_soon(self._next_step)

    def _next_step(self) -> None:
        self._stepping = None
        transport = self.transport
        if self._held or self._unread or transport is None or transport.is_closing():
            return  # resume_reading() (resume_writing()) steps on
        self._dispatch(self.stream.resume(self.loop.time()))
        self._read_on()

    def _read_on(self) -> None:
        """Read the game again (its backlog first: stream.py), unless the session holds it or it
        does not read what we wrote."""
        if self._held or self._unread:
            return
        if self.stream.backlog:
            self._behind()
        elif self.transport is not None:
            self.transport.resume_reading()
            self._schedule_poll()  # an open line not sent while the game was not read

    def pause_writing(self) -> None:
        """The game left more than UNREAD_BY_GAME of what we wrote unread: it is not read
        either (nor its backlog stepped through) until it takes most of it."""
        super().pause_writing()
        self._unread = True
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._unread = False
        self._read_on()

    def connection_lost(self, exc: Exception | None) -> None:
        # The session is told what follows, and then let go: a connection that is over holds
        # no reference back to it, so an ended session is freed as soon as nothing else
        # holds it, not at the cycle collector's next full pass (docs/performance.md 1.15).
        sink, self.sink = self.sink, _NO_SINK
        if self.closing or self.pin_failed:
            self._release_writer()
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stepping is not None:
            self._stepping.cancel()
            self._stepping = None
        if self.stream.backlog:  # the connection broke (a reset) while the rest waited
            log.info("telnet: connection lost with output not yet inflated or scanned (%s)", clip(exc))
        events = self.stream.finish()
        if events:
            sink.on_events(events)
        super().connection_lost(exc)
        self._release_writer()
        sink.on_game_closed(self._closed_reason or "closed by game")

    def _release_writer(self) -> None:
        # Nor does the telnet side of it hold itself (the writer and its tables): all of it is
        # freed by its count when the session lets go (telnetlib3_private.py, release).
        if self.writer is not None:
            self.writer.release()

    # -- events -------------------------------------------------------------

    def _dispatch(self, events: list[Event]) -> None:
        # Text and GMCP alone (a flood, a burst of vitals) go to the session as they are.
        out = events if _OURS.isdisjoint(map(type, events)) else self._act_on(events)
        if out:
            self.sink.on_events(out)
        if self._closed_reason and self.transport is not None:
            self.transport.close()
            return
        self._schedule_poll()

    def _act_on(self, events: list[Event]) -> list[Event]:
        """The events that are ours to act on (negotiation, MXP's answers, a compression
        error), acted on; the session gets the others before each negotiation, in order.
        Returns those after the last one."""
        out: list[Event] = []
        feed = self.writer.feed_byte
        for ev in events:
            if type(ev) is Negotiation:
                if out:
                    self.sink.on_events(out)
                    out = []
                try:
                    if ev.raw[1] == SB:
                        self._subnegotiation(ev.raw)
                    else:
                        for b in ev.raw:  # two or three bytes
                            feed(bytes((b,)))
                        if len(ev.raw) == 3 and ev.raw[2] in _STREAM_OPTIONS:
                            self._sync_options()
                except Exception as exc:  # a command the game got wrong: ignored, never fatal
                    log.debug("telnet: ignored %r from the game: %s", ev.raw[:32], exc)
            elif type(ev) is MxpReply:
                self.writer.write(ev.data)  # <VERSION>/<SUPPORT> answered (IAC doubled)
            elif type(ev) is CompressionError:
                out.append(ev)
                # A game asked to end compression for an upgrade that drops its compressor
                # without ending the stream (Evennia): the upgrade ends the session.
                self._closed_reason = "gateway shutdown" if self._ending_compression else "compression error"
            else:
                out.append(ev)
        return out

    def _sync_options(self) -> None:
        """Tell the stream whether MSDP and MSP are on (after the game's WILL or WONT)."""
        remote = self.writer.remote_option
        self.stream.msdp = remote.enabled(telopt.MSDP)
        self.stream.media_url = self.media_url if remote.enabled(telopt.MSP) else None

    def _schedule_poll(self) -> None:
        when = self.stream.deadline()
        timer = self._timer
        if timer is not None:
            # The deadline it was set for, kept here: a handle's when() is asyncio's, not the
            # loop protocol's (uvloop's call_at with a time already due returns a Handle without it).
            if when is not None and self._poll_at <= when:
                return  # it fires first; _poll schedules again for the later deadline
            timer.cancel()
            self._timer = None
        if when is not None:
            self._poll_at = when
            self._timer = self.loop.call_at(when, self._poll)

    def _poll(self) -> None:
        self._timer = None
        if self._held or self._unread or self.stream.backlog:
            # The game is not being read (its backlog first, or the session holds it): the
            # rest of the open line may be read already or wait in TCP, so it is not sent as
            # a partial line (a tag or a line cut by our pause, not the game's). Polled again
            # as reading goes on (_read_on, and each step's _dispatch).
            return
        events = self.stream.poll(self.loop.time())
        # As a read's: MXP may have answered (<VERSION> in the open line), or held the rest.
        if events:
            self._dispatch(events)
        else:
            self._schedule_poll()
        if self.stream.backlog:
            self._behind()

    # -- subnegotiations ------------------------------------------------------

    def _subnegotiation(self, raw: bytes) -> None:
        """A whole ``IAC SB <option> ... IAC SE`` (at most 1 MiB: stream.py), in one step."""
        opt, body = raw[2:3], raw[3:-2]
        if b"\xff\xff" in body:
            body = body.replace(b"\xff\xff", b"\xff")
        if opt == telopt.MSSP:
            # Decoded with the game's encoding (SPEC 5), not telnetlib3's ASCII.
            self.sink.on_mssp(decode_mssp(body, self.game_encoding))
        elif opt == telopt.CHARSET:
            if body[:1] == CHARSET_REQUEST:
                self._charset_request(body[1:])
            # ACCEPTED/REJECTED/TTABLE-*: answers to requests we never make
        elif opt == telopt.TTYPE and body[:1] == telopt.IS:
            # A game's TTYPE IS (a server's answer, not a client's question): telnetlib3 ignores
            # it with a WARNING quoting all of it, a line as long as the game likes, each time.
            log.debug("telnet: ignored a TTYPE IS from the game (%d bytes)", len(raw))
        elif opt == telopt.NEW_ENVIRON and body[:1] == ENVIRON_SEND and len(body) <= MAX_DELEGATED_SUBNEGOTIATION:
            self._environ_request(body[1:])
        elif opt == telopt.TTYPE and len(body) <= MAX_DELEGATED_SUBNEGOTIATION:
            # telnetlib3 answers this (MTTS); its handler takes a deque of
            # single bytes, built here in C rather than by feed_byte's loop.
            self.writer.handle_subnegotiation(collections.deque(memoryview(opt + body).cast("c")))
        else:  # an option we refused, or a request far larger than any real one
            log.debug("telnet: ignored a subnegotiation of option %d (%d bytes)", raw[2], len(raw))

    def _environ_request(self, body: bytes) -> None:
        """MNES: a NEW-ENVIRON SEND answered with IS and the variables asked for (all of them
        when it names none). Read here (subnegotiation.py), not by telnetlib3, which walks the
        request a byte at a time in Python: 64 KiB of VAR bytes held the loop 0.1 s each."""
        names = environ_request(body, _ENVIRON_NAMES)
        encoding = "utf-8" if is_utf8(self.game_encoding) else "ascii"
        variables = self.send_env(None) if names is None else self.send_env(names) if names else {}
        self.writer.send_iac(subnegotiation(telopt.NEW_ENVIRON[0], ENVIRON_IS + encode_environ(variables, encoding)))

    def _charset_request(self, body: bytes) -> None:
        """RFC 2066: every REQUEST gets ACCEPTED (UTF-8, when offered) or REJECTED."""
        answer = CHARSET_REJECTED
        for offer in charset_offers(body):
            name = offer.decode("ascii", "replace").strip()
            # Only a name we can send back: codecs.lookup also takes "UTF-8\ufffd".
            if name.isascii() and is_utf8(name):
                answer = CHARSET_ACCEPTED + name.encode("ascii")
                self._set_encoding("utf-8")
                self.mtts |= MTTS_UTF8
                break
        self.writer.send_iac(subnegotiation(telopt.CHARSET[0], answer))

    # -- options: answers telnetlib3 asks us for ----------------------------

    def send_gmcp_hello(self) -> None:
        if self.gmcp_hello_sent:
            return
        self.gmcp_hello_sent = True
        self.writer.send_gmcp("Core.Hello", {"client": "mud-gateway", "version": __version__})
        self.writer.send_gmcp("Core.Supports.Set", self.gmcp_supports)

    def send_ttype(self) -> str:
        """MTTS: the client name, then the terminal type, then ``MTTS <bits>`` from then on."""
        self._ttype_count += 1
        if self._ttype_count == 1:
            return CLIENT_NAME
        if self._ttype_count == 2:
            return TERMINAL_TYPE
        return f"MTTS {self.mtts}"

    def send_naws(self) -> tuple[int, int]:
        return (self.naws_size[1], self.naws_size[0])  # telnetlib3 wants (rows, cols)

    def send_env(self, keys: Any) -> dict[str, Any]:
        """MNES: the variables we volunteer (all, or those asked for)."""
        env = {
            "CLIENT_NAME": CLIENT_NAME,
            "CLIENT_VERSION": __version__,
            # MNES: "UTF-8" however the config spells it (utf8, UTF8), which is what games compare with.
            "CHARSET": "UTF-8" if is_utf8(self.game_encoding) else self.game_encoding.upper(),
            "MTTS": str(self.mtts),
            "TERMINAL_TYPE": TERMINAL_TYPE,
        }
        if self.client_ip:
            env["IPADDRESS"] = self.client_ip
        keys = [k for k in keys or () if k]
        if not keys:
            return env
        return {k: env[k] for k in keys if k in env}

    # -- player side ----------------------------------------------------------

    @property
    def gmcp_enabled(self) -> bool:
        return self.writer is not None and self.writer.remote_option.enabled(telopt.GMCP)

    @property
    def msdp_enabled(self) -> bool:
        return self.writer is not None and self.writer.remote_option.enabled(telopt.MSDP)

    def send_msdp(self, data: dict[str, Any]) -> None:
        """``IAC SB MSDP <data as MSDP> IAC SE`` (msdp.py: the reverse of "MSDP over GMCP")."""
        self.writer.send_iac(subnegotiation(telopt.MSDP[0], encode_msdp(data, self.game_encoding)))

    def send_text(self, data: bytes) -> None:
        self.writer.write(data)  # escapes IAC

    def send_gmcp(self, module: str, data: Any) -> None:
        """``IAC SB GMCP <module> [<json>] IAC SE`` (no JSON when ``data`` is None)."""
        self.writer.send_gmcp(module, data)

    def set_naws(self, width: int, height: int) -> None:
        self.naws_size = (width, height)
        if self.writer is not None and self.writer.local_option.enabled(telopt.NAWS):
            self.writer.send_iac(encode_naws(width, height))

    def pause_reading(self) -> None:
        self._held = True
        if self.transport is not None:
            self.transport.pause_reading()

    def freeze(self) -> None:
        """An upgrade in place: the game is not read, what MXP holds goes to the session now
        (its state is not handed over); bytes left to scan go with the stream (to_state)."""
        self.pause_reading()
        events = self.stream.release_mxp()
        if events:
            self._dispatch(events)

    def resume_reading(self) -> None:
        self._held = False
        self._read_on()  # the backlog first: the game is read once it is done

    # -- upgrade in place (handoff.py) ---------------------------------------

    @property
    def carriable(self) -> bool:
        """Whether the connection's state can be handed to a new process (not TLS, not compressing)."""
        return (self.transport is not None and not self.transport.is_closing()
                and self.transport.get_extra_info("ssl_object") is None
                and not self.stream.compressing)

    def end_compression(self) -> None:
        """Ask the game to end MCCP2 (IAC DONT COMPRESS2): it ends the zlib stream, then plain telnet."""
        if self.writer is not None and self.stream.compressing:
            self._ending_compression = True
            self.writer.iac(telopt.DONT, telopt.MCCP2_COMPRESS)
            self.writer.remote_option[telopt.MCCP2_COMPRESS] = False
            self.stream.inflating = False

    def unsent(self) -> int:
        """Bytes written to the game that the kernel has not taken yet."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def to_state(self) -> TelnetState:
        w = self.writer
        return TelnetState(
            local_options=list(w.local_option.items()), remote_options=list(w.remote_option.items()),
            pending_options=list(w.pending_option.items()),
            mtts=self.mtts, naws=self.naws_size, ttype_count=self._ttype_count,
            gmcp_hello_sent=self.gmcp_hello_sent, client_ip=self.client_ip)

    def raw_socket(self) -> socket.socket:
        """The connection's socket (for the handoff: its descriptor is inherited by the new process)."""
        return self.transport.get_extra_info("socket")

    def close(self, reason: str) -> None:
        """Close after the queued bytes are written; a game that does not read them is cut off."""
        self._closed_reason = self._closed_reason or reason
        if self.transport is not None:
            close_after_writing(self.transport, self.loop)


def close_after_writing(transport: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Close a game connection after its queued bytes are written; a game that does not read
    them is cut off after ``CLOSE_SECONDS``."""
    transport.close()
    if transport.get_write_buffer_size():
        loop.call_later(CLOSE_SECONDS, _abort, transport)


def _abort(transport: asyncio.BaseTransport) -> None:
    """Reset the connection, dropping what the game never read (no-op once it is closed)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:  # SO_LINGER 0: the kernel drops its queue too and answers with RST
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            return  # already closed
    transport.abort()  # type: ignore[attr-defined]


class GameUnavailable(Exception):
    """The game could not be reached (or its TLS handshake failed); ``str()`` says why."""

    def __init__(self, detail: str, kind: str) -> None:
        super().__init__(detail)
        self.kind = kind  # for metrics: timeout, refused, unreachable, tls, pin


def pin_matches(transport: asyncio.BaseTransport, pin_sha256: str) -> bool:
    """Whether the SHA-256 of the game's DER certificate is ``pin_sha256``."""
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return der is not None and hashlib.sha256(der).hexdigest() == pin_sha256


def tls_context(verify: bool, pin_sha256: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if pin_sha256 or not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def connect(game: Any, sink: EventSink, *, screen_reader: bool = False,
                  naws: tuple[int, int] = (80, 24), client_ip: str | None = None,
                  proxy: tuple[str, str, int] | None = None) -> GameClient:
    """Open the telnet connection to ``game`` (a config.Game); raises GameUnavailable."""
    # GMCP JSON goes to the browser as the game wrote it (checked, not rebuilt): raw_gmcp.
    # UTF-8 lines go as bytes, to be escaped without a str (jsonstring.py).
    stream = TelnetStream(game.encoding, flush_after=game.prompt_flush_ms / 1000, raw_gmcp=True,
                          bytes_lines=True)

    def factory() -> GameClient:
        return GameClient(sink, stream, gmcp_supports=game.gmcp_supports,
                          screen_reader=screen_reader, naws=naws, client_ip=client_ip,
                          proxy=proxy, pin_sha256=game.tls_pin_sha256 if game.tls else None,
                          media_url=game.media_url, mxp=game.mxp)

    return await open_connection(game, factory)


async def open_connection(game: Any, factory: Any) -> Any:
    """Connect ``factory()``'s protocol to ``game`` (TLS and ``connect_timeout`` as the game
    says); raises GameUnavailable. The protocol checks the pin (``pin_failed``) itself."""
    kwargs: dict[str, Any] = {}
    if game.tls:
        kwargs["ssl"] = tls_context(game.tls_verify, game.tls_pin_sha256)
        kwargs["server_hostname"] = game.host
    try:
        # The name's lookup (one slow name holds up no other game), the TCP connect and the
        # TLS handshake, within connect_timeout.
        _, protocol = await asyncio.wait_for(
            resolver.create_connection(factory, game.host, game.port, **kwargs),
            timeout=game.connect_timeout)
    except asyncio.TimeoutError:
        raise GameUnavailable(f"no answer within {game.connect_timeout:g}s", "timeout") from None
    except ssl.SSLError as exc:
        raise GameUnavailable(f"TLS handshake failed: {exc.reason or exc}", "tls") from None
    except ConnectionRefusedError as exc:
        raise GameUnavailable(exc.strerror or "connection refused", "refused") from None
    except OSError as exc:
        raise GameUnavailable(exc.strerror or str(exc), "unreachable") from None
    if protocol.pin_failed:  # already closed, before anything was sent
        raise GameUnavailable("TLS certificate does not match tls_pin_sha256", "pin")
    return protocol


async def adopt(sock: socket.socket, game: Any, sink: EventSink, stream: StreamState,
                telnet: TelnetState) -> GameClient:
    """A telnet connection inherited from the previous process, with its state, read from now on."""
    loop = asyncio.get_running_loop()
    restored = TelnetStream.from_state(stream)

    def factory() -> GameClient:
        return GameClient(sink, restored, gmcp_supports=game.gmcp_supports, restore=telnet, media_url=game.media_url,
                          mxp=game.mxp)

    _, protocol = await loop.create_connection(factory, sock=sock)
    protocol._schedule_poll()  # a held partial line still flushes on time
    if restored.backlog:  # bytes the last process had not scanned: stepped through first
        protocol._behind()
    return protocol
