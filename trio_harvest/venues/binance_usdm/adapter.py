"""Binance USD-M futures as a ``venues.base.Venue``: the one object the core asks.

Owns the venue's constants (URLs, limits, REST paths and weights, the weight header, keepalive,
stream cadences) and binds the wire modules (``decode``, ``streams``, ``listing``) to the
protocol. Pure: no trio, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ...kinds import Row
from ..base import (
    CONTIGUOUS,
    DEPTH,
    DERIVATIVES,
    LIQUIDATIONS,
    QUOTES,
    TRADES,
    BookLevels,
    Frame,
    Keepalive,
    Listed,
    Quote,
    RestRequest,
    Trade,
)
from ..binance_common.derivatives import BinanceDerivatives
from . import decode as wire
from . import diffbook
from . import listing as listing_
from . import streams as st

NAME = "binance-usdm"
WS_URL = "wss://fstream.binance.com"
REST_URL = "https://fapi.binance.com"
AGG_TRADES_PATH = "/fapi/v1/aggTrades"
AGG_TRADES_WEIGHT = 20
PAGE = 1000  # the largest ``limit`` of a trades request
DEPTH_PATH = "/fapi/v1/depth"
# the weight of a depth request by limit
DEPTH_WEIGHT: dict[int, int] = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
TICKER_PATH = "/fapi/v1/ticker/24hr"
TICKER_WEIGHT = 40
WEIGHT_HEADER = "x-mbx-used-weight-1m"
WEIGHT_LIMIT = 2400  # per minute, per IP
MAX_STREAMS = 1024  # per connection
# listed symbols are not all ASCII; none has a "-" (OKX's names do)
SYMBOL = re.compile(r"^[A-Z0-9_]{2,40}$|^[^\s@/-]{1,40}$")

# expected interval between frames of one stream, by stream kind (seconds): quotes and partial
# depth are continuous on any listed perpetual; trades follow activity (5-20/s on BTCUSDT in a
# quiet hour, far fewer on small symbols); markPrice@1s comes every second whatever the market
# does; liquidations come in bursts and may be silent for hours: never stale
CADENCE: dict[str, float] = {st.AGG_TRADE: 1.0, st.BOOK_TICKER: 0.25, st.DEPTH: 0.1,
                             st.MARK_PRICE: 1.0, st.FORCE_ORDER: 86_400.0}
_KINDS = {st.AGG_TRADE: TRADES, st.BOOK_TICKER: QUOTES, st.DEPTH: DEPTH,
          st.MARK_PRICE: DERIVATIVES, st.FORCE_ORDER: LIQUIDATIONS}


def depth_weight(limit: int) -> int:
    """The weight of a depth request of ``limit`` levels (the next documented limit up)."""
    for lim in sorted(DEPTH_WEIGHT):
        if limit <= lim:
            return DEPTH_WEIGHT[lim]
    return DEPTH_WEIGHT[1000]


class BinanceUsdm:
    """The adapter (one instance, ``VENUE``)."""

    name = NAME
    default_ws_url = WS_URL
    default_rest_url = REST_URL
    default_symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    listing_dates = True
    max_streams_per_connection = MAX_STREAMS
    messages_per_second = st.MESSAGES_PER_SECOND
    connect_limit: tuple[int, float] | None = None  # none documented for USD-M
    # the server pings every 3 minutes; the transport answers each ping with a pong
    keepalive = Keepalive(server_pings=True)
    subscribe_on_open = False  # the combined-stream URL carries the streams
    subscribe_batch = 0  # one request carries any number of names
    needs_listing = False  # sizes need no fact of the listing
    gate_id = "update_id"  # update ids only grow
    resync_by_resubscribe = False  # a broken book resyncs from a REST snapshot
    decode_envelope = staticmethod(wire.decode_envelope)
    bad_frame = wire.BadFrame
    quote_source = st.BOOK_TICKER
    trade_continuity = CONTIGUOUS
    weight_header = WEIGHT_HEADER
    weight_limit = WEIGHT_LIMIT
    trades_page = PAGE
    trades_weight = AGG_TRADES_WEIGHT
    trading = listing_.TRADING
    cadence: Mapping[str, float] = CADENCE
    depth_kind = st.DEPTH
    trade_kind = st.AGG_TRADE
    # mark price and liquidation streams, the open-interest poll (``venues.base.derivatives_of``)
    derivatives: BinanceDerivatives | None = BinanceDerivatives("/fapi/v1")

    # -- connection plan ---------------------------------------------------------------------

    def streams_for(self, symbols: tuple[str, ...], *, depth_levels: int, depth_speed: str,
                    book: str, book_ticker: bool) -> list[st.StreamSpec]:
        return st.streams_for(symbols, depth_levels=depth_levels, depth_speed=depth_speed,
                              book=book, book_ticker=book_ticker)

    def plan_connections(self, streams: list[st.StreamSpec],
                         per_connection: int) -> list[st.ConnectionPlan]:
        return st.plan_connections(streams, per_connection)

    def subscription(self, method: str, names: list[str], request_id: int) -> str:
        return st.subscription(method, names, request_id)

    def url_after(self, url: str, messages: list[str]) -> str:
        return st.url_after(url, messages)

    def open_url(self, url: str) -> str:
        return url

    def open_messages(self, url: str) -> list[str]:
        return []

    def trade_stream(self, symbol: str) -> str:
        return f"{symbol.lower()}@{st.AGG_TRADE}"

    def quote_stream(self, symbol: str) -> str:
        return f"{symbol.lower()}@{st.BOOK_TICKER}"

    def depth_stream(self, symbol: str, levels: int, speed: str, mode: str) -> str:
        return st.depth_stream_name(symbol, levels, speed, mode)

    def stream_kind(self, name: str) -> str:
        """TRADES, QUOTES, DEPTH, DERIVATIVES or LIQUIDATIONS for a stream name (or a stream
        kind), "" for none of them."""
        tail = name.split("@", 2)[1] if "@" in name else name
        return _KINDS.get(st.DEPTH if tail.startswith(st.DEPTH) else tail, "")

    def is_quote_stream(self, name: str) -> bool:
        return name.endswith("@" + st.BOOK_TICKER)

    def stream_symbol(self, name: str) -> str:
        """The symbol a stream name carries (upper case, as in payloads); "" for a name that is
        not a stream's."""
        symbol, at, _ = name.partition("@")
        return symbol.upper() if at else ""

    def stream_prefix(self, symbol: str) -> str:
        """What every stream name of ``symbol`` starts with."""
        return symbol.lower() + "@"

    def stream_symbols(self, url: str) -> list[str]:
        """The symbols of a combined-stream URL's streams, in order, once each."""
        names = url.partition("streams=")[2]
        out = [name.split("@", 1)[0].upper() for name in names.split("/") if name]
        return list(dict.fromkeys(out))

    # -- decoding ----------------------------------------------------------------------------

    def decode(self, frame: str | bytes) -> Frame:
        return wire.decode_frame(frame)

    def reply_to(self, frame: str | bytes) -> tuple[int, str] | None:
        return st.reply_to(frame)

    def trade_row(self, t: Trade, recv_ms: int) -> Row:
        return wire.trade_row(t, recv_ms)

    def quote_row(self, q: Quote, recv_ms: int, levels: int) -> Row:
        return wire.ticker_row(q, recv_ms, levels)

    def levels_row(self, d: BookLevels, recv_ms: int, levels: int, source: str) -> Row:
        return wire.depth_row(d, recv_ms, levels, source)

    # -- sequencing and continuity -------------------------------------------------------------

    def parse_snapshot(self, body: Mapping[str, Any], symbol: str = "") -> diffbook.Snapshot:
        return diffbook.parse_snapshot(body)

    def bridges(self, last_update_id: int, d: BookLevels) -> bool:
        """The first event to apply on a snapshot: ``U <= lastUpdateId <= u`` (or its ``pu`` is
        the snapshot's id: taken exactly at an event boundary)."""
        return diffbook.bridges(last_update_id, d)

    max_book_levels = diffbook.MAX_LEVELS

    def local_book(self, symbol: str, max_levels: int, buffer_limit: int) -> diffbook.LocalBook:
        """A book kept from diff events by the ``pu`` chain (``diffbook.py``)."""
        return diffbook.LocalBook(symbol, max_levels=max_levels, buffer_limit=buffer_limit)

    def follows(self, prev_update_id: int, d: BookLevels) -> bool:
        """A diff event continues the book: its ``pu`` is the previous event's ``u``."""
        return diffbook.follows(prev_update_id, d)

    # -- backfill and limits -------------------------------------------------------------------

    def trades_request(self, symbol: str, from_id: int, limit: int) -> RestRequest:
        """Trades from id ``from_id`` on (at most ``trades_page``)."""
        return RestRequest(AGG_TRADES_PATH, {"symbol": symbol, "fromId": from_id,
                                             "limit": min(limit, PAGE)}, AGG_TRADES_WEIGHT)

    def decode_trades(self, body: bytes) -> Sequence[wire.TradeFields]:
        return wire.decode_trades(body)

    def rest_trade_row(self, symbol: str, t: Any, recv_ms: int) -> Row:
        return wire.rest_trade_row(symbol, t, recv_ms)

    def depth_request(self, symbol: str, limit: int) -> RestRequest:
        return RestRequest(DEPTH_PATH, {"symbol": symbol, "limit": limit}, depth_weight(limit))

    def ticker_request(self) -> RestRequest:
        """Every symbol's 24 h ticker (its trade ``count`` weighs a symbol for sharding)."""
        return RestRequest(TICKER_PATH, {}, TICKER_WEIGHT)

    def trade_counts(self, body: bytes | str) -> dict[str, int]:
        """``symbol -> trades in 24 h`` of a ticker answer; ``ValueError`` on anything else."""
        doc = json.loads(body)
        if isinstance(doc, dict):
            doc = [doc]
        if not isinstance(doc, list):
            raise ValueError("ticker/24hr: expected a list of objects")
        out: dict[str, int] = {}
        for row in doc:
            if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
                raise ValueError("ticker/24hr: an entry without a symbol")
            out[row["symbol"]] = int(row.get("count") or 0)
        return out

    # -- listing -------------------------------------------------------------------------------

    def listing_request(self) -> RestRequest:
        return RestRequest(listing_.PATH, {}, listing_.WEIGHT)

    def listing(self, doc: Mapping[str, Any]) -> dict[str, Listed]:
        return listing_.listing(doc)

    def valid_symbol(self, symbol: str) -> bool:
        return bool(SYMBOL.match(symbol))


VENUE = BinanceUsdm()
