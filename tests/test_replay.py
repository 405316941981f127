"""The replay buffer (gateway/replay.py): SPEC 6 resume semantics."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.replay import Kept, ReplayBuffer


def echo(seq: int, size: int = 10) -> Kept:
    return Kept(seq, "echo", b"e" * size, None)


def prompt(seq: int, size: int = 10) -> Kept:
    return Kept(seq, "prompt", b"p" * size, None)


def gmcp(seq: int, module: str, size: int = 10) -> Kept:
    return Kept(seq, "gmcp", b"g" * size, f"gmcp:{module}")


def option(seq: int, size: int = 10) -> Kept:
    return Kept(seq, "option", b"o" * size, "option")


def seqs(entries) -> list[int]:
    return [k.seq for k in entries]


def filled(max_bytes: int, entries) -> ReplayBuffer:
    buf = ReplayBuffer(max_bytes)
    for e in entries:
        buf.add(e)
    return buf


def test_empty_buffer():
    buf = ReplayBuffer(100)
    assert len(buf) == 0
    assert buf.since(0) == ([], False)
    assert buf.since(5) == ([], False)


def test_everything_kept_replays_after_k():
    entries = [echo(1), gmcp(2, "Char"), prompt(3), option(4), echo(5)]
    buf = filled(1000, entries)
    assert len(buf) == 5
    assert buf.size == 50
    assert buf.since(0) == (entries, False)
    assert buf.since(2) == (entries[2:], False)
    assert buf.since(5) == ([], False)
    assert buf.since(99) == ([], False)


def test_oldest_dropped_first():
    buf = filled(30, [echo(1), echo(2), echo(3), echo(4)])
    assert len(buf) == 3
    assert buf.size == 30
    assert buf.dropped_upto == 1
    assert seqs(buf.since(0)[0]) == [2, 3, 4]


def test_size_limit_is_inclusive():
    buf = filled(30, [echo(1), echo(2), echo(3)])
    assert buf.since(0) == ([echo(1), echo(2), echo(3)], False)


def test_network_drop_within_kept_range_replays_exactly_the_missed_events():
    buf = filled(30, [echo(1), gmcp(2, "Room"), echo(3), echo(4), echo(5)])
    # 1 and 2 dropped; a client that saw up to 3 misses 4 and 5 only
    out, gap = buf.since(3)
    assert seqs(out) == [4, 5]
    assert gap is False
    # a client that saw 2 missed nothing that was dropped
    out, gap = buf.since(2)
    assert seqs(out) == [3, 4, 5]
    assert gap is False


def test_gap_restores_latest_state_per_module_and_option():
    entries = [
        gmcp(1, "Char.Vitals"), option(2), echo(3), gmcp(4, "Room.Info"),
        gmcp(5, "Char.Vitals"), option(6), echo(7),                        # all dropped
        echo(8), gmcp(9, "Char.Vitals"), echo(10),                          # kept
    ]
    buf = filled(30, entries)
    assert seqs(buf.since(10**9)[0]) == []
    assert buf.dropped_upto == 7
    out, gap = buf.since(0)
    assert gap is True
    # the latest dropped Room.Info (4), Char.Vitals (5) and option (6), in seq order, then the kept ones
    assert out == [entries[3], entries[4], entries[5], entries[7], entries[8], entries[9]]


def test_gap_only_counts_dropped_state_after_k():
    entries = [gmcp(1, "A"), option(2), gmcp(3, "B"), echo(4), echo(5), echo(6), echo(7)]
    buf = filled(30, entries)  # 1..4 dropped
    out, gap = buf.since(2)
    assert gap is True
    assert seqs(out) == [3, 5, 6, 7]   # B (3) was dropped after K; A and the option were before K
    out, gap = buf.since(3)
    assert gap is True                 # echo 4 was dropped
    assert seqs(out) == [5, 6, 7]


def test_state_seen_by_client_is_not_replayed_again():
    entries = [option(1), echo(2), echo(3), echo(4), echo(5)]
    buf = filled(30, entries)  # 1, 2 dropped
    out, gap = buf.since(1)
    assert gap is True
    assert seqs(out) == [3, 4, 5]


def test_no_gap_when_last_seq_covers_all_dropped():
    buf = filled(20, [gmcp(1, "A"), option(2), echo(3), echo(4)])
    assert buf.dropped_upto == 2
    assert buf.since(2) == ([echo(3), echo(4)], False)
    assert buf.since(3) == ([echo(4)], False)


def test_reload_gets_scrollback_and_current_state():
    """K = 0 (a reloaded page): current GMCP and echo state, then every kept event."""
    buf = ReplayBuffer(25)
    buf.add(option(1, 5))
    buf.add(gmcp(2, "Char", 5))
    buf.add(echo(3, 5))
    buf.add(option(4, 5))
    buf.add(echo(5, 15))
    buf.add(echo(6, 10))
    out, gap = buf.since(0)
    assert gap is True
    # 1..4 dropped (45 bytes > 25 after 6); the latest option is 4, not 1
    assert seqs(out) == [2, 4, 5, 6]


def test_dropped_option_replayed_before_a_kept_later_one():
    """SPEC 6 replays the latest *dropped* option, then every kept event (the last one wins)."""
    buf = filled(25, [option(1, 5), gmcp(2, "Char", 5), echo(3, 5), option(4, 5), echo(5, 10), echo(6, 10)])
    out, gap = buf.since(0)
    assert gap is True
    assert seqs(out) == [1, 2, 4, 5, 6]     # 1..3 dropped, 4..6 kept


def test_state_event_still_kept_is_not_duplicated():
    buf = filled(30, [echo(1), gmcp(2, "A"), echo(3), gmcp(4, "A")])
    out, gap = buf.since(0)
    assert gap is True
    assert seqs(out) == [2, 3, 4]
    assert len(set(seqs(out))) == len(out)


def test_event_bigger_than_buffer_is_dropped_at_once():
    buf = ReplayBuffer(5)
    buf.add(gmcp(1, "Big", 100))
    assert len(buf) == 0
    assert buf.size == 0
    assert buf.since(0) == ([gmcp(1, "Big", 100)], True)
    buf.add(echo(2, 3))
    assert buf.since(0) == ([gmcp(1, "Big", 100), echo(2, 3)], True)
    assert buf.since(1) == ([echo(2, 3)], False)


def test_zero_budget_keeps_only_state():
    buf = filled(0, [echo(1, 1), option(2, 1), gmcp(3, "A", 1), echo(4, 1)])
    assert len(buf) == 0
    assert buf.since(0) == ([option(2, 1), gmcp(3, "A", 1)], True)
    assert buf.since(4) == ([], False)


def test_payloads_replayed_unchanged():
    raw = b'{"message":"hi\\n","seq":1,"sent_at":"2018-12-04T21:37:06.061238Z"}'
    buf = ReplayBuffer(1 << 20)
    buf.add(Kept(1, "echo", raw, None))
    (k,), _ = buf.since(0)
    assert k.payload == raw and k.event == "echo" and k.seq == 1


# -- property: the buffer agrees with SPEC 6 stated directly ---------------------------------------


def model_since(events, max_bytes, last_seq):
    """SPEC 6 from scratch: which events survive, and what a resume after last_seq gets."""
    kept = list(events)
    while kept and sum(len(k.payload) for k in kept) > max_bytes:
        kept.pop(0)
    kept_seqs = {k.seq for k in kept}
    dropped_after = [k for k in events if k.seq > last_seq and k.seq not in kept_seqs]
    latest: dict[str, Kept] = {}
    for k in dropped_after:
        if k.key is not None:
            latest[k.key] = k
    state = sorted(latest.values(), key=lambda k: k.seq)
    return state + [k for k in kept if k.seq > last_seq], bool(dropped_after)


event_kinds = st.one_of(
    st.builds(lambda n: ("echo", None), st.just(0)),
    st.builds(lambda n: ("prompt", None), st.just(0)),
    st.builds(lambda m: ("gmcp", f"gmcp:{m}"), st.sampled_from(["Char", "Room", "Comm"])),
    st.just(("option", "option")),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(event_kinds, st.integers(0, 40)), max_size=40),
    st.integers(0, 200),
    st.data(),
)
def test_since_matches_spec_model(kinds, max_bytes, data):
    events = [Kept(i + 1, name, b"x" * size, key) for i, ((name, key), size) in enumerate(kinds)]
    buf = filled(max_bytes, events)
    assert buf.size == sum(len(k.payload) for k in buf.since(0)[0] if k.seq > buf.dropped_upto)
    assert buf.size <= max_bytes
    for last_seq in {0, len(events), data.draw(st.integers(0, len(events) + 2))}:
        out, gap = buf.since(last_seq)
        assert (out, gap) == model_since(events, max_bytes, last_seq)
        assert seqs(out) == sorted(set(seqs(out)))


# -- the compressed blocks: the same answers, whatever was compressed when -------------------------

@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(event_kinds, st.integers(0, 40), st.booleans(), st.booleans()), max_size=60),
    st.integers(0, 300),
    st.integers(1, 80),
    st.data(),
)
def test_compressed_blocks_match_spec_model(kinds, max_bytes, block_bytes, data):
    """Blocks sealed and compressed at any point (and a quiet open block too) change no answer."""
    events = [Kept(i + 1, name, bytes([65 + i % 26]) * size, key)
              for i, ((name, key), size, _, _) in enumerate(kinds)]
    buf = ReplayBuffer(max_bytes, block_bytes=block_bytes)
    for e, (_, _, compact, seal_open) in zip(events, kinds):
        buf.add(e)
        if compact:
            buf.compact(seal_open=seal_open)
    assert buf.size == sum(len(k.payload) for k in buf.since(0)[0] if k.seq > buf.dropped_upto)
    assert len(buf) == len([k for k in buf.since(0)[0] if k.seq > buf.dropped_upto])
    for last_seq in {0, len(events), data.draw(st.integers(0, len(events) + 2))}:
        out, gap = buf.since(last_seq)
        assert (out, gap) == model_since(events, max_bytes, last_seq)


def test_compaction_shrinks_a_full_buffer_and_resume_replays_exactly():
    """1 MiB of MUD-like JSON payloads: compressed to well under a third; a resume gets every byte back."""
    import random
    rng = random.Random(7)
    words = ["the", "orc", "hits", "you", "\x1b[1;31m", "\x1b[0m", "north", "gold", "sword", "dragon"]
    buf = ReplayBuffer(1 << 20)
    events = []
    for seq in range(1, 20001):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 20)))
        payload = ('{"message":"%s\\n","seq":%d,"sent_at":"2026-11-27T13:00:%02d.%06dZ"}'
                   % (text, seq, seq % 60, rng.randint(0, 999999))).encode()
        k = Kept(seq, "echo" if seq % 7 else "gmcp", payload, None if seq % 7 else "gmcp:Char.Vitals")
        events.append(k)
        buf.add(k)
        if seq % 500 == 0:
            buf.compact()
    raw = buf.size
    assert raw <= 1 << 20
    buf.compact(seal_open=True)
    assert buf.memory() < raw // 3
    # a browser that saw up to some seq still kept: exactly the events after it, unchanged
    first_kept = buf.dropped_upto + 1
    last_seen = first_kept + 1234
    out, gap = buf.since(last_seen)
    assert gap is False
    assert out == events[last_seen:]
    # a reload: the latest dropped Char.Vitals first, then everything kept
    out, gap = buf.since(0)
    assert gap is True
    assert out[1:] == events[first_kept - 1:]
    assert out[0].key == "gmcp:Char.Vitals" and out[0].seq < first_kept


class Timers:
    """``call_later`` for the compactor, fired by the test: its clock is injected."""

    class Timer:
        def __init__(self, callback, delay: float = 0.0) -> None:
            self.callback, self.cancelled, self.delay = callback, False, delay

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.due: list[Timers.Timer] = []

    def call_later(self, delay: float, callback) -> "Timers.Timer":
        timer = self.Timer(callback, delay)
        self.due.append(timer)
        return timer

    def fire(self) -> None:
        """A period passes: the timers set so far go off (those cancelled do not)."""
        due, self.due = self.due, []
        for timer in due:
            if not timer.cancelled:
                timer.callback()


def test_compactor_compresses_sealed_blocks_and_quiet_open_blocks():
    from gateway.replay import ReplayCompactor
    timers = Timers()
    compactor = ReplayCompactor(timers.call_later, period=1.0)
    buf = ReplayBuffer(1 << 20, block_bytes=5000)  # one sealed block, one open of 3,000 bytes
    for seq in range(1, 101):
        buf.add(Kept(seq, "echo", b'{"message":"hello there, adventurer\\n"}' * 2, None))
    compactor.watch(buf)
    assert buf.sealed_raw > 0 and len(timers.due) == 1
    timers.fire()                     # added to since: the sealed block compressed, looked at again
    assert buf.sealed_raw == 0 and len(compactor) == 1 and len(timers.due) == 1
    timers.fire()
    assert len(compactor) == 0        # quiet for a period: open block compressed too, then forgotten
    assert timers.due == []           # and no timer while no buffer has work
    assert buf.sealed_raw == 0
    assert all(b.entries is None for b in buf._blocks)
    assert [k.seq for k in buf.since(0)[0]] == list(range(1, 101))
    compactor.close()


def test_compactor_sweeps_a_slice_of_buffers_a_turn(monkeypatch):
    """A sweep looks at ``SWEEP_SLICE`` buffers, then gives the loop a turn (its next slice
    is due at once, not a period on); the next sweep comes a period after the last slice."""
    from gateway import replay
    monkeypatch.setattr(replay, "SWEEP_SLICE", 2)
    timers = Timers()
    compactor = replay.ReplayCompactor(timers.call_later, period=1.0)
    bufs = [ReplayBuffer(1 << 20, block_bytes=5000) for _ in range(5)]
    for buf in bufs:
        for seq in range(1, 101):
            buf.add(Kept(seq, "echo", b'{"message":"hello there, adventurer\\n"}' * 2, None))
        compactor.watch(buf)
    assert [t.delay for t in timers.due] == [1.0]
    timers.fire()
    assert sum(b.sealed_raw == 0 for b in bufs) == 2  # two buffers, then the loop's turn
    assert [t.delay for t in timers.due] == [0]  # the next slice: at once
    waiting = [b for b in bufs if b.sealed_raw]
    compactor.forget(waiting[0])  # forgotten while the sweep is under way: not looked at
    timers.fire()
    timers.fire()
    assert [b.sealed_raw == 0 for b in bufs] == [b is not waiting[0] for b in bufs]
    assert [t.delay for t in timers.due] == [1.0]  # all looked at: the next sweep, a period on
    assert len(compactor) == 4
    compactor.close()
    assert timers.due == [] or all(t.cancelled for t in timers.due)


def test_compactor_gives_the_loop_a_turn_once_a_slice_compressed_for_its_time():
    """A slice ends after the buffer whose compression takes it past ``SLICE_SECONDS`` (the
    clock is injected): every player's game gone quiet at once makes a sweep seal as many
    open blocks, 11-12 ms a thousand, and the round trips must not wait for all of them. Looks
    with nothing to compress cost no time of the slice's."""
    from gateway import replay
    timers = Timers()
    now = [0.0]

    def clock() -> float:  # each reading 0.6 of a slice's time later: two compressions a slice
        now[0] += replay.SLICE_SECONDS * 0.6
        return now[0]

    compactor = replay.ReplayCompactor(timers.call_later, period=1.0, clock=clock)
    quiet, small = [ReplayBuffer(1 << 20) for _ in range(5)], [ReplayBuffer(1 << 20) for _ in range(5)]
    for buf in quiet + small:
        for seq in range(1, 41 if buf in quiet else 3):
            buf.add(Kept(seq, "echo", b'{"message":"You hear the wind howl outside.\\n"}' * 2, None))
        compactor.watch(buf)
    assert all(b._open_size >= replay.QUIET_SEAL_BYTES for b in quiet)
    assert all(b._open_size < replay.QUIET_SEAL_BYTES for b in small)
    timers.fire()  # a period on: all were added to since, nothing sealed yet: one slice
    assert [t.delay for t in timers.due] == [1.0]
    slices = []
    timers.fire()  # quiet for a period: their open blocks are sealed, two a slice
    slices.append(sum(b._open_size == 0 for b in quiet))
    while [t.delay for t in timers.due] == [0]:
        timers.fire()
        slices.append(sum(b._open_size == 0 for b in quiet))
    assert slices == [2, 4, 5]
    assert timers.due == [] and len(compactor) == 0  # all quiet: forgotten, no timer
    for buf in quiet:
        assert all(b.entries is None for b in buf._blocks)
        assert [k.seq for k in buf.since(0)[0]] == list(range(1, 41))
    compactor.close()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(event_kinds, st.integers(0, 40), st.booleans()), max_size=50),
    st.integers(0, 300),
    st.integers(1, 60),
)
def test_handoff_state_of_compressed_blocks_resumes_the_same(kinds, max_bytes, block_bytes):
    """An upgrade in place carries the buffer (to_state/from_state): compressed or not, the same answers."""
    events = [Kept(i + 1, name, bytes([97 + i % 26]) * size, key)
              for i, ((name, key), size, _) in enumerate(kinds)]
    buf = ReplayBuffer(max_bytes, block_bytes=block_bytes)
    for e, (_, _, compact) in zip(events, kinds):
        buf.add(e)
        if compact:
            buf.compact(seal_open=True)
    again = ReplayBuffer.from_state(buf.to_state(), max_bytes)
    assert again.size == buf.size and len(again) == len(buf) and again.dropped_upto == buf.dropped_upto
    for last_seq in range(len(events) + 2):
        assert again.since(last_seq) == buf.since(last_seq)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(event_kinds, st.integers(0, 40), st.booleans(), st.booleans()), max_size=80),
    st.integers(0, 300),
    st.integers(1, 80),
    st.data(),
)
def test_add_many_is_add_of_each(kinds, max_bytes, block_bytes, data):
    """The session adds a game read's events at once (``add_many``): the same answers, the same
    size, count and drops as one ``add`` each, with compaction between reads at any point."""
    events = [Kept(i + 1, name, bytes([65 + i % 26]) * size, key)
              for i, ((name, key), size, _, _) in enumerate(kinds)]
    many = ReplayBuffer(max_bytes, block_bytes=block_bytes)
    each = ReplayBuffer(max_bytes, block_bytes=block_bytes)
    start = 0
    while start < len(events):
        end = data.draw(st.integers(start + 1, len(events)))
        many.add_many(events[start:end])
        for e in events[start:end]:
            each.add(e)
        _, _, compact, seal_open = kinds[end - 1]
        if compact:
            many.compact(seal_open=seal_open)
            each.compact(seal_open=seal_open)
        start = end
    assert (many.size, len(many), many.dropped_upto) == (each.size, len(each), each.dropped_upto)
    for last_seq in range(len(events) + 2):
        assert many.since(last_seq) == each.since(last_seq) == model_since(events, max_bytes, last_seq)
    again = ReplayBuffer.from_state(many.to_state(), max_bytes)
    assert again.since(0) == each.since(0)


