"""OKX end to end: the harvester against the simulator speaking OKX v5 (``/ws/v5/public``,
subscribe on open, ``ping``/``pong``, trades as spans of fill ids, ``books`` chained by
``seqId`` with venue-side resets, REST instruments, history-trades and books) under
``disconnect,skip,dup_frame,drop_diff,reset`` faults.

Checked: every trade of the simulator's tape between the first and the last one written is in
``prices`` exactly once with the exchange's values (SWAP sizes: contracts times ``ctVal``), or
its fill ids lie inside an ``unfilled`` gap; every ``book_updates`` chain is unbroken between the
snapshots the book restarted from (a break leaves a ``book sequence break (okx seqId)`` gap and
no rows until a snapshot); the book rebuilt from ``book_updates`` gives the ``quotes`` of the
same update ids; and the command line exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.cli.summary import summarize
from trio_harvest.dataset import scan
from trio_harvest.dataset_book import best_by_update, rebuild
from trio_harvest.gaps import parse_agg_detail
from trio_harvest.storage.inventory import inspect_dataset, venue_label

from .conftest import make_config

FAULTS = "disconnect=2.5,skip=0.03,dup_frame=0.02,drop_diff=0.08,reset=0.03"
RUN_S = 8.0  # long enough that a loaded machine still sees chains, and drop_diff high enough to break one


def _read(data: Path, kind: str, symbol: str) -> pl.DataFrame:
    """Every row of ``kind`` for ``symbol`` in the order written (files by name, rows as
    stored)."""
    files = sorted(data.glob(f"venue=*/date=*/symbol={symbol}/kind={kind}/*.parquet"))
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")


async def _run(tmp_path: Path, venue: str) -> tuple[Harvester, dict[str, int]]:
    cfg = make_config(tmp_path, sim=True, venue=venue, book="diff", sim_rate=400.0,
                      sim_seed=3, sim_faults=f"{FAULTS},seed=5", backfill_delay=0.3,
                      shutdown_grace=6.0, backoff_initial=0.05, backoff_max=0.25,
                      rotate_sec=1, min_file_rows=1)
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(RUN_S - 1.0)
        last = {s: h.simulator.tape(s).last_id for s in cfg.symbols}
        await trio.sleep(1.0)
        with trio.move_on_after(3.0):  # backfill catches up (bounded)
            while sum(t.missing_ids for t in h.repair.trackers.values()):
                await trio.sleep(0.05)
        h.request_stop("okx over")
    summary = summarize(h)
    assert summary.reason == "okx over" and not summary.deadlettered and not summary.lost
    return h, last


def _conserved(h: Harvester, symbol: str, last_agg: int) -> int:
    data = h.config.data_dir
    prices = _read(data, "prices", symbol).sort("agg_id")
    ids = prices["agg_id"].to_list()
    assert len(ids) == len(set(ids)), f"{symbol}: a trade is in prices twice"
    tape = h.simulator.tape(symbol)
    trades = [t for t in tape.since(tape.first_id or 0, 10**6) if ids[0] <= t.last_id <= ids[-1]]
    assert trades[-1].agg_id >= last_agg - 1, f"{symbol}: stopped writing before the end"
    spec = h.simulator.venue.spec(symbol)
    if h.simulator.venue.inst_type == "SWAP":  # ctVal, read from the listing: one lot
        assert h.venue.scales[symbol] == float(spec.qty_str(1))  # type: ignore[attr-defined]
    by_id = {r["agg_id"]: r for r in prices.iter_rows(named=True)}
    unfilled = []
    for detail in _read(data, "gaps", symbol)["detail"]:
        parsed = parse_agg_detail(detail)
        if parsed is not None and not parsed[2]:
            unfilled.append((parsed[0], parsed[1]))
    for t in trades:
        row = by_id.get(t.last_id)
        if row is None:
            assert any(a <= t.first_id and t.last_id <= b for a, b in unfilled), \
                f"{symbol}: trade {t.last_id} missing without an unfilled gap"
            continue
        ts_ms = round(row["ts_ms"].timestamp() * 1000)
        assert (row["first_id"], ts_ms, row["is_buyer_maker"]) == \
            (t.first_id, t.trade_ms, t.buyer_maker)
        assert row["price"] == float(spec.price_str(t.price))
        assert row["qty"] == pytest.approx(float(spec.qty_str(t.qty)))
    assert len(ids) == len(by_id) and set(by_id) <= {t.last_id for t in trades}
    # `inspect` reads continuity over the spans rows cover: its holes are the ids no row covers
    spans = prices.select("first_id", "agg_id").rows()
    uncovered = sum(max(0, f - last - 1) for (_, last), (f, _) in pairwise(spans))
    inventory = inspect_dataset(data)
    assert inventory.continuity[venue_label(h.config.venue, symbol)].missing == uncovered
    return len(ids)


def _chains_and_quotes(h: Harvester, symbol: str) -> tuple[int, int]:
    """Walk ``book_updates`` in write order: each update chains onto the one before unless a
    snapshot restarts the book; the book ``dataset_book`` rebuilds from ``scan`` output (rows
    shuffled) is the written one after every update, and its best bid/ask equals the quote of
    that update id."""
    data = h.config.data_dir
    ups = _read(data, "book_updates", symbol)
    assert ups.height and ups.filter(pl.col("is_snapshot")).height
    events: list[tuple[int, int, bool, list[Any], Any]] = []
    for row in ups.iter_rows(named=True):
        key = (row["update_id"], row["prev_update_id"], row["is_snapshot"])
        if not events or events[-1][:3] != key:
            events.append((*key, [], row["ts_ms"]))
        events[-1][3].append((row["side"], row["price"], row["qty"]))
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    last: int | None = None
    after_snapshot = False
    # the book as a user rebuilds it: ``scan`` (no promise of write order) and dataset_book,
    # whose reading rule must see the seqId resets; (update id, snapshot, time) -> best bid/ask
    scanned = scan(data, "book_updates", symbols=[symbol]).collect()
    assert scanned.height == ups.height
    read: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    # update id -> (time, best bid/ask): seqIds repeat after a reset, the time tells them apart
    best: dict[int, list[tuple[Any, tuple[Any, ...]]]] = {}
    for _first, uid, ts, *top, snap in best_by_update(
            scanned.sample(fraction=1.0, shuffle=True, seed=7)).rows():
        read.setdefault((uid, snap, ts), []).append(tuple(top))
        if None not in top:
            best.setdefault(uid, []).append((ts, tuple(top)))
    chained = 0
    for uid, prev, snap, levels, ts in events:
        if snap:
            bids, asks = {}, {}
        elif after_snapshot:  # the first update on a snapshot of seqId L: it bridges a REST
            # snapshot (prevSeqId <= L < seqId) or chains on L (a socket snapshot; also a venue
            # reset right after one, whose seqId is below its prevSeqId == L)
            assert last is not None and (prev == last or prev <= last < uid), \
                f"{symbol}: not bridged at {uid}"
        else:
            assert last is not None and prev == last, f"{symbol}: chain broken at {uid}"
            chained += 1
        after_snapshot = snap
        for side, price, qty in levels:
            book = bids if side == "bid" else asks
            if qty > 0:
                book[price] = qty
            else:
                book.pop(price, None)
        last = uid
        b, a = (max(bids) if bids else None), (min(asks) if asks else None)
        written = (b, bids.get(b), a, asks.get(a))  # type: ignore[arg-type]
        assert written in read.get((uid, snap, ts), ()), f"{symbol}: read book differs at {uid}"
    full = rebuild(scanned.reverse())  # the whole book, rows in any order: the written one
    assert (full.bids, full.asks) == (bids, asks), symbol
    compared = 0
    quotes = _read(data, "quotes", symbol)
    for q in quotes.iter_rows(named=True):
        for ts, got in best.get(q["update_id"], ()):
            if timedelta(0) <= ts - q["ts_ms"] <= timedelta(milliseconds=250):  # same epoch
                assert got == pytest.approx((q["bid"], q["bid_qty"], q["ask"], q["ask_qty"])), q
                compared += 1
    return chained, compared


@pytest.mark.parametrize("venue", ["okx-swap", "okx-spot"])
async def test_okx_conserves_trades_and_chains_books_under_faults(tmp_path: Path,
                                                                   venue: str) -> None:
    h, last = await _run(tmp_path, venue)
    a = h.repair.stats
    gaps = a.gaps
    assert gaps.get("disconnect", 0) >= 2  # the faults were there
    assert gaps.get("agg-id break", 0) > 0 and h.repair.backfill.stats.rows > 0
    reasons = pl.concat([_read(h.config.data_dir, "gaps", s) for s in h.config.symbols])
    assert "book sequence break (okx seqId)" in reasons["reason"].to_list()
    assert sum(w.resets for w in h.simulator._hub.wires.values()) > 0  # type: ignore[union-attr]
    assert h.router.stats.replies > 0  # acks and pongs counted, not warned about
    snapshots = 0
    for symbol in h.config.symbols:
        assert _conserved(h, symbol, last[symbol]) >= 50
        chained, compared = _chains_and_quotes(h, symbol)
        assert chained >= 5 and compared >= 5, (symbol, chained, compared)
        ups = _read(h.config.data_dir, "book_updates", symbol)
        snapshots += ups.filter(pl.col("is_snapshot"))["update_id"].n_unique()
    # both modes ran: snapshots on the socket (after each subscribe) and REST books aligned by
    # seqId (after a break)
    assert h.diff_books is not None and 0 < h.diff_books.stats.requests < snapshots


def test_run_sim_okx_exits_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "trio_harvest", "run", "--sim", "--venue", "okx-swap",
         "--duration", "4", "--book", "diff", "--sim-faults", f"{FAULTS},seed=5",
         "--data-dir", str(data), "--log-level", "WARNING"],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(data.glob("venue=okx-swap/date=*/symbol=BTC-USDT-SWAP/kind=prices/*.parquet"))
