"""The per-second feature table, computed with Polars over a tail window.

Owns the column rules of docs/signals.md: bucket = floor(ts_ms / 1000); sums (volume,
notional, buy/sell volume, delta, OFI, counts) are aggregated per second by one Polars query over
the tail rows of the seconds being emitted (a ``group_by``, or a plain ``select`` when a single
second closes, the usual tick); ``last``, ``cvd`` and the book fields are the last value at or
before the bucket end (a binary search in the sorted tail), carried forward once their rows have
left the window (``Carry``); an empty second has sums 0 and ``vwap`` null.

Work is O(rows of the tail window), never O(what is buffered for writing). Pure: reads a
``TailWindow``, returns rows; never emits, never does I/O, never imports trio.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ..kinds import Row
from .tail import (
    L1_ASK,
    L1_ASK_SZ,
    L1_BID,
    L1_BID_SZ,
    L1_OFI,
    ML_ASK5,
    ML_BID5,
    ML_OFI,
    T_CVD,
    T_NOTIONAL,
    T_PRICE,
    T_QTY,
    T_SQTY,
    TailWindow,
)

if TYPE_CHECKING:
    from .marketstate import MarketState

_F64 = pl.Float64

# One group per second. Rows of the three tables are stacked with nulls in the columns of the
# other tables, so a table's row count is the non-null count of one of its columns.
_AGGS = (
    pl.col("qty").count().alias("n_trades"),
    pl.col("qty").sum().alias("volume"),
    pl.col("notional").sum().alias("notional"),
    pl.col("sqty").sum().alias("delta"),
    pl.col("ofi1").count().alias("n_l1"),
    pl.col("ofi1").sum().alias("ofi_l1"),
    pl.col("ofim").count().alias("n_ml"),
    pl.col("ofim").sum().alias("ofi_ml"),
)
_SECOND = (pl.col("ts") // 1000).alias("sec")
# the sums of a second without rows (it has no group): counts 0, sums 0.0
_NO_ROWS: tuple[Any, ...] = (None, 0, 0.0, 0.0, 0.0, 0, 0.0, 0, 0.0)


@dataclass(slots=True)
class Carry:
    """The last values seen, carried forward into seconds whose rows have left the tail."""

    last: float | None = None
    cvd: float | None = None
    bid: float | None = None
    ask: float | None = None
    bid_sz: float | None = None
    ask_sz: float | None = None
    bid5: float | None = None
    ask5: float | None = None


def _columns(tail: TailWindow, lo_ms: int, hi_ms: int) -> list[list[Any]] | None:
    """The tail rows with ``lo_ms <= ts < hi_ms`` stacked as columns (None if there are none):
    ts, qty, sqty, notional (trades), ofi1 (best level), ofim (depth); each table's rows carry
    nulls in the other tables' columns."""
    t, l1, ml = tail.trades, tail.l1, tail.ml
    i0, i1 = t.span(lo_ms, hi_ms)
    j0, j1 = l1.span(lo_ms, hi_ms)
    k0, k1 = ml.span(lo_ms, hi_ms)
    nt, nl, nm = i1 - i0, j1 - j0, k1 - k0
    if nt + nl + nm == 0:
        return None
    after_t: list[None] = [None] * (nl + nm)
    return [
        (t.ts[i0:i1] + l1.ts[j0:j1] + ml.ts[k0:k1]).tolist(),
        t.cols[T_QTY][i0:i1].tolist() + after_t,
        t.cols[T_SQTY][i0:i1].tolist() + after_t,
        t.cols[T_NOTIONAL][i0:i1].tolist() + after_t,
        [None] * nt + l1.cols[L1_OFI][j0:j1].tolist() + [None] * nm,
        [None] * (nt + nl) + ml.cols[ML_OFI][k0:k1].tolist(),
    ]


_NAMES = ("ts", "qty", "sqty", "notional", "ofi1", "ofim")


def frame(tail: TailWindow, lo_ms: int, hi_ms: int) -> pl.DataFrame | None:
    """The tail rows with ``lo_ms <= ts < hi_ms`` as one Polars frame (None if there are none):
    ts, qty, sqty, notional (trades), ofi1 (best level), ofim (depth)."""
    cols = _columns(tail, lo_ms, hi_ms)
    if cols is None:
        return None
    return pl.DataFrame([pl.Series(n, c, dtype=pl.Int64 if n == "ts" else _F64)
                         for n, c in zip(_NAMES, cols, strict=True)])


