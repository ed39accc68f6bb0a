"""The simulator's futures contract: a mark price once a second within basis points of the last
trade, funding that settles on Binance's 8 h schedule (00/08/16 UTC), open interest that moves
with trades, liquidation bursts at most one per symbol per second; in each futures venue's wire
(the harvester's own decoders read them) and the REST ``openInterest`` answer."""

from __future__ import annotations

import json

from trio_harvest import venues
from trio_harvest.sim.derivs import FUNDING_PERIOD_MS, OI_BTC, Derivatives, next_funding_ms
from trio_harvest.sim.events import AggTrade, ForceOrder, MarkPrice
from trio_harvest.sim.market import Market
from trio_harvest.sim.rest import RestApi
from trio_harvest.sim.venue import COINM, USDM, profile
from trio_harvest.sim.wire import SymbolWire, stream_kind
from trio_harvest.venues.base import derivatives_of

T0 = 1_796_601_600_000 - 20_000  # 20 s before a funding time (2026-12-07 00:00 UTC)


def run(symbols: tuple[str, ...], venue: str, seconds: int, start: int = T0
        ) -> tuple[Market, Derivatives, list[object], list[object]]:
    prof = profile(venue)
    market = Market(symbols, rate=200.0, seed=3, spec=prof.spec)
    derivs = Derivatives(3)
    events: list[object] = []
    trades: list[object] = []
    for now in range(start, start + seconds * 1000, 10):
        evs = market.step(now)
        trades += [e for e in evs if isinstance(e, AggTrade)]
        events += derivs.step(now, (m.spec for m in market.symbols.values()), evs)
    return market, derivs, events, trades


def test_next_funding_is_on_the_8h_grid() -> None:
    assert next_funding_ms(T0) == T0 + 20_000
    assert next_funding_ms(T0 + 20_000) == T0 + 20_000 + FUNDING_PERIOD_MS
    assert (T0 + 20_000) % FUNDING_PERIOD_MS == 0


def test_mark_near_trades_funding_settles_oi_moves_liquidations_capped() -> None:
    market, derivs, events, trades = run(("BTCUSDT",), USDM, 40)
    marks = [e for e in events if isinstance(e, MarkPrice)]
    assert 38 <= len(marks) <= 40
    assert all(m.event_ms % 1000 == 0 for m in marks)
    spec = market["BTCUSDT"].spec
    for m in marks:  # within 1 % of the last trade before it (before any: the start price)
        before_it = [t.price for t in trades if t.trade_ms <= m.event_ms]  # type: ignore[attr-defined]
        last = before_it[-1] if before_it else spec.start_ticks
        assert abs(m.mark / (last * spec.tick) - 1) < 0.01
    before = [m for m in marks if m.event_ms < T0 + 20_000]
    after = [m for m in marks if m.event_ms >= T0 + 20_000]
    assert {m.next_funding_ms for m in before} == {T0 + 20_000}
    assert {m.next_funding_ms for m in after} == {T0 + 20_000 + FUNDING_PERIOD_MS}
    assert derivs.symbols["BTCUSDT"].settlements == 1
    liqs = [e for e in events if isinstance(e, ForceOrder)]
    assert liqs  # the first burst comes within the first seconds
    seconds = [q.event_ms // 1000 for q in liqs]
    assert len(seconds) == len(set(seconds))  # at most one a second per symbol
    assert derivs.open_interest("BTCUSDT") != int(OI_BTC * spec.lots_per_btc)  # moved
    assert len(trades) > 100


def test_a_coinm_quarterly_has_no_funding() -> None:
    _, _, events, _ = run(("BTCUSD_PERP", "BTCUSD_261225"), COINM, 3)
    marks = {e.symbol: e for e in events if isinstance(e, MarkPrice)}
    assert marks["BTCUSD_PERP"].funding_rate is not None
    assert marks["BTCUSD_261225"].funding_rate is None
    assert marks["BTCUSD_261225"].next_funding_ms == 0


def test_the_wire_of_each_futures_venue_decodes_with_the_harvesters_decoder() -> None:
    for venue, symbols in ((USDM, ("BTCUSDT",)), (COINM, ("BTCUSD_PERP", "BTCUSD_261225"))):
        market, _, events, _ = run(symbols, venue, 12)
        adapter = venues.get(venue)
        kinds = set()
        for ev in events:
            wire = SymbolWire(market[ev.symbol].spec, profile(venue))  # type: ignore[attr-defined]
            ((name, _, kind),) = wire.targets(ev)  # type: ignore[arg-type]
            assert stream_kind(name) == kind
            data = adapter.decode(json.dumps({"stream": name, "data": json.loads(
                wire.encode(ev))})).data  # type: ignore[arg-type]
            assert data.symbol == ev.symbol  # type: ignore[attr-defined]
            kinds.add(kind)
            if isinstance(ev, MarkPrice):
                assert abs(data.mark_price - ev.mark) < 1e-6
                assert data.next_funding_ms == (ev.next_funding_ms or None)
            elif isinstance(ev, ForceOrder):
                assert data.side == ("buy" if ev.buy else "sell") and data.qty > 0
        assert kinds == {"markPrice", "forceOrder"}, venue


def test_rest_open_interest_answers_in_the_venues_shape() -> None:
    for venue, symbol in ((USDM, "BTCUSDT"), (COINM, "BTCUSD_PERP")):
        market, derivs, _, _ = run((symbol,), venue, 2)
        api = RestApi(market, lambda: T0 + 5_000, venue=profile(venue), derivs=derivs)
        side = derivatives_of(venues.get(venue))
        assert side is not None
        req = side.open_interest_request(symbol)
        reply = api.handle("GET", f"{req.path}?symbol={symbol}")
        assert reply.status == 200
        oi = side.decode_open_interest(reply.body, symbol)
        assert oi.open_interest is not None and oi.open_interest > 0
        assert oi.event_ms == T0 + 5_000
        assert api.handle("GET", f"{req.path}?symbol=NOPE").status == 400
    spot = RestApi(Market(("BTCUSDT",), rate=10.0, seed=1), lambda: T0,
                   venue=profile("binance-spot"))
    assert spot.handle("GET", "/api/v3/openInterest?symbol=BTCUSDT").status == 404
