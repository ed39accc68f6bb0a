"""SIGTERM with 1M rows buffered: how long the final flush takes, and whether every row lands.

The harvester is built exactly as ``run`` builds it (``Harvester(Config)``), with watermarks,
``rotate_sec``, ``min_file_rows`` and ``max_file_age`` so large that nothing flushes before the
stop, and a ``connect`` that never delivers a frame. Its lanes are then filled with ``--rows``
rows (default 1 000 000), ``prices`` and ``orderbook`` across ``--symbols`` symbols (default 200,
the realistic mix: aggTrade + depth20@100ms + bookTicker, ~23 % prices). The rows are made by the
real decoder (``Router.handle``) from frames of the simulator's own market model and wire
encoders (``--base-seconds`` of market time at ``--rate``); if that gives fewer rows than asked,
the batch is repeated with event/receive times shifted by the base span (new row tuples, same
column values), so partitions stay realistic.

Two variants, each in a fresh process:

in-process  ``harvester.request_stop()`` (what the SIGTERM handler calls), timed until ``run``
            returns: the shielded final flush of every lane, including any dead-lettering of
            what did not fit in ``shutdown_grace``.
subprocess  a child harvester with ``handle_signals=True`` gets a real SIGTERM from this process;
            timed from ``kill()`` to the child's exit (the flush plus interpreter teardown).

Then the data directory is read back: Parquet rows + dead-letter lines must equal rows buffered.
Target: < 5 s to the end of the final flush.

Run: ``python bench/shutdown_flush.py [--quick] [--rows N] [--symbols N] [--variant both]``.
Output: a table, then (last line) one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import trio

from trio_harvest.app import Harvester
from trio_harvest.config import Config
from trio_harvest.kinds import ALL_KINDS, ORDERBOOK, PREVIEW_KINDS, PRICES, QUOTES
from trio_harvest.storage.partitions import DEADLETTER_DIR

TARGET_S = 3.0  # 200 symbols, 1M rows: everything written within 3 s, nothing dead-lettered
AUTH = (PRICES, ORDERBOOK, QUOTES)
_DEFAULTS = Config()
HUGE = 10**8


# -- the harvester under test ------------------------------------------------------------------




def build(args: argparse.Namespace, data_dir: Path, *, handle_signals: bool) -> Harvester:
    cfg = Config(
        symbols=C.symbols(args.symbols),
        ws_url="ws://127.0.0.1:9",  # never dialled: connect is injected
        data_dir=data_dir,
        watermarks={k: (HUGE, 2 * HUGE) for k in ALL_KINDS},
        rotate_sec=1e6,
        min_file_rows=HUGE,
        max_file_age=1e6,
        stall_timeout=1e6,
        shutdown_grace=args.grace,
        save_concurrency=args.save_concurrency,
        auto_recover=False,
    )
    h = Harvester(cfg, connect=C.silent_connect, handle_signals=handle_signals)
    _time_flush(h)
    return h


def _time_flush(h: Harvester) -> None:
    """Bench-side instrumentation: note when rotation's final flush starts and returns (wraps the
    instance's ``flush_everything``; behaviour unchanged)."""
    inner = h.rotation.flush_everything
    marks: dict[str, float] = {}

    async def flush_everything() -> None:
        marks["flush_start"] = time.perf_counter()
        try:
            await inner()
        finally:
            marks["flush_end"] = time.perf_counter()

    h.rotation.flush_everything = flush_everything  # type: ignore[method-assign]
    _MARKS[id(h)] = marks


_MARKS: dict[int, dict[str, float]] = {}


def phases(h: Harvester, t_stop: float, t_done: float) -> dict[str, Any]:
    m = _MARKS.get(id(h), {})
    start, end = m.get("flush_start"), m.get("flush_end")
    if start is None or end is None:
        return {}
    return {
        "before_flush_s": round(start - t_stop, 3),  # ingest stop, repair.finish, features
        "rotation_flush_s": round(end - start, 3),  # flush_everything (ends at the grace)
        "after_flush_s": round(t_done - end, 3),  # dead-lettering what the grace left
    }


