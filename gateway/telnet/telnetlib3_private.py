"""Every use of telnetlib3's private names (``telnetlib3>=5.0.1,<5.1``, pinned in pyproject.toml).

telnetlib3 is the gateway's negotiation engine; its public API answers options
and builds subnegotiations, but a connection built by it costs about 7 KB more
than the gateway needs (docs/performance.md, docs/architecture.md "Library
private names"). This module is the one place that reaches into its private
attributes to save that; nothing else in the gateway names them, and
``tests/test_library_contracts.py`` fails, naming the attribute, on a telnetlib3
whose internals changed. What it relies on, by telnetlib3 class:

* ``TelnetWriter``: the attributes its ``__init__`` sets (read off a writer made at
  import, put in slots), and by name the callback tables ``_iac_callback``,
  ``_ext_callback``, ``_ext_send_callback``, ``_ext_offer_callback``, the SLC state
  ``_slc_callback``, ``_slc_buffer``, ``_linemode``, the byte-wise buffer
  ``_sb_buffer``, the lists ``_waiters`` and ``_environ_batches``, the option
  tables' change handler ``_check_waiters``, the attributes ``feed_byte`` sets
  later (``LATER_ATTRIBUTES``), and the private module ``telnetlib3._session_context``
  (``ctx``'s class). At the connection's end (``release``) it drops ``_protocol``, the
  tables and each ``Option``'s ``_on_change``, so that nothing of it is a reference cycle
  (``tests/test_collector.py`` finds no writer left with the collector off).
* ``TelnetReader`` (``LeanTelnetReader``): its attribute names ``_limit``,
  ``_buffer``, ``_eof``, ``_waiter``, ``_exception``, ``_transport``, ``_paused``.
* ``TelnetClient``/``BaseClient`` (``LeanTelnetClient``): the factory hooks
  ``_writer_factory`` and ``_reader_factory``; the attributes they and asyncio's
  ``FlowControlMixin`` set (``__slots__`` below); the negotiation timer
  (``_check_negotiation_timer``, ``_check_later``, ``_waiter_connected``, ``_tasks``);
  the receive queue ``_rx_queue`` (unused: ``data_received`` is the gateway's);
  ``_send_environ``, ``_zmp_supported_commands``; and ``_transport``, ``_closing``,
  ``_gmcp_hello_sent``, read and written here through ``transport``, ``closing``
  and ``gmcp_hello_sent``.

A ``TelnetWriter`` builds, for every connection, tables that are the same for
all of them: five callback tables holding ~55 bound methods of itself, an SLC
table for LINEMODE (2 KiB of objects), deques for LINEMODE and byte-wise
subnegotiation buffering, empty sets and lists it rarely writes to, and a
dict of ~45 attributes (docs/performance.md, 1.7).

``LeanTelnetWriter`` is a ``TelnetWriter`` that, once built, replaces them:

* the callback tables by :class:`Callbacks`, which holds only the callbacks
  set on this connection (``set_*_callback``; none set: no table, one is made
  when read) and looks the writer's own default handlers up by name when
  asked, so they are the same handlers;
  once the protocol has set its own (``share_protocol_callbacks``), those too
  are looked up by name on the connection's protocol when they are the same
  as on the first connection of its class (will callbacks: :class:`WillCallbacks`);
* the SLC table by one read-only table shared by every connection, and the
  SLC callbacks and buffers by empty shared ones: LINEMODE is always refused
  (client.py ``_REFUSED``) and its subnegotiations never reach telnetlib3, so
  they are never read, and a write to them fails (the command is ignored);
* the subnegotiation buffer: whole subnegotiations are parsed by
  ``TelnetStream`` (stream.py) and handed to ``handle_subnegotiation`` in one
  call; ``feed_byte`` only ever sees two- and three-byte commands;
* its attributes, in slots rather than a dict per connection; its empty sets
  and lists (refusal records, waiters, ...) by one shared value each until a
  connection changes its own (until_changed.py); its session context
  (``ctx``, used only by telnetlib3's client shell and GMCP/ZMP handlers) made
  when first read; its three option tables by :class:`LeanOption`.

``LeanTelnetClient`` does the same for the protocol (``TelnetClient``): its
attributes and its reader's in slots, its unused lists shared until changed.

Only telnetlib3's own attributes are replaced, by objects with the operations
its code uses on them; no telnetlib3 code is copied.
"""

from __future__ import annotations

import asyncio
from types import MappingProxyType
from typing import Any, Callable

from telnetlib3 import client as tl_client
from telnetlib3 import slc
from telnetlib3._session_context import TelnetSessionContext
from telnetlib3.stream_reader import TelnetReader
from telnetlib3.stream_writer import Option, TelnetWriter

