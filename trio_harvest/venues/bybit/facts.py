"""The constants of Bybit v5 public market data, one ``Category`` per harvested category.

Owns hosts, websocket paths, topic names, the limits of subscribe requests (10 args per request
on spot, 21,000 characters of args per connection), the client ping (``{"op":"ping"}`` every
20 s), book depths and their cadences, REST paths, the recent-trade window (1000 linear, 60
spot), the IP budget (600 requests per 5 s) and the instruments-info page size. The simulator
reads the same instances. Pure data: never connects, never decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

WS_URL = "wss://stream.bybit.com"
REST_URL = "https://api.bybit.com"
CONNECT_LIMIT = (500, 300.0)  # new connections per 5 minutes per WS domain

TRADE_TOPIC = "publicTrade"
BOOK_TOPIC = "orderbook"
TICKERS_TOPIC = "tickers"  # linear: mark/index price, funding, open interest (snapshot + deltas)
LIQUIDATION_TOPIC = "allLiquidation"  # linear: every liquidation, pushed every 500 ms

RECENT_TRADE_PATH = "/v5/market/recent-trade"
ORDERBOOK_PATH = "/v5/market/orderbook"
INSTRUMENTS_PATH = "/v5/market/instruments-info"
TICKERS_PATH = "/v5/market/tickers"
OPEN_INTEREST_PATH = "/v5/market/open-interest"

REST_LIMIT = 600  # requests per IP per REST_WINDOW seconds, every path of api.bybit.com
REST_WINDOW = 5.0
ARGS_CHARS = 21_000  # the args of one public connection, in characters
PING_SECONDS = 20.0  # the client pings this often; the server cuts after ~10 min of silence
IDLE_CUT_SECONDS = 600.0
CONNECTS_PER_5_MIN = 500  # new connections per websocket domain
# book depths served on linear and spot, with their push interval in ms (500 was removed)
DEPTHS: tuple[tuple[int, int], ...] = ((1, 10), (50, 20), (200, 100), (1000, 200))
TRADING = "Trading"  # instruments-info status of a symbol that trades


@dataclass(frozen=True, slots=True)
class Category:
    """One Bybit category as a harvested venue."""

    name: str  # the venue's name in the harvester
    category: str  # Bybit's ``category`` (REST) and websocket path tail
    args_per_request: int  # the most args one subscribe request may carry
    recent_trades: int  # what recent-trade returns at most: older trades cannot be fetched
    instruments_page: int  # instruments-info page size to ask for (paged with a cursor)
    listing_dates: bool  # instruments-info gives launchTime / deliveryTime
    # client messages per second per connection: Bybit documents no number for public
    # connections; this pace keeps a resubscribe burst far from any plausible one
    messages_per_second: int = 5

    @property
    def ws_path(self) -> str:
        return f"/v5/public/{self.category}"

    def ws_url(self, base: str = WS_URL) -> str:
        return base.rstrip("/") + self.ws_path


LINEAR = Category(name="bybit-linear", category="linear", args_per_request=10_000,
                  recent_trades=1000, instruments_page=1000, listing_dates=True)
SPOT = Category(name="bybit-spot", category="spot", args_per_request=10,
                recent_trades=60, instruments_page=1000, listing_dates=False)
CATEGORIES = {c.name: c for c in (LINEAR, SPOT)}


def depth_interval_ms(depth: int) -> int:
    """The push interval of ``orderbook.{depth}`` (``ValueError`` for a depth not served)."""
    for levels, ms in DEPTHS:
        if levels == depth:
            return ms
    raise ValueError(f"orderbook depth {depth} is not served (served: "
                     f"{', '.join(str(d) for d, _ in DEPTHS)})")


def trade_topic(symbol: str) -> str:
    return f"{TRADE_TOPIC}.{symbol}"


def book_topic(symbol: str, depth: int) -> str:
    return f"{BOOK_TOPIC}.{depth}.{symbol}"


def topic_symbol(topic: str) -> str:
    """``orderbook.50.BTCUSDT`` -> ``BTCUSDT``; "" for a name that is no topic of ours."""
    head, dot, symbol = topic.rpartition(".")
    if not dot or not (head in (TRADE_TOPIC, TICKERS_TOPIC, LIQUIDATION_TOPIC)
                       or head.startswith(BOOK_TOPIC + ".")):
        return ""
    return symbol


def topic_depth(topic: str) -> int:
    """The depth of a book topic, 0 for any other topic."""
    parts = topic.split(".")
    if len(parts) == 3 and parts[0] == BOOK_TOPIC and parts[1].isdigit():
        return int(parts[1])
    return 0