async def fill(h: Harvester, args: argparse.Namespace) -> dict[str, Any]:
    """Buffer ``args.rows`` rows in ``h``'s lanes (see the module docstring)."""
    t0 = time.perf_counter()
    handle = h.router.handle
    n = 0
    for frame in C.generate_frames(C.symbols(args.symbols), args.rate, args.base_seconds):
        await handle(frame)
        n += 1
        if n >= args.rows:
            break
    # Copy each lane's chunks (same shapes: trade, ticker, depth) with their times shifted by
    # the base span, until --rows rows are buffered.
    base: list[tuple[Any, list[Any]]] = []
    for lane in h.lanes:
        if lane.level and lane.kind in AUTH:
            batch = lane.drain()
            for chunk in batch.chunks:
                lane.put_chunk(chunk)
            base.append((lane, batch.chunks))
    span = int(args.base_seconds * 1000)
    have = n
    shift = 0
    while have < args.rows:
        shift += span
        for lane, chunks in base:
            for chunk in chunks:
                if have + chunk.n > args.rows:
                    continue
                lane.put_chunk(shifted(chunk, shift))
                have += chunk.n
            if have >= args.rows:
                break
        if shift > 1000 * span:
            break
    buffered = dict.fromkeys(AUTH, 0)
    for lane in h.lanes:
        if lane.kind in buffered:
            buffered[lane.kind] += lane.level
    # A running harvester closes its feature seconds every second; the fill above never yields,
    # so let one features tick run now, or the stop would time a backlog of feature seconds
    # (about 1.5 s of CPU here) that a real stop never has.
    await trio.sleep(1.5)
    gc.collect()
    return {
        "rows_buffered": sum(buffered.values()),
        "preview_rows_buffered": sum(lane.pending for lane in h.lanes if lane.kind not in AUTH),
        "rows_prices": buffered[PRICES],
        "rows_orderbook": buffered[ORDERBOOK],
        "rows_quotes": buffered[QUOTES],
        "frames_decoded": n,
        "lanes": sum(1 for lane in h.lanes if lane.level and lane.kind in AUTH),
        "preview_lanes": sum(1 for lane in h.lanes if lane.pending and lane.kind not in AUTH),
        "fill_s": round(time.perf_counter() - t0, 2),
        "rss_mb_buffered": round(C.rss_mb(), 1),
    }


def shifted(chunk: Any, ms: int) -> Any:
    """A copy of a column chunk with its time columns moved ``ms`` later (bench only; the other
    columns are shared, read-only once sealed)."""
    clone = copy.copy(chunk)
    for name in ("ts", "event", "recv"):
        if hasattr(chunk, name):
            setattr(clone, name, array("q", (v + ms for v in getattr(chunk, name))))
    if hasattr(chunk, "cols"):  # a generic chunk: column 0 is ts_ms
        clone.cols = [array("q", (v + ms for v in chunk.cols[0])), *chunk.cols[1:]]
    return clone


def outcome(h: Harvester) -> dict[str, Any]:
    """What rotation reports, for the authoritative kinds the bench buffered (``prices`` and
    ``orderbook``) and, apart, for the preview kinds the signal engines derived from them."""
    kinds = h.rotation.stats.kinds
    out: dict[str, Any] = {}
    for label, names in (("", AUTH), ("preview_", PREVIEW_KINDS)):
        ks = [kinds[k] for k in names if k in kinds]
        out[f"{label}rows_written"] = sum(k.rows_written for k in ks)
        out[f"{label}files_written"] = sum(k.files_written for k in ks)
        out[f"{label}rows_deadlettered"] = sum(k.rows_deadlettered for k in ks)
        out[f"{label}rows_lost"] = sum(k.rows_lost for k in ks)
    out["rows_left_in_lanes"] = h.lanes.total_pending()
    return out