from .until_changed import KeptOnChange, SlotAttribute, made_on_read, on_own, shared_lists, shared_sets

#: The callback tables TelnetWriter builds in ``__init__`` (attribute names).
CALLBACK_TABLES = ("_iac_callback", "_ext_callback", "_ext_send_callback", "_ext_offer_callback")
_NO_NAMES: Any = MappingProxyType({})


class Callbacks(KeptOnChange, dict):
    """A callback table: the callbacks set on this connection, else the default ones by name.

    A dict of the callbacks set (``table[cmd] = func``), whose misses are
    answered from ``protocol_names`` (option -> name of the protocol's method),
    then ``names`` (option -> name of the writer's handler method), both shared
    by every connection of the class. A connection that set nothing of its own
    has no table: reading the attribute makes one (:class:`CallbackTable`), kept
    as the connection's own on its first change (``slot``).
    """

    __slots__ = ("_owner", "_names", "_protocol_names", "_slot")

    def __init__(self, owner: TelnetWriter, names: "dict[bytes, str]",
                 protocol_names: "dict[bytes, str]", slot: Any) -> None:
        super().__init__((), owner, slot)  # slot: the table's, where its first change keeps it
        self._names = names
        self._protocol_names = protocol_names

    def __missing__(self, key: bytes) -> Callable[..., Any]:
        name = self._protocol_names.get(key)
        if name is not None:
            return getattr(self._owner._protocol, name)
        return getattr(self._owner, self._names[key])

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._protocol_names or key in self._names

    def get(self, key: bytes, default: Any = None) -> Any:  # type: ignore[override]
        return self[key] if key in self else default

    def __setitem__(self, key: bytes, func: Callable[..., Any]) -> None:
        dict.__setitem__(self._own(), key, func)

    def clear(self) -> None:
        """telnetlib3 clears the tables when the connection closes: no handler is left."""
        own = self._own()
        dict.clear(own)
        own._names = own._protocol_names = _NO_NAMES


class CallbackTable(SlotAttribute):
    """A writer's callback table attribute, kept in a slot only once the connection changes it.

    Until then it reads as a new, empty :class:`Callbacks` answering from the
    writer's default handlers and, once shared (``share_protocol_callbacks``),
    the protocol's callbacks learned for its class.
    """

    __slots__ = ("table",)

    def __init__(self, slot: Any, table: str) -> None:
        super().__init__(slot)
        self.table = table

    def missing(self, obj: Any) -> Callbacks:
        learned = obj._shared_callbacks
        return Callbacks(obj, LeanTelnetWriter._default_names[self.table],  # type: ignore[index]
                         learned.get(self.table, _NO_NAMES) if learned else _NO_NAMES, self.slot)


class WillCallbacks(dict):
    """``will_callbacks`` (option -> list of callbacks): the protocol's methods named in ``names``
    (shared by every connection of the class), looked up when asked, until this connection
    changes one (then all become its own lists, as telnetlib3 keeps them)."""

    __slots__ = ("_owner", "_names")

    def __init__(self, owner: TelnetWriter, names: "dict[bytes, tuple[str, ...]]") -> None:
        super().__init__()
        self._owner = owner
        self._names = names

    def _own(self) -> "WillCallbacks":
        names, self._names = self._names, _NO_NAMES
        for key in names:
            if not dict.__contains__(self, key):
                dict.__setitem__(self, key, self._lookup_in(names, key))
        return self

    def _lookup_in(self, names: "dict[bytes, tuple[str, ...]]", key: bytes) -> "list[Callable[[bytes], None]]":
        protocol = self._owner._protocol
        return [getattr(protocol, name) for name in names[key]]

    def get(self, key: bytes, default: Any = None) -> Any:  # type: ignore[override]
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return self._lookup_in(self._names, key) if key in self._names else default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._names

    def __missing__(self, key: bytes) -> Any:
        if key not in self._names:
            raise KeyError(key)
        return dict.__getitem__(self._own(), key)  # the list itself: telnetlib3 removes from it

    def clear(self) -> None:
        dict.clear(self)
        self._names = _NO_NAMES


for _name in ("setdefault", "pop", "popitem", "update", "__delitem__"):
    setattr(Callbacks, _name, on_own(dict, _name))
for _name in ("setdefault", "pop", "popitem", "update", "__delitem__", "__iter__", "__len__", "keys",
              "items", "values", "copy", "__eq__", "__repr__"):
    setattr(WillCallbacks, _name, on_own(dict, _name))


def _method_name(protocol: Any, func: Any) -> "str | None":
    """The name ``func`` is found by on ``protocol``, when it is one of its methods."""
    name = getattr(func, "__name__", None)
    if getattr(func, "__self__", None) is protocol and getattr(type(protocol), name, None) is func.__func__:
        return name
    return None


