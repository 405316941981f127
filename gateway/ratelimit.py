"""Token buckets, sans-I/O: a session's input rate limit (SPEC 3 ``limits.input_lines_per_second``
/ ``input_burst``), and an address's (``Buckets``: sessions it starts, what its sockets have read)."""

from __future__ import annotations

from .handoff import BucketState


class TokenBucket:
    """Tokens refilled at ``rate`` a second, at most ``burst`` saved up; a refused take uses none.

    ``rate`` and ``burst`` are given to each :meth:`take` rather than kept, so that a
    reloaded config (SIGHUP) applies at once to buckets that already exist.
    """

    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = float(tokens)
        self.stamp = now

    def available(self, now: float, rate: float, burst: int) -> float:
        """The tokens there are at ``now`` (none taken)."""
        return min(burst, self.tokens + (now - self.stamp) * rate)

    def take(self, n: int, now: float, rate: float, burst: int) -> bool:
        tokens = self.available(now, rate, burst)
        self.stamp = now
        if n > tokens:
            self.tokens = tokens
            return False
        self.tokens = tokens - n
        return True

    def spend(self, n: float, now: float, rate: float, burst: float) -> float:
        """Take ``n`` even past none (a debt, paid back at ``rate``); the seconds until the
        bucket is out of debt again: 0.0 while it is not in debt."""
        tokens = self.tokens = self.available(now, rate, burst) - n
        self.stamp = now
        return -tokens / rate if tokens < 0 else 0.0

    def to_state(self) -> BucketState:
        return BucketState(tokens=self.tokens, stamp=self.stamp)

    def restore(self, state: BucketState) -> None:
        """The bucket as it was (the next take applies the config's rate and burst)."""
        self.tokens = state.tokens
        self.stamp = state.stamp


class Buckets:
    """A bucket per key (an address), made full at its first use. A full bucket is the same as
    none, so the table is pruned of those whenever it has doubled since the last prune (at
    ``PRUNE_AT`` entries at least): it holds the keys that used theirs lately, not every key
    ever seen."""

    PRUNE_AT = 1024
    __slots__ = ("_buckets", "_pruned_at")

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._pruned_at = 0  # the table's size after the last prune

    def __len__(self) -> int:
        return len(self._buckets)

    def get(self, key: str, now: float, rate: float, burst: float) -> TokenBucket:
        """``key``'s bucket (a full one when it has none)."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= max(self.PRUNE_AT, 2 * self._pruned_at):
                for full in [k for k, b in buckets.items() if b.available(now, rate, burst) >= burst]:
                    del buckets[full]
                self._pruned_at = len(buckets)
            bucket = buckets[key] = TokenBucket(burst, now)
        return bucket
