"""The simulated futures contract around each symbol's market: mark and index price, funding,
open interest and liquidation bursts.

Owns, per symbol: a mark price once a second near the last traded price (a few basis points
off), an index a basis point or so from the mark, a funding rate that drifts and settles on the
venue's schedule (every 8 h at 00:00, 08:00 and 16:00 UTC; a COIN-M quarterly has none), open
interest that moves with each trade (opened or closed, never below a floor), and liquidation
bursts: a burst starts every ``BURST_MEAN_S`` seconds on average (the first within the first
``FIRST_BURST_S``), lasts a few seconds and, as Binance's ``forceOrder`` stream, sends at most
one liquidation per symbol per second. Pure and deterministic: time comes in as ``now_ms``,
trades as the market's events, randomness from one ``random.Random`` per symbol seeded from
(seed, symbol). Never formats anything for the wire, never does I/O.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from .events import AggTrade, Event, ForceOrder, MarkPrice
from .market import LAG_MS
from .specs import SymbolSpec

FUNDING_PERIOD_MS = 8 * 3_600_000  # Binance funding: 00:00, 08:00, 16:00 UTC
MARK_EVERY_MS = 1000  # markPrice@1s
BURST_MEAN_S = 30.0  # a liquidation burst every 30 s on average...
FIRST_BURST_S = 3.0  # ...the first one within the first 3 s (a short run sees one)
BURST_SECONDS = (2, 6)  # a burst lasts this many seconds, one liquidation each
DEFAULT_RATE = 0.0001  # 0.01 % per period, Binance's usual rate
OI_BTC = 5_000.0  # open interest to start from, in BTC of notional
OI_FLOOR = 0.5  # open interest never falls below this share of the start


def next_funding_ms(now_ms: int) -> int:
    """The next funding time strictly after ``now_ms``: a multiple of 8 h since the epoch."""
    return (now_ms // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS


class SymbolDerivs:
    """One symbol's contract. Call ``step(now_ms, trades)`` with non-decreasing times."""

    def __init__(self, spec: SymbolSpec, *, seed: int, funding: bool) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.funding = funding  # a perpetual (a delivery contract settles, never funds)
        self._rng = random.Random(f"trio_harvest.sim.derivs/{seed}/{spec.symbol}")
        self.last_ticks = spec.start_ticks
        self.open_interest = max(1, int(OI_BTC * spec.lots_per_btc))  # lots
        self._oi_floor = max(1, int(self.open_interest * OI_FLOOR))
        self.rate = DEFAULT_RATE
        self.next_funding = 0
        self.settlements = 0  # funding periods settled while running
        self._next_mark: int | None = None
        self._next_burst_s: int | None = None
        self._burst_left = 0
        self._burst_buy = False

    def step(self, now_ms: int, trades: Iterable[AggTrade]) -> list[Event]:
        horizon = now_ms - LAG_MS
        rng = self._rng
        for t in trades:
            self.last_ticks = t.price
            self.open_interest += t.qty if rng.random() < 0.5 else -t.qty
            self.open_interest = max(self._oi_floor, self.open_interest)
        if self._next_mark is None:  # the first step sets the clock
            self._next_mark = (horizon // MARK_EVERY_MS + 1) * MARK_EVERY_MS
            self.next_funding = next_funding_ms(horizon)
            self._next_burst_s = horizon // 1000 + 1 + int(rng.random() * FIRST_BURST_S)
            return []
        out: list[Event] = []
        while self._next_mark <= horizon:
            second = self._next_mark
            self._next_mark += MARK_EVERY_MS
            if second >= self.next_funding:  # the period settles: a new rate from now on
                self.settlements += 1
                self.next_funding = next_funding_ms(second)
                self.rate = max(-0.003, min(0.003, self.rate + rng.gauss(0.0, 0.00005)))
            out.append(self._mark(second))
            liq = self._liquidation(second)
            if liq is not None:
                out.append(liq)
        return out

    def _mark(self, event_ms: int) -> MarkPrice:
        rng = self._rng
        price = self.last_ticks * self.spec.tick
        mark = price * (1 + rng.gauss(0.0, 0.0002))
        index = mark * (1 - rng.gauss(0.0001, 0.0001))
        self.rate += rng.gauss(0.0, 0.000001)  # the premium moves the rate a little
        return MarkPrice(self.symbol, event_ms, mark, index, index,
                         self.rate if self.funding else None,
                         self.next_funding if self.funding else 0, self.open_interest)

    def _liquidation(self, event_ms: int) -> ForceOrder | None:
        """At most one per second: during a burst, one liquidation this second."""
        rng = self._rng
        second = event_ms // 1000
        assert self._next_burst_s is not None
        if not self._burst_left and second >= self._next_burst_s:
            self._burst_left = rng.randint(*BURST_SECONDS)
            self._burst_buy = rng.random() < 0.5  # a cascade runs one way
            self._next_burst_s = second + self._burst_left + 1 + int(
                rng.expovariate(1.0 / BURST_MEAN_S))
        if not self._burst_left:
            return None
        self._burst_left -= 1
        away = 1 + int(rng.expovariate(1.0 / 20))  # the order crosses the book by some ticks
        price = self.last_ticks + away if self._burst_buy else max(1, self.last_ticks - away)
        lots = max(1, int(rng.lognormvariate(0.0, 1.0) * 0.2 * self.spec.lots_per_btc))
        self.open_interest = max(self._oi_floor, self.open_interest - lots)
        trade_ms = event_ms - 1 - int(rng.random() * 3)
        return ForceOrder(self.symbol, self._burst_buy, price, self.last_ticks, lots,
                          trade_ms, event_ms)


class Derivatives:
    """Every symbol's contract, stepped with the market. ``funding(symbol)`` says whether a
    symbol is a perpetual."""

    def __init__(self, seed: int, funding: bool | None = None) -> None:
        self.seed = seed
        self._funding = funding
        self.symbols: dict[str, SymbolDerivs] = {}

    def contract(self, spec: SymbolSpec) -> SymbolDerivs:
        model = self.symbols.get(spec.symbol)
        if model is None:
            perpetual = not spec.contract_usd or spec.symbol.endswith("_PERP")
            model = self.symbols[spec.symbol] = SymbolDerivs(
                spec, seed=self.seed, funding=perpetual if self._funding is None else self._funding)
        return model

    def step(self, now_ms: int, specs: Iterable[SymbolSpec], events: list[Event]) -> list[Event]:
        """The contracts' events up to ``now_ms``, given the market's ``events`` of this step."""
        trades: dict[str, list[AggTrade]] = {}
        for ev in events:
            if type(ev) is AggTrade:
                trades.setdefault(ev.symbol, []).append(ev)
        out: list[Event] = []
        for spec in specs:
            out += self.contract(spec).step(now_ms, trades.get(spec.symbol, ()))
        return out

    def skip_to(self, now_ms: int) -> None:
        """The clock jumped (a suspend): no mark prices for the time skipped."""
        for model in self.symbols.values():
            if model._next_mark is not None and model._next_mark < now_ms - LAG_MS:
                model._next_mark = ((now_ms - LAG_MS) // MARK_EVERY_MS + 1) * MARK_EVERY_MS

    def open_interest(self, symbol: str) -> int | None:
        """Lots (contracts on COIN-M) open now; None for a symbol without a contract yet."""
        model = self.symbols.get(symbol)
        return None if model is None else model.open_interest
