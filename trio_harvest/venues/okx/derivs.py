"""OKX v5's derivatives channels for ``okx-swap``: their stream names, subscribe args, push
decoding into ``Derivative``/``Liquidation`` records, and the venue's ``DerivativesSide``.

Owns the channels ``mark-price`` (``markPx``), ``index-tickers`` (``idxPx``; subscribed by the
index, ``BTC-USDT`` for ``BTC-USDT-SWAP``), ``funding-rate`` (``fundingRate`` and
``fundingTime``, when that rate settles), ``open-interest`` (``oi``: contracts, times the
instrument's ``ctVal`` as every SWAP size is; contracts where the listing gave none) and
``liquidation-orders`` (one subscription per instType for every instrument: the router drops
the liquidations of instIds it does not harvest). Each stream of a symbol is named
``<channel>:<instId of the swap>`` whatever OKX's arg is. A value a push does not carry stays
None. Pure: no trio, no I/O; never reads the clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec

from ...kinds import DERIVATIVES, LIQUIDATIONS
from ..base import BATCH, DERIVATIVE, LIQUIDATION, RestRequest

if TYPE_CHECKING:
    from ..base import Derivative, Liquidation

MARK_PRICE = "mark-price"
INDEX_TICKERS = "index-tickers"
FUNDING_RATE = "funding-rate"
OPEN_INTEREST = "open-interest"
LIQUIDATION_ORDERS = "liquidation-orders"
STATE_CHANNELS = (MARK_PRICE, INDEX_TICKERS, FUNDING_RATE, OPEN_INTEREST)  # -> derivatives
CHANNELS = (*STATE_CHANNELS, LIQUIDATION_ORDERS)
SWAP_SUFFIX = "-SWAP"
# expected seconds between pushes of one stream when nothing changes (health's cadence): OKX
# pushes mark and index on change and at least about once a minute, funding every 30-90 s,
# open interest on change; liquidations come in bursts and may be silent for hours
CADENCE: dict[str, float] = {MARK_PRICE: 10.0, INDEX_TICKERS: 60.0, FUNDING_RATE: 90.0,
                             OPEN_INTEREST: 60.0, LIQUIDATION_ORDERS: 86_400.0}
Ms = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class Refused(msgspec.ValidationError):
    """A push whose content no column can hold."""


class OkxDerivative(msgspec.Struct, gc=False):
    """One push of a state channel as a ``Derivative``: the one value it carries, None for the
    rest; ``source`` is the channel."""

    kind: ClassVar[int] = DERIVATIVE
    trade_ms: ClassVar[int] = 0
    settle_price: ClassVar[float | None] = None  # OKX gives a SWAP no estimated settle price
    symbol: str
    source: str
    event_ms: int
    mark_price: float | None = None
    index_price: float | None = None
    funding_rate: float | None = None
    next_funding_ms: int | None = None
    open_interest: float | None = None


class OkxLiquidation(msgspec.Struct, gc=False):
    """One ``details`` entry of ``liquidation-orders`` as a ``Liquidation``: ``side`` the
    order's (``buy`` closes a short), ``price`` the bankruptcy price ``bkPx``, ``qty`` ``sz``
    in base currency (contracts times ``ctVal``)."""

    kind: ClassVar[int] = LIQUIDATION
    avg_price: ClassVar[float | None] = None
    filled_qty: ClassVar[float | None] = None
    status: ClassVar[str] = ""
    order_type: ClassVar[str] = ""
    time_in_force: ClassVar[str] = ""
    symbol: str
    side: str
    price: float
    qty: float
    trade_ms: int

    @property
    def event_ms(self) -> int:
        return self.trade_ms


class OkxLiquidations(msgspec.Struct, gc=False):
    """The liquidations of one push (a ``Batch``); ``streams`` names each record's stream
    (one push may carry several instIds)."""

    kind: ClassVar[int] = BATCH
    symbol: str
    records: list[OkxLiquidation]
    streams: list[str]


class _Mark(msgspec.Struct, gc=False):
    markPx: str
    ts: Ms = 0


class _Index(msgspec.Struct, gc=False):
    idxPx: str
    ts: Ms = 0


class _Funding(msgspec.Struct, gc=False):
    fundingRate: str = ""
    fundingTime: str = ""
    ts: Ms = 0


class _Oi(msgspec.Struct, gc=False):
    oi: str
    ts: Ms = 0


class _Detail(msgspec.Struct, gc=False):
    side: str
    bkPx: str
    sz: str
    ts: Ms = 0


class _Liq(msgspec.Struct, gc=False):
    instId: str
    details: list[_Detail] = msgspec.field(default_factory=list)


_mark = msgspec.json.Decoder(list[_Mark], strict=False)
_index = msgspec.json.Decoder(list[_Index], strict=False)
_funding = msgspec.json.Decoder(list[_Funding], strict=False)
_oi = msgspec.json.Decoder(list[_Oi], strict=False)
_liq = msgspec.json.Decoder(list[_Liq], strict=False)


def _num(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Refused(f"{what} that is not a number: {text[:30]!r}") from None
    if not -math.inf < value < math.inf:
        raise Refused(f"{what} out of range: {text[:30]!r}")
    return value


def _opt(text: str, what: str) -> float | None:
    return _num(text, what) if text else None


def _one(entries: list[Any], channel: str) -> Any:
    if len(entries) != 1:
        raise Refused(f"a {channel} push with other than one entry")
    return entries[0]


def stream_symbol(channel: str, inst: str) -> str:
    """The harvested symbol a push's ``instId`` stands for (an index names its swap)."""
    return inst + SWAP_SUFFIX if channel == INDEX_TICKERS else inst


