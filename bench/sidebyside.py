"""Side by side: mud-gateway against direct TCP, websockify and webtelnet, on the same fake MUD.

    ./dev bench                 # set-up (bench/.venv, bench/.peers), then the full matrix (~20 min)
    ./dev bench --quick         # the same matrix, smaller (~5 min)

Processes, all on 127.0.0.1:

  MUD        one asyncio server (this file, --role mud). On connect: IAC WILL
             GMCP and "hello". Each line it receives: ``flood N`` -> N bytes
             of ANSI MUD text then ``END-FLOOD``; ``gmcp N`` -> N
             ``Char.Vitals`` GMCP messages then ``END-GMCP``; anything else is
             echoed back (CRLF). Telnet commands it receives are ignored.
  peer       the proxy under test, restarted for every repetition: the gateway
             (--role gateway, aiohttp + this package), websockify (PyPI, its
             own process per connection), webtelnet (npm, socket.io, a
             launcher in bench/webtelnet_peer.cjs binding 127.0.0.1), ``relay``
             (--role relay: a bare uvloop TCP relay, bytes both ways and
             nothing else, the floor for a Python proxy; not in the default
             list), ``floor`` (--role floor, bench/floor.py: the least Python
             that speaks the gateway's protocol to these clients, rt-N and
             idle-N only; not in the default list), or none (``direct``: the
             clients talk TCP to the MUD).
  workers    benchmark clients (--role worker), one or more processes, driven
             by JSON lines on stdin. They speak each peer's own protocol:
             Phoenix V2 for the gateway (join, ``recv`` pushes, ``echo`` and
             ``gmcp`` events), raw binary frames for websockify, socket.io 1.x
             ``stream`` events over engine.io 3 for webtelnet, raw TCP direct.

Measured (every figure: median of the repetitions, with min-max):

  flood-1 / flood-20  MB/s of game text from ``flood`` sent to END-FLOOD seen
                      (all sessions together); proxy CPU ms per MB (user+system
                      CPU of the peer's process tree over the run, 1.5 s of
                      settling included, so the replay compactor is counted);
  gmcp                messages/s and proxy CPU us per message for one session;
                      every message is checked intact and in order;
  rt-N                round trip of one line per second per session at N
                      sessions (p50, p99 ms), 3 windows on the same sessions;
  idle-N              proxy RSS per idle session at N sessions (RSS(N) - RSS
                      before any session) / N, after 12 s without traffic;
  full                proxy RSS per session after each of F sessions received
                      2 MB (the gateway's replay buffers full).

Every ratio is taken inside one run. ``--deflate`` variants offer
permessage-deflate (as browsers do). Bounded: every wait has a time-out and
the run stops by itself (``--budget`` seconds, default 1800).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"
IAC, SB, SE, WILL, GMCP = 255, 250, 240, 251, 201
END_FLOOD = b"END-FLOOD"
END_GMCP = b"END-GMCP"
TIMEOUT = 60.0          # any single wait
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> int:
    """As many file descriptors as this process may have (root may raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    except OSError:
        nr_open = hard
    for want in (max(nr_open, hard), 65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            return want
        except (ValueError, OSError):
            continue
    return soft


# -- what the MUD sends ------------------------------------------------------------------------

def ansi_block(size: int = 1 << 20, seed: int = 3) -> bytes:
    """``size`` bytes of varied ANSI MUD text (whole CRLF lines), the same for the same seed."""
    sys.path.insert(0, str(HERE))
    from stream_throughput import _block  # the transcript generator of the core benchmark
    rng = random.Random(seed)
    state = {"hp": 500, "maxhp": 500, "mp": 200, "maxmp": 200}
    out: list[bytes] = []
    n = 0
    while n < size:
        for line in _block(rng, state):
            b = (line + "\r\n").encode()
            out.append(b)
            n += len(b)
    data = b"".join(out)
    return data[:data.rfind(b"\n", 0, size) + 1]


_BLOCK: bytes | None = None


def flood_bytes(n: int) -> bytes:
    """``n`` bytes (rounded down to a whole line) of MUD text, then the END-FLOOD line."""
    global _BLOCK
    if _BLOCK is None:
        _BLOCK = ansi_block()
    reps, rest = divmod(n, len(_BLOCK))
    tail = _BLOCK[:_BLOCK.rfind(b"\n", 0, rest) + 1] if rest else b""
    return _BLOCK * reps + tail + END_FLOOD + b"\r\n"


def vitals(i: int) -> bytes:
    return (b'Char.Vitals {"hp":%d,"maxhp":1000,"mp":%d,"maxmp":500,"mv":%d,"maxmv":300,"n":%d}'
            % (1000 - i % 997, 500 - i % 499, 300 - i % 293, i))


def gmcp_bytes(n: int) -> bytes:
    head, tail = bytes((IAC, SB, GMCP)), bytes((IAC, SE))
    return b"".join([head + vitals(i) + tail for i in range(n)]) + END_GMCP + b"\r\n"


TELNET_COMMANDS = re.compile(rb"\xff\xfa.*?\xff\xf0|\xff[\xfb-\xfe].|\xff[^\xff]", re.S)


class MudProtocol(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.t = transport
        self.buf = b""
        transport.write(bytes((IAC, WILL, GMCP)) + b"hello\r\n")

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        nl = buf.rfind(b"\n")
        if nl < 0:
            self.buf = buf[-65536:]
            return
        self.buf = buf[nl + 1:]
        lines = TELNET_COMMANDS.sub(b"", buf[:nl]).split(b"\n")
        out = []
        for line in lines:
            line = line.strip(b"\r\x00")
            if line.startswith(b"flood "):
                out.append(_cached(flood_bytes, int(line[6:])))
            elif line.startswith(b"gmcp "):
                out.append(_cached(gmcp_bytes, int(line[5:])))
            elif line:
                out.append(line + b"\r\n")
        if out:
            self.t.write(b"".join(out))


_cache: dict[Any, bytes] = {}


def _cached(fn: Any, n: int) -> bytes:
    key = (fn, n)
    if key not in _cache:
        _cache[key] = fn(n)
    return _cache[key]


async def serve_mud() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MudProtocol, HOST, 0, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


async def serve_gateway(mud_port: int) -> None:
    import logging

    import msgspec
    from aiohttp import web

    from gateway import collector
    from gateway.config import Config
    from gateway.routes import create_app

    logging.basicConfig(level=logging.WARNING)
    if os.environ.get("BENCH_TRACEMALLOC"):  # where idle memory goes: SIGUSR1 writes the top allocations
        import signal
        import tracemalloc
        tracemalloc.start(int(os.environ["BENCH_TRACEMALLOC"]))

        def dump() -> None:
            snap = tracemalloc.take_snapshot()
            with open(f"/tmp/bench_tracemalloc_{os.getpid()}.txt", "w") as f:
                total = sum(st.size for st in snap.statistics("filename"))
                f.write(f"total {total / 1024:.0f} KiB\n")
                for stat in snap.statistics("filename")[:25]:
                    f.write(f"{stat.size / 1024:.0f} KiB in {stat.count} blocks: {stat.traceback[0].filename}\n")
                for stat in snap.statistics("traceback")[:40]:
                    f.write(f"{stat.size / 1024:.0f} KiB in {stat.count} blocks\n")
                    for line in stat.traceback.format()[-12:]:
                        f.write(f"    {line}\n")
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)
    if os.environ.get("BENCH_GC_LOG"):  # the collector's passes and the loop's stalls, when (docs 1.15)
        log_loop(f"/tmp/bench_gc_{os.getpid()}.log")
    big = 1_000_000
    config = msgspec.convert({
        "listen": {"host": HOST, "port": 0},
        "games": [{"name": "bench", "host": HOST, "port": mud_port, "default": True}],
        "sessions": {"linger_seconds": 0},
        "limits": {"max_sessions": 20000, "max_sessions_per_ip": 20000,
                   "input_lines_per_second": big, "input_burst": big,
                   "heartbeat_timeout_seconds": 3600},
        "metrics": {"enabled": True},
    }, Config)
    runner = web.AppRunner(create_app(config), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0, backlog=4096)
    await site.start()
    collector.configure()  # as the command line has it (MUD_GATEWAY_GC=plain: CPython's way)
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


class _RelayGame(asyncio.Protocol):
    """The game side of one relayed connection: what the MUD sends goes to the client."""

    def __init__(self, client: "_RelayClient") -> None:
        self.client = client

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()


class _RelayClient(asyncio.Protocol):
    """A benchmark client's connection: what it sends goes to the MUD (once connected)."""

    def __init__(self, mud_port: int) -> None:
        self.mud_port = mud_port
        self.game: _RelayGame | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.pause_reading()
        self.opening = asyncio.ensure_future(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.game = await loop.create_connection(lambda: _RelayGame(self), HOST, self.mud_port)
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.game.transport.write(data)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.game is not None:
            self.game.transport.close()


async def serve_relay(mud_port: int) -> None:
    """``relay``: bytes both ways and nothing else (no WebSocket, no Phoenix, no telnet):
    the least a Python proxy on this loop costs, the floor under the gateway's figures."""
    server = await asyncio.get_running_loop().create_server(
        lambda: _RelayClient(mud_port), HOST, 0, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


class LoopWatch:
    """A server process's event loop, watched (the bench's probes: rt_profile.py ``--lag``,
    ``BENCH_GC_LOG``). A callback due every ``TICK`` seconds notes how late it ran and the
    thread's CPU meanwhile; ``gc.callbacks`` times the cycle collector's passes. While it runs,
    ``on_stall(late_ms, cpu_ms)`` hears of each tick ``late`` seconds late or more, and
    ``on_gc(generation, ms, cpu_ms, collected)`` of each pass: its wall time, its thread's CPU
    (less than the wall time when the process was preempted meanwhile), the objects it freed."""

    TICK = 0.001

    def __init__(self, on_stall: Any, on_gc: Any, late: float) -> None:
        self.on_stall, self.on_gc, self.late = on_stall, on_gc, late
        self.ticks = 0
        self._timer: asyncio.TimerHandle | None = None
        self._last = (0.0, 0.0)
        self._gc_start = self._gc_cpu = 0.0
        gc.callbacks.append(self._gc)

    def start(self) -> None:
        self.stop()
        self.ticks = 0
        self._last = (time.perf_counter(), time.thread_time())
        self._timer = asyncio.get_running_loop().call_later(self.TICK, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        late = wall - self._last[0] - self.TICK
        if late >= self.late:
            self.on_stall(late * 1e3, (cpu - self._last[1]) * 1e3)
        self.ticks += 1
        self._last = (wall, cpu)
        self._timer = asyncio.get_running_loop().call_later(self.TICK, self._tick)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            self._gc_cpu = time.thread_time()
        elif self._timer is not None:
            self.on_gc(info["generation"], (time.perf_counter() - self._gc_start) * 1e3,
                       (time.thread_time() - self._gc_cpu) * 1e3, info["collected"])


def log_loop(path: str) -> None:
    """``BENCH_GC_LOG``: this process's collector passes (every full one, any other over 5 ms)
    and its loop's stalls of 20 ms or more, with the time of each, appended to ``path``."""

    def note(line: str) -> None:
        with open(path, "a") as f:
            f.write(f"{time.time():.3f} {line}\n")

    def collected(gen: int, ms: float, cpu_ms: float, freed: int) -> None:
        if gen == 2 or ms > 5:
            note(f"gen{gen} {ms:.1f} ms, CPU {cpu_ms:.1f} ms, {freed} collected")

    LoopWatch(lambda late, cpu: note(f"stall {late:.0f} ms, CPU {cpu:.0f} ms"), collected, late=0.020).start()


def peer_server(role: str, mud_port: int) -> Any:
    """The serving coroutine of the peer ``role`` (gateway, relay or floor) on the MUD at ``mud_port``."""
    if role == "relay":
        return frozen(serve_relay(mud_port))
    if role == "floor":
        from floor import serve_floor
        return frozen(serve_floor(mud_port))
    return serve_gateway(mud_port)


async def frozen(serving: Any, log_name: str = "") -> None:
    """``serving`` (the MUD, the relay, the floor) with the collector as the gateway's
    (``collector.freeze_survivors``): their connections live on, and a full pass owed from
    10,000 of them would fall in a round-trip window of whichever peer; so every Python process
    of the bench makes its full passes the same way (docs/performance.md 1.16, 1.17). With
    ``BENCH_GC_LOG``, its passes and stalls go to ``/tmp/bench_gc_<log_name><pid>.log``."""
    if os.environ.get("BENCH_GC_LOG"):
        log_loop(f"/tmp/bench_gc_{log_name}{os.getpid()}.log")
    from gateway import collector
    collector.freeze_survivors()
    await serving


def client_kind(peer: str) -> str:
    """The protocol the bench's clients speak to ``peer`` (``Conn.kind``)."""
    if peer == "relay":
        return "direct"  # raw TCP, as to the MUD itself
    return "gateway" if peer.startswith("gateway") or peer == "floor" else peer


def run_server(coro: Any, loop_name: str) -> None:
    raise_nofile()
    if loop_name == "uvloop":
        import uvloop
        uvloop.run(coro)
    else:
        asyncio.run(coro)


# -- the clients ---------------------------------------------------------------------------------

class Handler:
    """What a connection does with what it receives; replaced per workload."""

    def text(self, conn: "Conn", data: Any) -> None:  # bytes (raw relays) or str (gateway)
        pass

    def gmcp(self, conn: "Conn", module: str, data: Any) -> None:
        pass


class Conn:
    kind = ""
    raw = True  # the text arrives as telnet bytes (GMCP inside), not as events

    def __init__(self, worker: "Worker", sid: int) -> None:
        self.worker = worker
        self.sid = sid
        self.handler: Handler = Handler()
        self.hello = asyncio.get_running_loop().create_future()
        self.tail: Any = b"" if self.raw else ""

    def got_text(self, data: Any) -> None:
        if not self.hello.done():
            if (b"hello" if self.raw else "hello") in self.tail + data:
                self.hello.set_result(True)
            self.tail = (self.tail + data)[-16:]
            return
        self.handler.text(self, data)


class DirectConn(Conn, asyncio.Protocol):
    kind = "direct"

    async def open(self, port: int) -> None:
        await asyncio.get_running_loop().create_connection(lambda: self, HOST, port)

    def connection_made(self, transport: Any) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        self.got_text(data)

    def send_line(self, line: str) -> None:
        self.t.write(line.encode() + b"\r\n")

    async def close(self) -> None:
        self.t.close()


class WsConn(Conn):
    async def open(self, port: int) -> None:
        w = self.worker
        self.ws = await w.http.ws_connect(self.url(port), compress=15 if w.deflate else 0,
                                          protocols=self.protocols, max_msg_size=0, autoping=True,
                                          decode_text=False)  # text frames as bytes: decoded as needed
        self.reader = asyncio.ensure_future(self.read())
        await self.opened()

    protocols: tuple[str, ...] = ()

    async def opened(self) -> None:
        pass

    async def read(self) -> None:
        from aiohttp import WSMsgType
        ws = self.ws
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.on_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.on_binary(msg.data)
        except Exception:  # noqa: BLE001 - the workload's time-out reports it
            pass

    def on_text(self, data: str) -> None:
        pass

    def on_binary(self, data: bytes) -> None:
        pass

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


class GatewayConn(WsConn):
    kind = "gateway"
    raw = False
    protocols = ("phoenix",)
    flooding: "FloodHandler | None" = None  # set while a flood runs: it gets the payloads' bytes

    def url(self, port: int) -> str:
        return f"http://{HOST}:{port}/socket/websocket?vsn=2.0.0"

    async def opened(self) -> None:
        self.topic = f"telnet:{uuid.uuid4()}"
        self.ref = 1
        self.joined = asyncio.get_running_loop().create_future()
        await self.ws.send_str(json.dumps(["1", "1", self.topic, "phx_join", {}]))
        await asyncio.wait_for(self.joined, TIMEOUT)

    def on_text(self, data: bytes) -> None:
        # The envelope is decoded, the payload only when it is needed: a flood's text is
        # looked at as the JSON bytes it came in (its END marker is plain in them), so that
        # the client, one Python process, is not what a flood measures.
        _, ref, _, event, payload = self.worker.decode_envelope(data)
        decode = self.worker.decode
        if event == "echo" or event == "prompt":
            if self.flooding is not None and self.hello.done():
                self.flooding.text(self, bytes(payload))
            else:
                self.got_text(decode(payload)["message"])
        elif event == "gmcp":
            p = decode(payload)
            self.handler.gmcp(self, p["module"], p["data"])
        elif event == "phx_reply" and ref == "1":
            self.joined.set_result(decode(payload)["status"])

    def send_line(self, line: str) -> None:
        self.ref += 1
        self.worker.send(self.ws, '["1","%d","%s","recv",%s]'
                         % (self.ref, self.topic, json.dumps({"message": line})))


class WebsockifyConn(WsConn):
    kind = "websockify"
    protocols = ("binary",)

    def url(self, port: int) -> str:
        return f"http://{HOST}:{port}/"

    def on_binary(self, data: bytes) -> None:
        self.got_text(data)

    def send_line(self, line: str) -> None:
        self.worker.send_bytes(self.ws, line.encode() + b"\r\n")


class WebtelnetConn(WsConn):
    """socket.io 1.x over engine.io 3, websocket transport only."""

    kind = "webtelnet"

    def url(self, port: int) -> str:
        return f"http://{HOST}:{port}/socket.io/?EIO=3&transport=websocket"

    async def opened(self) -> None:
        # The first "stream" event makes webtelnet connect to the MUD (its text is not sent).
        await self.ws.send_str('42["stream",""]')

    def on_binary(self, data: bytes) -> None:
        if data[:1] == b"\x04":  # an engine.io binary message: a "stream" event's attachment
            self.got_text(data[1:])

    def send_line(self, line: str) -> None:
        self.worker.send(self.ws, "42" + json.dumps(["stream", line + "\r\n"]))


class MudWebProxyConn(WsConn):
    """maldorne/mud-web-proxy: a JSON ``connect`` (to its default game, the MUD), then the
    game's bytes in binary frames (its telnet negotiation answered by the proxy, GMCP passed on
    as IAC SB GMCP ... IAC SE) and ours, not JSON, sent on to the game as they are."""

    kind = "mud-web-proxy"

    def url(self, port: int) -> str:
        return f"http://{HOST}:{port}/"

    async def opened(self) -> None:
        await self.ws.send_str('{"connect":1}')

    def on_binary(self, data: bytes) -> None:
        self.got_text(data)

    def on_text(self, data: Any) -> None:
        self.got_text(data if isinstance(data, bytes) else data.encode())

    def send_line(self, line: str) -> None:
        self.worker.send_bytes(self.ws, line.encode() + b"\r\n", 0x1)


KINDS = {"gateway": GatewayConn, "direct": DirectConn, "websockify": WebsockifyConn,
         "webtelnet": WebtelnetConn, "mud-web-proxy": MudWebProxyConn}
#: Where ./dev bench installs mud-web-proxy (and builds it: its package is TypeScript).
MUD_WEB_PROXY = HERE / ".peers" / "node_modules" / "mud-web-proxy" / "dist" / "index.js"


class FloodHandler(Handler):
    def __init__(self, done: asyncio.Future[None], marker: Any) -> None:
        self.done = done
        self.marker = marker
        self.size = 0
        self.tail = marker[:0]

    def text(self, conn: Conn, data: Any) -> None:
        self.size += len(data)
        window = self.tail + data[:16]
        if self.marker in window or self.marker in data:  # (a gateway payload ends with seq, sent_at)
            if not self.done.done():
                self.done.set_result(None)
        self.tail = data[-16:]


class GmcpHandler(Handler):
    """Checks every Char.Vitals message: intact and in order."""

    def __init__(self, done: asyncio.Future[None], n: int, raw: bool) -> None:
        self.done = done
        self.n = n
        self.i = 0
        self.bad = 0
        self.buf = b""
        self.raw = raw
        self.head = bytes((IAC, SB, GMCP))

    def text(self, conn: Conn, data: Any) -> None:
        if not self.raw:
            if "END-GMCP" in data:
                self.finish()
            return
        buf = self.buf + data
        pos = 0
        head = self.head
        while True:
            i = buf.find(head, pos)
            if i < 0:
                break
            j = buf.find(b"\xff\xf0", i)
            if j < 0:
                break
            if buf[i + 3:j] != vitals(self.i):
                self.bad += 1
            self.i += 1
            pos = j + 2
        rest = buf[pos:]
        if END_GMCP in rest:
            self.finish()
        self.buf = rest[-4096:] if head not in rest else rest

    def gmcp(self, conn: Conn, module: str, data: Any) -> None:
        i = self.i
        if (module != "Char.Vitals" or data.get("n") != i or data.get("hp") != 1000 - i % 997
                or data.get("mv") != 300 - i % 293):
            self.bad += 1
        self.i = i + 1

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class EchoHandler(Handler):
    def __init__(self) -> None:
        self.want: Any = None
        self.fut: asyncio.Future[None] | None = None

    def text(self, conn: Conn, data: Any) -> None:
        if self.want is not None and self.want in data and self.fut is not None:
            self.want = None
            self.fut.set_result(None)


class Worker:
    def __init__(self, kind: str, port: int, deflate: bool) -> None:
        import msgspec

        from gateway.aiohttp_private import write_frame_now
        self.write_frame_now = write_frame_now  # aiohttp's private frame writer, in its one module
        self.kind = kind
        self.port = port
        self.deflate = deflate
        self.conns: list[Conn] = []
        self.decode = msgspec.json.Decoder().decode
        self.decode_envelope = msgspec.json.Decoder(tuple[Any, Any, str, str, msgspec.Raw]).decode
        self.http: Any = None

    def send(self, ws: Any, text: str) -> None:
        self.send_bytes(ws, text.encode(), 0x1)

    def send_bytes(self, ws: Any, data: bytes, opcode: int = 0x2) -> None:
        """One masked frame written at once: ``ws.send_*`` is a coroutine, and a task per line
        made the clients, not the peers, the limit at thousands of sessions."""
        self.write_frame_now(ws, data, opcode)

    async def connect(self, count: int) -> dict[str, Any]:
        gate = asyncio.Semaphore(64)
        cls = KINDS[self.kind]
        failed = 0

        async def one(sid: int) -> None:
            nonlocal failed
            async with gate:
                c = cls(self, sid)
                try:
                    await asyncio.wait_for(c.open(self.port), TIMEOUT)
                    await asyncio.wait_for(c.hello, TIMEOUT)
                except Exception as exc:  # noqa: BLE001
                    failed += 1
                    if os.environ.get("BENCH_DEBUG"):
                        print(f"connect: {type(exc).__name__}: {exc}", file=sys.stderr)
                    return
                self.conns.append(c)

        base = len(self.conns)
        await asyncio.gather(*(one(base + i) for i in range(count)))
        # The connections live on: out of the collector's full passes from now. Else the one owed
        # from their growth comes in a round-trip window, ~0.3 s at 5,000 connections: every
        # round trip measured across it is that much late, and the lines held meanwhile reach
        # the peer in one burst (docs/performance.md 1.16).
        gc.collect()
        gc.freeze()
        return {"connected": len(self.conns), "failed": failed}

    async def flood(self, nbytes: int, sessions: int, start: int = 0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        conns = self.conns[start:start + sessions]
        handlers = []
        for c in conns:
            h = FloodHandler(loop.create_future(), END_FLOOD)  # bytes: raw relays, gateway payloads
            c.handler = h
            if isinstance(c, GatewayConn):
                c.flooding = h
            handlers.append(h)
        cpu0 = time.process_time()
        t0 = time.monotonic()
        for c in conns:
            c.send_line(f"flood {nbytes}")
        try:
            await asyncio.wait_for(asyncio.gather(*(h.done for h in handlers)), TIMEOUT * 4)
        finally:
            for c in conns:
                if isinstance(c, GatewayConn):
                    c.flooding = None
        t1 = time.monotonic()
        return {"t0": t0, "t1": t1, "received": sum(h.size for h in handlers),
                "client_cpu": time.process_time() - cpu0}

    async def gmcp(self, n: int) -> dict[str, Any]:
        c = self.conns[0]
        h = GmcpHandler(asyncio.get_running_loop().create_future(), n, c.raw)
        c.handler = h
        cpu0 = time.process_time()
        t0 = time.monotonic()
        c.send_line(f"gmcp {n}")
        await asyncio.wait_for(h.done, TIMEOUT * 4)
        t1 = time.monotonic()
        return {"t0": t0, "t1": t1, "count": h.i, "bad": h.bad,
                "client_cpu": time.process_time() - cpu0}

    async def roundtrips(self, active: int, seconds: int) -> dict[str, Any]:
        """``active`` sessions each send one line a second for ``seconds``; the round trips (ms)."""
        loop = asyncio.get_running_loop()
        samples: list[float] = []
        failed = 0
        start = loop.time() + 0.2

        async def one(c: Conn) -> None:
            nonlocal failed
            h = EchoHandler()
            c.handler = h
            phase = random.random()
            for k in range(seconds):
                due = start + phase + k
                await asyncio.sleep(max(0.0, due - loop.time()))
                line = f"ping {c.sid} {k}"
                h.want = line.encode() if c.raw else line
                h.fut = loop.create_future()
                t0 = time.perf_counter()
                c.send_line(line)
                try:
                    async with asyncio.timeout(10.0):  # no task per wait, unlike wait_for
                        await h.fut
                except TimeoutError:
                    failed += 1
                    continue
                samples.append((time.perf_counter() - t0) * 1000)

        cpu0 = time.process_time()
        gc.disable()  # the measuring side makes no pause of its own in a window (docs 1.16)
        try:
            await asyncio.gather(*(one(c) for c in self.conns[:active]))
        finally:
            gc.enable()
        return {"samples": samples, "failed": failed, "client_cpu": time.process_time() - cpu0}

    async def pinger(self) -> None:
        """engine.io 3: the client pings (webtelnet would drop us after 85 s)."""
        while True:
            await asyncio.sleep(20)
            for c in list(self.conns):
                if isinstance(c, WebtelnetConn) and not c.ws.closed:
                    self.send(c.ws, "2")

    async def main(self) -> None:
        import aiohttp
        if os.environ.get("BENCH_GC_LOG"):  # the measuring side's own stalls (docs 1.16)
            log_loop(f"/tmp/bench_gc_worker_{os.getpid()}.log")
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=True))
        ping = asyncio.ensure_future(self.pinger())
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                cmd = json.loads(line)
                op = cmd.pop("op")
                if op == "quit":
                    break
                try:
                    result = await getattr(self, op)(**cmd)
                except Exception as exc:  # noqa: BLE001
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                sys.stdout.write(json.dumps(result) + "\n")
                sys.stdout.flush()
        finally:
            ping.cancel()
            for c in self.conns:
                try:
                    await asyncio.wait_for(c.close(), 2)
                except Exception:  # noqa: BLE001
                    pass
            await self.http.close()


def run_worker(kind: str, port: int, deflate: bool) -> None:
    raise_nofile()
    try:
        import uvloop
        uvloop.run(Worker(kind, port, deflate).main())
    except ImportError:
        asyncio.run(Worker(kind, port, deflate).main())


# -- the orchestra -------------------------------------------------------------------------------

def proc_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat``'s fields after the command name (None once the process is gone):
    index 11 utime, 12 stime, 13 cutime, 14 cstime, in clock ticks."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f[f.rfind(")") + 2:].split()


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (every thread, in ns: /proc/*/task/*/schedstat),
    plus what the children they reaped used (cutime+cstime, in clock ticks)."""
    total = 0.0
    for p in proc_tree(pid):
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                total += int(Path(f"/proc/{p}/task/{t}/schedstat").read_text().split()[0]) / 1e9
        except OSError:
            continue
        fields = stat_fields(p)
        if fields is not None:
            total += (int(fields[13]) + int(fields[14])) / CLK_TCK  # cutime cstime
    return total


def tree_user(pid: int) -> float:
    """The user part of ``tree_cpu`` (its own code, not the kernel's: utime + cutime, in clock
    ticks): where two peers that make the same system calls differ."""
    fields = (stat_fields(p) for p in proc_tree(pid))
    return sum(int(f[11]) + int(f[13]) for f in fields if f is not None) / CLK_TCK


def tree_rss(pid: int) -> int:
    total = 0
    for p in proc_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class Proc:
    """A child process that prints ``PORT n`` when it serves."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, port: int | None = None,
                 stdin: Any = subprocess.DEVNULL) -> None:
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  env=env, text=True, start_new_session=True)
        self.port = port
        if port is None:
            deadline = time.monotonic() + 30
            for line in self.p.stdout:  # type: ignore[union-attr]
                if line.startswith("PORT "):
                    self.port = int(line.split()[1])
                    break
                if time.monotonic() > deadline:
                    break
            if self.port is None:
                self.stop()
                raise RuntimeError(f"{argv[:3]} did not start")
        else:
            wait_port(port)

    @property
    def pid(self) -> int:
        return self.p.pid

    def stop(self) -> None:
        try:
            os.killpg(self.p.pid, 15)
        except ProcessLookupError:
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, 9)
            self.p.wait(5)


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), 1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def free_port() -> int:
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class WorkerProc:
    def __init__(self, kind: str, port: int, deflate: bool) -> None:
        argv = [sys.executable, str(HERE / "sidebyside.py"), "--role", "worker", "--kind", kind,
                "--port", str(port), "--deflate", "on" if deflate else "off"]
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)

    def ask(self, op: str, **kw: Any) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.p.stdin.flush()

    def answer(self) -> dict[str, Any]:
        assert self.p.stdout is not None
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("worker died")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(out["error"])
        return out

    def stop(self) -> None:
        try:
            self.ask("quit")
            self.p.wait(15)
        except Exception:  # noqa: BLE001
            os.killpg(self.p.pid, 9)
            self.p.wait(5)


