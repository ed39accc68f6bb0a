"""Health at 500 symbols: reasons grouped by code (a line, not 30 KB), forced
reconnects on a budget across connections (never a storm), quiet about streams once a stop has
begun; and a simulator whose default cadence per symbol does not depend on the symbol count."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from trio_harvest.app import Harvester
from trio_harvest.ops.health import Problem, Snapshot, StreamView, assess, stale_after
from trio_harvest.sim.events import BookDepth, BookTicker
from trio_harvest.sim.market import Market

from ..conftest import make_config
from ..opsfakes import FakeDisk, FakeExchange
from .test_monitor import run_without_threads

SYMBOLS = tuple(f"S{i:03d}USDT" for i in range(60))


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def _silent(symbol: str) -> StreamView:
    name = f"{symbol.lower()}@depth20@100ms"
    return StreamView("public[200]", symbol, name, "depth", 10.0, None, 30.0, False)


def test_500_silent_streams_are_one_grouped_reason_with_full_detail_on_request() -> None:
    snap = Snapshot(uptime=30.0, streams=tuple(_silent(f"S{i:03d}USDT") for i in range(500)))
    report = assess(snap)
    assert len(report.problems) == 500
    (line,) = report.grouped_reasons
    assert line.startswith("500 stream_silent: s000usdt@depth20@100ms, s001usdt@depth20@100ms, "
                           "s002usdt@depth20@100ms and 497 more (e.g. stream s000usdt@")
    assert len(line) < 300
    doc = report.as_dict()
    (group,) = doc["problems"]  # type: ignore[misc]
    assert group["count"] == 500 and group["more"] == 497 and len(group["subjects"]) == 3
    assert doc["reasons"] == [line]
    assert len(report.as_dict(full=True)["problems"]) == 500  # type: ignore[arg-type]


def test_once_a_stop_has_begun_streams_going_quiet_is_no_problem() -> None:
    streams = tuple(_silent(s) for s in SYMBOLS)
    assert assess(Snapshot(uptime=30.0, streams=streams)).problems
    assert assess(Snapshot(uptime=30.0, streams=streams, stopping=True)).problems == ()


def test_a_single_problem_keeps_its_own_message() -> None:
    report = assess(Snapshot(uptime=30.0, streams=(_silent("BTCUSDT"),)))
    assert report.grouped_reasons == report.reasons
    assert isinstance(report.problems[0], Problem)


async def test_many_stale_connections_get_reconnects_on_a_budget_not_a_storm(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Every depth stream stops mid-session on 6 public connections: health may force a
    reconnect, but at most one a minute across all of them; its lines stay short; after the stop
    it says nothing more about streams."""
    exchange = FakeExchange(symbols=SYMBOLS, interval=0.5)
    exchange.mute = lambda name, now: "@depth" in name and now > 5.0
    cfg = make_config(tmp_path, min_file_rows=1, symbols=SYMBOLS, depth_levels=5,
                      rotate_sec=10.0, health_interval=1.0, duration=150.0, auto_recover=False,
                      streams_per_connection=20, progress_interval=0)
    h = Harvester(cfg, connect=exchange.connect, save=FakeDisk().save,
                  dead_letter=FakeDisk().dead_letter)
    with caplog.at_level(logging.INFO, logger="trio_harvest"):
        await run_without_threads(h)
    public = [c for c in h.connections if c.plan.route == "public"]
    assert len(public) == 6
    monitor = h.ops.monitor
    assert 1 <= monitor.reconnects_requested <= 3  # 150 s: one a minute at most
    assert monitor.reconnects_refused > 0
    health = [r.getMessage() for r in caplog.records if r.name == "trio_harvest.health"]
    assert health and max(len(x) for x in health) < 1000
    assert any("60 stream_stale: " in x and " and 57 more" in x for x in health), health
    stop = next(i for i, r in enumerate(caplog.records) if "stopping" in r.getMessage())
    later = [r.getMessage() for r in caplog.records[stop:] if r.name == "trio_harvest.health"]
    assert not any("stream_" in x and "new:" in x for x in later)


def test_the_default_simulator_cadence_does_not_thin_out_with_the_symbol_count() -> None:
    """500 symbols at the default rate: over 12 s every depth and bookTicker stream delivers
    well within what health allows (a rate shared by all symbols left half of them silent)."""
    symbols = [f"S{i:03d}USDT" for i in range(500)]
    market = Market(symbols, rate=None, seed=1)
    last: dict[tuple[str, str], int] = {}
    worst: dict[str, int] = {"depth": 0, "bookTicker": 0}
    t0 = 1_700_000_000_000
    market.step(t0)
    for step in range(1, 121):  # 12 s of model time
        for ev in market.step(t0 + step * 100):
            if isinstance(ev, BookDepth) and ev.cadence_ms == 100 and not ev.diff:
                kind = "depth"
            elif isinstance(ev, BookTicker):
                kind = "bookTicker"
            else:
                continue
            worst[kind] = max(worst[kind], ev.event_ms - last.get((kind, ev.symbol), t0))
            last[(kind, ev.symbol)] = ev.event_ms
    end = t0 + 12_000
    for kind in worst:
        worst[kind] = max([worst[kind]] + [end - last.get((kind, s), t0) for s in symbols])
    assert worst["depth"] < stale_after("depth") * 1000 / 2, worst
    assert worst["bookTicker"] < stale_after("bookTicker") * 1000 / 2, worst
