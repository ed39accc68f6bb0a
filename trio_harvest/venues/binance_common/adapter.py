"""The adapter of a Binance venue beside USD-M: USD-M's adapter (frames, ``pu`` local book, trade
rule, rows) bound to another venue's facts (``WireFacts``): hosts, no route split, client message
rate, REST paths and weights, listing request. A venue subclasses it, sets ``facts`` and
overrides what its wire does differently (decode, listing parse, symbol syntax). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..base import Listed, RestRequest
from ..binance_usdm import streams as st
from ..binance_usdm.adapter import BinanceUsdm
from .backfill import first_request, snapshot_request
from .derivatives import BinanceDerivatives
from .facts import WireFacts
from .listing import Instrument
from .unrouted import StreamSpec, plan_connections, unrouted


class BinanceFamily(BinanceUsdm):
    facts: ClassVar[WireFacts]
    ticker_weight: ClassVar[int] = 40  # ticker/24hr of every symbol
    parse_listing: ClassVar[staticmethod[[Mapping[str, Any]], dict[str, Instrument]]]
    is_symbol: ClassVar[staticmethod[[str], bool]]
    futures: ClassVar[bool] = False  # a futures venue: mark price, funding, liquidations

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        f = cls.facts
        cls.name, cls.default_ws_url, cls.default_rest_url = f.name, f.ws_url, f.rest_url
        cls.max_streams_per_connection = f.streams_per_connection
        cls.messages_per_second = f.messages_per_second
        cls.connect_limit = f.connect_limit
        cls.weight_limit, cls.trades_page = f.weight_limit, f.agg_trades_page
        cls.trades_weight = f.agg_trades_weight
        cls.derivatives = BinanceDerivatives(f.rest_prefix, StreamSpec) if cls.futures else None

    def streams_for(self, symbols: tuple[str, ...], *, depth_levels: int, depth_speed: str,
                    book: str, book_ticker: bool) -> list[st.StreamSpec]:
        return [unrouted(s) for s in super().streams_for(
            symbols, depth_levels=depth_levels, depth_speed=depth_speed, book=book,
            book_ticker=book_ticker)]

    def plan_connections(self, streams: list[st.StreamSpec],
                         per_connection: int) -> list[st.ConnectionPlan]:
        return plan_connections(streams, min(per_connection, self.max_streams_per_connection))

    def trades_request(self, symbol: str, from_id: int, limit: int) -> RestRequest:
        """Trades from id ``from_id`` on (at most ``trades_page``)."""
        req = first_request(self.facts, symbol, from_id, from_id + max(1, limit) - 1)
        return RestRequest(req.path, req.query, req.weight)

    def depth_request(self, symbol: str, limit: int) -> RestRequest:
        req = snapshot_request(self.facts, symbol, limit)
        return RestRequest(req.path, req.query, req.weight)

    def ticker_request(self) -> RestRequest:
        return RestRequest(f"{self.facts.rest_prefix}/ticker/24hr", {}, self.ticker_weight)

    def listing_request(self) -> RestRequest:
        return RestRequest(self.facts.exchange_info_path, {}, self.facts.exchange_info_weight)

    def listing(self, doc: Mapping[str, Any]) -> dict[str, Listed]:
        """``symbol -> Listed`` of the venue's exchangeInfo (its status field, its dates)."""
        return {s: Listed(i.status, i.onboard_ms, i.delivery_ms)
                for s, i in type(self).parse_listing(doc).items()}

    def valid_symbol(self, symbol: str) -> bool:
        return type(self).is_symbol(symbol)
