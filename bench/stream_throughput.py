"""Throughput of the sans-I/O telnet core (gateway.telnet.stream.TelnetStream).

Builds a deterministic, realistic MUD transcript in memory (ANSI colour in
16, 256 and 24-bit forms, UTF-8, room descriptions, prompts ended by IAC GA,
a GMCP Char.Vitals / Room.Info subnegotiation every 3-5 lines), cuts it into
reads the size a socket delivers, and times, in this one process, best of N:

  baseline   data.decode("utf-8", "replace").split("\\n") on the WHOLE buffer
             (one call: the cheapest conceivable "bytes to lines"; no telnet)
  core       TelnetStream.feed(chunk, now) for every chunk, events counted
  telnetlib3 telnetlib3's own receive path (TelnetClient._process_chunk, the
             reader discarding the text) on a prefix only: it is slow

and reports MB/s and ratio = baseline_time / time (the same bytes, the same
run). The core must reach a ratio of 0.25 (--check turns a FAIL into exit 1).

    python bench/stream_throughput.py [--mb 50] [--runs 5] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import random
import sys
import time
from typing import Callable

from gateway.telnet.stream import TelnetStream

IAC, SB, SE, GA, WILL = 255, 250, 240, 249, 251
GMCP = 201
REQUIRED_RATIO = 0.25

# -- the transcript -------------------------------------------------------------

RESET = "\x1b[0m"
SGR16 = ["\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m", "\x1b[37m",
         "\x1b[1;31m", "\x1b[1;32m", "\x1b[1;33m", "\x1b[1;36m", "\x1b[1;37m", "\x1b[0;32m"]
WORDS = ("the a an old narrow dusty cobbled market square tavern road north south east west "
         "lantern flickers smell of bread and ale drifts through air guard watches you "
         "carefully merchant shouts prices crowd moves slowly toward gate stone walls rise "
         "above ancient tower shadows fall across ground wind carries distant bells "
         "café naïve élan crème déjà ☕ façade").split()
ROOMS = ["The Market Square", "A Narrow Alley", "The Prancing Pony", "North Gate",
         "Temple of the Sun", "Café du Nord ☕", "Dusty Road", "Inside the Old Tower",
         "The Riverbank", "Guild Hall"]
MOBS = ["A town guard", "A fat merchant", "A stray dog", "The barkeep", "An old woman",
        "A cloaked stranger", "A young élève"]
CHANNELS = [("gossip", "\x1b[38;5;208m"), ("ooc", "\x1b[38;5;39m"), ("clan", "\x1b[38;2;255;105;180m"),
            ("newbie", "\x1b[38;2;120;200;80m")]


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = rng.choices(WORDS, k=rng.randint(lo, hi))
    return " ".join(words).capitalize() + "."


def _wrap(text: str, width: int = 78) -> list[str]:
    lines, cur = [], ""
    for w in text.split(" "):
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(cur)
    return lines


def _gmcp(rng: random.Random, state: dict) -> bytes:
    if rng.random() < 0.7:
        state["hp"] = max(1, min(state["maxhp"], state["hp"] + rng.randint(-40, 30)))
        state["mp"] = max(0, min(state["maxmp"], state["mp"] + rng.randint(-20, 20)))
        module, data = "Char.Vitals", {"hp": state["hp"], "maxhp": state["maxhp"], "mp": state["mp"],
                                       "maxmp": state["maxmp"], "mv": rng.randint(50, 300),
                                       "maxmv": 300, "string": f"H:{state['hp']}/{state['maxhp']}"}
    else:
        num = rng.randint(1000, 99999)
        module, data = "Room.Info", {
            "num": num, "name": rng.choice(ROOMS), "zone": rng.choice(["town", "wilds", "crypt"]),
            "terrain": rng.choice(["city", "forest", "inside"]),
            "exits": {d: rng.randint(1000, 99999) for d in rng.sample(["n", "s", "e", "w", "u", "d"], rng.randint(1, 4))},
            "coord": {"id": rng.randint(1, 50), "x": rng.randint(0, 99), "y": rng.randint(0, 99), "cont": 0}}
    payload = f"{module} {json.dumps(data, ensure_ascii=False)}".encode()
    return bytes((IAC, SB, GMCP)) + payload.replace(b"\xff", b"\xff\xff") + bytes((IAC, SE))


def _block(rng: random.Random, state: dict) -> list[str]:
    """A few lines of game output (without the line ends)."""
    r = rng.random()
    if r < 0.30:  # a room
        out = [f"\x1b[1;36m{rng.choice(ROOMS)}\x1b[0m"]
        out += [f"   {line}" if i == 0 else line
                for i, line in enumerate(_wrap(" ".join(_sentence(rng, 6, 16) for _ in range(rng.randint(2, 5)))))]
        exits = " ".join(rng.sample(["north", "south", "east", "west", "up", "down"], rng.randint(1, 4)))
        out.append(f"\x1b[0;32m[Exits: {exits}]\x1b[0m")
        out += [f"\x1b[1;33m{m} is here.\x1b[0m" for m in rng.sample(MOBS, rng.randint(0, 3))]
        return out
    if r < 0.55:  # combat
        c = rng.choice(SGR16)
        return [f"{c}{rng.choice(MOBS)} {rng.choice(['hits', 'misses', 'slashes', 'MASSACRES'])} "
                f"you{RESET} for \x1b[1;31m{rng.randint(1, 99)}\x1b[0m damage."
                for _ in range(rng.randint(1, 4))]
    if r < 0.75:  # chat, 256-colour and truecolour
        name, colour = rng.choice(CHANNELS)
        return [f"{colour}[{name}] {rng.choice(['Élodie', 'Bob', 'Zoë', 'Kai'])}: "
                f"{_sentence(rng, 3, 14)}{RESET}"]
    if r < 0.85:
        return [""]  # a blank line
    return _wrap(_sentence(rng, 10, 40))  # plain narration


def transcript(megabytes: float, seed: int = 1) -> bytes:
    """~``megabytes`` MB of game output, the same for the same seed."""
    rng = random.Random(seed)
    state = {"hp": 500, "maxhp": 500, "mp": 200, "maxmp": 200}
    target = int(megabytes * 1_000_000)
    parts: list[bytes] = [bytes((IAC, WILL, GMCP))]  # the game offers GMCP first
    size = 3
    next_gmcp = rng.randint(3, 5)
    while size < target:
        for line in _block(rng, state):
            text = (line + "\r\n").encode()
            parts.append(text)
            size += len(text)
            next_gmcp -= 1
            if next_gmcp == 0:  # GMCP every 3-5 lines, between two lines
                g = _gmcp(rng, state)
                parts.append(g)
                size += len(g)
                next_gmcp = rng.randint(3, 5)
        if rng.random() < 0.25:  # a prompt, ended by IAC GA
            p = (f"\x1b[0;37m<{state['hp']}/{state['maxhp']}hp {state['mp']}/{state['maxmp']}mn "
                 f"{rng.randint(50, 300)}mv>{RESET} ").encode() + bytes((IAC, GA))
            parts.append(p)
            size += len(p)
    return b"".join(parts)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


# -- what is timed ----------------------------------------------------------------

def run_baseline(data: bytes) -> int:
    return len(data.decode("utf-8", "replace").split("\n"))


def run_core(chunks: list[bytes]) -> int:
    stream = TelnetStream("utf-8", flush_after=0.1)
    feed = stream.feed
    n = 0
    now = 0.0
    for chunk in chunks:
        now += 0.0001
        n += len(feed(chunk, now))
    return n + len(stream.finish())


class _NullTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name, default=None):
        return default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def telnetlib3_runner() -> Callable[[list[bytes]], int]:
    """telnetlib3's receive path, set up as a real connection would be (encoding=False)."""
    import logging

    from telnetlib3 import client as tl_client

    logging.getLogger("telnetlib3").setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def run(chunks: list[bytes]) -> int:
        client = tl_client.TelnetClient(encoding=False, connect_maxwait=0.0)
        client.connection_made(_NullTransport())
        received = [0]

        def discard(data: bytes) -> None:  # the reader: count, keep nothing
            received[0] += len(data)

        client.reader.feed_data = discard
        process = client._process_chunk
        for chunk in chunks:
            process(chunk)
        return received[0]

    return run


