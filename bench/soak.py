"""Soak: many honest sessions held for a long time while abusive clients run beside them.

Three processes on 127.0.0.1 only:

  soak MUD   (subprocess of this script) asyncio server, no telnet negotiation: every
             line received is sent back with CRLF; the line ``flood`` makes it send
             text for as long as the connection takes it (TCP's pace).
  gateway    ``python -m gateway --config <tmp>/soak.yaml`` (the real command: uvloop
             where installed), limits raised so that the honest sessions are never
             refused (per-IP: every client is 127.0.0.1; input rate).
  clients    (this process)
             honest: --sessions Phoenix V2 clients (aiohttp), one socket and one channel
               each, joined at a bounded pace; each sends a numbered ``recv`` every
               --interval seconds (a heartbeat every 20 s) and times the echo back.
             abusive, --abusers of each kind, over raw TCP (each reconnects when closed):
               ping      pings as fast as TCP takes them, never reads;
               fragment  a text message's first frame, then empty continuation frames
                         for ever, never reads;
               rejoin    joins one topic again and again (with and without last_seq),
                         reading the replies;
               stalled   joins a session, sends ``flood`` to its game, never reads.

Reported (text, and JSON with --json): the gateway's peak RSS (VmHWM of /proc) and its RSS
at the end, the honest round trips' p50/p99/max latency, lines sent, echoed, refused and
lost (sent, answered ok, never echoed back within --grace seconds of the end: should be
0), honest sockets closed, what happened to the abusers (connections, close codes).

    python bench/soak.py                         # 1,000 sessions for 10 minutes
    python bench/soak.py --quick                 # 30 s
    python bench/soak.py --quick --sessions 50 --abusers 1

A long run wants a quiet machine: the clients and the gateway share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import random
import resource
import struct
import sys
import tempfile
import time
import uuid

HOST = "127.0.0.1"
FLOOD_LINE = b"flood " + b"x" * 200 + b"\r\n"


# -- the soak MUD (a subprocess of this script) ---------------------------------

async def _serve_mud() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        flooding: asyncio.Task | None = None

        async def flood() -> None:
            chunk = FLOOD_LINE * 300
            while not writer.is_closing():
                writer.write(chunk)
                await writer.drain()

        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                line = line.rstrip(b"\r\n").replace(b"\xff", b"")
                if line == b"flood":
                    flooding = flooding or asyncio.ensure_future(flood())
                else:
                    writer.write(line + b"\r\n")
        except (ConnectionError, OSError):
            pass
        finally:
            if flooding is not None:
                flooding.cancel()
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


# -- a raw WebSocket client (the abusers: nothing between them and the bytes) ------

def frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """A client frame, masked with the zero key (RFC 6455 allows any key; the payload
    then goes as it is)."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    head = (bytes((first, 0x80 | n)) if n < 126 else struct.pack("!BBH", first, 0x80 | 126, n) if n < 65536
            else struct.pack("!BBQ", first, 0x80 | 127, n))
    return head + b"\0\0\0\0" + payload


def text(msg: list) -> bytes:
    return frame(0x1, json.dumps(msg).encode())


async def raw_open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return reader, writer


async def raw_frames(reader: asyncio.StreamReader):
    """The server's frames: (opcode, payload), until EOF."""
    while True:
        try:
            first, second = await reader.readexactly(2)
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await reader.readexactly(8))
            yield first & 0x0F, await reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError):
            return


class Abuse:
    def __init__(self) -> None:
        self.connections = collections.Counter()
        self.closes = collections.Counter()   # close code (or "reset"/"eof") per kind
        self.sent = collections.Counter()     # frames written per kind


async def _abuser(kind: str, port: int, stop: asyncio.Event, abuse: Abuse) -> None:
    while not stop.is_set():
        try:
            reader, writer = await raw_open(port)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            await asyncio.sleep(0.5)
            continue
        abuse.connections[kind] += 1
        outcome = "eof"
        try:
            outcome = await asyncio.wait_for(_abuse_once(kind, reader, writer, stop, abuse), 120) or "eof"
        except asyncio.TimeoutError:
            outcome = "still open"
        except (ConnectionError, OSError):
            outcome = "reset"
        finally:
            writer.transport.abort()
        abuse.closes[f"{kind}: {outcome}"] += 1


