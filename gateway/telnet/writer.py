"""telnetlib3's option engine without the per-connection state a gateway never uses (idle memory).

A ``TelnetWriter`` builds, for every connection, tables that are the same for
all of them: five callback tables holding ~55 bound methods of itself, an SLC
table for LINEMODE (2 KiB of objects), and deques for LINEMODE and byte-wise
subnegotiation buffering. About 7 KiB per idle player (docs/performance.md).

``LeanTelnetWriter`` is a ``TelnetWriter`` that, once built, replaces them:

* the callback tables by :class:`Callbacks`, which holds only the callbacks
  set on this connection (``set_*_callback``) and looks the writer's own
  default handlers up by name when asked, so they are the same handlers;
* the SLC table by one read-only table shared by every connection, and the
  SLC callbacks and buffers by empty shared ones: LINEMODE is always refused
  (client.py ``_REFUSED``) and its subnegotiations never reach telnetlib3, so
  they are never read, and a write to them fails (the command is ignored);
* the subnegotiation buffer: whole subnegotiations are parsed by
  ``TelnetStream`` (stream.py) and handed to ``handle_subnegotiation`` in one
  call; ``feed_byte`` only ever sees two- and three-byte commands.

Only telnetlib3's own attributes are replaced, by objects with the operations
its code uses on them; no telnetlib3 code is copied.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable

from telnetlib3 import slc
from telnetlib3.stream_writer import TelnetWriter

#: The callback tables TelnetWriter builds in ``__init__`` (attribute names).
CALLBACK_TABLES = ("_iac_callback", "_ext_callback", "_ext_send_callback", "_ext_offer_callback")


class Callbacks(dict):
    """A callback table: the callbacks set on this connection, else the writer's default handler.

    A dict of the callbacks set (``table[cmd] = func``), whose misses are
    answered from ``names`` (option -> name of the writer's handler method), shared
    by every connection of the class.
    """

    __slots__ = ("_owner", "_names")

    def __init__(self, owner: TelnetWriter, names: "dict[bytes, str]") -> None:
        super().__init__()
        self._owner = owner
        self._names = names

    def __missing__(self, key: bytes) -> Callable[..., Any]:
        return getattr(self._owner, self._names[key])

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._names

    def get(self, key: bytes, default: Any = None) -> Any:  # type: ignore[override]
        return self[key] if key in self else default

    def clear(self) -> None:
        """telnetlib3 clears the tables when the connection closes: no handler is left."""
        dict.clear(self)
        self._names = {}


class LeanTelnetWriter(TelnetWriter):
    #: Shared by every connection: read-only (LINEMODE is refused, so never changed).
    slctab = MappingProxyType(slc.generate_slctab(TelnetWriter.default_slc_tab))
    _slc_callback: Any = MappingProxyType({})
    _slc_buffer: Any = ()
    _sb_buffer: Any = ()
    #: table attribute -> {option: handler method name}, from the first writer built.
    _default_names: "dict[str, dict[bytes, str]] | None" = None
    # telnetlib3's flags that start None or False and change, if ever, by assignment: read
    # from here until then (assigning one makes it the connection's own attribute again).
    _closed_fut = environ_send_raw = _compressed_remainder = _forwardmask = compression = None
    _encoding_explicit = _mccp2_activated = mccp2_active = mccp3_active = False
    _in_loop_detection = _sb_overflow = _slc_sent = _connection_closed = False
    _START_VALUES = ("_closed_fut", "environ_send_raw", "_compressed_remainder", "_forwardmask",
                     "compression", "_encoding_explicit", "_mccp2_activated", "mccp2_active", "mccp3_active",
                     "_in_loop_detection", "_sb_overflow", "_slc_sent", "_connection_closed")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        d = self.__dict__
        names = LeanTelnetWriter._default_names
        if names is None:
            # Which handler telnetlib3 wires to each option, read off its own tables.
            names = LeanTelnetWriter._default_names = {
                table: {key: func.__func__.__name__ for key, func in d[table].items()
                        if getattr(func, "__self__", None) is self}
                for table in CALLBACK_TABLES}
        for table in CALLBACK_TABLES:
            lazy = Callbacks(self, names[table])
            for key, func in d[table].items():
                if getattr(func, "__self__", None) is not self or key not in names[table]:
                    lazy[key] = func  # not the default: kept as set
            d[table] = lazy
        for shared in ("slctab", "_slc_callback", "_slc_buffer", "_sb_buffer"):
            del d[shared]
        for name in self._START_VALUES:
            if name in d and d[name] is getattr(LeanTelnetWriter, name):
                del d[name]
        # What is left, in a dict sized for it (one resize fewer than telnetlib3's
        # own, with room for the few attributes its feed_byte adds later).
        self.__dict__ = dict(d)