def count_on_disk(data_dir: Path) -> dict[str, int]:
    """Rows actually on disk for the authoritative kinds: Parquet rows + dead-letter lines."""
    files = [p for k in AUTH
             for p in data_dir.glob(f"venue=*/date=*/symbol=*/kind={k}/*.parquet")]
    rows = C.parquet_rows(files)
    dl_lines = 0
    for k in AUTH:
        for f in (data_dir / DEADLETTER_DIR).glob(f"venue=*/{k}/**/*.ndjson"):
            with open(f, "rb") as fh:
                dl_lines += sum(1 for _ in fh)
    return {"disk_parquet_files": len(files), "disk_parquet_rows": rows,
            "disk_deadletter_lines": dl_lines}


def _quiet_logs() -> None:
    # the harvester's own warnings (e.g. "final flush did not finish within the grace") stay;
    # health's per-stream staleness lines (no frames arrive here, by design) do not
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("trio_harvest.health").setLevel(logging.ERROR)


# -- variant 1: in-process request_stop -----------------------------------------------------------


def in_process(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        h = build(args, data_dir, handle_signals=False)
        async with trio.open_nursery() as nursery:
            await nursery.start(h.run)
            res = await fill(h, args)
            cpu0, t0 = time.process_time(), time.perf_counter()
            h.request_stop("bench: SIGTERM equivalent")
        t_done = time.perf_counter()
        res["flush_s"] = round(t_done - t0, 3)
        res["flush_cpu_s"] = round(time.process_time() - cpu0, 3)
        res.update(phases(h, t0, t_done))
        res.update(outcome(h))
        return res

    return trio.run(main)


def _in_process_child(args: argparse.Namespace, data_dir: Path, conn: Any) -> None:
    _quiet_logs()
    conn.send(in_process(args, data_dir))
    conn.close()


# -- variant 2: a real SIGTERM to a child process ---------------------------------------------------


def child_main(args: argparse.Namespace) -> int:
    """``--child``: fill, say READY, wait for SIGTERM (handled by the harvester), report."""
    _quiet_logs()
    data_dir = Path(args.data_dir)

    async def main() -> dict[str, Any]:
        h = build(args, data_dir, handle_signals=True)
        async with trio.open_nursery() as nursery:
            await nursery.start(h.run)
            res = await fill(h, args)
            print("READY " + json.dumps(res), flush=True)
            await h.stop_state.requested.wait()
            res["t_stop_requested"] = time.time()
            t_stop, cpu0 = time.perf_counter(), time.process_time()
        res["t_flush_done"] = time.time()
        t_done = time.perf_counter()
        res["flush_cpu_s"] = round(time.process_time() - cpu0, 3)
        res.update(phases(h, t_stop, t_done))
        res.update(outcome(h))
        return res

    res = trio.run(main)
    print("DONE " + json.dumps(res), flush=True)
    return 0


def subprocess_variant(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--data-dir", str(data_dir),
           "--rows", str(args.rows), "--symbols", str(args.symbols), "--rate", str(args.rate),
           "--base-seconds", str(args.base_seconds), "--grace", str(args.grace),
           "--save-concurrency", str(args.save_concurrency)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdout is not None
    res: dict[str, Any] = {}
    for line in proc.stdout:
        if line.startswith("READY "):
            res = json.loads(line[6:])
            break
    else:
        proc.wait()
        raise RuntimeError(f"child exited ({proc.returncode}) before filling its lanes")
    t_sig = time.time()
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    done: dict[str, Any] = {}
    for line in proc.stdout:
        if line.startswith("DONE "):
            done = json.loads(line[5:])
    proc.wait()
    exit_s = time.perf_counter() - t0
    res.update({k: v for k, v in done.items() if not k.startswith("t_")})
    res["flush_s"] = round(done["t_flush_done"] - t_sig, 3) if done else None
    res["exit_s"] = round(exit_s, 3)
    res["exit_code"] = proc.returncode
    return res


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time the final flush after SIGTERM with --rows rows buffered (target < 5 s) "
        "and check every row reaches the disk. Prints a table, then one JSON line.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help="short generation (5 s of market, repeated to --rows); for nox")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows buffered before the stop")
    p.add_argument("--symbols", type=int, default=C.REALISTIC_SYMBOLS,
                   help="symbols (lanes = 2 x symbols: prices and orderbook)")
    p.add_argument("--rate", type=float, default=C.REALISTIC_RATE,
                   help="market rate (msg/s over all symbols) used to make the rows")
    p.add_argument("--base-seconds", type=float, default=None,
                   help="seconds of simulated market decoded into rows (repeated, time-shifted, "
                   "up to --rows); default: enough for --rows distinct messages (5 with --quick)")
    p.add_argument("--grace", type=float, default=_DEFAULTS.shutdown_grace,
                   help="shutdown_grace: the final flush's deadline (then: dead letter)")
    p.add_argument("--save-concurrency", type=int, default=_DEFAULTS.save_concurrency,
                   help="parallel partition writes")
    p.add_argument("--variant", choices=("in-process", "subprocess", "both"), default="both")
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.base_seconds is None:
        args.base_seconds = 5.0 if args.quick else args.rows / args.rate * 1.05
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    load_before = os.getloadavg()
    variants = ["in-process", "subprocess"] if args.variant == "both" else [args.variant]
    results: dict[str, dict[str, Any]] = {}
    for variant in variants:
        data_dir = Path(tempfile.mkdtemp(prefix=f"bench-shutdown-{variant}-"))
        try:
            if variant == "in-process":
                ctx = mp.get_context("spawn")
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_in_process_child, args=(args, data_dir, send))
                proc.start()
                res = C.receive_from(proc, recv)
            else:
                res = subprocess_variant(args, data_dir)
            res.update(count_on_disk(data_dir))
            res["all_rows_on_disk"] = (res["disk_parquet_rows"] + res["disk_deadletter_lines"]
                                       == res["rows_buffered"])
            res["all_rows_in_parquet"] = res["disk_parquet_rows"] == res["rows_buffered"]
            res["target_met"] = bool(
                res["flush_s"] is not None and res["flush_s"] <= TARGET_S
                and res["all_rows_in_parquet"] and not res["rows_deadlettered"]
                and not res["preview_rows_deadlettered"] and not res["rows_lost"]
                and not res["preview_rows_lost"])
            results[variant] = res
        finally:
            if args.keep:
                print(f"kept {data_dir}")
            else:
                shutil.rmtree(data_dir, ignore_errors=True)

    rows = []
    for variant, r in results.items():
        rows.append((variant, r["rows_buffered"], r["lanes"], r["rss_mb_buffered"], r["flush_s"],
                     r.get("flush_cpu_s"), r.get("exit_s"),
                     f'{r["files_written"]}+{r["preview_files_written"]}',
                     r["rows_written"], r["rows_deadlettered"], r["rows_lost"],
                     "yes" if r["all_rows_on_disk"] else "NO",
                     "yes" if r["target_met"] else "NO"))
    print("rows/written/dead-lettered/lost: the authoritative kinds buffered (prices, orderbook); "
          "preview rows the signal engines derived are flushed too (their files counted after +)")
    print(f"final flush after SIGTERM, {args.symbols} symbols, grace {args.grace:g} s, "
          f"save_concurrency {args.save_concurrency} (target <= {TARGET_S:g} s, nothing dead-lettered)")
    print(C.table(("variant", "rows", "lanes", "RSS MB", "flush s", "flush CPU s", "exit s",
                   "files (+preview)", "written", "dead-lettered", "lost", "all on disk",
                   f"<= {TARGET_S:g} s"), rows))
    C.emit_json({
        "bench": "shutdown_flush",
        **C.conditions(load_before),
        "target_s": TARGET_S,
        "rows": args.rows,
        "symbols": args.symbols,
        "grace_s": args.grace,
        "save_concurrency": args.save_concurrency,
        "base_seconds": args.base_seconds,
        # the contract keys: the worst of the variants run
        "rows_buffered": min(r["rows_buffered"] for r in results.values()),
        "flush_s": max(r["flush_s"] or float("inf") for r in results.values()),
        "rows_deadlettered": max(r["rows_deadlettered"] + r["preview_rows_deadlettered"]
                                 for r in results.values()),
        "rows_lost": max(r["rows_lost"] + r["preview_rows_lost"] for r in results.values()),
        "results": results,
        "target_met": all(r["target_met"] for r in results.values()),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