async def _close_code(reader: asyncio.StreamReader) -> str | None:
    async for opcode, payload in raw_frames(reader):
        if opcode == 0x8:
            return str(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else "1005"
    return None


async def _write_until_stalled(writer: asyncio.StreamWriter, data: bytes, kind: str,
                               stop: asyncio.Event, abuse: Abuse) -> None:
    """Write ``data`` again and again while TCP takes it (drain), until stopped or closed."""
    batch = data * max(1, 4096 // len(data))
    while not stop.is_set() and not writer.is_closing():
        writer.write(batch)
        abuse.sent[kind] += len(batch) // len(data)
        await asyncio.wait_for(writer.drain(), 60)
        # drain() does not yield while the kernel takes the bytes: without this, an abuser
        # whose bytes the gateway reads as fast as they come (a closing socket's last frames)
        # holds this process's loop, and the honest sessions' latencies measure that.
        await asyncio.sleep(0)


async def _abuse_once(kind: str, reader, writer, stop: asyncio.Event, abuse: Abuse) -> str | None:
    topic = f"telnet:{uuid.uuid4()}"
    if kind == "ping":
        await _write_until_stalled(writer, frame(0x9, b"p" * 16), kind, stop, abuse)
    elif kind == "fragment":
        writer.write(frame(0x1, b'["1","1","phoenix","heartbeat",', fin=False))
        await _write_until_stalled(writer, frame(0x0, b"", fin=False), kind, stop, abuse)
    elif kind == "stalled":
        writer.write(text(["1", "1", topic, "phx_join", {}]) + text(["1", "2", topic, "recv", {"message": "flood"}]))
        abuse.sent[kind] += 2
        await _write_until_stalled(writer, text([None, "3", "phoenix", "heartbeat", {}]), kind, stop, abuse)
    elif kind == "rejoin":
        ref = 0
        frames = raw_frames(reader)
        while not stop.is_set():
            ref += 1
            payload = {} if ref % 2 else {"last_seq": random.randint(0, 10)}
            writer.write(text([str(ref), str(ref), topic, "phx_join", payload]))
            abuse.sent[kind] += 1
            async for opcode, data in frames:  # up to this join's reply
                if opcode == 0x8:
                    return str(struct.unpack("!H", data[:2])[0])
                if opcode == 0x1 and b'"phx_reply"' in data and json.loads(data)[1] == str(ref):
                    break
            else:
                return None
        return None
    if stop.is_set():
        return "stopped"
    return await asyncio.wait_for(_close_code(reader), 30)


# -- honest sessions ------------------------------------------------------------------

class Honest:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.echoed_at: list[float] = []   # monotonic time of each latency's echo
        self.sent = 0
        self.refused = 0
        self.echoed = 0
        self.lost = 0
        self.closed = 0          # honest sockets the gateway closed, or disconnects
        self.join_failed = 0


async def _honest(http, url: str, interval: float, stop: asyncio.Event, gate: asyncio.Semaphore,
                  joined: list[int], h: Honest) -> None:
    topic = f"telnet:{uuid.uuid4()}"
    me = uuid.uuid4().hex[:8]
    async with gate:
        try:
            ws = await asyncio.wait_for(http.ws_connect(url), 30)
            await ws.send_str(json.dumps(["1", "1", topic, "phx_join", {}]))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.receive_str(), 30))
                if msg[3] == "phx_reply" and msg[1] == "1":
                    break
            if msg[4]["status"] != "ok":
                raise ConnectionError(msg[4])
        except Exception:  # noqa: BLE001 - counted, the run goes on
            h.join_failed += 1
            return
    joined[0] += 1
    pending: dict[str, float] = {}   # line -> when sent (answered ok, not yet echoed)
    refs: dict[str, str] = {}        # ref -> line
    buffer = ""

    async def read() -> None:
        nonlocal buffer
        async for m in ws:
            if m.type != 1:  # aiohttp.WSMsgType.TEXT
                break
            f = json.loads(m.data)
            if f[3] == "echo":
                buffer += f[4]["message"]
                *lines, buffer = buffer.split("\n")
                now = time.monotonic()
                for line in lines:
                    sent = pending.pop(line, None)
                    if sent is not None:
                        h.latencies.append(now - sent)
                        h.echoed_at.append(now)
                        h.echoed += 1
            elif f[3] == "phx_reply" and f[1] in refs:
                line = refs.pop(f[1])
                if f[4]["status"] != "ok":
                    h.refused += 1
                    pending.pop(line, None)
            elif f[3] == "disconnect":
                h.closed += 1
        if not stop.is_set():
            h.closed += 1

    reading = asyncio.ensure_future(read())
    n = 0
    last_beat = time.monotonic()
    await asyncio.sleep(random.uniform(0, interval))
    try:
        while not stop.is_set() and not reading.done():
            n += 1
            line = f"{me}:{n}"
            ref = str(n + 1)
            refs[ref] = line
            pending[line] = time.monotonic()
            h.sent += 1
            await ws.send_str(json.dumps(["1", ref, topic, "recv", {"message": line}]))
            if time.monotonic() - last_beat > 20:
                last_beat = time.monotonic()
                await ws.send_str(json.dumps([None, "hb", "phoenix", "heartbeat", {}]))
            await asyncio.sleep(interval)
    except (ConnectionError, RuntimeError):
        pass
    await stop.wait()
    await stop.grace.wait()  # type: ignore[attr-defined]
    h.lost += len(pending)
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    await ws.close()


