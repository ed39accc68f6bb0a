"""OKX v5 as ``venues.base.Venue``: ``okx-swap`` (instType SWAP) and ``okx-spot`` (SPOT).

Binds the wire (``wire.py``), the book rule (``book.py``) and REST (``rest.py``) to the
protocol. What the core sees:

- connection: ``wss://ws.okx.com:8443/ws/v5/public``; the plan's URL names its streams after
  ``#`` (never sent: the socket opens the bare path) and the connection subscribes them on open
  (``subscribe_on_open``) in requests of at most ``SUBSCRIBE_BATCH`` args; the client sends the
  text ``ping`` every ``PING_SECONDS`` (OKX drops a connection silent for 30 s), the server
  answers ``pong``;
- trades: ``trades`` (aggregated), rule ``SPANS``: ``tradeId - count == previous tradeId``;
  backfill through ``history-trades`` paging down by trade id;
- books: ``books`` (``--book diff``: socket snapshot, then the ``seqId`` chain, REST
  ``/api/v5/market/books`` after a break) or ``books5`` (``--book partial``); quotes
  ``bbo-tbt``;
- derivatives (``okx-swap`` only, ``derivs.py``): ``mark-price``, ``index-tickers``,
  ``funding-rate``, ``open-interest`` and the instType channel ``liquidation-orders``, whose
  streams of every symbol go on the first connection (one subscription there, for every
  instId of OKX: the router drops the liquidations of symbols it does not harvest), and a
  symbol added while running joins them there (``pinned``), so that connection's drop, and
  no other's, interrupts its liquidations;
- SWAP sizes count contracts: every size is multiplied by the instrument's ``ctVal``, which the
  listing (``listing``) records; an instrument the listing has not given one stays in
  contracts. Spot sizes are base currency.

Pure: no trio, no I/O (the contract values are a table the listing fills).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, unquote

import msgspec

from ...kinds import Row
from .. import rows
from ..base import (
    DEPTH,
    QUOTES,
    SPANS,
    TRADES,
    BookLevels,
    Keepalive,
    Listed,
    Quote,
    RestRequest,
    Trade,
)
from ..binance_usdm import streams as st  # the generic stream and plan types
from ..rows import book_row
from . import book as book_
from . import derivs, rest, wire

WS_URL = "wss://ws.okx.com:8443"
PUBLIC_PATH = "/ws/v5/public"
ROUTE = "public"
REST_URL = "https://www.okx.com"
PING_SECONDS = 25.0  # OKX drops a connection after 30 s without a message
SUBSCRIBE_BATCH = 50  # args per subscribe request (the args' total length is capped)
MAX_STREAMS = 90  # per connection: OKX advises ~30 busy book channels a connection
# REST limits are per 2 s; the core counts weight per minute, so each request is given a weight
# that keeps its endpoint under its limit: history-trades (20 per 2 s) weighs 2 of a budget of
# 1,200 a minute (600 requests); a books snapshot (40 per 2 s) weighs 4, so the snapshot pacer
# (a burst of 100 weight, then 900 a minute) asks at most ~33 in any 2 s
HISTORY_WEIGHT = 2
WEIGHT_PER_MINUTE = 1200
BOOKS_WEIGHT = 4
_KINDS = {wire.TRADES: TRADES, wire.BBO: QUOTES, wire.TICKERS: QUOTES, wire.BOOKS: DEPTH,
          wire.BOOKS5: DEPTH, **{ch: derivs.kind_of(ch) for ch in derivs.CHANNELS}}
CADENCE: dict[str, float] = {wire.TRADES: 1.0, wire.BBO: 0.01, wire.BOOKS: 0.1,
                             wire.BOOKS5: 0.1, **derivs.CADENCE}


# -- the plan ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Stream(st.StreamSpec):
    """One subscription: the instId, its channel (the stream kind) and ``<channel>:<instId>``."""

    @property
    def route(self) -> str:
        return ROUTE


@dataclass(frozen=True, slots=True)
class Plan(st.ConnectionPlan):
    """One connection's streams; its URL names them after ``#`` (subscribed on open)."""

    def url(self, base: str) -> str:
        return _url(base.rstrip("/") + PUBLIC_PATH, [s.name for s in self.streams])


