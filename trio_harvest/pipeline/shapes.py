"""The hot-path shapes of column builders: each ``add`` reads one decoded message (or one
signal update) straight into typed column buffers, with no row tuple in between.

Owns the column layout of each shape: trades as ``prices`` rows; quotes as ``quotes`` rows;
partial depth as ``orderbook`` rows with every level in one flat float buffer
(bids then asks, price and size interleaved, NaN-padded); ``ofi`` and ``cvd`` rows from the
signal engine. Trades, quotes, ``ofi`` and ``cvd`` rows are packed (``packed.py``): one record
per row, split into columns per chunk. A shape's frame has its own columns; ``Batch.to_frame``
completes the schema.
Pure: no trio, no I/O; an ``add`` appends a whole row or rolls back and raises ``BadValue``.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Sequence
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from ..codegen import compiled
from ..kinds import Row, Schema
from ..venues.base import QUOTE
from .chunks import NAN, BadValue, Builder, join_buffers
from .packed import PACK_ERRORS, Packed

if TYPE_CHECKING:
    from ..venues.base import BookLevels, Quote, Trade

_chain = chain.from_iterable


class Shape(Builder):
    """A builder whose columns are declared in ``FIELDS``: (attribute, column name, array
    typecode or ``"s"`` for a list of strings). Rollback, size, merging and the frame are
    generic; each shape writes its own ``add`` for speed."""

    __slots__ = ()
    FIELDS: tuple[tuple[str, str, str], ...] = ()
    ts: array[int]

    def __init__(self) -> None:
        super().__init__()
        for attr, _name, code in self.FIELDS:
            setattr(self, attr, [] if code == "s" else array(code))

    def _cols(self) -> list[Any]:
        return [getattr(self, attr) for attr, _, _ in self.FIELDS]

    def ts_values(self) -> Sequence[int]:
        return self.ts

    def rollback(self) -> None:
        for col in self._cols():
            del col[self.n:]

    def nbytes(self) -> int:
        return sum(c.itemsize * len(c) if isinstance(c, array) else 8 * len(c)
                   for c in self._cols())

    def column_buffers(self, schema: Schema) -> dict[str, Any]:
        return {name: getattr(self, attr) for attr, name, _code in self.FIELDS}


# a ``prices`` tuple row is 11 wide; one from a journal written before ``trade_id``, 10
TRADE_WIDTHS = (11, 10)


class TradeBuilder(Packed):
    """``prices`` rows straight from decoded trade records (the symbol is the lane's)."""

    __slots__ = ("text",)
    text: list[str | None]  # the venue's text id (None where ``agg_id`` is the venue's id)
    FIELDS = (("ts_ms", "q"), ("event_ms", "q"), ("recv_ms", "q"), ("agg_id", "q"),
              ("price", "d"), ("qty", "d"), ("first_id", "q"), ("last_id", "q"),
              ("is_buyer_maker", "b"))
    TEXT = (("text", "trade_id"),)

    def add(self, t: Trade, recv_ms: int) -> None:
        try:
            self.rec += self.PACK(t.trade_ms, t.event_ms, recv_ms, t.agg_id, t.price, t.qty,
                                  t.first_id, t.last_id, t.buyer_maker)
        except PACK_ERRORS as exc:
            raise BadValue(f"trade: {exc}") from None
        self.text.append(t.text_id)
        self.n += 1

    def add_row(self, row: Row) -> None:
        """A ``prices`` row given as a tuple (backfill, rows the repair gate held; a row of a
        journal written before ``trade_id`` lacks it: null)."""
        ts, event, recv, _symbol, agg_id, price, qty, first, last, maker = row[:10]
        text = row[10] if len(row) > 10 else None
        if text is not None and not isinstance(text, str):
            raise BadValue(f"prices row: trade_id {text!r} is not a string")
        try:
            self.rec += self.PACK(ts, event, recv, agg_id, price, qty, first, last, maker)
        except PACK_ERRORS as exc:
            raise BadValue(f"prices row: {exc}") from None
        self.text.append(text)
        self.n += 1


# an ``orderbook`` row's head columns after ``ts_ms`` and ``source``, in the order a depth
# builder's row record packs them (int64 each): (record field, column name)
_BOOK_HEAD = (("event", "event_ms"), ("recv", "recv_ms"), ("uid", "update_id"),
              ("first_uid", "first_update_id"), ("prev_uid", "prev_update_id"))
_HEAD = struct.Struct(f"={len(_BOOK_HEAD)}q")
_HEAD_WIDTH = len(_BOOK_HEAD)  # the head's int64 values at the start of each row record


class QuoteBuilder(Packed):
    """``quotes`` rows from decoded quote records (the symbol is the lane's). A venue that sends
    no event time: the event and partition times are the receive time, as they always were."""

    __slots__ = ()
    FIELDS = (("ts_ms", "q"), ("event_ms", "q"), ("recv_ms", "q"), ("update_id", "q"),
              ("bid", "d"), ("bid_qty", "d"), ("ask", "d"), ("ask_qty", "d"))

    def add(self, b: Quote, recv_ms: int) -> None:
        ts = b.trade_ms or b.event_ms or recv_ms
        try:
            self.rec += self.PACK(ts, b.event_ms or ts, recv_ms, b.update_id, b.bid, b.bid_qty,
                                  b.ask, b.ask_qty)
        except PACK_ERRORS as exc:
            raise BadValue(f"quote: {exc}") from None
        self.n += 1

    def add_row(self, row: Row) -> None:
        """A ``quotes`` row given as a tuple (rows the repair gate held)."""
        ts, event, recv, _symbol, uid, bid, bid_sz, ask, ask_sz = row
        try:
            self.rec += self.PACK(ts, event, recv, uid, bid, bid_sz, ask, ask_sz)
        except PACK_ERRORS as exc:
            raise BadValue(f"quotes row: {exc}") from None
        self.n += 1


def quote_row(b: Quote, recv_ms: int) -> Row:
    """The ``quotes`` row of a decoded quote, as a tuple (what ``QuoteBuilder.add`` appends)."""
    ts = b.trade_ms or b.event_ms or recv_ms
    return (ts, b.event_ms or ts, recv_ms, b.symbol, b.update_id, b.bid, b.bid_qty, b.ask,
            b.ask_qty)


class RowQuote:
    """A ``quotes`` row read back as a quote record: what the signal hooks get for a quote the
    repair gate held and then released (never on the hot path)."""

    __slots__ = ("ask", "ask_qty", "bid", "bid_qty", "event_ms", "symbol", "trade_ms",
                 "update_id")
    kind: ClassVar[int] = QUOTE

    def __init__(self, row: Row) -> None:
        (self.trade_ms, self.event_ms, _recv, self.symbol, self.update_id, self.bid,
         self.bid_qty, self.ask, self.ask_qty) = row


@cache
def _levels_record(levels: int) -> Callable[..., bytes]:
    """``flat(event, recv, uid, first, prev, bids, asks)``: a row's record, its head's five int64
    values then a full book's ``4 * levels`` floats (bids then asks, price and size
    interleaved), packed in one C call per row. The argument list is written out level by level
    (``*b[0], *b[1], …``, compiled once per depth): unpacking a short tuple is cheaper than
    iterating a chain of them (about 40 % less per depth20 message)."""
    args = ", ".join(["e, r, u, f, p"] + [f"*b[{i}]" for i in range(levels)]
                     + [f"*a[{i}]" for i in range(levels)])
    flat: Callable[..., bytes] = compiled(
        "flat", ["def flat(e, r, u, f, p, b, a):", f"    return pack({args})"],
        {"pack": struct.Struct(f"={_HEAD_WIDTH}q{4 * levels}d").pack})
    return flat


class DepthBuilder(Shape):
    """``orderbook`` rows from partial-depth messages: every level of a row in one flat record of
    floats (bids then asks, price and size interleaved), padded with NaN to ``levels``.

    A row is kept as the one ``bytes`` record the message was packed into, in a list, and joined
    only when read (a file, a batch of signals): the head's int64 values (``_BOOK_HEAD``:
    event, receive, update ids) then the levels. Only ``ts`` (which batches and taps read by
    position) and ``source`` (text) are columns of their own. Appending to growing buffers
    instead (a column per head value, one for the levels) copied them again at every growth
    step, costly when hundreds of lanes grow at once, and took one ``array.append`` per head
    value."""

    __slots__ = ("_levels", "_pad", "levels", "padded", "rows", "source", "ts")
    ts: array[int]
    source: list[str]
    FIELDS = (("ts", "ts_ms", "q"), ("source", "source", "s"))
    HEAD_BYTES = 8 * _HEAD_WIDTH  # where a row record's levels start

    def __init__(self, levels: int) -> None:
        Builder.__init__(self)
        self.ts = array("q")
        self.source = []
        self.rows: list[bytes] = []  # per row: its head, then its ``4 * levels`` floats
        self.levels = levels
        self._levels = _levels_record(levels)
        self._pad = array("d", [NAN]) * (2 * levels)
        self.padded = False  # some row had fewer than ``levels`` levels on a side

    def _matrix(self, rows: list[bytes]) -> np.ndarray[Any, Any]:
        """``rows`` as one (rows, head + levels) int64 matrix (a view of one joined copy)."""
        width = _HEAD_WIDTH + 4 * self.levels
        return np.frombuffer(b"".join(rows), dtype=np.int64).reshape(-1, width)

    @property
    def lv(self) -> array[float]:
        """Every row's levels in one flat buffer (a new copy)."""
        m = self._matrix(self.rows)[:, _HEAD_WIDTH:]
        return array("d", np.ascontiguousarray(m).tobytes())

    def head(self, rows: list[bytes] | None = None) -> dict[str, array[int]]:
        """The head columns (``_BOOK_HEAD``, by column name) of ``rows`` (None: this chunk's),
        each a new ``array``."""
        m = self._matrix(self.rows if rows is None else rows)
        return {name: array("q", np.ascontiguousarray(m[:, i]).tobytes())
                for i, (_attr, name) in enumerate(_BOOK_HEAD)}

    def _cols(self) -> list[Any]:
        return [self.ts, self.source, *self.head().values(), self.lv]

    def nbytes(self) -> int:
        return 8 * (2 * self.n + (_HEAD_WIDTH + 4 * self.levels) * len(self.rows))

    def add(self, d: BookLevels, recv_ms: int, source: str) -> None:
        n = self.levels
        bids, asks = d.bids, d.asks
        ts = self.ts
        try:
            ts.append(d.trade_ms or d.event_ms)
            if len(bids) == n and len(asks) == n:  # the usual message: one C-level pack
                row = self._levels(d.event_ms, recv_ms, d.update_id, d.first_update_id,
                                   d.prev_update_id, bids, asks)
            else:
                row = self._padded(d, recv_ms)
        except (struct.error, OverflowError, TypeError) as exc:  # an id, a level not (px, sz)
            del ts[self.n:]
            raise BadValue(f"book levels: {exc}") from None
        self.rows.append(row)
        self.source.append(source)
        self.n += 1

    def _padded(self, d: BookLevels, recv_ms: int) -> bytes:
        """The record of a book with more or fewer than ``levels`` levels on a side."""
        n = self.levels
        lv = array("d")
        for side in (d.bids, d.asks):
            k = len(side)
            if k == n:
                lv.extend(_chain(side))
            elif k > n:
                lv.extend(_chain(side[:n]))
            else:
                lv.extend(_chain(side))
                lv.extend(self._pad[: 2 * (n - k)])
                self.padded = True
        return _HEAD.pack(d.event_ms, recv_ms, d.update_id, d.first_update_id,
                          d.prev_update_id) + lv.tobytes()

    def add_row(self, row: Row) -> None:
        """An ``orderbook`` row given as a tuple (a local book built from diffs, rows the repair
        gate held): levels interleaved per level in the tuple, bids then asks here."""
        n = self.levels
        levels = row[8:]
        if len(levels) != 4 * n:
            raise BadValue(f"orderbook row has {len(levels) // 4} levels, expected {n}")
        ts, event, recv, _symbol, source, uid, first_uid, prev_uid = row[:8]
        padded = False
        try:
            head = _HEAD.pack(event, recv, uid, first_uid, prev_uid)
            lv = array("d")
            try:  # every level there (the usual row): one C-level copy, all or nothing
                lv.fromlist([*_chain(zip(levels[0::4], levels[1::4], strict=True)),
                             *_chain(zip(levels[2::4], levels[3::4], strict=True))])
            except TypeError:  # a missing level (None), or a value no column holds (raises)
                for side in (0, 2):
                    for i in range(n):
                        px, sz = levels[4 * i + side], levels[4 * i + side + 1]
                        if px is None or sz is None:
                            padded = True
                            px = NAN if px is None else px
                            sz = NAN if sz is None else sz
                        lv.append(px)
                        lv.append(sz)
            self.ts.append(ts)
        except (struct.error, OverflowError, TypeError, ValueError) as exc:
            raise BadValue(f"orderbook row: {exc}") from None
        if padded:
            self.padded = True
        self.rows.append(head + lv.tobytes())
        self.source.append(source)
        self.n += 1

    def rollback(self) -> None:
        del self.ts[self.n:]
        del self.source[self.n:]
        del self.rows[self.n:]

    def _level_names(self) -> list[str]:
        return [f"{side}_{what}_{i + 1}" for i in range(self.levels)
                for side, what in (("bid", "px"), ("bid", "sz"), ("ask", "px"), ("ask", "sz"))]

    def column_buffers(self, schema: Schema) -> dict[str, Any]:
        return self.join_columns([self], schema)

    def nan_columns(self) -> set[str]:
        return set(self._level_names()) if self.padded else set()

    def group_key(self) -> Any:
        return (DepthBuilder, self.levels)

    def join_columns(self, members: Sequence[Builder], schema: Schema) -> dict[str, Any]:
        """The records of ``members`` joined once, then cut by NumPy: each head value into its
        column, the levels turned column-major by one copy into one Polars Series and cut into
        a zero-copy slice per level and side (one Series built for all levels, not one per
        column or per chunk). ``ts`` and ``source`` joined as usual."""
        depth = [c for c in members if isinstance(c, DepthBuilder)]
        sizes = [c.n for c in depth]
        out: dict[str, Any] = {
            "ts_ms": join_buffers([c.ts for c in depth], sizes, None),
            "source": join_buffers([c.source for c in depth], sizes, None)}
        n = self.levels
        m = self._matrix([r for c in depth for r in c.rows])
        rows = m.shape[0]
        for i, (_attr, name) in enumerate(_BOOK_HEAD):
            out[name] = array("q", np.ascontiguousarray(m[:, i]).tobytes())
        levels = pl.Series(np.ascontiguousarray(m[:, _HEAD_WIDTH:].view(np.float64).T)
                           .reshape(-1))
        for i in range(n):
            for name, col in ((f"bid_px_{i + 1}", 2 * i), (f"bid_sz_{i + 1}", 2 * i + 1),
                              (f"ask_px_{i + 1}", 2 * n + 2 * i),
                              (f"ask_sz_{i + 1}", 2 * n + 2 * i + 1)):
                out[name] = levels.slice(col * rows, rows)
        return out


class OfiBuilder(Packed):
    """``ofi`` rows from the signal engine (one per book update)."""

    __slots__ = ("nulls", "source")
    source: list[str]
    FIELDS = (("ts_ms", "q"), ("ofi_l1", "d"), ("ofi_ml", "d"), ("bid", "d"), ("ask", "d"),
              ("bid_sz", "d"), ("ask_sz", "d"))
    TEXT = (("source", "source"),)

    def __init__(self) -> None:
        super().__init__()
        self.nulls = False  # some row lacked a best bid/ask

    def nan_columns(self) -> set[str]:
        names = {"ofi_l1", "ofi_ml"}
        return names | {"bid", "ask", "bid_sz", "ask_sz"} if self.nulls else names

    def add(self, ts: int, source: str, ofi1: float | None, ofim: float | None,
            bid: float | None, ask: float | None, bid_sz: float | None,
            ask_sz: float | None) -> None:
        try:
            self.rec += self.PACK(ts, NAN if ofi1 is None else ofi1,
                                  NAN if ofim is None else ofim, bid, ask, bid_sz, ask_sz)
        except PACK_ERRORS:
            self._add_nulls(ts, source, ofi1, ofim, bid, ask, bid_sz, ask_sz)
            return
        self.source.append(source)
        self.n += 1

    def _add_nulls(self, ts: int, source: str, ofi1: float | None, ofim: float | None,
                   bid: float | None, ask: float | None, bid_sz: float | None,
                   ask_sz: float | None) -> None:
        """A row without a best bid or ask (None: NaN, remembered as null), or a bad one."""
        values = (bid, ask, bid_sz, ask_sz)
        try:
            self.rec += self.PACK(ts, NAN if ofi1 is None else ofi1,
                                  NAN if ofim is None else ofim,
                                  *(NAN if v is None else v for v in values))
        except PACK_ERRORS as exc:
            raise BadValue(f"ofi: {exc}") from None
        if None in values:
            self.nulls = True
        self.source.append(source)
        self.n += 1


class CvdBuilder(Packed):
    """``cvd`` rows from the signal engine (one per trade)."""

    __slots__ = ()
    FIELDS = (("ts_ms", "q"), ("agg_id", "q"), ("delta", "d"), ("cvd", "d"), ("gap", "b"))

    def add(self, ts: int, agg_id: int, delta: float, cvd: float, gap: bool) -> None:
        try:
            self.rec += self.PACK(ts, agg_id, delta, cvd, gap)
        except PACK_ERRORS as exc:
            raise BadValue(f"cvd: {exc}") from None
        self.n += 1
