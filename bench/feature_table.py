"""Feature-table generation time per symbol against the buffered size N (old fault 6).

old  the old harvester's way: a Python loop over the whole buffer (a list of N dict records)
     keeping the last 60 s, then a pandas groupby per second. Its cost grows with N.
new  exactly what the features task runs each tick (``features_task.emit_closed`` for one
     symbol): Polars over the symbol's columnar tail window (last 60 s + unemitted seconds),
     emitting the second that just closed plus its fusion row and events.

The write lane holds N ``prices`` rows (plain tuples, as the real lanes do) while the new code
runs; nothing in the new path can reach it: the engine never sees the lane, only its own tail,
which holds the last 60 s of the stream whatever N is. So "new at N" differs from "new at 1e3"
only by the memory the lane occupies. The old approach scans the whole N-list, as it did.

Synthetic stream per symbol: ~50 trades/s (so the 60 s window is ~3 000 trades), 20 bookTicker/s
and 10 depth20 snapshots/s (the new path computes book features too; the old one only trades).
Each timed new tick follows the (untimed) ingestion of one second of records through the engine's
hot path, as in the harvester. Times are wall clock; N is measured in several rounds, alternating
the order, and the runs are pooled, so a busy host spreads its noise over every N.

Output: a table on stdout and, as the last line, one JSON object with the medians (ms) keyed by N.
Run: ``python bench/feature_table.py [--quick]``. pandas is needed here only (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import trio_harvest  # noqa: F401
except ImportError:  # run from a source tree: python bench/feature_table.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from trio_harvest.kinds import Row
from trio_harvest.signals import SignalEngine, SignalParams
from trio_harvest.signals.task import emit_closed

SYMBOL = "BTCUSDT"
TRADES_PER_S = 50
TICKERS_PER_S = 20
DEPTHS_PER_S = 10
DEPTH_LEVELS = 20
WINDOW_MS = 60_000
SIZES = (1_000, 10_000, 100_000, 1_000_000)

TARGET_NEW_MS = 0.5
TARGET_FLAT = 1.3
TARGET_SPEEDUP = {1_000: 10.0, 1_000_000: 100.0}


# -- the synthetic market -------------------------------------------------------------------------


class Market:
    """A deterministic random walk producing one second of records at a time."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.price = 30_000.0
        self.agg_id = 1_000_000
        self.update_id = 5_000_000

    def second(self, sec: int) -> list[tuple[int, str, Row]]:
        rng = self.rng
        out: list[tuple[int, str, Row]] = []
        base = sec * 1000
        for ts in sorted(base + rng.randrange(1000) for _ in range(TRADES_PER_S)):
            self.agg_id += 1
            self.price = max(1.0, self.price + rng.gauss(0.0, 1.5))
            qty = round(rng.expovariate(1 / 0.05), 3) + 0.001
            out.append((ts, "trade", (
                ts, ts + 3, ts + 40, SYMBOL, self.agg_id, round(self.price, 1), qty,
                self.agg_id * 3, self.agg_id * 3 + 2, rng.random() < 0.5,
            )))
        for ts in sorted(base + rng.randrange(1000) for _ in range(TICKERS_PER_S)):
            self.update_id += 1
            levels: list[Any] = [round(self.price - 0.1, 1), round(rng.uniform(0.1, 5), 3),
                                 round(self.price + 0.1, 1), round(rng.uniform(0.1, 5), 3)]
            levels += [None] * (4 * (DEPTH_LEVELS - 1))
            out.append((ts, "book", (ts, ts + 2, ts + 40, SYMBOL, "bookTicker", self.update_id,
                                     None, None, *levels)))
        for k in range(DEPTHS_PER_S):
            ts = base + 100 * k + rng.randrange(100)
            self.update_id += 1
            levels = []
            for m in range(1, DEPTH_LEVELS + 1):
                levels += [round(self.price - 0.1 * m, 1), round(rng.uniform(0.1, 5), 3),
                           round(self.price + 0.1 * m, 1), round(rng.uniform(0.1, 5), 3)]
            out.append((ts, "book", (ts, ts + 2, ts + 40, SYMBOL, "depth20", self.update_id,
                                     self.update_id - 3, self.update_id - 4, *levels)))
        out.sort(key=lambda r: r[0])
        return out


