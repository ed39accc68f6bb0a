"""Rebuilding a full order book from a dataset's ``book_updates`` rows (one symbol's).

Owns the reading rule of that kind, which never relies on the order rows come in (files and
compaction do not keep write order):

- Eras. Binance's update ids only grow; OKX's ``seqId`` restarts lower after maintenance (a
  change with ``update_id < prev_update_id``, chained on the last id, no snapshot), Bybit's
  ``u`` restarts at 1 (written as a snapshot). So the rows split at *starts*: every snapshot
  and every change whose id is below its ``prev_update_id``, taken in time order (``ts_ms``,
  then ``recv_ms``, then update id: two snapshots of one instant, a resync's REST book and the
  socket's, are one era whichever order their rows come in). A start *restarts* the ids (opens
  a new era) when it is such a change or a snapshot whose id is no greater than the start
  before it; any other snapshot (a resync of growing ids: Binance's, and OKX's or Bybit's
  after a break) stays in its era. A row belongs to the last era started at or before its
  time; a row at the very time an era starts is put on the side whose ids it is nearer (the
  new era's first id or the old era's last).
  Data with growing ids is one era: the rule is exactly the one before eras existed, so a REST
  snapshot whose buffered diffs carry times before its own stays right. The limit: a restart
  the harvester never saw (ids restarted during a disconnect and the next snapshot's id is
  above its era's first) looks like growing ids, and is read so.
- Within an era, rows in update-id order (a snapshot's levels before the changes of an event
  with the same update id, rows of one update in file order); a snapshot's rows replace the
  whole book; a change sets a level's size, size 0 removes it; a change whose update id is
  older than the snapshot the book started from is already in that snapshot and is skipped,
  as is one before any snapshot (there is no book yet to change). An era opened by a restart
  change carries the book on from the era before (the venue chained it there).

Pure: polars frames in, plain values out; no I/O.

    >>> from trio_harvest.dataset import scan
    >>> from trio_harvest.dataset_book import best_by_update, rebuild
    >>> ups = scan("data", "book_updates", symbols=["BTCUSDT"]).collect()
    >>> book = rebuild(ups)                      # the book after the last update
    >>> book.best_bid(), book.best_ask()
    >>> tops = best_by_update(ups)               # best bid/ask after every update
"""

from __future__ import annotations

from bisect import bisect_right
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


def _ms(name: str, schema: pl.Schema) -> pl.Expr:
    """A time column as int ms (files hold UTC timestamps; older ones int ms)."""
    col = pl.col(name)
    return (col.dt.epoch("ms") if schema[name].is_temporal() else col).cast(pl.Int64)


