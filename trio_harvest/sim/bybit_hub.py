"""Fan-out on the simulator's Bybit sockets: topics, a snapshot first for every new subscriber
of a book topic, venue-side resets, and the accounting of subscribes and resubscribes.

Owns what differs from the Binance fan-out (``fanout.Hub``, whose queues, slow-consumer rule and
control replies it keeps): frames are bare topic messages (no wrapper); a connection that
subscribes a book topic gets, at the topic's next message, a snapshot of the book at that
boundary instead of the delta (its ``u`` the delta's, so the next delta chains on it); with
``reset=P`` a diff event goes out to everyone as a snapshot (half of them a service restart,
``u`` back to 1); each book topic's ``u`` skips one where the model's chain shows an event that
was not published (``drop_diff``). On linear, with the contract model (``derivs.py``), each mark
price goes out as a ``tickers`` delta of what changed (a new subscriber gets a snapshot of the
whole state first) and each liquidation as ``allLiquidation`` (``bybit_contract.py``). Counts
subscribe requests, topics resubscribed on a
connection that had them before, snapshots and resets (``BybitStats``). Never sends on a
socket, never decides a fault other than ``reset``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from .bybit_contract import LIQUIDATION, TICKERS, BybitContractWire
from .bybit_wire import BOOK, QUOTE, TRADE, BybitSymbolWire
from .derivs import Derivatives
from .events import AggTrade, BookDepth, BookTicker, Event, ForceOrder, MarkPrice
from .fanout import Hub, Subscriber
from .faults import Faults
from .specs import SymbolSpec
from .stats import SimStats
from .venue import VenueProfile


@dataclass
class BybitStats:
    subscribe_requests: int = 0  # subscribe requests accepted
    topics_subscribed: int = 0
    resubscribes: int = 0  # topics subscribed again on a connection that had them before
    snapshots: int = 0  # book snapshots sent to a new subscriber
    resets: int = 0  # venue-side resets (``reset=P``): a snapshot to every subscriber
    restarts: int = 0  # ... of which service restarts (``u`` back to 1)

    def render(self) -> str:
        return (f"{self.subscribe_requests} subscribe requests ({self.topics_subscribed} "
                f"topics, {self.resubscribes} resubscribed), {self.snapshots} snapshots, "
                f"{self.resets} resets ({self.restarts} restarts)")


class BybitHub(Hub):
    def __init__(self, specs: Iterable[SymbolSpec], stats: SimStats, faults: Faults | None,
                 venue: VenueProfile, *, reset: float = 0.0, seed: int = 1,
                 derivs: Derivatives | None = None) -> None:
        super().__init__((), stats, faults, venue)
        self.category = venue.name.removeprefix("bybit-")
        self.bybit = BybitStats()
        self._reset = reset
        self._rng = random.Random(f"trio_harvest.sim.bybit/{seed}")
        self._bwires: dict[str, BybitSymbolWire] = {}
        self._derivs = derivs  # the contract model (linear): open interest, last price
        self._cwires: dict[str, BybitContractWire] = {}
        self._pending: dict[str, set[int]] = {}  # book topic -> connections owed a snapshot
        self._history: dict[int, set[str]] = {}  # connection -> topics it ever subscribed
        for spec in specs:
            self.add_wire(spec)

    def add_wire(self, spec: SymbolSpec) -> None:
        self._bwires.setdefault(spec.symbol, BybitSymbolWire(spec, self.category))
        if self._derivs is not None:
            self._cwires.setdefault(spec.symbol, BybitContractWire(spec))

    def subscribe(self, sub: Subscriber, streams: Iterable[str]) -> None:
        names = [n for n in streams if n not in sub.streams]
        history = self._history.setdefault(sub.id, set())
        for name in names:
            sub.streams[name] = None
            self._subs.setdefault(name, []).append(sub)
            if name in history:
                self.bybit.resubscribes += 1
            history.add(name)
            if (name.startswith(BOOK + ".") and not name.startswith(QUOTE + ".")) or \
                    name.startswith(TICKERS + "."):
                self._pending.setdefault(name, set()).add(sub.id)
        self.bybit.topics_subscribed += len(names)

    def unsubscribe(self, sub: Subscriber, streams: Iterable[str]) -> None:
        streams = list(streams)
        super().unsubscribe(sub, streams)
        for name in streams:
            waiting = self._pending.get(name)
            if waiting is not None:
                waiting.discard(sub.id)

    def detach(self, sub: Subscriber) -> None:
        super().detach(sub)
        self._history.pop(sub.id, None)

    def publish(self, events: Iterable[Event]) -> None:
        subs_by_name = self._subs
        frames = self._stats.frames
        for ev in events:
            wire = self._bwires.get(ev.symbol)
            if wire is None:
                continue
            kind = type(ev)
            if kind is BookDepth and not ev.diff:  # type: ignore[union-attr]
                wire.remember(ev)  # type: ignore[arg-type]
                continue
            if kind is AggTrade:
                name, text = wire.trade, ""
                subs = subs_by_name.get(name)
                if subs:
                    text = wire.publish_trade(ev)  # type: ignore[arg-type]
                self._send(subs, name, text, TRADE, frames)
            elif kind is MarkPrice or kind is ForceOrder:
                self._contract(ev, frames)  # type: ignore[arg-type]
            elif kind is BookTicker:
                name = wire.quote
                text = wire.publish_quote(ev)  # type: ignore[arg-type]  # u counts regardless
                self._send(subs_by_name.get(name), name, text, QUOTE, frames)
            else:
                self._book(wire, ev, frames)  # type: ignore[arg-type]
        for sub in [s for s in self.connections.values() if s.overflowed]:
            self.detach(sub)
        for sub in self.connections.values():
            sub.flush()

    def _book(self, wire: BybitSymbolWire, diff: BookDepth, frames: dict[str, int]) -> None:
        reset = bool(self._reset) and self._rng.random() < self._reset
        restart = reset and self._rng.random() < 0.5
        u = wire.advance(diff, restart)
        name = wire.book_name(diff.cadence_ms)
        subs = self._subs.get(name)
        if not subs:
            return
        snapshot = wire.snapshot(diff, u)
        if reset and snapshot is not None:
            self.bybit.resets += 1
            self.bybit.restarts += restart
            self._send(subs, name, snapshot, BOOK, frames)
            self._pending.pop(name, None)
            return
        waiting = self._pending.get(name)
        delta = wire.delta(diff, u)
        if not waiting or snapshot is None:
            self._send(subs, name, delta, BOOK, frames)
            return
        fresh = [s for s in subs if s.id in waiting]
        self._send([s for s in subs if s.id not in waiting], name, delta, BOOK, frames)
        self._send(fresh, name, snapshot, BOOK, frames)
        self.bybit.snapshots += len(fresh)
        waiting.difference_update(s.id for s in fresh)

    def _contract(self, ev: MarkPrice | ForceOrder, frames: dict[str, int]) -> None:
        """A mark price as the tickers delta of what changed (a snapshot to a new subscriber),
        a liquidation as ``allLiquidation``."""
        wire, derivs = self._cwires.get(ev.symbol), self._derivs
        if wire is None or derivs is None:
            return
        if type(ev) is ForceOrder:
            name = wire.liquidation
            subs = self._subs.get(name)
            if subs:
                self._send(subs, name, wire.liquidation_message(ev), LIQUIDATION, frames)
            return
        assert type(ev) is MarkPrice
        model = derivs.symbols[ev.symbol]
        delta = wire.update(ev, model.open_interest, model.last_ticks)
        name = wire.tickers
        subs = self._subs.get(name)
        if not subs:
            return
        waiting = self._pending.get(name)
        fresh = [s for s in subs if waiting and s.id in waiting]
        if delta is not None:
            self._send([s for s in subs if not waiting or s.id not in waiting], name, delta,
                       TICKERS, frames)
        if fresh:
            snapshot = wire.snapshot(ev.event_ms)
            assert snapshot is not None  # update has just set the state
            self._send(fresh, name, snapshot, TICKERS, frames)
            assert waiting is not None
            waiting.difference_update(s.id for s in fresh)

    def _send(self, subs: list[Subscriber] | None, name: str, text: str, kind: str,
              frames: dict[str, int]) -> None:
        if not subs:
            return
        faults, push = self._faults, self._push
        n = 0
        for sub in subs:
            if faults is None:
                n += push(sub, text)
            else:
                for out in faults.on_frame(sub.id, name, text):
                    n += push(sub, out)
        frames[kind] = frames.get(kind, 0) + n
