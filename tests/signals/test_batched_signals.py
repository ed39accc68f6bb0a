"""Trades, quotes and depth messages computed in batches from their lanes give the rows the
per-message engine gives: the NumPy form on its own (``signals/depthbatch.py``), and whole
harvesters fed the same simulator tape, one reading them in batches, one computing each message
as it comes."""

from __future__ import annotations

import math
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.config import Config
from trio_harvest.kinds import ALL_KINDS, CVD, FEATURES, FUSION, OFI, ORDERBOOK, PRICES
from trio_harvest.signals.depthbatch import derive, side_lists
from trio_harvest.signals.ofi import level_sums_fn, ofi_levels_fn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _common as C  # the simulator's frames, as the benchmarks use them

_EVENT = re.compile(r'"E":(\d+)')


def _book(rng: random.Random, levels: int, have: int) -> tuple[list[Any], list[Any]]:
    mid = rng.choice([100.0, 100.5, 101.0])
    bids = [(mid - 0.5 * (i + rng.choice([0, 0, 1])), float(rng.choice([0, 1, 2, 3.5])))
            for i in range(have)]
    asks = [(mid + 0.5 * (i + rng.choice([0, 0, 1])), float(rng.choice([0, 1, 2, 3.5])))
            for i in range(levels if have == levels else rng.randrange(have + 1))]
    return bids, asks


def _row(bids: list[Any], asks: list[Any], levels: int) -> list[float]:
    out: list[float] = []
    for side in (bids, asks):
        for i in range(levels):
            out += list(side[i]) if i < len(side) else [math.nan, math.nan]
    return out


@pytest.mark.parametrize("seed", range(20))
def test_the_numpy_form_is_the_per_message_sums_bit_for_bit(seed: int) -> None:
    rng = random.Random(seed)
    levels, ofi_levels, sum_levels = 6, 4, 3
    ofi = ofi_levels_fn(ofi_levels)
    sums = level_sums_fn(sum_levels)
    books = [_book(rng, levels, levels if rng.random() < 0.8 else rng.randrange(levels))
             for _ in range(40)]
    starts = [0, 13, 27]
    prevs: list[Any] = [None, np.array(_row(*_book(rng, levels, levels), levels)), None]
    m = np.array([_row(b, a, levels) for b, a in books])
    d = derive(m, starts, prevs, levels, ofi_levels, sum_levels)
    bounds = [*starts, len(books)]
    for run in range(len(starts)):
        complete = True
        prev = None if prevs[run] is None else side_lists(prevs[run], levels)
        for i in range(bounds[run], bounds[run + 1]):
            bids, asks = side_lists(m[i], levels)
            assert (bids, asks) == books[i]
            full = min(len(bids), len(asks)) >= ofi_levels and (
                prev is None or min(len(prev[0]), len(prev[1])) >= ofi_levels)
            complete = complete and full and min(len(bids), len(asks)) >= sum_levels
            if not complete:
                continue
            want = None if prev is None else ofi(prev[0], prev[1], bids, asks)
            if want is None:
                assert not d.has_prev[i] and math.isnan(d.ofim[i])
            else:
                assert d.ofim[i].tobytes() == np.float64(want).tobytes()
            qb, qa = sums(bids, asks)
            assert (d.q_bid[i], d.q_ask[i]) == (qb, qa)
            assert (d.bid[i], d.bid_sz[i], d.ask[i], d.ask_sz[i]) == (*bids[0], *asks[0])
            prev = (bids, asks)
        assert bool(d.complete[run]) == complete


def _harvester(tmp: Path, batched: bool, symbols: tuple[str, ...]) -> Harvester:
    huge = {kind: (10**7, 2 * 10**7) for kind in ALL_KINDS}
    h = Harvester.__new__(Harvester)
    h.batched_signals = batched  # per instance, before the engines are made
    Harvester.__init__(h, Config(symbols=symbols, data_dir=tmp, watermarks=huge))
    return h


def _rows(batch: Any) -> list[tuple[Any, ...]]:
    return [tuple(None if isinstance(v, float) and math.isnan(v) else v for v in r)
            for r in batch]


