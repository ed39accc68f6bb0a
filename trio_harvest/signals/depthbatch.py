"""Depth-derived signals of many book rows at once (NumPy), bit for bit what the per-record
code gives.

Owns the vectorised form of ``SignalEngine.on_book_levels`` (with quotes subscribed, so depth
feeds only the multi-level side): for each depth row, its multi-level OFI against the row before
it, the sizes of its first levels per side, and its best bid and ask. Rows come as the lanes
hold them: a flat float64 matrix, one row per depth message, bids then asks, (price, size)
interleaved, ``levels`` per side, NaN where a side had fewer levels. Several symbols' rows come
end to end: ``starts`` says where each symbol's run begins, ``prevs`` gives each run's carried
previous row (None: no previous state, as after a gap).

Every float is produced by the same operations in the same order as ``ofi.ofi_levels_fn`` and
``ofi.level_sums_fn``: per level the same two conditional terms, a term that does not apply adding
0.0, which never changes a sum that started at +0.0 (so a sum cannot be -0.0 here either). A run
with a missing level anywhere (NaN) is not computed here: ``complete`` says which runs were,
and the caller computes the others record by record. Pure: no state, no I/O, never imports trio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Array = Any  # a NumPy array (kept loose: NumPy's own stubs are not strict-friendly)


@dataclass(slots=True)
class Derived:
    """Per row of the input: ``ofim`` (NaN where the row has no previous state), the level
    sizes ``q_bid``/``q_ask`` and the best level; per run: ``complete``."""

    ofim: Array
    has_prev: Array
    q_bid: Array
    q_ask: Array
    bid: Array
    bid_sz: Array
    ask: Array
    ask_sz: Array
    complete: Array


def derive(m: Array, starts: list[int], prevs: list[Array | None], levels: int,
           ofi_levels: int, sum_levels: int) -> Derived:
    """The depth signals of ``m`` (``(rows, 4 * levels)``), runs beginning at ``starts`` (the
    first is 0) each with its previous row from ``prevs`` (a ``4 * levels`` row, or None)."""
    n = len(m)
    ask0 = 2 * levels
    bid_cols = [c for k in range(ofi_levels) for c in (2 * k, 2 * k + 1)]
    need = bid_cols + [ask0 + c for c in bid_cols]  # the columns the OFI compares
    sums = ([1 + 2 * k for k in range(sum_levels)]
            + [ask0 + 1 + 2 * k for k in range(sum_levels)])
    used = sorted(set(need) | set(sums))
    at = {c: i for i, c in enumerate(used)}
    # the used columns, each contiguous (one pass over the rows)
    cur = np.ascontiguousarray(m[:, used].T)
    has_prev = np.ones(n, np.bool_)
    given = [i for i, p in enumerate(prevs) if p is not None]
    # the previous row of each run's first row: the carried one (NaN where there is none)
    first = np.full((len(used), len(starts)), np.nan)
    if given:
        # the carried rows (float64 buffers of one width) joined as bytes: one copy, not a
        # NumPy conversion element by element
        carried = np.frombuffer(b"".join([p for p in prevs if p is not None]), np.float64)
        first[:, given] = carried.reshape(len(given), -1)[:, used].T
    missing = [s for s, p in zip(starts, prevs, strict=True) if p is None]
    has_prev[missing] = False
    # a run with a NaN in any of its rows, or in a carried row where the OFI reads it (inside
    # a run, the row before is one of the run's own rows)
    bad_rows = np.isnan(cur).any(axis=0)
    complete = ~np.logical_or.reduceat(bad_rows, starts)
    if given:
        carried_nan = np.isnan(first[[at[c] for c in need]][:, given]).any(axis=0)
        complete[given] &= ~carried_nan
    # the multi-level OFI of every row against the row before it (what a run's first row gets
    # here is replaced below), then of each run's first row against its carried row: per
    # element the same operations in the same order either way
    total = np.zeros(n)
    _ofi(total[1:], cur[:, :-1], cur[:, 1:], at, ofi_levels, ask0)
    head = np.zeros(len(starts))
    _ofi(head, first, cur[:, starts], at, ofi_levels, ask0)
    total[starts] = head
    total[~has_prev] = np.nan
    q_bid = np.zeros(n)
    q_ask = np.zeros(n)
    for k in range(sum_levels):
        q_bid += cur[at[2 * k + 1]]
        q_ask += cur[at[ask0 + 2 * k + 1]]
    return Derived(total, has_prev, q_bid, q_ask, cur[at[0]], cur[at[1]], cur[at[ask0]],
                   cur[at[ask0 + 1]], complete)


def _ofi(total: Array, prev: Array, cur: Array, at: dict[int, int], ofi_levels: int,
         ask0: int) -> None:
    """Add to ``total`` (in place, +0.0 to start) the multi-level OFI of each column of ``cur``
    against the same column of ``prev`` (rows: the used columns, ``at``): bid levels first, then
    ask levels, as the per-record sum. A level's terms are computed for all its levels at once;
    the sum stays one addition at a time, in order."""
    zero = 0.0
    bp = _rows([at[2 * k] for k in range(ofi_levels)])
    bq = _rows([at[2 * k + 1] for k in range(ofi_levels)])
    ap = _rows([at[ask0 + 2 * k] for k in range(ofi_levels)])
    aq = _rows([at[ask0 + 2 * k + 1] for k in range(ofi_levels)])
    p0, q0, p1, q1 = prev[bp], prev[bq], cur[bp], cur[bq]
    bid_in = np.where(p1 >= p0, q1, zero)
    bid_out = np.where(p1 <= p0, q0, zero)
    p0, q0, p1, q1 = prev[ap], prev[aq], cur[ap], cur[aq]
    ask_in = np.where(p1 <= p0, q1, zero)
    ask_out = np.where(p1 >= p0, q0, zero)
    for k in range(ofi_levels):
        total += bid_in[k]
        total -= bid_out[k]
    for k in range(ofi_levels):
        total -= ask_in[k]
        total += ask_out[k]


def _rows(index: list[int]) -> slice | list[int]:
    """``index`` as a slice where it is evenly spaced (a view, not a copy, of the rows)."""
    step = index[1] - index[0] if len(index) > 1 else 1
    if step > 0 and index == list(range(index[0], index[-1] + 1, step)):
        return slice(index[0], index[-1] + 1, step)
    return index


def side_lists(row: Array, levels: int) -> tuple[list[tuple[float, float]],
                                                 list[tuple[float, float]]]:
    """A stored book row back as the level lists it was packed from (a NaN pair is a level the
    side did not have: padding is always at the end)."""
    values = row.tolist()
    bids: list[tuple[float, float]] = []
    asks: list[tuple[float, float]] = []
    for side, base in ((bids, 0), (asks, 2 * levels)):
        for k in range(levels):
            px, sz = values[base + 2 * k], values[base + 2 * k + 1]
            if px != px or sz != sz:  # NaN: the side ends here
                break
            side.append((px, sz))
    return bids, asks
