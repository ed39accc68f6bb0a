"""A futures contract's state for the per-second feature table: the last mark price, funding
rate and open interest of each second (forward-filled within a bounded age), and the number and
notional of the liquidations in it.

Owns the small per-symbol buffers of ``derivatives`` and ``liquidations`` rows the router hands
to the signal engine (about one a second; liquidations are rare) and the five feature columns
made from them. A value older than its bound at a second's end is null, never a stale copy
carried for ever: ``MARK_MAX_AGE_MS`` for the mark price (Binance sends it every second, OKX on
change), ``FUNDING_MAX_AGE_MS`` for the funding rate (OKX sends it every 30-90 s),
``OI_MAX_AGE_MS`` for open interest (polled, by default once a minute).
A row of the source that set a value, which does not carry that value, confirms it at the row's
time: a source that sends only what changed (Bybit's merged tickers) keeps an unchanged funding
rate as fresh as its last message; a source that sends every value each time is unaffected.
Memory is bounded: ``forget`` drops what no unemitted second needs. Pure: no trio, no I/O.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from ..kinds import DERIVATIVES, DERIVATIVES_SCHEMA, LIQUIDATIONS_SCHEMA, Row

MARK_MAX_AGE_MS = 30_000  # mark price: stale after 30 s without an update
FUNDING_MAX_AGE_MS = 120_000  # funding rate: OKX's longest interval (90 s) and a margin
OI_MAX_AGE_MS = 180_000  # open interest: three default polling intervals
MAX_ROWS = 10_000  # per buffer: a symbol whose seconds never close cannot grow without bound

_MARK = DERIVATIVES_SCHEMA.index("mark_price")
_FUNDING = DERIVATIVES_SCHEMA.index("funding_rate")
_OI = DERIVATIVES_SCHEMA.index("open_interest")
_SOURCE = DERIVATIVES_SCHEMA.index("source")
_PRICE = LIQUIDATIONS_SCHEMA.index("price")
_QTY = LIQUIDATIONS_SCHEMA.index("qty")

Columns = tuple[float | None, float | None, float | None, int, float]  # the five feature values


class _Series:
    """One value's updates, ordered by time; the last one before a second's end is its value
    if it is recent enough."""

    __slots__ = ("max_age", "source", "ts", "values")

    def __init__(self, max_age: int) -> None:
        self.max_age = max_age
        self.source = ""  # the source of the latest value
        self.ts: list[int] = []
        self.values: list[float] = []

    def add(self, ts: int, value: float) -> None:
        if self.ts and ts < self.ts[-1]:  # late (a REST answer, a reconnect): keep the order
            i = bisect_left(self.ts, ts)
            self.ts.insert(i, ts)
            self.values.insert(i, value)
        else:
            self.ts.append(ts)
            self.values.append(value)
        if len(self.ts) > MAX_ROWS:
            del self.ts[0], self.values[0]

    def at(self, end_ms: int) -> float | None:
        i = bisect_left(self.ts, end_ms) - 1
        if i < 0 or end_ms - self.ts[i] > self.max_age:
            return None
        return self.values[i]

    def forget(self, before_ms: int) -> None:
        """Drop updates before ``before_ms`` except the last of them (it may still fill)."""
        i = bisect_left(self.ts, before_ms) - 1
        if i > 0:
            del self.ts[:i], self.values[:i]


class MarketState:
    """One symbol's contract state, as the feature table reads it."""

    __slots__ = ("_liq", "funding", "mark", "oi")

    def __init__(self) -> None:
        self.mark = _Series(MARK_MAX_AGE_MS)
        self.funding = _Series(FUNDING_MAX_AGE_MS)
        self.oi = _Series(OI_MAX_AGE_MS)
        self._liq: list[tuple[int, float]] = []  # (ts_ms, notional), ordered

    def add(self, kind: str, row: Row) -> None:
        """A ``derivatives`` or ``liquidations`` row (kinds schemas)."""
        ts = row[0]
        if kind == DERIVATIVES:
            source = row[_SOURCE]
            for series, i in ((self.mark, _MARK), (self.funding, _FUNDING), (self.oi, _OI)):
                value = row[i]
                if value is not None:
                    series.add(ts, value)
                    series.source = source
                elif series.source == source and series.ts and ts > series.ts[-1]:
                    series.add(ts, series.values[-1])  # unchanged, confirmed by its source
            return
        insort(self._liq, (ts, row[_PRICE] * row[_QTY]))
        if len(self._liq) > MAX_ROWS:
            del self._liq[0]

    def columns(self, sec: int) -> Columns:
        """mark_price, funding_rate, open_interest, liq_count, liq_notional of second ``sec``."""
        end = (sec + 1) * 1000
        liq = self._liq
        count = 0
        notional: float = 0  # most seconds have no liquidation (spot never): the sum of none
        if liq:
            i, j = bisect_left(liq, (sec * 1000,)), bisect_left(liq, (end,))
            count, notional = j - i, sum(n for _, n in liq[i:j])
        mark, funding, oi = self.mark, self.funding, self.oi
        return (mark.at(end) if mark.ts else None, funding.at(end) if funding.ts else None,
                oi.at(end) if oi.ts else None, count, notional)

    def forget(self, before_ms: int) -> None:
        """Every second before ``before_ms`` has been emitted."""
        for series in (self.mark, self.funding, self.oi):
            if series.ts:
                series.forget(before_ms)
        if self._liq:
            i = bisect_left(self._liq, (before_ms,))
            if i:
                del self._liq[:i]

    def __len__(self) -> int:
        return len(self.mark.ts) + len(self.funding.ts) + len(self.oi.ts) + len(self._liq)

