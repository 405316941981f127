"""The output a session keeps for resume (SPEC 6), sans-I/O.

Every output event is kept, already encoded as its JSON payload, until the
kept payloads exceed ``max_bytes``; then the oldest go first. For the events
that went, the latest ``gmcp`` of each module and the latest ``option`` are
remembered, so that a resume after a long gap still restores the current
GMCP and echo state.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from .handoff import ReplayState


class Kept(NamedTuple):
    seq: int
    event: str        # Phoenix event name: echo, prompt, gmcp, option
    payload: bytes    # the encoded JSON payload, sent again as it was
    key: str | None   # "gmcp:<module>" or "option" for state events, else None


class ReplayBuffer:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._kept: deque[Kept] = deque()
        self._dropped_state: dict[str, Kept] = {}  # key -> latest dropped state event
        self.dropped_upto = 0                       # highest seq dropped

    def __len__(self) -> int:
        return len(self._kept)

    def add(self, entry: Kept) -> None:
        self._kept.append(entry)
        self.size += len(entry.payload)
        while self.size > self.max_bytes and self._kept:
            old = self._kept.popleft()
            self.size -= len(old.payload)
            self.dropped_upto = old.seq
            if old.key is not None:
                self._dropped_state[old.key] = old

    def since(self, last_seq: int) -> tuple[list[Kept], bool]:
        """The events to replay after ``last_seq``, in seq order, and whether any were lost."""
        gap = self.dropped_upto > last_seq
        out: list[Kept] = []
        if gap:
            out = sorted((k for k in self._dropped_state.values() if k.seq > last_seq),
                         key=lambda k: k.seq)
        for k in self._kept:
            if k.seq > last_seq:
                out.append(k)
        return out, gap

    def to_state(self) -> ReplayState:
        return ReplayState(max_bytes=self.max_bytes, size=self.size, kept=list(self._kept),
                           dropped_state=list(self._dropped_state.values()),
                           dropped_upto=self.dropped_upto)

    @classmethod
    def from_state(cls, state: ReplayState, max_bytes: int) -> "ReplayBuffer":
        """The buffer as it was; ``max_bytes`` (the config's now) applies from the next event on."""
        buf = cls(max_bytes)
        buf._kept.extend(Kept(*k) for k in state.kept)
        buf.size = state.size
        buf._dropped_state = {k[3]: Kept(*k) for k in state.dropped_state if k[3] is not None}
        buf.dropped_upto = state.dropped_upto
        return buf
