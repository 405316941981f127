"""End-to-end latency: browser push -> gateway -> game -> gateway -> browser event.

Three processes on 127.0.0.1 only:

  echo MUD   (subprocess) asyncio server: every line received is sent back
             with CRLF; no telnet negotiation.
  gateway    (subprocess) gateway.routes.create_app on aiohttp's AppRunner /
             TCPSite, pointing at the echo MUD. A subprocess, so that on a
             2-core machine the gateway does not share an event loop (or a
             GIL) with the 500 benchmark clients.
  clients    (this process) Phoenix V2 clients (aiohttp ws_connect to
             /socket/websocket?vsn=2.0.0, join telnet:<uuid4> with {}), each
             pushing ["1", ref, topic, "recv", {"message": "ping <n>"}] and
             timing until the `echo` event carrying "ping <n>" arrives; then,
             as the baseline, the same number of raw TCP clients talking to the
             same echo MUD directly ("ping <n>\\r\\n", wait for the line).

Each client does its round trips one after another (a closed loop: with 500
clients the numbers are those of a saturated system, latency ~ clients /
throughput); all clients start together once every one has connected and
joined, and all hang up together after the last round trip, so no connect or
teardown overlaps a measurement. The first --warmup round trips of each
client are not counted. Where the OS allows, the gateway is pinned to one CPU
and the clients to another (--no-pin to let the scheduler place them); the
echo MUD floats. Reported per phase: p50/p99/max latency, round trips per
second, the time to connect (and join) every client, and the CPU each process
used while the round trips ran (1.00 = one core busy). Everything is bounded:
--timeout seconds for the whole run (default 120), 10 s per round trip.

    python bench/roundtrip.py [--sessions 500] [--rounds 20] [--single-rounds 500]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import resource
import sys
import threading
import time
import uuid

HOST = "127.0.0.1"
ROUND_TIMEOUT = 10.0


# -- the two servers (run as subprocesses of this script) ------------------------

def _exit_with_parent() -> None:
    """The parent holds our stdin: when it goes away, so do we."""
    def watch() -> None:
        try:
            sys.stdin.buffer.read()
        finally:
            os._exit(0)
    threading.Thread(target=watch, daemon=True).start()


async def _serve_mud() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                # IAC bytes the client may send are not text: drop them (echo only the line).
                if b"\xff" in line:
                    line = _strip_iac(line)
                writer.write(line.rstrip(b"\r\n") + b"\r\n")
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0, backlog=2048)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def _strip_iac(line: bytes) -> bytes:
    out, i, n = bytearray(), 0, len(line)
    while i < n:
        b = line[i]
        if b != 0xFF:
            out.append(b)
            i += 1
        elif i + 1 < n and line[i + 1] in (251, 252, 253, 254):
            i += 3
        else:
            i += 2
    return bytes(out)


async def _serve_gateway(mud_port: int, sessions: int) -> None:
    import logging

    import msgspec
    from aiohttp import web

    from gateway.config import Config
    from gateway.routes import create_app

    logging.basicConfig(level=logging.WARNING)
    config = msgspec.convert({
        "listen": {"host": HOST, "port": 0},
        "games": [{"name": "echo", "host": HOST, "port": mud_port, "default": True,
                   "prompt_flush_ms": 10}],
        "sessions": {"linger_seconds": 0},
        "limits": {"max_sessions": sessions + 100, "max_sessions_per_ip": sessions + 100,
                   "input_lines_per_second": 1_000_000, "input_burst": 1_000_000},
    }, Config)
    runner = web.AppRunner(create_app(config), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0, backlog=2048)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


# -- the clients ---------------------------------------------------------------------

class Phase:
    """Clients connect (``gate`` bounds how many at once), wait for ``go``, do their round
    trips, then hold their connections until ``done``: no connect or close overlaps a
    measured round trip."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.gate = asyncio.Semaphore(100)
        self.go = asyncio.Event()
        self.done = asyncio.Event()
        self.ready = 0
        self.finished = 0

    async def started(self) -> None:
        self.ready += 1
        await self.go.wait()

    async def finish(self) -> None:
        self.finished += 1
        await self.done.wait()


class Result:
    def __init__(self) -> None:
        self.latencies: list[float] = []  # seconds
        self.failed = 0
        self.setup = 0.0   # seconds to connect (and join) every client
        self.wall = 0.0    # seconds for all the measured round trips
        self.cpu: dict[str, float] = {}  # CPU use of each process while they ran (1.0 = one core)


async def _stagger(think: float) -> None:
    """With a think time, clients start spread over one think time rather than all at once."""
    if think:
        await asyncio.sleep(random.uniform(0, think))


