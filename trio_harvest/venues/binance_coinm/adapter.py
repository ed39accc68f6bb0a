"""Binance COIN-M as a ``venues.base.Venue``: USD-M's adapter with COIN-M's facts (``wire.FACTS``).

The frames, the ``pu`` book rule, the local book and the trade rule are USD-M's, so this adapter
inherits them; what it changes is what ``wire.py`` says differs: hosts, no route split (every
stream on ``/stream``), 10 client messages a second, REST under ``/dapi/v1`` with its weights, the
listing's ``contractStatus``, and the symbol syntax. Not registered in ``venues/__init__.py``
(the integrator adds it). Pure: no trio, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..base import Listed, RestRequest
from ..binance_common.backfill import snapshot_request
from ..binance_usdm import streams as st
from ..binance_usdm.adapter import BinanceUsdm
from . import wire

ROUTE = "stream"  # the one route: ``/stream?streams=…`` carries every stream


@dataclass(frozen=True, slots=True)
class StreamSpec(st.StreamSpec):
    """A stream of a venue without routes."""

    @property
    def route(self) -> str:
        return ROUTE


@dataclass(frozen=True, slots=True)
class ConnectionPlan(st.ConnectionPlan):
    def url(self, base: str) -> str:
        return wire.FACTS.combined_url([s.name for s in self.streams], base)


def _unrouted(spec: st.StreamSpec) -> StreamSpec:
    return StreamSpec(spec.symbol, spec.kind, spec.name)


class BinanceCoinm(BinanceUsdm):
    """The adapter (one instance, ``VENUE``)."""

    name = wire.NAME
    default_ws_url = wire.FACTS.ws_url
    default_rest_url = wire.FACTS.rest_url
    max_streams_per_connection = wire.FACTS.streams_per_connection
    messages_per_second = wire.FACTS.messages_per_second
    weight_limit = wire.FACTS.weight_limit
    trades_page = wire.FACTS.agg_trades_page
    trades_weight = wire.FACTS.agg_trades_weight

    def streams_for(self, symbols: tuple[str, ...], *, depth_levels: int, depth_speed: str,
                    book: str, book_ticker: bool) -> list[st.StreamSpec]:
        return [_unrouted(s) for s in super().streams_for(
            symbols, depth_levels=depth_levels, depth_speed=depth_speed, book=book,
            book_ticker=book_ticker)]

    def plan_connections(self, streams: list[st.StreamSpec],
                         per_connection: int) -> list[st.ConnectionPlan]:
        n = max(1, min(per_connection, self.max_streams_per_connection))
        specs = [_unrouted(s) for s in streams]
        return [ConnectionPlan(ROUTE, tuple(specs[i : i + n])) for i in range(0, len(specs), n)]

    def url_after(self, url: str, messages: list[str]) -> str:
        return st.url_after(url, messages)

    def trades_request(self, symbol: str, from_id: int, limit: int) -> RestRequest:
        """Trades from id ``from_id`` on (``/dapi/v1/aggTrades``, weight 20)."""
        req = wire.backfill_request(symbol, from_id, from_id + max(1, limit) - 1)
        return RestRequest(req.path, req.query, req.weight)

    def depth_request(self, symbol: str, limit: int) -> RestRequest:
        req = snapshot_request(wire.FACTS, symbol, limit)
        return RestRequest(req.path, req.query, req.weight)

    def ticker_request(self) -> RestRequest:
        return RestRequest(f"{wire.FACTS.rest_prefix}/ticker/24hr", {}, 40)

    def listing_request(self) -> RestRequest:
        return RestRequest(wire.FACTS.exchange_info_path, {}, wire.FACTS.exchange_info_weight)

    def listing(self, doc: Mapping[str, Any]) -> dict[str, Listed]:
        """``symbol -> Listed`` (status ``contractStatus``; a quarterly's delivery date)."""
        return {s: Listed(i.status, i.onboard_ms, i.delivery_ms)
                for s, i in wire.parse_listing(doc).items()}

    def valid_symbol(self, symbol: str) -> bool:
        return wire.is_symbol(symbol)


VENUE = BinanceCoinm()
