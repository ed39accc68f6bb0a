"""The contract state of the per-second feature table: the last mark price, funding rate and
open interest at each second's end, forward-filled only within their bound (null after it,
never a stale copy), and the count and notional of the liquidations in each second; memory
stays bounded as seconds are emitted."""

from __future__ import annotations

from trio_harvest.kinds import DERIVATIVES, FEATURES_SCHEMA, LIQUIDATIONS, Row
from trio_harvest.signals.marketstate import (
    FUNDING_MAX_AGE_MS,
    MARK_MAX_AGE_MS,
    OI_MAX_AGE_MS,
    MarketState,
)

T0 = 1_700_000_000_000
SEC = T0 // 1000


def mark(ts: int, price: float, rate: float | None = 0.0001) -> Row:
    return (ts, ts, ts, "BTCUSDT", "markPrice", price, price, price, rate, T0 + 3_600_000, None)


def oi(ts: int, value: float) -> Row:
    return (ts, ts, ts, "BTCUSDT", "openInterest", None, None, None, None, None, value)


def liq(ts: int, price: float, qty: float) -> Row:
    return (ts, ts, ts, "BTCUSDT", "sell", price, qty, price, qty, "FILLED", "LIMIT", "IOC")


def test_last_values_fill_forward_within_their_bound_then_go_null() -> None:
    s = MarketState()
    s.add(DERIVATIVES, mark(T0 + 200, 100.0))
    s.add(DERIVATIVES, oi(T0 + 500, 7.0))
    s.add(DERIVATIVES, mark(T0 + 900, 101.0, rate=0.0002))
    assert s.columns(SEC - 1) == (None, None, None, 0, 0.0)  # nothing before its first update
    assert s.columns(SEC) == (101.0, 0.0002, 7.0, 0, 0.0)  # the last of the second
    quiet = SEC + MARK_MAX_AGE_MS // 1000 - 1  # still within the mark's bound
    assert s.columns(quiet)[:3] == (101.0, 0.0002, 7.0)
    later = SEC + MARK_MAX_AGE_MS // 1000 + 1  # the mark stale, funding and open interest not
    assert s.columns(later)[:3] == (None, 0.0002, 7.0)
    later = SEC + FUNDING_MAX_AGE_MS // 1000 + 1  # funding stale too (OKX: every 30-90 s)
    assert s.columns(later)[:3] == (None, None, 7.0)
    assert s.columns(SEC + OI_MAX_AGE_MS // 1000 + 1)[:3] == (None, None, None)


def test_an_update_without_funding_never_hides_an_earlier_rate_as_zero() -> None:
    s = MarketState()
    s.add(DERIVATIVES, mark(T0 + 100, 100.0, rate=0.0003))
    s.add(DERIVATIVES, oi(T0 + 600, 5.0))  # carries no mark, no funding
    assert s.columns(SEC)[:3] == (100.0, 0.0003, 5.0)


def test_liquidations_are_counted_and_summed_per_second() -> None:
    s = MarketState()
    s.add(LIQUIDATIONS, liq(T0 + 999, 100.0, 2.0))
    s.add(LIQUIDATIONS, liq(T0 + 1000, 50.0, 1.0))
    s.add(LIQUIDATIONS, liq(T0 + 10, 10.0, 1.0))  # late: still its own second's
    assert s.columns(SEC)[3:] == (2, 210.0)
    assert s.columns(SEC + 1)[3:] == (1, 50.0)
    assert s.columns(SEC + 2)[3:] == (0, 0.0)


def test_emitted_seconds_are_forgotten_but_the_last_value_stays_to_fill() -> None:
    s = MarketState()
    for i in range(100):
        s.add(DERIVATIVES, mark(T0 + 1000 * i, 100.0 + i))
        s.add(LIQUIDATIONS, liq(T0 + 1000 * i, 100.0, 1.0))
    s.forget(T0 + 100_000)
    assert len(s) <= 3  # one mark, one funding rate, no liquidation
    assert s.columns(SEC + 100)[:2] == (199.0, 0.0001)


def test_features_schema_ends_with_the_contract_state() -> None:
    assert FEATURES_SCHEMA.names[-5:] == ["mark_price", "funding_rate", "open_interest",
                                          "liq_count", "liq_notional"]


def test_a_source_that_sends_only_changes_keeps_its_unchanged_values_fresh() -> None:
    """Bybit's merged tickers: a row carries only what changed; a funding rate its source does
    not repeat is confirmed by each later row of that source, never by another source's."""
    def tickers(ts: int, price: float | None, rate: float | None) -> Row:
        return (ts, ts, ts, "BTCUSDT", "tickers", price, None, None, rate, None, None)

    s = MarketState()
    s.add(DERIVATIVES, tickers(T0, 100.0, 0.0001))
    for i in range(1, 60):
        s.add(DERIVATIVES, tickers(T0 + 1000 * i, 100.0 + i, None))  # the rate never changes
    assert s.columns(SEC + 59)[:2] == (159.0, 0.0001)  # a minute on: still the rate
    # silence: each value ages out on its own bound from the source's last row
    assert s.columns(SEC + 59 + MARK_MAX_AGE_MS // 1000 + 1)[:2] == (None, 0.0001)
    assert s.columns(SEC + 59 + FUNDING_MAX_AGE_MS // 1000 + 1)[:2] == (None, None)
    other = MarketState()
    other.add(DERIVATIVES, tickers(T0, 100.0, 0.0001))
    longer = FUNDING_MAX_AGE_MS // 1000 + 30
    for i in range(1, longer):
        other.add(DERIVATIVES, oi(T0 + 1000 * i, 5.0))  # another source confirms nothing
    assert other.columns(SEC + longer - 1)[:3] == (None, None, 5.0)
