"""The long fuzz run: ``./dev fuzz [SECONDS]`` (default 600), outside CI.

Runs each target of :mod:`tests.fuzz.targets` for its share of the time, in
rounds of fresh random examples, and prints the budget used: examples per
target, seconds, peak memory (RSS) of the process. Exit 0 when nothing failed
and the peak stayed under ``--max-rss-mib``; 1 otherwise (with the failing
example, shrunk, and a blob to reproduce it).
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
import traceback

import hypothesis

from tests.fuzz.targets import BATCH, TARGETS, counts


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=float, default=600.0, help="total budget (default 600)")
    parser.add_argument("--only", choices=sorted(TARGETS), help="run one target only")
    parser.add_argument("--max-rss-mib", type=float, default=1024.0,
                        help="fail when the process's peak memory exceeds this (default 1024)")
    args = parser.parse_args(argv)
    names = [args.only] if args.only else list(TARGETS)
    share = args.seconds / len(names)
    failed = []
    print(f"fuzz: {args.seconds:.0f} s over {', '.join(names)} (rounds of {BATCH} examples); "
          f"python {platform.python_version()}, hypothesis {hypothesis.__version__}", flush=True)
    for name in names:
        target = TARGETS[name]
        started = time.monotonic()
        rounds = 0
        while time.monotonic() - started < share:
            rounds += 1
            try:
                target()
            except Exception as exc:  # the shrunk example is in the exception's notes
                traceback.print_exception(exc)
                print(f"fuzz: {name}: FAILED in round {rounds}: {type(exc).__name__}: {exc}", flush=True)
                failed.append(name)
                break
        elapsed = time.monotonic() - started
        print(f"fuzz: {name}: {counts[name]} examples in {rounds} rounds, {elapsed:.0f} s, "
              f"peak RSS so far {peak_rss_mib():.0f} MiB", flush=True)
    peak = peak_rss_mib()
    if peak > args.max_rss_mib:
        print(f"fuzz: peak RSS {peak:.0f} MiB is over {args.max_rss_mib:.0f} MiB", flush=True)
        failed.append("memory")
    print(f"fuzz: {'FAILED: ' + ', '.join(failed) if failed else 'ok'}; peak RSS {peak:.0f} MiB", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
