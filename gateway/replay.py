"""The output a session keeps for resume (SPEC 6), sans-I/O.

Every output event is kept, already encoded as its JSON payload, until the
kept payloads exceed ``max_bytes``; then the oldest go first. For the events
that went, the latest ``gmcp`` of each module and the latest ``option`` are
remembered, so that a resume after a long gap still restores the current
GMCP and echo state. That memory has its own bound (``STATE_KEYS`` module
names, ``STATE_BYTES`` of payload): a game that makes up ever new module
names cannot grow it; past the bound, the modules whose latest message is
oldest are forgotten first (a reload then does not restore them; ``gap``
says events were lost).

The limit is given to each call that adds (``add``, ``add_many``) or cuts
(``trim``) rather than kept, so that a reloaded ``replay_bytes`` (SIGHUP, an
upgrade in place) applies to a buffer that already exists; the constructor's
``max_bytes`` is only the default of callers that have no config (tests).

Memory: events are kept in blocks of about ``BLOCK_BYTES`` of payload. The
newest block is open (a plain list); a full block is sealed, and
``compact()`` zstd-compresses sealed blocks (MUD text and its JSON framing
shrink 4-5x), so a full 1 MiB buffer holds about a quarter of that. A sealed
block remembers, uncompressed, each payload's size (the byte count stays
exact, one event at a time) and its latest event of each state key, so
dropping events never decompresses anything; only a resume does.

``compact()`` is not called by ``add``: ``ReplayCompactor`` calls it for
every buffer with sealed blocks about once a second. A game flooding text
drops most of its blocks before they are ever compressed, so the
compression costs CPU only for what stays in the buffer (at most
``max_bytes`` per buffer per second), not for every byte the game sends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from array import array
from bisect import bisect_left
from itertools import accumulate, chain
from operator import attrgetter
from typing import Any, Callable, Iterable, Iterator, Protocol

import msgspec
import zstandard
from msgspec.structs import astuple

from .handoff import ReplayState


class Kept(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One kept event. A struct: made in C (~4x faster than a NamedTuple, and there is one per
    event) and, holding no containers, never tracked by the cycle collector."""

    seq: int
    event: str        # Phoenix event name: echo, prompt, gmcp, option
    payload: bytes    # the encoded JSON payload, sent again as it was
    key: str | None   # "gmcp:<module>" or "option" for state events, else None


_event = attrgetter("event")
_key = attrgetter("key")
_payload = attrgetter("payload")

#: Payload bytes per block: big enough for the compressor to find the repeats of MUD
#: text, small enough that the open (uncompressed) block stays small.
BLOCK_BYTES = 32 * 1024
#: zstd level 1: on blocks of MUD text payloads 4.2x smaller at ~3.1 ms of CPU per MB,
#: where zlib's level 1 made them 4.0x smaller at ~5.5 ms (docs/performance.md, 1.5).
ZSTD_LEVEL = 1
#: A quiet buffer's open block is compressed too once it holds this much.
QUIET_SEAL_BYTES = 2048
#: The dropped state events kept: the latest ``gmcp`` of at most this many modules, with at
#: most this many payload bytes (past either, the modules whose latest message is oldest go
#: first), and the latest ``option`` (one key, the echo state: never forgotten).
STATE_KEYS = 256
STATE_BYTES = 128 * 1024
#: After a sweep that freed this much, give the C heap's free pages back to the system.
TRIM_AFTER_BYTES = 4 << 20
#: Buffers a sweep looks at before the loop gets a turn (the rest follow at once, a slice a
#: turn): one pass over 9,900 playing sessions took 1-2.5 ms, holding their round trips
#: (docs/performance.md 1.11).
SWEEP_SLICE = 1024
#: Seconds of compression a slice may do before the loop gets a turn: 1,024 quiet buffers'
#: open blocks (2.2 KB each) took 10.8-12.4 ms to seal (docs/performance.md 1.12); a slice
#: ends after the buffer that takes it past this.
SLICE_SECONDS = 0.001


def _malloc_trim() -> None:
    """glibc keeps freed heap pages (the uncompressed blocks, a flood's buffers) for reuse;
    ``malloc_trim(0)`` returns them, so RSS shows what is really held. A no-op elsewhere."""


try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if hasattr(_libc, "malloc_trim"):
        def _malloc_trim() -> None:  # noqa: F811
            _libc.malloc_trim(0)
except OSError:  # not glibc
    pass

_zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)  # its frames record their size
_decompress = zstandard.ZstdDecompressor().decompress


