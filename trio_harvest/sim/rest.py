"""The simulator's REST API: ``/fapi/v1/depth``, ``/fapi/v1/aggTrades``, ``/fapi/v1/exchangeInfo``,
``/fapi/v1/ticker/24hr`` (each symbol's 24 h activity, activity.py).

Owns what each endpoint answers (Binance USD-M's JSON shapes: prices and quantities as strings,
ids and times as integers), the request weights (depth 2..20 by ``limit``, aggTrades 20,
exchangeInfo 1, ticker/24hr 1 for one symbol and 40 for all), the per-minute weight window
(``X-MBX-USED-WEIGHT-1M`` on every answer, 429 with ``Retry-After`` once the limit is used up)
and Binance's error bodies (``{"code":..,"msg":..}``).
Reads the market's book snapshot and trade tape, so ids agree with the streams. Pure: the
HTTP side is ``front.py``; time comes from the simulator's (possibly skewed) clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import msgspec

from ..venues.binance_usdm.listing import PERPETUAL_DELIVERY_MS
from .activity import activity
from .events import AggTrade
from .market import Market
from .specs import SymbolSpec, fixed

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
AGG_TRADES_WEIGHT = 20
EXCHANGE_INFO_WEIGHT = 1
TICKER_24H_WEIGHT = (1, 40)  # one symbol, every symbol
MAX_AGG_TRADES = 1000
WINDOW_MS = 60_000
ONBOARD_MS = 1_569_398_400_000  # the onboardDate of the symbols listed at start (BTCUSDT's)

_encode = msgspec.json.encode


def depth_weight(limit: int) -> int:
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


@dataclass(frozen=True, slots=True)
class RestReply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class RestStats:
    requests: dict[str, int] = field(default_factory=dict)  # by endpoint
    rejected_429: int = 0
    errors_4xx: int = 0
    weight_used: int = 0  # over the whole run

    def render(self) -> str:
        reqs = ", ".join(f"{k} {v}" for k, v in sorted(self.requests.items())) or "none"
        return f"REST requests: {reqs}; 429s {self.rejected_429}; weight {self.weight_used}"


class _BadRequest(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class RestApi:
    def __init__(
        self,
        market: Market,
        clock_ms: Callable[[], int],
        *,
        weight_limit: int = 2400,
        window_ms: int = WINDOW_MS,
    ) -> None:
        self.market = market
        self.clock_ms = clock_ms
        self.weight_limit = weight_limit
        self.window_ms = window_ms
        self.stats = RestStats()
        self._window = -1
        self._used = 0

    def handle(self, method: str, target: str) -> RestReply:
        """Answer one request (``target`` is the path with its query string)."""
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/")
        endpoint = path.rsplit("/", 1)[-1]
        self.stats.requests[endpoint] = self.stats.requests.get(endpoint, 0) + 1
        if method not in ("GET", "HEAD"):
            return self._error(405, -1000, f"method {method} not allowed")
        try:
            if path == "/fapi/v1/depth":
                limit = _int(query, "limit", 500)
                if limit not in DEPTH_LIMITS:
                    raise _BadRequest(400, -1130, "Invalid limit.")
                model = self._symbol(query)
                return self._charged(depth_weight(limit), lambda: self._depth(model.symbol, limit))
            if path == "/fapi/v1/aggTrades":
                model = self._symbol(query)
                limit = _int(query, "limit", 500)
                if not 1 <= limit <= MAX_AGG_TRADES:
                    raise _BadRequest(400, -1130, "Invalid limit.")
                from_id = _opt_int(query, "fromId")
                return self._charged(AGG_TRADES_WEIGHT,
                                     lambda: self._agg_trades(model.symbol, from_id, limit))
            if path == "/fapi/v1/exchangeInfo":
                return self._charged(EXCHANGE_INFO_WEIGHT, self._exchange_info)
            if path == "/fapi/v1/ticker/24hr":
                names = [self._symbol(query).symbol] if "symbol" in query else None
                return self._charged(TICKER_24H_WEIGHT[names is None],
                                     lambda: self._ticker_24h(names))
        except _BadRequest as exc:
            return self._error(exc.status, exc.code, exc.msg)
        return self._error(404, -5000, f"Path {path} not found")

    # -- weight --------------------------------------------------------------------------------

    def used_weight(self) -> int:
        window = self.clock_ms() // self.window_ms
        if window != self._window:
            self._window, self._used = window, 0
        return self._used

    def _charged(self, weight: int, answer: Callable[[], bytes]) -> RestReply:
        used = self.used_weight()
        if used + weight > self.weight_limit:
            self.stats.rejected_429 += 1
            now = self.clock_ms()
            retry = max(1, -(-((self._window + 1) * self.window_ms - now) // 1000))
            return RestReply(429, _encode({
                "code": -1003,
                "msg": f"Too many requests; current limit of IP is {self.weight_limit} "
                       f"request weight per minute. Please use WebSocket Streams for live updates.",
            }), (("Retry-After", str(retry)), ("X-MBX-USED-WEIGHT-1M", str(used))))
        self._used = used + weight
        self.stats.weight_used += weight
        return RestReply(200, answer(), (("X-MBX-USED-WEIGHT-1M", str(self._used)),))

    def _error(self, status: int, code: int, msg: str) -> RestReply:
        self.stats.errors_4xx += 1
        return RestReply(status, _encode({"code": code, "msg": msg}),
                         (("X-MBX-USED-WEIGHT-1M", str(self.used_weight())),))

    # -- endpoints -----------------------------------------------------------------------------

    def _symbol(self, query: dict[str, str]) -> _Model:
        symbol = query.get("symbol", "").upper()
        if not symbol:
            raise _BadRequest(400, -1102, "Mandatory parameter 'symbol' was not sent.")
        if symbol not in self.market:
            raise _BadRequest(400, -1121, "Invalid symbol.")
        return _Model(symbol, self.market[symbol].spec)

    def _depth(self, symbol: str, limit: int) -> bytes:
        model = self.market[symbol]
        snap = model.snapshot(limit)
        spec = model.spec
        now = self.clock_ms()
        return _encode({
            "lastUpdateId": snap.last_update_id,
            "E": now,
            "T": snap.trade_ms or now,
            "bids": [[spec.price_str(p), spec.qty_str(q)] for p, q in snap.bids],
            "asks": [[spec.price_str(p), spec.qty_str(q)] for p, q in snap.asks],
        })

    def _agg_trades(self, symbol: str, from_id: int | None, limit: int) -> bytes:
        model = self.market[symbol]
        if from_id is None:  # the most recent trades
            last = model.tape.last_id
            from_id = 0 if last is None else last - limit + 1
        spec = model.spec
        return _encode([_trade(t, spec) for t in model.tape_since(from_id, limit)])

    def _exchange_info(self) -> bytes:
        symbols = []
        listed = [(m, "TRADING") for m in self.market.symbols.values()]
        listed += [(m, "SETTLING") for m in self.market.closed.values()]  # delisted
        for model, status in listed:
            name, spec = model.symbol, model.spec
            symbols.append({
                "symbol": name, "pair": name, "contractType": "PERPETUAL", "status": status,
                "onboardDate": self.market.listed_ms.get(name, ONBOARD_MS),
                "deliveryDate": self.market.delisted_ms.get(name, PERPETUAL_DELIVERY_MS),
                "pricePrecision": spec.price_decimals, "quantityPrecision": spec.qty_decimals,
                "filters": [
                    {"filterType": "PRICE_FILTER",
                     "tickSize": fixed(spec.tick_units, spec.price_decimals)},
                    {"filterType": "LOT_SIZE", "stepSize": fixed(spec.lot_units, spec.qty_decimals)},
                ],
            })
        return _encode({
            "timezone": "UTC",
            "serverTime": self.clock_ms(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": self.weight_limit}],
            "symbols": symbols,
        })

    def _ticker_24h(self, names: list[str] | None) -> bytes:
        """Binance's shape (strings for decimals); one object for ``symbol=``, else a list."""
        now = self.clock_ms()
        rows = []
        for name in names if names is not None else list(self.market.symbols):
            act, model = activity(name), self.market[name]
            bids = model.snapshot(1).bids
            last = model.spec.price_str(bids[0][0] if bids else model.spec.start_ticks)
            rows.append({"symbol": name, "lastPrice": last, "volume": "0",
                         "quoteVolume": f"{act.quote_volume:.2f}", "count": act.count,
                         "openTime": now - 86_400_000, "closeTime": now})
        return _encode(rows[0] if names is not None else rows)


@dataclass(frozen=True, slots=True)
class _Model:
    symbol: str
    spec: SymbolSpec


def _trade(t: AggTrade, spec: SymbolSpec) -> dict[str, object]:
    return {"a": t.agg_id, "p": spec.price_str(t.price), "q": spec.qty_str(t.qty),
            "f": t.first_id, "l": t.last_id, "T": t.trade_ms, "m": t.buyer_maker}


def _int(query: dict[str, str], name: str, default: int) -> int:
    value = _opt_int(query, name)
    return default if value is None else value


def _opt_int(query: dict[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
