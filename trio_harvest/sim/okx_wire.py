"""The OKX v5 wire format of the simulator's events (``okx-swap``, ``okx-spot``).

Owns the channel names an event goes out on (``trades:<instId>``, ``bbo-tbt:<instId>``,
``books:<instId>`` for the 100 ms diff chain, ``books5:<instId>`` for the 100 ms top 5) and the
whole push frame of each: ``{"arg":{"channel","instId"},"data":[…]}`` with every number a
string but ``seqId``/``prevSeqId``/``checksum``. A new ``books`` subscriber gets a snapshot
first (the book as of the next 100 ms diff, built from every diff the model made), then the
updates. A trade is numbered by its last fill id (``tradeId``) and covers ``count`` fills, so
``tradeId - count == previous tradeId``. Book ids are the model's update ids, shifted by a
per-instId offset so that a venue-side reset (fault ``reset=P``: after maintenance OKX restarts
``seqId`` low) makes ``seqId < prevSeqId`` once and the chain goes on from the lower number;
REST books read the same offset. Checksums are 0 (as OKX sends since June 2026). SWAP sizes
count contracts: the simulator's lot is one contract, so ``ctVal`` is the lot's size in base
currency. A SWAP's contract state goes out each second on ``mark-price:<instId>`` and
``index-tickers:<index>`` (the instId without ``-SWAP``), every ``FUNDING_EVERY_S`` on
``funding-rate:<instId>`` (OKX: every 30-90 s; faster here so a short run sees it) and every
``OI_EVERY_S`` on ``open-interest:<instId>`` (contracts); its liquidations on the instType
channel ``liquidation-orders:SWAP``. Never does I/O, never decides who receives what.
"""

from __future__ import annotations

import random
import re

from .events import AggTrade, BookDepth, BookSnapshot, BookTicker, Event, ForceOrder, Level, MarkPrice
from .specs import SymbolSpec, fixed
from .wire import AGG_TRADE, BOOK_TICKER, DEPTH, DIFF_DEPTH, FORCE_ORDER, MARK_PRICE, StreamTarget

TRADES = "trades"
BOOKS = "books"
BOOKS5 = "books5"
BBO = "bbo-tbt"
MARK = "mark-price"
INDEX = "index-tickers"
FUNDING = "funding-rate"
OPEN_INTEREST = "open-interest"
LIQUIDATIONS = "liquidation-orders"  # subscribed by instType: ``liquidation-orders:SWAP``
CHANNELS = {TRADES: AGG_TRADE, BBO: BOOK_TICKER, BOOKS: DIFF_DEPTH, BOOKS5: DEPTH,
            MARK: MARK_PRICE, INDEX: MARK_PRICE, FUNDING: MARK_PRICE, OPEN_INTEREST: MARK_PRICE,
            LIQUIDATIONS: FORCE_ORDER}
CADENCE_MS = 100  # books and books5 go out every 100 ms
FUNDING_EVERY_S = 5
OI_EVERY_S = 3  # OKX: every 3 s when it changed
# what ``encode`` writes for a MarkPrice, by its target's ``levels`` slot
_MARK, _INDEX, _FUNDING, _OI = 0, 1, 2, 3
_NAME_RE = re.compile(r"^(trades|bbo-tbt|books|books5|mark-price|index-tickers|funding-rate|"
                      r"open-interest|liquidation-orders):([A-Z0-9]+(?:-[A-Z0-9]+)?(?:-SWAP)?)$")


def stream_kind(name: str) -> str | None:
    """The simulator's stream kind of an OKX stream name, or None."""
    m = _NAME_RE.match(name)
    return CHANNELS[m.group(1)] if m else None


def split(name: str) -> tuple[str, str]:
    m = _NAME_RE.match(name)
    return (m.group(1), m.group(2)) if m else ("", "")