def _compress(blob: bytes) -> bytes:
    # zstandard hands back a bytes object that keeps the allocation of the worst case
    # (~33 KiB for a block, whatever it compressed to): a copy holds just the data.
    return bytes(memoryview(_zstd.compress(blob)))
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(tuple[list[str], list[str | None], bytes]).decode


def _remember(state: dict[str, Kept], size: int, events: "Iterable[Kept]") -> int:
    """Put the state events of ``events`` (in seq order) in ``state`` (key -> latest, oldest
    first), whose payloads sum to ``size``; then keep it within STATE_KEYS and STATE_BYTES.
    Returns the new size."""
    for k in events:
        key = k.key
        if key is None:
            continue
        old = state.pop(key, None)
        if old is not None:
            size -= len(old.payload)
        state[key] = k
        size += len(k.payload)
    # The bound is of the modules; the option is one key more (the echo state a reloaded
    # page must not lose: a password being asked), never forgotten.
    option = state.get("option")
    excess_keys = len(state) - STATE_KEYS
    excess_bytes = size - STATE_BYTES
    if option is not None:
        excess_keys -= 1
        excess_bytes -= len(option.payload)
    if excess_keys <= 0 and excess_bytes <= 0:
        return size
    # Over: the modules whose latest message is oldest go.
    gone: list[str] = []
    for key, k in state.items():  # oldest first
        if excess_keys <= 0 and excess_bytes <= 0:
            break
        if key == "option":
            continue
        gone.append(key)
        excess_keys -= 1
        excess_bytes -= len(k.payload)
    for key in gone:
        size -= len(state.pop(key).payload)
    return size


class _Block:
    """Consecutive events: ``first_seq``, ``first_seq + 1``, ..."""

    __slots__ = ("first_seq", "sizes", "entries", "data", "state", "skip")

    def __init__(self, first_seq: int) -> None:
        self.first_seq = first_seq
        self.sizes = array("I")                  # payload size of each event
        self.entries: list[Kept] | None = []     # the events, while not compressed
        self.data: bytes | None = None           # the events, compressed
        self.state: dict[str, Kept] | None = None  # latest event per state key (sealed blocks)
        self.skip = 0                            # leading events already dropped

    def __len__(self) -> int:
        return len(self.sizes)

    def seal(self) -> None:
        state: dict[str, Kept] = {}
        for k in self.entries or ():
            if k.key is not None:
                state.pop(k.key, None)  # oldest first, as the buffer's dropped state
                state[k.key] = k
        self.state = state

    def compress(self) -> None:
        entries = self.entries
        if entries is None:
            return
        # By column (the names, the keys, the payloads end to end): the payloads' repeats lie
        # together for the compressor (a block of structs, each its own msgpack array, came
        # out 11-20% larger). Taken in C, as ``events`` makes them back: no Python step per event.
        self.data = _compress(_pack((list(map(_event, entries)), list(map(_key, entries)),
                                     b"".join(map(_payload, entries)))))
        self.entries = None

    def events(self) -> list[Kept]:
        """All the block's events (dropped ones included), decompressing if needed."""
        if self.entries is not None:
            return self.entries
        assert self.data is not None
        names, keys, payloads = _unpack(_decompress(self.data))
        ends = list(accumulate(self.sizes))
        first = self.first_seq
        return list(map(Kept, range(first, first + len(ends)), names,
                        map(payloads.__getitem__, map(slice, chain((0,), ends), ends)), keys))

    def memory(self) -> int:
        """Bytes this block holds (payloads or compressed data, sizes), roughly."""
        held = len(self.data) if self.data is not None else sum(self.sizes)
        return held + self.sizes.itemsize * len(self.sizes)


class Replay:
    """What a resume replays (``ReplayBuffer.replay``): ``count`` events of ``size`` payload
    bytes, and whether events after ``last_seq`` were lost (``gap``). The events are taken
    ``chunks`` at a time, a block decompressed only when its turn comes; the blocks are the
    buffer's own, so this stays right while the buffer goes on (a block dropped or compressed
    meanwhile holds the same events; the open block's later events are not this replay's)."""

    __slots__ = ("count", "size", "gap", "_parts")

    def __init__(self, parts: "list[list[Kept] | tuple[_Block, int, int]]", count: int, size: int,
                 gap: bool) -> None:
        self._parts = parts  # events as they are (the dropped state), or (block, start, end)
        self.count = count
        self.size = size
        self.gap = gap

    def chunks(self, most: int) -> "Iterator[list[Kept]]":
        """The events in seq order, in lists of ``most`` (the last one fewer)."""
        out: list[Kept] = []
        for part in self._parts:
            if type(part) is list:
                events = part
            else:
                block, start, end = part  # type: ignore[misc]
                events = block.events()[start:end]
            i = 0
            while i < len(events):
                take = events[i:i + most - len(out)]
                out += take
                i += len(take)
                if len(out) == most:
                    yield out
                    out = []
        if out:
            yield out

    def events(self) -> list[Kept]:
        """All the events, in seq order."""
        out: list[Kept] = []
        for chunk in self.chunks(max(self.count, 1)):
            out += chunk
        return out

    def newest(self, keep: int) -> "Replay":
        """The newest ``keep`` events only (the rest lost: ``gap``)."""
        events = self.events()[self.count - keep:] if keep else []
        return Replay([events], keep, sum(map(len, map(_payload, events))), True)


