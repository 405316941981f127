"""permessage-deflate settings for the gateway's frames: saving against CPU and memory.

Feeds the same Phoenix frames a browser gets (echo events of a MUD transcript, one per
4 KiB game read, and its GMCP events) through one zlib context per setting, as the
socket's frame encoder does (one context per socket, Z_SYNC_FLUSH per message), and
reports the bytes saved, the CPU per MB of frames (best of 3) and the context's memory
(zlib's formula: (1 << (wbits + 2)) + (1 << (memLevel + 9))).

    .venv/bin/python bench/deflate_choice.py [--mb 5]
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec  # noqa: E402

from gateway.channel import event_payload, sent_at  # noqa: E402
from gateway.telnet.stream import Negotiation, TelnetStream  # noqa: E402
from stream_throughput import transcript  # noqa: E402


def frames(mb: float) -> list[bytes]:
    enc = msgspec.json.Encoder().encode
    data = transcript(mb)
    s = TelnetStream()
    out, seq = [], 0
    for i in range(0, len(data), 4096):
        for ev in s.feed(data[i:i + 4096], 0.0):
            if type(ev) is Negotiation:
                continue
            seq += 1
            name, payload = event_payload(ev, seq, sent_at())
            out.append(enc(["3", None, "telnet:6f1c2b1e-0000-4000-8000-000000000000", name,
                            msgspec.Raw(enc(payload))]))
    return out


def run(fr: list[bytes], level: int, wbits: int, mem: int, min_size: int) -> tuple[int, float]:
    best = 1e9
    size = 0
    for _ in range(3):
        c = zlib.compressobj(level, zlib.DEFLATED, -wbits, mem)
        size = 0
        t = time.process_time()
        for f in fr:
            if len(f) < min_size:
                size += len(f)
            else:
                size += len(c.compress(f) + c.flush(zlib.Z_SYNC_FLUSH)) - 4
        best = min(best, time.process_time() - t)
    return size, best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=5)
    args = ap.parse_args()
    fr = frames(args.mb)
    raw = sum(map(len, fr))
    print(f"{len(fr):,} frames, {raw / 1e6:.1f} MB; median frame {sorted(map(len, fr))[len(fr) // 2]} bytes")
    print(f"{'level':>5} {'wbits':>5} {'memLevel':>8} {'min size':>8} {'saved':>6} {'ms/MB':>6} {'context KB':>10}")
    for level, wbits, mem, min_size in [
        (1, 15, 8, 0), (6, 15, 8, 0), (9, 15, 8, 0), (1, 15, 8, 256), (1, 15, 8, 1024),
        (1, 13, 8, 256), (1, 12, 5, 256), (1, 11, 4, 256), (1, 10, 3, 256), (3, 12, 5, 256),
        (1, 12, 5, 0), (1, 9, 1, 256),
    ]:
        size, cpu = run(fr, level, wbits, mem, min_size)
        ctx = ((1 << (wbits + 2)) + (1 << (mem + 9))) / 1024
        print(f"{level:>5} {wbits:>5} {mem:>8} {min_size:>8} {1 - size / raw:>6.1%} "
              f"{cpu * 1000 / (raw / 1e6):>6.2f} {ctx:>10.0f}")


if __name__ == "__main__":
    main()
