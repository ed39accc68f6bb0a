"""The features task under MockClock: a one-second grid, each closed second emitted exactly once,
late records within the grace counted, and the shutdown flush."""

from __future__ import annotations

import random
from collections import defaultdict
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from trio_harvest.kinds import FEATURES, FEATURES_SCHEMA, FUSION
from trio_harvest.signals import SignalEngine, SignalParams
from trio_harvest.signals.task import flush_all, run_features

BASE_MS = 1_700_000_000_000
SYMBOLS = ("BTCUSDT", "ETHUSDT")
I_N, I_VOL = FEATURES_SCHEMA.index("n_trades"), FEATURES_SCHEMA.index("volume")


def engines_for(emit: Any) -> dict[str, SignalEngine]:
    return {s: SignalEngine(s, SignalParams(), 5, emit, book_ticker=True) for s in SYMBOLS}


async def test_every_closed_second_is_emitted_once_on_the_grid(
    autojump_clock: trio.testing.MockClock,
) -> None:
    origin = trio.current_time()

    def now_ms() -> int:
        return BASE_MS + round((trio.current_time() - origin) * 1000)

    emitted: list[tuple[float, str, tuple[Any, ...]]] = []

    def emit(kind: str, row: tuple[Any, ...]) -> None:
        emitted.append((trio.current_time() - origin, kind, row))

    engines = engines_for(emit)
    rng = random.Random(3)
    arrivals = []
    expected: dict[tuple[str, int], list[float]] = defaultdict(list)
    agg = dict.fromkeys(SYMBOLS, 0)
    for sym in SYMBOLS:
        for sec in range(1, 30):
            for _ in range(rng.choice([0, 0, 1, 3, 6])):
                ts = BASE_MS + sec * 1000 + rng.randrange(1000)
                delay = rng.randrange(0, 480)  # network delay, below the 500 ms grace
                arrivals.append((ts - BASE_MS + delay, ts, sym, rng.uniform(0.1, 2.0)))
    arrivals.sort()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_features, engines, emit, now_ms=now_ms))
        for arrive_ms, ts, sym, qty in arrivals:
            await trio.sleep_until(origin + arrive_ms / 1000)
            agg[sym] += 1
            engines[sym].on_trade((ts, ts, ts, sym, agg[sym], 100.0, qty, 0, 0, False))
            expected[(sym, ts // 1000 * 1000)].append(qty)
        await trio.sleep_until(origin + 40.2)
        nursery.cancel_scope.cancel()
    first = min(ts for _, ts, _, _ in arrivals) // 1000 * 1000
    for sym in SYMBOLS:
        rows = [(t, r) for t, k, r in emitted if k == FEATURES and r[1] == sym]
        seconds = [r[0] for _, r in rows]
        sym_first = min(ts for _, ts, s, _ in arrivals if s == sym) // 1000 * 1000
        assert seconds == list(range(sym_first, BASE_MS + 39_000, 1000))  # once each, in order
        for t, r in rows:
            # closed at end + 0.5 s; the tick on the one-second grid that follows is at end + 1 s
            assert t == pytest.approx((r[0] - BASE_MS) / 1000 + 2, abs=1e-6)
            qtys = expected.get((sym, r[0]), [])
            assert r[I_N] == len(qtys)
            assert r[I_VOL] == pytest.approx(sum(qtys))
        assert sum(r[I_N] for _, r in rows) == agg[sym]  # nothing lost, nothing twice
        fusion = [r[0] for _, k, r in emitted if k == FUSION and r[1] == sym]
        assert fusion == seconds
        assert engines[sym].tail.late == 0
    assert first >= BASE_MS
    # shutdown: everything up to the last complete second, once
    before = len(emitted)
    n = flush_all(engines, emit, now_ms)
    flushed = [r[0] for _, k, r in emitted[before:] if k == FEATURES]
    assert flushed == [BASE_MS + 39_000] * 2 and n == len(emitted) - before
    assert flush_all(engines, emit, now_ms) == 0


async def test_a_slow_tick_skips_missed_grid_points(
    autojump_clock: trio.testing.MockClock,
) -> None:
    origin = trio.current_time()
    ticks: list[float] = []

    class Slow(SignalEngine):
        __slots__ = ()

        def span_to_close(self, upto_sec: int) -> tuple[int, int] | None:  # every tick asks
            ticks.append(round(trio.current_time() - origin, 6))
            if len(ticks) == 3:
                autojump_clock.jump(2.5)  # this tick took 2.5 s
            return None

    engines = {"BTCUSDT": Slow("BTCUSDT", SignalParams(), 5, lambda k, r: None,
                               book_ticker=True)}
    with trio.move_on_after(8.5):
        await run_features(engines, lambda k, r: None, now_ms=lambda: BASE_MS)
    assert ticks == [1.0, 2.0, 3.0, 6.0, 7.0, 8.0]


async def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        await run_features({}, lambda k, r: None, now_ms=lambda: 0, interval=0)


def test_a_failing_symbol_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []

    class Broken(SignalEngine):
        __slots__ = ()

        def close_span(self, start: int, upto_sec: int,
                       aggs: dict[int, tuple[Any, ...]] | None = None,
                       ) -> list[tuple[str, tuple[Any, ...]]]:
            raise RuntimeError("boom")

    def emit(kind: str, row: tuple[Any, ...]) -> None:
        out.append((kind, row))

    broken = Broken("ETHUSDT", SignalParams(), 5, emit, book_ticker=True)
    good = SignalEngine("BTCUSDT", SignalParams(), 5, emit, book_ticker=True)
    good.on_trade((BASE_MS + 10, 0, 0, "BTCUSDT", 1, 100.0, 1.0, 0, 0, False))
    broken.on_trade((BASE_MS + 10, 0, 0, "ETHUSDT", 1, 100.0, 1.0, 0, 0, False))
    flush_all({"ETHUSDT": broken, "BTCUSDT": good}, emit, BASE_MS + 1_000)
    assert [r[1] for k, r in out if k == FEATURES] == ["BTCUSDT"]
    assert "ETHUSDT" in caplog.text
    assert broken.tail.cursor_ms == BASE_MS + 1_000  # its seconds were given up, not retried