class ReplayBuffer:
    __slots__ = ("max_bytes", "block_bytes", "size", "_count", "_blocks", "_dropped_state", "dropped_upto",
                 "_open_size", "sealed_raw", "touched", "state_size")

    def __init__(self, max_bytes: int, block_bytes: int = BLOCK_BYTES) -> None:
        self.max_bytes = max_bytes
        self.block_bytes = block_bytes
        self.size = 0                                # payload bytes kept
        self._count = 0                              # events kept
        # Oldest first; the last one is open. A list, not a deque: an idle session's empty
        # deque costs 600 bytes, and a full 1 MiB buffer has ~32 blocks to shift.
        self._blocks: list[_Block] = []
        # key -> latest dropped state event, oldest first (a key moves to the end when replaced)
        self._dropped_state: dict[str, Kept] = {}
        self.state_size = 0                          # payload bytes in _dropped_state
        self.dropped_upto = 0                        # highest seq dropped
        self._open_size = 0                          # payload bytes in the open block
        self.sealed_raw = 0                          # sealed blocks not yet compressed
        self.touched = False                         # added to since the compactor last looked

    def __len__(self) -> int:
        return self._count

    def add(self, entry: Kept, max_bytes: int | None = None) -> None:
        self._append(entry)
        limit = self.max_bytes if max_bytes is None else max_bytes
        if self.size > limit:
            self._drop(limit)
        block = self._blocks[-1] if self._blocks else None
        if block is not None and block.state is None and self._open_size >= self.block_bytes:
            self._seal(block)

    def add_many(self, entries: list[Kept], max_bytes: int | None = None) -> None:
        """``add`` of each entry, in order (the events of one game read); one drop at the end.

        The same events are kept and dropped as with one ``add`` each: dropping
        the oldest until the rest fit keeps the longest suffix that fits either way.
        The entries' sizes go into the blocks a block at a time (``accumulate`` and
        ``bisect`` find where each block fills), not one Python step per event.
        """
        n = len(entries)
        if not n:
            return
        blocks = self._blocks
        first_seq = entries[0].seq
        if entries[-1].seq - first_seq != n - 1:  # not consecutive (never from a session): one by one
            for entry in entries:
                self.add(entry, max_bytes)
            return
        block_bytes = self.block_bytes
        sizes: list[int] | None = None  # made when a read has more than one event (most have one)
        i = 0
        while i < n:
            self._append(entries[i])  # a new block, when it is needed
            i += 1
            block = blocks[-1]
            room = block_bytes - self._open_size  # the block seals once its payloads reach block_bytes
            if i < n and room > 0:
                if sizes is None:
                    sizes = [len(k.payload) for k in entries]
                # the next events up to (and with) the one that fills the block
                j = min(n, i + bisect_left(list(accumulate(sizes[i:i + room])), room) + 1)
                added = sum(sizes[i:j])
                block.sizes.extend(sizes[i:j])
                block.entries.extend(entries[i:j])  # type: ignore[union-attr]
                self.size += added
                self._count += j - i
                self._open_size += added
                i = j
            if self._open_size >= block_bytes and block.state is None:
                self._seal(block)
        limit = self.max_bytes if max_bytes is None else max_bytes
        if self.size > limit:
            self._drop(limit)

    def trim(self, max_bytes: int) -> None:
        """Drop the oldest events until the kept payloads fit in ``max_bytes`` (a lowered
        ``replay_bytes``, or a join's replay that must fit the socket's outbox)."""
        if self.size > max_bytes:
            self._drop(max_bytes)

    def _remember(self, events: "Iterable[Kept]") -> None:
        """Dropped events' state (those with a key), newest last; then the state's bound."""
        self.state_size = _remember(self._dropped_state, self.state_size, events)

    def _state_now(self) -> dict[str, Kept]:
        """The dropped state, with that of the events dropped from a compressed oldest block
        (told apart only once the whole block goes): what a resume replays."""
        head = self._blocks[0] if self._blocks else None
        if head is None or not head.skip or head.entries is not None:
            return self._dropped_state
        state = dict(self._dropped_state)
        _remember(state, self.state_size, head.events()[:head.skip])
        return state

    def _append(self, entry: Kept) -> None:
        blocks = self._blocks
        block = blocks[-1] if blocks else None
        if (block is None or block.state is not None
                or block.first_seq + len(block.sizes) != entry.seq):
            if block is not None and block.state is None:
                self._seal(block)
            block = _Block(entry.seq)
            blocks.append(block)
            self._open_size = 0
        size = len(entry.payload)
        block.entries.append(entry)  # type: ignore[union-attr]  # the open block's are never compressed
        block.sizes.append(size)
        self.size += size
        self._count += 1
        self._open_size += size
        self.touched = True

    def _seal(self, block: _Block) -> None:
        block.seal()
        self._open_size = 0
        if len(block) > block.skip:
            self.sealed_raw += 1

    def _drop(self, max_bytes: int) -> None:
        """Drop the oldest events until the kept payloads fit in ``max_bytes``."""
        blocks = self._blocks
        while self.size > max_bytes and blocks:
            head = blocks[0]
            i = head.skip
            rest = sum(head.sizes[i:]) if i else sum(head.sizes)
            if self.size - rest > max_bytes:
                # Still too much without the whole block: it goes at once (one event at a
                # time would drop every one of them).
                n = len(head.sizes)
                self.size -= rest
                self._count -= n - i
                self.dropped_upto = head.first_seq + n - 1
                del blocks[0]
                if head.state is not None:  # sealed: its latest state events are known
                    self._remember(head.state.values())
                    if head.entries is not None:
                        self.sealed_raw -= 1
                else:  # the open block
                    self._remember(head.entries[i:])  # type: ignore[index]
                    self._open_size = 0
                continue
            # Part of the block: its oldest events up to the one that brings the size under.
            excess = self.size - max_bytes
            j = i + bisect_left(list(accumulate(head.sizes[i:])), excess) + 1
            self.size -= sum(head.sizes[i:j])
            self._count -= j - i
            self.dropped_upto = head.first_seq + j - 1
            if head.entries is not None:
                self._remember(head.entries[i:j])
            head.skip = j
            if head.skip == len(head.sizes):
                del blocks[0]
                if head.state is not None:
                    self._remember(head.state.values())
                    if head.entries is not None:
                        self.sealed_raw -= 1
                else:
                    self._open_size = 0  # it was the open block

    def compact(self, seal_open: bool = False) -> int:
        """Compress the sealed blocks (and the open one, when ``seal_open``); bytes saved."""
        seal_open = seal_open and bool(self._blocks) and self._blocks[-1].state is None
        if not (seal_open or self.sealed_raw):
            return 0  # nothing to compress: the usual sweep of a playing session
        before = self.memory()
        if seal_open:
            self._seal(self._blocks[-1])
        if self.sealed_raw:
            for block in self._blocks:
                if block.state is not None and block.entries is not None:
                    block.compress()
            self.sealed_raw = 0
        return before - self.memory()

    def memory(self) -> int:
        """Bytes held for the kept events, roughly (the compactor's and the benchmarks' measure)."""
        return sum(b.memory() for b in self._blocks)

    def since(self, last_seq: int) -> tuple[list[Kept], bool]:
        """The events to replay after ``last_seq``, in seq order, and whether any were lost."""
        replay = self.replay(last_seq)
        return replay.events(), replay.gap

    def replay(self, last_seq: int) -> "Replay":
        """The events to replay after ``last_seq`` (SPEC 6), counted and sized from the blocks'
        sizes alone: nothing is decompressed until they are taken (``Replay.chunks``). A Python
        step per block, not per event."""
        gap = self.dropped_upto > last_seq
        parts: list[list[Kept] | tuple[_Block, int, int]] = []
        count = size = 0
        if gap:
            state = sorted((k for k in self._state_now().values() if k.seq > last_seq), key=lambda k: k.seq)
            if state:  # at most STATE_KEYS + 1 events
                parts.append(state)
                count = len(state)
                size = sum(len(k.payload) for k in state)
        for block in self._blocks:
            n = len(block.sizes)
            if block.first_seq + n <= last_seq + 1:
                continue
            start = max(block.skip, last_seq + 1 - block.first_seq)
            parts.append((block, start, n))  # up to the event kept now: the open block grows on
            count += n - start
            size += sum(block.sizes[start:n])
        return Replay(parts, count, size, gap)


    def to_state(self) -> ReplayState:
        """For an upgrade in place: the kept events (decompressed) and the dropped state."""
        state = self._state_now()
        kept = [astuple(k) for b in self._blocks for k in b.events()[b.skip:]]
        return ReplayState(max_bytes=self.max_bytes, size=self.size, kept=kept,  # type: ignore[arg-type]
                           dropped_state=[astuple(k) for k in state.values()],  # type: ignore[misc]
                           dropped_upto=self.dropped_upto)

    @classmethod
    def from_state(cls, state: ReplayState, max_bytes: int) -> "ReplayBuffer":
        """The buffer as it was; ``max_bytes`` (the config's now) applies from the next event on."""
        buf = cls(max_bytes)
        for k in state.kept:
            buf._append(Kept(*k))
            block = buf._blocks[-1]
            if buf._open_size >= buf.block_bytes:
                buf._seal(block)
        buf._remember(sorted((Kept(*k) for k in state.dropped_state), key=lambda k: k.seq))
        buf.dropped_upto = state.dropped_upto
        return buf


