"""The events a symbol's market model emits, on integer grids (prices in ticks, sizes in lots).

Owns the event records shared by the model (and the derivatives model, ``derivs.py``), the
trade tape, the wire encoder and the fault injector. Plain immutable data: no formatting, no
I/O, no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

Level = tuple[int, int]  # (price ticks, size lots); size 0 deletes the level in a diff


@dataclass(frozen=True, slots=True)
class AggTrade:
    """One aggregated trade: an aggressor order filled at one price level."""

    symbol: str
    agg_id: int
    price: int
    qty: int
    first_id: int
    last_id: int
    trade_ms: int
    event_ms: int
    buyer_maker: bool  # True when the aggressor sold (it hit the bid)


@dataclass(frozen=True, slots=True)
class BookTicker:
    """Best bid and ask after a book update that changed either."""

    symbol: str
    update_id: int
    bid: int
    bid_qty: int
    ask: int
    ask_qty: int
    trade_ms: int
    event_ms: int


@dataclass(frozen=True, slots=True)
class BookDepth:
    """The book at a cadence boundary: the top levels (``diff=False``, partial depth; the wire
    cuts it to 5, 10 or 20) or every level changed since the previous boundary (``diff=True``,
    absolute sizes, 0 deletes). ``prev_update_id`` is the previous message's ``last_update_id``
    at the same cadence, so each cadence is one ``pu`` chain."""

    symbol: str
    cadence_ms: int
    diff: bool
    first_update_id: int
    last_update_id: int
    prev_update_id: int
    bids: tuple[Level, ...]  # best first
    asks: tuple[Level, ...]  # best first
    trade_ms: int
    event_ms: int


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """The book now, as ``GET /fapi/v1/depth`` returns it (for REST and diff-depth resync)."""

    symbol: str
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    trade_ms: int


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """A futures contract's mark price update (``markPrice@1s``), once a second. Prices are
    plain floats (a mark is not on the tick grid); ``funding_rate`` None and
    ``next_funding_ms`` 0 for a delivery contract (no funding)."""

    symbol: str
    event_ms: int
    mark: float
    index: float
    settle: float
    funding_rate: float | None
    next_funding_ms: int
    open_interest: int = 0  # lots open now (OKX pushes it on a channel; Binance is polled)


@dataclass(frozen=True, slots=True)
class ForceOrder:
    """A liquidation order (``forceOrder``): ``buy`` closes a short, a sell closes a long."""

    symbol: str
    buy: bool
    price: int  # ticks: the order's limit price
    avg_price: int  # ticks: its average fill price
    qty: int  # lots
    trade_ms: int
    event_ms: int


Event = AggTrade | BookTicker | BookDepth | MarkPrice | ForceOrder