async def _gateway_client(session, url: str, rounds: int, warmup: int, think: float, ph: Phase,
                          result: Result) -> None:
    import msgspec
    decode = msgspec.json.decode
    encode = msgspec.json.encode
    topic = f"telnet:{uuid.uuid4()}"
    async with ph.gate:  # connect and join, a bounded number at a time
        ws = await asyncio.wait_for(session.ws_connect(url), ROUND_TIMEOUT)
        await ws.send_str(encode(["1", "1", topic, "phx_join", {}]).decode())
        while True:
            frame = decode(await asyncio.wait_for(ws.receive_str(), ROUND_TIMEOUT))
            if frame[3] == "phx_reply" and frame[1] == "1":
                if frame[4]["status"] != "ok":
                    raise RuntimeError(f"join refused: {frame[4]}")
                break
    async def round_trip(n: int) -> None:
        want = f"ping {n}\n"
        await ws.send_str(encode(["1", str(n + 2), topic, "recv", {"message": f"ping {n}"}]).decode())
        while True:
            frame = decode(await ws.receive_str())
            if frame[3] == "echo" and want in frame[4]["message"]:
                return
            if frame[3] == "disconnect":
                raise RuntimeError(f"disconnected: {frame[4]}")

    try:
        await _time_rounds(round_trip, rounds, warmup, think, ph, result)
    finally:
        await ws.close()


async def _direct_client(port: int, rounds: int, warmup: int, think: float, ph: Phase,
                         result: Result) -> None:
    async with ph.gate:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), ROUND_TIMEOUT)

    async def round_trip(n: int) -> None:
        want = f"ping {n}\r\n".encode()
        writer.write(want)
        while await reader.readline() != want:
            pass

    try:
        await _time_rounds(round_trip, rounds, warmup, think, ph, result)
    finally:
        writer.close()


async def _time_rounds(round_trip, rounds: int, warmup: int, think: float, ph: Phase,
                       result: Result) -> None:
    """Run ``round_trip(n)`` warmup + rounds times, timing the rounds after the warm-up."""
    await ph.started()
    await _stagger(think)
    for n in range(warmup + rounds):
        if n and think:
            await asyncio.sleep(think)
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(ROUND_TIMEOUT):
                await round_trip(n)
        except TimeoutError:
            result.failed += 1
            continue
        if n >= warmup:
            result.latencies.append(time.perf_counter() - t0)
    await ph.finish()


def _cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by a process (Linux /proc; this process: getrusage)."""
    if pid is None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


async def _run_phase(make, count: int, pids: dict[str, int | None]) -> Result:
    """Connect ``count`` clients, start all their round trips at once, close them all after."""
    result = Result()
    ph = Phase(count)

    async def until(cond) -> None:
        while not cond():
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                for t in tasks:
                    t.cancel()
                raise failed[0].exception()
            await asyncio.sleep(0.002)

    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(make(ph, result)) for _ in range(count)]
    await until(lambda: ph.ready == count)
    result.setup = time.perf_counter() - t0
    cpu0 = {k: _cpu(p) for k, p in pids.items()}
    t1 = time.perf_counter()
    ph.go.set()
    await until(lambda: ph.finished == count)
    result.wall = time.perf_counter() - t1
    result.cpu = {k: (_cpu(p) - cpu0[k]) / result.wall for k, p in pids.items()}
    ph.done.set()
    await asyncio.gather(*tasks)
    return result


def _pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


async def _gateway_idle(http, healthz: str) -> None:
    """Wait (up to 10 s) until the gateway has ended the sessions just left, so that their
    teardown does not overlap the next measurement."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with http.get(healthz) as resp:
            if (await resp.json())["sessions"] == 0:
                break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)


async def _spawn(*args: str) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    if not line.startswith(b"PORT "):
        proc.kill()
        raise RuntimeError(f"{args[0]} did not start: {line!r}")
    return proc, int(line.split()[1])


