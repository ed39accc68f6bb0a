"""The rows every venue builds from book levels: ``orderbook`` (kinds.orderbook_schema: the head
columns, then bid and ask price and size for levels 1..N, null past the levels given) and
``book_updates`` (kinds.BOOK_UPDATES_SCHEMA: one row per level). Pure."""

from __future__ import annotations

from typing import Any

from ..kinds import Row


def level_columns(bids: list[tuple[float, float]], asks: list[tuple[float, float]],
                  n: int) -> list[Any]:
    """Bid price, bid size, ask price, ask size for levels 1..n (None past the levels given)."""
    out: list[Any] = []
    nb, na = len(bids), len(asks)
    for i in range(n):
        if i < nb:
            out += bids[i]
        else:
            out += (None, None)
        if i < na:
            out += asks[i]
        else:
            out += (None, None)
    return out


def book_row(
    symbol: str, ts_ms: int, event_ms: int, recv_ms: int, source: str, update_id: int,
    first_update_id: int, prev_update_id: int,
    bids: list[tuple[float, float]], asks: list[tuple[float, float]], levels: int,
) -> Row:
    """An ``orderbook`` row from any top-of-book state (e.g. a local book built from diffs)."""
    head = [ts_ms, event_ms, recv_ms, symbol, source, update_id, first_update_id, prev_update_id]
    return tuple(head + level_columns(bids, asks, levels))


def level_rows(
    symbol: str, ts_ms: int, event_ms: int, recv_ms: int, first_update_id: int,
    update_id: int, prev_update_id: int, bids: list[tuple[float, float]],
    asks: list[tuple[float, float]], is_snapshot: bool,
) -> list[Row]:
    """``book_updates`` rows: one per level given (a diff's changes, size 0 for a level that is
    gone, or a snapshot's levels with ``is_snapshot``), bids first."""
    head = (ts_ms, event_ms, recv_ms, symbol, first_update_id, update_id, prev_update_id)
    return ([(*head, "bid", p, q, is_snapshot) for p, q in bids]
            + [(*head, "ask", p, q, is_snapshot) for p, q in asks])
