"""Binance USD-M stream names, routes and connection plans.

Owns which stream goes on which route (``/market`` for aggTrade, ``/public`` for depth and
bookTicker; since 2026-04 a stream on the wrong route is silently never served) and how streams
are packed into connections under the per-connection limit. Pure: builds names and URLs only.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

MARKET = "market"
PUBLIC = "public"

AGG_TRADE = "aggTrade"
BOOK_TICKER = "bookTicker"
DEPTH = "depth"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    symbol: str  # upper case, as in payloads
    kind: str  # AGG_TRADE | BOOK_TICKER | DEPTH
    name: str  # the wire name, lower-case symbol

    @property
    def route(self) -> str:
        return MARKET if self.kind == AGG_TRADE else PUBLIC


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    route: str
    streams: tuple[StreamSpec, ...]

    def url(self, base: str) -> str:
        return combined_url(base, self.route, [s.name for s in self.streams])

    @property
    def label(self) -> str:
        first = self.streams[0].name if self.streams else "-"
        return f"{self.route}[{len(self.streams)}:{first}…]"


def depth_stream_name(symbol: str, levels: int, speed: str, mode: str) -> str:
    """``btcusdt@depth20@100ms`` (partial) or ``btcusdt@depth@100ms`` (diff). 250ms has no suffix."""
    base = f"{symbol.lower()}@depth" + (str(levels) if mode == "partial" else "")
    return base if speed == "250ms" else f"{base}@{speed}"


def streams_for(
    symbols: tuple[str, ...], *, depth_levels: int, depth_speed: str, book: str, book_ticker: bool
) -> list[StreamSpec]:
    out: list[StreamSpec] = []
    for sym in symbols:
        out.append(StreamSpec(sym, AGG_TRADE, f"{sym.lower()}@aggTrade"))
        out.append(StreamSpec(sym, DEPTH, depth_stream_name(sym, depth_levels, depth_speed, book)))
        if book_ticker:
            out.append(StreamSpec(sym, BOOK_TICKER, f"{sym.lower()}@bookTicker"))
    return out


def plan_connections(streams: list[StreamSpec], per_connection: int) -> list[ConnectionPlan]:
    """Group streams by route, then chunk each route's streams into connections of at most
    ``per_connection`` streams, keeping the order (a symbol's streams stay adjacent)."""
    plans: list[ConnectionPlan] = []
    for route in (MARKET, PUBLIC):
        on_route = [s for s in streams if s.route == route]
        for i in range(0, len(on_route), per_connection):
            plans.append(ConnectionPlan(route, tuple(on_route[i : i + per_connection])))
    return plans


def combined_url(base: str, route: str, names: list[str]) -> str:
    """Stream names percent-encoded: listed symbols are not all ASCII (``币安人生USDT``)."""
    joined = "/".join(quote(n, safe="@") for n in names)
    return f"{base.rstrip('/')}/{route}/stream?streams={joined}"
