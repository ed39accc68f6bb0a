"""Bybit linear's derivatives side: ``tickers.{symbol}`` merged into each contract's full state,
``allLiquidation.{symbol}`` as liquidation records, and the topics each channel asks for.

Owns the wire schema of both topics (msgspec Structs; values arrive as strings), the pure merge
of a tickers snapshot and its partial deltas (``TickerMerge``: the full state per symbol, and a
``TickerUpdate`` record carrying only the values that changed, null for the rest, never a stale
copy), the mapping of ``allLiquidation``'s *position* side to the liquidation order's side (a
long position liquidated is a sell order), and the ``DerivativesSide`` of ``venues.base``: the
topics of the ``derivatives`` and ``liquidations`` channels, and the REST open-interest request
(not polled: the tickers topic carries open interest). Pure: never does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec

from ...kinds import DERIVATIVES, LIQUIDATIONS
from ..base import BATCH, DERIVATIVE, LIQUIDATION, RestRequest
from ..binance_common.derivatives import OpenInterest as BinanceOpenInterest
from ..binance_usdm.decode import Ms, OptMs, Px
from .facts import LIQUIDATION_TOPIC, OPEN_INTEREST_PATH, TICKERS_TOPIC, Category

if TYPE_CHECKING:
    from ..base import Batch, Derivative, Liquidation

# the tickers fields a ``derivatives`` row carries, in the order of ``TickerUpdate``'s values
FIELDS = ("markPrice", "indexPrice", "predictedDeliveryPrice", "fundingRate", "nextFundingTime",
          "openInterest")
_PRICES = frozenset(("markPrice", "indexPrice", "predictedDeliveryPrice"))


class TickerData(msgspec.Struct, gc=False):
    """The ``data`` of a linear ``tickers`` message: a snapshot carries every field, a delta only
    the ones that changed (absent: None). Other fields (last price, 24 h volume, best bid/ask)
    are not read."""

    symbol: str
    markPrice: str | None = None
    indexPrice: str | None = None
    predictedDeliveryPrice: str | None = None  # delivery futures, near delivery ("" otherwise)
    fundingRate: str | None = None  # "" on delivery futures
    nextFundingTime: str | None = None  # ms as a string; "0" or "" where none
    openInterest: str | None = None  # base coin


class TickerUpdate(msgspec.Struct, gc=False):
    """A ``Derivative`` record: what one tickers message changed (None: unchanged or absent)."""

    kind: ClassVar[int] = DERIVATIVE
    source: ClassVar[str] = TICKERS_TOPIC
    trade_ms: ClassVar[int] = 0
    symbol: str
    event_ms: int
    mark_price: float | None = None
    index_price: float | None = None
    settle_price: float | None = None
    funding_rate: float | None = None
    next_funding_ms: int | None = None
    open_interest: float | None = None


def _value(name: str, text: str) -> float | int | None:
    """One field's value ("" and a next funding time of 0 read as None); ``ValidationError``
    for text no column can hold (the reason says ``out of range``: the frame is rejected)."""
    if not text:
        return None
    try:
        if name == "nextFundingTime":
            ms = int(text)
            if not 0 <= ms < 2**63:
                raise ValueError
            return ms or None
        value = float(text)
    except ValueError:
        raise msgspec.ValidationError(f"tickers {name} {text[:30]!r} out of range") from None
    if not math.isfinite(value) or (name != "fundingRate" and value < 0) or (
            name in _PRICES and value == 0):
        raise msgspec.ValidationError(f"tickers {name} {text[:30]!r} out of range")
    return value


class TickerMerge:
    """The full tickers state of every symbol (field -> its wire text), merged from a snapshot
    and the partial deltas after it. A snapshot replaces the state and its row carries every
    value it has; a delta's row carries the values that differ from the state. A delta before
    any snapshot (a replay that starts mid-stream) carries what it says."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, str]] = {}

    def apply(self, data: TickerData, snapshot: bool, event_ms: int) -> TickerUpdate | None:
        """The record of what changed, None when nothing the row carries did. Checks every
        value before touching the state (a rejected frame changes nothing)."""
        texts = (data.markPrice, data.indexPrice, data.predictedDeliveryPrice, data.fundingRate,
                 data.nextFundingTime, data.openInterest)
        prev = {} if snapshot else self.state.get(data.symbol, {})
        changed: dict[str, str] = {}
        values: list[Any] = []
        for name, text in zip(FIELDS, texts, strict=True):
            if text is None or prev.get(name) == text:
                values.append(None)
                continue
            values.append(_value(name, text))
            changed[name] = text
        if snapshot:
            self.state[data.symbol] = changed
        elif changed:
            self.state.setdefault(data.symbol, {}).update(changed)
        if all(v is None for v in values):
            return None
        return TickerUpdate(data.symbol, event_ms, *values)


class LiquidationEntry(msgspec.Struct, gc=False):
    """One entry of ``allLiquidation.{symbol}`` (a ``Liquidation``). Bybit's ``S`` is the side
    of the *position* liquidated (``Buy``: a long); ``side`` is the liquidation order's, as on
    every venue (``sell`` closes a long). No order details: those fields are null or ""."""

    kind: ClassVar[int] = LIQUIDATION
    avg_price: ClassVar[float | None] = None
    filled_qty: ClassVar[float | None] = None
    status: ClassVar[str] = ""
    order_type: ClassVar[str] = ""
    time_in_force: ClassVar[str] = ""
    trade_ms: Ms = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    position_side: str = msgspec.field(name="S")
    qty: Px = msgspec.field(name="v")
    price: Px = msgspec.field(name="p")
    event_ms: OptMs = 0

    @property
    def side(self) -> str:
        return "sell" if self.position_side == "Buy" else "buy"


