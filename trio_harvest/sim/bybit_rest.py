"""The simulator's Bybit v5 REST API: ``recent-trade``, ``instruments-info`` (paged with a
cursor), ``orderbook`` and ``tickers`` under ``/v5/market``.

Owns Bybit's shapes (``{"retCode":0,"retMsg":"OK","result":{…},"time":…}``; prices and sizes as
strings, times as strings in lists), its limits (recent-trade: the last 1000 linear or 60 spot
trades, newest first, nothing older; instruments-info pages of at most 1000 with
``nextPageCursor``), its refusals (``retCode`` 10001 for a bad parameter or another category)
and its IP limit: 600 requests per 5 s (``weight=N`` sets the number), then HTTP 403 "access
too frequent". Reads the market's tape and book, so ids agree with the streams (``bybit_wire
.trade_id``). Pure: the HTTP side is ``front.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from ..venues.bybit import facts
from .bybit_wire import trade_id
from .market import Market
from .rest import RestReply, RestStats

_encode = msgspec.json.encode
PAGE_MAX = 1000
LAUNCH_MS = 1_585_526_400_000  # launchTime of the symbols listed at start


class BybitRestApi:
    def __init__(self, market: Market, clock_ms: Callable[[], int], category: facts.Category, *,
                 limit: int | None = None, window_ms: int = int(facts.REST_WINDOW * 1000),
                 page_default: int = 500) -> None:
        self.root = b"/v5/"
        self.market = market
        self.clock_ms = clock_ms
        self.category = category
        self.weight_limit = facts.REST_LIMIT if limit is None else limit
        self.window_ms = window_ms
        self.page_default = page_default
        self.stats = RestStats()
        self._window = -1
        self._used = 0

    def handle(self, method: str, target: str) -> RestReply:
        path, query = self.stats.counted(target)
        if method not in ("GET", "HEAD"):
            return self._fail(405, 10001, f"method {method} not allowed")
        window = self.clock_ms() // self.window_ms
        if window != self._window:
            self._window, self._used = window, 0
        if self._used >= self.weight_limit:
            self.stats.rejected_429 += 1
            return RestReply(403, b"access too frequent", (("Retry-After", "600"),))
        self._used += 1
        self.stats.weight_used += 1
        if query.get("category") != self.category.category:
            return self._fail(200, 10001, "params error: category")
        try:
            if path == facts.RECENT_TRADE_PATH:
                return self._ok(self._recent(query))
            if path == facts.INSTRUMENTS_PATH:
                return self._ok(self._instruments(query))
            if path == facts.ORDERBOOK_PATH:
                return self._ok(self._orderbook(query))
            if path == facts.TICKERS_PATH:
                return self._ok(self._tickers())
        except ValueError as exc:
            return self._fail(200, 10001, f"params error: {exc}")
        return self._fail(404, 10001, f"path {path} not found")

    def _ok(self, result: dict[str, object]) -> RestReply:
        return RestReply(200, _encode({"retCode": 0, "retMsg": "OK", "result": result,
                                       "retExtInfo": {}, "time": self.clock_ms()}))

    def _fail(self, status: int, code: int, msg: str) -> RestReply:
        self.stats.errors_4xx += 1
        return RestReply(status, _encode({"retCode": code, "retMsg": msg, "result": {},
                                          "retExtInfo": {}, "time": self.clock_ms()}))

    def _symbol(self, query: dict[str, str]) -> str:
        symbol = query.get("symbol", "")
        if symbol not in self.market:
            raise ValueError(f"symbol invalid {symbol[:40]!r}")
        return symbol

    def _limit(self, query: dict[str, str], default: int, most: int) -> int:
        try:
            limit = int(query.get("limit", default))
        except ValueError:
            raise ValueError("limit") from None
        if not 1 <= limit <= most:
            raise ValueError(f"limit must be 1..{most}")
        return limit

    def _recent(self, query: dict[str, str]) -> dict[str, object]:
        """The newest trades, newest first: nothing older than ``recent_trades`` back."""
        symbol = self._symbol(query)
        most = self.category.recent_trades
        limit = self._limit(query, min(60, most), most)
        model = self.market[symbol]
        last = model.tape.last_id
        trades = [] if last is None else model.tape_since(last - limit + 1, limit)
        spec, cat = model.spec, self.category.category
        rows = [{"execId": trade_id(cat, symbol, t.agg_id), "symbol": symbol,
                 "price": spec.price_str(t.price), "size": spec.qty_str(t.qty),
                 "side": "Sell" if t.buyer_maker else "Buy", "time": str(t.trade_ms),
                 "isBlockTrade": False, "isRPITrade": False, "seq": str(t.agg_id)}
                for t in reversed(trades)]
        return {"category": cat, "list": rows}

    def _instruments(self, query: dict[str, str]) -> dict[str, object]:
        limit = self._limit(query, self.page_default, PAGE_MAX)
        names = [(s, "Trading") for s in self.market.symbols]
        names += [(s, "Closed") for s in self.market.closed]
        try:
            start = int(query.get("cursor") or 0)
        except ValueError:
            raise ValueError("cursor") from None
        page = names[start : start + limit]
        rows: list[dict[str, object]] = []
        for name, status in page:
            spec = self.market[name].spec
            row: dict[str, object] = {
                "symbol": name, "status": status, "baseCoin": name.removesuffix("USDT"),
                "quoteCoin": "USDT",
                "priceFilter": {"tickSize": spec.price_str(1)},
                "lotSizeFilter": {"qtyStep": spec.qty_str(1)}}
            if self.category.listing_dates:
                row.update(contractType="LinearPerpetual",
                           launchTime=str(self.market.listed_ms.get(name, LAUNCH_MS)),
                           deliveryTime=str(self.market.delisted_ms.get(name, 0)))
            rows.append(row)
        nxt = str(start + limit) if start + limit < len(names) else ""
        return {"category": self.category.category, "list": rows, "nextPageCursor": nxt}

    def _orderbook(self, query: dict[str, str]) -> dict[str, object]:
        symbol = self._symbol(query)
        limit = self._limit(query, 25, 1000)
        model = self.market[symbol]
        snap, spec = model.snapshot(limit), model.spec
        return {"s": symbol, "b": [[spec.price_str(p), spec.qty_str(q)] for p, q in snap.bids],
                "a": [[spec.price_str(p), spec.qty_str(q)] for p, q in snap.asks],
                "ts": self.clock_ms(), "u": snap.last_update_id, "seq": snap.last_update_id,
                "cts": snap.trade_ms}

    def _tickers(self) -> dict[str, object]:
        rows = []
        for name, model in self.market.symbols.items():
            bids = model.snapshot(1).bids
            price = model.spec.price_str(bids[0][0] if bids else model.spec.start_ticks)
            rows.append({"symbol": name, "lastPrice": price, "turnover24h": "1000000",
                         "volume24h": "100"})
        return {"category": self.category.category, "list": rows}