class OkxSymbolWire:
    """Names and encoders for one instId (the interface of ``wire.SymbolWire``)."""

    __slots__ = ("_ahead", "_asks", "_bids", "_books", "_books5", "_index", "_liq", "_lot", "_marks",
                 "_pd", "_qd", "_reset", "_rng", "_shadow_id", "_tick", "agg", "contracts",
                 "last_seq", "offset", "resets", "symbol", "ticker")

    def __init__(self, spec: SymbolSpec, *, contracts: bool = False, reset: float = 0.0,
                 seed: int = 1) -> None:
        self.symbol = inst = spec.symbol
        self.contracts = contracts  # SWAP: sizes in contracts (one lot each)
        self._pd, self._tick = spec.price_decimals, spec.tick_units
        self._qd, self._lot = spec.qty_decimals, spec.lot_units
        self.agg: tuple[StreamTarget, ...] = ((f"{TRADES}:{inst}", 0, AGG_TRADE),)
        self.ticker: tuple[StreamTarget, ...] = ((f"{BBO}:{inst}", 0, BOOK_TICKER),)
        self._books: tuple[StreamTarget, ...] = ((f"{BOOKS}:{inst}", 0, DIFF_DEPTH),)
        self._books5: tuple[StreamTarget, ...] = ((f"{BOOKS5}:{inst}", 5, DEPTH),)
        self._index = inst.removesuffix("-SWAP")
        every = ((f"{MARK}:{inst}", _MARK, MARK_PRICE), (f"{INDEX}:{self._index}", _INDEX,
                                                          MARK_PRICE))
        funding = ((f"{FUNDING}:{inst}", _FUNDING, MARK_PRICE),)
        oi = ((f"{OPEN_INTEREST}:{inst}", _OI, MARK_PRICE),)
        # by (funding this second, open interest this second)
        self._marks = {(False, False): every, (True, False): every + funding,
                       (False, True): every + oi, (True, True): every + funding + oi}
        self._liq: tuple[StreamTarget, ...] = ((f"{LIQUIDATIONS}:SWAP", 0, FORCE_ORDER),)
        self.offset = 0  # model update id - seqId
        self._reset = reset
        self._rng = random.Random(f"trio_harvest.sim.okx/{seed}/{inst}")
        self.last_seq = -1
        self.resets = 0
        # the book as of the last 100 ms diff published (what a snapshot on subscribing sends)
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        self._shadow_id = -1
        # diffs the model made in this step, not yet in the shadow: one step can make several
        # (a loaded machine steps less often), and a snapshot sent in place of the first must
        # not hold the changes of the next
        self._ahead: list[BookDepth] = []

    def seed(self, snap: BookSnapshot) -> None:
        """The book the diff chain starts from (the model's, before its first step)."""
        self._bids, self._asks = dict(snap.bids), dict(snap.asks)
        self._shadow_id = snap.last_update_id
        self._ahead.clear()

    def observe(self, ev: Event) -> bool:
        """Every 100 ms diff the model makes (before any fault drops one): the book a
        subscriber's snapshot is built from follows it, up to the diff being published (True:
        ``settle`` once this step's events are published)."""
        if isinstance(ev, BookDepth) and ev.diff and ev.cadence_ms == CADENCE_MS:
            self._ahead.append(ev)
            return True
        return False

    def settle(self, upto: int | None = None) -> None:
        """Apply the observed diffs up to update id ``upto`` (all of them when None)."""
        ahead = self._ahead
        n = 0
        for ev in ahead:
            if upto is not None and ev.last_update_id > upto:
                break
            for side, levels in ((self._bids, ev.bids), (self._asks, ev.asks)):
                for price, lots in levels:
                    if lots:
                        side[price] = lots
                    else:
                        side.pop(price, None)
            self._shadow_id = ev.last_update_id
            n += 1
        del ahead[:n]

    def snapshot(self, d: BookDepth) -> str:
        """The ``books`` snapshot a new subscriber gets in place of the diff ``d`` (the book as
        of ``d``, its top 400 levels a side), ``prevSeqId`` -1."""
        self.settle(d.last_update_id)
        bids = tuple(sorted(self._bids.items(), reverse=True)[:400])
        asks = tuple(sorted(self._asks.items())[:400])
        return (f'{{"arg":{{"channel":"books","instId":"{self.symbol}"}},"action":"snapshot",'
                f'"data":[{{"asks":{self._levels(asks)},"bids":{self._levels(bids)},'
                f'"ts":"{d.event_ms}","checksum":0,"prevSeqId":-1,'
                f'"seqId":{self.seq(d.last_update_id)}}}]}}')

    def seq(self, update_id: int) -> int:
        return update_id - self.offset

    def targets(self, ev: Event) -> tuple[StreamTarget, ...]:
        if isinstance(ev, AggTrade):
            return self.agg
        if isinstance(ev, BookTicker):
            return self.ticker
        if isinstance(ev, MarkPrice):
            second = ev.event_ms // 1000
            return self._marks[second % FUNDING_EVERY_S == 0, second % OI_EVERY_S == 0]
        if isinstance(ev, ForceOrder):
            return self._liq
        if not isinstance(ev, BookDepth):
            return ()
        if ev.cadence_ms != CADENCE_MS:
            return ()
        return self._books if ev.diff else self._books5

    def encode(self, ev: Event, levels: int = 0) -> str:
        """The whole push frame of an event (OKX frames carry their own channel)."""
        if isinstance(ev, AggTrade):
            return self.trade(ev)
        if isinstance(ev, BookTicker):
            return self.bbo(ev)
        if isinstance(ev, MarkPrice):
            return self.state(ev, levels)
        if isinstance(ev, ForceOrder):
            return self.liquidation(ev)
        if not isinstance(ev, BookDepth):
            raise ValueError(f"OKX's wire has no {type(ev).__name__} here")
        if ev.diff:
            return self.books(ev)
        return self.books5(ev, levels or 5)

    def price(self, ticks: int) -> str:
        return _plain(fixed(ticks * self._tick, self._pd))

    def qty(self, lots: int) -> str:
        if self.contracts:
            return str(lots)
        return _plain(fixed(lots * self._lot, self._qd))

    def trade(self, t: AggTrade) -> str:
        count = t.last_id - t.first_id + 1
        side = "sell" if t.buyer_maker else "buy"
        return (f'{{"arg":{{"channel":"trades","instId":"{self.symbol}"}},"data":[{{'
                f'"instId":"{self.symbol}","tradeId":"{t.last_id}","px":"{self.price(t.price)}",'
                f'"sz":"{self.qty(t.qty)}","side":"{side}","ts":"{t.trade_ms}",'
                f'"count":"{count}","source":"0","seqId":{t.agg_id}}}]}}')

    def bbo(self, b: BookTicker) -> str:
        return (f'{{"arg":{{"channel":"bbo-tbt","instId":"{self.symbol}"}},"data":[{{'
                f'"asks":[["{self.price(b.ask)}","{self.qty(b.ask_qty)}","0","1"]],'
                f'"bids":[["{self.price(b.bid)}","{self.qty(b.bid_qty)}","0","1"]],'
                f'"ts":"{b.event_ms}","seqId":{self.seq(b.update_id)}}}]}}')

    def books(self, d: BookDepth) -> str:
        prev = self.seq(d.prev_update_id)
        if self._reset and self._rng.random() < self._reset and prev > 1:
            # maintenance: seqId restarts lower (at half the last one, so no seqId of a run
            # repeats an earlier one and rows of two epochs are never confused)
            self.offset = d.last_update_id - prev // 2
            self.resets += 1
        seq = self.seq(d.last_update_id)
        self.last_seq = seq
        return (f'{{"arg":{{"channel":"books","instId":"{self.symbol}"}},"action":"update",'
                f'"data":[{{"asks":{self._levels(d.asks)},"bids":{self._levels(d.bids)},'
                f'"ts":"{d.event_ms}","checksum":0,"prevSeqId":{prev},"seqId":{seq}}}]}}')

    def books5(self, d: BookDepth, levels: int) -> str:
        return (f'{{"arg":{{"channel":"books5","instId":"{self.symbol}"}},"data":[{{'
                f'"asks":{self._levels(d.asks[:levels])},"bids":{self._levels(d.bids[:levels])},'
                f'"instId":"{self.symbol}","ts":"{d.event_ms}",'
                f'"seqId":{self.seq(d.last_update_id)}}}]}}')

    def state(self, m: MarkPrice, what: int) -> str:
        """The ``mark-price``, ``index-tickers``, ``funding-rate`` or ``open-interest`` push of
        a mark price event (``what``: its target's slot)."""
        inst, ts = self.symbol, m.event_ms
        if what == _MARK:
            return (f'{{"arg":{{"channel":"mark-price","instId":"{inst}"}},"data":[{{'
                    f'"instType":"SWAP","instId":"{inst}","markPx":"{m.mark:.8g}","ts":"{ts}"}}]}}')
        if what == _INDEX:
            return (f'{{"arg":{{"channel":"index-tickers","instId":"{self._index}"}},"data":[{{'
                    f'"instId":"{self._index}","idxPx":"{m.index:.8g}","high24h":"",'
                    f'"low24h":"","open24h":"","sodUtc0":"","sodUtc8":"","ts":"{ts}"}}]}}')
        if what == _FUNDING:
            rate = "" if m.funding_rate is None else f"{m.funding_rate:.10f}"
            after = m.next_funding_ms + 8 * 3_600_000 if m.next_funding_ms else 0
            return (f'{{"arg":{{"channel":"funding-rate","instId":"{inst}"}},"data":[{{'
                    f'"formulaType":"noRate","fundingRate":"{rate}",'
                    f'"fundingTime":"{m.next_funding_ms}","impactValue":"","instId":"{inst}",'
                    f'"instType":"SWAP","interestRate":"","method":"current_period",'
                    f'"nextFundingRate":"","nextFundingTime":"{after}","premium":"",'
                    f'"settFundingRate":"","settState":"settled","sign":"","ts":"{ts}"}}]}}')
        ccy = m.open_interest * self._lot / 10**self._qd if self.contracts else m.open_interest
        return (f'{{"arg":{{"channel":"open-interest","instId":"{inst}"}},"data":[{{'
                f'"instId":"{inst}","instType":"SWAP","oi":"{m.open_interest}",'
                f'"oiCcy":"{ccy:.8g}","oiUsd":"","ts":"{ts}"}}]}}')

    def liquidation(self, f: ForceOrder) -> str:
        """A ``liquidation-orders`` push: one order (``buy`` closes a short position)."""
        side, pos = ("buy", "short") if f.buy else ("sell", "long")
        inst = self.symbol
        return (f'{{"arg":{{"channel":"liquidation-orders","instType":"SWAP"}},"data":[{{'
                f'"details":[{{"bkLoss":"0","bkPx":"{self.price(f.price)}","ccy":"",'
                f'"posSide":"{pos}","side":"{side}","sz":"{self.qty(f.qty)}",'
                f'"ts":"{f.trade_ms}"}}],"instFamily":"{self._index}","instId":"{inst}",'
                f'"instType":"SWAP","uly":"{self._index}"}}]}}')

    def _levels(self, levels: tuple[Level, ...]) -> str:
        price, qty = self.price, self.qty
        return "[" + ",".join([f'["{price(p)}","{qty(q)}","0","1"]' for p, q in levels]) + "]"


def _plain(text: str) -> str:
    """OKX writes numbers without trailing zeros (``30261``, ``0.16``)."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
