"""Decoding of Binance USD-M combined-stream frames into typed messages and lane rows.

Owns the wire schema (msgspec Structs; unknown fields ignored, prices and quantities arrive as
JSON strings and are coerced to float) and the conversion of messages into rows that follow
``kinds`` schemas. Pure: never does I/O, never raises anything but ``FrameError`` for bad input.

Also owns the value checks that keep what the columns cannot hold, or what is not market data,
out of every lane: ids within int64 and not negative, prices and quantities finite and not
negative (a trade's strictly positive), trade time ``T`` and event time ``E`` positive. They are
``msgspec.Meta`` constraints, checked in C while decoding (no per-frame Python work); a frame that
breaks one raises ``FrameError("rejected")``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from ...kinds import Row
from .. import rows
from ..base import BOOK, DERIVATIVE, LIQUIDATION, QUOTE, TRADE, BookLevels, Quote, Trade
from ..base import FrameError as FrameError
from ..rows import book_row as book_row
from ..rows import level_columns as _levels

INT64_MAX = 2**63 - 1
FLOAT_MAX = 1.7976931348623157e308

Id = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]  # an id an Int64 column holds
PrevId = Annotated[int, msgspec.Meta(ge=-1, le=INT64_MAX)]  # ``pu`` (-1: absent)
Ms = Annotated[int, msgspec.Meta(gt=0, le=INT64_MAX)]  # a time that must be there
OptMs = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]  # a time that may be absent (0)
Px = Annotated[float, msgspec.Meta(gt=0.0, le=FLOAT_MAX)]  # finite and > 0 (NaN fails)
Amount = Annotated[float, msgspec.Meta(ge=0.0, le=FLOAT_MAX)]  # finite and >= 0 (NaN fails)
Level = tuple[Amount, Amount]  # a book level: price, size (0 deletes a level)


class TradeFields(msgspec.Struct, gc=False):
    """The fields an aggregate trade has everywhere (websocket and REST ``aggTrades``)."""

    agg_id: Id = msgspec.field(name="a")
    price: Px = msgspec.field(name="p")
    qty: Px = msgspec.field(name="q")
    first_id: Id = msgspec.field(name="f")
    last_id: Id = msgspec.field(name="l")
    trade_ms: Ms = msgspec.field(name="T")
    buyer_maker: bool = msgspec.field(name="m")
    text_id: ClassVar[None] = None  # ``agg_id`` is the venue's own id: no text id


class AggTrade(TradeFields, tag_field="e", tag="aggTrade"):
    kind: ClassVar[int] = TRADE  # the record kind (``venues.base``): the router decides by it
    event_ms: Ms = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")


class DepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate", gc=False):
    kind: ClassVar[int] = BOOK
    event_ms: Ms = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    first_update_id: Id = msgspec.field(name="U")
    update_id: Id = msgspec.field(name="u")
    bids: list[Level] = msgspec.field(name="b")
    asks: list[Level] = msgspec.field(name="a")
    trade_ms: OptMs = msgspec.field(name="T", default=0)
    prev_update_id: PrevId = msgspec.field(name="pu", default=-1)


class BookTicker(msgspec.Struct, tag_field="e", tag="bookTicker", gc=False):
    kind: ClassVar[int] = QUOTE
    update_id: Id = msgspec.field(name="u")
    symbol: str = msgspec.field(name="s")
    bid: Amount = msgspec.field(name="b")
    bid_qty: Amount = msgspec.field(name="B")
    ask: Amount = msgspec.field(name="a")
    ask_qty: Amount = msgspec.field(name="A")
    event_ms: OptMs = msgspec.field(name="E", default=0)
    trade_ms: OptMs = msgspec.field(name="T", default=0)


OptPx = Annotated[float, msgspec.Meta(ge=0.0, le=FLOAT_MAX)] | None  # a price that may be absent


class MarkPriceUpdate(msgspec.Struct, tag_field="e", tag="markPriceUpdate", gc=False):
    """``markPrice[@1s]``: mark and index price, estimated settle price, funding rate and next
    funding time (a ``venues.base.Derivative``). COIN-M's delivery contracts send ``"r":""``
    and ``"T":0``: no funding, read as null."""

    kind: ClassVar[int] = DERIVATIVE
    source: ClassVar[str] = "markPrice"
    trade_ms: ClassVar[int] = 0  # ``T`` here is the next funding time, not a trade's
    open_interest: ClassVar[float | None] = None  # polled over REST (``openInterest``)
    event_ms: Ms = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    mark_price: OptPx = msgspec.field(name="p", default=None)
    index_price: OptPx = msgspec.field(name="i", default=None)
    settle_price: OptPx = msgspec.field(name="P", default=None)
    rate: str = msgspec.field(name="r", default="")
    next_ms: OptMs = msgspec.field(name="T", default=0)

    @property
    def funding_rate(self) -> float | None:
        return float(self.rate) if self.rate else None

    @property
    def next_funding_ms(self) -> int | None:
        return self.next_ms or None


class LiquidationOrder(msgspec.Struct, gc=False):
    """The ``o`` object of a ``forceOrder`` event."""

    symbol: str = msgspec.field(name="s")
    side_text: str = msgspec.field(name="S")
    price: Amount = msgspec.field(name="p")
    qty: Amount = msgspec.field(name="q")
    trade_ms: OptMs = msgspec.field(name="T", default=0)
    avg_price: OptPx = msgspec.field(name="ap", default=None)
    filled_qty: OptPx = msgspec.field(name="z", default=None)
    status: str = msgspec.field(name="X", default="")
    order_type: str = msgspec.field(name="o", default="")
    time_in_force: str = msgspec.field(name="f", default="")


class ForceOrder(msgspec.Struct, tag_field="e", tag="forceOrder", gc=False):
    """``forceOrder``: one liquidation order (a ``venues.base.Liquidation``). Binance pushes at
    most one per symbol per 1000 ms (the latest of that second): a lower bound on
    liquidations, not every one."""

    kind: ClassVar[int] = LIQUIDATION
    event_ms: Ms = msgspec.field(name="E")
    order: LiquidationOrder = msgspec.field(name="o")

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def trade_ms(self) -> int:
        return self.order.trade_ms

    @property
    def side(self) -> str:
        return self.order.side_text.lower()

    @property
    def price(self) -> float:
        return self.order.price

    @property
    def qty(self) -> float:
        return self.order.qty

    @property
    def avg_price(self) -> float | None:
        return self.order.avg_price

    @property
    def filled_qty(self) -> float | None:
        return self.order.filled_qty

    @property
    def status(self) -> str:
        return self.order.status

    @property
    def order_type(self) -> str:
        return self.order.order_type

    @property
    def time_in_force(self) -> str:
        return self.order.time_in_force


Message = AggTrade | DepthUpdate | BookTicker | MarkPriceUpdate | ForceOrder


class Envelope(msgspec.Struct, gc=False):
    stream: str
    data: Message


_combined = msgspec.json.Decoder(Envelope, strict=False)
# the hot path's decode, unwrapped: an ``Envelope``, or ``BadFrame`` for anything else (then
# ``decode_frame`` says why); one Python call less per frame than ``decode_frame``
decode_envelope = _combined.decode
BadFrame = msgspec.DecodeError  # (ValidationError, a wrong shape or value, is a subclass)
_raw = msgspec.json.Decoder(Message, strict=False)
_any = msgspec.json.Decoder()
# REST ``aggTrades`` answers: a list of trades without e/E/s
decode_trades = msgspec.json.Decoder(list[TradeFields], strict=False).decode


# what msgspec says when a value breaks a constraint (as opposed to a wrong shape or type)
_OUT_OF_BOUNDS = ("` >= ", "` <= ", "` > ", "out of range")


def _validation(exc: msgspec.ValidationError, what: str) -> FrameError:
    text = str(exc)
    if any(marker in text for marker in _OUT_OF_BOUNDS):
        return FrameError("rejected", f"rejected {what}: {text}")
    return FrameError("unexpected", f"unexpected {what}: {text}")


def decode_frame(frame: str | bytes) -> Envelope:
    """Decode one combined-stream frame. Raises ``FrameError`` for anything else: category
    ``malformed`` (not JSON), ``unexpected`` (not a message we expect) or ``rejected`` (a value
    no column can hold, or that is not market data)."""
    try:
        return _combined.decode(frame)
    except msgspec.ValidationError as exc:
        raise _validation(exc, "frame") from None
    except msgspec.DecodeError as exc:
        raise FrameError("malformed", f"malformed frame: {exc}") from None


def decode_raw(frame: str | bytes) -> Message:
    """Decode one raw-stream payload (no wrapper)."""
    try:
        msg: Message = _raw.decode(frame)
        return msg
    except msgspec.ValidationError as exc:
        raise _validation(exc, "payload") from None
    except msgspec.DecodeError as exc:
        raise FrameError("malformed", f"malformed payload: {exc}") from None


def decode_any(frame: str | bytes) -> Any:
    """Untyped JSON (control replies such as ``{"result":null,"id":1}``)."""
    return _any.decode(frame)


def trade_row(t: Trade, recv_ms: int) -> Row:
    """A ``prices`` row (kinds.PRICES_SCHEMA)."""
    return rows.trade_row(t, recv_ms)


def rest_trade_row(symbol: str, t: TradeFields, recv_ms: int) -> Row:
    """A ``prices`` row from REST (no ``E`` there: ``event_ms`` = the trade time)."""
    return (t.trade_ms, t.trade_ms, recv_ms, symbol, t.agg_id, t.price, t.qty, t.first_id,
            t.last_id, t.buyer_maker, None)


def depth_row(d: BookLevels, recv_ms: int, levels: int, source: str) -> Row:
    """An ``orderbook`` row from a partial-depth snapshot (top N, replace, don't apply)."""
    ts = d.trade_ms or d.event_ms
    head = [ts, d.event_ms, recv_ms, d.symbol, source, d.update_id, d.first_update_id,
            d.prev_update_id]
    return tuple(head + _levels(d.bids, d.asks, levels))


def ticker_row(b: Quote, recv_ms: int, levels: int) -> Row:
    """An ``orderbook`` row from bookTicker: level 1 only, deeper levels null."""
    ts = b.trade_ms or b.event_ms or recv_ms
    head = (ts, b.event_ms or ts, recv_ms, b.symbol, "bookTicker", b.update_id, b.update_id, -1,
            b.bid, b.bid_qty, b.ask, b.ask_qty)
    return head + (None,) * (4 * (levels - 1))
