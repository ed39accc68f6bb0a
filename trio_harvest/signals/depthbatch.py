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
    prev = np.empty_like(m)
    prev[1:] = m[:-1]
    has_prev = np.ones(n, np.bool_)
    nan_row = np.full(m.shape[1], np.nan)
    for s, p in zip(starts, prevs, strict=True):
        if p is None:
            prev[s] = nan_row
            has_prev[s] = False
        else:
            prev[s] = p
    ask0 = 2 * levels
    need = [2 * k for k in range(ofi_levels)] + [2 * k + 1 for k in range(ofi_levels)]
    need += [ask0 + c for c in need]
    cols = sorted(set(need) | {1 + 2 * k for k in range(sum_levels)}
                  | {ask0 + 1 + 2 * k for k in range(sum_levels)})
    bad_rows = np.isnan(m[:, cols]).any(axis=1)
    bad_rows |= has_prev & np.isnan(prev[:, need]).any(axis=1)
    bounds = [*starts, n]
    complete = np.array([not bad_rows[bounds[i]:bounds[i + 1]].any()
                         for i in range(len(starts))], np.bool_)
    zero = 0.0
    total = np.zeros(n)
    for k in range(ofi_levels):  # bid levels first, then ask levels, as the per-record sum
        p0, q0, p1, q1 = prev[:, 2 * k], prev[:, 2 * k + 1], m[:, 2 * k], m[:, 2 * k + 1]
        total += np.where(p1 >= p0, q1, zero)
        total -= np.where(p1 <= p0, q0, zero)
    for k in range(ofi_levels):
        c = ask0 + 2 * k
        p0, q0, p1, q1 = prev[:, c], prev[:, c + 1], m[:, c], m[:, c + 1]
        total -= np.where(p1 <= p0, q1, zero)
        total += np.where(p1 >= p0, q0, zero)
    total[~has_prev] = np.nan
    q_bid = np.zeros(n)
    q_ask = np.zeros(n)
    for k in range(sum_levels):
        q_bid += m[:, 2 * k + 1]
        q_ask += m[:, ask0 + 2 * k + 1]
    return Derived(total, has_prev, q_bid, q_ask, m[:, 0], m[:, 1], m[:, ask0],
                   m[:, ask0 + 1], complete)


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
