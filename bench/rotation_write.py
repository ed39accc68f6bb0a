"""CPU per Parquet file that rotation writes: lanes of every kind filled as the router fills
them, then written through the real ``Rotation`` -> ``Writer.stage`` -> ``LocalStore`` -> group
commit path to a temporary directory on local disk, one kind at a time. A first round (not
counted) creates the partition directories.

The lanes come from a ``Harvester`` built as ``run`` builds it (its router, lanes and signal
engines; never started): frames of the simulator's own market model and wire encoders
(aggTrade, depth20@100ms, bookTicker over ``--seconds`` of market time at ``--rate`` msg/s per
symbol) go through ``Router.handle`` (prices, quotes, orderbook, and the engines' ofi and cvd),
the engines' closed seconds are emitted (features, fusion), and each symbol gets a
``derivatives`` row a second (mark price, funding) as the router puts them. A ``Rotation`` of
its own (no timer, no first flush, no budget) then writes every lane of one kind at a time:
each lane is woken, and the kind is done when all its files are published. A first round (not
counted) creates the partition directories, as a running harvester finds them made.

Measured per kind: the process's CPU (all threads: ``time.process_time``), the trio thread's
own CPU (``time.thread_time``), and wall time, each divided by the files written. Whole-market
scale: ``--whole-market-files`` files/s (default 35, the rate a 500-symbol run writes at the
defaults) times the all-kinds CPU per file is the share of a core that writing costs.

Lanes woken together are flushed as rotation flushes the lanes a tick finds due: in groups of
up to ``--batch-files`` staged by one job (``Writer.stage_many``); ``--one-by-one`` measures one
job per file instead (the path before groups; an object store's).

Run: ``python bench/rotation_write.py [--quick] [--symbols N] [--seconds S] [--repeat R]
[--one-by-one | --batch-files N]``.
Prints a table, then (last line) one JSON object with ``cpu_ms_per_file`` (all kinds, all
threads; ``cpu_ms_per_file_best_round``: each kind's least of one round, weighted by files,
the steadier figure on a busy machine), ``main_cpu_ms_per_file``, ``wall_ms_per_file``, ``files``,
``files_per_commit_batch`` (files one group commit made durable together), ``by_kind`` and
``core_share_at_whole_market``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import trio

from trio_harvest.app import Harvester
from trio_harvest.config import Config
from trio_harvest.kinds import ALL_KINDS, DERIVATIVES
from trio_harvest.pipeline.rotation import Rotation
from trio_harvest.pipeline.rotationtypes import BATCH_FILES
from trio_harvest.signals.task import flush_all

HUGE = 10**8
ORDER = ("prices", "quotes", "orderbook", "ofi", "cvd", "features", "fusion", DERIVATIVES)




class Outcomes:
    """Counts write outcomes (rotation's ``observe``) and wakes whoever waits for a number."""

    def __init__(self) -> None:
        self.n = 0
        self.target = 0
        self.reached = trio.Event()

    def observe(self, kind: str, outcome: str, rows: int, seconds: float) -> None:
        self.n += 1
        if self.n >= self.target:
            self.reached.set()

    async def wait_for(self, target: int) -> None:
        self.target, self.reached = target, trio.Event()
        if self.n < target:
            await self.reached.wait()


def build(args: argparse.Namespace, data_dir: Path) -> tuple[Harvester, Rotation, Outcomes]:
    cfg = Config(
        symbols=C.symbols(args.symbols),
        ws_url="ws://127.0.0.1:9",  # never dialled
        data_dir=data_dir,
        watermarks={k: (HUGE, 2 * HUGE) for k in ALL_KINDS},
        rotate_sec=1e6, min_file_rows=HUGE, max_file_age=1e6, stall_timeout=1e6,
        auto_recover=False, journal=False,
    )
    h = Harvester(cfg, connect=C.silent_connect)
    w = h.writer
    outcomes = Outcomes()
    rotation = Rotation(h.lanes, w.stage, w.dead_letter, rotate_sec=1e6,
                        write_timeout=cfg.write_timeout, deadletter_timeout=cfg.deadletter_timeout,
                        save_concurrency=cfg.save_concurrency, observe=outcomes.observe,
                        save_many=None if args.one_by_one else w.stage_many,
                        batch_files=args.batch_files)
    h.lanes.set_wake(rotation.wake)
    return h, rotation, outcomes


async def fill(h: Harvester, args: argparse.Namespace) -> dict[str, int]:
    syms = C.symbols(args.symbols)
    start_ms = (time.time_ns() // 1_000_000 // 86_400_000) * 86_400_000 + 3_600_000  # 01:00 UTC
    for frame in C.generate_frames(syms, args.rate * args.symbols, args.seconds,
                                   start_ms=start_ms):
        await h.router.handle(frame)
    end_ms = start_ms + int(args.seconds * 1000)
    flush_all(h.engines, h.lanes.offer, end_ms + 5000)  # features and fusion of every second
    for s in syms:
        lane = h.lanes.get(DERIVATIVES, s)
        for i in range(int(args.seconds)):
            ts = start_ms + 1000 * i
            lane.put_nowait((ts, ts, ts + 3, s, "markPrice", 100.0 + i * 0.01, 100.02 + i * 0.01,
                             None, 0.0001, start_ms + 8 * 3_600_000, None))
    rows: dict[str, int] = {}
    for lane in h.lanes:
        if lane.pending:
            rows[lane.kind] = rows.get(lane.kind, 0) + lane.pending
    return rows


async def write_kind(rotation: Rotation, outcomes: Outcomes, h: Harvester,
                     kind: str) -> dict[str, float]:
    lanes = [lane for lane in h.lanes if lane.kind == kind and lane.pending]
    ks = rotation.stats.kind(kind)
    before = ks.files_written
    failures = ks.write_failures + ks.write_timeouts
    gc.collect()
    cpu0, main0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    for lane in lanes:
        rotation.wake(lane)
    await outcomes.wait_for(outcomes.n + len(lanes))
    wall, cpu, main = (time.perf_counter() - t0, time.process_time() - cpu0,
                       time.thread_time() - main0)
    return {"files": ks.files_written - before,
            "failures": ks.write_failures + ks.write_timeouts - failures, "cpu_s": cpu,
            "main_s": main,
            "wall_s": wall}


async def one_round(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    h, rotation, outcomes = build(args, data_dir)
    async with trio.open_nursery() as nursery:
        await nursery.start(rotation.run)
        rows = await fill(h, args)
        out: dict[str, Any] = {"rows": rows, "kinds": {}}
        for kind in ORDER:
            if kind in rows:
                out["kinds"][kind] = await write_kind(rotation, outcomes, h, kind)
        nursery.cancel_scope.cancel()
    out["commit_batches"] = h.writer.group.batches
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="CPU per Parquet file written by rotation, by kind (real write path, local "
        "disk in a temp dir). Prints a table, then one JSON line.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20 symbols, 1 round")
    p.add_argument("--symbols", type=int, default=100, help="symbols (lanes: 8 per symbol)")
    p.add_argument("--seconds", type=float, default=45.0,
                   help="seconds of market in each lane's file (depth20@100ms: 10 rows/s)")
    p.add_argument("--rate", type=float, default=18.0,
                   help="msg/s per symbol (a whole market: ~9k msg/s over 500 symbols)")
    p.add_argument("--repeat", type=int, default=3, help="rounds (fresh lanes and directory)")
    p.add_argument("--one-by-one", action="store_true",
                   help="one write job per file (as before lanes due together were batched)")
    p.add_argument("--batch-files", type=int, default=BATCH_FILES,
                   help="most files of lanes due together that one write job stages")
    p.add_argument("--whole-market-files", type=float, default=35.0,
                   help="files/s of a 500-symbol run at the defaults, for the core share")
    args = p.parse_args(argv)
    if args.quick:
        args.symbols, args.repeat = 20, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    load = os.getloadavg()
    totals: dict[str, dict[str, float]] = {}
    rows: dict[str, int] = {}
    batches = 0
    best: dict[str, float] = {}  # the least CPU per file of one round (the steadiest on a busy box)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-rotation-write-"))
    try:
        # round 0 creates every partition directory (and warms Polars up): not counted, as a
        # running harvester writes into directories that exist but once a day
        for i in range(args.repeat + 1):
            res = trio.run(one_round, args, data_dir)
            if i == 0:
                continue
            rows = res["rows"]
            batches += res["commit_batches"]
            for kind, m in res["kinds"].items():
                t = totals.setdefault(kind, dict.fromkeys(m, 0.0))
                for k, v in m.items():
                    t[k] += v
                per_file = m["cpu_s"] / max(m["files"], 1)
                best[kind] = min(best.get(kind, per_file), per_file)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    lines, by_kind = [], {}
    for kind, t in totals.items():
        n = max(t["files"], 1)
        by_kind[kind] = {"files": int(t["files"]),
                         "rows_per_file": round(rows[kind] / (n / args.repeat)),
                         "cpu_ms_per_file": round(1000 * t["cpu_s"] / n, 3),
                         "cpu_ms_per_file_best_round": round(1000 * best[kind], 3),
                         "main_cpu_ms_per_file": round(1000 * t["main_s"] / n, 3),
                         "wall_ms_per_file": round(1000 * t["wall_s"] / n, 3)}
        b = by_kind[kind]
        lines.append((kind, b["files"], b["rows_per_file"], b["cpu_ms_per_file"],
                      b["cpu_ms_per_file_best_round"], b["main_cpu_ms_per_file"],
                      b["wall_ms_per_file"]))
    files = sum(t["files"] for t in totals.values())
    cpu = 1000 * sum(t["cpu_s"] for t in totals.values()) / max(files, 1)
    main_cpu = 1000 * sum(t["main_s"] for t in totals.values()) / max(files, 1)
    wall = 1000 * sum(t["wall_s"] for t in totals.values()) / max(files, 1)
    best_all = 1000 * sum(best[k] * totals[k]["files"] for k in totals) / max(files, 1)
    lines.append(("all", int(files), "", round(cpu, 3), round(best_all, 3), round(main_cpu, 3),
                  round(wall, 3)))
    print(f"rotation writes, {args.symbols} symbols, {args.seconds:g} s of market a file, "
          f"{args.repeat} round(s); CPU is the whole process's (all threads)")
    print(C.table(("kind", "files", "rows/file", "CPU ms/file", "best round",
                   "main-thread CPU ms/file", "wall ms/file"), lines))
    C.emit_json({
        "bench": "rotation_write", **C.conditions(load), "symbols": args.symbols,
        "seconds": args.seconds, "rate_per_symbol": args.rate, "repeat": args.repeat,
        "batch_files": 1 if args.one_by_one else args.batch_files,
        "files": int(files), "failures": int(sum(t["failures"] for t in totals.values())),
        "cpu_ms_per_file": round(cpu, 3), "cpu_ms_per_file_best_round": round(best_all, 3),
        "main_cpu_ms_per_file": round(main_cpu, 3),
        "wall_ms_per_file": round(wall, 3),
        "files_per_commit_batch": round(files / max(batches, 1), 2),
        "core_share_at_whole_market": round(cpu * args.whole_market_files / 1000, 4),
        "by_kind": by_kind,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