def trade_dict(row: Row) -> dict[str, Any]:
    """The old harvester kept decoded trades as dicts."""
    return {
        "ts_ms": row[0], "event_ms": row[1], "recv_ms": row[2], "symbol": row[3],
        "agg_id": row[4], "price": row[5], "qty": row[6], "first_id": row[7],
        "last_id": row[8], "is_buyer_maker": row[9],
    }


def trades_ending_at(n: int, end_sec: int, seed: int) -> list[Row]:
    """The last ``n`` trades (``prices`` rows) of a stream whose last full second is
    ``end_sec - 1``: what a write lane holding N records contains."""
    rng = random.Random(seed)
    first_ms = end_sec * 1000 - (n * 1000) // TRADES_PER_S
    price = 30_000.0
    rows: list[Row] = []
    for k in range(n):
        ts = first_ms + (k * 1000) // TRADES_PER_S + rng.randrange(1000 // TRADES_PER_S)
        price = max(1.0, price + rng.gauss(0.0, 1.5))
        rows.append((ts, ts + 3, ts + 40, SYMBOL, 1_000_000 + k, round(price, 1),
                     round(rng.expovariate(1 / 0.05), 3) + 0.001, 3 * k, 3 * k + 2,
                     rng.random() < 0.5))
    return rows


# -- old: what the old harvester did ---------------------------------------------------------------


def old_feature_table(buffer: list[dict[str, Any]], now_ms: int) -> pd.DataFrame:
    cutoff = now_ms - WINDOW_MS
    recent = []
    for rec in buffer:  # the whole buffer, every time
        if rec["ts_ms"] >= cutoff:
            recent.append(rec)
    df = pd.DataFrame(recent)
    df["sec"] = df["ts_ms"] // 1000
    df["notional"] = df["price"] * df["qty"]
    df["buy_qty"] = df["qty"].where(~df["is_buyer_maker"], 0.0)
    df["sell_qty"] = df["qty"].where(df["is_buyer_maker"], 0.0)
    out = df.groupby("sec").agg(
        last=("price", "last"), volume=("qty", "sum"), notional=("notional", "sum"),
        n_trades=("price", "size"), buy_vol=("buy_qty", "sum"), sell_vol=("sell_qty", "sum"),
    )
    out["vwap"] = out["notional"] / out["volume"]
    out["delta"] = out["buy_vol"] - out["sell_vol"]
    return out


# -- new: the features task's per-tick code path --------------------------------------------------


class NewPath:
    """One symbol's engine fed from the market stream; the tail holds the last 60 s."""

    def __init__(self, start_sec: int, seed: int) -> None:
        self.params = SignalParams()
        self.rows = 0
        self.engine = SignalEngine(SYMBOL, self.params, DEPTH_LEVELS, self._sink,
                                   book_ticker=True)
        self.engines = {SYMBOL: self.engine}
        self.market = Market(seed)
        self.sec = start_sec

    def _sink(self, kind: str, row: Row) -> None:
        self.rows += 1

    def feed_second(self) -> None:
        """Ingest one second of records (the hot path; not what is timed)."""
        on_trade, on_book = self.engine.on_trade, self.engine.on_book
        for _, kind, row in self.market.second(self.sec):
            if kind == "trade":
                on_trade(row)
            else:
                on_book(row)
        self.sec += 1

    def now_ms(self) -> int:
        """Wall clock just past the last fed second's end plus grace: that second closes."""
        return self.sec * 1000 + self.params.grace_ms

    def tick(self) -> int:
        return emit_closed(self.engines, self._sink, self.now_ms())


# -- measurement ----------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def bench_old(n: int, runs: int, end_sec: int) -> list[float]:
    buffer = [trade_dict(r) for r in trades_ending_at(n, end_sec, seed=11)]
    now_ms = end_sec * 1000
    old_feature_table(buffer, now_ms)  # warm-up
    return [timed(lambda: old_feature_table(buffer, now_ms)) for _ in range(runs)]


