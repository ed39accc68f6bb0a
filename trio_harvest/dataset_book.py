"""Rebuilding a full order book from a dataset's ``book_updates`` rows (one symbol's).

Owns the reading rule of that kind: rows in update-id order (a snapshot's levels before the
changes of an event with the same update id, rows of one update in file order); a snapshot's
rows replace the whole book; a change sets a level's size, size 0 removes it; a change whose
update id is older than the snapshot the book started from is already in that snapshot and is
skipped, as is one before any snapshot (there is no book yet to change). Pure: polars frames in,
plain values out; no I/O.

    >>> from trio_harvest.dataset import scan
    >>> from trio_harvest.dataset_book import best_by_update, rebuild
    >>> ups = scan("data", "book_updates", symbols=["BTCUSDT"]).collect()
    >>> book = rebuild(ups)                      # the book after the last update
    >>> book.best_bid(), book.best_ask()
    >>> tops = best_by_update(ups)               # best bid/ask after every update
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

_COLUMNS = ("update_id", "first_update_id", "ts_ms", "side", "price", "qty", "is_snapshot")


@dataclass(slots=True)
class Book:
    """A rebuilt book: price -> size per side, and the update id it is at (-1: empty)."""

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    update_id: int = -1
    snapshot_id: int = -1  # the update id of the snapshot it started from

    def best_bid(self) -> tuple[float, float] | None:
        if not self.bids:
            return None
        p = max(self.bids)
        return p, self.bids[p]

    def best_ask(self) -> tuple[float, float] | None:
        if not self.asks:
            return None
        p = min(self.asks)
        return p, self.asks[p]

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The best ``n`` bids (highest first) and asks (lowest first)."""
        bids = sorted(self.bids.items(), key=lambda kv: -kv[0])[:n]
        asks = sorted(self.asks.items())[:n]
        return bids, asks


def _updates(df: pl.DataFrame | pl.LazyFrame) -> Iterator[tuple[int, int, Any, list[Any]]]:
    """(update id, first update id, ts, levels) per update, in the reading order; ``levels``:
    (side, price, qty, is_snapshot) rows."""
    frame = df.lazy() if isinstance(df, pl.DataFrame) else df
    if "symbol" in frame.collect_schema().names():
        n = frame.select(pl.col("symbol").n_unique()).collect().item()
        if n > 1:
            raise ValueError("book_updates of one symbol at a time (filter on symbol)")
    rows = (frame.select(*_COLUMNS).with_row_index("_n")
            .sort("update_id", pl.col("is_snapshot").not_(), "_n").collect())
    cur: tuple[int, bool] | None = None
    levels: list[Any] = []
    head: tuple[int, int, Any] = (0, 0, None)
    for uid, first, ts, side, price, qty, snap in rows.select(*_COLUMNS).iter_rows():
        if cur != (uid, snap):
            if cur is not None:
                yield (*head, levels)
            cur, levels, head = (uid, snap), [], (uid, first, ts)
        levels.append((side, price, qty, snap))
    if cur is not None:
        yield (*head, levels)


def _apply(book: Book, uid: int, levels: list[Any]) -> None:
    if levels[0][3]:  # a snapshot: the book starts over from its levels
        book.bids, book.asks = {}, {}
        book.snapshot_id = uid
    elif uid < book.snapshot_id or book.snapshot_id < 0:
        return  # already in the snapshot, or no snapshot yet to change
    for side, price, qty, _snap in levels:
        sizes = book.bids if side == "bid" else book.asks
        if qty > 0:
            sizes[price] = qty
        else:
            sizes.pop(price, None)
    book.update_id = uid


def rebuild(book_updates: pl.DataFrame | pl.LazyFrame, until: int | None = None) -> Book:
    """The book after every update of one symbol's ``book_updates`` rows (up to update id
    ``until`` when given)."""
    book = Book()
    for uid, _first, _ts, levels in _updates(book_updates):
        if until is not None and uid > until:
            break
        _apply(book, uid, levels)
    return book


def best_by_update(book_updates: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The best bid and ask after each update of one symbol's ``book_updates`` rows: columns
    ``first_update_id``, ``update_id``, ``ts_ms``, ``bid``, ``bid_qty``, ``ask``, ``ask_qty``,
    ``is_snapshot`` (null prices while a side is empty)."""
    book = Book()
    out: list[tuple[Any, ...]] = []
    for uid, first, ts, levels in _updates(book_updates):
        _apply(book, uid, levels)
        if book.update_id != uid:
            continue  # skipped: older than the snapshot
        b, a = book.best_bid(), book.best_ask()
        out.append((first, uid, ts, *(b or (None, None)), *(a or (None, None)), levels[0][3]))
    schema: dict[str, Any] = {"first_update_id": pl.Int64, "update_id": pl.Int64, "ts_ms": pl.Int64,
              "bid": pl.Float64, "bid_qty": pl.Float64, "ask": pl.Float64,
              "ask_qty": pl.Float64, "is_snapshot": pl.Boolean}
    ts_type = (book_updates.collect_schema() if isinstance(book_updates, pl.LazyFrame)
               else book_updates.schema)["ts_ms"]
    schema["ts_ms"] = ts_type
    return pl.DataFrame(out, schema=schema, orient="row")
