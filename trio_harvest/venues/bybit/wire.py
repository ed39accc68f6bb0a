"""Decoding of Bybit v5 public frames (``publicTrade``, ``orderbook.{depth}``) into records.

Owns the wire schema as msgspec Structs (unknown fields ignored; prices and sizes arrive as
strings and are coerced to float, with the same value checks as every venue: finite, not
negative, times positive) and the records the core reads: ``PublicTrade`` (a ``Trade``),
``BookEvent`` (``BookLevels``: a snapshot or a delta of one book topic) and ``TopOfBook``
(``orderbook.1`` as a ``Quote``). One frame carries up to 1024 trades: a frame of more than one
is a ``TradeBatch`` (``venues.base.BATCH``), the router routes each of its records. Control
replies (acks, pongs) have no ``topic``: the hot path's decode refuses them and
``control.reply_to`` reads them. Pure: never does I/O.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from ..base import BATCH, BOOK, QUOTE, TRADE, FrameError
from ..binance_usdm.decode import Amount, Id, Level, Ms, OptMs, Px, _validation
from .derivatives import TickerMerge, decode_liquidations, decode_tickers
from .facts import BOOK_TOPIC, LIQUIDATION_TOPIC, TICKERS_TOPIC, TRADE_TOPIC

SNAPSHOT = "snapshot"
DELTA = "delta"
_TRADE_PREFIX = TRADE_TOPIC + "."
_BOOK_PREFIX = BOOK_TOPIC + "."
_TOP_PREFIX = BOOK_TOPIC + ".1."
_TICKERS_PREFIX = TICKERS_TOPIC + "."
_LIQUIDATION_PREFIX = LIQUIDATION_TOPIC + "."


def uuid_key(trade_id: str) -> int:
    """The int64 key of a linear trade id (a UUID): its first 63 bits. The ``prices`` column
    ``agg_id`` holds it (the same UUID always gives the same key; keys of two trades collide
    with a chance of about n^2 / 2^64); ``ValueError`` for an id that is not hex."""
    return int(trade_id.replace("-", "")[:16], 16) >> 1


class PublicTrade(msgspec.Struct, gc=False):
    """One trade of ``publicTrade.{symbol}``. ``trade_id`` is Bybit's ``i`` (a UUID on linear, a
    numeric string on spot); ``agg_id`` is the integer on spot, ``uuid_key`` of the UUID on
    linear (ids are never contiguous: only a key), and ``text_id`` the UUID itself on linear
    (None on spot, whose ``agg_id`` is the id); ``event_ms`` is the message's ``ts``."""

    kind: ClassVar[int] = TRADE
    trade_ms: Ms = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    side: str = msgspec.field(name="S")  # the taker's side: Buy | Sell
    qty: Px = msgspec.field(name="v")
    price: Px = msgspec.field(name="p")
    trade_id: str = msgspec.field(name="i")
    block: bool = msgspec.field(name="BT", default=False)
    rpi: bool = msgspec.field(name="RPI", default=False)
    seq: Id = 0  # cross sequence: shared by several trades, monotonic, not contiguous
    event_ms: OptMs = 0
    agg_id: int = 0
    text_id: str | None = msgspec.field(name="_text_id", default=None)

    @property
    def first_id(self) -> int:
        return self.agg_id

    @property
    def last_id(self) -> int:
        return self.agg_id

    @property
    def buyer_maker(self) -> bool:
        return self.side == "Sell"  # the taker sold: the buyer was the maker


class BookEvent(msgspec.Struct, gc=False):
    """The ``data`` of one ``orderbook.{depth}`` message: a ``snapshot`` (the whole book: replace)
    or a ``delta`` (sizes to set; 0 deletes). ``update_id`` is ``u``; a delta continues the book
    when ``u == previous u + 1`` (``prev_update_id`` is ``u - 1`` on a delta, -1 on a snapshot);
    ``trade_ms`` is ``cts`` (matching-engine time), ``event_ms`` the message's ``ts``."""

    kind: ClassVar[int] = BOOK
    symbol: str = msgspec.field(name="s")
    bids: list[Level] = msgspec.field(name="b")
    asks: list[Level] = msgspec.field(name="a")
    update_id: Id = msgspec.field(name="u")
    seq: Id = 0
    event_ms: OptMs = 0
    trade_ms: OptMs = 0
    snapshot: bool = False
    first_update_id: int = 0
    prev_update_id: int = -1

    @property
    def resets(self) -> bool:
        """The book restarts from this message: a snapshot, or ``u == 1`` (a service restart)."""
        return self.snapshot or self.update_id == 1


class TopOfBook(BookEvent, gc=False):
    """``orderbook.1.{symbol}``: the best bid and ask (a side with no level reads 0, 0)."""

    kind: ClassVar[int] = QUOTE

    @property
    def bid(self) -> float:
        return self.bids[0][0] if self.bids else 0.0

    @property
    def bid_qty(self) -> float:
        return self.bids[0][1] if self.bids else 0.0

    @property
    def ask(self) -> float:
        return self.asks[0][0] if self.asks else 0.0

    @property
    def ask_qty(self) -> float:
        return self.asks[0][1] if self.asks else 0.0


Record = PublicTrade | BookEvent


class TradeBatch(msgspec.Struct, gc=False):
    """The trades of one ``publicTrade`` message, when there are several (in order)."""

    kind: ClassVar[int] = BATCH
    symbol: str
    records: list[PublicTrade]


class Frame(msgspec.Struct, gc=False):
    """One data frame: its topic (``stream``) and its record (or ``TradeBatch``)."""

    stream: str
    data: Any


