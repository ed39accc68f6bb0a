"""The universe: ``--symbols all`` or patterns, resolved from the venue's listing at start-up and
followed while the harvester runs.

Owns the start-up resolution (one listing fetch; the simulator's catalogue under ``--sim``), the
follower task (a listing poll every ``listing_interval``, and sooner when a subscribed stream
has gone silent: a delisting shows as silence first) and the change it makes to a running
harvester: a new symbol gets its lanes, signal engine, continuity and streams (a live subscribe
on a connection with room, else a new connection; the other streams never notice); a delisted
or settled symbol, or one that is no longer this shard's, is unsubscribed, its closed seconds
emitted and its lanes flushed, and a delisted one gets one ``gaps`` row with reason
``delisted`` (never a disconnect or stall gap). With ``--shard``/``--workers`` each shard
follows its own share by the ownership timeline (``scale/handover.py``: the listing's own dates,
the day's weights, a fixed grid): a symbol that moves joins the new owner before the boundary
(rows from it kept) and leaves the old one after it (rows before it kept, one ``handover`` gap
row, not a loss), through a window on that symbol's lane alone (``pipeline/window.py``). Never
stops the harvester: a listing that cannot be had is logged and asked again at the next poll.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import trio

from .. import venues
from ..channels import stream_plan
from ..errors import ConfigError
from ..gaps import gap_row
from ..ingest.restclient import http_fetch
from ..kinds import PRICES, Row
from ..pipeline.window import WindowLane
from ..ratelimit import RateLimitedLog
from ..scale.handover import DayWeights, Timeline, day_of
from ..scale.shards import parse_shard
from ..signals.task import flush_all
from ..symbols import follow, is_universe, not_trading, resolve
from ..venues.base import DERIVATIVES, LIQUIDATIONS, TRADES, Listed, Plan, Venue
from .listing import ListingError, fetch_listing, fetch_statuses

if TYPE_CHECKING:
    from ..config import Config
    from ..ingest.connection import Connection
    from ..pipeline.lanes import Lanes
    from ..pipeline.rotation import Rotation
    from ..pipeline.router import DiffBooks, Router
    from ..repair.coordinator import Repair
    from ..signals.engine import SignalEngine

log = logging.getLogger("trio_harvest.universe")

# A book stream (continuous on a trading symbol) silent this long asks for an early poll: a
# delisting shows as silence first, and health calls a book stream stale after 10 s...
SILENT_S = 3.0
QUIET_KINDS = (TRADES, DERIVATIVES, LIQUIDATIONS)  # silent a while on a listed symbol too
EARLY_GAP_S = 5.0  # ...at most this often (weight 1 each: 12 a minute at most)
DELISTED = "delisted"
HANDOVER = "handover"  # a symbol that moved to another shard: not a loss
# the old owner keeps a moved symbol's streams this long after the boundary, for the messages
# timed before it that are still on their way
HANDOVER_GRACE_MS = 3_000


# -- start-up ----------------------------------------------------------------------------------


def resolve_universe(config: Config, venue: Venue | None = None) -> Config:
    """``config`` with ``all`` and patterns resolved to the trading symbols they select (and
    ``universe`` keeping what was asked for); unchanged for a list of names. ``ConfigError``
    (one line, exit 2) when a pattern selects nothing or the listing cannot be had."""
    entries = config.symbols
    if not is_universe(entries):
        return config
    venue = venue or venues.get(config.venue)
    if config.sim:  # the simulator lists its catalogue of the venue (all of it trading)
        from ..sim.listing import initial_listing
        from ..sim.venue import profile

        trading: Iterable[str] = initial_listing(entries, profile(venue.name).catalogue)
    else:
        try:
            listing = trio.run(fetch_statuses, config.rest_url, http_fetch, venue)
        except ListingError as exc:
            raise ConfigError(
                f"--symbols {','.join(entries).lower()}: cannot read the listing ({exc}); check "
                "the network and --rest-url, or give the symbols by name") from None
        trading = [s for s, status in listing.items() if status == venue.trading]
    symbols = resolve(entries, trading, "--symbols")
    if missing := not_trading(entries, trading):
        log.warning("--symbols: %s not trading on the venue; left out (a typo, or a delisted "
                    "contract?)", ", ".join(missing))
    return dataclasses.replace(config, symbols=symbols, universe=entries)


# -- the running harvester, as the follower changes it ------------------------------------------


class UniverseHost(Protocol):
    """What the follower changes (the harvester implements it)."""

    @property
    def config(self) -> Config: ...
    @property
    def router(self) -> Router: ...
    @property
    def repair(self) -> Repair: ...
    @property
    def lanes(self) -> Lanes: ...
    @property
    def rotation(self) -> Rotation: ...
    @property
    def engines(self) -> MutableMapping[str, SignalEngine]: ...
    @property
    def connections(self) -> list[Connection]: ...
    @property
    def diff_books(self) -> DiffBooks | None: ...

    def make_engine(self, symbol: str) -> SignalEngine: ...
    def open_connection(self, plan: Plan) -> Connection: ...
    def exchange_ms(self) -> int: ...
    def wall_ms(self) -> int: ...


FetchListing = Callable[[str], Awaitable[dict[str, Listed]]]


class Universe:
    """The follower: ``run`` polls the listing and applies each change. With a shard, the
    changes to its share follow the ownership timeline (scale/handover.py): the shard's own
    start-up weights (``weights``, by UTC day, re-read when the day changes) and the listing's
    own times, so a symbol that moves between shards leaves one and joins the other at the same
    boundary."""

    def __init__(self, host: UniverseHost, rest_url: str, *,
                 fetch: FetchListing | None = None,
                 weights: DayWeights | None = None, venue: Venue | None = None,
                 namespace: str = "") -> None:
        cfg = host.config
        self.namespace = namespace  # a run of several venues: its (venue, symbol) pairs
        self.venue = venue = venue or venues.get(cfg.venue)
        self.host = host
        self.rest_url = rest_url
        self.entries: tuple[str, ...] = cfg.universe
        self.interval = cfg.listing_interval
        self.shard = parse_shard(cfg.shard) if cfg.shard else None
        # the venue's own listing (its request, its status field)
        self._fetch = fetch or (lambda url: fetch_listing(url, http_fetch, venue))
        self._weights: DayWeights = weights if weights is not None else (lambda day: None)
        self._by_day: dict[str, Mapping[str, int] | None] = {}
        self.polls = 0
        self.added: list[str] = []
        self.removed: list[str] = []
        self.delisted: list[str] = []
        self.handed_over: list[tuple[str, int]] = []  # (symbol, boundary) it left
        self.taken_over: list[tuple[str, int | None]] = []  # (symbol, boundary) it joined at
        self.leaving: dict[str, int] = {}  # symbol -> boundary: rows before it are kept
        self.joining: dict[str, int] = {}  # symbol -> boundary: rows from it on are kept
        self._trading: dict[str, Listed] = {}  # as of the last poll
        self._last_poll = 0.0
        self._ratelog = RateLimitedLog(log, interval=600.0)

    @property
    def symbols(self) -> set[str]:
        return set(self.host.router.symbols)

    def weights_of(self, day: str) -> Mapping[str, int] | None:
        """The day's weights, kept once had (the snapshot of a day never changes)."""
        if day in self._by_day:
            return self._by_day[day]
        got = self._weights(day)
        if got is not None:  # none (a failed fetch) is asked again: the shared one may come
            self._by_day[day] = got
        return got

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the listing until cancelled. A shard polls once before it reports started:
        its start-up share is the owners of the moment it was computed, and a hand-over the
        timeline already shows at one of the next boundaries must be windowed before ingest
        routes the first frame (else it keeps the rows past that boundary that the new owner
        keeps too, until a first poll one interval later finds the leave late)."""
        if self.shard is not None:
            await self.poll()
        else:
            self._last_poll = trio.current_time()
        task_status.started()
        while True:
            due = self._last_poll + self.interval
            while trio.current_time() < due:
                await trio.sleep(min(1.0, max(0.0, due - trio.current_time())))
                await self.tick()
                if self._silent() and trio.current_time() - self._last_poll >= EARLY_GAP_S:
                    break
            await self.poll()

    async def tick(self) -> None:
        """Hand-overs whose boundary (plus the grace) has passed: a leaving symbol is
        unsubscribed, a joined one keeps everything again."""
        now = self.host.exchange_ms()
        for symbol, boundary in sorted(self.joining.items()):
            if now >= boundary + HANDOVER_GRACE_MS and symbol not in self.leaving:
                del self.joining[symbol]
                self._unwindow(symbol)
        done = [s for s, b in self.leaving.items() if now >= b + HANDOVER_GRACE_MS]
        if done:
            await self.remove(sorted(done), self._trading, handover=dict(self.leaving))

    def _silent(self) -> bool:
        """Some subscribed book stream has been silent for SILENT_S (trades may pause on a
        quiet symbol, a contract's state may stay unchanged for a minute, liquidations for
        hours; books do not while it trades)."""
        now = trio.current_time()
        last_seen = self.host.router.stats.last_seen
        kind_of = self.venue.stream_kind
        return any(now - t > SILENT_S and kind_of(name) not in QUIET_KINDS
                   for name, t in last_seen.items())

    async def poll(self) -> None:
        """One listing fetch and the change it shows."""
        self._last_poll = trio.current_time()
        self.polls += 1
        try:
            listing = await self._fetch(self.rest_url)
        except ListingError as exc:
            self._ratelog.log(logging.WARNING, "listing", "cannot follow the listing: %s; the "
                              "symbols stay as they are until the next poll", exc)
            return
        trading = [s for s, e in listing.items() if e.status == self.venue.trading]
        self._trading = {s: listing[s] for s in trading}
        if self.shard is None:
            added, removed = follow(self.symbols, self.entries, trading)
            if removed:
                await self.remove(removed, listing)
            if added:
                await self.add(added)
            return
        _, gone = follow(self.symbols, self.entries, trading)
        if gone := tuple(s for s in gone if s not in trading):  # delisted or settled
            await self.remove(gone, listing)
        await self._share(listing)

    async def _share(self, listing: Mapping[str, Listed]) -> None:
        """This shard's share by the timeline: joins now (kept from their boundary on), and
        leaves at a boundary to come (kept until it)."""
        assert self.shard is not None
        step = max(1, round(self.interval * 1000))
        now = self.host.exchange_ms()
        today = day_of(now)
        timeline = Timeline(listing, self.entries, self.shard, self.weights_of, step, today,
                            trading=self.venue.trading, namespace=self.namespace,
                            dated=self.venue.listing_dates)
        days = {min(today, timeline_day(now, step, k)) for k in range(-4, 5)}
        for day in sorted(days - set(self._by_day)):
            await trio.to_thread.run_sync(self.weights_of, day)  # blocking: a file or a bucket
        moves = timeline.moves(self.symbols, self.leaving, self.joining, now)
        joins = [m for m in moves if m.join and m.symbol not in self.symbols]
        if joins:  # continuity afresh: a symbol back from another shard has a hole meanwhile
            # windowed before their streams are subscribed: a frame routed while a connection
            # is told (its other messages wait their turn) keeps to the boundary already
            ends = {m.symbol: m.boundary_ms for m in moves if not m.join}
            await self.add([m.symbol for m in joins], fresh=True, windows={
                m.symbol: (m.boundary_ms, ends.get(m.symbol)) for m in joins
                if m.boundary_ms is not None or m.symbol in ends})
        for m in moves:
            if m.join and m.symbol in self.leaving:  # the move was called off
                del self.leaving[m.symbol]
                self._window(m.symbol, self.joining.get(m.symbol), None)
                log.info("%s: stays on shard %s after all", m.symbol, self.shard)
            elif m.join:
                self.taken_over.append((m.symbol, m.boundary_ms))
                if m.boundary_ms is not None:
                    self.joining[m.symbol] = m.boundary_ms
                    self._window(m.symbol, m.boundary_ms, None)
                    log.info("%s: joins shard %s; rows from %s on are kept here", m.symbol,
                             self.shard, _utc(m.boundary_ms))
            else:
                assert m.boundary_ms is not None
                self.leaving[m.symbol] = m.boundary_ms
                self._window(m.symbol, self.joining.get(m.symbol), m.boundary_ms)
                late = " (late: that boundary has passed)" if m.boundary_ms <= now else ""
                log.info("%s: leaves shard %s; rows before %s are kept here%s", m.symbol,
                         self.shard, _utc(m.boundary_ms), late)

    # -- applying a change ------------------------------------------------------------------

    def _window(self, symbol: str, start_ms: int | None, end_ms: int | None) -> None:
        """Keep only ``symbol``'s rows in ``[start_ms, end_ms)``, streamed or backfilled."""
        h = self.host
        window = h.router.window(symbol, start_ms, end_ms)
        h.repair.prices_into(symbol, WindowLane(h.lanes.get(PRICES, symbol), window))

    def _unwindow(self, symbol: str) -> None:
        self.host.router.unwindow(symbol)
        self.host.repair.prices_into(symbol, None)

    async def add(self, symbols: Sequence[str], *, fresh: bool = False,
                  windows: Mapping[str, tuple[int | None, int | None]] | None = None) -> None:
        """Subscribe ``symbols``; those in ``windows`` keep only the rows of their window
        (start, end) from their first frame on."""
        h, cfg = self.host, self.host.config
        venue = self.venue
        specs = stream_plan(venue, tuple(symbols), cfg.harvested, depth_levels=cfg.depth_levels,
                            depth_speed=cfg.depth_speed, book=cfg.book,
                            book_ticker=cfg.book_ticker)
        for symbol in symbols:
            h.repair.add_symbol(symbol, fresh=fresh)
            if h.diff_books is not None:
                h.diff_books.add_symbol(symbol)
            engine = h.engines[symbol] = h.make_engine(symbol)
            h.router.add_symbol(symbol, {s.name: s.symbol for s in specs if s.symbol == symbol},
                                engine)
            if windows is not None and symbol in windows:
                self._window(symbol, *windows[symbol])
        told: list[Connection] = []
        limit = cfg.streams_per_connection
        # streams one connection's subscription already carries join it (OKX's instType
        # liquidations), room or not: their gaps follow that connection, none subscribes twice
        pinned = getattr(venue, "pinned", None)
        for route in sorted({s.route for s in specs}):
            todo = [s for s in specs if s.route == route]
            if pinned is not None:
                for i, take in pinned(todo, [c.plan for c in h.connections]).items():
                    conn = h.connections[i]
                    conn.retarget(add=tuple(take))
                    told += [conn] if conn not in told else []
                    todo = [s for s in todo if s not in take]
            for conn in h.connections:
                if not todo or conn.plan.route != route or not conn.room(limit):
                    continue
                take, todo = todo[:conn.room(limit)], todo[conn.room(limit):]
                conn.retarget(add=tuple(take))
                told += [conn] if conn not in told else []
            for plan in venue.plan_connections(todo, limit):
                h.open_connection(plan)
        for conn in told:
            await conn.tell()
        self.added.extend(symbols)
        log.info("listing: %d new symbol%s subscribed: %s", len(symbols),
                 "" if len(symbols) == 1 else "s", _shown(symbols))

    async def remove(self, symbols: Sequence[str], listing: Mapping[str, Listed], *,
                     handover: Mapping[str, int] | None = None) -> None:
        """Unsubscribe ``symbols``: a delisted one gets a ``delisted`` gap row, one handed over
        to another shard at a boundary (``handover``) a ``handover`` row (not a loss)."""
        h = self.host
        for symbol in symbols:
            # the router forgets its window; a backfill still under way keeps to it
            h.router.unwindow(symbol)
            handover_ms = self.leaving.pop(symbol, None)
            self.joining.pop(symbol, None)
            names = frozenset(h.router.remove_symbol(symbol))
            h.repair.remove_symbol(sorted(names))
            if h.diff_books is not None:
                h.diff_books.remove_symbol(symbol)
            affected = [c for c in h.connections if any(s.name in names for s in c.plan.streams)]
            for conn in affected:  # every plan first: a disconnect meanwhile leaves no gap
                conn.retarget(remove=names)
            for conn in affected:
                if conn.plan.streams:
                    await conn.tell()
                else:
                    conn.stop()
                    h.connections.remove(conn)
            engine = h.engines.pop(symbol, None)
            if engine is not None:  # the seconds it closed go out now
                flush_all({symbol: engine}, h.lanes.offer, h.exchange_ms())
            entry = listing.get(symbol)
            status = entry.status if entry is not None else ""
            if status != self.venue.trading:  # delisted, also while it was being handed over
                await self._delisted(symbol, status)
            elif handover_ms is not None and handover is not None:
                await self._handed_over(symbol, handover_ms)
            for lane in h.lanes:
                if lane.symbol == symbol and lane.pending:
                    h.rotation.wake(lane)
            self.removed.append(symbol)
        log.info("listing: %d symbol%s unsubscribed: %s", len(symbols),
                 "" if len(symbols) == 1 else "s", _shown(symbols))

    async def _delisted(self, symbol: str, status: str) -> None:
        h = self.host
        now = h.wall_ms()
        tracker = h.repair.trackers.get(symbol)
        start = tracker.last_ms if tracker is not None and tracker.last_ms else now
        listing_path = self.venue.listing_request().path
        why = f"status {status}" if status else f"no longer in {listing_path}"
        row: Row = gap_row(symbol, self.venue.trade_stream(symbol), start, now, DELISTED,
                           f"{why}; unsubscribed")
        await h.repair.put_gap(row)
        self.delisted.append(symbol)
        log.warning("%s: delisted (%s): unsubscribed, its rows flushed, one %r gap row", symbol,
                    why, DELISTED)


    async def _handed_over(self, symbol: str, boundary: int) -> None:
        row: Row = gap_row(symbol, self.venue.trade_stream(symbol), boundary, boundary, HANDOVER,
                           f"moved to another shard at {_utc(boundary)}: rows before it are "
                           f"here (shard {self.shard}), rows from it on in the new owner's")
        await self.host.repair.put_gap(row)
        self.handed_over.append((symbol, boundary))
        log.info("%s: handed over at %s; unsubscribed, one %r gap row (not a loss)", symbol,
                 _utc(boundary), HANDOVER)


def timeline_day(now_ms: int, step_ms: int, k: int) -> str:
    """The weights' day at the k-th grid point from ``now_ms`` (the timeline's own rule)."""
    from ..scale.handover import grid_floor

    return day_of(grid_floor(now_ms, step_ms) + k * step_ms - 2 * step_ms)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _shown(symbols: Sequence[str]) -> str:
    return ", ".join(symbols[:10]) + (f" and {len(symbols) - 10} more" if len(symbols) > 10 else "")

