"""The Binance wire format of the simulator's events, and the stream names they go out on.

Owns stream naming (lower-case symbol, ``@aggTrade``, ``@bookTicker``, ``@depth<N>[@speed]``,
``@depth[@speed]``, ``@markPrice@1s``, ``@forceOrder``; on the futures venues 250 ms has no
suffix, spot serves ``@100ms``), the kind of a stream name, and the JSON text of each payload:
prices and sizes as strings on the symbol's decimals, ids and times as integers, field sets and
order as the venue sends them (the venue's profile, ``venue.py``, says which fields: USD-M's
``nq``, spot's ``M`` and time-less bookTicker and ``pu``-less depth, COIN-M's ``ps``). Built
with plain string formatting for speed; never does I/O and never decides who receives what.
"""

from __future__ import annotations

import re

from .events import AggTrade, BookDepth, BookTicker, Event, ForceOrder, Level, MarkPrice
from .specs import SymbolSpec, fixed
from .venue import USDM_PROFILE, VenueProfile

AGG_TRADE = "aggTrade"
BOOK_TICKER = "bookTicker"
DEPTH = "depth"  # partial depth, top N
DIFF_DEPTH = "diffDepth"
MARK_PRICE = "markPrice"  # ``@markPrice@1s`` (futures venues)
FORCE_ORDER = "forceOrder"  # ``@forceOrder`` (futures venues)
CONTROL = "control"  # replies to SUBSCRIBE and friends (not a stream)
STREAM_KINDS = (AGG_TRADE, BOOK_TICKER, DEPTH, DIFF_DEPTH, MARK_PRICE, FORCE_ORDER)
DEPTH_LEVELS = (5, 10, 20)

_PRICE_CACHE = 4096
_NAME_RE = re.compile(
    r"^[^\WA-Z]+@(?:(aggTrade)|(bookTicker)|(markPrice@1s)|(forceOrder)"
    r"|depth(5|10|20)?(?:@(?:100ms|500ms))?)$"
)

# (stream name, partial-depth levels or 0, stream kind)
StreamTarget = tuple[str, int, str]


def stream_kind(name: str) -> str | None:
    """The kind of a stream the simulator serves, or None for any other name."""
    m = _NAME_RE.match(name)
    if m is None:
        return None
    if m.group(1):
        return AGG_TRADE
    if m.group(2):
        return BOOK_TICKER
    if m.group(3):
        return MARK_PRICE
    if m.group(4):
        return FORCE_ORDER
    return DEPTH if m.group(5) else DIFF_DEPTH


def combined(stream: str, payload: str) -> str:
    """The combined-stream wrapper ``{"stream":...,"data":...}``."""
    return f'{{"stream":"{stream}","data":{payload}}}'


