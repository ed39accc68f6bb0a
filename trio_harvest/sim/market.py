"""The seeded market model: one book per symbol, trades that hit it, clustered arrivals.

Owns how the simulated market evolves and which events it emits (aggTrade, bookTicker, partial
and diff depth at 100/250/500 ms cadences), with consistent ids: aggregate ids +1 per aggregate,
raw trade ids contiguous, book update ids increasing with one ``pu`` chain per cadence. It is pure
and deterministic: time comes in as ``now_ms`` arguments, randomness from one
``random.Random`` per symbol seeded from (seed, symbol). It never reads a clock, never does I/O,
never imports trio, and never formats anything for the wire. Its numbers (book shape, sizes,
clustering, message mix, the default per-symbol rate) are in ``calibration.py``.

Event generation is in continuous model time, in strict time order, up to ``now_ms - LAG_MS``
(so that ``T <= E <= now_ms``): the same seed and the same ``now_ms`` sequence give identical
events, and so does any other sequence of steps reaching the same times.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable

from . import calibration as cal
from .book import ASK, BID, Book, BookSide
from .events import AggTrade, BookDepth, BookSnapshot, BookTicker, Event, Level
from .specs import SymbolSpec, spec_for
from .tape import DEFAULT_CAPACITY, TradeTape

CADENCES_MS = (100, 250, 500)  # depth streams: @100ms, (no suffix) 250 ms, @500ms
TOP_LEVELS = 20  # partial depth carries the top 20; the wire cuts it to 5 or 10
LAG_MS = 5  # the model runs this far behind now_ms, so latency never puts E in the future
MAX_LATENCY_MS = 4  # E - T is 1..MAX_LATENCY_MS

class _Chain:
    """One cadence's depth window: update ids and changed levels since the last message."""

    __slots__ = ("dirty", "first_u", "prev_u")

    def __init__(self, u: int) -> None:
        self.prev_u = u
        self.first_u: int | None = None
        self.dirty: dict[tuple[int, int], None] = {}


