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
    # the used columns, each contiguous (one pass over the rows), and the row before each row
    cur = np.ascontiguousarray(m[:, used].T)
    prev = np.empty_like(cur)
    prev[:, 1:] = cur[:, :-1]
    has_prev = np.ones(n, np.bool_)
    given = [(s, p) for s, p in zip(starts, prevs, strict=True) if p is not None]
    missing = [s for s, p in zip(starts, prevs, strict=True) if p is None]
    if given:
        rows = np.array([p for _, p in given], np.float64)[:, used]
        prev[:, [s for s, _ in given]] = rows.T
    if missing:
        prev[:, missing] = np.nan
        has_prev[missing] = False
    bad_rows = np.isnan(cur).any(axis=0)
    bad_rows |= has_prev & np.isnan(prev[[at[c] for c in need]]).any(axis=0)
    complete = ~np.logical_or.reduceat(bad_rows, starts)
    zero = 0.0
    total = np.zeros(n)
    for k in range(ofi_levels):  # bid levels first, then ask levels, as the per-record sum
        i, j = at[2 * k], at[2 * k + 1]
        p0, q0, p1, q1 = prev[i], prev[j], cur[i], cur[j]
        total += np.where(p1 >= p0, q1, zero)
        total -= np.where(p1 <= p0, q0, zero)
    for k in range(ofi_levels):
        i, j = at[ask0 + 2 * k], at[ask0 + 2 * k + 1]
        p0, q0, p1, q1 = prev[i], prev[j], cur[i], cur[j]
        total -= np.where(p1 <= p0, q1, zero)
        total += np.where(p1 >= p0, q0, zero)
    total[~has_prev] = np.nan
    q_bid = np.zeros(n)
    q_ask = np.zeros(n)
    for k in range(sum_levels):
        q_bid += cur[at[2 * k + 1]]
        q_ask += cur[at[ask0 + 2 * k + 1]]
    return Derived(total, has_prev, q_bid, q_ask, cur[at[0]], cur[at[1]], cur[at[ask0]],
                   cur[at[ask0 + 1]], complete)


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
