"""Slot attributes that cost nothing per connection until a connection changes them (idle memory).

telnetlib3 gives every connection empty sets and lists that it writes to only
on rare events (a refused option, a waiter); a Python set costs 216 bytes even
empty. An attribute made here (on a class whose ``__slots__`` holds it) reads,
until the connection's own is set, as a new container holding one default
shared by every connection; the first change made through that container
(``add``, ``append``, ``clear`` of something in it, ...) keeps it as the
connection's own, so later reads see the change and other connections do not.
Assigning the attribute sets the connection's own; deleting it goes back to the
shared default.
"""

from __future__ import annotations

from typing import Any, Callable


class SlotAttribute:
    """An attribute kept in a slot (``slot``: its member descriptor): the connection's own
    value once set, else what ``missing`` gives for the connection."""

    __slots__ = ("slot",)

    def __init__(self, slot: Any) -> None:
        self.slot = slot

    def missing(self, obj: Any) -> Any:
        raise NotImplementedError

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        try:
            return self.slot.__get__(obj, owner)
        except AttributeError:  # not set (or changed) yet
            return self.missing(obj)

    def __set__(self, obj: Any, value: Any) -> None:
        self.slot.__set__(obj, value)

    def __delete__(self, obj: Any) -> None:
        self.slot.__delete__(obj)


class UntilChanged(SlotAttribute):
    """A connection's container attribute, kept in a slot, that exists only once it is changed.

    Until then the attribute reads as a new container holding ``default`` (one
    value shared by every connection of the class); the first change made
    through it (``add``, ``append``, ``clear``, ... of that very object) keeps
    it as the connection's own. Assigning the attribute sets the connection's own.
    """

    __slots__ = ("default", "kind")

    def __init__(self, slot: Any, default: Any, kind: "type[_SetUntilChanged] | type[_ListUntilChanged]") -> None:
        super().__init__(slot)
        self.default = default
        self.kind = kind

    def starting_with(self, default: Any) -> "UntilChanged":
        """The same attribute, read as ``default`` until changed (a subclass's own default)."""
        return UntilChanged(self.slot, frozenset(default), self.kind)

    def missing(self, obj: Any) -> Any:
        return self.kind(self.default, obj, self.slot)


def on_own(base: type, name: str) -> Callable[..., Any]:
    """``base``'s method ``name``, applied to the connection's own container (``_own()``)."""
    method = getattr(base, name)

    def change(self: Any, *args: Any) -> Any:
        return method(self._own(), *args)

    change.__name__ = name
    return change


class KeptOnChange:
    """A container read from a connection's slot attribute before it holds one (mixed into a
    real set, list or dict, whose own slots are ``_owner`` and ``_slot``): the first change
    keeps it in the slot as the connection's own."""

    __slots__ = ()
    _owner: Any
    _slot: Any

    def __init__(self, items: Any, owner: Any, slot: Any) -> None:
        super().__init__(items)  # type: ignore[call-arg]
        self._owner, self._slot = owner, slot

    def _own(self) -> Any:
        """The connection's own container: this one, kept on first change (or one kept before)."""
        try:
            return self._slot.__get__(self._owner)
        except AttributeError:
            self._slot.__set__(self._owner, self)
            return self


class _SetUntilChanged(KeptOnChange, set):
    __slots__ = ("_owner", "_slot")

    def add(self, item: Any) -> None:
        if item not in self:  # already there (a shared default): nothing changes
            set.add(self._own(), item)

    def discard(self, item: Any) -> None:
        if item in self:
            set.discard(self._own(), item)


class _ListUntilChanged(KeptOnChange, list):
    __slots__ = ("_owner", "_slot")

    def clear(self) -> None:
        if self:
            list.clear(self._own())


for _name in ("remove", "pop", "clear", "update", "difference_update", "intersection_update",
              "symmetric_difference_update", "__ior__", "__iand__", "__isub__", "__ixor__"):
    setattr(_SetUntilChanged, _name, on_own(set, _name))
for _name in ("append", "extend", "insert", "remove", "pop", "sort", "reverse",
              "__setitem__", "__delitem__", "__iadd__", "__imul__"):
    setattr(_ListUntilChanged, _name, on_own(list, _name))


class MadeOnRead(SlotAttribute):
    """A connection's attribute, kept in a slot, made by ``factory`` when first read."""

    __slots__ = ("factory",)

    def __init__(self, slot: Any, factory: Callable[[], Any]) -> None:
        super().__init__(slot)
        self.factory = factory

    def missing(self, obj: Any) -> Any:
        value = self.factory()
        self.slot.__set__(obj, value)
        return value


def shared_sets(cls: type, *names: str) -> None:
    """``cls``'s slots ``names``: sets, empty and shared until changed."""
    for name in names:
        setattr(cls, name, UntilChanged(cls.__dict__[name], frozenset(), _SetUntilChanged))


def shared_lists(cls: type, *names: str) -> None:
    """``cls``'s slots ``names``: lists, empty and shared until changed."""
    for name in names:
        setattr(cls, name, UntilChanged(cls.__dict__[name], (), _ListUntilChanged))


def made_on_read(cls: type, name: str, factory: Callable[[], Any]) -> None:
    """``cls``'s slot ``name``: made by ``factory`` when first read."""
    setattr(cls, name, MadeOnRead(cls.__dict__[name], factory))
