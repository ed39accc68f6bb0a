"""Bybit v5 ``linear`` and ``spot`` as ``venues.base.Venue`` adapters: ``LINEAR`` and ``SPOT``.

Binds the wire modules to the protocol for one category each: topics as streams
(``publicTrade.S``, ``orderbook.N.S``, ``orderbook.1.S`` for quotes), the plan (one URL per
category, ``/v5/public/linear|spot``; the topics are subscribed by message after connecting,
at most 10 per request on spot), the client ping every 20 s, decode, the ``u`` book, the trade
rule (none: ids are deduplicated, never chained), recent-trade backfill and its ``unfillable``
decision, the paged listing. Both categories list ``BTCUSDT``: the venue name (``bybit-linear``,
``bybit-spot``) keeps them apart everywhere (data directory, journal, registry). Linear adds the
derivatives side (``derivatives.py``: ``tickers.S`` merged, ``allLiquidation.S``). Registered in
``venues/__init__.py``. Pure: no trio, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from ...kinds import Row
from .. import rows
from ..base import (
    DEPTH,
    DERIVATIVES,
    LIQUIDATIONS,
    NO_CONTINUITY,
    QUOTES,
    TRADES,
    BookLevels,
    Keepalive,
    Listed,
    Quote,
    RestRequest,
    Trade,
)
from ..rows import book_row
from . import backfill, book, control, facts, listing, resubscribe, trades, wire
from .derivatives import BybitDerivatives, TickerMerge
from .facts import BOOK_TOPIC, LIQUIDATION_TOPIC, TICKERS_TOPIC, TRADE_TOPIC, Category

QUOTE_KIND = f"{BOOK_TOPIC}.1"  # the stream kind of ``orderbook.1.S`` (quotes)
DEPTH_KIND = BOOK_TOPIC
TRADE_KIND = TRADE_TOPIC
WEIGHT_HEADER = ""  # none: X-Bapi-Limit-* report per-UID limits only, never the IP budget
MAX_TOPICS = 500  # per connection: 500 of the longest names stay under 21,000 characters
# tickers change at most every 100 ms, nearly always within a second (the mark price moves);
# liquidations come in bursts and may be silent for hours: never stale
CADENCE: dict[str, float] = {TRADE_KIND: 1.0, QUOTE_KIND: 0.01, DEPTH_KIND: 0.02,
                             TICKERS_TOPIC: 1.0, LIQUIDATION_TOPIC: 86_400.0}
_KINDS = {TRADE_KIND: TRADES, QUOTE_KIND: QUOTES, DEPTH_KIND: DEPTH, TICKERS_TOPIC: DERIVATIVES,
          LIQUIDATION_TOPIC: LIQUIDATIONS}


@dataclass(frozen=True, slots=True)
class Topic:
    """One subscribed topic: the symbol, its stream kind and its wire name."""

    symbol: str
    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The topics of one connection. Every connection of a category opens the same socket
    (``/v5/public/linear|spot``) and subscribes its topics by message; the plan's URL names
    them after ``#`` (never sent: ``Venue.open_url`` strips it, ``open_messages`` reads it)."""

    path: str
    streams: tuple[Topic, ...]

    @property
    def route(self) -> str:
        return ""

    @property
    def label(self) -> str:
        first = self.streams[0].name if self.streams else "-"
        return f"{self.path.rsplit('/', 1)[-1]}[{len(self.streams)}:{first}…]"

    def url(self, base: str) -> str:
        return with_topics(base.rstrip("/") + self.path, [s.name for s in self.streams])

    def with_streams(self, add: tuple[Topic, ...] = (),
                     remove: frozenset[str] = frozenset()) -> Plan:
        kept = tuple(s for s in self.streams if s.name not in remove)
        return replace(self, streams=kept + tuple(s for s in add if s not in kept))


def with_topics(url: str, topics: Sequence[str]) -> str:
    """``url`` (without its fragment) naming ``topics`` after ``#``."""
    return url.partition("#")[0] + "#" + ",".join(topics)


def topics_of(url: str) -> list[str]:
    """The topics a plan's URL names (after ``#``)."""
    return [t for t in url.partition("#")[2].split(",") if t]


