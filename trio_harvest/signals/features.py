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

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

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
    second): the tick's cost no longer grows by a query per symbol. One dict per span, in order."""
    keys: list[int] = []
    stacked: list[list[Any]] = [[] for _ in _NAMES]
    for k, (tail, start_sec, end_sec) in enumerate(spans):
        cols = _columns(tail, start_sec * 1000, end_sec * 1000)
        if cols is None:
            continue
        keys.extend([k] * len(cols[0]))
        for into, col in zip(stacked, cols, strict=True):
            into.extend(col)
    out: list[dict[int, tuple[Any, ...]]] = [{} for _ in spans]
    if not keys:
        return out
    df = pl.DataFrame([pl.Series("k", keys, dtype=pl.Int32),
                       *(pl.Series(n, c, dtype=pl.Int64 if n == "ts" else _F64)
                         for n, c in zip(_NAMES, stacked, strict=True))])
    for row in df.group_by("k", _SECOND).agg(_AGGS).iter_rows():
        out[row[0]][row[1]] = row[1:]
    return out


def feature_rows(
    symbol: str,
    tail: TailWindow,
    carry: Carry,
    start_sec: int,
    end_sec: int,
    *,
    book_ticker: bool,
    aggs: dict[int, tuple[Any, ...]] | None = None,
) -> list[Row]:
    """Rows of ``kinds.FEATURES_SCHEMA`` for every second in [start_sec, end_sec), in order.

    Sums come from ``aggregate`` (Polars), or ``aggs`` when the caller computed them for many
    symbols at once (``aggregate_many``). ``last``, ``cvd`` and the book fields are the last
    row at or before the second's end (a binary search in the sorted tail), else ``carry``,
    which is updated in place. ``book_ticker``: the best level comes from quotes, whose
    messages count as book updates besides the depth ones; otherwise depth messages feed both
    the best level and the multi-level table and count once.
    """
    if aggs is None:
        aggs = aggregate(tail, start_sec, end_sec)
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
        spread = mid = wmid = imb_l1 = imb_l5 = None
        if bid is not None and ask is not None:
            spread = ask - bid
            mid = (ask + bid) / 2
            if qb is not None and qa is not None and qb + qa > 0:
                wmid = (ask * qb + bid * qa) / (qb + qa)
                imb_l1 = (qb - qa) / (qb + qa)
        if c.bid5 is not None and c.ask5 is not None and c.bid5 + c.ask5 > 0:
            imb_l5 = (c.bid5 - c.ask5) / (c.bid5 + c.ask5)
        f = flags.get(sec)
        rows.append((
            sec * 1000, symbol, c.last, vwap, volume, notional, n_trades,
            (volume + delta) / 2, (volume - delta) / 2, delta, c.cvd,
            ofi_l1, ofi_ml, bid, ask, spread, mid, wmid, imb_l1, imb_l5,
            n_l1 + n_ml if book_ticker else n_ml, ",".join(sorted(f)) if f else "",
        ))
    return rows
