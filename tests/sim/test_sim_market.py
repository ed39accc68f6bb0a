"""The simulator's pure market model: determinism, ids, book consistency, rates, size tails."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

import pytest

from trio_harvest.sim.events import AggTrade, BookDepth, BookSnapshot, BookTicker, Event
from trio_harvest.sim.market import CADENCES_MS, LAG_MS, Market, SymbolMarket
from trio_harvest.sim.specs import spec_for
from trio_harvest.sim.tape import TradeTape
from trio_harvest.sim.wire import SymbolWire

E = TypeVar("E", AggTrade, BookTicker, BookDepth)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE_MS = 60_000


@dataclass
class Run:
    model: SymbolMarket
    start: BookSnapshot  # the book before the first event
    events: list[Event]
    step_ms: int


def simulate(symbol: str = "BTCUSDT", *, rate: float = 150.0, seed: int = 1,
             duration_ms: int = MINUTE_MS, step_ms: int = 10) -> Run:
    model = SymbolMarket(spec_for(symbol), seed=seed, rate=rate)
    model.step(T0)
    start = model.snapshot()
    events: list[Event] = []
    for now in range(T0 + step_ms, T0 + duration_ms + 1, step_ms):
        events.extend(model.step(now))
    return Run(model, start, events, step_ms)


@pytest.fixture(scope="module")
def btc_minute() -> Run:
    """One simulated minute of BTCUSDT at its share of the default 300 msg/s."""
    return simulate()


def of_type(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


# -- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_identical_events_whatever_the_step_size() -> None:
    a = simulate(duration_ms=10_000)
    b = simulate(duration_ms=10_000)
    c = simulate(duration_ms=10_000, step_ms=1)
    d = simulate(duration_ms=10_000, step_ms=333)
    assert a.events == b.events
    assert len(a.events) > 500
    assert c.events == a.events
    # coarse steps end earlier (10 000 is not a multiple of 333): compare the common part
    assert d.events == a.events[: len(d.events)]


def test_another_seed_or_symbol_gives_another_market() -> None:
    a = simulate(duration_ms=5_000)
    assert simulate(duration_ms=5_000, seed=2).events != a.events
    two = Market(("BTCUSDT", "ETHUSDT"), rate=300, seed=1)
    two.step(T0)
    events = [e for now in range(T0 + 10, T0 + 5_001, 10) for e in two.step(now)]
    assert [e for e in events if e.symbol == "BTCUSDT"] == a.events  # symbols are independent


def test_a_clock_jump_can_be_skipped() -> None:
    model = SymbolMarket(spec_for("BTCUSDT"), seed=1, rate=150)
    model.step(T0)
    before = [e for now in range(T0 + 10, T0 + 1_001, 10) for e in model.step(now)]
    model.skip_to(T0 + 3_600_000)
    after = model.step(T0 + 3_601_000)
    assert before and after
    assert min(e.trade_ms for e in after if not isinstance(e, BookDepth)) > T0 + 3_600_000
    assert min(e.event_ms for e in after) > T0 + 3_600_000
    trades = of_type(before + after, AggTrade)
    assert [t.agg_id for t in trades] == list(range(trades[0].agg_id, trades[-1].agg_id + 1))


# -- trades --------------------------------------------------------------------------------------


def test_agg_ids_contiguous_and_raw_ids_consistent(btc_minute: Run) -> None:
    trades = of_type(btc_minute.events, AggTrade)
    assert len(trades) > 1000
    for prev, t in itertools.pairwise(trades):
        assert t.agg_id == prev.agg_id + 1
        assert t.first_id == prev.last_id + 1
        assert t.first_id <= t.last_id
    assert btc_minute.model.last_agg_id == trades[-1].agg_id


def test_trades_hit_the_touch_and_m_says_who_sold(btc_minute: Run) -> None:
    bid, ask = btc_minute.start.bids[0][0], btc_minute.start.asks[0][0]
    sells = buys = 0
    for e in btc_minute.events:
        if isinstance(e, BookTicker):
            bid, ask = e.bid, e.ask
        elif isinstance(e, AggTrade):
            if e.buyer_maker:  # the aggressor sold: it hit the best bid
                assert e.price == bid
                sells += 1
            else:  # the aggressor bought: it lifted the best ask
                assert e.price == ask
                buys += 1
    assert sells > 100 and buys > 100


def test_times_trade_before_event_never_in_the_future(btc_minute: Run) -> None:
    last_e: dict[str, int] = {}
    step = btc_minute.step_ms
    for e in btc_minute.events:
        assert e.trade_ms <= e.event_ms
        stream = type(e).__name__ + (str(e.cadence_ms) if isinstance(e, BookDepth) else "")
        assert e.event_ms >= last_e.get(stream, 0)
        last_e[stream] = e.event_ms
        if not isinstance(e, BookDepth):
            assert e.event_ms - e.trade_ms <= LAG_MS
    assert max(e.event_ms for e in btc_minute.events) <= T0 + MINUTE_MS
    assert min(e.trade_ms for e in btc_minute.events) > T0 - LAG_MS - step


def test_tape_holds_every_trade_and_serves_from_id(btc_minute: Run) -> None:
    trades = of_type(btc_minute.events, AggTrade)
    tape = btc_minute.model.tape
    assert len(tape) == len(trades)
    assert tape.since(trades[0].agg_id, len(trades)) == trades
    assert btc_minute.model.tape_since(trades[10].agg_id, 5) == trades[10:15]
    assert tape.since(trades[-1].agg_id + 1) == []


def test_tape_ring_keeps_the_newest() -> None:
    trades = of_type(simulate(duration_ms=5_000).events, AggTrade)
    tape = TradeTape("BTCUSDT", capacity=7)
    for t in trades:
        tape.append(t)
    assert len(tape) == 7 and tape.first_id == trades[-7].agg_id
    assert tape.since(0, 100) == trades[-7:]  # older than the tape: starts at the oldest held
    assert tape.since(trades[-3].agg_id, 2) == trades[-3:-1]
    with pytest.raises(ValueError, match="does not follow"):
        tape.append(trades[0])


# -- the book ------------------------------------------------------------------------------------


def on_grid(text: str, step: str) -> bool:
    return Decimal(text) % Decimal(step) == 0 and Decimal(text) > 0


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"])
def test_prices_and_sizes_on_grid_and_spread_at_least_a_tick(symbol: str) -> None:
    run = simulate(symbol, duration_ms=10_000)
    spec, wire = run.model.spec, SymbolWire(run.model.spec)
    tick = wire.price(1)
    lot = wire.qty(1)
    assert Decimal(tick) == Decimal(str(spec.tick)) and Decimal(lot) == Decimal(str(spec.lot))
    depths = [e for e in run.events if isinstance(e, BookDepth) and not e.diff]
    assert depths
    for d in depths:
        assert len(d.bids) == 20 and len(d.asks) == 20
        assert d.bids[0][0] < d.asks[0][0]
        assert [p for p, _ in d.bids] == sorted((p for p, _ in d.bids), reverse=True)
        assert [p for p, _ in d.asks] == sorted(p for p, _ in d.asks)
        for p, q in d.bids + d.asks:
            assert on_grid(wire.price(p), tick) and on_grid(wire.qty(q), lot)
    for t in of_type(run.events, AggTrade):
        assert on_grid(wire.price(t.price), tick) and on_grid(wire.qty(t.qty), lot)


def test_spread_is_almost_always_one_tick(btc_minute: Run) -> None:
    spreads = Counter(e.ask - e.bid for e in of_type(btc_minute.events, BookTicker))
    assert min(spreads) >= 1
    assert spreads[1] / sum(spreads.values()) > 0.9


def test_best_level_sizes_look_like_btcusdt(btc_minute: Run) -> None:
    lots_per_btc = 1000
    sizes = sorted(e.bid_qty / lots_per_btc for e in of_type(btc_minute.events, BookTicker))
    median = statistics.median(sizes)
    assert 4 < median < 16  # ≈ 8 BTC
    assert 0.2 < sizes[len(sizes) // 10] and sizes[-len(sizes) // 10] < 60


def test_book_ticker_matches_depth_top_and_ids_chain(btc_minute: Run) -> None:
    ticker: BookTicker | None = None
    prev_u: dict[tuple[int, bool], int] = {}
    checked = 0
    for e in btc_minute.events:
        if isinstance(e, BookTicker):
            ticker = e
        elif isinstance(e, BookDepth):
            key = (e.cadence_ms, e.diff)
            assert e.prev_update_id == prev_u.get(key, btc_minute.start.last_update_id)
            assert e.prev_update_id < e.first_update_id <= e.last_update_id
            prev_u[key] = e.last_update_id
            if not e.diff and ticker is not None:
                assert ticker.update_id <= e.last_update_id
                assert (e.bids[0], e.asks[0]) == (
                    (ticker.bid, ticker.bid_qty), (ticker.ask, ticker.ask_qty))
                checked += 1
    assert checked > 500
    assert {c for c, _ in prev_u} == set(CADENCES_MS)


def test_diff_depth_rebuilds_the_book() -> None:
    """Applying the @100ms diffs to the starting book gives every @100ms partial snapshot, and
    at a boundary the whole book."""
    run = simulate(duration_ms=20_000)
    run.events.extend(run.model.step(T0 + 20_000 + LAG_MS))  # up to the boundary at 20 s
    bids = dict(run.start.bids)
    asks = dict(run.start.asks)
    depth100 = [e for e in run.events if isinstance(e, BookDepth) and e.cadence_ms == 100]
    partial = {e.last_update_id: e for e in depth100 if not e.diff}
    compared = 0
    for e in depth100:
        if not e.diff:
            continue
        for side, levels in ((bids, e.bids), (asks, e.asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        snap = partial[e.last_update_id]
        assert tuple(sorted(bids.items(), reverse=True)[:20]) == snap.bids
        assert tuple(sorted(asks.items())[:20]) == snap.asks
        compared += 1
    assert compared >= 195
    final = run.model.snapshot()
    assert tuple(sorted(bids.items(), reverse=True)) == final.bids
    assert tuple(sorted(asks.items())) == final.asks


# -- rates and distributions -------------------------------------------------------------------


def test_message_rate_is_as_configured() -> None:
    market = Market(("BTCUSDT", "ETHUSDT"), rate=300, seed=5)
    market.step(T0)
    counts: Counter[str] = Counter()
    for now in range(T0 + 10, T0 + MINUTE_MS + 1, 10):
        for e in market.step(now):
            if isinstance(e, BookDepth):
                if e.cadence_ms == 100 and not e.diff:
                    counts["depth"] += 1
            else:
                counts[type(e).__name__] += 1
    per_second = {k: v / 60 for k, v in counts.items()}
    assert 300 * 0.85 < sum(per_second.values()) < 300 * 1.15
    assert 19 < per_second["depth"] <= 20  # ≤ 10/s per symbol
    assert 2 < per_second["BookTicker"] / per_second["AggTrade"] < 3.2  # bookTicker the bulk


def test_rate_scales() -> None:
    run = simulate(rate=1500, duration_ms=10_000)
    n = sum(1 for e in run.events
            if not isinstance(e, BookDepth) or (e.cadence_ms == 100 and not e.diff))
    assert 1500 * 10 * 0.85 < n < 1500 * 10 * 1.15


def test_arrivals_are_clustered(btc_minute: Run) -> None:
    """Trades per second are over-dispersed (a Poisson process gives variance ≈ mean)."""
    per_second = Counter(t.trade_ms // 1000 for t in of_type(btc_minute.events, AggTrade))
    counts = [per_second.get(s, 0) for s in range(min(per_second) + 1, max(per_second))]
    assert statistics.variance(counts) > 1.8 * statistics.mean(counts)
    assert max(counts) > 1.6 * statistics.mean(counts)


def test_trade_sizes_are_heavy_tailed() -> None:
    run = simulate(rate=3000, duration_ms=20_000)
    trades = of_type(run.events, AggTrade)
    # a market order sweeping several levels prints several aggTrades with the same T and side
    orders: list[float] = []
    key = None
    for t in trades:
        k = (t.trade_ms, t.buyer_maker)
        if k == key:
            orders[-1] += t.qty / 1000
        else:
            orders.append(t.qty / 1000)
        key = k
    assert 0.005 < statistics.median(orders) < 0.02  # lognormal body, median ≈ 0.01 BTC
    tail = [q for q in orders if q >= 0.5]
    assert 0.01 < len(tail) / len(orders) < 0.06
    hill = len(tail) / sum(math.log(q / 0.5) for q in tail)  # Pareto index of the tail
    assert 1.3 < hill < 2.2
    assert max(orders) > 5


# -- symbol specs --------------------------------------------------------------------------------


def test_symbol_specs() -> None:
    btc, eth = spec_for("BTCUSDT"), spec_for("ETHUSDT")
    assert (btc.tick, btc.lot, btc.start_price) == (0.1, 0.001, 100_000.0)
    assert (eth.tick, eth.lot, eth.start_price) == (0.01, 0.001, 3500.0)
    other = spec_for("SOLUSDT")
    assert other == spec_for("SOLUSDT")
    assert 0.001 <= other.start_price < 10_000
    assert other.start_ticks >= 1000  # at least ~4 significant digits of tick
    assert SymbolWire(btc).price(1_000_125) == "100012.50"
    assert SymbolWire(btc).qty(25) == "0.025"