def _run(tmp: Path, batched: bool, frames: list[str], symbols: tuple[str, ...],
         ts_of: list[int]) -> dict[str, Any]:
    h = _harvester(tmp, batched, symbols)
    out: dict[str, list[Any]] = {}
    emitted: list[tuple[str, Any]] = []
    gap_symbol = symbols[0]

    def drain(kinds: tuple[str, ...]) -> None:
        for lane in h.lanes:
            if lane.kind in kinds:
                out.setdefault(lane.kind, []).extend(_rows(lane.drain()))

    def emit(kind: str, row: Any) -> None:
        emitted.append((kind, row))

    async def main() -> None:
        from trio_harvest.signals.task import emit_closed, flush_all
        feed = h.router.feed
        for i, frame in enumerate(frames):
            waiting = feed(frame)
            if waiting is not None:
                await waiting
            if i % 997 == 0:  # a features tick
                emit_closed(h.engines, emit, ts_of[i])
            if i % 1513 == 0:  # rotation drains the books (their depth is read first)
                drain((ORDERBOOK,))
            if i % 2101 == 0:  # rotation drains the ofi rows
                drain((OFI,))
            if i == len(frames) // 2:  # a disconnect: no OFI across it
                h.engines[gap_symbol].on_gap(ts_of[i], "disconnect")
        flush_all(h.engines, emit, ts_of[-1] + 10_000)
        drain((ORDERBOOK, OFI, CVD, PRICES))

    trio.run(main)
    tails = {s: [(t.ts.tolist(), [c.tolist() for c in t.cols])
                 for t in (e.tail.trades, e.tail.l1, e.tail.ml)] for s, e in h.engines.items()}
    return {"lanes": out, "emitted": emitted, "tails": tails,
            "stats": {s: e.stats() for s, e in h.engines.items()}}


def test_a_harvester_reading_depth_in_batches_writes_the_rows_of_one_computing_each_message(
        tmp_path: Path) -> None:
    symbols = C.symbols(12)
    frames = list(C.generate_frames(symbols, 3_000, 12.0, start_ms=1_767_225_600_000))
    ts_of = []
    last = 0
    for f in frames:
        m = _EVENT.search(f)
        if m:
            last = int(m.group(1))
        ts_of.append(last)
    assert sum('@depth' in f[:60] for f in frames) > 1_000
    one = _run(tmp_path / "one", False, frames, symbols, ts_of)
    batched = _run(tmp_path / "batched", True, frames, symbols, ts_of)
    assert batched["emitted"] == one["emitted"]  # features, fusion, events: the same, in order
    assert {k for k, _ in one["emitted"]} >= {FEATURES, FUSION}
    assert batched["tails"] == one["tails"]
    assert batched["stats"] == one["stats"]
    assert batched["lanes"][ORDERBOOK] == one["lanes"][ORDERBOOK]
    assert batched["lanes"][PRICES] == one["lanes"][PRICES]
    # ofi and cvd rows: the same rows; a message's row reaches the lane at its batch, so the
    # order within the lane differs
    key = lambda r: tuple((v is None, v) for v in r)  # noqa: E731
    for kind in (OFI, CVD):
        assert sorted(batched["lanes"][kind], key=key) == sorted(one["lanes"][kind], key=key)
    assert sum(r[2] != "bookTicker" for r in one["lanes"][OFI]) > 1_000
    assert len(one["lanes"][CVD]) > 1_000


@pytest.mark.parametrize("few", [0, 8, 10**9])
def test_either_way_of_computing_a_batch_gives_the_same_rows(tmp_path: Path, few: int,
                                                             monkeypatch: Any) -> None:
    """Every batch in NumPy (0), the default, or every batch row by row (10**9)."""
    from trio_harvest.signals import batches
    monkeypatch.setattr(batches, "FEW", few)
    symbols = C.symbols(4)
    frames = list(C.generate_frames(symbols, 1_000, 6.0, start_ms=1_767_225_600_000))
    ts_of = [0]
    for f in frames:
        m = _EVENT.search(f)
        ts_of.append(int(m.group(1)) if m else ts_of[-1])
    ts_of = ts_of[1:]
    one = _run(tmp_path / "one", False, frames, symbols, ts_of)
    batched = _run(tmp_path / "batched", True, frames, symbols, ts_of)
    assert batched["emitted"] == one["emitted"]
    assert batched["tails"] == one["tails"]