def aggregate(tail: TailWindow, start_sec: int, end_sec: int) -> dict[int, tuple[Any, ...]]:
    """Per-second sums (Polars ``group_by``) of the seconds in [start_sec, end_sec) that have
    rows: second -> (sec, n_trades, volume, notional, delta, n_l1, ofi_l1, n_ml, ofi_ml)."""
    df = frame(tail, start_sec * 1000, end_sec * 1000)
    if df is None:
        return {}
    if end_sec - start_sec == 1:  # the usual tick: one second, nothing to group
        return {start_sec: (start_sec, *df.select(_AGGS).row(0))}
    return {row[0]: row for row in df.group_by(_SECOND).agg(_AGGS).iter_rows()}


Span = tuple[TailWindow, int, int]  # a tail and the seconds [start, end) to close in it


def aggregate_many(spans: list[Span]) -> list[dict[int, tuple[Any, ...]]]:
    """``aggregate`` for many symbols' tails in ONE Polars query (``group_by`` on symbol and
    second): the tick's cost no longer grows by a query per symbol. One dict per span, in order.

    The query's frame is the one ``_columns`` gives each span, stacked span after span (each
    span's trades, then its best-level rows, then its depth rows; nulls in the other tables'
    columns), so every group holds the same values in the same order with the same nulls, and
    Polars sums them alike. It is built table by table in C (array slices joined, then NumPy
    places each table's rows), not value by value in Python."""
    out: list[dict[int, tuple[Any, ...]]] = [{} for _ in spans]
    t_ts, l_ts, m_ts = array("q"), array("q"), array("q")
    qty, sqty, notional, ofi1, ofim = (array("d") for _ in range(5))
    counts = array("q")  # per span: its rows in trades, l1, ml
    for tail, start_sec, end_sec in spans:
        lo, hi = start_sec * 1000, end_sec * 1000
        t, l1, ml = tail.trades, tail.l1, tail.ml
        ts = t.ts
        i0, i1 = bisect_left(ts, lo), bisect_left(ts, hi)
        if i1 > i0:
            t_ts += ts[i0:i1]
            cols = t.cols
            qty += cols[T_QTY][i0:i1]
            sqty += cols[T_SQTY][i0:i1]
            notional += cols[T_NOTIONAL][i0:i1]
        ts = l1.ts
        j0, j1 = bisect_left(ts, lo), bisect_left(ts, hi)
        if j1 > j0:
            l_ts += ts[j0:j1]
            ofi1 += l1.cols[L1_OFI][j0:j1]
        ts = ml.ts
        k0, k1 = bisect_left(ts, lo), bisect_left(ts, hi)
        if k1 > k0:
            m_ts += ts[k0:k1]
            ofim += ml.cols[ML_OFI][k0:k1]
        counts.extend((i1 - i0, j1 - j0, k1 - k0))
    c = np.frombuffer(counts, dtype=np.int64).reshape(-1, 3)
    per = c.sum(axis=1)
    n = int(per.sum())
    if not n:
        return out
    first = np.cumsum(per) - per  # each span's first row in the stacked frame
    pos = []  # where each table's rows go in it
    before = np.zeros_like(per)  # rows of the span's earlier tables
    for col in range(3):
        rows = c[:, col]
        within = np.cumsum(rows) - rows  # each span's first row in the table's joined arrays
        pos.append(np.repeat(first + before - within, rows) + np.arange(int(rows.sum())))
        before = before + rows
    ts_all = np.empty(n, dtype=np.int64)
    for p, part in zip(pos, (t_ts, l_ts, m_ts), strict=True):
        ts_all[p] = np.frombuffer(part, dtype=np.int64)
    df = pl.DataFrame([
        pl.Series("k", np.repeat(np.arange(len(spans), dtype=np.int32), per), dtype=pl.Int32),
        pl.Series("ts", ts_all, dtype=pl.Int64),
        _nullable("qty", n, pos[0], qty), _nullable("sqty", n, pos[0], sqty),
        _nullable("notional", n, pos[0], notional),
        _nullable("ofi1", n, pos[1], ofi1), _nullable("ofim", n, pos[2], ofim),
    ])
    for row in df.group_by("k", _SECOND).agg(_AGGS).iter_rows():
        out[row[0]][row[1]] = row[1:]
    return out