class Timer(Protocol):
    def cancel(self) -> None: ...


class ReplayCompactor:
    """Compresses the sealed blocks of every buffer that has some, once a ``period``.

    One timer for all sessions, armed only while some buffer has work. A buffer
    that was not added to during a whole period gets its open block compressed
    too (a quiet session's scrollback). The timer comes from ``call_later``
    (``delay, callback`` -> something with ``cancel()``: the event loop's, given by
    the session manager), so this module stays free of I/O.
    """

    def __init__(self, call_later: "Callable[[float, Callable[[], Any]], Timer]",
                 period: float = 1.0, clock: "Callable[[], float]" = time.perf_counter) -> None:
        self.period = period
        self._call_later = call_later
        self._clock = clock  # how long a slice's compression took (SLICE_SECONDS)
        self._buffers: set[ReplayBuffer] = set()
        self._timer: Timer | None = None
        self._todo: list[ReplayBuffer] | None = None  # the sweep under way's buffers still to look at
        self.saved = 0  # bytes compaction freed since the last malloc_trim

    def __len__(self) -> int:
        return len(self._buffers)

    def watch(self, buffer: ReplayBuffer) -> None:
        """``buffer`` was added to: look at it at the next sweep."""
        self._buffers.add(buffer)
        if self._timer is None:
            self._timer = self._call_later(self.period, self.sweep)

    def forget(self, buffer: ReplayBuffer) -> None:
        self._buffers.discard(buffer)

    def sweep(self) -> None:
        """A period's look at every buffer with work, ``SWEEP_SLICE`` of them a turn of the
        loop, or fewer once their compression took ``SLICE_SECONDS`` (the next slice is due
        at once); then the next sweep a period on."""
        self._timer = None
        todo = self._todo
        if todo is None:
            todo = self._todo = list(self._buffers)
        buffers = self._buffers
        saved = 0
        clock = self._clock
        deadline = clock() + SLICE_SECONDS
        for _ in range(min(SWEEP_SLICE, len(todo))):
            buffer = todo.pop()
            if buffer not in buffers:
                continue  # forgotten since the sweep began
            if buffer.touched:
                buffer.touched = False
                freed = buffer.compact()
            else:
                freed = buffer.compact(seal_open=buffer._open_size >= QUIET_SEAL_BYTES)
                buffers.discard(buffer)
            if freed:  # it compressed (a look with nothing to compress frees nothing)
                saved += freed
                if clock() > deadline:
                    break  # compression took the slice's time: the loop's turn
        self.saved += saved
        if todo:
            self._timer = self._call_later(0, self.sweep)
            return
        self._todo = None
        if self.saved >= TRIM_AFTER_BYTES and (not buffers or self.saved >= 16 * TRIM_AFTER_BYTES):
            # once the games are quiet (or after much churn): hand the freed pages back
            self.saved = 0
            _malloc_trim()
        if buffers:
            self._timer = self._call_later(self.period, self.sweep)

    def freed(self, nbytes: int) -> None:
        """Memory freed outside the buffers (quiet sockets' deflate contexts): it counts toward
        the next ``malloc_trim``, made at once when no buffer has work (no sweep is due)."""
        self.saved += nbytes
        if self.saved >= TRIM_AFTER_BYTES and not self._buffers:
            self.saved = 0
            _malloc_trim()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._todo = None
        self._buffers.clear()
