"""The derivatives side of a Binance futures venue (USD-M, COIN-M): its mark price and
liquidation streams, and the open-interest poll (``venues.base.DerivativesSide``).

Owns the stream names (``<symbol>@markPrice@1s``, ``<symbol>@forceOrder``; on USD-M both on the
``/market`` route), which channel asks for which, the REST ``openInterest`` request (weight 1)
and the decoding of its answer into a ``Derivative`` record. Pure: builds names and requests,
decodes bytes; never does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, ClassVar

import msgspec

from ...kinds import DERIVATIVES, LIQUIDATIONS
from ..base import DERIVATIVE, RestRequest
from ..binance_usdm import streams as st

if TYPE_CHECKING:
    from ..base import Derivative, Liquidation
    from ..binance_usdm.decode import ForceOrder, MarkPriceUpdate

OPEN_INTEREST_WEIGHT = 1  # ``GET <prefix>/openInterest?symbol=`` on USD-M and COIN-M
MARK_PRICE_SUFFIX = "@markPrice@1s"
FORCE_ORDER_SUFFIX = "@forceOrder"


class OpenInterest(msgspec.Struct, gc=False):
    """A REST ``openInterest`` answer (USD-M: ``{"openInterest","symbol","time"}``; COIN-M adds
    ``pair`` and ``contractType`` and counts contracts) as a ``Derivative``."""

    kind: ClassVar[int] = DERIVATIVE
    source: ClassVar[str] = "openInterest"
    trade_ms: ClassVar[int] = 0
    mark_price: ClassVar[float | None] = None
    index_price: ClassVar[float | None] = None
    settle_price: ClassVar[float | None] = None
    funding_rate: ClassVar[float | None] = None
    next_funding_ms: ClassVar[int | None] = None
    open_interest: Annotated[float, msgspec.Meta(ge=0.0, le=1.7976931348623157e308)] = \
        msgspec.field(name="openInterest")
    symbol: str = ""
    event_ms: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = msgspec.field(name="time",
                                                                               default=0)


_open_interest = msgspec.json.Decoder(OpenInterest, strict=False)


class BinanceDerivatives:
    """One venue's derivatives side; ``spec`` makes the venue's ``StreamSpec`` (routed or not)."""

    polls_open_interest = True  # REST ``openInterest``: no stream carries it

    def __init__(self, rest_prefix: str,
                 spec: Callable[[str, str, str], st.StreamSpec] = st.StreamSpec) -> None:
        self.rest_prefix = rest_prefix
        self._spec = spec

    def streams(self, symbols: tuple[str, ...], channels: frozenset[str]) -> list[st.StreamSpec]:
        """The mark price stream of each symbol (``derivatives``), its liquidation stream
        (``liquidations``), for the channels asked for."""
        out: list[st.StreamSpec] = []
        for sym in symbols:
            low = sym.lower()
            if DERIVATIVES in channels:
                out.append(self._spec(sym, st.MARK_PRICE, low + MARK_PRICE_SUFFIX))
            if LIQUIDATIONS in channels:
                out.append(self._spec(sym, st.FORCE_ORDER, low + FORCE_ORDER_SUFFIX))
        return out

    def open_interest_request(self, symbol: str) -> RestRequest:
        return RestRequest(f"{self.rest_prefix}/openInterest", {"symbol": symbol},
                           OPEN_INTEREST_WEIGHT)

    def open_interest_stream(self, symbol: str) -> str:
        """The poll's stream name in ``gaps`` rows (no socket stream has it)."""
        return f"{symbol.lower()}@openInterest"

    def decode_open_interest(self, body: bytes, symbol: str) -> OpenInterest:
        """The answer for ``symbol``; ``ValueError`` for anything else (another symbol's, a
        value that is not a non-negative number)."""
        try:
            oi = _open_interest.decode(body)
        except msgspec.DecodeError as exc:
            raise ValueError(f"openInterest: {exc}") from None
        if oi.symbol and oi.symbol != symbol:
            raise ValueError(f"openInterest: asked for {symbol}, got {oi.symbol}")
        oi.symbol = symbol
        return oi


if TYPE_CHECKING:  # the records satisfy the venue-neutral protocols (checked by mypy)
    def _conforms(m: MarkPriceUpdate, f: ForceOrder,
                  o: OpenInterest) -> tuple[Derivative, Liquidation, Derivative]:
        return m, f, o