def _nullable(name: str, n: int, at: np.ndarray[Any, Any], values: array[float]) -> pl.Series:
    """A float column of ``n`` rows holding ``values`` at the rows ``at``, null elsewhere."""
    v = np.frombuffer(values, dtype=np.float64)
    if np.isnan(v).any():  # a NaN value must stay a value: mark the nulls one by one
        data = np.zeros(n)
        data[at] = v
        mask = np.ones(n, dtype=bool)
        mask[at] = False
        return pl.Series(name, np.ma.masked_array(data, mask), dtype=_F64)
    data = np.full(n, np.nan)
    data[at] = v
    return pl.Series(name, data, dtype=_F64, nan_to_null=True)


def book_fields(bid: float | None, ask: float | None, qb: float | None, qa: float | None,
                b5: float | None, a5: float | None) -> tuple[float | None, ...]:
    """spread, mid, wmid, imb_l1, imb_l5 of a second from its (carried) book values."""
    spread = mid = wmid = imb_l1 = imb_l5 = None
    if bid is not None and ask is not None:
        spread = ask - bid
        mid = (ask + bid) / 2
        if qb is not None and qa is not None and qb + qa > 0:
            wmid = (ask * qb + bid * qa) / (qb + qa)
            imb_l1 = (qb - qa) / (qb + qa)
    if b5 is not None and a5 is not None and b5 + a5 > 0:
        imb_l5 = (b5 - a5) / (b5 + a5)
    return spread, mid, wmid, imb_l1, imb_l5


def feature_rows(
    symbol: str,
    tail: TailWindow,
    carry: Carry,
    start_sec: int,
    end_sec: int,
    *,
    book_ticker: bool,
    aggs: dict[int, tuple[Any, ...]] | None = None,
    state: MarketState | None = None,
) -> list[Row]:
    """Rows of ``kinds.FEATURES_SCHEMA`` for every second in [start_sec, end_sec), in order.

    Sums come from ``aggregate`` (Polars), or ``aggs`` when the caller computed them for many
    symbols at once (``aggregate_many``). ``last``, ``cvd`` and the book fields are the last
    row at or before the second's end (a binary search in the sorted tail), else ``carry``,
    which is updated in place. ``book_ticker``: the best level comes from quotes, whose
    messages count as book updates besides the depth ones; otherwise depth messages feed both
    the best level and the multi-level table and count once. ``state``: the contract state's
    five columns end each row (``MarketState.columns``); without it the rows stop before them.
    """
    if aggs is None:
        aggs = aggregate(tail, start_sec, end_sec)
    flags: defaultdict[int, set[str]] | None = None
    if tail.flag_ts:  # most seconds have none
        flags = defaultdict(set)
        for ts, flag in tail.flags_between(start_sec * 1000, end_sec * 1000):
            flags[ts // 1000].add(flag)
    t, l1, ml = tail.trades, tail.l1, tail.ml
    t_ts, l_ts, m_ts = t.ts, l1.ts, ml.ts
    t_price, t_cvd = t.cols[T_PRICE], t.cols[T_CVD]
    lc, mc = l1.cols, ml.cols
    columns = state.columns if state is not None else None
    c = carry
    rows: list[Row] = []
    for sec in range(start_sec, end_sec):
        end = (sec + 1) * 1000
        _, n_trades, volume, notional, delta, n_l1, ofi_l1, n_ml, ofi_ml = aggs.get(sec, _NO_ROWS)
        i = bisect_left(t_ts, end) - 1
        if i >= 0:
            c.last = t_price[i]
            c.cvd = t_cvd[i]
        i = bisect_left(l_ts, end) - 1
        if i >= 0:
            c.bid = lc[L1_BID][i]
            c.ask = lc[L1_ASK][i]
            c.bid_sz = lc[L1_BID_SZ][i]
            c.ask_sz = lc[L1_ASK_SZ][i]
        i = bisect_left(m_ts, end) - 1
        if i >= 0:
            c.bid5 = mc[ML_BID5][i]
            c.ask5 = mc[ML_ASK5][i]
        vwap = notional / volume if n_trades and volume > 0 else None
        bid, ask = c.bid, c.ask
        f = flags.get(sec) if flags is not None else None
        row = (
            sec * 1000, symbol, c.last, vwap, volume, notional, n_trades,
            (volume + delta) / 2, (volume - delta) / 2, delta, c.cvd,
            ofi_l1, ofi_ml, bid, ask, *book_fields(bid, ask, c.bid_sz, c.ask_sz, c.bid5, c.ask5),
            n_l1 + n_ml if book_ticker else n_ml, ",".join(sorted(f)) if f else "",
        )
        rows.append(row if columns is None else row + columns(sec))
    return rows
