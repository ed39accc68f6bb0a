"""The features tick's faster path writes exactly the rows of the earlier one: the same values
bit for bit (NaN and -0.0 included), in the same order, for many symbols on random tapes.

The earlier tick is kept below as the reference, as it was: ``aggregate_many`` stacking every
span's rows value by value into Python lists, ``feature_rows`` without the contract state (its
book arithmetic, unchanged, is the shared ``features.book_fields``), and the contract state's
columns appended to each row afterwards."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_harvest.kinds import (
    DERIVATIVES,
    EVENTS,
    FEATURES,
    FEATURES_SCHEMA,
    FUSION,
    LIQUIDATIONS,
    Row,
)
from trio_harvest.signals import SignalEngine, SignalParams
from trio_harvest.signals import features as F
from trio_harvest.signals.marketstate import MarketState
from trio_harvest.signals.tail import (
    L1_ASK,
    L1_ASK_SZ,
    L1_BID,
    L1_BID_SZ,
    ML_ASK5,
    ML_BID5,
    T_CVD,
    T_PRICE,
    TailWindow,
)
from trio_harvest.signals.task import emit_closed

LEVELS = 5
BASE = 1_700_000_000  # seconds
Out = list[tuple[str, Row]]
_LAST, _DELTA, _CVD, _OFI = (FEATURES_SCHEMA.index(c) for c in ("last", "delta", "cvd", "ofi_l1"))
Record = tuple[str, str, Row]  # kind, symbol, row

# -- the earlier tick, as it was -----------------------------------------------------------------


def old_aggregate_many(spans: list[F.Span]) -> list[dict[int, tuple[Any, ...]]]:
    keys: list[int] = []
    stacked: list[list[Any]] = [[] for _ in F._NAMES]
    for k, (tail, start_sec, end_sec) in enumerate(spans):
        cols = F._columns(tail, start_sec * 1000, end_sec * 1000)
        if cols is None:
            continue
        keys.extend([k] * len(cols[0]))
        for into, col in zip(stacked, cols, strict=True):
            into.extend(col)
    out: list[dict[int, tuple[Any, ...]]] = [{} for _ in spans]
    if not keys:
        return out
    df = pl.DataFrame([pl.Series("k", keys, dtype=pl.Int32),
                       *(pl.Series(n, c, dtype=pl.Int64 if n == "ts" else pl.Float64)
                         for n, c in zip(F._NAMES, stacked, strict=True))])
    for row in df.group_by("k", F._SECOND).agg(F._AGGS).iter_rows():
        out[row[0]][row[1]] = row[1:]
    return out


def old_feature_rows(symbol: str, tail: TailWindow, carry: F.Carry, start_sec: int,
                     end_sec: int, *, book_ticker: bool,
                     aggs: dict[int, tuple[Any, ...]] | None) -> list[Row]:
    if aggs is None:
        aggs = F.aggregate(tail, start_sec, end_sec)
    flags: defaultdict[int, set[str]] = defaultdict(set)
    for ts, flag in tail.flags_between(start_sec * 1000, end_sec * 1000):
        flags[ts // 1000].add(flag)
    t, l1, ml = tail.trades, tail.l1, tail.ml
    t_price, t_cvd = t.cols[T_PRICE], t.cols[T_CVD]
    l_bid, l_ask, l_bsz, l_asz = (l1.cols[k] for k in (L1_BID, L1_ASK, L1_BID_SZ, L1_ASK_SZ))
    m_bid5, m_ask5 = ml.cols[ML_BID5], ml.cols[ML_ASK5]
    c = carry
    rows: list[Row] = []
    for sec in range(start_sec, end_sec):
        end = (sec + 1) * 1000
        a = aggs.get(sec)
        if a is None:
            n_trades = n_l1 = n_ml = 0
            volume = notional = delta = ofi_l1 = ofi_ml = 0.0
        else:
            _, n_trades, volume, notional, delta, n_l1, ofi_l1, n_ml, ofi_ml = a
        i = bisect_left(t.ts, end) - 1
        if i >= 0:
            c.last, c.cvd = t_price[i], t_cvd[i]
        i = bisect_left(l1.ts, end) - 1
        if i >= 0:
            c.bid, c.ask, c.bid_sz, c.ask_sz = l_bid[i], l_ask[i], l_bsz[i], l_asz[i]
        i = bisect_left(ml.ts, end) - 1
        if i >= 0:
            c.bid5, c.ask5 = m_bid5[i], m_ask5[i]
        vwap = notional / volume if n_trades and volume > 0 else None
        bid, ask, qb, qa = c.bid, c.ask, c.bid_sz, c.ask_sz
        f = flags.get(sec)
        rows.append((
            sec * 1000, symbol, c.last, vwap, volume, notional, n_trades,
            (volume + delta) / 2, (volume - delta) / 2, delta, c.cvd,
            ofi_l1, ofi_ml, bid, ask, *F.book_fields(bid, ask, qb, qa, c.bid5, c.ask5),
            n_l1 + n_ml if book_ticker else n_ml, ",".join(sorted(f)) if f else "",
        ))
    return rows


def old_columns(state: MarketState, sec: int) -> tuple[Any, ...]:
    end = (sec + 1) * 1000
    liq = state._liq
    i, j = bisect_left(liq, (sec * 1000,)), bisect_left(liq, (end,))
    return (state.mark.at(end), state.funding.at(end), state.oi.at(end), j - i,
            sum(n for _, n in liq[i:j]))


class OldEngine(SignalEngine):
    """A signal engine closing its seconds the earlier way."""

    __slots__ = ()

    def close_span(self, start: int, upto_sec: int,
                   aggs: dict[int, tuple[Any, ...]] | None = None) -> list[tuple[str, Row]]:
        tail = self.tail
        rows = [r + old_columns(self.state, r[0] // 1000) for r in old_feature_rows(
            self.symbol, tail, self.carry, start, upto_sec, book_ticker=self.book_ticker,
            aggs=aggs)]
        trades = tail.trades
        out: list[tuple[str, Row]] = []
        for r in rows:
            ts_ms = r[0]
            out.append((FEATURES, r))
            out.append((FUSION, self._fusion.update(ts_ms, r[_OFI], r[_DELTA])))
            for ev in self._events.on_second(ts_ms, r[_OFI], r[_LAST], r[_CVD]):
                out.append((EVENTS, ev))
            i, j = trades.span(ts_ms, ts_ms + 1000)
            for ev in self._large.on_second(ts_ms // 1000, trades, i, j):
                out.append((EVENTS, ev))
        tail.advance(upto_sec * 1000)
        self.state.forget(upto_sec * 1000)
        return out


def old_emit_closed(engines: dict[str, SignalEngine], emit: Any, now_ms: int) -> None:
    todo = []
    for engine in engines.values():
        upto = (now_ms - engine.params.grace_ms) // 1000
        span = engine.span_to_close(upto)
        if span is not None:
            todo.append((engine, span[0], upto))
    if not todo:
        return
    sums = None if len(todo) == 1 else old_aggregate_many([(e.tail, s, u) for e, s, u in todo])
    for i, (engine, start, upto) in enumerate(todo):
        for kind, row in engine.close_span(start, upto, sums[i] if sums is not None else None):
            emit(kind, row)


# -- random tapes --------------------------------------------------------------------------------

# values over many magnitudes, so that the order of every addition shows in the last bits
mags = st.sampled_from([1e-6, 1e-3, 0.37, 1.0, 13.0, 977.0, 1e5, 3.3e7])
value = st.builds(lambda m, f: m * f, mags, st.floats(0.01, 10.0, allow_nan=False))
signed = st.one_of(value, value.map(lambda v: -v), st.just(-0.0), st.just(0.0))


def row_of(kind: str, sym: str, ts: int, v: list[Any]) -> Record:
    return kind, sym, _row(kind, sym, ts, v)


def _row(kind: str, sym: str, ts: int, v: list[Any]) -> Row:
    if kind == "trade":
        return (ts, ts, ts, sym, v[0], v[1], v[2], 0, 0, v[3])
    if kind == "book":
        source, levels = v
        flat: list[Any] = []
        for m in range(LEVELS):
            flat += list(levels[m]) if m < len(levels) else [None] * 4
        return (ts, ts, ts, sym, source, ts, None, None, *flat)
    if kind == "mark":
        return (ts, ts, ts, sym, "markPrice", v[0], v[0], None, v[1], None, v[2])
    if kind == "liq":
        return (ts, ts, ts, sym, "sell", v[0], v[1], None, None, "", "", "")
    return (ts, v[0])  # a gap: its time and reason


Tape = tuple[list[tuple[str, bool]], list[Record], list[int], int]


@st.composite
def tapes(draw: st.DrawFn) -> Tape:
    """Symbols (with or without quotes), their records in one arrival order, the steps (ms)
    between ticks, and the tape's length in seconds."""
    n_sym = draw(st.integers(1, 5))
    span_s = draw(st.integers(2, 7))
    offset = st.integers(0, span_s * 1000 - 1)
    symbols = [(f"S{k}USDT", draw(st.booleans())) for k in range(n_sym)]
    records: list[Record] = []
    for sym, _ in symbols:
        agg = 100
        for off in sorted(draw(st.lists(offset, max_size=25))):
            agg += draw(st.sampled_from([1, 1, 1, 2, 0]))
            records.append(row_of("trade", sym, BASE * 1000 + off,
                                  [agg, draw(value), draw(value), draw(st.booleans())]))
        for off in sorted(draw(st.lists(offset, max_size=20))):
            source = draw(st.sampled_from(["bookTicker", "depth5"]))
            levels = draw(st.lists(st.tuples(value, value, value, value), min_size=1,
                                   max_size=LEVELS if source == "depth5" else 1))
            records.append(row_of("book", sym, BASE * 1000 + off, [source, levels]))
        for off in sorted(draw(st.lists(offset, max_size=3))):
            records.append(row_of("mark", sym, BASE * 1000 + off,
                                  [draw(value), draw(st.one_of(st.none(), signed)),
                                   draw(st.one_of(st.none(), value))]))
        for off in sorted(draw(st.lists(offset, max_size=3))):
            records.append(row_of("liq", sym, BASE * 1000 + off, [draw(value), draw(value)]))
        for off in draw(st.lists(offset, max_size=2)):
            records.append(row_of("gap", sym, BASE * 1000 + off, ["disconnect"]))
    order = draw(st.permutations(range(len(records))))
    ticks = draw(st.lists(st.integers(0, 2500), min_size=1, max_size=6))
    return symbols, [records[i] for i in order], ticks, span_s


