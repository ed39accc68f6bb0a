"""Parquet compression codecs and levels on realistic batches: encode time against file size,
and how much of the GIL the encoding leaves to the event loop.

The batches are what rotation hands the writer: the simulator's realistic stream (aggTrade,
depth20@100ms, bookTicker) routed through a harvester built as ``run`` builds it (decode, repair
gate, signal engines, lanes), then drained per lane and turned into the file's frame
(``to_file_frame``) exactly as ``storage/encoding.py`` does. Every codec writes the same frames
with ``statistics=True`` (as the writer does) into memory, so no disk time is counted.

For each codec: encode seconds (wall) and CPU seconds (all threads: Polars encodes on its own
pool), medians of ``--repeat``; throughput in MB/s of the in-memory frames; bytes written and
the ratio to the smallest. ``loop gap`` is the longest wait (p99 and max, ms) between two
readings of a pure-Python loop in the main thread while another thread encodes: Polars holding
the GIL for a long stretch would show here (compare the gaps with no encoding; on a loaded
machine the OS scheduler adds its own).

Run: ``python bench/compression.py [--quick] [--symbols N] [--frames N] [--repeat N]``.
Output: a table, then (last line) one JSON object: per codec ``seconds``, ``mb_per_s``,
``cpu_seconds``, ``bytes``, ``ratio_to_smallest``, ``loop_gap_p99_ms``, ``loop_gap_max_ms``;
``recommendation`` (the smallest files at no more CPU than the default level, +10 %).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import polars as pl
import trio
from hotpath import build, feed_all, frames_for

from trio_harvest.kinds import CVD, OFI, ORDERBOOK, PRICES, schema_for
from trio_harvest.storage.encoding import to_file_frame

KINDS = (PRICES, ORDERBOOK, OFI, CVD)
# (label, compression, level); the writer today: zstd at Polars' default level
CODECS: tuple[tuple[str, str, int | None], ...] = (
    ("zstd (default)", "zstd", None),
    ("zstd-1", "zstd", 1),
    ("zstd-3", "zstd", 3),
    ("zstd-6", "zstd", 6),
    ("zstd-9", "zstd", 9),
    ("lz4", "lz4", None),
    ("snappy", "snappy", None),
    ("uncompressed", "uncompressed", None),
)


def realistic_frames(symbols: tuple[str, ...], n: int, rate: float) -> dict[str, list[pl.DataFrame]]:
    """Per kind, one file frame per symbol, from ``n`` frames of the realistic stream."""
    frames = frames_for(symbols, n, rate)
    out: dict[str, list[pl.DataFrame]] = {k: [] for k in KINDS}
    with tempfile.TemporaryDirectory() as tmp:
        h = build(symbols, Path(tmp))

        async def route_all() -> None:
            await feed_all(h, frames)
            await h.router.release_held()

        trio.run(route_all)
        for lane in h.lanes:
            if lane.kind in out:
                batch = lane.drain()
                if len(batch):
                    out[lane.kind].append(to_file_frame(schema_for(lane.kind, 20), batch))
    return out


def encode_all(frames: dict[str, list[pl.DataFrame]], compression: str,
               level: int | None) -> dict[str, int]:
    """Bytes written per kind (every frame one Parquet file in memory)."""
    sizes: dict[str, int] = {}
    for kind, dfs in frames.items():
        total = 0
        for df in dfs:
            buf = io.BytesIO()
            df.write_parquet(buf, compression=compression,  # type: ignore[arg-type]
                             compression_level=level, statistics=True)
            total += buf.tell()
        sizes[kind] = total
    return sizes


def loop_gaps(seconds: float, stop: threading.Event | None = None) -> list[float]:
    """Gaps (ms) between consecutive readings of a pure-Python loop in this thread: the GIL held
    elsewhere (or the OS scheduler) shows as a long gap."""
    gaps: list[float] = []
    last = t0 = time.perf_counter()
    while True:
        for _ in range(100):
            pass
        now = time.perf_counter()
        gaps.append((now - last) * 1e3)
        last = now
        if now - t0 >= seconds or (stop is not None and stop.is_set()):
            return gaps


def p99(xs: list[float]) -> float:
    return sorted(xs)[int(len(xs) * 0.99)] if xs else 0.0


def gil_gaps(frames: dict[str, list[pl.DataFrame]], compression: str,
             level: int | None) -> tuple[float, float]:
    """The loop's p99 and longest gap (ms) while another thread encodes everything twice."""
    done = threading.Event()

    def work() -> None:
        for _ in range(2):
            encode_all(frames, compression, level)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    gaps = loop_gaps(120.0, done)
    worker.join()
    return p99(gaps), max(gaps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer frames and passes")
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--frames", type=int, default=300_000)
    ap.add_argument("--rate", type=float, default=C.REALISTIC_RATE, help="msg/s of the stream")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if args.quick:
        args.frames, args.repeat = min(args.frames, 60_000), min(args.repeat, 3)
    load = os.getloadavg()
    symbols = C.symbols(args.symbols)
    frames = realistic_frames(symbols, args.frames, args.rate)
    mem = sum(df.estimated_size() for dfs in frames.values() for df in dfs)
    rows = {k: sum(df.height for df in dfs) for k, dfs in frames.items()}
    results: dict[str, dict[str, Any]] = {}
    for label, compression, level in CODECS:
        times: list[float] = []
        cpu: list[float] = []
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            sizes = encode_all(frames, compression, level)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        secs, cpu_s = statistics.median(times), statistics.median(cpu)
        gap99, gap_max = gil_gaps(frames, compression, level)
        results[label] = {"seconds": round(secs, 4), "cpu_seconds": round(cpu_s, 4),
                          "mb_per_s": round(mem / 1e6 / secs, 1),
                          "bytes": sum(sizes.values()), "bytes_by_kind": sizes,
                          "loop_gap_p99_ms": round(gap99, 3),
                          "loop_gap_max_ms": round(gap_max, 1)}
    smallest = min(r["bytes"] for r in results.values())
    for r in results.values():
        r["ratio_to_smallest"] = round(r["bytes"] / smallest, 3)
    # the smallest files among the codecs that cost no more CPU than the default level (+10 %)
    default = results["zstd (default)"]
    fast = [k for k, r in results.items() if k != "uncompressed"
            and r["cpu_seconds"] <= default["cpu_seconds"] * 1.1]
    best = min(fast, key=lambda k: results[k]["bytes"]) if fast else "zstd (default)"
    alone = loop_gaps(1.0)
    print(C.table(["codec", "encode s", "CPU s", "MB/s", "bytes", "× smallest",
                   "loop gap p99 ms", "max ms"],
                  [[k, f"{r['seconds']:.3f}", f"{r['cpu_seconds']:.3f}", r["mb_per_s"],
                    r["bytes"], f"{r['ratio_to_smallest']:.3f}", f"{r['loop_gap_p99_ms']:.2f}",
                    r["loop_gap_max_ms"]] for k, r in results.items()]))
    print(f"loop gaps with no encoding: p99 {p99(alone):.3f} ms, max {max(alone):.1f} ms")
    print(f"{sum(len(d) for d in frames.values())} files, rows {rows}, "
          f"{mem / 1e6:.1f} MB in memory; recommendation: {best}")
    C.emit_json({"codecs": results, "recommendation": best, "rows": rows,
                 "loop_gap_alone_p99_ms": round(p99(alone), 3),
                 "loop_gap_alone_max_ms": round(max(alone), 1),
                 "memory_bytes": mem, "symbols": args.symbols, "frames": args.frames,
                 **C.conditions(load)})


if __name__ == "__main__":
    main()
