"""The wire facts of one Binance venue as data, and the connection plan built from them.

Owns ``WireFacts`` (hosts, websocket paths, streams per connection, client message rate,
keepalive, REST paths, weights and limits, the used-weight header) and what follows from those
facts alone: stream names, combined-stream URLs, packing streams into connections, the
``SUBSCRIBE``/``UNSUBSCRIBE`` requests and their replies, depth request weights and reading the
used-weight header. One instance per venue lives in that venue's ``wire.py``; the simulator reads
the same instances. Pure: builds names, URLs and messages, never connects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

# the control requests and their replies are the same on every Binance venue
from ..binance_usdm.streams import reply_to, subscription

__all__ = ["AGG_TRADE", "BOOK_TICKER", "DEPTH", "USED_WEIGHT_HEADER", "WireFacts", "reply_to",
           "stream_name", "stream_symbol", "subscription", "used_weight"]

AGG_TRADE = "aggTrade"
BOOK_TICKER = "bookTicker"
DEPTH = "depth"

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"  # every Binance REST answer carries it


@dataclass(frozen=True, slots=True)
class WireFacts:
    """Everything about a venue's wire that is a constant (reference/venues.md)."""

    name: str  # the venue's name in the harvester (``binance-spot``)
    ws_url: str  # websocket host, no path
    rest_url: str  # REST host, no path
    rest_prefix: str  # ``/api/v3`` or ``/dapi/v1``: every market-data path starts with it
    streams_per_connection: int
    messages_per_second: int  # client messages (control JSON, pings, pongs) per connection
    server_ping_seconds: float  # the server sends a protocol ping this often ...
    pong_timeout_seconds: float  # ... and closes the connection without a pong by then
    lifetime_seconds: float  # the server closes every connection after this long
    weight_limit: int  # REQUEST_WEIGHT per minute per IP
    agg_trades_weight: int
    agg_trades_page: int  # the largest ``limit`` of one aggTrades request
    exchange_info_weight: int
    depth_weights: tuple[tuple[int, int], ...]  # (largest limit, weight), ascending
    snapshot_limit: int  # the depth limit to resync a diff book with
    combined_path: str = "/stream"  # ``/stream?streams=a/b`` (wrapped frames)
    raw_path: str = "/ws"  # ``/ws/<stream>`` (bare payloads)
    history_days: int | None = None  # how far back aggTrades reaches (None: not documented)
    # (attempts, seconds): new connections per IP in any such window (None: not documented)
    connect_limit: tuple[int, float] | None = None

    @property
    def depth_path(self) -> str:
        return f"{self.rest_prefix}/depth"

    @property
    def agg_trades_path(self) -> str:
        return f"{self.rest_prefix}/aggTrades"

    @property
    def exchange_info_path(self) -> str:
        return f"{self.rest_prefix}/exchangeInfo"

    @property
    def depth_limits(self) -> tuple[int, ...]:
        return tuple(limit for limit, _ in self.depth_weights)

    def depth_weight(self, limit: int) -> int:
        """The weight of a depth request of ``limit`` levels (the next documented limit up)."""
        for top, weight in self.depth_weights:
            if limit <= top:
                return weight
        return self.depth_weights[-1][1]

    def combined_url(self, names: Sequence[str], base: str | None = None) -> str:
        """``wss://host/stream?streams=a/b``; names percent-encoded (not all are ASCII)."""
        joined = "/".join(quote(n, safe="@") for n in names)
        return f"{(base or self.ws_url).rstrip('/')}{self.combined_path}?streams={joined}"

    def raw_url(self, name: str, base: str | None = None) -> str:
        return f"{(base or self.ws_url).rstrip('/')}{self.raw_path}/{quote(name, safe='@')}"

    def plan(self, names: Sequence[str]) -> list[tuple[str, ...]]:
        """Stream names packed into connections of at most ``streams_per_connection``, in order
        (a symbol's streams stay adjacent). These venues have no route split."""
        n = self.streams_per_connection
        return [tuple(names[i : i + n]) for i in range(0, len(names), n)]

    def control_interval(self) -> float:
        """Seconds to leave between two client messages on one connection (with a margin: one
        per 250 ms drew "Too many requests" on spot, where 5/s is the documented limit)."""
        return 2.0 / self.messages_per_second


def stream_name(symbol: str, kind: str, *, levels: int = 0, speed: str = "100ms") -> str:
    """``btcusdt@aggTrade``, ``btcusdt@bookTicker``, ``btcusdt@depth@100ms`` (diff, ``levels``
    0) or ``btcusdt@depth20@100ms`` (partial); a speed of ``""`` is the stream's default
    cadence (no suffix). Stream names are lower case on every Binance venue."""
    low = symbol.lower()
    if kind != DEPTH:
        return f"{low}@{kind}"
    base = f"{low}@depth{levels or ''}"
    return f"{base}@{speed}" if speed else base


def stream_symbol(name: str) -> str:
    """The payload symbol of a stream name (``btcusd_perp@aggTrade`` -> ``BTCUSD_PERP``)."""
    return name.partition("@")[0].upper()


def used_weight(headers: Mapping[str, str]) -> int | None:
    """The weight the server says this IP used in the current minute, or None without one."""
    for key, value in headers.items():
        if key.lower() == USED_WEIGHT_HEADER.lower():
            try:
                return int(value)
            except ValueError:
                return None
    return None
