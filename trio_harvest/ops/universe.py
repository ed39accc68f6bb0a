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
follows its own share (``scale/shards.py``). Never stops the harvester: a listing that cannot be
had is logged and asked again at the next poll.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Protocol

import trio

from ..binance.listing import PATH, TRADING
from ..binance.streams import ConnectionPlan, plan_connections, streams_for
from ..errors import ConfigError
from ..kinds import Row
from ..ratelimit import RateLimitedLog
from ..repair.gaps import gap_row
from ..scale.shards import parse_shard, symbols_of
from ..signals.task import flush_all
from ..symbols import follow, is_universe, not_trading, resolve
from .listing import ListingError, fetch_statuses

if TYPE_CHECKING:
    from ..binance.booksync import DiffBooks
    from ..config import Config
    from ..ingest.connection import Connection
    from ..pipeline.lanes import Lanes
    from ..pipeline.rotation import Rotation
    from ..pipeline.router import Router
    from ..repair.coordinator import Repair
    from ..signals.engine import SignalEngine

log = logging.getLogger("trio_harvest.universe")

# A book stream (continuous on a trading symbol) silent this long asks for an early poll: a
# delisting shows as silence first, and health calls a book stream stale after 10 s...
SILENT_S = 3.0
EARLY_GAP_S = 5.0  # ...at most this often (weight 1 each: 12 a minute at most)
DELISTED = "delisted"


# -- start-up ----------------------------------------------------------------------------------


def resolve_universe(config: Config) -> Config:
    """``config`` with ``all`` and patterns resolved to the trading symbols they select (and
    ``universe`` keeping what was asked for); unchanged for a list of names. ``ConfigError``
    (one line, exit 2) when a pattern selects nothing or the listing cannot be had."""
    entries = config.symbols
    if not is_universe(entries):
        return config
    if config.sim:
        from ..sim.listing import initial_listing

        trading: Iterable[str] = initial_listing(entries)
    else:
        try:
            listing = trio.run(fetch_statuses, config.rest_url)
        except ListingError as exc:
            raise ConfigError(
                f"--symbols {','.join(entries).lower()}: cannot read the listing ({exc}); check "
                "the network and --rest-url, or give the symbols by name") from None
        trading = [s for s, status in listing.items() if status == TRADING]
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
    def open_connection(self, plan: ConnectionPlan) -> Connection: ...
    def exchange_ms(self) -> int: ...
    def wall_ms(self) -> int: ...


FetchStatuses = Callable[[str], Awaitable[dict[str, str]]]


class Universe:
    """The follower: ``run`` polls the listing and applies each change."""

    def __init__(self, host: UniverseHost, rest_url: str, *,
                 fetch: FetchStatuses = fetch_statuses) -> None:
        cfg = host.config
        self.host = host
        self.rest_url = rest_url
        self.entries: tuple[str, ...] = cfg.universe
        self.interval = cfg.listing_interval
        self.shard = parse_shard(cfg.shard) if cfg.shard else None
        self._fetch = fetch
        self.polls = 0
        self.added: list[str] = []
        self.removed: list[str] = []
        self.delisted: list[str] = []
        self._last_poll = 0.0
        self._ratelog = RateLimitedLog(log, interval=600.0)

    @property
    def symbols(self) -> set[str]:
        return set(self.host.router.symbols)

    def mine(self, symbols: Sequence[str]) -> Iterable[str]:
        return symbols if self.shard is None else symbols_of(symbols, self.shard)

    async def run(self) -> None:
        self._last_poll = trio.current_time()
        while True:
            due = self._last_poll + self.interval
            while trio.current_time() < due:
                await trio.sleep(min(1.0, max(0.0, due - trio.current_time())))
                if self._silent() and trio.current_time() - self._last_poll >= EARLY_GAP_S:
                    break
            await self.poll()

    def _silent(self) -> bool:
        """Some subscribed book stream has been silent for SILENT_S (trades may pause on a
        quiet symbol; books do not while it trades)."""
        now = trio.current_time()
        last_seen = self.host.router.stats.last_seen
        return any(now - t > SILENT_S and "@aggTrade" not in name
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
        trading = [s for s, status in listing.items() if status == TRADING]
        added, removed = follow(self.symbols, self.entries, trading, self.mine)
        if removed:
            await self.remove(removed, listing)
        if added:
            await self.add(added)

    # -- applying a change ------------------------------------------------------------------

    async def add(self, symbols: Sequence[str]) -> None:
        h, cfg = self.host, self.host.config
        specs = streams_for(tuple(symbols), depth_levels=cfg.depth_levels,
                            depth_speed=cfg.depth_speed, book=cfg.book,
                            book_ticker=cfg.book_ticker)
        for symbol in symbols:
            h.repair.add_symbol(symbol)
            if h.diff_books is not None:
                h.diff_books.add_symbol(symbol)
            engine = h.engines[symbol] = h.make_engine(symbol)
            h.router.add_symbol(symbol, {s.name: s.symbol for s in specs if s.symbol == symbol},
                                engine)
        told: list[Connection] = []
        limit = cfg.streams_per_connection
        for route in sorted({s.route for s in specs}):
            todo = [s for s in specs if s.route == route]
            for conn in h.connections:
                if not todo or conn.plan.route != route or not conn.room(limit):
                    continue
                take, todo = todo[:conn.room(limit)], todo[conn.room(limit):]
                conn.retarget(add=tuple(take))
                told.append(conn)
            for plan in plan_connections(todo, limit):
                h.open_connection(plan)
        for conn in told:
            await conn.tell()
        self.added.extend(symbols)
        log.info("listing: %d new symbol%s subscribed: %s", len(symbols),
                 "" if len(symbols) == 1 else "s", _shown(symbols))

    async def remove(self, symbols: Sequence[str], listing: dict[str, str]) -> None:
        h = self.host
        for symbol in symbols:
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
            status = listing.get(symbol, "")
            if status != TRADING:
                await self._delisted(symbol, status)
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
        why = f"status {status}" if status else f"no longer in {PATH}"
        row: Row = gap_row(symbol, f"{symbol.lower()}@aggTrade", start, now, DELISTED,
                           f"{why}; unsubscribed")
        await h.repair.put_gap(row)
        self.delisted.append(symbol)
        log.warning("%s: delisted (%s): unsubscribed, its rows flushed, one %r gap row", symbol,
                    why, DELISTED)


def _shown(symbols: Sequence[str]) -> str:
    return ", ".join(symbols[:10]) + (f" and {len(symbols) - 10} more" if len(symbols) > 10 else "")

