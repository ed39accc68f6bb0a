"""Decoding of Binance USD-M combined-stream frames into typed messages and lane rows.

Owns the wire schema (msgspec Structs; unknown fields ignored, prices and quantities arrive as
JSON strings and are coerced to float) and the conversion of messages into rows that follow
``kinds`` schemas. Pure: never does I/O, never raises anything but ``FrameError`` for bad input.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..kinds import Row


class FrameError(ValueError):
    """A frame that is not valid JSON (``malformed``) or not a message we expect (``unexpected``)."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


class TradeFields(msgspec.Struct, gc=False):
    """The fields an aggregate trade has everywhere (websocket and REST ``aggTrades``)."""

    agg_id: int = msgspec.field(name="a")
    price: float = msgspec.field(name="p")
    qty: float = msgspec.field(name="q")
    first_id: int = msgspec.field(name="f")
    last_id: int = msgspec.field(name="l")
    trade_ms: int = msgspec.field(name="T")
    buyer_maker: bool = msgspec.field(name="m")


class AggTrade(TradeFields, tag_field="e", tag="aggTrade"):
    event_ms: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")


class DepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate", gc=False):
    event_ms: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    first_update_id: int = msgspec.field(name="U")
    update_id: int = msgspec.field(name="u")
    bids: list[tuple[float, float]] = msgspec.field(name="b")
    asks: list[tuple[float, float]] = msgspec.field(name="a")
    trade_ms: int = msgspec.field(name="T", default=0)
    prev_update_id: int = msgspec.field(name="pu", default=-1)


class BookTicker(msgspec.Struct, tag_field="e", tag="bookTicker", gc=False):
    update_id: int = msgspec.field(name="u")
    symbol: str = msgspec.field(name="s")
    bid: float = msgspec.field(name="b")
    bid_qty: float = msgspec.field(name="B")
    ask: float = msgspec.field(name="a")
    ask_qty: float = msgspec.field(name="A")
    event_ms: int = msgspec.field(name="E", default=0)
    trade_ms: int = msgspec.field(name="T", default=0)


Message = AggTrade | DepthUpdate | BookTicker


class Envelope(msgspec.Struct, gc=False):
    stream: str
    data: Message


_combined = msgspec.json.Decoder(Envelope, strict=False)
_raw = msgspec.json.Decoder(Message, strict=False)
_any = msgspec.json.Decoder()


def decode_frame(frame: str | bytes) -> Envelope:
    """Decode one combined-stream frame. Raises ``FrameError`` for anything else."""
    try:
        return _combined.decode(frame)
    except msgspec.ValidationError as exc:
        raise FrameError("unexpected", f"unexpected frame: {exc}") from None
    except msgspec.DecodeError as exc:
        raise FrameError("malformed", f"malformed frame: {exc}") from None


def decode_raw(frame: str | bytes) -> Message:
    """Decode one raw-stream payload (no wrapper)."""
    try:
        msg: Message = _raw.decode(frame)
        return msg
    except msgspec.ValidationError as exc:
        raise FrameError("unexpected", f"unexpected payload: {exc}") from None
    except msgspec.DecodeError as exc:
        raise FrameError("malformed", f"malformed payload: {exc}") from None


def decode_any(frame: str | bytes) -> Any:
    """Untyped JSON (control replies such as ``{"result":null,"id":1}``)."""
    return _any.decode(frame)


def trade_row(t: AggTrade, recv_ms: int) -> Row:
    """A ``prices`` row (kinds.PRICES_SCHEMA)."""
    return (t.trade_ms, t.event_ms, recv_ms, t.symbol, t.agg_id, t.price, t.qty,
            t.first_id, t.last_id, t.buyer_maker)


def _levels(bids: list[tuple[float, float]], asks: list[tuple[float, float]], n: int) -> list[Any]:
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


def depth_row(d: DepthUpdate, recv_ms: int, levels: int, source: str) -> Row:
    """An ``orderbook`` row from a partial-depth snapshot (top N, replace, don't apply)."""
    ts = d.trade_ms or d.event_ms
    head = [ts, d.event_ms, recv_ms, d.symbol, source, d.update_id, d.first_update_id,
            d.prev_update_id]
    return tuple(head + _levels(d.bids, d.asks, levels))


def book_row(
    symbol: str, ts_ms: int, event_ms: int, recv_ms: int, source: str, update_id: int,
    first_update_id: int, prev_update_id: int,
    bids: list[tuple[float, float]], asks: list[tuple[float, float]], levels: int,
) -> Row:
    """An ``orderbook`` row from any top-of-book state (e.g. a local book built from diffs)."""
    head = [ts_ms, event_ms, recv_ms, symbol, source, update_id, first_update_id, prev_update_id]
    return tuple(head + _levels(bids, asks, levels))


def ticker_row(b: BookTicker, recv_ms: int, levels: int) -> Row:
    """An ``orderbook`` row from bookTicker: level 1 only, deeper levels null."""
    ts = b.trade_ms or b.event_ms or recv_ms
    head = (ts, b.event_ms or ts, recv_ms, b.symbol, "bookTicker", b.update_id, b.update_id, -1,
            b.bid, b.bid_qty, b.ask, b.ask_qty)
    return head + (None,) * (4 * (levels - 1))
