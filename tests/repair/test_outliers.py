"""One bad id never poisons deduplication or continuity. A lone outlier id —
the first frame of a run, right after a resume, or mid-stream, within or beyond the trackers'
jump bounds — is held, then quarantined by the evidence of the next ids; real ids are all
admitted, none looks duplicate, no false gap is opened."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from trio_harvest.kinds import ORDERBOOK, PRICES, QUOTES
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.pipeline.router import Router
from trio_harvest.repair.continuity import MAX_AGG_ID_JUMP
from trio_harvest.repair.coordinator import Repair
from trio_harvest.repair.outliers import MAX_HELD

from ..conftest import make_config

NOW = 1_700_000_000_000
BASE = 5_000_000


@asynccontextmanager
async def _no_socket(url: str) -> Any:  # never used: no connection is opened in these tests
    raise AssertionError(url)
    yield


def setup(tmp_path: Path) -> tuple[Router, Repair]:
    cfg = make_config(tmp_path, symbols=["BTCUSDT"])
    lanes = Lanes(dict(cfg.watermarks), wake=lambda lane: None)
    router = Router(lanes, cfg.symbols, depth_levels=cfg.depth_levels, wall_ms=lambda: NOW)
    repair = Repair(cfg, lanes, _no_socket, wall_ms=lambda: NOW, use_http=False)
    router.gate = repair
    return router, repair


def agg(i: int) -> str:
    return json.dumps({"stream": "btcusdt@aggTrade", "data": {
        "e": "aggTrade", "E": NOW + i % 1000, "s": "BTCUSDT", "a": i, "p": "100.5", "q": "0.1",
        "f": i, "l": i, "T": NOW + i % 1000, "m": False}})


def ticker(u: int) -> str:
    return json.dumps({"stream": "btcusdt@bookTicker", "data": {
        "e": "bookTicker", "u": u, "s": "BTCUSDT", "b": "100.0", "B": "1", "a": "100.1",
        "A": "2", "T": NOW, "E": NOW}})


async def feed(router: Router, frames: list[str]) -> None:
    for f in frames:
        await router.handle(f)


def trades(router: Router) -> list[int]:
    return [r[4] for r in router.lanes.get(PRICES, "BTCUSDT").drain()]


def books(router: Router) -> list[int]:
    """The update ids of the best bid/ask rows written (``quotes``; ``orderbook`` holds none)."""
    assert not router.lanes.get(ORDERBOOK, "BTCUSDT").drain()
    return [r[4] for r in router.lanes.get(QUOTES, "BTCUSDT").drain()]


REAL = list(range(BASE, BASE + 10))


@pytest.mark.parametrize("outlier", [BASE + 1_000_000, BASE + 10 * MAX_AGG_ID_JUMP])
async def test_a_first_trade_far_ahead_never_makes_real_trades_duplicates(
        tmp_path: Path, outlier: int) -> None:
    router, repair = setup(tmp_path)
    await feed(router, [agg(outlier)] + [agg(i) for i in REAL])
    assert trades(router) == REAL
    assert repair.stats.trade_duplicates == 0 and repair.stats.trade_quarantined == 1
    assert repair.backfill.stats.breaks == 0  # and no false gap


@pytest.mark.parametrize("outlier", [BASE + 5 + 1_000_000, BASE + 5 + 10 * MAX_AGG_ID_JUMP,
                                     BASE + 5 + 3])
async def test_a_lone_outlier_mid_stream_is_quarantined(tmp_path: Path, outlier: int) -> None:
    router, repair = setup(tmp_path)
    frames = [agg(i) for i in REAL[:5]] + [agg(outlier)] + [agg(i) for i in REAL[5:]]
    await feed(router, frames)
    assert trades(router) == REAL
    assert repair.stats.trade_duplicates == 0
    assert repair.trackers["BTCUSDT"].missing_ids == 0 and repair.backfill.stats.breaks == 0


async def test_an_outlier_right_after_a_resume_is_quarantined(tmp_path: Path) -> None:
    router, repair = setup(tmp_path)
    repair.trackers["BTCUSDT"].resume(BASE - 500, NOW)  # the last id on disk
    await feed(router, [agg(BASE + 10**12)] + [agg(i) for i in REAL])
    assert trades(router) == REAL
    assert repair.stats.trade_quarantined == 1 and repair.stats.trade_duplicates == 0
    # the real jump (the downtime) is one break, from what is on disk to the first live id
    assert repair.trackers["BTCUSDT"].missing_in(0, 10**13) == [(BASE - 499, BASE - 1)]


async def test_a_real_jump_is_confirmed_by_the_next_id_and_becomes_one_break(
        tmp_path: Path) -> None:
    router, repair = setup(tmp_path)
    frames = [agg(i) for i in range(BASE, BASE + 3)] + [agg(i) for i in range(BASE + 50, BASE + 53)]
    await feed(router, frames)
    assert trades(router) == [*range(BASE, BASE + 3), *range(BASE + 50, BASE + 53)]
    assert repair.trackers["BTCUSDT"].missing_in(0, 10**13) == [(BASE + 3, BASE + 49)]
    assert repair.stats.trade_quarantined == 0


async def test_an_unconfirmed_held_trade_is_quarantined_at_a_stop(tmp_path: Path) -> None:
    router, repair = setup(tmp_path)
    await feed(router, [agg(i) for i in range(BASE, BASE + 3)] + [agg(BASE + 40)])
    repair.give_up_held()
    assert trades(router) == list(range(BASE, BASE + 3))
    assert repair.stats.trade_quarantined == 1


async def test_a_book_id_far_ahead_never_makes_real_book_messages_duplicates(
        tmp_path: Path) -> None:
    router, repair = setup(tmp_path)
    real = [600_000_000_000 + 1000 * k for k in range(10)]
    await feed(router, [ticker(real[0] + 10**12)] + [ticker(u) for u in real[:5]]
               + [ticker(real[4] + 5 * 10**12)] + [ticker(u) for u in real[5:]])
    assert books(router) == real
    assert repair.stats.book_duplicates == 0 and repair.stats.book_quarantined == 2


async def test_a_handover_overlap_where_the_new_socket_runs_ahead_loses_nothing(
        tmp_path: Path) -> None:
    """Two sockets interleaved (a handover that switched after its overlap): the new one ids
    ahead of the old one. Every id once; what the new socket delivered ahead beyond what is
    held is missing in the tracker, for backfill (as a hole had the old socket lagged)."""
    router, repair = setup(tmp_path)
    old = list(range(BASE, BASE + 30))
    new = list(range(BASE + 15, BASE + 45))
    frames = [agg(i) for i in old[:10]]
    for a, b in zip(new, old[10:], strict=False):
        frames += [agg(a), agg(b)]
    frames += [agg(i) for i in new[20:]]
    await feed(router, frames)
    repair.give_up_held()
    got = trades(router)
    assert len(got) == len(set(got))
    missing = {i for a, b in repair.trackers["BTCUSDT"].missing for i in range(a, b + 1)}
    assert sorted(set(got) | missing) == list(range(BASE, BASE + 45))
    assert not set(got) & missing
    assert len(missing) <= 15 - MAX_HELD


def test_outlier_ids_that_agree_with_each_other_are_not_released() -> None:
    from trio_harvest.repair.continuity import AggIdTracker
    from trio_harvest.repair.outliers import HOLD, PASS, TradeIdGuard

    tracker = AggIdTracker()
    guard = TradeIdGuard(tracker)
    for i in range(5):
        if guard.offer(i) == PASS:
            tracker.admit(i, 0)
    guard.offer(5)  # confirms what was held
    for i in guard.released:
        tracker.admit(i, 0)
    guard.released.clear()
    tracker.admit(5, 0)
    offers = []
    for real in range(6, 30):
        offers.append(guard.offer(real + 40))  # a shifted copy of the stream, interleaved
        assert guard.offer(real) == PASS
        tracker.admit(real, 0)
    assert not guard.released and all(o in (HOLD, 0, 2) for o in offers)


async def test_a_book_id_a_little_ahead_within_the_old_bound_is_quarantined(
        tmp_path: Path) -> None:
    """Within MAX_BOOK_ID_JUMP (10^13) and even within 10^9: far beyond the stream's steps."""
    router, repair = setup(tmp_path)
    real = [600_000_000_000 + 1000 * k + (k * 37) % 500 for k in range(40)]
    frames = [ticker(u) for u in real[:20]] + [ticker(real[19] + 5_000_000)]
    frames += [ticker(u) for u in real[20:]]
    await feed(router, frames)
    assert books(router) == real
    assert repair.stats.book_quarantined == 1 and repair.stats.book_duplicates == 0


async def test_irregular_book_steps_and_a_reconnect_jump_lose_nothing(tmp_path: Path) -> None:
    router, repair = setup(tmp_path)
    real, u = [], 600_000_000_000
    for k in range(60):
        u += 1 if k % 10 == 0 else 2000 + (k * 7919) % 30_000  # bursts and quiet spells
        if k == 30:
            u += 10**10  # a reconnect after a long outage
        real.append(u)
    await feed(router, [ticker(x) for x in real])
    repair.give_up_held()
    assert books(router) == real
    assert repair.stats.book_duplicates == 0


async def test_duplicated_quotes_are_counted_as_quotes(tmp_path: Path) -> None:
    router, repair = setup(tmp_path)
    await feed(router, [ticker(u) for u in (BASE, BASE + 1, BASE + 2, BASE + 1, BASE + 2)])
    assert books(router) == [BASE, BASE + 1, BASE + 2]
    assert repair.stats.book_duplicates == repair.stats.quote_duplicates == 2