def all_ask(workers: list[WorkerProc], op: str, per: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for w, kw in zip(workers, per):
        w.ask(op, **kw)
    return [w.answer() for w in workers]


class Peer:
    """The proxy under test (nothing for ``direct``)."""

    def __init__(self, kind: str, mud_port: int, args: argparse.Namespace) -> None:
        self.kind = kind
        self.proc: Proc | None = None
        if kind == "direct":
            self.port = mud_port
        elif kind.startswith("gateway"):
            loop = "uvloop" if kind == "gateway-uvloop" else "asyncio"
            self.proc = Proc([sys.executable, str(HERE / "sidebyside.py"), "--role", "gateway",
                              "--mud-port", str(mud_port), "--loop", loop])
        elif kind in ("relay", "floor"):
            self.proc = Proc([sys.executable, str(HERE / "sidebyside.py"), "--role", kind,
                              "--mud-port", str(mud_port)])
        elif kind == "websockify":
            port = free_port()
            self.proc = Proc([str(Path(sys.executable).parent / "websockify"), f"{HOST}:{port}",
                              f"{HOST}:{mud_port}"], port=port)
        elif kind == "webtelnet":
            env = dict(os.environ, NODE_PATH=str(HERE / ".peers" / "node_modules"))
            self.proc = Proc(["node", str(HERE / "webtelnet_peer.cjs"), "0", str(mud_port)], env=env)
        elif kind == "mud-web-proxy":
            # Configured by its environment (its src/config.ts): the MUD as its default game,
            # no limit the benchmark would hit (connections, per-address rate), quiet logs.
            port = free_port()
            env = dict(os.environ, WS_PORT=str(port), DEFAULT_HOST=HOST, DEFAULT_PORT=str(mud_port),
                       MAX_CONNECTIONS="1000000", RATE_LIMIT_PER_IP="1000000", LOG_LEVEL="error",
                       CHAT_ENABLED="false", IDLE_TIMEOUT_MS=str(3600_000), NODE_ENV="production")
            self.proc = Proc(["node", str(MUD_WEB_PROXY)], env=env, port=port)
        if self.proc is not None:
            self.port = self.proc.port  # type: ignore[assignment]

    @property
    def client_kind(self) -> str:
        return client_kind(self.kind)

    def cpu(self) -> float:
        return tree_cpu(self.proc.pid) if self.proc else 0.0

    def user(self) -> float:
        return tree_user(self.proc.pid) if self.proc else 0.0

    def rss(self) -> int:
        return tree_rss(self.proc.pid) if self.proc else 0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


SETTLE = 1.5
#: Before an idle RSS figure: an idle player has been quiet a while, and the gateway lets a
#: quiet socket's deflate context go after 10 s (websocket.py QUIET_SECONDS).
IDLE_SETTLE = 12.0


def throughput_rep(peer: Peer, deflate: bool, sizes: dict[str, int]) -> dict[str, dict[str, float]]:
    """One repetition of flood-1, flood-20 and gmcp on a fresh peer."""
    out: dict[str, dict[str, float]] = {}
    workers = [WorkerProc(peer.client_kind, peer.port, deflate) for _ in range(2)]
    try:
        all_ask(workers, "connect", [{"count": 10}, {"count": 10}])
        # flood-1 (worker 0, one session)
        cpu0 = peer.cpu()
        workers[0].ask("flood", nbytes=sizes["flood1"], sessions=1)
        r = workers[0].answer()
        time.sleep(SETTLE)
        cpu = peer.cpu() - cpu0
        mb = sizes["flood1"] / 1e6
        out["flood-1"] = {"MB/s": mb / (r["t1"] - r["t0"]), "ms/MB": cpu * 1000 / mb,
                          "client busy": r["client_cpu"] / (r["t1"] - r["t0"])}
        # flood-20 (10 sessions in each worker)
        cpu0 = peer.cpu()
        rs = all_ask(workers, "flood", [{"nbytes": sizes["flood20"], "sessions": 10}] * 2)
        time.sleep(SETTLE)
        cpu = peer.cpu() - cpu0
        mb = 20 * sizes["flood20"] / 1e6
        wall = max(r["t1"] for r in rs) - min(r["t0"] for r in rs)
        out["flood-20"] = {"MB/s": mb / wall, "ms/MB": cpu * 1000 / mb,
                           "client busy": max(r["client_cpu"] for r in rs) / wall}
        # gmcp burst (worker 0, one session)
        n = sizes["gmcp"]
        cpu0 = peer.cpu()
        workers[0].ask("gmcp", n=n)
        r = workers[0].answer()
        time.sleep(SETTLE)
        cpu = peer.cpu() - cpu0
        out["gmcp"] = {"msg/s": n / (r["t1"] - r["t0"]), "us/msg": cpu * 1e6 / n,
                       "bad": (n - r["count"]) + r["bad"], "client busy": r["client_cpu"] / (r["t1"] - r["t0"])}
    finally:
        for w in workers:
            w.stop()
    return out


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def scale_run(peer: Peer, deflate: bool, plan: dict[str, Any], log: Any,
              game_pid: int) -> dict[str, dict[str, float]]:
    """Sessions added level by level: idle RSS at the RSS levels, round trips at the latency levels
    (with the fake MUD's share of the machine, ``game_pid``'s, in their windows)."""
    out: dict[str, dict[str, float]] = {}
    nworkers = plan["workers"]
    workers = [WorkerProc(peer.client_kind, peer.port, deflate) for _ in range(nworkers)]
    try:
        # warm up (imports, first allocations), then the baseline RSS
        all_ask(workers, "connect", [{"count": 1}] * nworkers)
        time.sleep(SETTLE)
        rss0 = peer.rss()
        have = nworkers
        levels = sorted(set(plan["rss"]) | set(plan["rt"]))
        for want in levels:
            if want > plan["max_sessions"].get(peer.kind, 10**9):
                break
            level = want
            if level > plan["fd_sessions"] and peer.kind != "direct":
                # two descriptors per session in a proxy: hold as many as the fd limit lets us
                level = plan["fd_sessions"]
            need = level - have
            if need > 0:
                t = time.monotonic()
                per = [need // nworkers + (1 if i < need % nworkers else 0) for i in range(nworkers)]
                rs = all_ask(workers, "connect", [{"count": c} for c in per])
                have = sum(r["connected"] for r in rs)
                failed = sum(r["failed"] for r in rs)
                log(f"    {peer.kind}: {have} sessions ({failed} failed) in {time.monotonic() - t:.1f} s")
                if have < level:
                    out[f"idle-{want}"] = {"missing": float(level - have)}
                    break
            if want in plan["rss"]:
                time.sleep(IDLE_SETTLE)
                rss = peer.rss()
                out[f"idle-{want}"] = {"KB/session": (rss - rss0) / level / 1024, "RSS MB": rss / 1e6,
                                       "sessions": level}
            if want in plan["rt"]:
                p50s, p99s, p999s, fails, cpus, users, busy, games = [], [], [], 0, [], [], [], []
                for _ in range(plan["windows"]):
                    per = [level // nworkers + (1 if i < level % nworkers else 0) for i in range(nworkers)]
                    cpu0, user0 = peer.cpu(), peer.user()
                    game0 = tree_cpu(game_pid)
                    t0 = time.monotonic()
                    if os.environ.get("BENCH_GC_LOG"):
                        log(f"    rt-{want} window at {time.time():.3f}")
                    rs = all_ask(workers, "roundtrips", [{"active": a, "seconds": plan["seconds"]} for a in per])
                    wall = time.monotonic() - t0
                    cpus.append((peer.cpu() - cpu0) / wall)
                    users.append((peer.user() - user0) / wall)
                    busy.append(max(r["client_cpu"] for r in rs) / wall)
                    games.append((tree_cpu(game_pid) - game0) / wall)
                    samples = [x for r in rs for x in r["samples"]]
                    fails += sum(r["failed"] for r in rs)
                    p50s.append(percentile(samples, 0.5))
                    p99s.append(percentile(samples, 0.99))
                    p999s.append(percentile(samples, 0.999))
                out[f"rt-{want}"] = {"p50 ms": p50s, "p99 ms": p99s, "p99.9 ms": p999s,  # type: ignore[dict-item]
                                     "failed": fails,
                                     "proxy cores": statistics.median(cpus), "sessions": level,
                                     "proxy user cores": statistics.median(users),
                                     "client busy": statistics.median(busy),
                                     "game cores": statistics.median(games)}
    finally:
        for w in workers:
            w.stop()
    return out


def full_run(peer: Peer, deflate: bool, sessions: int, each: int) -> dict[str, float]:
    workers = [WorkerProc(peer.client_kind, peer.port, deflate)]
    try:
        workers[0].ask("connect", count=1)
        workers[0].answer()
        time.sleep(SETTLE)
        rss0 = peer.rss()
        workers[0].ask("connect", count=sessions - 1)
        workers[0].answer()
        for start in range(0, sessions, 5):  # a few at a time: RSS is what stays, not a peak
            workers[0].ask("flood", nbytes=each, sessions=min(5, sessions - start), start=start)
            workers[0].answer()
        time.sleep(SETTLE + 1.5)  # the compactor runs once a second
        rss = peer.rss()
        return {"KB/session": (rss - rss0) / sessions / 1024}
    finally:
        for w in workers:
            w.stop()


def summary(values: list[float]) -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "n/a"
    med = statistics.median(vals)
    fmt = (lambda v: f"{v:,.0f}") if med >= 100 else (lambda v: f"{v:.2f}")
    if len(vals) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(vals))}-{fmt(max(vals))})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", default="run", choices=["run", "mud", "gateway", "relay", "floor", "worker"])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer sessions (~5 min)")
    ap.add_argument("--reps", type=int, default=3,
                    help="repetitions: of each throughput and full run, and round-trip windows per level")
    ap.add_argument("--peers", default="gateway,direct,websockify,webtelnet",
                    help="comma list of gateway, gateway-uvloop, direct, relay, floor, websockify, "
                         "webtelnet, mud-web-proxy")
    ap.add_argument("--only", default="throughput,scale,full", help="comma list of phases")
    ap.add_argument("--deflate", default="both", choices=["off", "on", "both"],
                    help="offer permessage-deflate (gateway, webtelnet): off, on or both")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--rt-levels", help="comma list of round-trip session counts (default 1,100,1000,10000)")
    ap.add_argument("--rss-levels", help="comma list of idle RSS session counts (default 2000,9000)")
    ap.add_argument("--budget", type=float, default=1800, help="stop starting new phases after this (s)")
    # internal
    ap.add_argument("--mud-port", type=int)
    ap.add_argument("--port", type=int)
    ap.add_argument("--kind")
    ap.add_argument("--loop", default="asyncio")
    args = ap.parse_args()
    if args.role == "mud":
        return run_server(frozen(serve_mud(), "mud_"), "asyncio")
    if args.role in ("gateway", "relay", "floor"):  # the relay and the floor: uvloop's, always
        return run_server(peer_server(args.role, args.mud_port), args.loop if args.role == "gateway" else "uvloop")
    if args.role == "worker":
        return run_worker(args.kind, args.port, args.deflate == "on")

    began = time.monotonic()
    nofile = raise_nofile()
    q = args.quick
    sizes = {"flood1": 5_000_000 if q else 20_000_000, "flood20": 500_000 if q else 2_000_000,
             "gmcp": 20_000 if q else 100_000}
    plan = {"rss": [2000] if q else [2000, 9000], "rt": [1, 100, 1000] if q else [1, 100, 1000, 10000],
            "windows": args.reps, "seconds": 3 if q else 5, "workers": 2,
            # websockify forks one process per connection: not at thousands
            "max_sessions": {"websockify": 100},
            "fd_sessions": (nofile - 200) // 2 // 100 * 100}
    if args.rt_levels is not None:
        plan["rt"] = [int(x) for x in args.rt_levels.split(",") if x]
    if args.rss_levels is not None:
        plan["rss"] = [int(x) for x in args.rss_levels.split(",") if x]
    full_sessions = 40 if q else 100
    peers = [p for p in args.peers.split(",") if p]
    if "websockify" in peers and not (Path(sys.executable).parent / "websockify").exists():
        print("websockify is not installed in this venv (./dev bench sets it up): skipped")
        peers.remove("websockify")
    if "webtelnet" in peers and not (HERE / ".peers" / "node_modules" / "webtelnet").exists():
        print("webtelnet is not installed in bench/.peers (./dev bench sets it up): skipped")
        peers.remove("webtelnet")
    if "mud-web-proxy" in peers and not MUD_WEB_PROXY.exists():
        print("mud-web-proxy is not installed in bench/.peers (./dev bench sets it up): skipped")
        peers.remove("mud-web-proxy")
    variants: list[tuple[str, bool]] = []
    for p in peers:
        if args.deflate in ("off", "both") or p in ("direct", "websockify", "relay", "floor", "mud-web-proxy"):
            variants.append((p, False))
        if args.deflate in ("on", "both") and p in ("gateway", "webtelnet"):
            variants.append((p, True))
    phases = args.only.split(",")

    def log(msg: str) -> None:
        print(msg, flush=True)

    def start_peer(v: tuple[str, bool]) -> "Peer | None":
        """The variant's peer, or None (reported) when it does not start."""
        try:
            return Peer(v[0], mud.port, args)  # type: ignore[arg-type]
        except RuntimeError as exc:
            log(f"    {exc}")
            return None

    def name(v: tuple[str, bool]) -> str:
        return v[0] + ("+deflate" if v[1] else "")

    log(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} (1 min) at start; "
        f"RLIMIT_NOFILE {nofile}; python {sys.version.split()[0]}")
    mud = Proc([sys.executable, str(HERE / "sidebyside.py"), "--role", "mud"])
    results: dict[str, dict[str, dict[str, Any]]] = {name(v): {} for v in variants}
    try:
        if "throughput" in phases:
            for rep in range(args.reps):
                for v in variants:
                    if time.monotonic() - began > args.budget:
                        break
                    if v[0] == "floor":
                        continue  # round trips and idle sessions only (bench/floor.py)
                    log(f"  throughput rep {rep + 1}: {name(v)}")
                    peer = start_peer(v)
                    if peer is None:
                        continue
                    try:
                        r = throughput_rep(peer, v[1], sizes)
                    except Exception as exc:  # noqa: BLE001
                        log(f"    failed: {exc}")
                        continue
                    finally:
                        peer.stop()
                    for wl, m in r.items():
                        for k, x in m.items():
                            results[name(v)].setdefault(wl, {}).setdefault(k, []).append(x)
        if "scale" in phases:
            for v in variants:
                if time.monotonic() - began > args.budget:
                    break
                if v[1] and not q and v[0] != "gateway":
                    pass
                log(f"  scale: {name(v)}")
                peer = start_peer(v)
                if peer is None:
                    continue
                try:
                    r = scale_run(peer, v[1], plan, log, mud.pid)
                except Exception as exc:  # noqa: BLE001
                    log(f"    failed: {exc}")
                    r = {}
                finally:
                    peer.stop()
                for wl, m in r.items():
                    for k, x in m.items():
                        results[name(v)].setdefault(wl, {})[k] = x if isinstance(x, list) else [x]
        if "full" in phases:
            for rep in range(args.reps):
                for v in variants:
                    if v[0] in ("direct", "floor") or time.monotonic() - began > args.budget:
                        continue
                    log(f"  full rep {rep + 1}: {name(v)}")
                    peer = start_peer(v)
                    if peer is None:
                        continue
                    try:
                        r1 = full_run(peer, v[1], full_sessions, 2_000_000)
                    except Exception as exc:  # noqa: BLE001
                        log(f"    failed: {exc}")
                        continue
                    finally:
                        peer.stop()
                    for k, x in r1.items():
                        results[name(v)].setdefault("full", {}).setdefault(k, []).append(x)
    finally:
        mud.stop()

    log(f"\nload {os.getloadavg()[0]:.1f} (1 min) at the end; {time.monotonic() - began:.0f} s")
    report(results, sizes, plan, full_sessions)
    if args.json:
        Path(args.json).write_text(json.dumps({"sizes": sizes, "plan": plan, "results": results}, indent=1))


