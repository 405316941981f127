"""Typing in the browser client while the game floods it (SPEC 7.1, issue 18 item 3).

Three parts on 127.0.0.1:

  game      (this process) an asyncio server. On connect it sends --prefill
            lines; on the benchmark's signal it sends --mb MB of ANSI text
            (lines of ~80 characters in 16, 256 and true colour, bold and
            underline) in slices of 64 KB every 64 ms (--rate MB/s: ~1 MB/s),
            then a last line "END-OF-FLOOD".
  gateway   (subprocess) `python -m gateway` pointed at the game.
  browser   headless Chromium (/usr/bin/chromium) through Playwright, a fresh
            context per run, its window sized so that the page is 1100 x 700.
            (Not Playwright's viewport emulation: in headless Chromium's
            default window, 780 x 580, it then draws only about the top 600 px,
            and a frame whose only change is below, such as the input line's
            echo, is never drawn: a key waited for the log's next frame,
            40-150 ms more. docs/performance.md, section 6.)

Each run: the page connects and draws the prefill; in mode `open` the log is
scrolled up a third (the split opens, as when a player reads back); the
flood starts, and while it lasts (until the page has drawn END-OF-FLOOD) the
benchmark types letters into #input, one key every 50-100 ms (random), as
trusted key events (CDP).

Measured in the page:

  key to paint   per key: the Event Timing API (PerformanceObserver "event",
                 durationThreshold 16): for the keydown, keypress, beforeinput
                 and input entries of that key, the latest startTime + duration
                 (the next paint after the event was handled) minus the
                 keydown's startTime (the key's hardware timestamp). A key
                 with no entry took under 16 ms; its figure is then the time
                 to the frame after it (requestAnimationFrame, then a task),
                 capped at 16.
  long tasks     PerformanceObserver "longtask" (50 ms and more) and
                 "long-animation-frame" (where Chromium has it): the longest
                 and how many.

Reported per mode: p50 / p95 / max key to paint, the longest task and
animation frame, counts; with --runs N, each figure as the median of the
runs and their min-max. --json prints all of it as JSON. --trace DIR writes
a Chromium trace of each run and prints where the renderer's main thread spent
its time (layout, style, paint, script).

    .venv/bin/python bench/client_flood.py [--runs 3] [--mode both|open|closed] [--mb 2] [--json]

The targets (SPEC 7.1): p95 under 50 ms, no task over 150 ms, both modes.
The machine's load changes every figure: the script prints `uptime` first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1100, "height": 700}
SLICE = 64 * 1024
END = b"END-OF-FLOOD"
TARGET_P95_MS = 50
TARGET_TASK_MS = 150

WORDS = ("the goblin hits you with a rusty dagger gold coins fall to the ground a cold wind "
         "blows from the north you see exits east west up the guard says halt who goes there "
         "your sword glows blue mana flows into you shadows gather in the corner").split()
SGR = [b"1;31", b"32", b"1;33", b"34", b"35", b"36", b"37", b"4;32", b"38;5;208", b"38;5;45",
       b"38;2;200;120;40", b"38;2;90;200;250", b"1;38;5;196", b"48;5;236;37"]


def flood_text(size: int, seed: int = 18) -> bytes:
    """``size`` bytes (about) of MUD-like lines, ~80 visible characters each, with SGR colours."""
    rnd = random.Random(seed)
    out: list[bytes] = []
    total = n = 0
    while total < size:
        parts: list[bytes] = [b"%06d " % n]
        visible = 7
        while visible < 78:
            word = rnd.choice(WORDS).encode()
            if rnd.random() < 0.4:
                word = b"\x1b[" + rnd.choice(SGR) + b"m" + word + b"\x1b[0m"
            parts.append(word)
            visible += len(word) + 1
        line = b" ".join(parts) + b"\r\n"
        out.append(line)
        total += len(line)
        n += 1
    return b"".join(out)


# -- the game ----------------------------------------------------------------------


class FloodGame:
    """Each connection: the prefill at once, then the flood when ``go`` is set."""

    def __init__(self, prefill: int, size: int, rate: float) -> None:
        self.prefill = b"".join(b"before the flood %04d \x1b[32mgreen\x1b[0m\r\n" % i for i in range(prefill))
        self.text = flood_text(size)
        self.interval = SLICE / (rate * 1024 * 1024)
        self.connections: asyncio.Queue = asyncio.Queue()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        go = asyncio.Event()
        done = asyncio.Event()
        await self.connections.put((go, done))
        writer.write(self.prefill)
        drain = asyncio.ensure_future(reader.read(-1))  # what the gateway sends, ignored
        try:
            await go.wait()
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i, at in enumerate(range(0, len(self.text), SLICE)):
                # Absolute deadlines: the rate does not drift with the loop's delays.
                await asyncio.sleep(max(0.0, start + i * self.interval - loop.time()))
                writer.write(self.text[at:at + SLICE])
                await writer.drain()
            writer.write(END + b"\r\n")
            await writer.drain()
            done.set()
            await drain
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            drain.cancel()
            writer.close()


# -- the page ----------------------------------------------------------------------

OBSERVE = """
(() => {
  const b = window.__bench = {keys: [], events: [], longtasks: [], loafs: [], loafSupported: false};
  const observe = (type, opts, fn) => {
    try {
      new PerformanceObserver((list) => list.getEntries().forEach(fn)).observe({type, buffered: true, ...opts});
      return true;
    } catch { return false; }
  };
  observe('event', {durationThreshold: 16}, (e) => {
    if (['keydown', 'keypress', 'beforeinput', 'input', 'keyup'].includes(e.name))
      b.events.push({name: e.name, start: e.startTime, dur: e.duration, ps: e.processingStart, pe: e.processingEnd});
  });
  observe('longtask', {}, (e) => b.longtasks.push({start: e.startTime, dur: e.duration}));
  b.loafSupported = PerformanceObserver.supportedEntryTypes.includes('long-animation-frame') &&
    observe('long-animation-frame', {}, (e) => b.loafs.push({
      start: e.startTime, dur: e.duration, blocking: e.blockingDuration,
      scripts: (e.scripts || []).map((s) => ({dur: s.duration, invoker: s.invoker, fn: s.sourceFunctionName,
                                             layout: s.forcedStyleAndLayoutDuration}))}));
  addEventListener('keydown', (e) => {
    const t0 = e.timeStamp;
    requestAnimationFrame(() => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => b.keys.push({t0, frame: performance.now() - t0});
      ch.port2.postMessage(0);
    });
  }, true);
})();
"""


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def key_latencies(data: dict, t_from: float, t_to: float) -> list[float]:
    """Key to paint of every key pressed in [t_from, t_to] (see the module's docstring)."""
    keys = sorted(data["keys"], key=lambda k: k["t0"])
    starts = [k["t0"] for k in keys]
    ends: dict[int, float] = {}
    for e in data["events"]:
        if e["name"] == "keyup":
            continue
        # The key this entry belongs to: the last keydown at or before it.
        i = max((j for j, s in enumerate(starts) if s <= e["start"] + 0.01), default=None)
        if i is None:
            continue
        ends[i] = max(ends.get(i, 0.0), e["start"] + e["dur"] - starts[i])
    out = []
    for i, k in enumerate(keys):
        if t_from <= k["t0"] <= t_to:
            out.append(ends[i] if i in ends else min(k["frame"], 16.0))
    return out


def chromium_cpu_s(per_thread: dict | None = None) -> float:
    """CPU seconds (user + system) used so far by the Chromium processes under this one.

    ``per_thread``: filled with the seconds per thread name (CrRendererMain, Compositor, ...)."""
    parent: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        stats[int(d)] = fields
    me = os.getpid()
    total = 0
    for pid, fields in stats.items():
        p = pid
        while p > 1 and p != me:
            p = parent.get(p, 0)
        if p != me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"chromium" not in f.read():
                    continue
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if per_thread is not None:
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    with open(f"/proc/{pid}/task/{tid}/stat") as f:
                        raw = f.read()
                except OSError:
                    continue
                name = raw[raw.index("(") + 1:raw.rindex(")")]
                tf = raw.rsplit(")", 1)[1].split()
                per_thread[name] = per_thread.get(name, 0) + (int(tf[11]) + int(tf[12])) / os.sysconf("SC_CLK_TCK")
    return total / os.sysconf("SC_CLK_TCK")


def profile_summary(profile: dict, top: int = 12) -> list[tuple[str, float]]:
    """Self time per JavaScript function (ms) in a CDP Profiler profile."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile.get("timeDeltas", [])
    ms: dict[str, float] = {}
    for sample, delta in zip(profile.get("samples", []), deltas[1:] + [0]):
        f = nodes[sample]["callFrame"]
        name = f"{f['functionName'] or '(anonymous)'} {f['url'].rsplit('/', 1)[-1]}:{f['lineNumber'] + 1}"
        ms[name] = ms.get(name, 0.0) + delta / 1000
    return sorted(ms.items(), key=lambda kv: -kv[1])[:top]


async def size_window(ctx, page) -> None:
    """Make the page VIEWPORT by sizing its real window (see the module's docstring)."""
    cdp = await ctx.new_cdp_session(page)
    try:
        win = await cdp.send("Browser.getWindowForTarget")
        inner = await page.evaluate("[innerWidth, innerHeight]")
        bounds = {"width": win["bounds"]["width"] + VIEWPORT["width"] - inner[0],
                  "height": win["bounds"]["height"] + VIEWPORT["height"] - inner[1]}
        await cdp.send("Browser.setWindowBounds", {"windowId": win["windowId"], "bounds": bounds})
        await page.wait_for_function(f"innerWidth == {VIEWPORT['width']} && innerHeight == {VIEWPORT['height']}",
                                     timeout=10_000)
    finally:
        await cdp.detach()


async def one_run(browser, game: FloodGame, url: str, mode: str, trace_dir: Path | None,
                  run: int, rnd: random.Random, profile: bool = False, web: Path | None = None) -> dict:
    ctx = await browser.new_context(no_viewport=True)
    await ctx.add_init_script(OBSERVE)
    if web:  # --compare: the client's files from another directory
        async def from_dir(route) -> None:
            await route.fulfill(path=str(web / route.request.url.rsplit("/client/", 1)[1].split("?")[0]))
        await ctx.route("**/client/*", from_dir)
    page = await ctx.new_page()
    page.set_default_timeout(60_000)
    await size_window(ctx, page)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(url)
        go, done = await asyncio.wait_for(game.connections.get(), 20)
        await page.wait_for_selector("#status[data-state=connected]")
        await page.wait_for_function("() => document.getElementById('log').textContent.includes('before the flood')")
        await page.wait_for_function(
            "() => document.getElementById('log').textContent.includes('flood %04d')" % (len(game.prefill.splitlines()) - 1))
        if mode == "open":
            await page.evaluate("() => { const l = document.getElementById('log'); l.scrollTop = l.scrollHeight / 3; }")
            await page.wait_for_selector("#tail-box", state="visible")
        await page.focus("#input")
        if trace_dir:
            name = f"{mode}{'-' + web.name if web else ''}-{run}.json"
            await browser.start_tracing(page=page, path=str(trace_dir / name), screenshots=False,
                                        categories=["devtools.timeline", "disabled-by-default-devtools.timeline",
                                                    "blink", "v8.execute", "cc", "viz", "gpu", "benchmark",
                                                    "graphics.pipeline", "input"])
        cdp = None
        if profile:
            cdp = await ctx.new_cdp_session(page)
            await cdp.send("Profiler.enable")
            await cdp.send("Profiler.setSamplingInterval", {"interval": 200})
            await cdp.send("Profiler.start")
        t_from = await page.evaluate("performance.now()")
        threads_from: dict = {}
        cpu_from = chromium_cpu_s(threads_from)
        go.set()
        drawn = asyncio.ensure_future(page.wait_for_function(
            f"() => document.getElementById('log').textContent.includes('{END.decode()}') || "
            f"document.getElementById('tail').textContent.includes('{END.decode()}')", polling=100))
        typed = 0
        while not drawn.done():
            key = "abcdefghijklmnopqrstuvwxyz"[typed % 26] if typed % 30 != 29 else "Backspace"
            await page.keyboard.press(key)
            typed += 1
            await asyncio.wait([drawn], timeout=rnd.uniform(0.05, 0.1))
        await drawn
        t_to = await page.evaluate("performance.now()")
        threads: dict = {}
        cpu = chromium_cpu_s(threads) - cpu_from
        threads = {k: round(v - threads_from.get(k, 0), 2) for k, v in threads.items() if v - threads_from.get(k, 0) >= 0.05}
        if trace_dir:
            await browser.stop_tracing()
        js_profile = (await cdp.send("Profiler.stop"))["profile"] if cdp else None
        await page.wait_for_timeout(300)  # the last entries reach the observers
        data = await page.evaluate("window.__bench")
        state = await page.evaluate("""() => ({
          lines: document.querySelectorAll('#log .line').length,
          split: document.body.classList.contains('split'),
          input: document.getElementById('input').value.length,
        })""")
    finally:
        await ctx.close()
    lat = key_latencies(data, t_from, t_to)
    # Where a slow key's time went (keydown entries): waiting for the main thread, handling, to the paint.
    phases = [(round(e["ps"] - e["start"]), round(e["pe"] - e["ps"]), round(e["start"] + e["dur"] - e["pe"]))
              for e in data["events"] if e["name"] == "keydown" and t_from <= e["start"] <= t_to and e["dur"] >= 50]
    # The main thread's part: from the key to the end of the frame that drew it (no presentation).
    main = [k["frame"] for k in data["keys"] if t_from <= k["t0"] <= t_to]
    tasks = [t["dur"] for t in data["longtasks"] if t_from <= t["start"] <= t_to]
    loafs = [t for t in data["loafs"] if t_from <= t["start"] <= t_to]
    return {
        "mode": mode,
        "seconds": (t_to - t_from) / 1000,
        "chromium_cpu_s": cpu,
        "chromium_threads_cpu_s": dict(sorted(threads.items(), key=lambda kv: -kv[1])),
        "keys": len(lat),
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "max_ms": max(lat, default=float("nan")),
        "over_50ms": sum(1 for v in lat if v >= 50),
        "slow_keydowns_wait_handle_paint_ms": phases,
        "main_thread_p50_ms": pct(main, 50),
        "main_thread_p95_ms": pct(main, 95),
        "longest_task_ms": max(tasks, default=0.0),
        "long_tasks": len(tasks),
        "longest_frame_ms": max((t["dur"] for t in loafs), default=0.0),
        "longest_blocking_ms": max((t["blocking"] for t in loafs), default=0.0),
        "long_frames": len(loafs),
        "loaf_supported": data["loafSupported"],
        "lines_kept": state["lines"],
        "split_open_at_end": state["split"],
        "errors": errors,
        "js_self_ms": profile_summary(js_profile) if js_profile else None,
        "longest_frames": [{"ms": round(t["dur"]), "scripts": [
            {"ms": round(s["dur"]), "invoker": s["invoker"], "fn": s["fn"], "forced_layout_ms": round(s["layout"] or 0)}
            for s in t["scripts"] if s["dur"] >= 5]} for t in sorted(loafs, key=lambda t: -t["dur"])[:3]],
    }


def summarise(runs: list[dict]) -> dict:
    out: dict = {"runs": len(runs)}
    for k in ("p50_ms", "p95_ms", "max_ms", "longest_task_ms", "longest_frame_ms", "seconds", "chromium_cpu_s"):
        vals = [r[k] for r in runs]
        out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    out["keys"] = sum(r["keys"] for r in runs)
    out["long_tasks"] = sum(r["long_tasks"] for r in runs)
    out["over_50ms"] = sum(r["over_50ms"] for r in runs)
    out["meets_target"] = all(r["p95_ms"] < TARGET_P95_MS and r["longest_task_ms"] <= TARGET_TASK_MS for r in runs)
    return out


def trace_summary(path: Path, top: int = 14) -> list[tuple[str, float]]:
    """Where the renderer's main thread spent its time (self time per event name, ms)."""
    data = json.loads(path.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    main = {(e["pid"], e["tid"]) for e in events
            if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"}
    spans = sorted((e for e in events if (e.get("pid"), e.get("tid")) in main and e.get("ph") == "X" and "dur" in e),
                   key=lambda e: (e["ts"], -e["dur"]))
    self_time: dict[str, float] = {}
    stack: list[tuple[float, str]] = []  # (end, name)
    for e in spans:
        while stack and stack[-1][0] <= e["ts"]:
            stack.pop()
        if stack:
            parent = stack[-1][1]
            self_time[parent] = self_time.get(parent, 0.0) - e["dur"] / 1000
        self_time[e["name"]] = self_time.get(e["name"], 0.0) + e["dur"] / 1000
        stack.append((e["ts"] + e["dur"], e["name"]))
    return sorted(self_time.items(), key=lambda kv: -kv[1])[:top]


async def bench(args: argparse.Namespace) -> dict:
    from playwright.async_api import async_playwright

    game = FloodGame(args.prefill, int(args.mb * 1024 * 1024), args.rate)
    server = await asyncio.start_server(game.handle, HOST, 0)
    mud_port = server.sockets[0].getsockname()[1]
    with socket.socket() as s:
        s.bind((HOST, 0))
        gw_port = s.getsockname()[1]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(f"listen: {{host: {HOST}, port: {gw_port}}}\n"
                f"games: [{{name: flood, title: Flood, host: {HOST}, port: {mud_port}}}]\n"
                "logging: {level: warning}\n")
    gw = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "--config", f.name, cwd=str(ROOT),
                                              stdout=subprocess.DEVNULL)
    url = f"http://{HOST}:{gw_port}/"
    trace_dir = Path(args.trace) if args.trace else None
    if trace_dir:
        trace_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
                    "cpus": os.cpu_count(), "mb": args.mb, "rate_mb_s": args.rate, "modes": {}}
    rnd = random.Random(7)
    try:
        for _ in range(200):
            try:
                socket.create_connection((HOST, gw_port), timeout=1).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            result["chromium"] = browser.version
            modes = ["closed", "open"] if args.mode == "both" else [args.mode]
            clients: list[tuple[str, Path | None]] = [("", None)]
            for other in args.compare or []:
                clients.append((f" ({Path(other).name})", Path(other)))
            runs: dict[str, list[dict]] = {m + label: [] for m in modes for label, _ in clients}
            for run in range(args.runs):
                # Interleaved: a change in the machine's load hits every mode and client alike.
                for mode in modes:
                    for label, web in clients:
                        r = await one_run(browser, game, url, mode, trace_dir, run, rnd, args.profile, web)
                        runs[mode + label].append(r)
                        if not args.json:
                            print(f"  {mode + label:6} run {run + 1}: p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, "
                                  f"max {r['max_ms']:.0f} ms over {r['keys']} keys; longest task "
                                  f"{r['longest_task_ms']:.0f} ms ({r['long_tasks']} long tasks), longest frame "
                                  f"{r['longest_frame_ms']:.0f} ms; {r['seconds']:.1f} s, Chromium CPU {r['chromium_cpu_s']:.1f} s; {r['lines_kept']} lines"
                                  + (", split open" if r["split_open_at_end"] else "")
                                  + (f"; ERRORS {r['errors']}" if r["errors"] else ""), flush=True)
                            if args.detail:
                                print(f"      key to the end of its frame (main thread only): p50 "
                                      f"{r['main_thread_p50_ms']:.0f} ms, p95 {r['main_thread_p95_ms']:.0f} ms")
                                print(f"      slow keydowns (wait, handle, to paint): {r['slow_keydowns_wait_handle_paint_ms']}")
                                print(f"      CPU by thread: {r['chromium_threads_cpu_s']}")
                                for fr in r["longest_frames"]:
                                    print(f"      frame {fr['ms']} ms: " + "; ".join(
                                        f"{s['invoker']} {s['fn']} {s['ms']} ms (forced layout {s['forced_layout_ms']})"
                                        for s in fr["scripts"]))
                            for name, ms in r["js_self_ms"] or []:
                                print(f"      {ms:8.1f} ms  {name}")
                            if trace_dir:
                                for name, ms in trace_summary(trace_dir / f"{mode}{'-' + web.name if web else ''}-{run}.json"):
                                    print(f"      {ms:8.1f} ms  {name}")
            await browser.close()
        for mode in runs:
            result["modes"][mode] = {"summary": summarise(runs[mode]), "runs": runs[mode]}
    finally:
        gw.terminate()
        await gw.wait()
        server.close()
        os.unlink(f.name)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--mode", choices=["both", "open", "closed"], default="both")
    p.add_argument("--mb", type=float, default=2.0, help="MB of game text per run (2)")
    p.add_argument("--rate", type=float, default=1.0, help="MB/s the game sends (1)")
    p.add_argument("--prefill", type=int, default=600, help="lines drawn before the flood (600)")
    p.add_argument("--trace", metavar="DIR", help="write a Chromium trace per run into DIR and summarise it")
    p.add_argument("--detail", action="store_true", help="print the scripts of each run's longest frames")
    p.add_argument("--profile", action="store_true", help="profile the page's JavaScript (CDP) and print where it went")
    p.add_argument("--compare", metavar="DIR", action="append",
                   help="also run (interleaved) with the client's files from DIR, e.g. an older gateway/web (repeatable)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing", file=sys.stderr)
        return 2
    if not args.json:
        print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    started = time.perf_counter()
    result = asyncio.run(bench(args))
    result["wall_s"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['chromium']}, {result['cpus']} CPUs, {args.mb:g} MB at {args.rate:g} MB/s, "
          f"{args.runs} run(s) per mode; median [min-max]")
    for mode, m in result["modes"].items():
        s = m["summary"]
        f = lambda k: f"{s[k]['median']:.0f} [{s[k]['min']:.0f}-{s[k]['max']:.0f}]"  # noqa: E731
        print(f"split {mode}: key to paint p50 {f('p50_ms')} ms, p95 {f('p95_ms')} ms, max {f('max_ms')} ms "
              f"({s['keys']} keys, {s['over_50ms']} over 50 ms); longest task {f('longest_task_ms')} ms "
              f"({s['long_tasks']} long tasks); longest frame {f('longest_frame_ms')} ms; "
              f"Chromium CPU {s['chromium_cpu_s']['median']:.1f} s in {s['seconds']['median']:.1f} s; "
              f"{'meets' if s['meets_target'] else 'MISSES'} the target (p95 < {TARGET_P95_MS} ms, "
              f"tasks <= {TARGET_TASK_MS} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