def _frame(df: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The rows to read, with ``_n`` (file order), ``_t``/``_r`` (ts, recv as ms), ``_prev``."""
    frame = df.lazy() if isinstance(df, pl.DataFrame) else df
    schema = frame.collect_schema()
    names = schema.names()
    if "symbol" in names:
        n = frame.select(pl.col("symbol").n_unique()).collect().item()
        if n > 1:
            raise ValueError("book_updates of one symbol at a time (filter on symbol)")
    t = _ms("ts_ms", schema)
    r = _ms("recv_ms", schema).fill_null(t) if "recv_ms" in names else t
    prev = pl.col("prev_update_id") if "prev_update_id" in names else pl.lit(None, pl.Int64)
    return frame.select(*_COLUMNS, t.alias("_t"), r.alias("_r"),
                        prev.fill_null(-1).alias("_prev")).with_row_index("_n").collect()


@dataclass(slots=True)
class _Era:
    at: tuple[int, int]  # (ts, recv) of its start
    first: int  # update id of its start
    snapshot: bool  # started by a snapshot (else by a restart change: the book carries on)
    last: int = -1  # the highest update id of its rows (strictly after its start's time)


def _eras(rows: pl.DataFrame) -> list[_Era]:
    """The eras of ``rows``, in time order (see the module's docstring)."""
    starts = (rows.filter(pl.col("is_snapshot")
                          | ((pl.col("_prev") >= 0) & (pl.col("update_id") < pl.col("_prev"))))
              .group_by("_t", "_r", "update_id", "is_snapshot").agg(pl.col("_n").min())
              .sort("_t", "_r", "update_id", "_n"))
    eras: list[_Era] = []
    before = None
    for t, r, uid, snap, _n in starts.iter_rows():
        if not eras or not snap or (before is not None and uid <= before):
            eras.append(_Era((t, r), uid, snap))
        before = uid
    return eras


def _era_of_rows(rows: pl.DataFrame, eras: list[_Era]) -> pl.Series:
    """Each row's era: the last started at or before its time; at a start's very time, the
    side whose ids the row's is nearer."""
    at = [e.at for e in eras]
    times = list(zip(rows["_t"].to_list(), rows["_r"].to_list(), strict=True))
    uids = rows["update_id"].to_list()
    era = [max(0, bisect_right(at, k) - 1) for k in times]
    for i, e in enumerate(era):
        if times[i] != at[e]:
            eras[e].last = max(eras[e].last, uids[i])
    for i, e in enumerate(era):
        if e and times[i] == at[e] and uids[i] != eras[e].first:
            old = eras[e - 1].last
            if old >= 0 and uids[i] - eras[e].first > old - uids[i]:
                era[i] = e - 1
    return pl.Series("_era", era, dtype=pl.Int32)


def _updates(df: pl.DataFrame | pl.LazyFrame) -> Iterator[tuple[int | None, int, int, Any,
                                                                 list[Any]]]:
    """(era, update id, first update id, ts, levels) per update, in the reading order; ``era``:
    the first update id of the era this update opens (None: the same era as the one before);
    ``levels``: (side, price, qty, is_snapshot) rows."""
    rows = _frame(df)
    eras = _eras(rows)
    era = (_era_of_rows(rows, eras) if len(eras) > 1
           else pl.Series("_era", [0] * rows.height, dtype=pl.Int32))
    rows = rows.with_columns(era).sort("_era", "update_id", pl.col("is_snapshot").not_(), "_n")
    cur: tuple[int, int, bool] | None = None
    levels: list[Any] = []
    head: tuple[int | None, int, int, Any] = (None, 0, 0, None)
    for e, uid, first, ts, side, price, qty, snap in rows.select(
            "_era", *_COLUMNS).iter_rows():
        if cur != (e, uid, snap):
            if cur is not None:
                yield (*head, levels)
            opens = eras[e].first if e and (cur is None or cur[0] != e) else None
            cur, levels, head = (e, uid, snap), [], (opens, uid, first, ts)
        levels.append((side, price, qty, snap))
    if cur is not None:
        yield (*head, levels)


def _apply(book: Book, era: int | None, uid: int, levels: list[Any]) -> None:
    if era is not None and book.snapshot_id >= 0:
        # a restart: the ids start over at the era's first (a snapshot, or a change that
        # carries the book on); anything below it is not of this era's chain
        book.snapshot_id = era
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
    ``until`` when given: reading stops at the first update above it, so where ids restart,
    in the first era that passes it)."""
    book = Book()
    for era, uid, _first, _ts, levels in _updates(book_updates):
        if until is not None and uid > until:
            break
        _apply(book, era, uid, levels)
    return book


def best_by_update(book_updates: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The best bid and ask after each update of one symbol's ``book_updates`` rows: columns
    ``first_update_id``, ``update_id``, ``ts_ms``, ``bid``, ``bid_qty``, ``ask``, ``ask_qty``,
    ``is_snapshot`` (null prices while a side is empty)."""
    book = Book()
    out: list[tuple[Any, ...]] = []
    for era, uid, first, ts, levels in _updates(book_updates):
        _apply(book, era, uid, levels)
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