def feed(engine: SignalEngine, kind: str, row: Row) -> None:
    if kind == "trade":
        engine.on_trade(row)
    elif kind == "book":
        engine.on_book(row)
    elif kind == "mark":
        engine.on_state(DERIVATIVES, row)
    elif kind == "liq":
        engine.on_state(LIQUIDATIONS, row)
    else:
        engine.on_gap(row[0], row[1])


def same(a: Out, b: Out) -> bool:
    """Equal kinds and rows, each value bit for bit (repr tells -0.0 and NaN apart)."""
    return len(a) == len(b) and all(
        ka == kb and len(ra) == len(rb) and all(
            type(x) is type(y) and repr(x) == repr(y) for x, y in zip(ra, rb, strict=True))
        for (ka, ra), (kb, rb) in zip(a, b, strict=True))


@settings(max_examples=60, deadline=None)
@given(tape=tapes())
def test_the_tick_writes_the_rows_of_the_earlier_tick(tape: Tape) -> None:
    symbols, records, ticks, span_s = tape
    new_out: Out = []
    old_out: Out = []
    params = SignalParams(large_trade_floor=1.0)  # large trades happen on these tapes
    new = {s: SignalEngine(s, params, LEVELS, lambda k, r: new_out.append((k, r)),
                           book_ticker=bt) for s, bt in symbols}
    old: dict[str, SignalEngine] = {s: OldEngine(s, params, LEVELS,
                                                 lambda k, r: old_out.append((k, r)),
                                                 book_ticker=bt) for s, bt in symbols}
    now = BASE * 1000
    pending = list(records)  # arrival order as drawn: some arrive late, after their tick
    emitted = 0
    for step in [*ticks, span_s * 1000 + 2000]:
        now += step
        while pending and pending[0][2][0] < now:  # what has arrived by the tick
            kind, sym, row = pending.pop(0)
            feed(new[sym], kind, row)
            feed(old[sym], kind, row)
        new_out.clear()
        old_out.clear()
        emit_closed(new, lambda k, r: new_out.append((k, r)), now)
        old_emit_closed(old, lambda k, r: old_out.append((k, r)), now)
        assert same(new_out, old_out), (new_out, old_out)
        emitted += len(new_out)
    # a tape with a trade or a book record closes at least one second (gaps, contract state
    # and liquidations alone add nothing to the tail, so they close none)
    assert emitted or not any(kind in ("trade", "book") for kind, _, _ in records)


