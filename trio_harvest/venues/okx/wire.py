"""OKX v5 public websocket frames: their records, their decode, the control messages and their
replies (reference/venues.md, section 3).

Owns the channel table (``trades`` -> trades, ``bbo-tbt`` and ``tickers`` -> quotes, ``books``
(snapshot + updates) and ``books5`` -> book levels), the stream name of a subscription
(``<channel>:<instId>``), the push frame ``{"arg":{"channel","instId"},"action"?,"data":[…]}``
decoded into records the core reads by field name (``agg_id`` … ``update_id`` …), the
``subscribe``/``unsubscribe`` requests (``{"id","op","args":[{"channel","instId"}]}``) and what
the server answers besides data (acks, ``error`` events, the bare text ``pong``).

All numbers arrive as strings; sizes are multiplied by the instrument's contract value where
the caller gives one (SWAP sizes count contracts). Book levels are ``[px, sz, "0", orders]``:
the records keep the raw price and size strings beside the floats, for the checksum. A trade
covers the fill ids ``tradeId - count + 1 .. tradeId`` (``count`` 1 where absent, before 2025).
Pure: no trio, no I/O, no clock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar

import msgspec

from ..base import BATCH, BOOK, QUOTE, TRADE, FrameError
from . import derivs
from .derivs import Refused

INT64_MAX = 2**63 - 1
Id = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
Ms = Annotated[int, msgspec.Meta(gt=0, le=INT64_MAX)]
Count = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
Px = Annotated[float, msgspec.Meta(gt=0.0, le=1.7976931348623157e308)]
RawLevel = list[str]  # [px, sz, "0" (deprecated), orders]

# channels (the stream kinds of a plan)
TRADES = "trades"
BOOKS = "books"  # 400 levels: a snapshot, then updates every 100 ms
BOOKS5 = "books5"  # the top 5, a full snapshot every 100 ms
BBO = "bbo-tbt"  # the best level, every 10 ms
TICKERS = "tickers"  # best bid/ask among other fields (slower); read, not subscribed

PONG = "pong"  # the server's answer to the text ``ping``
CONNECT_LIMIT = (3, 1.0)  # connection requests per second per IP
PING = "ping"


def stream_name(channel: str, inst_id: str) -> str:
    """``trades:BTC-USDT-SWAP``: the name the harvester gives one subscription."""
    return f"{channel}:{inst_id}"


def split_stream(name: str) -> tuple[str, str]:
    """``(channel, instId)`` of a stream name; ``("", "")`` for a name that is not one."""
    channel, colon, inst = name.partition(":")
    return (channel, inst) if colon and inst else ("", "")


# -- records -----------------------------------------------------------------------------------

class OkxTrade(msgspec.Struct, gc=False):
    """One ``trades`` entry: an aggregate of ``count`` fills whose last fill id is ``tradeId``."""

    kind: ClassVar[int] = TRADE
    symbol: str = msgspec.field(name="instId")
    agg_id: Id = msgspec.field(name="tradeId")
    price: Px = msgspec.field(name="px")
    qty: Px = msgspec.field(name="sz")
    side: str = ""
    trade_ms: Ms = msgspec.field(name="ts", default=1)
    count: Count = 1
    text_id: ClassVar[None] = None  # ``agg_id`` is OKX's own (integer) id: no text id

    @property
    def first_id(self) -> int:
        return self.agg_id - self.count + 1

    @property
    def last_id(self) -> int:
        return self.agg_id

    @property
    def event_ms(self) -> int:
        return self.trade_ms

    @property
    def buyer_maker(self) -> bool:
        return self.side == "sell"  # the taker sold: the buyer's order was resting


class OkxTrades(msgspec.Struct, gc=False):
    """Several trades of one instId in one frame (routed one by one)."""

    kind: ClassVar[int] = BATCH
    streams: ClassVar[None] = None  # every record on the frame's stream
    symbol: str
    records: list[OkxTrade]


class OkxBook(msgspec.Struct, gc=False):
    """One ``books``/``books5`` entry. ``update_id`` is ``seqId`` and ``prev_update_id``
    ``prevSeqId`` (-1: a snapshot, or a frame from before they existed); ``bids``/``asks`` are
    filled in from the raw levels by ``decode``."""

    kind: ClassVar[int] = BOOK
    raw_asks: list[RawLevel] = msgspec.field(name="asks", default_factory=list)
    raw_bids: list[RawLevel] = msgspec.field(name="bids", default_factory=list)
    event_ms: Ms = msgspec.field(name="ts", default=1)
    checksum: int = 0
    prev_update_id: int = msgspec.field(name="prevSeqId", default=-1)
    update_id: int = msgspec.field(name="seqId", default=0)
    symbol: str = ""
    is_snapshot: bool = False
    gate_id: int = 0  # ``gate_key`` (books5 are deduplicated by it)
    bids: list[tuple[float, float]] = msgspec.field(name="__bids__", default_factory=list)
    asks: list[tuple[float, float]] = msgspec.field(name="__asks__", default_factory=list)

    @property
    def first_update_id(self) -> int:
        return self.update_id

    @property
    def trade_ms(self) -> int:
        return 0

    @property
    def heartbeat(self) -> bool:
        """No change, the chain only confirmed (``seqId == prevSeqId``)."""
        return self.update_id == self.prev_update_id and not self.raw_bids and not self.raw_asks


class OkxQuote(msgspec.Struct, gc=False):
    """A best bid/ask (``bbo-tbt``; ``tickers`` read alike): ``update_id`` is ``seqId`` (a
    ticker has none: its time stands in)."""

    kind: ClassVar[int] = QUOTE
    symbol: str = ""
    update_id: int = 0
    bid: float = 0.0
    bid_qty: float = 0.0
    ask: float = 0.0
    ask_qty: float = 0.0
    event_ms: int = 0
    gate_id: int = 0  # ``gate_key``: what duplicates are told by

    @property
    def trade_ms(self) -> int:
        return 0


def gate_key(ts_ms: int, seq_id: int) -> int:
    """An id that grows with time, then ``seqId`` (its low 12 bits): a repeated message has
    the same one, and messages after a reset (a lower ``seqId``) still get larger ones."""
    return (ts_ms << 12) | (seq_id & 0xFFF)


class _Bbo(msgspec.Struct, gc=False):
    asks: list[RawLevel] = msgspec.field(default_factory=list)
    bids: list[RawLevel] = msgspec.field(default_factory=list)
    ts: Ms = 1
    seqId: int = 0


class _Ticker(msgspec.Struct, gc=False):
    bidPx: str = ""
    bidSz: str = ""
    askPx: str = ""
    askSz: str = ""
    ts: Ms = 1


class Envelope(msgspec.Struct, gc=False):
    stream: str
    data: Any  # OkxTrade, OkxTrades, OkxBook or OkxQuote


class _Arg(msgspec.Struct, gc=False):
    channel: str
    instId: str = ""
    instType: str = ""  # an instType-level channel's (``liquidation-orders``)


class _Push(msgspec.Struct, gc=False):
    arg: _Arg
    data: msgspec.Raw
    action: str = ""


_push = msgspec.json.Decoder(_Push)
_trades = msgspec.json.Decoder(list[OkxTrade], strict=False)
_books = msgspec.json.Decoder(list[OkxBook], strict=False)
_bbo = msgspec.json.Decoder(list[_Bbo], strict=False)
_tickers = msgspec.json.Decoder(list[_Ticker], strict=False)
BadFrame = msgspec.DecodeError  # ValidationError (a wrong shape or value) is a subclass


def _float(text: str) -> float:
    value = float(text)  # ValueError for anything that is not a number
    if not 0.0 <= value < math.inf:
        raise Refused(f"a price or size out of range: {text[:30]!r}")
    return value


def levels(raw: Sequence[RawLevel], scale: float) -> list[tuple[float, float]]:
    """``(price, size x scale)`` of raw ``[px, sz, …]`` levels."""
    try:
        if scale == 1.0:
            return [(_float(lv[0]), _float(lv[1])) for lv in raw]
        return [(_float(lv[0]), _float(lv[1]) * scale) for lv in raw]
    except (ValueError, IndexError):
        raise Refused("a book level that is not [price, size, …]") from None


def decode_push(frame: str | bytes, scales: Mapping[str, float]) -> Envelope:
    """The hot path's decode: one push frame into its record (or a batch of trades). Raises
    ``BadFrame`` for anything else (an ack, an error event, ``pong``, a bad value)."""
    push = _push.decode(frame)
    channel = push.arg.channel
    inst = push.arg.instId
    stream = f"{channel}:{inst}"
    scale = scales.get(inst, 1.0)
    if channel == TRADES:
        trades = _trades.decode(push.data)
        if scale != 1.0:
            for t in trades:
                t.qty *= scale
        if len(trades) == 1:
            return Envelope(stream, trades[0])
        if not trades:
            raise Refused("a trades push without trades")
        return Envelope(stream, OkxTrades(inst, trades))
    if channel == BOOKS or channel == BOOKS5:
        books = _books.decode(push.data)
        if len(books) != 1:
            raise Refused("a books push with other than one entry")
        b = books[0]
        b.symbol = inst
        b.bids = levels(b.raw_bids, scale)
        b.asks = levels(b.raw_asks, scale)
        b.is_snapshot = push.action == "snapshot" or channel == BOOKS5
        b.gate_id = gate_key(b.event_ms, b.update_id)
        return Envelope(stream, b)
    if channel == BBO:
        bbos = _bbo.decode(push.data)
        if len(bbos) != 1:
            raise Refused("a bbo-tbt push with other than one entry")
        q = bbos[0]
        bb = levels(q.bids[:1], scale)
        ba = levels(q.asks[:1], scale)
        bid, bid_qty = bb[0] if bb else (0.0, 0.0)
        ask, ask_qty = ba[0] if ba else (0.0, 0.0)
        return Envelope(stream, OkxQuote(inst, q.seqId, bid, bid_qty, ask, ask_qty, q.ts,
                                         gate_key(q.ts, q.seqId)))
    if channel == TICKERS:
        ticks = _tickers.decode(push.data)
        if len(ticks) != 1:
            raise Refused("a tickers push with other than one entry")
        tk = ticks[0]
        try:
            tb, tbq = _float(tk.bidPx or "0"), _float(tk.bidSz or "0") * scale
            ta, taq = _float(tk.askPx or "0"), _float(tk.askSz or "0") * scale
        except ValueError:
            raise Refused("a ticker price that is not a number") from None
        return Envelope(stream, OkxQuote(inst, tk.ts, tb, tbq, ta, taq, tk.ts, tk.ts << 12))
    if channel in derivs.CHANNELS:
        return Envelope(*derivs.decode(channel, inst, push.data, scales))
    raise msgspec.ValidationError(f"a push of channel {channel[:30]!r}, which is not read")


def decode_frame(frame: str | bytes, scales: Mapping[str, float]) -> Envelope:
    """``decode_push`` saying why not: ``FrameError`` ``malformed`` (not JSON), ``unexpected``
    (an ack, an error event, ``pong``, a channel not read) or ``rejected`` (a bad value)."""
    if frame == PONG or frame == PONG.encode():
        raise FrameError("unexpected", "pong")
    try:
        return decode_push(frame, scales)
    except Refused as exc:
        raise FrameError("rejected", f"rejected push: {exc}") from None
    except msgspec.ValidationError as exc:
        text = str(exc)
        if any(m in text for m in ("` >= ", "` <= ", "` > ", "out of range")):
            raise FrameError("rejected", f"rejected push: {text}") from None
        raise FrameError("unexpected", f"unexpected frame: {text}") from None
    except msgspec.DecodeError as exc:
        raise FrameError("malformed", f"malformed frame: {exc}") from None


# -- control -----------------------------------------------------------------------------------

def subscription(method: str, names: Sequence[str], request_id: int) -> str:
    """``{"id":"7","op":"subscribe","args":[{"channel":…,"instId":…},…]}`` (``method``
    SUBSCRIBE or UNSUBSCRIBE, in any case); names that are not stream names are left out. An
    index is subscribed by its name (``index-tickers:BTC-USDT-SWAP`` asks for ``BTC-USDT``);
    the ``liquidation-orders`` streams of any number of instIds are one instType arg, never
    unsubscribed (other instIds of the connection still read it). "" when no arg is left:
    there is no request to send (an empty one would still count against OKX's 480 an hour)."""
    op = method.lower()
    args: list[dict[str, str]] = []
    for name in names:
        channel, inst = split_stream(name)
        if not channel or (op == "unsubscribe" and channel == derivs.LIQUIDATION_ORDERS):
            continue
        arg = derivs.wire_arg(channel, inst)
        if arg not in args:
            args.append(arg)
    if not args:
        return ""
    return json.dumps({"id": str(request_id), "op": op, "args": args},
                      separators=(",", ":"), ensure_ascii=False)


def subscribed_names(message: str) -> tuple[str, list[str]]:
    """``(op, stream names)`` of a request ``subscription`` built; ``("", [])`` otherwise."""
    try:
        doc = json.loads(message)
    except ValueError:
        return "", []
    if not isinstance(doc, dict) or not isinstance(doc.get("args"), list):
        return "", []
    names = [stream_name(a["channel"], derivs.stream_symbol(a["channel"], a["instId"]))
             for a in doc["args"]
             if isinstance(a, dict) and isinstance(a.get("channel"), str)
             and isinstance(a.get("instId"), str)]
    op = doc.get("op")
    return (op if isinstance(op, str) else ""), names


def reply_to(frame: str | bytes) -> tuple[int, str] | None:
    """``(request id, error)`` of what the server answers besides data: an ack
    (``{"id":"7","event":"subscribe",…}``: error ""), an ``error`` event (error
    ``"<code>: <msg>"``; id 0 where it names none) and ``pong`` (id 0, ""). None otherwise."""
    if frame == PONG or frame == PONG.encode():
        return 0, ""
    try:
        doc = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("event"), str):
        return None
    raw_id = doc.get("id")
    try:
        request_id = int(raw_id) if raw_id is not None else 0
    except (TypeError, ValueError):
        request_id = 0
    if doc["event"] == "error":
        return request_id, f"{doc.get('code', '')}: {str(doc.get('msg', ''))[:200]}"
    return request_id, ""
