"""The hot-path shapes of column builders: each ``add`` reads one decoded message (or one
signal update) straight into typed column buffers, with no row tuple in between.

Owns the column layout of each shape: trades as ``prices`` rows; quotes as ``quotes`` rows;
partial depth as ``orderbook`` rows with every level in one flat float buffer
(bids then asks, price and size interleaved, NaN-padded); ``ofi`` and ``cvd`` rows from the
signal engine. A shape's frame has its own columns; ``Batch.to_frame`` completes the schema.
Pure: no trio, no I/O; an ``add`` appends a whole row or rolls back and raises ``BadValue``.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..kinds import Row, Schema
from ..venues.base import QUOTE
from .chunks import NAN, BadValue, Builder, join_buffers

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


class TradeBuilder(Shape):
    """``prices`` rows straight from decoded trade records (the symbol is the lane's)."""

    __slots__ = ("agg_id", "event", "first", "last", "maker", "price", "qty", "recv", "text",
                 "ts")
    ts: array[int]
    event: array[int]
    recv: array[int]
    agg_id: array[int]
    price: array[float]
    qty: array[float]
    first: array[int]
    last: array[int]
    maker: array[int]
    text: list[str | None]  # the venue's text id (None where ``agg_id`` is the venue's id)
    FIELDS = (("ts", "ts_ms", "q"), ("event", "event_ms", "q"), ("recv", "recv_ms", "q"),
              ("agg_id", "agg_id", "q"), ("price", "price", "d"), ("qty", "qty", "d"),
              ("first", "first_id", "q"), ("last", "last_id", "q"),
              ("maker", "is_buyer_maker", "b"), ("text", "trade_id", "s"))

    def add(self, t: Trade, recv_ms: int) -> None:
        try:
            self.agg_id.append(t.agg_id)
            self.first.append(t.first_id)
            self.last.append(t.last_id)
            self.ts.append(t.trade_ms)
            self.event.append(t.event_ms)
        except (OverflowError, TypeError) as exc:
            self.rollback()
            raise BadValue(f"trade: {exc}") from None
        self.recv.append(recv_ms)
        self.price.append(t.price)
        self.qty.append(t.qty)
        self.maker.append(t.buyer_maker)
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
            self.ts.append(ts)
            self.event.append(event)
            self.recv.append(recv)
            self.agg_id.append(agg_id)
            self.price.append(price)
            self.qty.append(qty)
            self.first.append(first)
            self.last.append(last)
            self.maker.append(maker)
        except (OverflowError, TypeError, ValueError) as exc:
            self.rollback()
            raise BadValue(f"prices row: {exc}") from None
        self.text.append(text)
        self.n += 1


_BOOK_HEAD = (("ts", "ts_ms", "q"), ("event", "event_ms", "q"), ("recv", "recv_ms", "q"),
              ("source", "source", "s"), ("uid", "update_id", "q"),
              ("first_uid", "first_update_id", "q"), ("prev_uid", "prev_update_id", "q"))


def _add_head(b: Any, row: Row) -> None:
    ts, event, recv, _symbol, source, uid, first_uid, prev_uid = row[:8]
    b.ts.append(ts)
    b.event.append(event)
    b.recv.append(recv)
    b.uid.append(uid)
    b.first_uid.append(first_uid)
    b.prev_uid.append(prev_uid)
    b.source.append(source)


class QuoteBuilder(Shape):
    """``quotes`` rows from decoded quote records (the symbol is the lane's). A venue that sends
    no event time: the event and partition times are the receive time, as they always were."""

    __slots__ = ("ask", "ask_sz", "bid", "bid_sz", "event", "recv", "ts", "uid")
    ts: array[int]
    event: array[int]
    recv: array[int]
    uid: array[int]
    bid: array[float]
    bid_sz: array[float]
    ask: array[float]
    ask_sz: array[float]
    FIELDS = (("ts", "ts_ms", "q"), ("event", "event_ms", "q"), ("recv", "recv_ms", "q"),
              ("uid", "update_id", "q"), ("bid", "bid", "d"), ("bid_sz", "bid_qty", "d"),
              ("ask", "ask", "d"), ("ask_sz", "ask_qty", "d"))

    def add(self, b: Quote, recv_ms: int) -> None:
        ts = b.trade_ms or b.event_ms or recv_ms
        try:
            self.uid.append(b.update_id)
            self.ts.append(ts)
            self.event.append(b.event_ms or ts)
        except (OverflowError, TypeError) as exc:
            self.rollback()
            raise BadValue(f"quote: {exc}") from None
        self.recv.append(recv_ms)
        self.bid.append(b.bid)
        self.bid_sz.append(b.bid_qty)
        self.ask.append(b.ask)
        self.ask_sz.append(b.ask_qty)
        self.n += 1

    def add_row(self, row: Row) -> None:
        """A ``quotes`` row given as a tuple (rows the repair gate held)."""
        ts, event, recv, _symbol, uid, bid, bid_sz, ask, ask_sz = row
        try:
            self.ts.append(ts)
            self.event.append(event)
            self.recv.append(recv)
            self.uid.append(uid)
            self.bid.append(bid)
            self.bid_sz.append(bid_sz)
            self.ask.append(ask)
            self.ask_sz.append(ask_sz)
        except (OverflowError, TypeError, ValueError) as exc:
            self.rollback()
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


class DepthBuilder(Shape):
    """``orderbook`` rows from partial-depth messages: every level of a row in one flat float
    buffer (bids then asks, price and size interleaved), padded with NaN to ``levels``."""

    __slots__ = ("_pad", "event", "first_uid", "levels", "lv", "padded", "prev_uid", "recv",
                 "source", "ts", "uid")
    ts: array[int]
    event: array[int]
    recv: array[int]
    source: list[str]
    uid: array[int]
    first_uid: array[int]
    prev_uid: array[int]
    lv: array[float]
    FIELDS = (*_BOOK_HEAD, ("lv", "", "d"))

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.levels = levels
        self._pad = array("d", [NAN]) * (2 * levels)
        self.padded = False  # some row had fewer than ``levels`` levels on a side

    def add(self, d: BookLevels, recv_ms: int, source: str) -> None:
        try:
            self.uid.append(d.update_id)
            self.first_uid.append(d.first_update_id)
            self.prev_uid.append(d.prev_update_id)
            self.ts.append(d.trade_ms or d.event_ms)
            self.event.append(d.event_ms)
        except (OverflowError, TypeError) as exc:
            self.rollback()
            raise BadValue(f"book levels: {exc}") from None
        self.recv.append(recv_ms)
        self.source.append(source)
        n = self.levels
        lv = self.lv
        bids, asks = d.bids, d.asks
        if len(bids) == n and len(asks) == n:  # the usual message: one C-level copy
            lv.fromlist([*_chain(bids), *_chain(asks)])
            self.n += 1
            return
        for side in (bids, asks):
            k = len(side)
            if k == n:
                lv.extend(_chain(side))
            elif k > n:
                lv.extend(_chain(side[:n]))
            else:
                lv.extend(_chain(side))
                lv.extend(self._pad[: 2 * (n - k)])
                self.padded = True
        self.n += 1

    def add_row(self, row: Row) -> None:
        """An ``orderbook`` row given as a tuple (a local book built from diffs, rows the repair
        gate held): levels interleaved per level in the tuple, bids then asks here."""
        n = self.levels
        levels = row[8:]
        if len(levels) != 4 * n:
            raise BadValue(f"orderbook row has {len(levels) // 4} levels, expected {n}")
        try:
            _add_head(self, row)
            lv = self.lv
            try:  # every level there (the usual row): one C-level copy, all or nothing
                lv.fromlist([*_chain(zip(levels[0::4], levels[1::4], strict=True)),
                             *_chain(zip(levels[2::4], levels[3::4], strict=True))])
            except TypeError:  # a missing level (None), or a value no column holds (raises)
                for side in (0, 2):
                    for i in range(n):
                        px, sz = levels[4 * i + side], levels[4 * i + side + 1]
                        if px is None or sz is None:
                            self.padded = True
                            px = NAN if px is None else px
                            sz = NAN if sz is None else sz
                        lv.append(px)
                        lv.append(sz)
        except (OverflowError, TypeError, ValueError) as exc:
            self.rollback()
            raise BadValue(f"orderbook row: {exc}") from None
        self.n += 1

    def rollback(self) -> None:
        for col in self._cols()[:-1]:
            del col[self.n:]
        del self.lv[self.n * 4 * self.levels:]

    def _level_names(self) -> list[str]:
        return [f"{side}_{what}_{i + 1}" for i in range(self.levels)
                for side, what in (("bid", "px"), ("bid", "sz"), ("ask", "px"), ("ask", "sz"))]

    def column_buffers(self, schema: Schema) -> dict[str, Any]:
        out = {name: getattr(self, attr) for attr, name, _code in self.FIELDS[:-1]}
        lv, n = self.lv, self.levels
        width = 4 * n
        for i in range(n):  # a strided slice of an array is one C-level copy
            out[f"bid_px_{i + 1}"] = lv[2 * i::width]
            out[f"bid_sz_{i + 1}"] = lv[2 * i + 1::width]
            out[f"ask_px_{i + 1}"] = lv[2 * n + 2 * i::width]
            out[f"ask_sz_{i + 1}"] = lv[2 * n + 2 * i + 1::width]
        return out

    def nan_columns(self) -> set[str]:
        return set(self._level_names()) if self.padded else set()

    def group_key(self) -> Any:
        return (DepthBuilder, self.levels)

    def join_columns(self, members: Sequence[Builder], schema: Schema) -> dict[str, Any]:
        """Head columns joined as usual; the flat level buffers joined once and cut into one
        column per level and side by NumPy (a strided copy each), not chunk by chunk."""
        sizes = [c.n for c in members]
        out = {name: join_buffers([getattr(c, attr) for c in members], sizes, None)
               for attr, name, _code in self.FIELDS[:-1]}
        n, width = self.levels, 4 * self.levels
        lv = join_buffers([c.lv for c in members if isinstance(c, DepthBuilder)], sizes, None)
        m = np.frombuffer(lv, dtype=np.float64).reshape(-1, width)
        for i in range(n):
            out[f"bid_px_{i + 1}"] = np.ascontiguousarray(m[:, 2 * i])
            out[f"bid_sz_{i + 1}"] = np.ascontiguousarray(m[:, 2 * i + 1])
            out[f"ask_px_{i + 1}"] = np.ascontiguousarray(m[:, 2 * n + 2 * i])
            out[f"ask_sz_{i + 1}"] = np.ascontiguousarray(m[:, 2 * n + 2 * i + 1])
        return out


class OfiBuilder(Shape):
    """``ofi`` rows from the signal engine (one per book update)."""

    __slots__ = ("ask", "ask_sz", "bid", "bid_sz", "ml", "nulls", "ofi", "source", "ts")
    ts: array[int]
    source: list[str]
    ofi: array[float]
    ml: array[float]
    bid: array[float]
    ask: array[float]
    bid_sz: array[float]
    ask_sz: array[float]
    FIELDS = (("ts", "ts_ms", "q"), ("source", "source", "s"), ("ofi", "ofi_l1", "d"),
              ("ml", "ofi_ml", "d"), ("bid", "bid", "d"), ("ask", "ask", "d"),
              ("bid_sz", "bid_sz", "d"), ("ask_sz", "ask_sz", "d"))

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
            self.ts.append(ts)
        except (OverflowError, TypeError) as exc:
            raise BadValue(f"ofi: {exc}") from None
        self.source.append(source)
        self.ofi.append(NAN if ofi1 is None else ofi1)
        self.ml.append(NAN if ofim is None else ofim)
        if bid is None or ask is None or bid_sz is None or ask_sz is None:
            self.nulls = True
            bid = NAN if bid is None else bid
            ask = NAN if ask is None else ask
            bid_sz = NAN if bid_sz is None else bid_sz
            ask_sz = NAN if ask_sz is None else ask_sz
        self.bid.append(bid)
        self.ask.append(ask)
        self.bid_sz.append(bid_sz)
        self.ask_sz.append(ask_sz)
        self.n += 1


class CvdBuilder(Shape):
    """``cvd`` rows from the signal engine (one per trade)."""

    __slots__ = ("agg_id", "cvd", "delta", "gap", "ts")
    ts: array[int]
    agg_id: array[int]
    delta: array[float]
    cvd: array[float]
    gap: array[int]
    FIELDS = (("ts", "ts_ms", "q"), ("agg_id", "agg_id", "q"), ("delta", "delta", "d"),
              ("cvd", "cvd", "d"), ("gap", "gap", "b"))

    def add(self, ts: int, agg_id: int, delta: float, cvd: float, gap: bool) -> None:
        try:
            self.ts.append(ts)
            self.agg_id.append(agg_id)
        except (OverflowError, TypeError) as exc:
            self.rollback()
            raise BadValue(f"cvd: {exc}") from None
        self.delta.append(delta)
        self.cvd.append(cvd)
        self.gap.append(gap)
        self.n += 1