async def _bench(args: argparse.Namespace) -> list[tuple[str, int, Result]]:
    import aiohttp

    procs = []
    rows: list[tuple[str, int, Result]] = []
    try:
        mud, mud_port = await _spawn("--serve-mud")
        procs.append(mud)
        gw, gw_port = await _spawn("--serve-gateway", str(mud_port), str(args.sessions))
        procs.append(gw)
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
        if args.pin and len(cpus) >= 2:
            # The gateway gets a core of its own, the clients another; the echo MUD floats.
            os.sched_setaffinity(gw.pid, {cpus[-1]})
            os.sched_setaffinity(0, {cpus[0]})
            print(f"pinned: clients to CPU {cpus[0]}, gateway to CPU {cpus[-1]}, echo MUD unpinned")
        url = f"http://{HOST}:{gw_port}/socket/websocket?vsn=2.0.0"
        pids = {"clients": None, "gateway": gw.pid, "mud": mud.pid}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            think = args.think_ms / 1000
            phases = [(1, args.single_rounds)]
            if args.sessions > 1:
                phases.append((args.sessions, args.rounds))
            for count, rounds in phases:
                r = await _run_phase(
                    lambda *a: _gateway_client(http, url, rounds, args.warmup, think, *a),
                    count, pids)
                rows.append(("gateway", count, r))
                await _gateway_idle(http, f"http://{HOST}:{gw_port}/healthz")
                r = await _run_phase(
                    lambda *a: _direct_client(mud_port, rounds, args.warmup, think, *a),
                    count, pids)
                rows.append(("direct", count, r))
    finally:
        for p in procs:
            if p.returncode is None:
                p.terminate()
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 5)
            except asyncio.TimeoutError:
                p.kill()
                await p.wait()
    return rows


def _raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=500, help="concurrent sessions (default 500)")
    ap.add_argument("--rounds", type=int, default=20,
                    help="measured round trips per session in the concurrent run (default 20)")
    ap.add_argument("--single-rounds", type=int, default=500,
                    help="measured round trips of the single session (default 500)")
    ap.add_argument("--warmup", type=int, default=2, help="uncounted round trips per client (default 2)")
    ap.add_argument("--think-ms", type=float, default=0.0,
                    help="pause between a client's round trips (default 0: back to back, a closed loop)")
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="do not pin the gateway and the clients to different CPUs")
    ap.add_argument("--timeout", type=float, default=120.0, help="hard limit for the whole run, s")
    ap.add_argument("--serve-mud", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve-gateway", nargs=2, metavar=("MUD_PORT", "SESSIONS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    _raise_nofile(4 * args.sessions + 1024)
    if args.serve_mud:
        _exit_with_parent()
        asyncio.run(_serve_mud())
        return 0
    if args.serve_gateway:
        _exit_with_parent()
        asyncio.run(_serve_gateway(int(args.serve_gateway[0]), int(args.serve_gateway[1])))
        return 0
    if not (1 <= args.sessions <= 5000 and 1 <= args.rounds <= 10000 and 1 <= args.single_rounds <= 100000):
        ap.error("--sessions must be 1..5000, --rounds 1..10000, --single-rounds 1..100000")

    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs; clients, gateway and "
          f"echo MUD in 3 processes on {HOST}; {args.warmup} warm-up round trips per client not counted")
    t0 = time.perf_counter()
    try:
        rows = asyncio.run(asyncio.wait_for(_bench(args), args.timeout))
    except asyncio.TimeoutError:
        print(f"FAIL: did not finish within {args.timeout:g}s", file=sys.stderr)
        return 1
    print()
    header = (f"{'path':<8} {'clients':>7} {'rounds':>6} {'samples':>7} {'failed':>6} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'max ms':>7} {'rt/s':>7} {'setup s':>7}  CPU cores: clients gateway mud")
    print(header)
    print("-" * len(header))
    stats = {}
    for path, count, r in rows:
        lat = sorted(x * 1000 for x in r.latencies)
        p50, p99 = _pct(lat, 50), _pct(lat, 99)
        stats[(path, count)] = (p50, p99)
        rounds = len(lat) // count if count else 0
        print(f"{path:<8} {count:>7} {rounds:>6} {len(lat):>7} {r.failed:>6} {p50:>7.2f} {p99:>7.2f} "
              f"{(lat[-1] if lat else float('nan')):>7.2f} {len(lat) / r.wall if r.wall else 0:>7.0f} "
              f"{r.setup:>7.2f}  " + (f"{r.cpu['clients']:>18.2f} {r.cpu['gateway']:>7.2f} {r.cpu['mud']:>3.2f}"
                                      if r.wall >= 0.5 else f"{'(too short)':>18}"))
    print()
    for count in sorted({c for _, c, _ in rows}):
        g, d = stats[("gateway", count)], stats[("direct", count)]
        print(f"{count:>4} client(s): gateway/direct  p50 {g[0] / d[0]:.1f}x  p99 {g[1] / d[1]:.1f}x")
    print(f"(ratios against the direct baseline measured in this same run; total {time.perf_counter() - t0:.1f}s)")
    failed = sum(r.failed for _, _, r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