def _method_names(protocol: Any, entries: Any) -> "dict[Any, Any] | None":
    """{key: method name(s)} when every callback in ``entries`` is a method of ``protocol``, else None."""
    names: "dict[Any, Any]" = {}
    for key, funcs in entries:
        found = [_method_name(protocol, func) for func in (funcs if isinstance(funcs, list) else (funcs,))]
        if None in found:
            return None
        names[key] = tuple(found) if isinstance(funcs, list) else found[0]
    return names


class LeanOption(Option):
    """telnetlib3's option state table, with its three attributes in slots (no dict of its own)."""

    __slots__ = ("name", "log", "_on_change")


def _attributes_of(cls: "type[TelnetWriter]") -> "tuple[str, ...]":
    """The attributes a new writer of ``cls`` sets on itself (read off one made now)."""
    return tuple(vars(cls(transport=None, protocol=None, client=True)))


#: telnetlib3's writer attributes first set after ``__init__`` (by ``feed_byte``),
#: read from class defaults until then: in slots too, set to those defaults.
LATER_ATTRIBUTES = ("byte_count", "lflow", "xon_any", "iac_received", "cmd_received", "slc_received")
#: Empty sets and lists of telnetlib3's, changed only on rare events (a refusal, a waiter).
_SETS = ("rejected_will", "rejected_do", "directional_refusals", "passive_do")
_LISTS = ("_waiters", "_environ_batches")


class LeanTelnetWriter(TelnetWriter):
    # Every attribute telnetlib3 sets, in a slot: no dict per connection.
    __slots__ = _attributes_of(TelnetWriter) + LATER_ATTRIBUTES + ("_shared_callbacks",)
    #: Shared by every connection: read-only (LINEMODE is refused, so never changed).
    SHARED = {
        "slctab": MappingProxyType(slc.generate_slctab(TelnetWriter.default_slc_tab)),
        "_slc_callback": MappingProxyType({}),
        "_slc_buffer": (),
        "_sb_buffer": (),
        "_linemode": slc.Linemode(),
    }
    #: table attribute -> {option: handler method name}, from the first writer built.
    _default_names: "dict[str, dict[bytes, str]] | None" = None
    #: protocol class -> {table attribute: {option: name(s) of its methods}}: the callbacks
    #: its connection_made sets, from the first connection of the class.
    _protocol_names: "dict[type, dict[str, Any]]" = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for name in LATER_ATTRIBUTES:
            setattr(self, name, getattr(TelnetWriter, name))
        super().__init__(*args, **kwargs)
        names = LeanTelnetWriter._default_names
        if names is None:
            # Which handler telnetlib3 wires to each option, read off its own tables.
            names = LeanTelnetWriter._default_names = {
                table: {key: func.__func__.__name__ for key, func in getattr(self, table).items()
                        if getattr(func, "__self__", None) is self}
                for table in CALLBACK_TABLES}
        self._shared_callbacks: "dict[str, Any] | None" = None
        for table in CALLBACK_TABLES:
            own = {key: func for key, func in getattr(self, table).items()
                   if getattr(func, "__self__", None) is not self or key not in names[table]}
            delattr(self, table)  # the defaults only: no table of its own
            if own:  # not the default: kept as set
                getattr(self, table).update(own)
        for name, value in self.SHARED.items():
            setattr(self, name, value)
        for name in _SETS + _LISTS + ("ctx",):
            delattr(self, name)  # empty until changed (or read, ctx)
        # One handler for the three option tables' changes, and tables without a dict each.
        on_change = self._check_waiters
        for name in ("pending_option", "local_option", "remote_option"):
            old = getattr(self, name)
            setattr(self, name, LeanOption(old.name, old.log, on_change=on_change))

    def share_protocol_callbacks(self) -> None:
        """Look the protocol's callbacks up by name, when they are those of the first connection of its class.

        Called once the protocol has set them all (at the end of its
        ``connection_made``): a table whose callbacks are all methods of the
        protocol, the same as the first connection's, holds nothing of its own.
        """
        protocol = self._protocol
        learned = self._protocol_names.setdefault(type(protocol), {})
        for table in CALLBACK_TABLES:
            callbacks = getattr(self, table)
            names = _method_names(protocol, callbacks.items())
            if names is not None and learned.setdefault(table, names) == names:
                try:
                    delattr(self, table)  # read from the learned names from now on
                except AttributeError:
                    pass  # held nothing
            else:
                callbacks._own()  # this connection's own table, as it is
        self._shared_callbacks = learned
        names = _method_names(protocol, self.will_callbacks.items())
        if names is not None and learned.setdefault("will_callbacks", names) == names:
            self.will_callbacks = WillCallbacks(self, learned["will_callbacks"])

    def release(self) -> None:
        """The connection is over: the writer lets go of its protocol, and its tables of the
        writer and the protocol, so that nothing of the connection is a reference cycle: it
        is freed when the session lets go of it, not at the cycle collector's next full pass
        (docs/performance.md 1.15). Nothing is negotiated after this."""
        self._protocol = None
        for name in ("pending_option", "local_option", "remote_option"):
            getattr(self, name)._on_change = None
        self.will_callbacks = {}
        for table in CALLBACK_TABLES:
            try:
                delattr(self, table)  # a table of its own (its methods, or the protocol's)
            except AttributeError:
                pass  # none: read from the shared names