# -- the run ----------------------------------------------------------------------------

def _rss(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value, _ = line.split()
                values[key] = int(value) * 1024
    return values.get("VmRSS:", 0), values.get("VmHWM:", 0)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def _spawn_mud() -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--serve-mud",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    return proc, int(line.split()[1])


async def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def _soak(args: argparse.Namespace) -> dict:
    import aiohttp

    mud, mud_port = await _spawn_mud()
    port = await _free_port()
    total = args.sessions + 10 * args.abusers + 100
    tmp = tempfile.mkdtemp(prefix="soak-")
    config = os.path.join(tmp, "soak.yaml")
    with open(config, "w") as f:
        f.write(f"""listen: {{host: {HOST}, port: {port}}}
games:
  - {{name: soak, host: {HOST}, port: {mud_port}, prompt_flush_ms: 50}}
sessions: {{linger_seconds: 5}}
limits: {{max_sessions: {total}, max_sessions_per_ip: {total}, input_lines_per_second: 100,
          input_burst: 100, slow_consumer_seconds: 20}}
logging: {{level: warning}}
""")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gw = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "--config", config, cwd=root,
                                              stdin=asyncio.subprocess.DEVNULL,
                                              stderr=open(os.path.join(tmp, "gateway.log"), "w"))
    stop = asyncio.Event()
    stop.grace = asyncio.Event()  # type: ignore[attr-defined]
    honest, abuse = Honest(), Abuse()
    tasks: list[asyncio.Task] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://{HOST}:{port}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            rss_start = _rss(gw.pid)[0]
            url = f"http://{HOST}:{port}/socket/websocket?vsn=2.0.0"
            gate = asyncio.Semaphore(50)
            joined = [0]
            tasks += [asyncio.ensure_future(_honest(http, url, args.interval, stop, gate, joined, honest))
                      for _ in range(args.sessions)]
            while joined[0] + honest.join_failed < args.sessions:
                await asyncio.sleep(0.2)
            print(f"{joined[0]} honest sessions joined ({honest.join_failed} failed); "
                  f"abusers: {args.abusers} of each kind; {args.duration:.0f} s", flush=True)
            tasks += [asyncio.ensure_future(_abuser(kind, port, stop, abuse))
                      for kind in args.kinds for _ in range(args.abusers)]
            started = time.monotonic()
            peak = 0
            cpu = [_cpu_seconds(gw.pid)]
            while time.monotonic() - started < args.duration:
                await asyncio.sleep(1.0)
                peak = max(peak, _rss(gw.pid)[0])
                cpu.append(_cpu_seconds(gw.pid))
            stop.set()
            await asyncio.sleep(args.grace)  # the last echoes come back
            stop.grace.set()  # type: ignore[attr-defined]
            await asyncio.wait(tasks, timeout=60)
            rss_end, hwm = _rss(gw.pid)
    finally:
        stop.set()
        stop.grace.set()  # type: ignore[attr-defined]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for p in (gw, mud):
            if p.returncode is None:
                p.terminate()
                try:
                    await asyncio.wait_for(p.wait(), 15)
                except asyncio.TimeoutError:
                    p.kill()
                    await p.wait()
    lat = honest.latencies
    windows: dict[int, list[float]] = collections.defaultdict(list)
    for at, latency in zip(honest.echoed_at, lat):
        windows[int((at - started) // 10)].append(latency)
    return {
        "sessions": args.sessions, "joined": joined[0], "join_failed": honest.join_failed,
        "duration_s": args.duration, "abusers_per_kind": args.abusers, "interval_s": args.interval,
        "gateway_rss_start_mib": round(rss_start / 2**20, 1),
        "gateway_rss_peak_mib": round(max(peak, hwm) / 2**20, 1),
        "gateway_rss_end_mib": round(rss_end / 2**20, 1),
        "lines_sent": honest.sent, "lines_echoed": honest.echoed, "lines_refused": honest.refused,
        "lines_lost": honest.lost, "honest_sockets_closed": honest.closed,
        "latency_ms": {"p50": round(_pct(lat, 50) * 1000, 2), "p99": round(_pct(lat, 99) * 1000, 2),
                       "max": round(max(lat, default=float("nan")) * 1000, 2)},
        "worst_10s_windows": [{"from_s": 10 * w, "p99_ms": round(_pct(v, 99) * 1000, 1), "echoes": len(v)}
                              for w, v in sorted(windows.items(), key=lambda kv: -_pct(kv[1], 99))[:5]],
        "gateway_cpu_percent": round(100 * (cpu[-1] - cpu[0]) / max(1e-9, len(cpu) - 1), 1),
        "abusers": {"connections": dict(abuse.connections), "frames_sent": dict(abuse.sent),
                    "ended": dict(abuse.closes)},
        "gateway_log": os.path.join(tmp, "gateway.log"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=1000, help="honest sessions (default 1000)")
    ap.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    ap.add_argument("--quick", action="store_true", help="30 s instead of --duration")
    ap.add_argument("--abusers", type=int, default=4, help="abusive clients of each kind (default 4)")
    ap.add_argument("--kinds", type=lambda v: v.split(","), default=["ping", "fragment", "rejoin", "stalled"],
                    help="abuser kinds, comma-separated (default ping,fragment,rejoin,stalled)")
    ap.add_argument("--interval", type=float, default=2.0,
                    help="seconds between an honest session's lines (default 2)")
    ap.add_argument("--grace", type=float, default=5.0, help="seconds to wait for the last echoes (default 5)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--serve-mud", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_mud:
        from roundtrip import _exit_with_parent  # bench/ is the script's directory: on sys.path
        _exit_with_parent()
        asyncio.run(_serve_mud())
        return 0
    if args.quick:
        args.duration = 30.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * (args.sessions + 10 * args.abusers) + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else min(need, hard), hard))
    report = asyncio.run(_soak(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        lat = report["latency_ms"]
        print(f"gateway RSS: {report['gateway_rss_start_mib']} MiB at start, peak {report['gateway_rss_peak_mib']} "
              f"MiB, {report['gateway_rss_end_mib']} MiB at the end")
        print(f"honest: {report['joined']} sessions, {report['lines_sent']} lines sent, {report['lines_echoed']} "
              f"echoed, {report['lines_refused']} refused, {report['lines_lost']} lost, "
              f"{report['honest_sockets_closed']} sockets closed; latency p50 {lat['p50']} ms, "
              f"p99 {lat['p99']} ms, max {lat['max']} ms")
        print(f"abusers: {report['abusers']}")
        print(f"gateway log: {report['gateway_log']}")
    ok = report["lines_lost"] == 0 and report["honest_sockets_closed"] == 0 and report["join_failed"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