class RecordBatch(msgspec.Struct, gc=False):
    """The records of one message of one topic, when there are several (or none: a tickers
    delta that changed nothing a row carries)."""

    kind: ClassVar[int] = BATCH
    symbol: str
    records: list[Any]


_ticker_data = msgspec.json.Decoder(TickerData, strict=False)
_liquidations = msgspec.json.Decoder(list[LiquidationEntry], strict=False)
EMPTY = RecordBatch("", [])


def decode_tickers(data: bytes, kind: str, ts: int, merge: TickerMerge) -> Any:
    """The record of one tickers message's ``data`` (``EMPTY`` when it changed nothing)."""
    if kind not in ("snapshot", "delta"):
        raise msgspec.ValidationError(f"tickers message of type {kind[:20]!r}")
    ticker = _ticker_data.decode(data)
    update = merge.apply(ticker, kind == "snapshot", ts)
    return EMPTY if update is None else update


def decode_liquidations(data: bytes, ts: int) -> Any:
    """The record (or ``RecordBatch``) of one allLiquidation message's ``data``."""
    entries = _liquidations.decode(data)
    if not entries:
        raise msgspec.ValidationError("an allLiquidation message without entries")
    for e in entries:
        if e.position_side not in ("Buy", "Sell"):
            raise msgspec.ValidationError(f"allLiquidation side {e.position_side[:10]!r}")
        e.event_ms = ts
    return entries[0] if len(entries) == 1 else RecordBatch(entries[0].symbol, list(entries))


# -- REST open interest (not polled: tickers carries it) -------------------------------------

class _OiRow(msgspec.Struct, gc=False):
    openInterest: Annotated[float, msgspec.Meta(ge=0.0, le=1.7976931348623157e308)]
    timestamp: str = "0"


class _OiResult(msgspec.Struct, gc=False):
    rows: list[_OiRow] = msgspec.field(name="list")
    symbol: str = ""


class _OiAnswer(msgspec.Struct, gc=False):
    retCode: int
    result: _OiResult | None = None


class OpenInterest(BinanceOpenInterest, gc=False):
    """A ``/v5/market/open-interest`` answer's latest row as a ``Derivative`` (the venue-neutral
    shape of a polled open interest, Binance's struct under Bybit's source name)."""

    source: ClassVar[str] = "open-interest"


class BybitDerivatives:
    """The derivatives side of a linear category; ``topic`` makes the adapter's stream values
    (symbol, stream kind, wire name)."""

    polls_open_interest = False  # the tickers topic carries open interest: no REST poll

    def __init__(self, category: Category, topic: Callable[[str, str, str], Any]) -> None:
        self.category = category
        self._topic = topic

    def streams(self, symbols: tuple[str, ...], channels: frozenset[str]) -> list[Any]:
        """``tickers.S`` per symbol for ``derivatives``, ``allLiquidation.S`` for
        ``liquidations``."""
        out: list[Any] = []
        for sym in symbols:
            if DERIVATIVES in channels:
                out.append(self._topic(sym, TICKERS_TOPIC, f"{TICKERS_TOPIC}.{sym}"))
            if LIQUIDATIONS in channels:
                out.append(self._topic(sym, LIQUIDATION_TOPIC, f"{LIQUIDATION_TOPIC}.{sym}"))
        return out

    def open_interest_request(self, symbol: str) -> RestRequest:
        return RestRequest(OPEN_INTEREST_PATH, {"category": self.category.category,
                                                "symbol": symbol, "intervalTime": "5min",
                                                "limit": 1}, 1)

    def open_interest_stream(self, symbol: str) -> str:
        return f"open-interest.{symbol}"  # the REST poll (unused: tickers carries it)

    def decode_open_interest(self, body: bytes, symbol: str) -> OpenInterest:
        """The latest row for ``symbol``; ``ValueError`` for anything else."""
        try:
            doc = msgspec.json.decode(body, type=_OiAnswer, strict=False)
        except msgspec.DecodeError as exc:
            raise ValueError(f"open-interest: {exc}") from None
        if doc.retCode != 0 or doc.result is None or not doc.result.rows:
            raise ValueError(f"open-interest: no rows (retCode {doc.retCode})")
        if doc.result.symbol and doc.result.symbol != symbol:
            raise ValueError(f"open-interest: asked for {symbol}, got {doc.result.symbol}")
        row = doc.result.rows[0]
        try:
            ms = int(row.timestamp)
        except ValueError:
            raise ValueError(f"open-interest: timestamp {row.timestamp[:20]!r}") from None
        return OpenInterest(open_interest=row.openInterest, symbol=symbol, event_ms=ms)


if TYPE_CHECKING:  # the records satisfy the venue-neutral protocols (checked by mypy)
    def _conforms(t: TickerUpdate, q: LiquidationEntry, o: OpenInterest,
                  b: RecordBatch) -> tuple[Derivative, Liquidation, Derivative, Batch]:
        return t, q, o, b
