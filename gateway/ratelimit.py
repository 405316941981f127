"""Player input rate limit (SPEC 3 ``limits.input_lines_per_second`` / ``input_burst``), sans-I/O."""

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

    def to_state(self) -> BucketState:
        return BucketState(tokens=self.tokens, stamp=self.stamp)

    def restore(self, state: BucketState) -> None:
        """The bucket as it was (the next take applies the config's rate and burst)."""
        self.tokens = state.tokens
        self.stamp = state.stamp