def _url(base: str, names: list[str]) -> str:
    """``wss://…/ws/v5/public#trades:BTC-USDT/books:BTC-USDT``: the fragment names the streams
    (a URL's fragment is never sent to the server)."""
    return f"{base}#" + "/".join(quote(n, safe=":") for n in names)


def _url_names(url: str) -> list[str]:
    fragment = url.partition("#")[2]
    return [unquote(n) for n in fragment.split("/") if n]



class Okx:
    """What ``okx-swap`` and ``okx-spot`` share; each sets its instType and symbol syntax."""

    inst_type: ClassVar[str]
    symbol_re: ClassVar[re.Pattern[str]]
    default_ws_url = WS_URL
    default_rest_url = REST_URL
    listing_dates = True
    max_streams_per_connection = MAX_STREAMS
    messages_per_second = 4  # OKX documents no per-second cap; 480 requests an hour:
    subscribe_requests_per_hour = 480  # per connection (ingest/subscribe.py budgets each socket)
    connect_limit: tuple[int, float] | None = wire.CONNECT_LIMIT
    keepalive = Keepalive(server_pings=False, ping_text=wire.PING, interval=PING_SECONDS)
    subscribe_on_open = True
    subscribe_batch = SUBSCRIBE_BATCH
    needs_listing = True  # SWAP sizes: contracts times ctVal (the spot listing is read too)
    gate_id = "gate_id"  # seqId restarts after maintenance: time first, then seqId
    resync_by_resubscribe = False  # REST books aligned by seqId (no request of the 480 an hour)
    bad_frame = wire.BadFrame
    quote_source = wire.BBO
    trade_continuity = SPANS
    weight_header = ""  # OKX reports no used weight
    weight_limit = WEIGHT_PER_MINUTE
    trades_page = rest.PAGE
    trades_weight = HISTORY_WEIGHT
    trading = rest.LIVE
    cadence: Mapping[str, float] = CADENCE
    depth_kind = wire.BOOKS
    trade_kind = wire.TRADES
    max_book_levels = book_.MAX_LEVELS

    def __init__(self) -> None:
        self.scales: dict[str, float] = {}  # instId -> contract value (SWAP), from the listing
        # the instIds whose ``liquidation-orders`` streams were subscribed (the one channel
        # carries every instId of the instType): a later symbol needs no second subscription
        self.liquidated: set[str] = set()
        scales = self.scales

        def decode_envelope(frame: str | bytes) -> wire.Envelope:
            return wire.decode_push(frame, scales)

        self.decode_envelope = decode_envelope

    # -- connection plan ---------------------------------------------------------------------

    def streams_for(self, symbols: tuple[str, ...], *, depth_levels: int, depth_speed: str,
                    book: str, book_ticker: bool) -> list[Stream]:
        out: list[Stream] = []
        for s in symbols:
            out.append(Stream(s, wire.TRADES, wire.stream_name(wire.TRADES, s)))
            channel = wire.BOOKS if book == "diff" else wire.BOOKS5
            out.append(Stream(s, channel, wire.stream_name(channel, s)))
            if book_ticker:
                out.append(Stream(s, wire.BBO, wire.stream_name(wire.BBO, s)))
        return out

    def plan_connections(self, streams: list[Stream], per_connection: int) -> list[Plan]:
        """Streams in order, ``per_connection`` a plan; the ``liquidation-orders`` streams all
        on the first (one subscription carries them all: on two connections each liquidation
        would arrive twice)."""
        liq = [s for s in streams if s.kind == derivs.LIQUIDATION_ORDERS]
        rest_ = [s for s in streams if s.kind != derivs.LIQUIDATION_ORDERS]
        n = max(1, min(per_connection, self.max_streams_per_connection))
        plans = [Plan(ROUTE, tuple(rest_[i : i + n])) for i in range(0, len(rest_), n)]
        if liq:
            if not plans:
                return [Plan(ROUTE, tuple(liq))]
            plans[0] = Plan(ROUTE, plans[0].streams + tuple(liq))
        return plans

    def pinned(self, streams: Sequence[Stream], plans: Sequence[Plan]) -> dict[int, list[Stream]]:
        """Of ``streams`` added to a running harvest, those that must join one given plan (by
        its index in ``plans``): every ``liquidation-orders`` stream joins the plan that
        carries the others, whose one instType subscription delivers every instId's
        liquidations (so its drop interrupts them, and no other connection subscribes them
        twice); the first plan when none carries one yet. The rest go wherever there is room
        (nothing is pinned when there is no plan: ``plan_connections`` keeps them together)."""
        liq = [s for s in streams if s.kind == derivs.LIQUIDATION_ORDERS]
        if not liq or not plans:
            return {}
        carrier = next((i for i, p in enumerate(plans)
                        if any(s.kind == derivs.LIQUIDATION_ORDERS for s in p.streams)), 0)
        return {carrier: liq}

    def subscription(self, method: str, names: list[str], request_id: int) -> str:
        """A subscribe request; a symbol's ``liquidation-orders`` stream is left out of it
        while another's is subscribed already: the one instType subscription carries it.
        "" when nothing is left to ask (only such streams: there is no request to send)."""
        liq = derivs.liquidation_symbols(names)
        if liq:
            if method.lower() == "subscribe":
                if self.liquidated:
                    names = [n for n in names if derivs.liquidation_symbols((n,)) == set()]
                self.liquidated |= liq
            else:
                self.liquidated -= liq
        return wire.subscription(method, names, request_id)

    def url_after(self, url: str, messages: list[str]) -> str:
        names = _url_names(url)
        for message in messages:
            op, changed = wire.subscribed_names(message)
            if op == "subscribe":
                names += [n for n in changed if n not in names]
            elif op == "unsubscribe":
                names = [n for n in names if n not in changed]
        return _url(url.partition("#")[0], names)

    def open_url(self, url: str) -> str:
        return url.partition("#")[0]

    def open_messages(self, url: str) -> list[str]:
        names = _url_names(url)
        self.liquidated |= derivs.liquidation_symbols(names)
        n = self.subscribe_batch
        messages = [wire.subscription("subscribe", names[i : i + n], i // n + 1)
                    for i in range(0, len(names), n)]
        return [m for m in messages if m]

    def trade_stream(self, symbol: str) -> str:
        return wire.stream_name(wire.TRADES, symbol)

    def quote_stream(self, symbol: str) -> str:
        return wire.stream_name(wire.BBO, symbol)

    def depth_stream(self, symbol: str, levels: int, speed: str, mode: str) -> str:
        return wire.stream_name(wire.BOOKS if mode == "diff" else wire.BOOKS5, symbol)

    def stream_kind(self, name: str) -> str:
        channel, _ = wire.split_stream(name)
        return _KINDS.get(channel or name, "")

    def is_quote_stream(self, name: str) -> bool:
        return name.startswith(wire.BBO + ":") or name.startswith(wire.TICKERS + ":")

    def stream_symbol(self, name: str) -> str:
        return wire.split_stream(name)[1]

    def stream_prefix(self, symbol: str) -> str:
        return ""  # the channel comes first: every learned name is checked by its symbol

    def stream_symbols(self, url: str) -> list[str]:
        return list(dict.fromkeys(self.stream_symbol(n) for n in _url_names(url)))

    # -- decoding ----------------------------------------------------------------------------

    def decode(self, frame: str | bytes) -> wire.Envelope:
        return wire.decode_frame(frame, self.scales)

    def reply_to(self, frame: str | bytes) -> tuple[int, str] | None:
        return wire.reply_to(frame)

    def trade_row(self, t: Trade, recv_ms: int) -> Row:
        return rows.trade_row(t, recv_ms)

    def quote_row(self, q: Quote, recv_ms: int, levels: int) -> Row:
        ts = q.event_ms or recv_ms
        return book_row(q.symbol, ts, ts, recv_ms, self.quote_source, q.update_id, q.update_id,
                        -1, [(q.bid, q.bid_qty)], [(q.ask, q.ask_qty)], levels)

    def levels_row(self, d: BookLevels, recv_ms: int, levels: int, source: str) -> Row:
        return book_row(d.symbol, d.event_ms, d.event_ms, recv_ms, source, d.update_id,
                        d.first_update_id, d.prev_update_id, d.bids, d.asks, levels)

    # -- sequencing and continuity -------------------------------------------------------------

    def parse_snapshot(self, body: Mapping[str, Any], symbol: str = "") -> book_.Snapshot:
        """A REST books answer (it names no instId: sizes are scaled by ``symbol``'s)."""
        return book_.parse_snapshot(body, self.scales.get(symbol, 1.0))

    def bridges(self, last_update_id: int, d: BookLevels) -> bool:
        return book_.bridges(last_update_id, d)

    def follows(self, prev_update_id: int, d: BookLevels) -> bool:
        return book_.follows(prev_update_id, d)

    def local_book(self, symbol: str, max_levels: int, buffer_limit: int) -> book_.LocalBook:
        return book_.LocalBook(symbol, max_levels=max_levels, buffer_limit=buffer_limit)

    # -- backfill and limits -------------------------------------------------------------------

    def trades_request(self, symbol: str, from_id: int, limit: int) -> RestRequest:
        return RestRequest(rest.HISTORY_TRADES_PATH, rest.trades_params(symbol, from_id, limit),
                           self.trades_weight)

    def decode_trades(self, body: bytes) -> Sequence[rest.RestTrade]:
        return rest.decode_trades(body, self.scales)

    def rest_trade_row(self, symbol: str, t: Any, recv_ms: int) -> Row:
        return (t.trade_ms, t.trade_ms, recv_ms, symbol, t.agg_id, t.price, t.qty, t.first_id,
                t.last_id, t.buyer_maker, None)

    def depth_request(self, symbol: str, limit: int) -> RestRequest:
        return RestRequest(rest.BOOKS_PATH, {"instId": symbol,
                                             "sz": max(1, min(limit, rest.BOOKS_MAX))},
                           BOOKS_WEIGHT)

    def ticker_request(self) -> RestRequest:
        return RestRequest(rest.TICKERS_PATH, {"instType": self.inst_type}, 1)

    def trade_counts(self, body: bytes | str) -> dict[str, int]:
        try:
            return rest.activity(body)
        except msgspec.DecodeError as exc:
            raise ValueError(f"tickers: {exc}") from None

    # -- listing -------------------------------------------------------------------------------

    def listing_request(self) -> RestRequest:
        return RestRequest(rest.INSTRUMENTS_PATH, {"instType": self.inst_type}, 1)

    def listing(self, doc: Mapping[str, Any]) -> dict[str, Listed]:
        """``instId -> Listed`` of an instruments answer; records each SWAP's ``ctVal``."""
        if self.inst_type == SWAP:
            self.scales.update(rest.contract_values(doc))
        return rest.listing(doc)

    def valid_symbol(self, symbol: str) -> bool:
        return bool(self.symbol_re.match(symbol))


SWAP = "SWAP"
SPOT = "SPOT"


class OkxSwap(Okx):
    name = "okx-swap"
    inst_type = SWAP
    symbol_re = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}-SWAP$")
    default_symbols: tuple[str, ...] = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
    derivatives = derivs.OkxDerivatives(Stream)


class OkxSpot(Okx):
    name = "okx-spot"
    inst_type = SPOT
    symbol_re = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")
    default_symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT")


SWAP_VENUE = OkxSwap()
SPOT_VENUE = OkxSpot()
