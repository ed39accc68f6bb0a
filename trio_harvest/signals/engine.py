"""The signal engine of one symbol: incremental OFI and CVD per record, per-second signals.

Owns the per-symbol signal state. Ingest calls ``on_trade`` / ``on_book`` once per decoded record
(hot path: a few µs, O(1)) and ``on_gap`` on a disconnect or resync; they emit preview rows
(``ofi``, ``cvd``) through the injected ``emit`` and append to the symbol's ``TailWindow``. An
engine that reads trades, quotes and depth in batches (``read_trades``, ``read_quotes``,
``read_depth``: what the app does) only checks such a message on the hot path; its rows,
already in the lanes, are computed later in one NumPy pass for every symbol (``batches.py``),
with the same results. The features task calls ``close_seconds`` once per tick: the feature
rows of the closed seconds (Polars, over the tail window only), the fusion row of each second
and the events.

Must never import trio, block, or do I/O: ``emit`` is a non-blocking callable supplied by the
caller, and everything else is arithmetic on in-memory state.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..kinds import (
    CVD,
    EVENTS,
    FEATURES,
    FEATURES_SCHEMA,
    FUSION,
    OFI,
    PRICES_SCHEMA,
    Row,
    orderbook_schema,
)
from ..venues import QUOTE_SOURCE
from . import features
from .batches import flush_depth, flush_quotes, flush_trades
from .cvd import CvdState
from .depthbatch import side_lists
from .events import EventDetector, LargeTrades
from .fusion import Fusion
from .marketstate import MarketState
from .ofi import (
    BOOK_LEVEL_BASE,
    Levels,
    depth_sums,
    level_sums_fn,
    ofi_levels_fn,
    ofi_multi,
    ofi_term,
)
from .params import SignalParams, ofi_source_label
from .tail import TailWindow

if TYPE_CHECKING:
    from ..pipeline.tap import Tap
    from ..venues.base import BookLevels, Quote, Trade

Emit = Callable[[str, Row], None]
# (ts, source, ofi_l1, ofi_ml, bid, ask, bid_sz, ask_sz) and (ts, agg_id, delta, cvd, gap)
EmitOfi = Callable[[int, str, "float | None", "float | None", "float | None", "float | None",
                    "float | None", "float | None"], None]
EmitCvd = Callable[[int, int, float, float, bool], None]
# ``ofi`` rows in bulk: records made by ``PackOfi`` from NumPy columns (ts, ofi_l1, ofi_ml, bid,
# ask, bid_sz, ask_sz; NaN for an absent OFI), how many, their sources; False when the lane has
# no room for all of them (nothing taken: they are emitted one by one)
EmitOfiMany = Callable[[bytes, int, list[str]], bool]
PackOfi = Callable[..., tuple[bytes, int]]  # columns -> (records, bytes per record)
# ``cvd`` rows in bulk, the same way (columns ts, agg_id, delta, cvd, gap)
EmitCvdMany = Callable[[bytes, int], bool]

BOOK_TICKER = QUOTE_SOURCE  # the source of quote rows
IMB_LEVELS = 5

# row columns (kinds.PRICES_SCHEMA, kinds.orderbook_schema); ts_ms is always column 0
_TS = 0
_AGG_ID, _PRICE, _QTY, _IS_BUYER_MAKER = (
    PRICES_SCHEMA.index(c) for c in ("agg_id", "price", "qty", "is_buyer_maker"))
_SOURCE = orderbook_schema(1).index("source")
_B = BOOK_LEVEL_BASE
# FEATURES_SCHEMA columns the per-second signals read
_F_LAST = FEATURES_SCHEMA.index("last")
_F_DELTA = FEATURES_SCHEMA.index("delta")
_F_CVD = FEATURES_SCHEMA.index("cvd")
_F_OFI = FEATURES_SCHEMA.index("ofi_l1")


def flag_for(reason: str) -> str:
    """The feature-table flag of a gap reason: ``stale`` (stall), ``resync`` (book sequence
    break, resync), otherwise ``gap`` (disconnect, agg-id break)."""
    r = reason.lower()
    if "stall" in r or "stale" in r:
        return "stale"
    if "resync" in r or "book" in r or "sequence" in r:
        return "resync"
    return "gap"


class SignalEngine:
    """Signals of one symbol. See the module docstring for who calls what."""

    __slots__ = (
        "_cvd_many", "_cvd_pack", "_emit", "_emit_cvd", "_emit_ofi", "_events", "_flushing",
        "_fusion", "_large", "_level_sums", "_ml_levels", "_ofi_levels", "_ofi_many", "_ofi_pack",
        "_prev_book", "_prev_depth", "_prev_l1", "_prev_levels", "_qtap", "_tap", "_ttap",
        "book_ticker", "carry", "cvd", "depth_levels", "params", "state", "symbol", "tail",
    )

    def __init__(
        self,
        symbol: str,
        params: SignalParams,
        depth_levels: int,
        emit: Emit,
        *,
        book_ticker: bool,
        emit_ofi: EmitOfi | None = None,
        emit_cvd: EmitCvd | None = None,
    ) -> None:
        self.symbol = symbol
        self.params = params
        self.depth_levels = depth_levels
        self.book_ticker = book_ticker
        self._emit = emit
        # The per-message rows go straight into their lanes' columns when the caller offers
        # that (the app does); otherwise they are built as tuples for ``emit``.
        self._emit_ofi: EmitOfi = emit_ofi or (
            lambda *v: emit(OFI, (v[0], symbol, *v[1:])))
        self._emit_cvd: EmitCvd = emit_cvd or (
            lambda *v: emit(CVD, (v[0], symbol, *v[1:])))
        self._ml_levels = min(depth_levels, params.ofi_levels)
        self._level_sums = level_sums_fn(min(IMB_LEVELS, depth_levels))  # imbalance sizes
        self._ofi_levels = ofi_levels_fn(self._ml_levels)  # multi-level OFI of level lists
        self.tail = TailWindow(params.tail_s, params.max_lag_s)
        self.cvd = CvdState()
        self.carry = features.Carry()
        self.state = MarketState()  # mark price, funding, open interest, liquidations
        self._fusion = Fusion(symbol, params)
        self._events = EventDetector(symbol, params)
        self._large = LargeTrades(symbol, params)
        self._prev_l1: tuple[float, float, float, float] | None = None
        self._prev_depth: Row | None = None
        self._prev_levels: tuple[Levels, Levels] | None = None
        # read from the lanes in batches (``read_*``): the taps, and the bulk emits
        self._tap: Tap | None = None  # the orderbook lane's depth rows
        self._qtap: Tap | None = None  # the quotes lane's rows
        self._ttap: Tap | None = None  # the prices lane's trades
        self._cvd_many: EmitCvdMany | None = None
        self._cvd_pack: PackOfi | None = None
        self._ofi_many: EmitOfiMany | None = None
        self._ofi_pack: PackOfi | None = None
        self._prev_book: Any = None  # read in batches: the previous depth row, as stored
        # a batch of this engine is being computed, or the tick closes its seconds right after
        # computing them all: no flush now
        self._flushing = False

    @property
    def ofi_source(self) -> str:
        """For ``SignalParams.metadata``: where OFI comes from."""
        return ofi_source_label(book_ticker=self.book_ticker, depth_levels=self.depth_levels,
                                ofi_levels=self.params.ofi_levels)

    def metadata(self, kind: str) -> dict[str, str]:
        """Parquet key-value metadata for files of derived ``kind`` of this symbol."""
        return self.params.metadata(kind, self.ofi_source)

    # -- hot path (called by ingest once per record) --------------------------------------------

    def on_trade(self, row: Row) -> None:
        """A ``prices`` row: update CVD, emit a ``cvd`` row, append to the tail."""
        tap = self._ttap
        if tap is not None:  # the row is the last one of the lane: what came before it first
            self.flush_trades(keep_last=1)
            tap.skip()
        ts = row[_TS]
        qty = row[_QTY]
        agg_id = row[_AGG_ID]
        cvd = self.cvd
        status = cvd.update(agg_id, qty, row[_IS_BUYER_MAKER])
        if status == "duplicate":
            return
        if status == "gap":
            self.tail.add_flag(ts, "gap")
        sqty = -qty if row[_IS_BUYER_MAKER] else qty
        self._emit(CVD, (ts, self.symbol, agg_id, sqty, cvd.cvd, cvd.gap))
        price = row[_PRICE]
        self.tail.add_trade(ts, price, qty, sqty, price * qty, cvd.cvd)

    def on_book(self, row: Row) -> None:
        """An ``orderbook`` row (a quote or depth): OFI against the previous state of the same
        source, an ``ofi`` row, and the tail."""
        ts = row[_TS]
        source = row[_SOURCE]
        tap = self._tap
        if tap is not None and source != BOOK_TICKER:
            # the row is the last one of the lane: what came before it is computed first
            self.flush_depth(keep_last=1)
            tap.skip()
        elif self._qtap is not None and source == BOOK_TICKER:
            self.flush_quotes()
        bid, bid_sz, ask, ask_sz = row[_B], row[_B + 1], row[_B + 2], row[_B + 3]
        ofi1: float | None = None
        ofim: float | None = None
        is_depth = source != BOOK_TICKER
        if not is_depth or not self.book_ticker:
            if bid is not None and ask is not None and bid_sz is not None and ask_sz is not None:
                prev = self._prev_l1
                if prev is not None:
                    ofi1 = ofi_term(prev[0], prev[1], prev[2], prev[3], bid, bid_sz, ask, ask_sz)
                self._prev_l1 = (bid, bid_sz, ask, ask_sz)
                self.tail.add_l1(ts, 0.0 if ofi1 is None else ofi1, bid, ask, bid_sz, ask_sz)
        if is_depth:
            prev_row = self._prev_depth
            if prev_row is not None:
                ofim = ofi_multi(prev_row, row, self._ml_levels)
            self._prev_depth = row
            q_bid, q_ask = depth_sums(row, min(IMB_LEVELS, self.depth_levels))
            self.tail.add_ml(ts, 0.0 if ofim is None else ofim, q_bid, q_ask)
        self._emit(OFI, (ts, self.symbol, source, ofi1, ofim, bid, ask, bid_sz, ask_sz))

    # The same updates from decoded messages (the router's hot path: no row tuple is built).

    def on_trade_record(self, t: Trade) -> None:
        """``on_trade`` for a decoded trade record. When trades are read in batches
        (``read_trades``), the trade is already in the lane: as ``on_book_levels``."""
        if self._ttap is not None:
            tail = self.tail  # ``tail.span()``, inlined: per message
            if not tail._lo <= t.trade_ms <= tail._hi:
                self.flush_depth()
                self.flush_quotes()
                self.flush_trades()
            return
        self._trade(t.trade_ms, t.agg_id, t.price, t.qty, t.buyer_maker)

    def _trade(self, ts: int, agg_id: int, price: float, qty: float, maker: bool) -> None:
        cvd = self.cvd
        status = cvd.update(agg_id, qty, maker)
        if status == "duplicate":
            return
        if status == "gap":
            self.tail.add_flag(ts, "gap")
        sqty = -qty if maker else qty
        self._emit_cvd(ts, agg_id, sqty, cvd.cvd, cvd.gap)
        self.tail.add_trade(ts, price, qty, sqty, price * qty, cvd.cvd)

    def on_quote(self, b: Quote, recv_ms: int) -> None:
        """``on_book`` for a decoded quote (best level only). When quotes are read in batches
        (``read_quotes``), the quote is already in the lane: as ``on_book_levels``."""
        ts = b.trade_ms or b.event_ms or recv_ms
        if self._qtap is not None:
            tail = self.tail  # ``tail.span()``, inlined: per message
            if not tail._lo <= ts <= tail._hi:
                self.flush_depth()
                self.flush_quotes()
            return
        self._quote(ts, b.bid, b.bid_qty, b.ask, b.ask_qty)

    def _quote(self, ts: int, bid: float, bid_sz: float, ask: float, ask_sz: float) -> None:
        prev = self._prev_l1
        ofi1 = None if prev is None else ofi_term(prev[0], prev[1], prev[2], prev[3],
                                                  bid, bid_sz, ask, ask_sz)
        self._prev_l1 = (bid, bid_sz, ask, ask_sz)
        self.tail.add_l1(ts, 0.0 if ofi1 is None else ofi1, bid, ask, bid_sz, ask_sz)
        self._emit_ofi(ts, BOOK_TICKER, ofi1, None, bid, ask, bid_sz, ask_sz)

    def on_book_levels(self, d: BookLevels, source: str) -> None:
        """``on_book`` for decoded top-N book levels (a partial-depth message). When the
        depth is read in batches (``read_depth``), the message is already in the lane: it is
        computed with the next batch, or at once (with everything before it) when the tail
        must decide its admission now."""
        if self._tap is not None:
            tail = self.tail  # ``tail.span()``, inlined: per message
            if not tail._lo <= (d.trade_ms or d.event_ms) <= tail._hi:
                self.flush_quotes()
                self.flush_depth()
            return
        self._book_levels(d.bids, d.asks, d.trade_ms or d.event_ms, source)

    def _book_levels(self, bids: Levels, asks: Levels, ts: int, source: str) -> None:
        bid = bid_sz = ask = ask_sz = None
        if bids:
            bid, bid_sz = bids[0]
        if asks:
            ask, ask_sz = asks[0]
        ofi1: float | None = None
        if not self.book_ticker and bid is not None and ask is not None:
            assert bid_sz is not None and ask_sz is not None
            prev = self._prev_l1
            if prev is not None:
                ofi1 = ofi_term(prev[0], prev[1], prev[2], prev[3], bid, bid_sz, ask, ask_sz)
            self._prev_l1 = (bid, bid_sz, ask, ask_sz)
            self.tail.add_l1(ts, 0.0 if ofi1 is None else ofi1, bid, ask, bid_sz, ask_sz)
        prev_levels = self._prev_levels
        ofim = None if prev_levels is None else self._ofi_levels(
            prev_levels[0], prev_levels[1], bids, asks)
        self._prev_levels = (bids, asks)
        q_bid, q_ask = self._level_sums(bids, asks)
        self.tail.add_ml(ts, 0.0 if ofim is None else ofim, q_bid, q_ask)
        self._emit_ofi(ts, source, ofi1, ofim, bid, ask, bid_sz, ask_sz)

    def on_state(self, kind: str, row: Row) -> None:
        """A ``derivatives`` or ``liquidations`` row: the contract state of the seconds."""
        self.state.add(kind, row)

    def on_gap(self, ts_ms: int, reason: str) -> None:
        """A disconnect, resync or stall at ``ts_ms``: flag its second, and forget the previous
        book states so OFI never spans the gap (CVD continuity is judged by agg ids)."""
        self.flush_batches()
        self._prev_l1 = None
        self._prev_depth = None
        self._prev_levels = None
        self._prev_book = None
        self.tail.add_flag(ts_ms, flag_for(reason))

    # -- read from the lanes in batches ----------------------------------------------------------

    def read_depth(self, tap: Tap, emit_many: EmitOfiMany, pack: PackOfi) -> None:
        """From now on this symbol's depth messages are read from its ``orderbook`` lane through
        ``tap`` and computed in batches (``flush_depth``): at each features tick, before the
        lane is drained, and before anything reads or changes the state they depend on. The
        rows are the ones ``on_book_levels`` gives one by one. With quotes subscribed only
        (depth then feeds the multi-level side alone)."""
        if not self.book_ticker:
            raise ValueError("depth is read in batches only with quotes subscribed")
        self._tap = tap
        self._ofi_many, self._ofi_pack = emit_many, pack
        self.tail.before_admit = self.flush_batches

    def read_quotes(self, tap: Tap, emit_many: EmitOfiMany, pack: PackOfi) -> None:
        """As ``read_depth``, for quotes (the best-level OFI; quotes are then its only source)
        read from the ``quotes`` lane."""
        if not self.book_ticker:
            raise ValueError("quotes are read in batches only when they are the best level")
        self._qtap = tap
        self._ofi_many, self._ofi_pack = emit_many, pack
        self.tail.before_admit = self.flush_batches

    def read_trades(self, tap: Tap, emit_many: EmitCvdMany, pack: PackOfi) -> None:
        """As ``read_depth``, for trades (CVD), read from the ``prices`` lane; rows put there
        that the engine is never given (backfill, the journal) are marked ``unseen``."""
        self._ttap = tap
        self._cvd_many, self._cvd_pack = emit_many, pack
        self.tail.before_admit = self.flush_batches

    def _depth_one_by_one(self, rows: Any, ts: list[int], sources: list[str]) -> None:
        """Stored depth rows (NumPy rows or arrays) computed as ``on_book_levels`` computes a
        message (their side lists are what was stored): a row with a missing level, or a few
        rows, where NumPy would cost more."""
        levels = self.depth_levels
        prev = self._prev_book
        self._prev_levels = None if prev is None else side_lists(prev, levels)
        for row, t, source in zip(rows, ts, sources, strict=True):
            bids, asks = side_lists(row, levels)
            self._book_levels(bids, asks, t, source)
        self._prev_levels = None
        self._prev_book = array("d", rows[-1])

    def flush_depth(self, keep_last: int = 0) -> None:
        """Compute the depth messages read in batches that are still waiting (a no-op
        otherwise)."""
        if not self._flushing and self._tap is not None:
            flush_depth((self,), keep_last=keep_last)

    def flush_quotes(self) -> None:
        """As ``flush_depth``, for quotes."""
        if not self._flushing and self._qtap is not None:
            flush_quotes((self,))

    def flush_trades(self, keep_last: int = 0) -> None:
        """As ``flush_depth``, for trades."""
        if not self._flushing and self._ttap is not None:
            flush_trades((self,), keep_last=keep_last)

    def flush_batches(self) -> None:
        """Compute everything read in batches that is still waiting. Called per symbol several
        times a tick (and before each admission change), mostly with nothing waiting: a tap
        with no unread row is not even asked for its segments."""
        if not self._flushing:
            tap = self._ttap
            if tap is not None and tap.unread():
                flush_trades((self,))
            tap = self._tap
            if tap is not None and tap.unread():
                flush_depth((self,))
            tap = self._qtap
            if tap is not None and tap.unread():
                flush_quotes((self,))

    # -- per tick (called by the features task) -------------------------------------------------

    def close_seconds(self, upto_sec: int) -> list[tuple[str, Row]]:
        """Rows of every second before ``upto_sec`` not yet emitted: per second its ``features``
        row, its ``fusion`` row and its ``events`` (large trades included), in time order. Each
        second is returned once; afterwards the tail forgets what it no longer needs."""
        span = self.span_to_close(upto_sec)
        if span is None:
            return []
        return self.close_span(span[0], upto_sec)

    def span_to_close(self, upto_sec: int) -> tuple[int, int] | None:
        """The seconds [start, upto) that ``close_seconds(upto_sec)`` would close, or None. A
        features task that fell more than ``max_lag_s`` behind gives up the oldest here."""
        self.flush_batches()
        tail = self.tail
        start = tail.first_second()
        if start is None or upto_sec <= start:
            return None
        p = self.params
        if upto_sec - start > p.max_lag_s:  # clock jump or a long stall: stay bounded
            tail.skipped_s += upto_sec - p.max_lag_s - start
            start = upto_sec - p.max_lag_s
            tail.advance(start * 1000)
            tail.add_flag(start * 1000, "stale")
        return start, upto_sec

    def close_span(self, start: int, upto_sec: int,
                   aggs: dict[int, tuple[Any, ...]] | None = None) -> list[tuple[str, Row]]:
        """Close [start, upto_sec) (from ``span_to_close``); ``aggs``: its per-second sums when
        the features task computed every symbol's at once (``features.aggregate_many``)."""
        tail = self.tail
        state = self.state
        rows = features.feature_rows(self.symbol, tail, self.carry, start, upto_sec,
                                     book_ticker=self.book_ticker, aggs=aggs, state=state)
        trades = tail.trades
        t_ts = trades.ts
        out: list[tuple[str, Row]] = []
        add = out.append
        fusion, on_second, large = self._fusion.update, self._events.on_second, self._large
        for r in rows:
            ts_ms = r[0]
            add((FEATURES, r))
            add((FUSION, fusion(ts_ms, r[_F_OFI], r[_F_DELTA])))
            for ev in on_second(ts_ms, r[_F_OFI], r[_F_LAST], r[_F_CVD]):
                add((EVENTS, ev))
            i, j = bisect_left(t_ts, ts_ms), bisect_left(t_ts, ts_ms + 1000)  # trades.span
            for ev in large.on_second(ts_ms // 1000, trades, i, j):
                add((EVENTS, ev))
        tail.advance(upto_sec * 1000)
        state.forget(upto_sec * 1000)
        return out

    def stats(self) -> dict[str, Any]:
        """Counters for metrics / status."""
        self.flush_batches()
        tail = self.tail
        return {
            "tail_rows": len(tail),
            "late": tail.late,
            "skipped_s": tail.skipped_s,
            "agg_gaps": self.cvd.gaps,
            "duplicates": self.cvd.duplicates,
            "cvd_gap": self.cvd.gap,
        }

