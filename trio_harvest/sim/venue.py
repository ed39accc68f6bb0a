"""Which Binance venue the simulator speaks: one small profile per venue, read by the wire
encoder, the routes, the REST API, the listing and the server.

Owns the per-venue differences as data: URL paths (USD-M's ``/market`` and ``/public`` routes;
Spot and COIN-M serve everything on ``/stream`` and ``/ws``), depth cadences and their stream
suffixes, the fields each payload carries (``pu``, ``T``, ``nq``, ``M``, ``ps``, bookTicker times),
REST prefix, weights and limit, whether it is a futures venue (mark price, funding, open
interest, liquidations), the server's ping interval and pong deadline, the symbol
catalogue and listing names, and contract sizes (COIN-M counts contracts of 100 or 10 USD). The
Spot and COIN-M numbers come from their wire modules (``venues/*/wire.py``), so the simulator and
the harvester read one table. Pure data and small pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..venues.binance_coinm import wire as coinm
from ..venues.binance_common.facts import WireFacts
from ..venues.binance_spot import wire as spot
from ..venues.bybit import facts as bybit_facts
from ..venues.okx import wire as okx_wire
from .listing import CATALOGUE, NEW_LISTINGS
from .specs import SymbolSpec, spec_for

USDM = "binance-usdm"
SPOT = spot.NAME
COINM = coinm.NAME
OKX_SWAP = "okx-swap"
OKX_SPOT = "okx-spot"
BINANCE = "binance"  # a venue family: the wire, routes, control messages and REST it speaks
OKX = "okx"
BYBIT = "bybit"  # the family of the Bybit categories (``bybit_venue.py``)

_FUTURES_SUFFIXES = ((100, "@100ms"), (250, ""), (500, "@500ms"))  # 250 ms has no suffix


@dataclass(frozen=True, slots=True)
class VenueProfile:
    name: str
    routed: bool  # USD-M's /market (aggTrade) and /public (book) routes; else one unrouted URL
    rest_prefix: str  # /fapi/v1, /api/v3, /dapi/v1
    depth_weights: tuple[tuple[int, int], ...]  # (largest limit, weight); the limits allowed
    agg_trades_weight: int
    exchange_info_weight: int
    weight_limit: int  # REST weight per minute (``weight=N`` in the fault spec overrides it)
    ping_seconds: float | None  # the server pings every so often (None: never)
    pong_timeout_seconds: float  # ... and closes a connection that did not answer by then
    depth_suffixes: tuple[tuple[int, str], ...] = _FUTURES_SUFFIXES  # (cadence ms, suffix)
    pu: bool = True  # diff depth carries ``pu`` and ``T`` (spot: neither, ``U == prev u + 1``)
    ticker_times: bool = True  # bookTicker carries ``e``, ``E``, ``T`` (spot: none of them)
    trade_nq: bool = False  # aggTrade carries ``nq`` (USD-M since 2025)
    trade_m: bool = False  # aggTrade carries ``M`` (spot)
    pair_field: bool = False  # depth and bookTicker carry ``ps`` (COIN-M)
    contracts: bool = False  # sizes count contracts (COIN-M), exchangeInfo has contractSize
    status_field: str = "status"
    catalogue: tuple[str, ...] = CATALOGUE  # what ``--symbols all`` lists
    new_listings: tuple[str, ...] = NEW_LISTINGS  # the names ``listing=S`` lists, in order
    listing_suffix: str = "USDT"  # ... then NEW<n><suffix>
    ticker_weights: tuple[int, int] = (1, 40)  # ticker/24hr: one symbol, every symbol
    messages_per_second: int | None = None  # a client sending more is disconnected (None: any)
    exact_depth_limits: bool = True  # depth takes only the listed limits (spot: 1 up to the max)
    futures: bool = True  # mark price, funding, open interest, liquidations (not spot)
    family: str = BINANCE  # OKX: okx_wire.py, okx_*.py; Bybit: bybit_*.py (their own wire)
    inst_type: str = ""  # OKX's instType (SWAP sizes count contracts of one lot)
    # OKX closes a socket that had no subscription, or was pushed nothing, for this long
    idle_cut_seconds: float | None = None
    # (attempts, seconds): a handshake beyond this many in any such window is refused with
    # HTTP 429, as the venue refuses it (None: any number)
    connect_limit: tuple[int, float] | None = None

    @property
    def rest_root(self) -> str:
        """The first path segment of every REST path, with slashes (``/fapi/``)."""
        return "/" + self.rest_prefix.strip("/").split("/")[0] + "/"

    @property
    def depth_limits(self) -> tuple[int, ...]:
        return tuple(limit for limit, _ in self.depth_weights)

    def depth_limit_ok(self, limit: int) -> bool:
        if self.exact_depth_limits:
            return limit in self.depth_limits
        return 1 <= limit <= self.depth_limits[-1]

    def depth_weight(self, limit: int) -> int:
        for top, weight in self.depth_weights:
            if limit <= top:
                return weight
        return self.depth_weights[-1][1]

    def new_listing(self, n: int) -> str:
        return self.new_listings[n] if n < len(self.new_listings) else \
            f"NEW{n}{self.listing_suffix}"

    def spec(self, symbol: str) -> SymbolSpec:
        """The symbol's grids; COIN-M sizes are whole contracts of ``contract_size`` USD."""
        if self.family == OKX:  # BTC-USDT-SWAP and BTC-USDT price like BTCUSDT
            return replace(spec_for(symbol.removesuffix("-SWAP").replace("-", "")),
                           symbol=symbol)
        if not self.contracts:
            return spec_for(symbol)
        base = spec_for(coinm.pair_of(symbol) + "T")  # BTCUSD_PERP prices like BTCUSDT
        return replace(base, symbol=symbol, qty_decimals=0, lot_units=1,
                       contract_usd=contract_size(symbol))

    def example_path(self, stream: str) -> str:
        if self.family == BYBIT:
            return f"/v5/public/{self.name.removeprefix('bybit-')}"
        if self.family == OKX:
            return "/ws/v5/public"
        return f"/market/stream?streams={stream}" if self.routed else f"/stream?streams={stream}"


