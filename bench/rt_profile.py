"""Where a round trip's CPU goes: the gateway's stages at N sessions (docs/performance.md 1.9).

    .venv/bin/python bench/rt_profile.py                    # 1,000 sessions, profile + CPU windows
    .venv/bin/python bench/rt_profile.py --ab TREE          # CPU per round trip, this checkout vs TREE

The bench's own processes (bench/sidebyside.py): the fake MUD, the gateway (on
uvloop, as installed) and two client processes, each of N/2 sessions sending
one line a second (the ``rt-N`` workload). Nothing in the gateway's code is
changed for it: this script's gateway process is sidebyside's, with two signal
handlers added around it.

* **CPU per round trip**: the gateway process's CPU (user + system, all
  threads) over a window, divided by the round trips completed in it. The
  machine is shared: this, not latency, is the figure to compare, and the
  load average is printed with it.
* **by stage** (``--profile``): py-spy samples the gateway over one more
  window (500 a second, from outside the process: it changes nothing in it);
  each sample goes to the stage of the first frame from its leaf that has
  one (``STAGES``); a C call is sampled on the Python line that made it, so
  a system call counts in its caller's stage. The shares are then applied to
  the CPU per round trip of the unsampled windows.
* ``--ab TREE``: the gateway package taken from another tree (``PYTHONPATH``)
  in alternating windows with this checkout's, on the same sessions' load:
  the before and after of a change, measured in one run. ``--ab-python PY`` runs that
  gateway under another interpreter (a venv's python with the gateway's dependencies, the
  tree's C extension built for it): the same code on another Python.
* **user and system CPU**: the same figure split (``/proc/PID/stat``): the
  system part is the kernel's (the reads, the sends, epoll), the user part the
  process's own (for the gateway, its Python).
* ``--stages``: where a round trip's wall time passes in the process, per window (median
  and p99, us): **push**, from the browser's bytes read to the line handed to the
  game's socket (its ``send`` included); **game**, from there to the game's answer
  read; **echo**, from that read to the frame handed to the browser's socket (its
  ``send`` included). The gateway's methods at these points are wrapped in the bench's
  process (a wrapper costs well under a microsecond): nothing in the repository changes.
  For the gateway also **after**: from the line sent to the end of the browser read's
  handling (the push's reply, its bookkeeping), which a game's answer that comes meanwhile
  waits for; and the two sends' own part of push and echo, **line send** (telnetlib3's
  write) and **frame send** (the frames' encoding and ``writelines``), in wall time and in
  the thread's CPU time: where the two differ, the process lost its core meanwhile.
* ``--relay``: also the bench's bare relay (sidebyside's ``relay``: raw TCP, no
  WebSocket, no telnet) under the same load, its windows alternating with the gateway's,
  with ``--stages`` at the same points (the relay's two ``data_received``).
* ``--floor``: also bench/floor.py, the least Python that speaks the gateway's protocol to
  these clients, windows alternating (``--lag`` applies, ``--stages`` does not): what the
  same round trip costs in CPython without the gateway's structure and features.
* ``--opcodes``: the Python a round trip runs, counted, not timed: each window's bytecode
  instructions and calls of Python functions per round trip, in all, by file and by function
  (``sys.settrace``; the floor's too). Unlike the CPU, the counts do not move with the
  machine's load: a change's before and after, exactly (``--ab``). The tracing slows the
  process many times over, so those windows' CPU figures mean nothing, and a few hundred
  sessions are enough (``--sessions 200``).
* ``--lag``: the gateway's loop stalls in each window. A probe in the gateway process
  (a callback due every millisecond) notes how late each one ran, and how much CPU
  the process's thread used meanwhile: a late tick with the CPU busy is the gateway's
  own work holding the loop (a sweep of every socket, a burst of reads), one without
  is the process not running (the machine's other processes on its cores). The
  garbage collector's passes in the window too (``gc.callbacks``): how many of each
  generation, the longest, and their ms per second.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sidebyside as sb  # noqa: E402

# (stage, test on "file:function"); the first that matches, in this order.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("frame read/unmask", ("frames.py:next", "frames.py:unmask", "frames.py:feed", "connection.py:next_event",
                           "connection.py:receive_data", "from_bytes", "to_bytes", "decode' of 'bytes")),
    ("socket pump", ("websocket.py:_pump", "websocket.py:data_received", "websocket.py:message",
                     "websocket.py:_may_read", "websocket.py:receive")),
    ("JSON decode", ("serializer.py:decode", "msgspec.json.Decoder", "serializer.py:_decode")),
    ("event build", ("session.py:on_events", "channel.py:text_payload", "channel.py:sent_at",
                     "channel.py:event_payload", "jsonstring.py:", "_jsonstring")),
    ("Phoenix routing", ("router.py:route", "websocket.py:handle", "channel.py:parse_push", "channel.py:",
                         "serializer.py:")),
    ("session lookup / execute", ("session.py:execute", "session.py:unsent", "client.py:unsent",
                                  "get_write_buffer_size")),
    ("rate limit", ("ratelimit.py:",)),
    ("telnet write", ("input.py:", "client.py:send_text", "telnetlib3", "writer.py", "stream_writer",
                      "<method 'write' of", "<method 'encode' of 'str'")),
    ("telnet read/scan", ("client.py:data_received", "client.py:_dispatch", "stream.py:", "gametext.py:",
                          "client.py:_schedule_poll", "client.py:_poll")),
    ("replay append", ("replay.py:",)),
    ("metrics", ("prometheus_client", "metrics.py:")),
    ("frame build (outbox)", ("router.py:push_many", "router.py:_frame", "websocket.py:send_many",
                              "websocket.py:send", "frames.py:encode", "connection.py:send",
                              "websocket.py:_encode")),
    ("frame write", ("websocket.py:_flush", "websocket.py:_write_frames", "websocket.py:_written",
                     "writelines", "<method 'send' of")),
    ("timers and loop callbacks", ("call_soon", "call_later", "call_at", "cancel", "asyncio", "events.py",
                                   "monotonic", "loop.time", "<method 'time'")),
]


def stage_of(key: str) -> str:
    for stage, tests in STAGES:
        if any(t in key for t in tests):
            return stage
    return "other Python"


def serve(mud_port: int, kind: str) -> None:
    """The bench gateway (or, ``kind`` "relay", the bare relay; "floor", bench/floor.py), on
    uvloop, with the probes (``--lag``, ``--stages``; not the floor's stages) started on SIGUSR1."""
    probes = os.environ.get("RT_PROFILE_PROBES", "").split(",")
    stages = StageProbe(kind) if "stages" in probes and kind != "floor" else None
    opcodes = OpcodeProbe() if "opcodes" in probes else None
    sb.run_server(_with_probe(sb.peer_server(kind, mud_port), "lag" in probes, stages, opcodes), "uvloop")


class OpcodeProbe:
    """The Python a round trip runs (``--opcodes``), counted, not timed: every bytecode
    instruction and every call of a Python function in the window, per function
    (``sys.settrace`` with ``f_trace_opcodes``). The counts do not depend on the machine's
    speed or load: a change's before and after, exactly. The tracing makes the process
    many times slower, so its windows are for the counts alone."""

    def __init__(self) -> None:
        self.ops: dict[Any, int] = {}
        self.calls: dict[Any, int] = {}

    def _local(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            code = frame.f_code
            self.ops[code] = self.ops.get(code, 0) + 1
        return self._local

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        code = frame.f_code
        self.calls[code] = self.calls.get(code, 0) + 1
        return self._local

    def start(self) -> None:
        self.ops, self.calls = {}, {}
        sys.settrace(self._global)  # the loop's thread: its callbacks' frames from now on

    def stop(self) -> list[tuple[str, int, str, int, int]]:
        """(file, first line, function, instructions, calls) of each function that ran."""
        sys.settrace(None)
        return [(Path(c.co_filename).name, c.co_firstlineno, c.co_name, n, self.calls.get(c, 0))
                for c, n in self.ops.items() if c.co_filename != __file__]  # not the probe's own


class StageProbe:
    """A round trip's wall time in three parts (``--stages``), by wrapping the process's
    methods where each begins and ends: push (browser read -> line sent to the game), game
    (-> its answer read), echo (-> frame sent to the browser); for the gateway also the two
    sends (wall and CPU) and what follows the line sent (after). In microseconds."""

    def __init__(self, kind: str) -> None:
        self.parts: dict[str, list[float]] = {"push": [], "game": [], "echo": []}
        self.sent: dict[int, float] = {}  # game connection -> when the line went to it
        self.reading: float | None = None  # when the game read being handled began
        if kind == "relay":
            self._relay()
        else:
            self._gateway()

    def clear(self) -> None:
        for xs in self.parts.values():
            xs.clear()

    def summary(self) -> dict[str, list[float]]:
        return {k: [len(xs), sb.percentile(xs, 0.5), sb.percentile(xs, 0.99)] for k, xs in self.parts.items() if xs}

    def _game_read(self, conn: Any, t: float) -> None:
        sent = self.sent.pop(id(conn), None)
        if sent is not None:
            self.parts["game"].append((t - sent) * 1e6)

    def _relay(self) -> None:
        clock, push, echo = time.perf_counter, self.parts["push"], self.parts["echo"]
        client_read, game_read = sb._RelayClient.data_received, sb._RelayGame.data_received

        def client(conn: Any, data: bytes) -> None:
            t = clock()
            client_read(conn, data)
            done = clock()
            push.append((done - t) * 1e6)
            self.sent[id(conn.game)] = done

        def game(conn: Any, data: bytes) -> None:
            t = clock()
            self._game_read(conn, t)
            game_read(conn, data)
            echo.append((clock() - t) * 1e6)

        sb._RelayClient.data_received = client  # type: ignore[method-assign]
        sb._RelayGame.data_received = game  # type: ignore[method-assign]

    def _gateway(self) -> None:
        from gateway.telnet.client import GameClient
        from gateway.transport.websocket import WebSocket
        clock, push, echo = time.perf_counter, self.parts["push"], self.parts["echo"]
        browser_read, send_text = WebSocket.data_received, GameClient.send_text
        game_read, write_frames = GameClient.data_received, WebSocket._write_frames
        browser_at: list[float] = [0.0]
        sent_at: list[float] = [0.0]
        cpu = time.thread_time
        tail = self.parts["after"] = []
        to_game, to_game_cpu = self.parts["line send"], self.parts["line send CPU"] = [], []
        to_browser, to_browser_cpu = self.parts["frame send"], self.parts["frame send CPU"] = [], []

        def browser(sock: Any, data: bytes) -> None:
            browser_at[0] = clock()
            browser_read(sock, data)
            if sent_at[0]:
                tail.append((clock() - sent_at[0]) * 1e6)
                sent_at[0] = 0.0

        def sent(conn: Any, data: bytes) -> None:
            t, c = clock(), cpu()
            send_text(conn, data)
            done = sent_at[0] = clock()
            to_game.append((done - t) * 1e6)
            to_game_cpu.append((cpu() - c) * 1e6)
            push.append((done - browser_at[0]) * 1e6)
            self.sent[id(conn)] = done

        def game(conn: Any, data: bytes) -> None:
            t = self.reading = clock()
            self._game_read(conn, t)
            try:
                game_read(conn, data)
            finally:
                self.reading = None

        def frames(sock: Any, batch: Any) -> bool:
            t, c = clock(), cpu()
            paused = write_frames(sock, batch)
            if self.reading is not None:  # the frames of a game read, written at once
                done = clock()
                echo.append((done - self.reading) * 1e6)
                to_browser.append((done - t) * 1e6)
                to_browser_cpu.append((cpu() - c) * 1e6)
            return paused

        WebSocket.data_received = browser  # type: ignore[method-assign]
        GameClient.send_text = sent  # type: ignore[method-assign]
        GameClient.data_received = game  # type: ignore[method-assign]
        WebSocket._write_frames = frames  # type: ignore[method-assign]


LATE = 0.002  # a tick this late (or more) is a stall


class LagProbe:
    """In the gateway process: SIGUSR1 starts a window, SIGUSR2 ends it and writes what the
    probes saw (JSON) to ``/tmp/rt_profile_lag_<pid>.json``: with ``lag``, its stalls and
    the garbage collector's passes in it (per generation: how many, and the longest in ms;
    ``sidebyside.LoopWatch``); with ``stages``, the ``StageProbe``'s parts."""

    def __init__(self, loop: Any, lag: bool, stages: StageProbe | None, opcodes: OpcodeProbe | None) -> None:
        self.stages = stages
        self.opcodes = opcodes
        self.stalls: list[tuple[float, float]] = []  # (ms late, ms of this thread's CPU meanwhile)
        self.gc: dict[int, list[float]] = {}  # generation -> each pass's ms
        self.watch = sb.LoopWatch(self._stall, self._collected, LATE) if lag else None
        loop.add_signal_handler(signal.SIGUSR1, self.start)
        loop.add_signal_handler(signal.SIGUSR2, self.stop)

    def _stall(self, late_ms: float, cpu_ms: float) -> None:
        self.stalls.append((late_ms, cpu_ms))

    def _collected(self, generation: int, ms: float, cpu_ms: float, freed: int) -> None:
        self.gc.setdefault(generation, []).append(ms)

    def start(self) -> None:
        self.stalls, self.gc = [], {}
        if self.stages is not None:
            self.stages.clear()
        if self.watch is not None:
            self.watch.start()
        if self.opcodes is not None:
            self.opcodes.start()

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        opcodes = self.opcodes.stop() if self.opcodes is not None else None
        path = f"/tmp/rt_profile_lag_{os.getpid()}.json"
        with open(path + ".part", "w") as f:
            json.dump({"ticks": self.watch.ticks if self.watch is not None else 0, "stalls": self.stalls, "gc": self.gc,
                       "stages": self.stages.summary() if self.stages is not None else None,
                       "opcodes": opcodes}, f)
        os.replace(path + ".part", path)  # whole when the bench sees it


async def _with_probe(serving: Any, lag: bool, stages: StageProbe | None, opcodes: OpcodeProbe | None) -> None:
    import asyncio
    if lag or stages is not None or opcodes is not None:  # none asked for: nothing of the bench's in the process
        LagProbe(asyncio.get_running_loop(), lag, stages, opcodes)
    await serving


OPCODE_ROWS = int(os.environ.get("RT_PROFILE_ROWS", "30"))  # the functions --opcodes lists, most instructions first


def opcode_table(rows: list[list[Any]], rts: int) -> str:
    """``--opcodes``' counts per round trip: in all, by file, and the busiest functions."""
    ops, calls = sum(r[3] for r in rows), sum(r[4] for r in rows)
    by_file: dict[str, int] = {}
    for file, _, _, n, _ in rows:
        by_file[file] = by_file.get(file, 0) + n
    by_stage: dict[str, list[int]] = {}  # stage -> [instructions, calls]
    for file, _, name, n, k in rows:
        st = by_stage.setdefault(stage_of(f"{file}:{name}"), [0, 0])
        st[0] += n
        st[1] += k
    files = ", ".join(f"{f} {n / rts:.0f}" for f, n in sorted(by_file.items(), key=lambda kv: -kv[1]) if n >= rts)
    stages = ", ".join(f"{st} {n / rts:.0f} ({k / rts:.0f} calls)"
                       for st, (n, k) in sorted(by_stage.items(), key=lambda kv: -kv[1][0]) if n >= rts)
    lines = [f"Python per round trip: {ops / rts:.0f} bytecode instructions, {calls / rts:.0f} calls "
             f"of Python functions ({rts} round trips)", f"  by stage: {stages}", f"  by file: {files}"]
    for file, line, name, n, k in sorted(rows, key=lambda r: -r[3])[:OPCODE_ROWS]:
        lines.append(f"  {n / rts:7.1f} instructions {k / rts:5.2f} calls  {file}:{line} {name}")
    return "\n    ".join(lines)


def lag_summary(path: Path, seconds: float, lag: bool, rts: int = 1) -> str:
    """A window's stalls: how many a second, busy (the gateway's own work) or not running;
    its stages (``--stages``); or, with ``--opcodes``, only its Python per round trip (a traced
    window's timings mean nothing)."""
    d = json.loads(path.read_text())
    path.unlink()
    if d.get("opcodes") is not None:
        return opcode_table(d["opcodes"], rts)
    stages = "; ".join(f"{k} {p50:.0f} (p99 {p99:.0f})" for k, (n, p50, p99) in (d.get("stages") or {}).items())
    if not lag:
        return f"stages, median (p99) us: {stages}"
    if stages:
        stages = f"\n    stages, median (p99) us: {stages}"
    busy: list[float] = []
    idle: list[float] = []
    for late, cpu in d["stalls"]:  # busy: the thread was on the CPU for most of the wait
        (busy if cpu >= (late + sb.LoopWatch.TICK * 1e3) / 2 else idle).append(late)

    def part(xs: list[float]) -> str:
        return f"{len(xs) / seconds:.1f}/s, longest {max(xs):.1f} ms" if xs else "none"
    gcs = "; ".join(f"gen{g} {len(ms) / seconds:.1f}/s, longest {max(ms):.2f} ms, {sum(ms) / seconds:.2f} ms/s"
                    for g, ms in sorted(d.get("gc", {}).items()))
    return (f"stalls >= {LATE * 1e3:.0f} ms: busy {part(busy)}; not running {part(idle)}"
            f"\n    gc: {gcs or 'none'}{stages}")


def user_system(pid: int) -> tuple[float, float]:
    """The process's user and system CPU seconds (every thread; /proc/PID/stat)."""
    fields = sb.stat_fields(pid)
    if fields is None:
        raise SystemExit(f"process {pid} is gone")
    return int(fields[11]) / sb.CLK_TCK, int(fields[12]) / sb.CLK_TCK


class Gateway:
    """The process under test: a gateway from ``tree`` (this checkout when None; run by
    ``python`` when given), or with ``kind`` "relay" the bench's bare relay (its clients speak
    raw TCP), with "floor" bench/floor.py."""

    def __init__(self, mud_port: int, tree: str | None, probes: str = "", kind: str = "gateway",
                 python: str | None = None) -> None:
        env = dict(os.environ, RT_PROFILE_PROBES=probes)
        env["PYTHONPATH"] = tree or str(sb.ROOT)  # its gateway package, not an installed one
        self.proc = sb.Proc([python or sys.executable, str(Path(__file__).resolve()), "--serve", str(mud_port),
                             "--kind", kind], env=env)
        self.tree = {"relay": "the bare relay", "floor": "the floor"}.get(kind, tree or "this checkout")
        if python:
            self.tree += f" ({python})"
        self.kind = kind
        self.client_kind = sb.client_kind(kind)
        self.probes = probes
        self.workers: list[sb.WorkerProc] = []

    def connect(self, sessions: int) -> None:
        self.workers = [sb.WorkerProc(self.client_kind, self.proc.port, False) for _ in range(2)]
        rs = sb.all_ask(self.workers, "connect", [{"count": sessions // 2 + (i < sessions % 2)} for i in range(2)])
        got = sum(r["connected"] for r in rs)
        if got < sessions:
            raise SystemExit(f"{self.tree}: only {got} of {sessions} sessions")

    def window(self, sessions: int, seconds: int) -> dict[str, Any]:
        """One round-trip window: CPU per round trip (us; user and system), round trips,
        p50/p99 (ms); with probes (``--lag``, ``--stages``), what they saw in it."""
        if self.probes:
            os.kill(self.proc.pid, signal.SIGUSR1)
        c0, us0 = sb.tree_cpu(self.proc.pid), user_system(self.proc.pid)
        t0 = time.monotonic()
        rs = sb.all_ask(self.workers, "roundtrips",
                        [{"active": sessions // 2 + (i < sessions % 2), "seconds": seconds} for i in range(2)])
        wall = time.monotonic() - t0
        cpu, us1 = sb.tree_cpu(self.proc.pid) - c0, user_system(self.proc.pid)
        samples = [x for r in rs for x in r["samples"]]
        rts = max(1, len(samples))
        stalls = ""
        if self.probes:
            os.kill(self.proc.pid, signal.SIGUSR2)
            path = Path(f"/tmp/rt_profile_lag_{self.proc.pid}.json")
            deadline = time.monotonic() + 5
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            stalls = (lag_summary(path, wall, "lag" in self.probes, rts) if path.exists()
                      else "probes: no answer from the process")
        return {"stalls": stalls, "us/rt": cpu * 1e6 / rts, "rts": len(samples), "cpu": cpu, "wall": wall,
                "user": (us1[0] - us0[0]) * 1e6 / rts, "system": (us1[1] - us0[1]) * 1e6 / rts,
                "p50": sb.percentile(samples, 0.5), "p99": sb.percentile(samples, 0.99),
                "failed": sum(r["failed"] for r in rs), "load": os.getloadavg()[0]}

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.proc.stop()


LOOP = "loop (uvloop's C: epoll, reads, dispatch)"


def spy_table(path: str, us_per_rt: float) -> None:
    """py-spy's samples (collapsed stacks, root first) by stage: each sample goes to the first
    frame from its leaf that belongs to a stage. A C call made from a Python line (a system call
    in ``transport.writelines``) is sampled on that line, so it is in its caller's stage; a
    sample with no frame of a stage is the loop itself (uvloop's C: epoll, the reads, its
    callbacks' dispatch)."""
    by_stage: dict[str, int] = {}
    funcs: dict[str, dict[str, int]] = {}
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        st, leaf = LOOP, ""
        for frame in reversed(stack.split(";")):
            func, _, where = frame.partition(" (")
            file = where.rsplit(":", 1)[0]
            if "uvloop/" in file or "asyncio/" in file or file.endswith(("sidebyside.py", "rt_profile.py")):
                continue  # the loop and the harness: the sample is the loop's unless a stage is above
            key = f"{file}:{func.rsplit('.', 1)[-1]}"
            leaf = leaf or f"{Path(file).name}:{func}"
            st = stage_of(key)
            if st != "other Python":
                break
        by_stage[st] = by_stage.get(st, 0) + n
        funcs.setdefault(st, {})[leaf] = funcs.get(st, {}).get(leaf, 0) + n
    print(f"\nsampled: {total} samples of the gateway on CPU")
    print(f"{'stage':40} {'share':>6} {'us/rt':>7}   (of {us_per_rt:.0f} us CPU per round trip, unsampled windows)")
    for st, n in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        share = n / total
        top = ", ".join(f"{k} {v / total * 100:.1f}%" for k, v in
                        sorted(funcs[st].items(), key=lambda kv: -kv[1])[:3])
        print(f"{st:40} {share * 100:5.1f}% {share * us_per_rt:7.1f}   {top}")


def profile(g: Gateway, args: argparse.Namespace, us: float) -> None:
    """One more window of ``g``, sampled by py-spy, by stage (the shares applied to ``us``)."""
    out = f"/tmp/rt_profile_{os.getpid()}_{g.proc.pid}.txt"
    spy = subprocess.Popen([args.py_spy, "record", "--pid", str(g.proc.pid), "--format", "raw",
                            "--rate", "500", "--output", out, "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    r = g.window(args.sessions, args.seconds)
    spy.send_signal(signal.SIGINT)
    spy.wait(30)
    print(f"\n{g.tree}: sampled window: {r['us/rt']:.1f} us CPU per round trip (py-spy's own cost included)")
    spy_table(out, us)
    if not os.environ.get("RT_PROFILE_KEEP"):
        os.unlink(out)
    else:
        print(f"  samples kept in {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=5, help="per window")
    ap.add_argument("--windows", type=int, default=3, help="CPU windows (per tree with --ab)")
    ap.add_argument("--profile", action="store_true", help="also one window sampled by py-spy, by stage")
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                    help="the py-spy to sample with (bench/requirements.txt)")
    ap.add_argument("--lag", action="store_true", help="also the gateway loop's stalls in each window")
    ap.add_argument("--stages", action="store_true",
                    help="also a round trip's wall time in the process: push, game, echo")
    ap.add_argument("--opcodes", action="store_true",
                    help="count the Python a round trip runs instead (bytecode instructions and calls per "
                         "function; traced windows: their CPU figures mean nothing; use a few hundred sessions)")
    ap.add_argument("--relay", action="store_true", help="also the bare relay, windows alternating")
    ap.add_argument("--floor", action="store_true",
                    help="also bench/floor.py (the least Python for the protocol), windows alternating")
    ap.add_argument("--ab", metavar="TREE", help="also a gateway from TREE (a checkout), windows alternating")
    ap.add_argument("--ab-python", metavar="PY",
                    help="the interpreter of --ab's gateway (a venv's python with the gateway's dependencies)")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="gateway", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.kind)
    sb.raise_nofile()
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start", flush=True)
    mud = sb.Proc([sys.executable, str(HERE / "sidebyside.py"), "--role", "mud"])
    gws: list[Gateway] = []
    probes = ",".join(name for name, on in (("lag", args.lag), ("stages", args.stages),
                                            ("opcodes", args.opcodes)) if on)
    try:
        gws.append(Gateway(mud.port, None, probes))
        if args.ab:
            gws.append(Gateway(mud.port, str(Path(args.ab).resolve()), probes, python=args.ab_python))
        if args.relay:
            gws.append(Gateway(mud.port, None, probes, kind="relay"))
        if args.floor:
            gws.append(Gateway(mud.port, None, probes, kind="floor"))
        for g in gws:
            g.connect(args.sessions)
        for g in gws:
            g.window(args.sessions, 2)  # warm up
        results: dict[str, list[dict[str, float]]] = {g.tree: [] for g in gws}
        for w in range(args.windows):
            for g in (gws if w % 2 == 0 else gws[::-1]):
                r = g.window(args.sessions, args.seconds)
                results[g.tree].append(r)
                print(f"  window {w + 1} {g.tree}: {r['us/rt']:.1f} us CPU per round trip (user {r['user']:.0f}, "
                      f"system {r['system']:.0f}; {r['rts']} round trips, "
                      f"{r['failed']} failed; p50 {r['p50']:.2f} p99 {r['p99']:.2f} ms; load {r['load']:.2f})",
                      flush=True)
                if r["stalls"]:
                    print(f"    {r['stalls']}", flush=True)
        for tree, rs in results.items():
            xs = sorted(r["us/rt"] for r in rs)
            user, system = (statistics.median(r[k] for r in rs) for k in ("user", "system"))
            print(f"{tree}: {xs[len(xs) // 2]:.1f} us CPU per round trip (min {xs[0]:.1f}, max {xs[-1]:.1f}; "
                  f"medians: user {user:.0f}, system {system:.0f})")
        if args.profile:
            for g in (g for g in gws if g.kind == "gateway"):  # with --ab, each tree's in turn
                profile(g, args, sorted(r["us/rt"] for r in results[g.tree])[len(results[g.tree]) // 2])
    finally:
        for g in gws:
            g.stop()
        mud.stop()
    print(f"load {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
