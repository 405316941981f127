"""Player input rate limit (SPEC 3 ``limits.input_lines_per_second`` / ``input_burst``), sans-I/O."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; a refused take uses none."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, n: int, now: float) -> bool:
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if n > tokens:
            self.tokens = tokens
            return False
        self.tokens = tokens - n
        return True