def _mixed(tmp: Path, batched: bool, seed: int) -> dict[str, Any]:
    """Depth rows as the router gives them (``add_depth``, then ``on_book_levels``) mixed with
    rows the repair gate releases (``put_nowait``, then ``on_book``), quotes, gaps, drains and
    ticks, in one random order."""
    rng = random.Random(seed)
    symbols = C.symbols(3)
    h = _harvester(tmp, batched, symbols)
    venue = h.router.venue
    emitted: list[Any] = []
    lanes: dict[str, list[Any]] = {}
    frames = list(C.generate_frames(symbols, 600, 5.0, start_ms=1_767_225_600_000))
    last = 0
    for i, frame in enumerate(frames):
        env = venue.decode_envelope(frame)
        data = env.data
        e = h.engines[data.symbol]
        recv = (data.trade_ms or data.event_ms) + 5
        last = max(last, data.event_ms or data.trade_ms)
        if "@depth" in env.stream:
            book = h.lanes.get(ORDERBOOK, data.symbol)
            if rng.random() < 0.15:
                row = venue.levels_row(data, recv, LEVELS_SUB, "depth20")
                assert book.put_nowait(row)
                e.on_book(row)
            else:
                assert book.add_depth(data, recv, "depth20")
                e.on_book_levels(data, "depth20")
        elif "@bookTicker" in env.stream:
            assert h.lanes.get("quotes", data.symbol).add_quote(data, recv)
            e.on_quote(data, recv)
        elif "@aggTrade" in env.stream:
            prices = h.lanes.get(PRICES, data.symbol)
            r = rng.random()
            if r < 0.05:  # lost on the wire: an agg-id break
                pass
            elif r < 0.10:  # backfilled over REST: in prices, never given to the engine
                assert prices.put_nowait(venue.trade_row(data, recv), unseen=True)
            elif r < 0.20:  # held by the repair gate, then released as a row
                row = venue.trade_row(data, recv)
                assert prices.put_nowait(row)
                e.on_trade(row)
            else:
                for _ in range(2 if r > 0.97 else 1):  # now and then twice: a duplicate
                    assert prices.add_trade(data, recv)
                    e.on_trade_record(data)
        r = rng.random()
        if r < 0.01:
            e.on_gap(last, "disconnect")
        elif r < 0.03:
            for lane in h.lanes:
                if lane.kind in (ORDERBOOK, OFI, "quotes", PRICES, CVD) and rng.random() < 0.5:
                    lanes.setdefault(lane.kind, []).extend(_rows(lane.drain()))
        elif r < 0.05:
            from trio_harvest.signals.task import emit_closed
            emit_closed(h.engines, lambda k, row: emitted.append((k, row)), last)
        if i % 50 == 0:
            e.stats()
    from trio_harvest.signals.task import flush_all
    flush_all(h.engines, lambda k, row: emitted.append((k, row)), last + 10_000)
    for lane in h.lanes:
        if lane.kind in (ORDERBOOK, OFI, "quotes", PRICES, CVD):
            lanes.setdefault(lane.kind, []).extend(_rows(lane.drain()))
    tails = {s: [(t.ts.tolist(), [c.tolist() for c in t.cols])
                 for t in (e.tail.trades, e.tail.l1, e.tail.ml)] for s, e in h.engines.items()}
    stats = {s: e.stats() for s, e in h.engines.items()}
    return {"emitted": emitted, "lanes": lanes, "tails": tails, "stats": stats}


LEVELS_SUB = 20


@pytest.mark.parametrize("seed", range(4))
def test_rows_the_gate_releases_keep_their_place_among_the_batched_ones(tmp_path: Path,
                                                                         seed: int) -> None:
    """And trades backfilled into the lane (never the engine's), duplicates, agg-id breaks."""
    one = _mixed(tmp_path / "one", False, seed)
    batched = _mixed(tmp_path / "batched", True, seed)
    assert batched["emitted"] == one["emitted"]
    assert batched["tails"] == one["tails"]
    assert batched["stats"] == one["stats"]
    assert any(st["agg_gaps"] for st in one["stats"].values())
    assert any(st["duplicates"] for st in one["stats"].values())
    assert batched["lanes"][ORDERBOOK] == one["lanes"][ORDERBOOK]
    assert batched["lanes"][PRICES] == one["lanes"][PRICES]
    key = lambda r: tuple((v is None, v) for v in r)  # noqa: E731
    for kind in (OFI, CVD):
        assert sorted(batched["lanes"][kind], key=key) == sorted(one["lanes"][kind], key=key)