class SymbolWire:
    """Names and encoders for one symbol."""

    __slots__ = ("_depth", "_diff", "_lot", "_nq", "_pd", "_prices", "_ps", "_pu", "_qd",
                 "_tick", "_ticker_times", "_trade_tail", "agg", "force", "mark", "symbol",
                 "ticker")

    def __init__(self, spec: SymbolSpec, venue: VenueProfile = USDM_PROFILE) -> None:
        self.symbol = spec.symbol
        low = spec.symbol.lower()
        self._pu, self._ticker_times = venue.pu, venue.ticker_times
        self._nq = venue.trade_nq  # USD-M repeats q as nq
        self._trade_tail = ',"M":true' if venue.trade_m else ""  # spot's "ignore" flag
        pair = spec.symbol.partition("_")[0]
        self._ps = f',"ps":"{pair}"' if venue.pair_field else ""
        self._pd, self._tick = spec.price_decimals, spec.tick_units
        self._qd, self._lot = spec.qty_decimals, spec.lot_units
        self._prices: dict[int, str] = {}  # prices repeat a lot: cache their text
        self.agg: tuple[StreamTarget, ...] = ((f"{low}@aggTrade", 0, AGG_TRADE),)
        self.ticker: tuple[StreamTarget, ...] = ((f"{low}@bookTicker", 0, BOOK_TICKER),)
        self.mark: tuple[StreamTarget, ...] = ((f"{low}@markPrice@1s", 0, MARK_PRICE),)
        self.force: tuple[StreamTarget, ...] = ((f"{low}@forceOrder", 0, FORCE_ORDER),)
        self._depth: dict[int, tuple[StreamTarget, ...]] = {
            c: tuple((f"{low}@depth{n}{sfx}", n, DEPTH) for n in DEPTH_LEVELS)
            for c, sfx in venue.depth_suffixes
        }
        self._diff: dict[int, tuple[StreamTarget, ...]] = {
            c: ((f"{low}@depth{sfx}", 0, DIFF_DEPTH),) for c, sfx in venue.depth_suffixes
        }

    def targets(self, ev: Event) -> tuple[StreamTarget, ...]:
        """The streams an event goes out on."""
        if isinstance(ev, AggTrade):
            return self.agg
        if isinstance(ev, BookTicker):
            return self.ticker
        if isinstance(ev, MarkPrice):
            return self.mark
        if isinstance(ev, ForceOrder):
            return self.force
        return (self._diff if ev.diff else self._depth).get(ev.cadence_ms, ())

    def encode(self, ev: Event, levels: int = 0) -> str:
        """The payload (the ``data`` object) of an event; ``levels`` cuts partial depth."""
        if isinstance(ev, AggTrade):
            return self.agg_trade(ev)
        if isinstance(ev, BookTicker):
            return self.book_ticker(ev)
        if isinstance(ev, MarkPrice):
            return self.mark_price(ev)
        if isinstance(ev, ForceOrder):
            return self.force_order(ev)
        return self.depth(ev, levels)

    def price(self, ticks: int) -> str:
        text = self._prices.get(ticks)
        if text is None:
            if len(self._prices) >= _PRICE_CACHE:
                self._prices.clear()
            text = self._prices[ticks] = fixed(ticks * self._tick, self._pd)
        return text

    def qty(self, lots: int) -> str:
        return fixed(lots * self._lot, self._qd)

    def agg_trade(self, t: AggTrade) -> str:
        q = self.qty(t.qty)
        nq = f',"nq":"{q}"' if self._nq else ""
        return (
            f'{{"e":"aggTrade","E":{t.event_ms},"s":"{self.symbol}","a":{t.agg_id},'
            f'"p":"{self.price(t.price)}","q":"{q}"{nq},"f":{t.first_id},'
            f'"l":{t.last_id},"T":{t.trade_ms},"m":{"true" if t.buyer_maker else "false"}'
            f'{self._trade_tail}}}'
        )

    def book_ticker(self, b: BookTicker) -> str:
        quote = (f'"b":"{self.price(b.bid)}","B":"{self.qty(b.bid_qty)}",'
                 f'"a":"{self.price(b.ask)}","A":"{self.qty(b.ask_qty)}"')
        if not self._ticker_times:  # spot: no e, E or T
            return f'{{"u":{b.update_id},"s":"{self.symbol}",{quote}}}'
        return (f'{{"e":"bookTicker","u":{b.update_id},"s":"{self.symbol}"{self._ps},{quote},'
                f'"T":{b.trade_ms},"E":{b.event_ms}}}')

    def mark_price(self, m: MarkPrice) -> str:
        """``markPriceUpdate``: 8 decimals as Binance sends them; a delivery contract's funding
        rate ``""`` and next funding time 0 (COIN-M)."""
        rate = "" if m.funding_rate is None else f"{m.funding_rate:.8f}"
        return (f'{{"e":"markPriceUpdate","E":{m.event_ms},"s":"{self.symbol}",'
                f'"p":"{m.mark:.8f}","P":"{m.settle:.8f}","i":"{m.index:.8f}",'
                f'"r":"{rate}","T":{m.next_funding_ms}}}')

    def force_order(self, f: ForceOrder) -> str:
        """``forceOrder``: one liquidation order, filled at once (COIN-M adds ``ps``)."""
        q = self.qty(f.qty)
        return (f'{{"e":"forceOrder","E":{f.event_ms},"o":{{"s":"{self.symbol}"{self._ps},'
                f'"S":"{"BUY" if f.buy else "SELL"}","o":"LIMIT","f":"IOC","q":"{q}",'
                f'"p":"{self.price(f.price)}","ap":"{self.price(f.avg_price)}","X":"FILLED",'
                f'"l":"{q}","z":"{q}","T":{f.trade_ms}}}}}')

    def depth(self, d: BookDepth, levels: int = 0) -> str:
        bids, asks = (d.bids[:levels], d.asks[:levels]) if levels else (d.bids, d.asks)
        sides = f'"b":{self._levels(bids)},"a":{self._levels(asks)}'
        if self._pu:
            return (
                f'{{"e":"depthUpdate","E":{d.event_ms},"T":{d.trade_ms},"s":"{self.symbol}"'
                f'{self._ps},"U":{d.first_update_id},"u":{d.last_update_id},'
                f'"pu":{d.prev_update_id},{sides}}}'
            )
        if not d.diff:  # spot's partial depth: no event, no symbol, no time
            return (f'{{"lastUpdateId":{d.last_update_id},"bids":{self._levels(bids)},'
                    f'"asks":{self._levels(asks)}}}')
        # spot's diff depth: no pu and no T; its window starts right after the previous one
        return (f'{{"e":"depthUpdate","E":{d.event_ms},"s":"{self.symbol}",'
                f'"U":{d.prev_update_id + 1},"u":{d.last_update_id},{sides}}}')

    def _levels(self, levels: tuple[Level, ...]) -> str:
        price, qty = self.price, self.qty
        return "[" + ",".join([f'["{price(p)}","{qty(q)}"]' for p, q in levels]) + "]"