def test_a_compressed_block_holds_no_more_than_its_data():
    """The compressor's output is kept in an object of its own size (zstandard hands back one
    that keeps the worst case's allocation, four times what a MUD block compresses to)."""
    import random
    import tracemalloc

    from gateway.replay import BLOCK_BYTES, _compress, _decompress
    rng = random.Random(3)
    words = [b"the", b"orc", b"hits", b"you", b"\\u001b[1;31m", b"north", b"gold", b"sword", b"dragon"]
    blob = b" ".join(rng.choice(words) for _ in range(BLOCK_BYTES // 5))[:BLOCK_BYTES]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        data = _compress(blob)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(data) < len(blob) // 3
    assert held < len(data) + 256, (held, len(data))
    assert _decompress(data) == blob


async def test_memory_freed_elsewhere_counts_toward_the_next_trim():
    """Quiet sockets' deflate contexts (routes.py's sweep): counted with the compactor's own
    savings; the heap is trimmed at once when no buffer has work, else at the next sweep."""
    from gateway.replay import TRIM_AFTER_BYTES, ReplayCompactor
    compactor = ReplayCompactor(asyncio.get_running_loop().call_later, period=0.01)
    compactor.freed(TRIM_AFTER_BYTES // 2)
    assert compactor.saved == TRIM_AFTER_BYTES // 2  # not yet worth a trim
    compactor.freed(TRIM_AFTER_BYTES // 2)
    assert compactor.saved == 0  # trimmed
    buf = ReplayBuffer(1 << 20)
    buf.add(Kept(1, "echo", b'{"message":"x"}', None))
    compactor.watch(buf)  # a buffer with work: its sweep trims, not freed()
    compactor.freed(TRIM_AFTER_BYTES)
    assert compactor.saved == TRIM_AFTER_BYTES
    compactor.close()


# -- the bound of the dropped state (issue 17 item 8) ----------------------------------------

from gateway import replay as replay_module  # noqa: E402
from gateway.replay import STATE_BYTES, STATE_KEYS  # noqa: E402


def test_dropped_state_keeps_the_newest_module_names_up_to_its_bound():
    """A game that makes up a new module name per message: the latest of at most STATE_KEYS
    modules is remembered, the newest; the latest option stays whatever its age."""
    buf = ReplayBuffer(0)
    buf.add(option(1))
    n = STATE_KEYS * 4
    buf.add_many([gmcp(seq, f"Room.Id{seq}") for seq in range(2, n + 2)])
    out, gap = buf.since(0)
    assert gap is True
    assert len(out) == STATE_KEYS + 1
    assert seqs(out) == [1] + list(range(n + 2 - STATE_KEYS, n + 2))
    assert buf.state_size == sum(len(k.payload) for k in out)


def test_a_module_sent_again_is_newest_again():
    buf = ReplayBuffer(0)
    buf.add(gmcp(1, "Char.Vitals"))
    for seq in range(2, STATE_KEYS + 1):
        buf.add(gmcp(seq, f"Room.Id{seq}"))
    buf.add(gmcp(STATE_KEYS + 1, "Char.Vitals"))  # the oldest module, again: now the newest
    buf.add(gmcp(STATE_KEYS + 2, "Room.New"))
    out, _ = buf.since(0)
    assert len(out) == STATE_KEYS
    assert out[-2:] == [gmcp(STATE_KEYS + 1, "Char.Vitals"), gmcp(STATE_KEYS + 2, "Room.New")]
    assert gmcp(2, "Room.Id2") not in out  # the oldest went


def test_dropped_state_bytes_are_bounded():
    big = STATE_BYTES // 10
    buf = ReplayBuffer(100)
    for seq in range(1, 31):
        buf.add(gmcp(seq, f"Char.Items{seq}", big))
    assert buf.state_size <= STATE_BYTES
    out, _ = buf.since(0)
    assert seqs(out) == list(range(21, 31))  # ten of them fit: the newest ten


def test_the_bound_holds_through_compressed_blocks_and_a_handoff():
    buf = ReplayBuffer(2000, block_bytes=300)
    for seq in range(1, 5001):
        buf.add(gmcp(seq, f"M{seq}", 20) if seq % 3 else echo(seq, 30))
        if seq % 97 == 0:
            buf.compact(seal_open=True)
    assert len(buf._dropped_state) <= STATE_KEYS + 1
    again = ReplayBuffer.from_state(buf.to_state(), 2000)
    assert len(again._dropped_state) <= STATE_KEYS + 1
    assert again.since(4000) == buf.since(4000)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["A", "B", "C", "D", "E", "F", "option"]), st.integers(1, 30)),
             max_size=80),
    st.integers(0, 120),
    st.integers(1, 60),
)
def test_dropped_state_bound_model(kinds, max_bytes, block_bytes):
    """With a bound of 3 keys and 40 bytes: what is remembered is the latest dropped event of
    its key, at most 3 keys (besides the option) and 40 bytes (besides the option), and the
    newest dropped state event (when it fits alone) is always among them."""
    keys, size = replay_module.STATE_KEYS, replay_module.STATE_BYTES
    replay_module.STATE_KEYS, replay_module.STATE_BYTES = 3, 40
    try:
        events = [option(i + 1, n) if m == "option" else gmcp(i + 1, m, n) for i, (m, n) in enumerate(kinds)]
        buf = ReplayBuffer(max_bytes, block_bytes=block_bytes)
        buf.add_many(events)
        state = buf._dropped_state
        dropped = [k for k in events if k.seq <= buf.dropped_upto]
        latest = {k.key: k for k in dropped}
        assert all(latest[key] == k for key, k in state.items())
        assert len([key for key in state if key != "option"]) <= 3
        assert sum(len(k.payload) for key, k in state.items() if key != "option") <= 40
        assert buf.state_size == sum(len(k.payload) for k in state.values())
        if "option" in latest:
            assert state["option"] == latest["option"]
        if dropped and len(dropped[-1].payload) <= 40:
            assert state[dropped[-1].key] == dropped[-1]
    finally:
        replay_module.STATE_KEYS, replay_module.STATE_BYTES = keys, size