def census(chunks: list[bytes]) -> dict[str, int]:
    """Untimed: how many events of each kind the core produced (a check that it did the work)."""
    stream = TelnetStream("utf-8", flush_after=0.1)
    counts: dict[str, int] = {}
    for chunk in chunks:
        for ev in stream.feed(chunk, 0.0):
            counts[type(ev).__name__] = counts.get(type(ev).__name__, 0) + 1
    for ev in stream.finish():
        counts[type(ev).__name__] = counts.get(type(ev).__name__, 0) + 1
    return counts


def best_of(runs: int, fn: Callable, arg) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        result = fn(arg)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=50.0, help="transcript size in MB (default 50)")
    ap.add_argument("--runs", type=int, default=5, help="best of this many runs (default 5)")
    ap.add_argument("--telnetlib3-mb", type=float, default=5.0,
                    help="prefix fed to telnetlib3 (default 5; 0 skips it)")
    ap.add_argument("--telnetlib3-runs", type=int, default=3, help="best of this many (default 3)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check", action="store_true", help="exit 1 when the core's ratio is below 0.25")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    data = transcript(args.mb, args.seed)
    gen = time.perf_counter() - t0
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{len(data):,} bytes of transcript (seed {args.seed}, built in {gen:.1f}s); best of {args.runs}")
    n_lines, n_gmcp, n_ga = data.count(b"\r\n"), data.count(bytes((IAC, SB, GMCP))), data.count(bytes((IAC, GA)))
    print(f"transcript: {n_lines:,} lines, {n_gmcp:,} GMCP, {n_ga:,} prompts (IAC GA)")
    print()
    header = f"{'path':<44} {'bytes':>12} {'best s':>8} {'MB/s':>8} {'events':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))

    def row(name: str, nbytes: int, secs: float, events: str, ratio: str) -> None:
        print(f"{name:<44} {nbytes:>12,} {secs:>8.3f} {nbytes / 1e6 / secs:>8.1f} {events:>9} {ratio:>6}")

    base_t, base_lines = best_of(args.runs, run_baseline, data)
    row("baseline: decode+split, whole buffer", len(data), base_t, f"{base_lines:,}", "1.00")
    ok = True
    for size in (4096, 65536):
        chunks = chunked(data, size)
        core_t, events = best_of(args.runs, run_core, chunks)
        ratio = base_t / core_t
        if size == 4096:
            ok = ratio >= REQUIRED_RATIO
            core_ratio = ratio
            kinds = census(chunks)
        row(f"core: TelnetStream.feed, {size // 1024} KiB reads", len(data), core_t, f"{events:,}", f"{ratio:.2f}")
        del chunks

    if args.telnetlib3_mb > 0:
        chunks = chunked(data, 4096)
        keep = max(1, int(args.telnetlib3_mb * 1e6) // 4096)
        prefix = chunks[:keep]
        del chunks
        prefix_data = b"".join(prefix)
        pb_t, pb_lines = best_of(args.runs, run_baseline, prefix_data)
        row(f"baseline: decode+split, {len(prefix_data) / 1e6:.1f} MB prefix", len(prefix_data), pb_t,
            f"{pb_lines:,}", "1.00")
        pc_t, pc_events = best_of(args.runs, run_core, prefix)
        row("core: TelnetStream.feed, 4 KiB, prefix", len(prefix_data), pc_t, f"{pc_events:,}",
            f"{pb_t / pc_t:.2f}")
        tl_t, _ = best_of(args.telnetlib3_runs, telnetlib3_runner(), prefix)
        row("telnetlib3: _process_chunk, 4 KiB, prefix", len(prefix_data), tl_t, "-", f"{pb_t / tl_t:.3f}")

    print()
    print("core events (4 KiB reads): " + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))
    if kinds.get("Gmcp", 0) != n_gmcp or kinds.get("Prompt", 0) != n_ga:
        print("WARNING: the core's GMCP/prompt event counts differ from the transcript's")
    print("ratio = baseline time / this path's time, on the same bytes, measured in this run")
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}: core ratio {core_ratio:.2f} (4 KiB reads) vs required >= {REQUIRED_RATIO}")
    return 1 if (args.check and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