def contract_size(symbol: str) -> int:
    """COIN-M's contract size in USD: 100 for BTC, 10 for every other coin."""
    return 100 if coinm.pair_of(symbol) == "BTCUSD" else 10


def _from_facts(facts: WireFacts, **kw: object) -> VenueProfile:
    return VenueProfile(
        name=facts.name, routed=False, rest_prefix=facts.rest_prefix,
        depth_weights=facts.depth_weights, agg_trades_weight=facts.agg_trades_weight,
        exchange_info_weight=facts.exchange_info_weight, weight_limit=facts.weight_limit,
        ping_seconds=facts.server_ping_seconds, pong_timeout_seconds=facts.pong_timeout_seconds,
        messages_per_second=facts.messages_per_second, connect_limit=facts.connect_limit,
        **kw)  # type: ignore[arg-type]


_COINS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "BNB", "LTC")

PROFILES: dict[str, VenueProfile] = {
    USDM: VenueProfile(
        name=USDM, routed=True, rest_prefix="/fapi/v1",
        depth_weights=((5, 2), (10, 2), (20, 2), (50, 2), (100, 5), (500, 10), (1000, 20)),
        agg_trades_weight=20, exchange_info_weight=1, weight_limit=2400,
        ping_seconds=None, pong_timeout_seconds=600.0, trade_nq=True),
    SPOT: _from_facts(
        spot.FACTS, depth_suffixes=((100, "@100ms"),), pu=False, futures=False,
        ticker_times=False, trade_m=True, ticker_weights=(2, 80), exact_depth_limits=False),
    COINM: _from_facts(
        coinm.FACTS, pair_field=True, contracts=True, status_field="contractStatus",
        catalogue=tuple(f"{c}USD_PERP" for c in _COINS),
        new_listings=tuple(n.removesuffix("USDT") + "USD_PERP" for n in NEW_LISTINGS),
        listing_suffix="USD_PERP"),
    **{c.name: VenueProfile(
        name=c.name, routed=False, rest_prefix="/v5/market", depth_weights=((1000, 1),),
        agg_trades_weight=1, exchange_info_weight=1, weight_limit=bybit_facts.REST_LIMIT,
        ping_seconds=None, pong_timeout_seconds=bybit_facts.IDLE_CUT_SECONDS, pu=False,
        family=BYBIT, futures=c.category == "linear", connect_limit=bybit_facts.CONNECT_LIMIT)
       for c in bybit_facts.CATEGORIES.values()},
}
for _name, _type, _suffix in ((OKX_SWAP, "SWAP", "-USDT-SWAP"), (OKX_SPOT, "SPOT", "-USDT")):
    PROFILES[_name] = VenueProfile(
        name=_name, routed=False, rest_prefix="/api/v5", depth_weights=((400, 1),),
        agg_trades_weight=1, exchange_info_weight=1, weight_limit=600, ping_seconds=None,
        pong_timeout_seconds=30.0, family=OKX, inst_type=_type, futures=_type == "SWAP",
        idle_cut_seconds=30.0, connect_limit=okx_wire.CONNECT_LIMIT,
        catalogue=tuple(f"{c}{_suffix}" for c in _COINS),
        new_listings=tuple(n.removesuffix("USDT") + _suffix for n in NEW_LISTINGS),
        listing_suffix=_suffix)
VENUES = tuple(PROFILES)
USDM_PROFILE = PROFILES[USDM]  # today's behaviour, the default everywhere


def profile(name: str) -> VenueProfile:
    """The profile of ``name``; ``ValueError`` naming the venues there are."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown venue {name!r} (known: {', '.join(VENUES)})") from None


def default_symbols(name: str, now_ms: int) -> tuple[str, ...]:
    """What ``sim --venue NAME`` lists without ``--symbols``: BTC and ETH (on COIN-M the two
    perpetuals and BTC's current quarterly, named after ``now_ms``)."""
    if name == COINM:
        return ("BTCUSD_PERP", "ETHUSD_PERP", coinm.quarterly_symbol("BTCUSD", now_ms))
    if name in (OKX_SWAP, OKX_SPOT):
        return tuple(f"{c}{PROFILES[name].listing_suffix}" for c in ("BTC", "ETH"))
    return ("BTCUSDT", "ETHUSDT")
