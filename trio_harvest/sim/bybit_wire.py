"""The Bybit v5 wire of the simulator's events: topics, frames, the ``u`` of each book topic.

Owns, per symbol, the text of ``publicTrade.S`` (one trade per message; linear ids are UUIDs
derived from the model's trade id, spot ids are its integer), ``orderbook.1.S`` (every best
bid/ask change as a snapshot, with its own ``u``), and the book topics: the model's diff depth
at 100 / 250 / 500 ms goes out as ``orderbook.50`` / ``orderbook.200`` / ``orderbook.1000``
deltas. Each book topic counts its own ``u``: +1 per message; when the model's chain shows a
message was not published (a dropped diff event), ``u`` skips one, so the client sees the
break Bybit would show. A snapshot of a book topic (a new subscriber's first message, or a
venue-side reset) carries the top levels the model published at the same boundary and that
boundary's ``u``; a reset that is a service restart starts ``u`` again at 1. Pure: builds text,
never decides who receives it (``bybit_hub.py``).
"""

from __future__ import annotations

import uuid

from ..venues.bybit.facts import book_topic, trade_topic
from .events import AggTrade, BookDepth, BookTicker, Level
from .specs import SymbolSpec, fixed

# the model's depth cadences, and the book topic depth each is served as
DEPTH_OF_CADENCE: dict[int, int] = {100: 50, 250: 200, 500: 1000}
CADENCE_OF_DEPTH = {d: c for c, d in DEPTH_OF_CADENCE.items()}
TRADE = "publicTrade"
QUOTE = "orderbook.1"
BOOK = "orderbook"
_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # uuid's URL namespace


def trade_id(category: str, symbol: str, agg_id: int) -> str:
    """The id Bybit shows for the model's trade ``agg_id``: a UUID on linear, the integer on
    spot (the tape's trades map to the ids the client wrote with this)."""
    if category == "spot":
        return str(agg_id)
    return str(uuid.uuid5(_NS, f"{symbol}/{agg_id}"))


class _Topic:
    __slots__ = ("model_u", "top", "u")

    def __init__(self, u: int) -> None:
        self.u = u
        self.model_u: int | None = None  # the model's last update id this topic published
        self.top: BookDepth | None = None  # the model's top levels at the latest boundary


class BybitSymbolWire:
    """Names and encoders for one symbol on one category."""

    __slots__ = ("_books", "_category", "_lot", "_pd", "_qd", "_quote_u", "_spot", "_tick",
                 "quote", "symbol", "trade")

    def __init__(self, spec: SymbolSpec, category: str, first_u: int = 1000) -> None:
        self.symbol = spec.symbol
        self._category = category
        self._spot = category == "spot"
        self._pd, self._tick = spec.price_decimals, spec.tick_units
        self._qd, self._lot = spec.qty_decimals, spec.lot_units
        self.trade = trade_topic(spec.symbol)
        self.quote = book_topic(spec.symbol, 1)
        self._quote_u = first_u
        self._books = {c: _Topic(first_u * (i + 2)) for i, c in enumerate(DEPTH_OF_CADENCE)}

    def book_name(self, cadence: int) -> str:
        return book_topic(self.symbol, DEPTH_OF_CADENCE[cadence])

    # -- text ----------------------------------------------------------------------------------

    def price(self, ticks: int) -> str:
        return fixed(ticks * self._tick, self._pd)

    def qty(self, lots: int) -> str:
        return fixed(lots * self._lot, self._qd)

    def _levels(self, levels: tuple[Level, ...]) -> str:
        price, qty = self.price, self.qty
        return "[" + ",".join([f'["{price(p)}","{qty(q)}"]' for p, q in levels]) + "]"

    def publish_trade(self, t: AggTrade) -> str:
        """``publicTrade.S``: one trade (``S`` the taker's side)."""
        side = "Sell" if t.buyer_maker else "Buy"
        tick = "" if self._spot else ',"L":"PlusTick"'
        return (f'{{"topic":"{self.trade}","type":"snapshot","ts":{t.event_ms},"data":[{{'
                f'"T":{t.trade_ms},"s":"{self.symbol}","S":"{side}","v":"{self.qty(t.qty)}",'
                f'"p":"{self.price(t.price)}"{tick},'
                f'"i":"{trade_id(self._category, self.symbol, t.agg_id)}","BT":false,'
                f'"RPI":false,"seq":{t.agg_id}}}]}}')

    def publish_quote(self, b: BookTicker) -> str:
        """``orderbook.1.S``: the best bid and ask as a snapshot, ``u`` +1 each."""
        self._quote_u += 1
        return (f'{{"topic":"{self.quote}","type":"snapshot","ts":{b.event_ms},"data":{{'
                f'"s":"{self.symbol}","b":[["{self.price(b.bid)}","{self.qty(b.bid_qty)}"]],'
                f'"a":[["{self.price(b.ask)}","{self.qty(b.ask_qty)}"]],"u":{self._quote_u},'
                f'"seq":{b.update_id}}},"cts":{b.trade_ms}}}')

    # -- book topics ---------------------------------------------------------------------------

    def remember(self, top: BookDepth) -> None:
        """The model's top levels at a boundary (published just before that boundary's diff)."""
        topic = self._books.get(top.cadence_ms)
        if topic is not None:
            topic.top = top

    def advance(self, diff: BookDepth, restart: bool = False) -> int:
        """The ``u`` of the topic's message for this diff event: +1, or +2 when the model's
        chain shows an event that was never published; 1 for a service ``restart``."""
        topic = self._books[diff.cadence_ms]
        if restart:
            topic.u = 1
        elif topic.model_u is not None and diff.prev_update_id != topic.model_u:
            topic.u += 2  # one message (at least) was lost on the venue's side
        else:
            topic.u += 1
        topic.model_u = diff.last_update_id
        return topic.u

    def delta(self, diff: BookDepth, u: int) -> str:
        return self._book(diff, "delta", u, diff.bids, diff.asks)

    def snapshot(self, diff: BookDepth, u: int) -> str | None:
        """The topic's snapshot at this diff's boundary (None: no top levels known yet)."""
        top = self._books[diff.cadence_ms].top
        if top is None or top.last_update_id != diff.last_update_id:
            return None
        return self._book(diff, "snapshot", u, top.bids, top.asks)

    def _book(self, diff: BookDepth, kind: str, u: int, bids: tuple[Level, ...],
              asks: tuple[Level, ...]) -> str:
        name = self.book_name(diff.cadence_ms)
        sides = (f'"a":{self._levels(asks)},"b":{self._levels(bids)}' if self._spot
                 else f'"b":{self._levels(bids)},"a":{self._levels(asks)}')
        return (f'{{"topic":"{name}","type":"{kind}","ts":{diff.event_ms},"data":{{'
                f'"s":"{self.symbol}",{sides},"u":{u},"seq":{diff.last_update_id}}},'
                f'"cts":{diff.trade_ms}}}')