def test_a_lowered_limit_applies_from_the_next_event_and_trim_cuts_at_once():
    """The session gives the live replay_bytes with each read (``add_many``); a join cuts the
    buffer to it (``trim``): the SPEC 6 rule holds for what is cut."""
    buf = ReplayBuffer(1000)
    buf.add_many([echo(1, 100), gmcp(2, "Char", 100), echo(3, 100), echo(4, 100)])
    assert buf.size == 400
    buf.add_many([echo(5, 100)], 250)
    assert buf.size == 200 and seqs(buf.since(0)[0]) == [2, 4, 5]
    buf.trim(100)
    assert seqs(buf.since(0)[0]) == [2, 5] and buf.since(0)[1] is True
    buf.trim(0)
    assert buf.since(0) == ([gmcp(2, "Char", 100)], True)


@pytest.mark.parametrize("kind", ["echo", "gmcp"])
def test_a_compressed_block_costs_about_its_payloads_compressed_alone(kind):
    """A block is compressed by column (names, keys, then the payloads end to end), so the
    payloads' repeats lie together: it comes out within a few per cent of the payloads alone.
    Each event as its own msgpack array (seq, name, payload, key) came out 11% larger for MUD
    text and 33% for vitals: a full buffer's memory, every session's."""
    import random

    from gateway.replay import BLOCK_BYTES, _Block, _compress
    rng = random.Random(3)
    words = ["the", "orc", "hits", "you", "\x1b[1;31m", "\x1b[0m", "north", "gold", "sword", "dragon"]
    entries, size, seq = [], 0, 0
    while size < BLOCK_BYTES:
        seq += 1
        if kind == "echo":
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 20)))
            payload = b'{"message":"%s\\n","seq":%d,"sent_at":"2026-12-07T19:00:00.%06dZ"}' % (
                text.encode(), seq, rng.randint(0, 999999))
        else:
            payload = (b'{"module":"Char.Vitals","data":{"hp":%d,"maxhp":1000,"mp":%d,"maxmp":500},"seq":%d,'
                       b'"sent_at":"2026-12-07T19:00:00.%06dZ"}' % (rng.randint(0, 1000), rng.randint(0, 500),
                                                                   seq, rng.randint(0, 999999)))
        entries.append(Kept(seq, kind, payload, None if kind == "echo" else "gmcp:Char.Vitals"))
        size += len(payload)
    block = _Block(1)
    block.entries = list(entries)
    block.sizes.extend(len(k.payload) for k in entries)
    block.compress()
    alone = len(_compress(b"".join(k.payload for k in entries)))
    assert len(block.data) <= alone * 1.08, (len(block.data), alone)
    assert block.events() == entries