def book_depth(levels: int) -> int:
    """The smallest served book depth above 1 with at least ``levels`` levels (1000 at most)."""
    for depth, _ in facts.DEPTHS:
        if depth > 1 and depth >= levels:
            return depth
    return facts.DEPTHS[-1][0]


class Bybit:
    """One category's adapter."""

    default_ws_url = facts.WS_URL
    default_rest_url = facts.REST_URL
    default_symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    max_streams_per_connection = MAX_TOPICS
    keepalive = Keepalive(server_pings=False, ping_text=control.PING, interval=facts.PING_SECONDS)
    quote_source = QUOTE_KIND
    trade_continuity = NO_CONTINUITY
    weight_header = WEIGHT_HEADER
    # 600 requests per 5 s per IP: the per-minute budget, every request weighing 1
    weight_limit = int(facts.REST_LIMIT * 60 / facts.REST_WINDOW)
    trades_weight = 1
    trading = facts.TRADING
    cadence: Mapping[str, float] = CADENCE
    depth_kind = DEPTH_KIND
    trade_kind = TRADE_KIND
    max_book_levels = facts.DEPTHS[-1][0]
    bad_frame = wire.BadFrame
    # what the core needs beyond Binance's shape: topics are subscribed after connecting, the
    # book's snapshot comes on the socket, and a broken book is resubscribed, not fetched
    subscribe_on_open = True
    resync_by_resubscribe = True
    book_rule = book.RULE
    book_modes = ("diff",)  # every book topic is a snapshot then deltas: none is a partial
    needs_listing = False  # sizes are base coin: nothing of the listing is needed to decode
    # quotes are deduplicated by the cross sequence ``seq``: ``u`` restarts at 1 when Bybit's
    # service restarts, ``seq`` only grows
    gate_id = "seq"

    def __init__(self, cat: Category) -> None:
        self.category = cat
        self.name = cat.name
        self.messages_per_second = cat.messages_per_second
        self.connect_limit: tuple[int, float] | None = facts.CONNECT_LIMIT
        self.trades_page = cat.recent_trades
        self.listing_dates = cat.listing_dates
        self.numeric_ids = cat.category == "spot"
        # the most topics one subscribe request may carry (0: no cap, linear)
        self.subscribe_batch = cat.args_per_request if cat.args_per_request < 1000 else 0
        # linear only: tickers and allLiquidation (``venues.base.derivatives_of``); the merged
        # tickers state of every symbol lives here, one per process (a symbol's topic is on
        # one connection; each subscribe starts it again with a snapshot)
        self.derivatives = (BybitDerivatives(cat, Topic) if cat.category == "linear" else None)
        self.tickers = TickerMerge() if self.derivatives is not None else None
        self._decode_envelope = partial(wire.decode_envelope, numeric_ids=self.numeric_ids,
                                        tickers=self.tickers)

    @property
    def decode_envelope(self) -> Callable[[str | bytes], wire.Frame]:
        return self._decode_envelope

    # -- connection plan ---------------------------------------------------------------------

    def streams_for(self, symbols: tuple[str, ...], *, depth_levels: int, depth_speed: str,
                    book: str, book_ticker: bool) -> list[Topic]:
        """Per symbol: its trades, its book (``orderbook.N``, N the served depth that holds
        ``depth_levels``; snapshot + deltas whatever ``book`` says) and, with ``book_ticker``,
        ``orderbook.1`` as its quotes."""
        depth = book_depth(depth_levels)
        out: list[Topic] = []
        for sym in symbols:
            out.append(Topic(sym, TRADE_KIND, facts.trade_topic(sym)))
            out.append(Topic(sym, DEPTH_KIND, facts.book_topic(sym, depth)))
            if book_ticker:
                out.append(Topic(sym, QUOTE_KIND, facts.book_topic(sym, 1)))
        return out

    def plan_connections(self, streams: list[Topic], per_connection: int) -> list[Plan]:
        n = max(1, min(per_connection, self.max_streams_per_connection))
        return [Plan(self.category.ws_path, tuple(streams[i : i + n]))
                for i in range(0, len(streams), n)]

    def subscription(self, method: str, names: list[str], request_id: int) -> str:
        """One request; ``ValueError`` beyond the category's args per request (use
        ``subscriptions`` to batch)."""
        if len(names) > self.category.args_per_request:
            raise ValueError(f"{self.name}: {len(names)} topics in one request "
                             f"(at most {self.category.args_per_request})")
        return control.request(method, names, request_id)

    def subscriptions(self, method: str, names: list[str], first_id: int) -> list[str]:
        """Every request ``names`` needs (at most 10 topics each on spot)."""
        return control.requests(self.category, method, names, first_id)

    def open_url(self, url: str) -> str:
        """What the socket opens: the category's path, without the plan's topics."""
        return url.partition("#")[0]

    def open_messages(self, url: str) -> list[str]:
        """What a new socket sends first: the subscribe requests of the topics ``url`` names."""
        return self.subscriptions(control.SUBSCRIBE, topics_of(url), 1)

    def url_after(self, url: str, messages: list[str]) -> str:
        """The URL that names what ``url`` followed by the ``messages`` we sent carries."""
        topics = topics_of(url)
        for message in messages:
            op, args = control.topics_of(message)
            if op == control.SUBSCRIBE:
                topics += [a for a in args if a not in topics]
            elif op == control.UNSUBSCRIBE:
                topics = [t for t in topics if t not in args]
        return with_topics(url, topics)

    def trade_stream(self, symbol: str) -> str:
        return facts.trade_topic(symbol)

    def quote_stream(self, symbol: str) -> str:
        return facts.book_topic(symbol, 1)

    def depth_stream(self, symbol: str, levels: int, speed: str, mode: str) -> str:
        return facts.book_topic(symbol, book_depth(levels))

    def stream_kind(self, name: str) -> str:
        """TRADES, QUOTES, DEPTH, DERIVATIVES or LIQUIDATIONS for a topic (or a stream kind),
        "" for none of them."""
        head = name.partition(".")[0]
        if name in _KINDS:
            kind = name
        elif head in (TRADE_KIND, TICKERS_TOPIC, LIQUIDATION_TOPIC) and "." in name:
            kind = head
        elif facts.topic_depth(name) == 1:
            kind = QUOTE_KIND
        elif facts.topic_depth(name):
            kind = DEPTH_KIND
        else:
            return ""
        return _KINDS[kind]

    def is_quote_stream(self, name: str) -> bool:
        return facts.topic_depth(name) == 1

    def stream_symbol(self, name: str) -> str:
        return facts.topic_symbol(name)

    def stream_prefix(self, symbol: str) -> str:
        return ""  # topics end with the symbol; none starts with it

    def stream_symbols(self, url: str) -> list[str]:
        """The symbols of the topics a plan's URL names, in order, once each."""
        return list(dict.fromkeys(facts.topic_symbol(t) for t in topics_of(url)))

    # -- decoding ----------------------------------------------------------------------------

    def decode(self, frame: str | bytes) -> wire.Frame:
        return wire.decode_frame(frame, self.numeric_ids, self.tickers)

    def reply_to(self, frame: str | bytes) -> tuple[int, str] | None:
        return control.reply_to(frame)

    def trade_row(self, t: Trade, recv_ms: int) -> Row:
        return rows.trade_row(t, recv_ms)

    def quote_row(self, q: Quote, recv_ms: int, levels: int) -> Row:
        ts = q.trade_ms or q.event_ms or recv_ms
        head = (ts, q.event_ms or ts, recv_ms, q.symbol, QUOTE_KIND, q.update_id, q.update_id,
                -1, q.bid, q.bid_qty, q.ask, q.ask_qty)
        return head + (None,) * (4 * (levels - 1))

    def levels_row(self, d: BookLevels, recv_ms: int, levels: int, source: str) -> Row:
        ts = d.trade_ms or d.event_ms or recv_ms
        return book_row(d.symbol, ts, d.event_ms or ts, recv_ms, source, d.update_id,
                        d.first_update_id, d.prev_update_id, d.bids[:levels], d.asks[:levels],
                        levels)

    # -- sequencing and continuity -------------------------------------------------------------

    def parse_snapshot(self, body: Mapping[str, Any], symbol: str = "") -> book.Snapshot:
        return book.parse_snapshot(body)

    def bridges(self, last_update_id: int, d: BookLevels) -> bool:
        return book.bridges(last_update_id, d)

    def follows(self, prev_update_id: int, d: BookLevels) -> bool:
        return book.follows(prev_update_id, d)

    def local_book(self, symbol: str, max_levels: int, buffer_limit: int) -> book.LocalBook:
        return book.LocalBook(symbol, max_levels=max_levels, buffer_limit=buffer_limit)

    def resubscriber(self, **kw: Any) -> resubscribe.Resubscriber:
        """A pure pacer of broken topics' resubscriptions (batched, per-topic cooldown); the
        core resubscribes through book sync's own pacer (``resync_by_resubscribe``)."""
        return resubscribe.Resubscriber(self.category, **kw)

    def recent_ids(self) -> trades.RecentIds:
        """One symbol's trade id window (deduplication: ids prove no continuity)."""
        return trades.RecentIds()

    # -- backfill and limits -------------------------------------------------------------------

    def trades_request(self, symbol: str, from_id: int, limit: int) -> RestRequest:
        """The last ``trades_page`` trades: recent-trade takes no id to page from."""
        return backfill.recent_trades_request(self.category, symbol)

    def decode_trades(self, body: bytes) -> Sequence[wire.RestTrade]:
        return wire.decode_recent_trades(body)

    def rest_trade_row(self, symbol: str, t: Any, recv_ms: int) -> Row:
        if self.numeric_ids:
            agg, text = int(t.trade_id), None
        else:  # the UUID itself, beside its key
            agg, text = wire.uuid_key(t.trade_id), t.trade_id
        return (t.trade_ms, t.trade_ms, recv_ms, symbol, agg, t.price, t.qty, agg, agg,
                t.buyer_maker, text)

    def fill(self, answer: Sequence[wire.RestTrade], *, last_id: str | None, start_ms: int,
             end_ms: int) -> backfill.Fill:
        """What a recent-trade answer does for a hole (``backfill.fill``)."""
        return backfill.fill(self.category, answer, last_id=last_id, start_ms=start_ms,
                             end_ms=end_ms)

    def depth_request(self, symbol: str, limit: int) -> RestRequest:
        return RestRequest(facts.ORDERBOOK_PATH, {"category": self.category.category,
                                                  "symbol": symbol,
                                                  "limit": min(limit, self.max_book_levels)}, 1)

    def ticker_request(self) -> RestRequest:
        return RestRequest(facts.TICKERS_PATH, {"category": self.category.category}, 1)

    def trade_counts(self, body: bytes | str) -> dict[str, int]:
        """``symbol -> weight`` from tickers: Bybit's tickers carry no trade count, so the 24 h
        turnover (quote currency) stands in as a symbol's weight. ``ValueError`` otherwise."""
        doc = json.loads(body)
        rows = doc.get("result", {}).get("list") if isinstance(doc, dict) else None
        if not isinstance(rows, list):
            raise ValueError("tickers: expected result.list")
        out: dict[str, int] = {}
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
                raise ValueError("tickers: an entry without a symbol")
            out[row["symbol"]] = int(float(row.get("turnover24h") or 0))
        return out

    # -- listing -------------------------------------------------------------------------------

    def listing_request(self) -> RestRequest:
        return listing.request(self.category)

    def next_listing_request(self, doc: Mapping[str, Any]) -> RestRequest | None:
        """The page after ``doc`` (linear pages its > 500 symbols), None after the last."""
        return listing.next_request(self.category, doc)

    def listing(self, doc: Mapping[str, Any]) -> dict[str, Listed]:
        """``symbol -> Listed`` of one instruments-info page."""
        return listing.page(doc)[0]

    def valid_symbol(self, symbol: str) -> bool:
        return listing.is_symbol(symbol)


LINEAR = Bybit(facts.LINEAR)
SPOT = Bybit(facts.SPOT)