class SymbolMarket:
    """The market of one symbol. Call ``step(now_ms)`` with non-decreasing times."""

    def __init__(
        self,
        spec: SymbolSpec,
        *,
        seed: int,
        rate: float,
        tape_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.rates = cal.rates_for(rate)
        self.book = Book()
        self.tape = TradeTape(spec.symbol, tape_capacity)
        rng = self._rng = random.Random(f"trio_harvest.sim/{seed}/{spec.symbol}")
        total = self.rates.total / 1000.0  # events per ms
        self._p_trade = self.rates.trades / self.rates.total
        self._p_top = self.rates.top / self.rates.total
        self._mu = total * (1 - cal.BRANCHING)
        self._jump = cal.BRANCHING / cal.DECAY_MS
        self._lots_per_btc = spec.lots_per_btc
        self._agg_id = rng.randrange(10**8, 10**9)
        self._raw_id = rng.randrange(10**9, 5 * 10**9)
        self._update_id = rng.randrange(10**11, 10**12)
        self._init_book()
        self._chains = {c: _Chain(self._update_id) for c in CADENCES_MS}
        self._top = self._current_top()
        # clock state; None until the first step
        self._t: float | None = None  # time of the last Hawkes point (accepted or not)
        self._excite = 0.0
        self._candidate: tuple[float, float] | None = None  # (time, intensity bound)
        self._refill_at: float | None = None
        self._depleted = ASK
        self._next_boundary: dict[int, int] = {}
        self._last_trade_ms = 0
        self._last_event_ms = 0
        self._out: list[Event] = []

    # -- public -----------------------------------------------------------------------------

    def step(self, now_ms: int) -> list[Event]:
        """Advance the market to ``now_ms`` and return the events since the previous step, in
        time order. The first call only sets the clock and returns nothing."""
        horizon = now_ms - LAG_MS
        if self._t is None:
            self._t = float(horizon)
            self._last_trade_ms = self._last_event_ms = horizon
            self._next_boundary = {c: (horizon // c + 1) * c for c in CADENCES_MS}
            return []
        out: list[Event] = []
        self._out = out
        boundaries = self._next_boundary
        inf = math.inf
        while True:
            if self._candidate is None:
                lam = self._mu + self._excite
                self._candidate = (self._t + self._rng.expovariate(lam), lam)
            cand = self._candidate[0]
            refill = self._refill_at if self._refill_at is not None else inf
            boundary = min(boundaries.values())
            if boundary <= cand and boundary <= refill:
                if boundary > horizon:
                    break
                for c in CADENCES_MS:
                    if boundaries[c] == boundary:
                        self._emit_depth(c, boundary)
                        boundaries[c] = boundary + c
            elif refill <= cand:
                if refill > horizon:
                    break
                self._refill(refill)
            else:
                if cand > horizon:
                    break
                self._hawkes_point(cand)
        return out

    def skip_to(self, now_ms: int) -> None:
        """Move the clock to ``now_ms`` without producing events, as if the market had been
        quiet (used when the wall clock jumps, e.g. after a suspend). Ids simply continue."""
        horizon = now_ms - LAG_MS
        if self._t is None or horizon <= self._t:
            return
        self._t = float(horizon)
        self._excite = 0.0
        self._candidate = None
        if self._refill_at is not None:
            self._refill_at = float(horizon)
        self._next_boundary = {c: (horizon // c + 1) * c for c in CADENCES_MS}

    def tape_since(self, from_id: int, limit: int = 500) -> list[AggTrade]:
        return self.tape.since(from_id, limit)

    def snapshot(self, limit: int = 1000) -> BookSnapshot:
        """The book as of the last event (what ``GET /fapi/v1/depth`` would return)."""
        return BookSnapshot(self.symbol, self._update_id, self.book.bids.top(limit),
                            self.book.asks.top(limit), self._last_trade_ms)

    @property
    def last_agg_id(self) -> int:
        """The id of the newest aggregate trade (the next one is this + 1)."""
        return self._agg_id - 1

    # -- the Hawkes clock -------------------------------------------------------------------

    def _hawkes_point(self, s: float) -> None:
        """Ogata thinning: a candidate at ``s`` is an event with probability λ(s)/λ*."""
        assert self._t is not None and self._candidate is not None
        bound = self._candidate[1]
        self._candidate = None
        excite = self._excite * math.exp((self._t - s) / cal.DECAY_MS)
        self._t = s
        self._excite = excite
        rng = self._rng
        if rng.random() * bound > self._mu + excite:
            return
        self._excite = excite + self._jump
        r = rng.random()
        if r < self._p_trade:
            self._trade(s)
        elif r < self._p_trade + self._p_top:
            self._top_event(s)
        else:
            self._deep_event(s)

    def _stamp(self, t: float) -> tuple[int, int]:
        trade_ms = int(t)
        event_ms = max(trade_ms + 1 + int(self._rng.random() * MAX_LATENCY_MS),
                       self._last_event_ms)
        self._last_event_ms = event_ms
        return trade_ms, event_ms

    # -- what happens to the book -----------------------------------------------------------

    def _trade(self, t: float) -> None:
        rng = self._rng
        trade_ms, event_ms = self._stamp(t)
        buy = rng.random() < 0.5
        hit = ASK if buy else BID
        side = self.book.sides[hit]
        lots = self._trade_lots()
        while lots > 0 and len(side) > 1:
            price = side.best
            avail = side.size(price)
            fill = min(lots, avail)
            makers = 1 + int(rng.expovariate(1.0) * min(30.0, 0.5 + 5 * fill / self._lots_per_btc))
            first = self._raw_id + 1
            self._raw_id += makers
            agg = AggTrade(self.symbol, self._agg_id, price, fill, first, self._raw_id,
                           trade_ms, event_ms, not buy)
            self._agg_id += 1
            self._out.append(agg)
            self.tape.append(agg)
            self._update(hit, price, avail - fill, trade_ms, event_ms)
            lots -= fill
            if fill == avail:
                self._depleted = hit
        self._after_top_change(t)
        self._maintain(hit, trade_ms, event_ms)

    def _top_event(self, t: float) -> None:
        rng = self._rng
        hit = BID if rng.random() < 0.5 else ASK
        side = self.book.sides[hit]
        price = side.best
        size = side.size(price)
        r = rng.random()
        if r < 0.5:
            new = size + self._level_lots(cal.TOP_ADD_MEDIAN_BTC)
        elif r < 0.95 or len(side) <= 1:
            new = max(1, size - max(1, int(size * rng.uniform(0.05, 0.4))))
        else:
            new = 0
        if new == size:
            return
        trade_ms, event_ms = self._stamp(t)
        self._update(hit, price, new, trade_ms, event_ms)
        if new == 0:
            self._depleted = hit
            self._after_top_change(t)
            self._maintain(hit, trade_ms, event_ms)

    def _deep_event(self, t: float) -> None:
        rng = self._rng
        hit = BID if rng.random() < 0.5 else ASK
        side = self.book.sides[hit]
        distance = 1 + int(rng.expovariate(1.0 / cal.DEEP_MEAN_TICKS))
        price = side.outward(side.best, distance)
        if side.beyond(price):
            return
        size = side.size(price)
        r = rng.random()
        if size == 0:
            new = self._level_lots(cal.LEVEL_MEDIAN_BTC)
        elif r < 0.4:
            new = size + self._level_lots(cal.REFILL_MEDIAN_BTC)
        elif r < 0.85:
            new = max(1, size - max(1, int(size * rng.uniform(0.05, 0.6))))
        else:
            new = 0
        if new == size:
            return
        trade_ms, event_ms = self._stamp(t)
        self._update(hit, price, new, trade_ms, event_ms)
        self._maintain(hit, trade_ms, event_ms)

    def _after_top_change(self, t: float) -> None:
        if self._refill_at is None and self.book.spread() > 1:
            self._refill_at = t + self._rng.expovariate(1.0 / cal.REFILL_MEAN_MS)

    def _refill(self, t: float) -> None:
        """Close a spread wider than one tick: either the other side follows the price (it
        moves) or the emptied side comes back (it does not)."""
        self._refill_at = None
        book = self.book
        if book.spread() <= 1:
            return
        rng = self._rng
        trade_ms, event_ms = self._stamp(t)
        follow = rng.random() < cal.FOLLOW_P
        improve = (1 - self._depleted) if follow else self._depleted
        price = book.asks.best - 1 if improve == BID else book.bids.best + 1
        self._update(improve, price, self._level_lots(cal.REFILL_MEDIAN_BTC), trade_ms, event_ms)
        self._maintain(improve, trade_ms, event_ms)

    def _maintain(self, hit: int, trade_ms: int, event_ms: int) -> None:
        """Keep between MIN_LEVELS and MAX_LEVELS levels on a side, at its far end."""
        side = self.book.sides[hit]
        while len(side) < cal.MIN_LEVELS:
            gap = 1 if self._rng.random() < 0.85 else 2
            self._update(hit, side.outward(side.worst, gap),
                         self._level_lots(cal.LEVEL_MEDIAN_BTC), trade_ms, event_ms)
        while len(side) > cal.MAX_LEVELS:
            self._update(hit, side.worst, 0, trade_ms, event_ms)

    def _update(self, hit: int, price: int, lots: int, trade_ms: int, event_ms: int) -> None:
        """Apply one book update: new update id, depth windows, bookTicker on a top change."""
        side = self.book.sides[hit]
        at_top = price == side.best
        side.set(price, lots)
        rng = self._rng
        self._update_id += 1 if rng.random() < 0.7 else rng.randrange(2, 6)
        u = self._update_id
        key = (hit, price)
        for chain in self._chains.values():
            if chain.first_u is None:
                chain.first_u = u
            chain.dirty[key] = None
        self._last_trade_ms = trade_ms
        if not (at_top or price == side.best):
            return  # behind the best: the top is unchanged
        top = self._current_top()
        if top != self._top:
            self._top = top
            self._out.append(BookTicker(self.symbol, u, top[0], top[1], top[2], top[3],
                                        trade_ms, event_ms))

    def _current_top(self) -> tuple[int, int, int, int]:
        bids, asks = self.book.bids, self.book.asks
        bid, ask = bids.best, asks.best
        return bid, bids.sizes[bid], ask, asks.sizes[ask]

    # -- depth -------------------------------------------------------------------------------

    def _emit_depth(self, cadence: int, boundary: int) -> None:
        chain = self._chains[cadence]
        if chain.first_u is None:
            return  # nothing changed: no message, like Binance
        u = self._update_id
        event_ms = boundary + 1 + int(self._rng.random() * MAX_LATENCY_MS)
        bids, asks = self.book.bids, self.book.asks
        self._out.append(BookDepth(self.symbol, cadence, False, chain.first_u, u, chain.prev_u,
                                   bids.top(TOP_LEVELS), asks.top(TOP_LEVELS),
                                   self._last_trade_ms, event_ms))
        changed_bids = _levels(bids, (p for s, p in chain.dirty if s == BID), reverse=True)
        changed_asks = _levels(asks, (p for s, p in chain.dirty if s == ASK), reverse=False)
        self._out.append(BookDepth(self.symbol, cadence, True, chain.first_u, u, chain.prev_u,
                                   changed_bids, changed_asks, self._last_trade_ms, event_ms))
        chain.prev_u = u
        chain.first_u = None
        chain.dirty = {}

    # -- sizes and the initial book ------------------------------------------------------------

    def _trade_lots(self) -> int:
        rng = self._rng
        if rng.random() < cal.TAIL_P:
            btc = cal.TAIL_MIN_BTC * rng.paretovariate(cal.TAIL_ALPHA)
        else:
            btc = rng.lognormvariate(math.log(cal.TRADE_MEDIAN_BTC), cal.TRADE_SIGMA)
        return max(1, round(min(btc, cal.MAX_TRADE_BTC) * self._lots_per_btc))

    def _level_lots(self, median_btc: float) -> int:
        btc = self._rng.lognormvariate(math.log(median_btc), cal.LEVEL_SIGMA)
        return max(1, round(btc * self._lots_per_btc))

    def _init_book(self) -> None:
        start = self.spec.start_ticks
        for hit, best in ((BID, start), (ASK, start + 1)):
            side = self.book.sides[hit]
            price = best
            for _ in range(cal.INITIAL_LEVELS):
                side.set(price, self._level_lots(cal.LEVEL_MEDIAN_BTC))
                price = side.outward(price, 1 if self._rng.random() < 0.85 else 2)


def _levels(side: BookSide, prices: Iterable[int], *, reverse: bool) -> tuple[Level, ...]:
    return tuple((p, side.size(p)) for p in sorted(prices, reverse=reverse))


class Market:
    """Every symbol's model, stepped together. ``rate`` (total messages/s) is split evenly across
    symbols; None gives every symbol a realistic cadence, whatever their number
    (``rates.default_rate``)."""

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        rate: float | None,
        seed: int,
        tape_capacity: int = DEFAULT_CAPACITY,
        spec: Callable[[str], SymbolSpec] = spec_for,
    ) -> None:
        names = tuple(symbols)
        if not names:
            raise ValueError("at least one symbol is needed")
        per_symbol = (cal.default_rate(len(names)) if rate is None else rate) / len(names)
        self._seed, self._per_symbol, self._tape_capacity = seed, per_symbol, tape_capacity
        self._spec = spec  # the venue's grids of a symbol (sim/venue.py)
        self.symbols: dict[str, SymbolMarket] = {
            s: SymbolMarket(spec(s), seed=seed, rate=per_symbol, tape_capacity=tape_capacity)
            for s in names
        }
        self.closed: dict[str, SymbolMarket] = {}  # delisted: no events, REST keeps their tape
        # when a symbol was listed / delisted while running (exchangeInfo's onboardDate and
        # deliveryDate); the symbols listed at start have neither
        self.listed_ms: dict[str, int] = {}
        self.delisted_ms: dict[str, int] = {}

    def list_symbol(self, symbol: str, now_ms: int = 0) -> SymbolMarket:
        """A new listing, at the per-symbol rate of the others, trading from its first step."""
        model = SymbolMarket(self._spec(symbol), seed=self._seed, rate=self._per_symbol,
                             tape_capacity=self._tape_capacity)
        self.symbols[symbol] = model
        if now_ms:
            self.listed_ms[symbol] = now_ms
        return model

    def delist(self, symbol: str, now_ms: int = 0) -> None:
        """``symbol`` stops trading: it makes no more events (its streams go silent)."""
        self.closed[symbol] = self.symbols.pop(symbol)
        if now_ms:
            self.delisted_ms[symbol] = now_ms

    def skip_to(self, now_ms: int) -> None:
        for model in self.symbols.values():
            model.skip_to(now_ms)

    def step(self, now_ms: int) -> list[Event]:
        out: list[Event] = []
        for model in self.symbols.values():
            out.extend(model.step(now_ms))
        return out

    def __getitem__(self, symbol: str) -> SymbolMarket:
        model = self.symbols.get(symbol)
        return model if model is not None else self.closed[symbol]

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.symbols or symbol in self.closed
