"""The rows every venue builds from book levels: ``orderbook`` (kinds.orderbook_schema: the head
columns, then bid and ask price and size for levels 1..N, null past the levels given) and
``book_updates`` (kinds.BOOK_UPDATES_SCHEMA: one row per level); and the ``prices``,
``derivatives`` and ``liquidations`` rows of the venue-neutral records. Pure."""

from __future__ import annotations

from typing import Any

from ..kinds import Row
from .base import Derivative, Liquidation, Trade


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


def book_row_of_columns(
    symbol: str, ts_ms: int, event_ms: int, recv_ms: int, source: str, update_id: int,
    first_update_id: int, prev_update_id: int, bid_px: list[float], bid_sz: list[float],
    ask_px: list[float], ask_sz: list[float], levels: int,
) -> Row:
    """``book_row`` of a top given as columns (at most ``levels`` each; a side's prices and
    sizes equally long): the levels interleaved by slice, None past the levels given."""
    out: list[Any] = [None] * (4 * levels)
    nb, na = 4 * len(bid_px), 4 * len(ask_px)
    out[0:nb:4] = bid_px
    out[1:nb:4] = bid_sz
    out[2:na:4] = ask_px
    out[3:na:4] = ask_sz
    return (ts_ms, event_ms, recv_ms, symbol, source, update_id, first_update_id,
            prev_update_id, *out)


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


def level_update_columns(
    symbol: str, ts_ms: int, event_ms: int, recv_ms: int, first_update_id: int,
    update_id: int, prev_update_id: int, bids: list[tuple[float, float]],
    asks: list[tuple[float, float]], is_snapshot: bool,
) -> list[list[Any]]:
    """``level_rows``' rows as columns (one list per ``book_updates`` column, in its order)."""
    nb = len(bids)
    n = nb + len(asks)
    levels = bids + asks
    return [[ts_ms] * n, [event_ms] * n, [recv_ms] * n, [symbol] * n, [first_update_id] * n,
            [update_id] * n, [prev_update_id] * n, ["bid"] * nb + ["ask"] * (n - nb),
            [p for p, _ in levels], [q for _, q in levels], [is_snapshot] * n]


def derivative_row(d: Derivative, recv_ms: int) -> Row:
    """A ``derivatives`` row (kinds.DERIVATIVES_SCHEMA) of any venue's ``Derivative``: the
    values it carries, null for the rest. ``ValueError`` for a value that is not a number."""
    return (d.event_ms or recv_ms, d.event_ms or None, recv_ms, d.symbol, d.source,
            d.mark_price, d.index_price, d.settle_price, d.funding_rate, d.next_funding_ms,
            d.open_interest)


def liquidation_row(q: Liquidation, recv_ms: int) -> Row:
    """A ``liquidations`` row (kinds.LIQUIDATIONS_SCHEMA) of any venue's ``Liquidation``."""
    return (q.trade_ms or q.event_ms or recv_ms, q.event_ms or None, recv_ms, q.symbol, q.side,
            q.price, q.qty, q.avg_price, q.filled_qty, q.status, q.order_type, q.time_in_force)


def trade_row(t: Trade, recv_ms: int) -> Row:
    """A ``prices`` row (kinds.PRICES_SCHEMA) of a venue-neutral trade record."""
    return (t.trade_ms, t.event_ms, recv_ms, t.symbol, t.agg_id, t.price, t.qty,
            t.first_id, t.last_id, t.buyer_maker, t.text_id)
