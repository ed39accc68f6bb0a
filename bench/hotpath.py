"""The loop's own work per frame, with no socket: decode, dedup/continuity, routing, lane append
and signal updates.

The harvester is built exactly as ``run`` builds it (``Harvester(Config)``: router, repair gate,
signal engines, lanes) and ``Router.feed`` (what the connection loop calls) is called for every
frame of a pre-generated stream from the simulator's own market model and wire encoders
(aggTrade, depth20@100ms, bookTicker; the realistic mix). Frames are generated before timing
starts; lanes are drained between timed batches (rotation's cost is not the loop's: it is
measured by ``throughput.py``), with watermarks large enough that no producer ever waits.
Timed: process CPU time per frame (``time.process_time``), median of ``--repeat`` passes over
the same frames (a fresh harvester each pass, so dedup never drops a repeat). The quotes' and depth messages'
signals, which the harvester computes in batches at its features tick (``signals/batches.py``),
are computed and timed with each batch of frames: their cost is the loop's.

The garbage collector runs as in the harvester: ``run`` builds the harvester, then runs the loop
under its collector policy (``ops/gcpolicy.tuned``: start-up's objects collected and frozen,
thresholds 20,000/20/50), and so does each pass here. ``--default-gc`` times under CPython's
defaults instead (700/10/10, nothing frozen: a full collection over the freshly built harvester
then lands inside the timed loop), ``--no-gc`` with the collector off.

Target: ``us_per_frame`` ≤ 5.

Run: ``python bench/hotpath.py [--quick] [--symbols N] [--frames N] [--repeat N] [--profile]``.
Output: a table, then (last line) one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import trio

from trio_harvest.app import Harvester
from trio_harvest.config import Config
from trio_harvest.kinds import ALL_KINDS
from trio_harvest.ops.gcpolicy import tuned
from trio_harvest.signals.batches import flush_batches

TARGET_US = 5.0
KEEP_GC = "--no-gc" not in sys.argv
RUN_GC = "--default-gc" not in sys.argv  # the collector policy ``run`` applies
BATCH = 20_000


def build(symbols: tuple[str, ...], data_dir: Path) -> Harvester:
    huge = {kind: (10**7, 2 * 10**7) for kind in ALL_KINDS}
    cfg = Config(symbols=symbols, data_dir=data_dir, watermarks=huge)
    return Harvester(cfg)


def frames_for(symbols: tuple[str, ...], n: int, rate: float) -> list[str]:
    seconds = max(2.0, n / rate * 1.6)
    out: list[str] = []
    for frame in C.generate_frames(symbols, rate, seconds):
        out.append(frame)
        if len(out) >= n:
            break
    return out


async def feed_all(h: Harvester, frames: Iterable[str]) -> None:
    """Route ``frames`` through ``h``'s router as the connection loop does: ``Router.feed``
    per frame, awaiting only what must wait."""
    feed = h.router.feed
    for frame in frames:
        waiting = feed(frame)
        if waiting is not None:
            await waiting


def one_pass(symbols: tuple[str, ...], frames: list[str], data_dir: Path) -> float:
    """CPU seconds spent in ``Router.feed`` over all ``frames`` and in the batched signals
    (lane drains excluded)."""
    h = build(symbols, data_dir)
    spent = 0.0

    async def main() -> None:
        nonlocal spent
        h.bind_clock()  # as ``Harvester.run`` does
        feed = h.router.feed  # what the connection loop calls for every frame
        for i in range(0, len(frames), BATCH):
            batch = frames[i:i + BATCH]
            if not KEEP_GC:
                gc.disable()
            t0 = time.process_time()
            for frame in batch:
                waiting = feed(frame)
                if waiting is not None:
                    await waiting
            flush_batches(h.engines.values())  # signals read in batches: the loop's work too
            spent += time.process_time() - t0
            gc.enable()
            for lane in h.lanes:  # what rotation would take; not the loop's cost
                lane.take_spill()
                lane.drain()

    if RUN_GC:
        with tuned():  # as ``run`` does around the loop (``cli/commands.py``)
            trio.run(main)
    else:
        trio.run(main)
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer frames and passes")
    ap.add_argument("--symbols", type=int, default=C.REALISTIC_SYMBOLS)
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=C.REALISTIC_RATE, help="msg/s of the stream")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one pass")
    ap.add_argument("--no-gc", action="store_true", help="turn the garbage collector off while timing")
    ap.add_argument("--default-gc", action="store_true",
                    help="CPython's collector defaults instead of the policy ``run`` applies")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.repeat = min(args.frames, 60_000), min(args.repeat, 3)
    load = os.getloadavg()
    symbols = C.symbols(args.symbols)
    frames = frames_for(symbols, args.frames, args.rate)
    mix = Counter(f[f.index('@') + 1:f.index('"', f.index('@'))].split("@")[0] for f in frames[:50_000])
    results: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.runcall(one_pass, symbols, frames, Path(tmp))
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        for _ in range(args.repeat):
            results.append(one_pass(symbols, frames, Path(tmp)) / len(frames) * 1e6)
    us = statistics.median(results)
    total = sum(mix.values())
    print(C.table(["frames", "symbols", "passes", "min µs", "median µs", "max µs", "target"],
                  [[len(frames), args.symbols, len(results), min(results), us, max(results),
                    f"≤ {TARGET_US:g}"]]))
    print("stream mix: " + ", ".join(f"{k} {v / total:.0%}" for k, v in mix.most_common()))
    doc: dict[str, Any] = {
        "us_per_frame": round(us, 2),
        "us_per_frame_min": round(min(results), 2),
        "us_per_frame_max": round(max(results), 2),
        "frames": len(frames),
        "symbols": args.symbols,
        "target_us": TARGET_US,
        "met": us <= TARGET_US,
        "mix": {k: round(v / total, 3) for k, v in mix.items()},
        "gc": "off" if not KEEP_GC else "run" if RUN_GC else "default",
        **C.conditions(load),
    }
    C.emit_json(doc)


if __name__ == "__main__":
    main()
