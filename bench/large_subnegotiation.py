"""/healthz latency while a game sends a 960 KB subnegotiation (SPEC 5: bounded time).

Two processes on 127.0.0.1 only:

  gateway  (subprocess) the real CLI, ``python -m gateway --config <tmp>``, one
           game: the MUD below.
  this     a MUD (asyncio server) that answers the gateway's connection with
           IAC WILL MSSP and, when told, sends ``--repeat`` MSSP tables of
           ``--kb`` KB each (IAC SB MSSP ... IAC SE, ~4400 variables), then a
           line of text; and an HTTP client that GETs /healthz one request
           after another.

Phases: the /healthz latency for ``--seconds`` with one idle session joined
(baseline), then while the tables go through the gateway (until the line
after the last table reaches the browser). Reported: p50/p99/max of each, the
time the tables took, and whether /api/games shows the whole table. Before
the fix (issue 10, item 7) telnetlib3 read such a table a byte at a time on
the event loop: /healthz went from ~3 ms to ~940 ms.

    python bench/large_subnegotiation.py [--kb 960] [--repeat 5] [--seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import sys
import tempfile
import time
import uuid

HOST = "127.0.0.1"
IAC, SB, SE, WILL, DO, MSSP = 255, 250, 240, 251, 253, 70


def mssp_table(kb: int) -> tuple[bytes, dict[str, str]]:
    table = {f"VAR{i:05d}": f"value {i} ☕ " + "x" * 200 for i in range(kb * 1024 // 220)}
    body = b"".join(b"\x01" + k.encode() + b"\x02" + v.encode() for k, v in table.items())
    return bytes((IAC, SB, MSSP)) + body + bytes((IAC, SE)), table


class Mud:
    def __init__(self, payload: bytes, repeat: int) -> None:
        self.payload, self.repeat = payload, repeat
        self.go = asyncio.Event()
        self.ready = asyncio.Event()
        self.sent_at = 0.0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(bytes((IAC, WILL, MSSP)))
        seen = b""
        while bytes((IAC, DO, MSSP)) not in seen:
            data = await reader.read(4096)
            if not data:
                return
            seen += data
        self.ready.set()
        await self.go.wait()
        self.sent_at = time.perf_counter()
        for _ in range(self.repeat):
            writer.write(self.payload)
            await writer.drain()
        writer.write(b"done\r\n")
        await writer.drain()
        await reader.read()  # until the gateway hangs up
        writer.close()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def _poll(http, url: str, until: asyncio.Event, seconds: float | None) -> list[float]:
    lat: list[float] = []
    end = time.perf_counter() + seconds if seconds else math.inf
    while not until.is_set() and time.perf_counter() < end:
        t = time.perf_counter()
        async with http.get(url) as resp:
            await resp.read()
        lat.append((time.perf_counter() - t) * 1000)
    return lat


async def _bench(args: argparse.Namespace) -> int:
    import aiohttp

    payload, table = mssp_table(args.kb)
    mud = Mud(payload, args.repeat)
    server = await asyncio.start_server(mud.handle, HOST, 0)
    mud_port = server.sockets[0].getsockname()[1]
    with socket.socket() as s:
        s.bind((HOST, 0))
        gw_port = s.getsockname()[1]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(f"listen: {{host: {HOST}, port: {gw_port}}}\n"
                f"games: [{{name: big, host: {HOST}, port: {mud_port}}}]\n"
                "logging: {level: warning}\n")
    gw = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "--config", f.name)
    base = f"http://{HOST}:{gw_port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            ws = await http.ws_connect(base + "/socket/websocket?vsn=2.0.0")
            topic = f"telnet:{uuid.uuid4()}"
            await ws.send_str(json.dumps(["1", "1", topic, "phx_join", {}]))
            await asyncio.wait_for(mud.ready.wait(), 10)
            done = asyncio.Event()

            async def read_events() -> None:
                async for msg in ws:
                    frame = json.loads(msg.data)
                    if frame[3] == "echo" and "done" in frame[4]["message"]:
                        done.set()
                        return

            reader = asyncio.ensure_future(read_events())
            idle = await _poll(http, base + "/healthz", asyncio.Event(), args.seconds)
            mud.go.set()
            busy = await asyncio.wait_for(_poll(http, base + "/healthz", done, None), args.timeout)
            took = time.perf_counter() - mud.sent_at
            async with http.get(base + "/api/games") as resp:
                shown = (await resp.json())["games"][0]["mssp"]
            reader.cancel()
            await ws.close()
    finally:
        gw.terminate()
        await gw.wait()
        os.unlink(f.name)
        server.close()
    print(f"{args.repeat} MSSP table(s) of {len(payload) / 1024:.0f} KB ({len(table)} variables) "
          f"through the gateway in {took * 1000:.0f} ms; /api/games shows the whole table: {shown == table}")
    print(f"{'/healthz':<22} {'samples':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for name, lat in (("idle session", idle), ("during the tables", busy)):
        print(f"{name:<22} {len(lat):>7} {_pct(lat, 50):>7.1f} {_pct(lat, 99):>7.1f} {max(lat, default=0):>7.1f}")
    return 0 if shown == table else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kb", type=int, default=960, help="size of one MSSP table in KB (default 960)")
    ap.add_argument("--repeat", type=int, default=5, help="tables sent one after another (default 5)")
    ap.add_argument("--seconds", type=float, default=2.0, help="length of the baseline phase (default 2)")
    ap.add_argument("--timeout", type=float, default=60.0, help="limit for the measured phase, s")
    args = ap.parse_args(argv)
    if not (1 <= args.kb <= 1023 and 1 <= args.repeat <= 100):
        ap.error("--kb must be 1..1023 (larger ones are discarded), --repeat 1..100")
    return asyncio.run(_bench(args))


if __name__ == "__main__":
    sys.exit(main())
