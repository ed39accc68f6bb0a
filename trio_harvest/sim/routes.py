"""Which URL paths the simulator serves, and which streams each route delivers.

Owns the parsing of a request target (``/market/stream?streams=a/b``, ``/public/ws/<stream>``,
the old unrouted ``/stream`` and ``/ws``) and the route rule of USD-M: ``/market`` serves
aggTrade, markPrice and forceOrder, ``/public`` serves bookTicker and depth, the unrouted URLs
serve nothing. A stream on the wrong route is accepted and stays silent, as on Binance. Venues
without routes (Spot, COIN-M: ``routed=False``) serve every stream on ``/stream`` and ``/ws``
and have no ``/market`` or ``/public``. Pure: no I/O, no knowledge of symbols.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from .okx_wire import stream_kind as okx_stream_kind
from .wire import AGG_TRADE, BOOK_TICKER, DEPTH, DIFF_DEPTH, FORCE_ORDER, MARK_PRICE, stream_kind

MARKET = "market"
PUBLIC = "public"
LEGACY = "legacy"  # the pre-2026-04 unrouted URLs: accepted, never served
UNROUTED = "unrouted"  # a venue without routes: everything on one URL
OKX = "okx"  # OKX's /ws/v5/public: every channel, subscribed after the handshake

SERVES: dict[str, frozenset[str]] = {
    MARKET: frozenset({AGG_TRADE, MARK_PRICE, FORCE_ORDER}),
    PUBLIC: frozenset({BOOK_TICKER, DEPTH, DIFF_DEPTH}),
    LEGACY: frozenset(),
    UNROUTED: frozenset({AGG_TRADE, BOOK_TICKER, DEPTH, DIFF_DEPTH, MARK_PRICE, FORCE_ORDER}),
    OKX: frozenset({AGG_TRADE, BOOK_TICKER, DEPTH, DIFF_DEPTH, MARK_PRICE, FORCE_ORDER}),
}


@dataclass(frozen=True, slots=True)
class Route:
    area: str  # MARKET | PUBLIC | LEGACY
    combined: bool  # /stream (wrapped frames) or /ws (raw payloads)
    streams: tuple[str, ...]  # requested in the URL; more may come by SUBSCRIBE


def parse_target(target: str, routed: bool = True) -> Route | None:
    """The route of a request target, or None for a path the simulator does not serve."""
    url = urlsplit(target)
    parts = [p for p in url.path.split("/") if p]
    area = LEGACY if routed else UNROUTED
    if routed and parts and parts[0] in (MARKET, PUBLIC):
        area = parts.pop(0)
    if not parts:
        return None
    if parts[0] == "stream" and len(parts) == 1:
        query = parse_qs(url.query)
        names = [n for value in query.get("streams", []) for n in value.split("/") if n]
        return Route(area, True, tuple(dict.fromkeys(names)))
    if parts[0] == "ws":
        raw = unquote("/".join(parts[1:]))
        return Route(area, False, (raw,) if raw else ())
    return None


def serves(area: str, stream: str) -> bool:
    """Whether a stream asked for on ``area`` is delivered (else: silence)."""
    kind = okx_stream_kind(stream) if area == OKX else stream_kind(stream)
    return kind is not None and kind in SERVES[area]