class _Head(msgspec.Struct, gc=False):
    topic: str
    data: msgspec.Raw
    type: str = ""
    ts: Ms = 1
    cts: OptMs = 0


_head = msgspec.json.Decoder(_Head, strict=False)
_trades = msgspec.json.Decoder(list[PublicTrade], strict=False)
_book = msgspec.json.Decoder(BookEvent, strict=False)
_top = msgspec.json.Decoder(TopOfBook, strict=False)
BadFrame = msgspec.DecodeError  # what the hot path's decode raises (ValidationError included)


def decode_envelope(frame: str | bytes, numeric_ids: bool = False,
                    tickers: TickerMerge | None = None) -> Frame:
    """The hot path's decode of one data frame; ``msgspec.DecodeError`` for anything else
    (control replies included). ``numeric_ids``: trade ids are integers (spot) -> ``agg_id``.
    ``tickers``: the merged tickers state (linear; ``tickers`` topics are refused without)."""
    head = _head.decode(frame)
    topic = head.topic
    if topic.startswith(_TRADE_PREFIX):
        trades = _trades.decode(head.data)
        if not trades:
            raise msgspec.ValidationError("a publicTrade message without trades")
        ts = head.ts
        if numeric_ids:
            for t in trades:
                t.event_ms = ts
                t.agg_id = _int_id(t.trade_id)
        else:
            for t in trades:
                t.event_ms = ts
                t.agg_id = _key(t.trade_id)
                t.text_id = t.trade_id
        if len(trades) == 1:
            return Frame(topic, trades[0])
        return Frame(topic, TradeBatch(trades[0].symbol, trades))
    if topic.startswith(_BOOK_PREFIX):
        ev = (_top if topic.startswith(_TOP_PREFIX) else _book).decode(head.data)
        ev.event_ms = head.ts
        ev.trade_ms = head.cts
        u = ev.update_id
        ev.first_update_id = u
        if head.type == SNAPSHOT:
            ev.snapshot = True
        elif head.type == DELTA:
            ev.prev_update_id = u - 1
        else:
            raise msgspec.ValidationError(f"orderbook message of type {head.type[:20]!r}")
        return Frame(topic, ev)
    if topic.startswith(_TICKERS_PREFIX) and tickers is not None:
        return Frame(topic, decode_tickers(head.data, head.type, head.ts, tickers))
    if topic.startswith(_LIQUIDATION_PREFIX):
        return Frame(topic, decode_liquidations(head.data, head.ts))
    raise msgspec.ValidationError(f"no record on topic {topic[:60]!r}")


def _int_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise msgspec.ValidationError(f"trade id {text[:40]!r} is not numeric") from None
    if not 0 <= value < 2**63:
        raise msgspec.ValidationError(f"trade id {text[:40]!r} out of range (>= 0, <= int64)")
    return value


def _key(text: str) -> int:
    try:
        return uuid_key(text)
    except ValueError:
        raise msgspec.ValidationError(f"trade id {text[:40]!r} is not a UUID") from None


def decode_frame(frame: str | bytes, numeric_ids: bool = False,
                 tickers: TickerMerge | None = None) -> Frame:
    """``decode_envelope`` with the reason: ``FrameError`` ``malformed`` (not JSON),
    ``unexpected`` (not a data frame: acks, pongs, other topics) or ``rejected`` (a value no
    column can hold)."""
    try:
        return decode_envelope(frame, numeric_ids, tickers)
    except msgspec.ValidationError as exc:
        raise _validation(exc, "frame") from None
    except msgspec.DecodeError as exc:
        raise FrameError("malformed", f"malformed frame: {exc}") from None


# -- REST --------------------------------------------------------------------------------------

class RestTrade(msgspec.Struct, gc=False):
    """One row of ``/v5/market/recent-trade`` (newest first)."""

    trade_id: str = msgspec.field(name="execId")
    symbol: str = msgspec.field(name="symbol")
    price: Px = msgspec.field(name="price")
    qty: Px = msgspec.field(name="size")
    side: str = msgspec.field(name="side")
    trade_ms: Ms = msgspec.field(name="time")
    block: bool = msgspec.field(name="isBlockTrade", default=False)
    seq: Id = 0

    @property
    def buyer_maker(self) -> bool:
        return self.side == "Sell"


class _TradeList(msgspec.Struct, gc=False):
    rows: list[RestTrade] = msgspec.field(name="list")


class _RestTrades(msgspec.Struct, gc=False):
    retCode: int
    result: _TradeList | None = None
    retMsg: str = ""


_rest_trades = msgspec.json.Decoder(_RestTrades, strict=False)


def decode_recent_trades(body: bytes | str) -> list[RestTrade]:
    """The rows of a recent-trade answer, newest first (``[]`` also for a bare ``[]``);
    ``msgspec.DecodeError`` for anything else, ``ValueError`` for a ``retCode`` other than 0."""
    if body.strip() in (b"[]", "[]"):
        return []
    doc = _rest_trades.decode(body)
    if doc.retCode != 0 or doc.result is None:
        raise ValueError(f"recent-trade refused: retCode {doc.retCode} {doc.retMsg[:120]}")
    return doc.result.rows


__all__ = [
    "DELTA",
    "SNAPSHOT",
    "Amount",
    "BadFrame",
    "BookEvent",
    "Frame",
    "PublicTrade",
    "RestTrade",
    "TopOfBook",
    "TradeBatch",
    "decode_envelope",
    "decode_frame",
    "decode_recent_trades",
    "uuid_key",
]