def bench_new(n: int, runs: int, end_sec: int) -> tuple[list[float], list[int]]:
    # the write lane: N authoritative rows, held in memory while the features task runs
    lane = trades_ending_at(n, end_sec, seed=11)
    path = NewPath(end_sec - WINDOW_MS // 1000 - 2, seed=13)
    for _ in range(WINDOW_MS // 1000 + 2):
        path.feed_second()
    path.tick()
    for _ in range(5):  # warm-up
        path.feed_second()
        path.tick()
    times: list[float] = []
    tail_rows: list[int] = []
    for _ in range(runs):
        path.feed_second()
        tail_rows.append(len(path.engine.tail))
        times.append(timed(path.tick))
    assert len(lane) == n  # the lane is alive, untouched
    return times, tail_rows


def bench_new_catch_up(runs: int, end_sec: int) -> list[float]:
    """The same code path when 60 seconds are pending at once (e.g. the first tick): the same
    60-row table the old approach builds, from the columnar tail."""
    out = []
    for r in range(runs):
        path = NewPath(end_sec - 61, seed=100 + r)
        for _ in range(61):
            path.feed_second()
        out.append(timed(path.tick))
    return out


def fmt(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else 4
    new_runs = 40 if args.quick else 100  # per round and N
    end_sec = 1_700_000_000

    print(f"# feature table per symbol: {TRADES_PER_S} trades/s, {TICKERS_PER_S} bookTicker/s, "
          f"{DEPTHS_PER_S} depth{DEPTH_LEVELS}/s; window 60 s")
    print(f"# {rounds} rounds over N, alternating order (machine noise spreads over every N); "
          "medians of the pooled runs, in ms")
    old_t: dict[int, list[float]] = {n: [] for n in SIZES}
    new_t: dict[int, list[float]] = {n: [] for n in SIZES}
    tails: dict[int, list[int]] = {n: [] for n in SIZES}
    for r in range(rounds):
        for n in SIZES if r % 2 == 0 else SIZES[::-1]:  # alternate the order: no N always last
            old_runs = max(1, min(8, 1_000_000 // (n * 20)))
            gc.collect()
            old_t[n] += bench_old(n, old_runs, end_sec)
            gc.collect()
            times, tail_rows = bench_new(n, new_runs, end_sec)
            new_t[n] += times
            tails[n] += tail_rows

    results: dict[str, dict[str, float]] = {"old_ms": {}, "new_ms": {}, "new_p90_ms": {},
                                            "speedup": {}}
    tail_sizes: dict[str, int] = {}
    header = (f"{'N':>9} | {'old ms':>9} | {'new ms':>7} | {'new p90':>7} | {'old/new':>8} | "
              f"{'tail rows':>9} | runs old/new")
    print(header)
    print("-" * len(header))
    for n in SIZES:
        old, new = old_t[n], sorted(new_t[n])
        o, m = statistics.median(old), statistics.median(new)
        p90 = new[int(0.9 * (len(new) - 1))]
        key = str(n)
        results["old_ms"][key] = round(o, 4)
        results["new_ms"][key] = round(m, 4)
        results["new_p90_ms"][key] = round(p90, 4)
        results["speedup"][key] = round(o / m, 1)
        tail_sizes[key] = int(statistics.median(tails[n]))
        print(f"{n:>9} | {fmt(o):>9} | {m:>7.3f} | {p90:>7.3f} | {o / m:>7.1f}x | "
              f"{tail_sizes[key]:>9} | {len(old)}/{len(new)}")
    catch_up = bench_new_catch_up(10 if args.quick else 30, end_sec)
    cu = statistics.median(catch_up)
    print(f"new, first tick with 60 pending seconds (60-row table + fusion/events warm-up): "
          f"{cu:.3f} ms, independent of N")

    new_ms = results["new_ms"]
    flat = new_ms[str(SIZES[-1])] / new_ms[str(SIZES[0])]
    checks = [
        (f"new <= {TARGET_NEW_MS} ms at every N",
         all(v <= TARGET_NEW_MS for v in new_ms.values())),
        (f"new(1e6)/new(1e3) = {flat:.2f} <= {TARGET_FLAT}", flat <= TARGET_FLAT),
    ]
    for n, target in TARGET_SPEEDUP.items():
        sp = results["speedup"][str(n)]
        checks.append((f"old/new at N={n:.0e} = {sp:.0f}x >= {target:.0f}x", sp >= target))
    print("targets (shown, not asserted):")
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
    summary = {
        **results,
        "new_60_pending_ms": round(cu, 4),
        "tail_rows": tail_sizes,
        "flat_ratio": round(flat, 3),
        "rates_per_s": {"trades": TRADES_PER_S, "bookTicker": TICKERS_PER_S,
                        "depth": DEPTHS_PER_S},
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
