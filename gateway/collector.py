"""How the server process uses CPython's cycle collector (docs/performance.md 1.16).

The collector's full pass walks every object it tracks, with the event loop held: ~0.3 s at
10,000 sessions (about 43 objects each). CPython owes one whenever the objects that live long
have grown by a quarter since the last, so it is players arriving that bring full passes on,
and each one stalls every player's round trip.

An ended session needs no collector: everything of it goes by reference counting
(tests/test_collector.py ends sessions in every way SPEC names while the gateway runs, and
finds no cyclic garbage).
So what survives a full pass is the process's live state, and :func:`freeze_survivors` takes
it out of the collector's sight (``gc.freeze``) at the end of each full pass: the next one walks
only what is new since, and the stall is as long as the growth since the last pass, not as
the whole process. The young passes go on as before and catch the cycles that are made and
dropped between full passes (parsing a config makes some). A frozen object is still freed by
reference counting the moment nothing holds it.

The cost: a cycle formed later among frozen objects is never collected. The tests above say
no session forms one; ``MUD_GATEWAY_GC=plain`` in the environment keeps CPython's own way.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

#: ``MUD_GATEWAY_GC=plain``: leave the collector as CPython has it.
ENV = "MUD_GATEWAY_GC"


def _after_pass(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def freeze_survivors() -> Callable[[], None]:
    """From now on, what survives a full pass is frozen; what start-up made and keeps is at once.
    Returns the undo: no more freezing, and everything frozen back in the collector's sight."""
    gc.callbacks.append(_after_pass)
    gc.collect()

    def undo() -> None:
        gc.callbacks.remove(_after_pass)
        gc.unfreeze()
    return undo


def configure() -> tuple[str, Callable[[], None] | None]:
    """The policy the environment asks for: (its name for the start-up log line, its undo)."""
    if os.environ.get(ENV, "").lower() == "plain":
        return "plain", None
    return "survivors frozen", freeze_survivors()
