"""The tail window: columnar, sorted by time, bounded by time (old fault 6), late records."""

from __future__ import annotations

from typing import Any

from trio_harvest.signals import SignalEngine, SignalParams
from trio_harvest.signals.tail import TailWindow


def trade(tail: TailWindow, ts: int, price: float = 100.0) -> bool:
    return tail.add_trade(ts, price, 1.0, 1.0, price, 0.0)


def test_appends_stay_sorted_and_ties_keep_arrival_order() -> None:
    tail = TailWindow()
    for ts, price in [(1000, 1.0), (1500, 2.0), (1200, 3.0), (1500, 4.0), (900, 5.0)]:
        assert trade(tail, ts, price)
    assert list(tail.trades.ts) == [900, 1000, 1200, 1500, 1500]
    assert list(tail.trades.col("price")) == [5.0, 1.0, 3.0, 2.0, 4.0]
    assert tail.trades.span(1000, 1500) == (1, 3)
    assert tail.first_second() == 0


def test_advance_keeps_history_and_drops_late_records() -> None:
    tail = TailWindow(history_s=60)
    for s in range(0, 200):
        trade(tail, s * 1000 + 500)
        tail.add_l1(s * 1000 + 600, 0.0, 1.0, 2.0, 1.0, 1.0)
    tail.advance(150_000)
    assert tail.cursor_ms == 150_000
    assert tail.trades.ts[0] == 90_500  # the last 60 s before the cursor, and everything after
    assert tail.l1.ts[0] == 90_600
    assert len(tail.trades) == 110
    assert not trade(tail, 149_999)  # its second was already emitted
    assert trade(tail, 150_000)
    assert tail.late == 1
    tail.advance(100_000)  # the cursor never moves back
    assert tail.cursor_ms == 150_000


def test_flags_for_emitted_seconds_move_to_the_next_one() -> None:
    tail = TailWindow()
    tail.add_flag(5_500, "gap")
    tail.advance(10_000)
    assert tail.flags_between(0, 100_000) == []
    tail.add_flag(7_000, "resync")
    tail.add_flag(12_000, "stale")
    assert tail.flags_between(0, 100_000) == [(10_000, "resync"), (12_000, "stale")]


def test_window_stays_bounded_when_the_features_task_never_runs() -> None:
    tail = TailWindow(history_s=60, max_lag_s=300)
    for i in range(20 * 60 * 10):  # 20 minutes at 10 records/s
        trade(tail, 1_000_000 + i * 100)
        assert len(tail) <= 10 * (60 + 300 + 2)
    assert tail.skipped_s > 0
    assert any(f == "stale" for _, f in tail.flags_between(0, 10**12))


def test_size_depends_on_time_not_on_how_much_went_through() -> None:
    """Old fault 6: the feature table scanned the whole buffer. Here, after any amount of data,
    the tail holds the last 60 s plus the unemitted seconds, and nothing else."""
    out: list[tuple[str, Any]] = []
    eng = SignalEngine("BTCUSDT", SignalParams(), 5, lambda k, r: out.append((k, r)),
                       book_ticker=True)
    agg = 0
    sizes = []
    for s in range(1_000, 1_000 + 900):  # 15 minutes, 40 trades + 10 book updates per second
        for k in range(40):
            agg += 1
            ts = s * 1000 + 25 * k
            eng.on_trade((ts, ts, ts, "BTCUSDT", agg, 100.0, 1.0, agg, agg, k % 2 == 0))
        for k in range(10):
            ts = s * 1000 + 100 * k
            eng.on_book((ts, ts, ts, "BTCUSDT", "bookTicker", agg, None, None,
                         99.0, 1.0, 101.0, 1.0, *([None] * 16)))
        eng.close_seconds(s)  # the tick at second s closes s - 1
        sizes.append(len(eng.tail))
        out.clear()
    assert max(sizes) <= 50 * (60 + 2)
    assert sizes[-1] == sizes[100]  # flat once the window is full