def report(results: dict[str, dict[str, dict[str, Any]]], sizes: dict[str, int], plan: dict[str, Any],
           full_sessions: int) -> None:
    rows: list[tuple[str, str]] = [
        ("flood-1", "MB/s"), ("flood-1", "ms/MB"), ("flood-1", "client busy"),
        ("flood-20", "MB/s"), ("flood-20", "ms/MB"), ("flood-20", "client busy"),
        ("gmcp", "msg/s"), ("gmcp", "us/msg"), ("gmcp", "bad"), ("gmcp", "client busy"),
    ]
    for lvl in plan["rt"]:
        rows += [(f"rt-{lvl}", "sessions"), (f"rt-{lvl}", "p50 ms"), (f"rt-{lvl}", "p99 ms"), (f"rt-{lvl}", "p99.9 ms"),
                 (f"rt-{lvl}", "failed"), (f"rt-{lvl}", "proxy cores"), (f"rt-{lvl}", "proxy user cores"),
                 (f"rt-{lvl}", "game cores"),
                 (f"rt-{lvl}", "client busy")]
    for lvl in plan["rss"]:
        rows += [(f"idle-{lvl}", "sessions"), (f"idle-{lvl}", "KB/session")]
    rows.append(("full", "KB/session"))
    names = list(results)
    width = max(24, *(len(n) + 2 for n in names))
    print(f"\nflood-1: 1 session x {sizes['flood1'] / 1e6:g} MB; flood-20: 20 x {sizes['flood20'] / 1e6:g} MB; "
          f"gmcp: {sizes['gmcp']:,} Char.Vitals; rt-N: N sessions x 1 line/s; "
          f"idle-N: N idle sessions; full: {full_sessions} sessions x 2 MB")
    print("measure".ljust(26) + "".join(n.rjust(width) for n in names))
    for wl, key in rows:
        cells = []
        for n in names:
            vals = results[n].get(wl, {}).get(key)
            cells.append(summary(vals) if vals else "-")
        print(f"{wl} {key}".ljust(26) + "".join(c.rjust(width) for c in cells))
    # ratios in this run
    print("\nratios (medians, this run):")

    def med(n: str, wl: str, key: str) -> float:
        vals = results.get(n, {}).get(wl, {}).get(key)
        return statistics.median(vals) if vals else float("nan")

    def each(n: str, wl: str, key: str) -> list[float]:
        return list(results.get(n, {}).get(wl, {}).get(key) or [])

    def ratios(a: list[float], b: list[float]) -> str:
        """a[i] / b[i] for each repetition i, and their range: a claim holds only if it holds in all."""
        rs = [x / y for x, y in zip(a, b) if y == y and y > 0 and x == x]
        if not rs:
            return "n/a"
        return " ".join(f"{r:.2f}" for r in rs) + f" (max {max(rs):.2f})"

    print("\nround trips per repetition (rt-N windows: the same sessions, one after another):")
    for lvl in plan["rt"]:
        for g in [n for n in names if n != "direct" and f"rt-{lvl}" in results[n]]:
            for key in ("p99 ms", "p99.9 ms"):
                line = [f"  rt-{lvl} {key[:-3]} {g}"]
                for base in ("direct", "relay", "floor", "mud-web-proxy"):
                    if base != g and f"rt-{lvl}" in results.get(base, {}):
                        line.append(f"/ {base} {ratios(each(g, f'rt-{lvl}', key), each(base, f'rt-{lvl}', key))}")
                if len(line) > 1:
                    print(" ".join(line[:1]) + ": " + "; ".join(line[1:]))
            wl = f"rt-{lvl}"
            if g.startswith("gateway") and med("floor", wl, "proxy cores") > 0 and med("floor", wl, "proxy user cores") > 0:
                print(f"  {wl} proxy cores {g}: / floor {med(g, wl, 'proxy cores') / med('floor', wl, 'proxy cores'):.2f} "
                      f"(user {med(g, wl, 'proxy user cores') / med('floor', wl, 'proxy user cores'):.2f})")
    for g in [n for n in names if n.startswith("gateway") and "deflate" not in n]:
        us = each(g, "gmcp", "us/msg")
        checks = []
        if us:
            checks.append(f"gmcp us/msg per repetition {' '.join(f'{x:.2f}' for x in us)} "
                          f"(target <= 3 in every one: {'met' if max(us) <= 3 else 'missed'})")
        r1 = [x / y for x, y in zip(each(g, "rt-1000", "p99 ms"), each("direct", "rt-1000", "p99 ms"))]
        if r1:
            checks.append(f"rt-1000 p99 <= 3x direct in every repetition: {'met' if max(r1) <= 3 else 'missed'}")
        mw = [x / y for x, y in zip(each(g, "rt-1000", "p99 ms"), each("mud-web-proxy", "rt-1000", "p99 ms"))]
        if mw:
            checks.append(f"below mud-web-proxy's in every repetition: {'met' if max(mw) < 1 else 'missed'}")
        r10 = [x / y for x, y in zip(each(g, "rt-10000", "p99 ms"), each("relay", "rt-10000", "p99 ms"))]
        if r10:
            checks.append(f"rt-10000 p99 <= 1.5x relay in every repetition: {'met' if max(r10) <= 1.5 else 'missed'}")
        if checks:
            print(f"  {g} (issue 21's targets): " + "; ".join(checks))

    for g in [n for n in names if n.startswith("gateway")]:
        wt = "webtelnet+deflate" if "deflate" in g else "webtelnet"
        print(f"  {g}: flood-1 {med(g, 'flood-1', 'MB/s') / med(wt, 'flood-1', 'MB/s'):.2f}x {wt} MB/s "
              f"(target >= 3); flood-1 {med(g, 'flood-1', 'ms/MB'):.2f} ms/MB (target <= 2); "
              f"gmcp {med(g, 'gmcp', 'us/msg'):.2f} us/msg (target <= 3); "
              f"rt-1000 p99 {med(g, 'rt-1000', 'p99 ms') / med('direct', 'rt-1000', 'p99 ms'):.2f}x direct "
              f"(target <= 3); rt-10000 p99 {med(g, 'rt-10000', 'p99 ms'):.2f} ms (target < 10); "
              f"idle-9000 {med(g, 'idle-9000', 'KB/session'):.1f} KB (target <= 10); "
              f"full {med(g, 'full', 'KB/session'):.0f} KB (target <= 300)")


if __name__ == "__main__":
    main()
