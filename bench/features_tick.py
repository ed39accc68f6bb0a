"""CPU of the features task's tick at whole-market scale: every symbol closes one second.

The harvester is built exactly as ``run`` builds it (``Harvester(Config)``: router, signal
engines, lanes; 500 symbols by default). The simulator's own frames (aggTrade, depth20@100ms,
bookTicker at ``--rate`` msg/s over all symbols, ``_common.generate_timed_frames``) go through
``Router.feed`` as the connection loop routes them, second by second of market time. After each
second (and its grace), the tick the features task runs is called: ``emit_closed(h.engines,
h.lanes.offer, now)`` (what ``Harvester._run_features`` runs each second), which closes that
second for every symbol: a ``features`` and a ``fusion`` row each, plus events.

Timed: process CPU time of the tick alone (``time.process_time``; feeding the frames and
draining the lanes are not timed), median over ``--ticks`` ticks after ``--warmup`` seconds, so
the tail windows hold the history they hold in a run (60 s by default). The collector runs at
``run``'s policy (``ops.gcpolicy.tuned``). The other lanes are drained after every tick; the
``features``/``fusion``/``events`` lanes only once after the last timed tick, as rotation drains
them a file's worth at a time (so a tick appends to open column builders, as in a run).

``--dump FILE`` pickles every features/fusion/events row the ticks wrote (as the frames the
writer would build, per lane), so two versions of the code can be compared row for row:
``--compare A B``.

Run: ``python bench/features_tick.py [--quick] [--symbols N] [--rate R] [--ticks N] [--profile]``.
Output: a table, then (last line) one JSON object: ``ms_per_tick`` (median CPU ms per tick).
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import polars as pl
import trio

from trio_harvest.app import Harvester
from trio_harvest.config import Config
from trio_harvest.kinds import ALL_KINDS, EVENTS, FEATURES, FUSION
from trio_harvest.ops.gcpolicy import tuned
from trio_harvest.signals.task import emit_closed

TICK_KINDS = (FEATURES, FUSION, EVENTS)
Dump = dict[tuple[str, str], list[pl.DataFrame]]


def build(symbols: tuple[str, ...], data_dir: Path) -> Harvester:
    huge = {kind: (10**7, 2 * 10**7) for kind in ALL_KINDS}
    return Harvester(Config(symbols=symbols, data_dir=data_dir, watermarks=huge, journal=False))


def run(symbols: tuple[str, ...], rate: float, warmup: int, ticks: int, data_dir: Path, *,
        start_s: int | None = None, dump: Dump | None = None,
        profile: Any = None) -> tuple[list[float], int]:
    """CPU ms of each timed tick, and the rows they wrote."""
    h = build(symbols, data_dir)
    grace = next(iter(h.engines.values())).params.grace_ms
    seconds = warmup + ticks + 1
    # a second-aligned start, by default in the recent past (the router judges receipt lags,
    # so any fixed start works too: the same start gives the same frames and rows)
    if start_s is None:
        start_s = time.time_ns() // 1_000_000_000 - seconds - 5
    start_ms = start_s * 1000
    frames: Iterator[tuple[int, str]] = iter(
        C.generate_timed_frames(symbols, rate, seconds + 1, start_ms=start_ms))
    spent: list[float] = []
    rows = 0

    async def main() -> None:
        nonlocal rows
        feed = h.router.feed
        pending: tuple[int, str] | None = None
        for k in range(seconds):
            now = start_ms + (k + 1) * 1000 + grace
            while True:  # the market up to the tick's wall clock (the next second's start too)
                item = pending if pending is not None else next(frames, None)
                pending = None
                if item is None:
                    break
                if item[0] >= now:
                    pending = item
                    break
                waiting = feed(item[1])
                if waiting is not None:
                    await waiting
            timed = k > warmup
            if timed and profile is not None:
                profile.enable()
            t0 = time.process_time()
            n = emit_closed(h.engines, h.lanes.offer, now)
            t1 = time.process_time()
            if timed and profile is not None:
                profile.disable()
            if timed:
                spent.append((t1 - t0) * 1000)
                rows += n
            last = k == seconds - 1
            for lane in h.lanes:  # what rotation would take; not the tick's cost
                if lane.kind in TICK_KINDS and k >= warmup and not last:
                    continue  # rotation drains them once a file's worth (60 s by default)
                lane.take_spill()
                batch = lane.drain()
                if timed and dump is not None and lane.kind in TICK_KINDS and batch:
                    dump.setdefault((lane.kind, lane.symbol), []).append(batch.to_frame())

    with tuned():
        trio.run(main)
    return spent, rows


def compare(a: Path, b: Path) -> int:
    """Exit 0 when two dumps hold the same rows, values and dtypes, lane by lane."""
    da: Dump = pickle.loads(a.read_bytes())
    db: Dump = pickle.loads(b.read_bytes())
    bad = sorted(set(da) ^ set(db))
    for key in sorted(set(da) & set(db)):
        fa, fb = pl.concat(da[key]), pl.concat(db[key])
        if fa.schema != fb.schema or not fa.equals(fb, null_equal=True):
            bad.append(key)
    rows = sum(pl.concat(v).height for v in da.values())
    print(f"{len(da)} lanes, {rows} rows in {a.name}; {len(bad)} lanes differ"
          + (f": {bad[:5]}" if bad else ""))
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short warm-up and fewer ticks")
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--rate", type=float, default=9000.0, help="msg/s over all symbols")
    ap.add_argument("--warmup", type=int, default=62, help="seconds fed before timing")
    ap.add_argument("--ticks", type=int, default=15, help="timed ticks")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the timed ticks")
    ap.add_argument("--dump", type=Path, help="pickle the rows the timed ticks wrote here")
    ap.add_argument("--start", type=int, help="the market's first second (epoch s); default: "
                    "just before now. Give the same one to two --dump runs to compare them")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"),
                    help="compare two --dump files and exit")
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    if args.quick:
        args.warmup, args.ticks = min(args.warmup, 12), min(args.ticks, 5)
    load = os.getloadavg()
    symbols = C.symbols(args.symbols)
    dump: Dump | None = {} if args.dump else None
    prof = None
    if args.profile:
        import cProfile
        prof = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        spent, rows = run(symbols, args.rate, args.warmup, args.ticks, Path(tmp),
                          start_s=args.start, dump=dump, profile=prof)
    if prof is not None:
        import pstats
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    if args.dump and dump is not None:
        args.dump.write_bytes(pickle.dumps(dump))
    ms = statistics.median(spent)
    print(C.table(["symbols", "msg/s", "ticks", "rows/tick", "min ms", "median ms", "max ms",
                   "µs/symbol"],
                  [[args.symbols, int(args.rate), len(spent), rows // max(1, len(spent)),
                    min(spent), ms, max(spent), ms * 1000 / args.symbols]]))
    C.emit_json({
        "ms_per_tick": round(ms, 3),
        "ms_per_tick_min": round(min(spent), 3),
        "ms_per_tick_max": round(max(spent), 3),
        "us_per_symbol": round(ms * 1000 / args.symbols, 2),
        "rows_per_tick": rows // max(1, len(spent)),
        "symbols": args.symbols,
        "rate": args.rate,
        "ticks": len(spent),
        **C.conditions(load),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