def decode(channel: str, inst: str, data: msgspec.Raw,
           scales: Mapping[str, float]) -> tuple[str, Any]:
    """``(stream, record)`` of one push of a derivatives channel (``channel`` one of
    ``CHANNELS``); a liquidation push of several orders is a batch naming each one's stream.
    Raises ``Refused`` or ``msgspec.ValidationError``."""
    if channel == LIQUIDATION_ORDERS:
        records: list[OkxLiquidation] = []
        streams: list[str] = []
        for entry in _liq.decode(data):
            scale = scales.get(entry.instId, 1.0)
            stream = f"{LIQUIDATION_ORDERS}:{entry.instId}"
            for d in entry.details:
                if d.side not in ("buy", "sell"):
                    raise Refused(f"a liquidation side {d.side[:10]!r}")
                records.append(OkxLiquidation(entry.instId, d.side, _num(d.bkPx, "a price"),
                                              _num(d.sz, "a size") * scale, d.ts))
                streams.append(stream)
        if not records:
            raise Refused("a liquidation-orders push without orders")
        if len(records) == 1:
            return streams[0], records[0]
        return streams[0], OkxLiquidations(records[0].symbol, records, streams)
    symbol = stream_symbol(channel, inst)
    stream = f"{channel}:{symbol}"
    if channel == MARK_PRICE:
        m = _one(_mark.decode(data), channel)
        return stream, OkxDerivative(symbol, channel, m.ts, mark_price=_num(m.markPx, "a mark"))
    if channel == INDEX_TICKERS:
        i = _one(_index.decode(data), channel)
        return stream, OkxDerivative(symbol, channel, i.ts, index_price=_num(i.idxPx, "an index"))
    if channel == FUNDING_RATE:
        f = _one(_funding.decode(data), channel)
        settles = _opt(f.fundingTime, "a funding time")
        return stream, OkxDerivative(symbol, channel, f.ts,
                                     funding_rate=_opt(f.fundingRate, "a funding rate"),
                                     next_funding_ms=int(settles) if settles else None)
    o = _one(_oi.decode(data), channel)
    value = _num(o.oi, "an open interest") * scales.get(inst, 1.0)
    if value < 0:
        raise Refused(f"a negative open interest: {o.oi[:30]!r}")
    return stream, OkxDerivative(symbol, channel, o.ts, open_interest=value)


# -- subscriptions -------------------------------------------------------------------------------

def wire_arg(channel: str, inst: str) -> dict[str, str]:
    """OKX's subscribe arg of the stream ``<channel>:<inst>`` (``inst`` the swap)."""
    if channel == INDEX_TICKERS and inst.endswith(SWAP_SUFFIX):
        return {"channel": channel, "instId": inst[: -len(SWAP_SUFFIX)]}
    if channel == LIQUIDATION_ORDERS:
        return {"channel": channel, "instType": "SWAP"}
    return {"channel": channel, "instId": inst}


def kind_of(channel: str) -> str:
    """The core's stream kind of a derivatives channel ("" for another channel)."""
    if channel == LIQUIDATION_ORDERS:
        return LIQUIDATIONS
    return DERIVATIVES if channel in STATE_CHANNELS else ""


class OkxDerivatives:
    """``okx-swap``'s derivatives side: its streams of the channels asked for. Open interest
    is a channel: nothing is polled over REST (``polls_open_interest`` False)."""

    polls_open_interest = False

    def __init__(self, spec: Callable[[str, str, str], Any]) -> None:
        self._spec = spec

    def streams(self, symbols: tuple[str, ...], channels: frozenset[str]) -> list[Any]:
        out: list[Any] = []
        for sym in symbols:
            if DERIVATIVES in channels:
                out += [self._spec(sym, ch, f"{ch}:{sym}") for ch in STATE_CHANNELS]
            if LIQUIDATIONS in channels:
                out.append(self._spec(sym, LIQUIDATION_ORDERS, f"{LIQUIDATION_ORDERS}:{sym}"))
        return out

    def open_interest_request(self, symbol: str) -> RestRequest:
        raise NotImplementedError("OKX's open interest is a channel, never polled")

    def open_interest_stream(self, symbol: str) -> str:
        return f"open-interest:{symbol}"

    def decode_open_interest(self, body: bytes, symbol: str) -> Derivative:
        raise NotImplementedError("OKX's open interest is a channel, never polled")


def liquidation_symbols(names: Iterable[str]) -> set[str]:
    """The instIds of the ``liquidation-orders`` streams among ``names``."""
    prefix = LIQUIDATION_ORDERS + ":"
    return {n[len(prefix):] for n in names if n.startswith(prefix)}


if TYPE_CHECKING:  # the records satisfy the venue-neutral protocols (checked by mypy)
    def _conforms(d: OkxDerivative, q: OkxLiquidation) -> tuple[Derivative, Liquidation]:
        return d, q
