"""Fan-out: who is subscribed to which stream, and each connection's bounded send queue.

Owns the subscription table (stream name -> connections), encoding each event once per stream
(and wrapping it once for combined connections), and queueing frames without ever blocking the
market: a connection whose queue is full is marked as a slow consumer and cancelled (Binance
disconnects slow consumers). It never sends on a socket (``server.py`` does) and never changes
events (``faults.py`` may, before and after this).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import trio

from .events import Event
from .faults import Faults
from .okx_wire import OkxSymbolWire
from .routes import serves
from .specs import SymbolSpec
from .stats import SimStats
from .venue import OKX, USDM_PROFILE, VenueProfile
from .wire import CONTROL, SymbolWire, combined

Wire = SymbolWire | OkxSymbolWire


class Subscriber:
    """One connection: its route, its subscriptions and its send queue.

    The queue holds at most ``queue_size`` frames. Frames are handed over in batches (one per
    publish), so the memory channel carries lists and is bounded by the frame count instead.
    """

    def __init__(self, conn_id: int, area: str, wrapped: bool, queue_size: int) -> None:
        self.id = conn_id
        self.area = area
        self.wrapped = wrapped
        self.streams: dict[str, None] = {}  # every stream asked for, served or not, in order
        self.limit = queue_size
        self.queued = 0  # frames queued and not yet taken by the writer
        self.taken = 0  # batches the writer has taken (it sent them): an idle cut watches it
        self._pending: list[str] = []
        self._send, self._receive = trio.open_memory_channel[list[str]](math.inf)
        self.cancel_scope = trio.CancelScope()
        self.overflowed = False
        self.closed = False
        self.snapshots: set[str] = set()  # OKX ``books`` streams owed a snapshot first

    def push(self, frame: str) -> bool:
        """Queue one frame; False when the queue is full."""
        if self.queued >= self.limit:
            return False
        self._pending.append(frame)
        self.queued += 1
        return True

    def flush(self) -> None:
        """Hand the frames pushed since the last flush to the writer."""
        if self._pending and not self.closed:
            self._send.send_nowait(self._pending)
            self._pending = []

    async def take(self, max_frames: int) -> list[str]:
        """Wait for frames, then take what is queued (about ``max_frames`` at most)."""
        batch = await self._receive.receive()
        while len(batch) < max_frames:
            try:
                batch.extend(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        self.queued -= len(batch)
        self.taken += 1
        return batch

    def close(self) -> None:
        self.closed = True
        self._pending = []
        self._send.close()


class Hub:
    def __init__(
        self, specs: Iterable[SymbolSpec], stats: SimStats, faults: Faults | None = None,
        venue: VenueProfile = USDM_PROFILE,
    ) -> None:
        self._venue = venue
        self._faults = faults
        self._wires: dict[str, Wire] = {s.symbol: self._wire(s) for s in specs}
        self._unsettled: set[OkxSymbolWire] = set()  # observed diffs of the last step
        self._subs: dict[str, list[Subscriber]] = {}
        self._stats = stats
        self.connections: dict[int, Subscriber] = {}

    def add_wire(self, spec: SymbolSpec) -> None:
        """A symbol listed while running: its events are encoded from now on."""
        self._wires.setdefault(spec.symbol, self._wire(spec))

    @property
    def wires(self) -> dict[str, Wire]:
        return self._wires

    def observe(self, events: Iterable[Event]) -> None:
        """Every event the model made, before faults (OKX's wire keeps the book a snapshot on
        subscribing is built from, as of the diff it replaces)."""
        for done in self._unsettled:  # the last step's events are all published now
            done.settle()
        self._unsettled.clear()
        wires = self._wires
        for ev in events:
            wire = wires.get(ev.symbol)
            if isinstance(wire, OkxSymbolWire) and wire.observe(ev):
                self._unsettled.add(wire)

    def _wire(self, spec: SymbolSpec) -> Wire:
        """A symbol's encoder in the venue's wire format (OKX's: ``okx_wire.py``)."""
        venue = self._venue
        if venue.family != OKX:
            return SymbolWire(spec, venue)
        plan = getattr(self._faults, "plan", None)  # ``reset=P``: venue-side book resets
        return OkxSymbolWire(spec, contracts=venue.inst_type == "SWAP",
                             reset=plan.reset if plan is not None else 0.0,
                             seed=plan.seed or 1 if plan is not None else 1)

    def attach(self, sub: Subscriber, streams: Iterable[str]) -> None:
        self.connections[sub.id] = sub
        self.subscribe(sub, streams)

    def subscribe(self, sub: Subscriber, streams: Iterable[str]) -> None:
        for name in streams:
            if name in sub.streams:
                continue
            sub.streams[name] = None
            if serves(sub.area, name):  # else: acknowledged, and silent forever
                self._subs.setdefault(name, []).append(sub)

    def unsubscribe(self, sub: Subscriber, streams: Iterable[str]) -> None:
        for name in streams:
            if name not in sub.streams:
                continue
            del sub.streams[name]
            subs = self._subs.get(name)
            if subs is not None and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self._subs[name]

    def detach(self, sub: Subscriber) -> None:
        self.unsubscribe(sub, list(sub.streams))
        self.connections.pop(sub.id, None)
        sub.close()

    def reply(self, sub: Subscriber, text: str) -> None:
        """Queue a control reply (it goes out in order with the data frames)."""
        self._stats.frames[CONTROL] += self._push(sub, text)
        if sub.overflowed:
            self.detach(sub)
        sub.flush()

    def publish(self, events: Iterable[Event]) -> None:
        """Encode and queue each event for every connection subscribed to its streams."""
        subs_by_name = self._subs
        if not subs_by_name:
            return
        frames = self._stats.frames
        faults = self._faults
        push = self._push
        for ev in events:
            wire = self._wires.get(ev.symbol)
            if wire is None:
                continue
            for name, levels, kind in wire.targets(ev):
                subs = subs_by_name.get(name)
                if not subs:
                    continue
                payload = wire.encode(ev, levels)
                wrapped: str | None = None
                for sub in subs:
                    if sub.snapshots and name in sub.snapshots:  # OKX: a snapshot first
                        sub.snapshots.discard(name)
                        frame = wire.snapshot(ev)  # type: ignore[union-attr,arg-type]
                    elif sub.wrapped:
                        if wrapped is None:
                            wrapped = combined(name, payload)
                        frame = wrapped
                    else:
                        frame = payload
                    if faults is None:
                        frames[kind] += push(sub, frame)
                    else:
                        for out in faults.on_frame(sub.id, name, frame):
                            frames[kind] += push(sub, out)
        for sub in [s for s in self.connections.values() if s.overflowed]:
            self.detach(sub)
        for sub in self.connections.values():
            sub.flush()

    def _push(self, sub: Subscriber, frame: str) -> bool:
        """Queue without blocking. On overflow the connection is cancelled and counted as a slow
        consumer (``publish`` detaches it). True when the frame was queued."""
        if sub.overflowed or sub.closed:
            return False
        if sub.push(frame):
            return True
        sub.overflowed = True
        sub.cancel_scope.cancel()
        self._stats.slow_consumer_closes += 1
        return False
