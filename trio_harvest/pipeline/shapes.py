"""The hot-path shapes of column builders: each ``add`` reads one decoded message (or one
signal update) straight into typed column buffers, with no row tuple in between.

Owns the column layout of each shape: aggTrades as ``prices`` rows; bookTicker as best-level
``orderbook`` rows; partial depth as ``orderbook`` rows with every level in one flat float buffer
(bids then asks, price and size interleaved, NaN-padded); ``ofi`` and ``cvd`` rows from the
signal engine. A shape's frame has its own columns; ``Batch.to_frame`` completes the schema.
Pure: no trio, no I/O; an ``add`` appends a whole row or rolls back and raises ``BadValue``.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

import polars as pl

from ..kinds import CVD_SCHEMA, OFI_SCHEMA, PRICES_SCHEMA
from .chunks import NAN, BadValue, Builder, _series

if TYPE_CHECKING:
    from ..binance.decode import AggTrade, BookTicker, DepthUpdate

_chain = chain.from_iterable


class TradeBuilder(Builder):
    """``prices`` rows straight from decoded aggTrades (the symbol is the lane's)."""

    __slots__ = ("agg_id", "event", "first", "last", "maker", "price", "qty", "recv", "ts")

    def __init__(self) -> None:
        super().__init__()
        self.ts, self.event, self.recv = array("q"), array("q"), array("q")
        self.agg_id, self.first, self.last = array("q"), array("q"), array("q")
        self.price, self.qty, self.maker = array("d"), array("d"), array("b")

    def add(self, t: AggTrade, recv_ms: int) -> None:
        try:
            self.agg_id.append(t.agg_id)
            self.first.append(t.first_id)
            self.last.append(t.last_id)
            self.ts.append(t.trade_ms)
            self.event.append(t.event_ms)
        except (OverflowError, TypeError) as exc:
            self.rollback()
            raise BadValue(f"aggTrade: {exc}") from None
        self.recv.append(recv_ms)
        self.price.append(t.price)
        self.qty.append(t.qty)
        self.maker.append(t.buyer_maker)
        self.n += 1

    def ts_values(self) -> Sequence[int]:
        return self.ts

    def _cols(self) -> tuple[array[Any], ...]:
        return (self.ts, self.event, self.recv, self.agg_id, self.price, self.qty, self.first,
                self.last, self.maker)

    def rollback(self) -> None:
        for col in self._cols():
            del col[self.n:]

    def nbytes(self) -> int:
        return sum(c.itemsize * len(c) for c in self._cols())

    def frame(self, symbol: str) -> pl.DataFrame:
        names = [n for n in PRICES_SCHEMA.names if n != "symbol"]
        dtypes = dict(PRICES_SCHEMA.columns)
        df = pl.DataFrame([_series(n, c, dtypes[n]) for n, c in zip(names, self._cols(),
                                                                     strict=True)])
        return df.with_columns(pl.lit(symbol, pl.String).alias("symbol"))


class _BookHead(Builder):
    """The columns every ``orderbook`` row has before its levels."""

    __slots__ = ("event", "first_uid", "prev_uid", "recv", "source", "ts", "uid")

    def __init__(self) -> None:
        super().__init__()
        self.ts, self.event, self.recv = array("q"), array("q"), array("q")
        self.uid, self.first_uid, self.prev_uid = array("q"), array("q"), array("q")
        self.source: list[str] = []

    def ts_values(self) -> Sequence[int]:
        return self.ts

    def _head(self) -> tuple[Any, ...]:
        return (self.ts, self.event, self.recv, self.uid, self.first_uid, self.prev_uid)

    def _head_frame(self, symbol: str) -> list[pl.Series]:
        names = ("ts_ms", "event_ms", "recv_ms", "update_id", "first_update_id", "prev_update_id")
        out = [_series(n, c, pl.Int64) for n, c in zip(names, self._head(), strict=True)]
        out.append(pl.Series("source", self.source, dtype=pl.String))
        out.append(pl.repeat(symbol, self.n, eager=True, dtype=pl.String).alias("symbol"))
        return out


class TickerBuilder(_BookHead):
    """``orderbook`` rows from bookTicker: level 1 only (deeper levels are null in the file)."""

    __slots__ = ("ask", "ask_sz", "bid", "bid_sz")

    def __init__(self) -> None:
        super().__init__()
        self.bid, self.bid_sz, self.ask, self.ask_sz = array("d"), array("d"), array("d"), array("d")

    def add(self, b: BookTicker, recv_ms: int) -> None:
        ts = b.trade_ms or b.event_ms or recv_ms
        try:
            self.uid.append(b.update_id)
            self.first_uid.append(b.update_id)
            self.ts.append(ts)
            self.event.append(b.event_ms or ts)
        except (OverflowError, TypeError) as exc:
            self.rollback()
            raise BadValue(f"bookTicker: {exc}") from None
        self.recv.append(recv_ms)
        self.prev_uid.append(-1)
        self.source.append("bookTicker")
        self.bid.append(b.bid)
        self.bid_sz.append(b.bid_qty)
        self.ask.append(b.ask)
        self.ask_sz.append(b.ask_qty)
        self.n += 1

    def _cols(self) -> tuple[Any, ...]:
        return (*self._head(), self.source, self.bid, self.bid_sz, self.ask, self.ask_sz)

    def rollback(self) -> None:
        for col in self._cols():
            del col[self.n:]

    def nbytes(self) -> int:
        return sum(c.itemsize * len(c) if isinstance(c, array) else 8 * len(c)
                   for c in self._cols())

    def frame(self, symbol: str) -> pl.DataFrame:
        cols = self._head_frame(symbol)
        for name, c in (("bid_px_1", self.bid), ("bid_sz_1", self.bid_sz),
                        ("ask_px_1", self.ask), ("ask_sz_1", self.ask_sz)):
            cols.append(_series(name, c, pl.Float64))
        return pl.DataFrame(cols)


class DepthBuilder(_BookHead):
    """``orderbook`` rows from partial-depth messages: every level of a row in one flat float
    buffer (bids then asks, price and size interleaved), padded with NaN to ``levels``."""

    __slots__ = ("_pad", "levels", "lv")

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.levels = levels
        self.lv = array("d")
        self._pad = array("d", [NAN]) * (2 * levels)

    def add(self, d: DepthUpdate, recv_ms: int, source: str) -> None:
        try:
            self.uid.append(d.update_id)
            self.first_uid.append(d.first_update_id)
            self.prev_uid.append(d.prev_update_id)
            self.ts.append(d.trade_ms or d.event_ms)
            self.event.append(d.event_ms)
        except (OverflowError, TypeError) as exc:
            self.rollback()
            raise BadValue(f"depthUpdate: {exc}") from None
        self.recv.append(recv_ms)
        self.source.append(source)
        n = self.levels
        lv = self.lv
        for side in (d.bids, d.asks):
            k = len(side)
            if k == n:
                lv.extend(_chain(side))
            elif k > n:
                lv.extend(_chain(side[:n]))
            else:
                lv.extend(_chain(side))
                lv.extend(self._pad[: 2 * (n - k)])
        self.n += 1

    def _cols(self) -> tuple[Any, ...]:
        return (*self._head(), self.source)

    def rollback(self) -> None:
        for col in self._cols():
            del col[self.n:]
        del self.lv[self.n * 4 * self.levels:]

    def nbytes(self) -> int:
        return 8 * (6 * len(self.ts) + len(self.source) + len(self.lv))

    def frame(self, symbol: str) -> pl.DataFrame:
        cols = self._head_frame(symbol)
        flat = pl.Series("lv", self.lv)
        n = self.levels
        width = 4 * n
        for i in range(n):
            for name, off in ((f"bid_px_{i + 1}", 2 * i), (f"bid_sz_{i + 1}", 2 * i + 1),
                              (f"ask_px_{i + 1}", 2 * n + 2 * i),
                              (f"ask_sz_{i + 1}", 2 * n + 2 * i + 1)):
                cols.append(flat.gather_every(width, offset=off).fill_nan(None).alias(name))
        return pl.DataFrame(cols)


class OfiBuilder(Builder):
    """``ofi`` rows from the signal engine (one per book update)."""

    __slots__ = ("ask", "ask_sz", "bid", "bid_sz", "ml", "ofi", "source", "ts")

    def __init__(self) -> None:
        super().__init__()
        self.ts = array("q")
        self.source: list[str] = []
        self.ofi, self.ml = array("d"), array("d")
        self.bid, self.ask, self.bid_sz, self.ask_sz = array("d"), array("d"), array("d"), array("d")

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
            bid = NAN if bid is None else bid
            ask = NAN if ask is None else ask
            bid_sz = NAN if bid_sz is None else bid_sz
            ask_sz = NAN if ask_sz is None else ask_sz
        self.bid.append(bid)
        self.ask.append(ask)
        self.bid_sz.append(bid_sz)
        self.ask_sz.append(ask_sz)
        self.n += 1

    def ts_values(self) -> Sequence[int]:
        return self.ts

    def _cols(self) -> tuple[Any, ...]:
        return (self.ts, self.source, self.ofi, self.ml, self.bid, self.ask, self.bid_sz,
                self.ask_sz)

    def rollback(self) -> None:
        for col in self._cols():
            del col[self.n:]

    def nbytes(self) -> int:
        return 8 * self.n * 8

    def frame(self, symbol: str) -> pl.DataFrame:
        names = [n for n in OFI_SCHEMA.names if n != "symbol"]
        dtypes = dict(OFI_SCHEMA.columns)
        df = pl.DataFrame([_series(n, c, dtypes[n]) for n, c in zip(names, self._cols(),
                                                                     strict=True)])
        return df.with_columns(pl.lit(symbol, pl.String).alias("symbol"))


class CvdBuilder(Builder):
    """``cvd`` rows from the signal engine (one per trade)."""

    __slots__ = ("agg_id", "cvd", "delta", "gap", "ts")

    def __init__(self) -> None:
        super().__init__()
        self.ts, self.agg_id = array("q"), array("q")
        self.delta, self.cvd, self.gap = array("d"), array("d"), array("b")

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

    def ts_values(self) -> Sequence[int]:
        return self.ts

    def _cols(self) -> tuple[Any, ...]:
        return (self.ts, self.agg_id, self.delta, self.cvd, self.gap)

    def rollback(self) -> None:
        for col in self._cols():
            del col[self.n:]

    def nbytes(self) -> int:
        return 33 * self.n

    def frame(self, symbol: str) -> pl.DataFrame:
        names = [n for n in CVD_SCHEMA.names if n != "symbol"]
        dtypes = dict(CVD_SCHEMA.columns)
        df = pl.DataFrame([_series(n, c, dtypes[n]) for n, c in zip(names, self._cols(),
                                                                     strict=True)])
        return df.with_columns(pl.lit(symbol, pl.String).alias("symbol"))
