"""The simulator's REST API: ``depth``, ``aggTrades``, ``exchangeInfo``, ``ticker/24hr`` (each
symbol's 24 h activity, activity.py) and on the futures venues ``openInterest`` (weight 1) under
the venue's prefix (USD-M ``/fapi/v1``, Spot ``/api/v3``, COIN-M ``/dapi/v1``).

Owns what each endpoint answers (the venue's JSON shapes: prices and quantities as strings, ids
and times as integers; spot's depth without ``E``/``T``; COIN-M's exchangeInfo with
``contractStatus``, ``contractSize`` and quarterlies' ``deliveryDate``), the request weights of
the venue's profile (USD-M: depth 2..20 by ``limit``, aggTrades 20, exchangeInfo 1, ticker/24hr
1 for one symbol and 40 for all; Spot: depth 5..250, aggTrades 4, exchangeInfo 20), the
per-minute weight window (``X-MBX-USED-WEIGHT-1M`` on every answer, 429 with ``Retry-After``
once the limit is used up) and Binance's error bodies (``{"code":..,"msg":..}``). Reads the
market's book snapshot and trade tape, so ids agree with the streams. Pure: the HTTP side is
``front.py``; time comes from the simulator's (possibly skewed) clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import msgspec

from ..venues.binance_coinm.wire import delivery_ms, pair_of, quarter_type
from ..venues.binance_usdm.listing import PERPETUAL_DELIVERY_MS
from .activity import activity
from .derivs import Derivatives
from .events import AggTrade
from .market import Market
from .specs import SymbolSpec, fixed
from .venue import USDM_PROFILE, VenueProfile

MAX_AGG_TRADES = 1000
OPEN_INTEREST_WEIGHT = 1
WINDOW_MS = 60_000
ONBOARD_MS = 1_569_398_400_000  # the onboardDate of the symbols listed at start (BTCUSDT's)

_encode = msgspec.json.encode


def depth_weight(limit: int) -> int:
    """USD-M's depth weight by ``limit`` (2..20); other venues': ``VenueProfile.depth_weight``."""
    return USDM_PROFILE.depth_weight(limit)


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

    def counted(self, target: str) -> tuple[str, dict[str, str]]:
        """The path (no trailing slash) and query of a request target, counted by endpoint (the
        path's last segment)."""
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/")
        endpoint = path.rsplit("/", 1)[-1]
        self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
        return path, query

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
        weight_limit: int | None = None,
        window_ms: int = WINDOW_MS,
        venue: VenueProfile = USDM_PROFILE,
        derivs: Derivatives | None = None,
    ) -> None:
        self.venue = venue
        self.derivs = derivs  # the futures venues' contracts (open interest)
        self.root = venue.rest_root.encode()  # what the front routes here (``/fapi/``)
        self.market = market
        self.clock_ms = clock_ms
        self.weight_limit = venue.weight_limit if weight_limit is None else weight_limit
        self.window_ms = window_ms
        self.stats = RestStats()
        self._window = -1
        self._used = 0

    def handle(self, method: str, target: str) -> RestReply:
        """Answer one request (``target`` is the path with its query string)."""
        path, query = self.stats.counted(target)
        if method not in ("GET", "HEAD"):
            return self._error(405, -1000, f"method {method} not allowed")
        venue = self.venue
        prefix = venue.rest_prefix
        try:
            if path == f"{prefix}/depth":
                limit = _int(query, "limit", 500 if venue.pu else 100)
                if not venue.depth_limit_ok(limit):
                    raise _BadRequest(400, -1130, "Invalid limit.")
                model = self._symbol(query)
                return self._charged(venue.depth_weight(limit),
                                     lambda: self._depth(model.symbol, limit))
            if path == f"{prefix}/aggTrades":
                model = self._symbol(query)
                limit = _int(query, "limit", 500)
                if not 1 <= limit <= MAX_AGG_TRADES:
                    raise _BadRequest(400, -1130, "Invalid limit.")
                from_id = _opt_int(query, "fromId")
                return self._charged(venue.agg_trades_weight,
                                     lambda: self._agg_trades(model.symbol, from_id, limit))
            if path == f"{prefix}/exchangeInfo":
                return self._charged(venue.exchange_info_weight, self._exchange_info)
            if path == f"{prefix}/ticker/24hr":
                names = [self._symbol(query).symbol] if "symbol" in query else None
                return self._charged(venue.ticker_weights[names is None],
                                     lambda: self._ticker_24h(names))
            if path == f"{prefix}/openInterest" and self.derivs is not None:
                model = self._symbol(query)
                return self._charged(OPEN_INTEREST_WEIGHT,
                                     lambda: self._open_interest(model.symbol))
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
        body: dict[str, object] = {"lastUpdateId": snap.last_update_id}
        if self.venue.pu:  # the futures venues stamp it (spot's has no E/T)
            body.update(E=now, T=snap.trade_ms or now)
        if self.venue.pair_field:
            body.update(symbol=symbol, pair=pair_of(symbol))
        body["bids"] = [[spec.price_str(p), spec.qty_str(q)] for p, q in snap.bids]
        body["asks"] = [[spec.price_str(p), spec.qty_str(q)] for p, q in snap.asks]
        return _encode(body)

    def _agg_trades(self, symbol: str, from_id: int | None, limit: int) -> bytes:
        model = self.market[symbol]
        if from_id is None:  # the most recent trades
            last = model.tape.last_id
            from_id = 0 if last is None else last - limit + 1
        spec = model.spec
        return _encode([_trade(t, spec) for t in model.tape_since(from_id, limit)])

    def _exchange_info(self) -> bytes:
        venue, now = self.venue, self.clock_ms()
        delisted = "SETTLING" if venue.pu else "BREAK"  # spot has no settlement
        listed = [(m, "TRADING") for m in self.market.symbols.values()]
        listed += [(m, delisted) for m in self.market.closed.values()]
        symbols = [self._listed(model.symbol, model.spec, status, now) for model, status in listed]
        return _encode({
            "timezone": "UTC",
            "serverTime": self.clock_ms(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": self.weight_limit}],
            "symbols": symbols,
        })

    def _listed(self, name: str, spec: SymbolSpec, status: str, now: int) -> dict[str, object]:
        """One ``symbols`` entry of exchangeInfo, in the venue's shape."""
        filters = [{"filterType": "PRICE_FILTER",
                    "tickSize": fixed(spec.tick_units, spec.price_decimals)},
                   {"filterType": "LOT_SIZE", "stepSize": fixed(spec.lot_units, spec.qty_decimals)}]
        if not self.venue.pu:  # spot
            return {"symbol": name, "status": status, "baseAsset": name.removesuffix("USDT"),
                    "quoteAsset": "USDT", "baseAssetPrecision": spec.qty_decimals,
                    "quotePrecision": spec.price_decimals, "filters": filters}
        delivery = self.market.delisted_ms.get(name, PERPETUAL_DELIVERY_MS)
        entry: dict[str, object] = {
            "symbol": name, "pair": name, "contractType": "PERPETUAL",
            "onboardDate": self.market.listed_ms.get(name, ONBOARD_MS), "deliveryDate": delivery,
            "pricePrecision": spec.price_decimals, "quantityPrecision": spec.qty_decimals,
            "filters": filters, self.venue.status_field: status}
        if self.venue.contracts:  # COIN-M: contract size, quarterlies that expire
            quarter = delivery_ms(name)
            if quarter != PERPETUAL_DELIVERY_MS:
                entry.update(contractType=quarter_type(name, now), deliveryDate=quarter)
                if now >= quarter and status == "TRADING":
                    entry[self.venue.status_field] = "DELIVERING"
            entry.update(pair=pair_of(name), contractSize=spec.contract_usd,
                         marginAsset=pair_of(name).removesuffix("USD"))
        return entry

    def _open_interest(self, symbol: str) -> bytes:
        """USD-M ``{"openInterest","symbol","time"}`` (base units); COIN-M adds ``pair`` and
        ``contractType`` and counts contracts."""
        assert self.derivs is not None
        spec = self.market[symbol].spec
        self.derivs.contract(spec)  # a symbol polled before its first step has one too
        lots = self.derivs.open_interest(symbol) or 0
        now = self.clock_ms()
        body: dict[str, object] = {"symbol": symbol, "openInterest": spec.qty_str(lots),
                                   "time": now}
        if self.venue.contracts:
            body.update(pair=pair_of(symbol), contractType=quarter_type(symbol, now))
        return _encode(body)

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