for _table in CALLBACK_TABLES:
    setattr(LeanTelnetWriter, _table, CallbackTable(LeanTelnetWriter.__dict__[_table], _table))
shared_sets(LeanTelnetWriter, *_SETS)
shared_lists(LeanTelnetWriter, *_LISTS)
made_on_read(LeanTelnetWriter, "ctx", TelnetSessionContext)


# -- the protocol: telnetlib3's TelnetClient and TelnetReader ------------------------------

_NONE: frozenset[bytes] = frozenset()


class LeanTelnetReader(TelnetReader):
    """telnetlib3's reader (which a game connection never reads: data_received is the gateway's), in slots."""

    __slots__ = ("log", "_limit", "_buffer", "_eof", "_waiter", "_exception", "_transport", "_paused")


class LeanTelnetClient(tl_client.TelnetClient):
    """telnetlib3's client protocol with its attributes in slots, and without the per-connection
    objects it builds for what a gateway does not use (idle memory).

    A subclass names its writer class: ``class C(LeanTelnetClient, writer=W)``.
    """

    _reader_factory = LeanTelnetReader
    # No dict per connection: the attributes asyncio's FlowControlMixin, telnetlib3's
    # BaseClient and TelnetClient set (a subclass adds its own slots).
    __slots__ = ("_loop", "_paused", "_drain_waiters", "_connection_lost",
                 "log", "default_encoding", "_encoding_errors", "force_binary", "_extra", "waiter_closed",
                 "_waiter_connected", "_tasks", "shell", "connect_minwait", "connect_maxwait", "reader",
                 "writer", "_limit", "_mccp2_decompressor", "_mccp2_wbits_fallback", "_mccp3_compressor",
                 "_mccp3_orig_write", "_rx_queue", "_rx_bytes", "_rx_task", "_reading_paused", "_read_high",
                 "_read_low", "_transport", "_when_connected", "_last_received", "_check_later", "_closing",
                 "_compression", "_gmcp_modules", "_gmcp_hello_sent", "_zmp_check_handler",
                 "_zmp_ident_sent", "_zmp_supported_commands", "_send_environ")

    def __init_subclass__(cls, writer: "type[TelnetWriter] | None" = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if writer is not None:
            cls._writer_factory = writer

    def __init__(self, **kwargs: Any) -> None:
        # telnetlib3's attributes read from its class defaults until set: slots start there.
        self._transport = self._check_later = self._when_connected = self._last_received = None
        self._closing = False
        super().__init__(**kwargs)
        # What telnetlib3 builds per connection for what we do not use: its environment
        # filter (send_env is the gateway's), ZMP commands (ZMP is refused); and its
        # receive queue (data_received is the gateway's), asyncio's drain waiters (never
        # awaited) and the negotiation timer's task list: empty lists shared until changed
        # (a list has the operations they use).
        self._send_environ = self._zmp_supported_commands = _NONE
        del self._rx_queue, self._drain_waiters, self._tasks

    def _check_negotiation_timer(self) -> None:
        super()._check_negotiation_timer()
        if self._waiter_connected.done():
            self._check_later = None  # done, cancelled and out of _tasks: not kept
            if not self._tasks:
                del self._tasks  # back to the shared empty list

    @property
    def transport(self) -> "asyncio.BaseTransport | None":
        """The connection's transport (None before it is made, and once it is lost)."""
        return self._transport

    @property
    def closing(self) -> bool:
        """telnetlib3 closed the connection itself (its ``close``)."""
        return self._closing

    @property
    def gmcp_hello_sent(self) -> bool:
        return self._gmcp_hello_sent

    @gmcp_hello_sent.setter
    def gmcp_hello_sent(self, sent: bool) -> None:
        self._gmcp_hello_sent = sent


shared_lists(LeanTelnetClient, "_rx_queue", "_drain_waiters", "_tasks")