# -- the batched sums alone ----------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(1, 8), seconds=st.integers(1, 4))
def test_aggregate_many_sums_bit_for_bit_as_before(data: st.DataObject, n: int,
                                                   seconds: int) -> None:
    """NaN, -0.0, empty tables, spans with no rows, several seconds per span."""
    nan_or = st.one_of(signed, st.just(math.nan)) if data.draw(st.booleans()) else signed
    spans: list[F.Span] = []
    for _ in range(n):
        tail = TailWindow()
        for kind in ("t", "l", "m"):
            for off in sorted(data.draw(st.lists(st.integers(0, seconds * 1000 + 500),
                                                 max_size=40))):
                ts = BASE * 1000 + off
                if kind == "t":
                    tail.add_trade(ts, 1.0, data.draw(nan_or), data.draw(nan_or),
                                   data.draw(nan_or), 0.0)
                elif kind == "l":
                    tail.add_l1(ts, data.draw(nan_or), 1.0, 2.0, 1.0, 1.0)
                else:
                    tail.add_ml(ts, data.draw(nan_or), 1.0, 1.0)
        start = BASE + data.draw(st.integers(0, 1))
        spans.append((tail, start, start + seconds))
    got, want = F.aggregate_many(spans), old_aggregate_many(spans)
    assert [sorted(g) for g in got] == [sorted(w) for w in want]
    for g, w in zip(got, want, strict=True):
        for sec in w:
            assert [repr(x) for x in g[sec]] == [repr(x) for x in w[sec]]
