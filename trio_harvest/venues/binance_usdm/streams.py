"""Binance USD-M stream names, routes and connection plans.

Owns which stream goes on which route (``/market`` for aggTrade, markPrice and forceOrder,
``/public`` for depth and bookTicker; since 2026-04 a stream on the wrong route is silently
never served), how streams are packed into connections under the per-connection limit, and
the live ``SUBSCRIBE`` / ``UNSUBSCRIBE`` requests (and their replies) that change a
connection's streams while it runs (at most ``MESSAGES_PER_SECOND`` client messages per
connection). Pure: builds names, URLs and messages only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, quote, urlsplit

MARKET = "market"
PUBLIC = "public"

AGG_TRADE = "aggTrade"
BOOK_TICKER = "bookTicker"
DEPTH = "depth"
MARK_PRICE = "markPrice"  # ``<symbol>@markPrice@1s``: mark, index, funding (once a second)
FORCE_ORDER = "forceOrder"  # ``<symbol>@forceOrder``: liquidation orders (at most one a second)
MESSAGES_PER_SECOND = 10  # a client may send this many messages per second per connection


@dataclass(frozen=True, slots=True)
class StreamSpec:
    symbol: str  # upper case, as in payloads
    kind: str  # AGG_TRADE | BOOK_TICKER | DEPTH | MARK_PRICE | FORCE_ORDER
    name: str  # the wire name, lower-case symbol

    @property
    def route(self) -> str:
        return PUBLIC if self.kind in (BOOK_TICKER, DEPTH) else MARKET


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    route: str
    streams: tuple[StreamSpec, ...]

    def url(self, base: str) -> str:
        return combined_url(base, self.route, [s.name for s in self.streams])

    def with_streams(self, add: tuple[StreamSpec, ...] = (),
                     remove: frozenset[str] = frozenset()) -> ConnectionPlan:
        """This plan with ``add`` appended and the streams named in ``remove`` taken out."""
        kept = tuple(s for s in self.streams if s.name not in remove)
        return replace(self, streams=kept + tuple(s for s in add if s not in kept))

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


def subscription(method: str, names: list[str], request_id: int) -> str:
    """``{"method":"SUBSCRIBE","params":[...],"id":N}`` (or ``UNSUBSCRIBE``)."""
    return json.dumps({"method": method, "params": names, "id": request_id},
                      separators=(",", ":"), ensure_ascii=False)


def reply_to(frame: str | bytes) -> tuple[int, str] | None:
    """``(id, error)`` of a reply to a subscription request (``{"result":null,"id":1}``: error
    ``""``), or None for any other frame. Only called for frames that are not stream data."""
    try:
        doc = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), int) or \
            not ("result" in doc or "error" in doc):
        return None
    error = doc.get("error")
    return doc["id"], "" if error is None else str(error)[:200]


def url_after(url: str, messages: list[str]) -> str:
    """The combined-stream ``url`` that opens what ``url`` followed by the SUBSCRIBE /
    UNSUBSCRIBE ``messages`` carries (a replacement connection opens it, rather than replaying
    the requests). Anything it cannot read leaves the URL as it is."""
    parts = urlsplit(url)
    joined = parse_qs(parts.query).get("streams", [""])[-1]
    names = [n for n in joined.split("/") if n]
    for message in messages:
        try:
            doc = json.loads(message)
        except ValueError:
            continue
        params = doc.get("params") if isinstance(doc, dict) else None
        if not isinstance(params, list):
            continue
        if doc.get("method") == "SUBSCRIBE":
            names += [p for p in params if isinstance(p, str) and p not in names]
        elif doc.get("method") == "UNSUBSCRIBE":
            names = [n for n in names if n not in params]
    base, _, _ = url.partition("?")
    return f"{base}?streams=" + "/".join(quote(n, safe="@") for n in names)
