"""The harvester: builds every part from a ``Config`` and supervises them in one root nursery.

Owns the wiring (lanes, rotation, writer, router, connections, optional in-process simulator)
and the stop sequence: stop ingest first, then a shielded, deadline-bounded final flush of every
lane; what cannot be written in time goes to the dead letter; a second signal cuts the grace
short. Never drops buffered rows on a stop, and never stops on its own because something looks
unhealthy (old fault 5): only a signal, ``--duration`` or an internal crash ends a run.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from . import __version__, venues
from .channels import stream_plan
from .config import Config
from .ingest import tls
from .ingest.connection import ConnectFn, Connection, make_connections, run_ingest, websocket_connector
from .ingest.connectpace import AttemptWindow, paced, window_for
from .ingest.openinterest import OpenInterestPoller
from .ingest.restclient import FetchFn, http_fetch
from .journal import wiring as journal_wiring
from .kinds import (
    CVD,
    DERIVATIVES,
    OFI,
    ORDERBOOK,
    PREVIEW_KINDS,
    PRICES,
    QUOTES,
    Row,
    schema_for,
)
from .ops.listing import ListingError, check_listing, fetch_listing
from .ops.operations import Operations
from .ops.startup import recover_command
from .ops.stopclock import StopClock
from .ops.universe import Universe
from .pipeline.lanes import Lanes
from .pipeline.rotation import FIRST_FLUSH_S, Rotation
from .pipeline.rotationtypes import DeadLetterFn, SaveFn
from .pipeline.router import Router
from .pipeline.tap import Tap
from .repair.booksync import DiffBooks
from .repair.coordinator import Repair
from .scale.handover import DayWeights
from .scale.shards import parse_shard
from .signals.engine import SignalEngine
from .signals.task import flush_all, run_features
from .startup import startup_scan
from .storage.autocompact import AutoCompactStats, auto_compactor, run_auto_compact
from .storage.backends import data_location, data_store
from .storage.compact import Compactor
from .storage.store import LocalStore
from .storage.writer import Writer
from .venues.base import Plan, derivatives_of

if TYPE_CHECKING:
    from .journal.replay import ReplayStats

log = logging.getLogger("trio_harvest.app")

WallMs = Callable[[], int]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class StopState:
    reason: str = ""
    signals: int = 0
    requested: trio.Event = field(default_factory=trio.Event)


class Harvester:
    """Everything one run owns. Build it, then ``await harvester.run()``."""

    # quotes' and depth messages' derived rows computed in batches from their lanes (with quotes
    # subscribed; depth with partial books); False: one by one as they come (the same rows)
    batched_signals = True

    def __init__(
        self,
        config: Config,
        *,
        connect: ConnectFn | None = None,
        save: SaveFn | None = None,
        dead_letter: DeadLetterFn | None = None,
        wall_clock_ms: WallMs = wall_ms,
        handle_signals: bool = False,
        metadata_of: Callable[[str], dict[str, str]] | None = None,
        fetch: FetchFn | None = None,
        shard_weights: DayWeights | None = None,
        shard_namespace: str = "",
        sweep_temps: bool = True,
    ) -> None:
        self.config = config
        # False: a run of several venues sweeps the dataset's stale temp files once, before any
        # venue writes (a sweep removes this process's own temp files too)
        self.sweep_temps = sweep_temps
        self.compact_symbols: tuple[str, ...] = config.symbols  # what background compaction owns
        self.shard_weights = shard_weights  # by UTC day, for the universe follower of a shard
        self.shard_namespace = shard_namespace  # several venues: shards split (venue, symbol)
        self.wall_ms = wall_clock_ms
        self.handle_signals = handle_signals
        self.stop_state = StopState()
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.data_store = data_store(config)  # local disk, or s3://
        self.deadletter_store = LocalStore(config.deadletter_path)
        self.writer = Writer(
            self.data_store,
            self.deadletter_store,
            lambda kind: schema_for(kind, config.depth_levels),
            metadata_of or self._metadata_of,
            max_stuck=config.max_stuck_writes,
            wall_ms=wall_clock_ms,
        )
        self.ops = Operations(self)  # health, auto-recovery, metrics, HTTP
        self.lanes = Lanes(dict(config.watermarks), wake=lambda lane: None,
                           schema_of=lambda kind: schema_for(kind, config.depth_levels),
                           depth_levels=config.depth_levels,
                           venue=config.venue)  # its partitions and dead letter: venue=<venue>
        self.rotation = Rotation(
            self.lanes,
            save or self.writer.stage,
            dead_letter or self.writer.dead_letter,
            rotate_sec=config.rotate_sec,
            write_timeout=config.write_timeout,
            deadletter_timeout=config.deadletter_timeout,
            save_concurrency=config.save_concurrency,
            min_file_rows=config.min_file_rows,
            max_file_age=config.max_file_age,
            max_buffered_bytes=int(config.max_buffered_mb * 1024 * 1024),
            first_flush=FIRST_FLUSH_S,
            observe=self.ops.observe_write,
            save_many=self.writer.stage_many if save is None and self.writer.batches_files
            else None,
        )
        self.lanes.set_wake(self.rotation.wake)
        self.venue = venues.get(config.venue)  # the venue adapter: everything its wire says
        self.router = Router(
            self.lanes,
            config.symbols,
            depth_levels=config.depth_levels,
            book=config.book,
            wall_ms=wall_clock_ms,
            now=trio.current_time,
            venue=self.venue,
        )
        # one signal engine per symbol, fed by the router, emitting preview rows
        self.engines = {s: self.make_engine(s) for s in config.symbols}
        self.router.hooks = dict(self.engines)
        self._features_scope = trio.CancelScope()
        self._compaction_scope = trio.CancelScope()  # background compaction ends at a stop
        self._compactor: Compactor | None = None
        self._froze = False  # the stop froze the heap for the cyclic collector
        self.diff_books: DiffBooks | None = None  # --book diff: local books (booksync.py)
        if config.book == "diff":
            self.diff_books = DiffBooks(config.symbols, levels=config.depth_levels,
                                        depth_speed=config.depth_speed, rest_url=config.rest_url,
                                        put_gap=self.put_gap, venue=self.venue,
                                        updates_of=self.router.book_updates_lane)
            self.router.diff_books = self.diff_books
        # dedup + agg-id continuity in the router, gaps, backfill, the 24 h handover.
        # Backfill speaks HTTP to rest_url unless ``fetch`` is given; with a fake ``connect`` and
        # no ``fetch`` it is off (gaps stay unfilled): its REST would not match the fake stream.
        tls.trust(config.ca_file)  # every wss:// and https:// client of the process trusts it
        real_connect = websocket_connector(config.max_message_bytes, transport=config.transport)
        opener = connect or real_connect
        # the venue's per-IP limit on new connections, this process's part of it (the shards of
        # ``--workers`` share the host's IP): every open, reconnect and handover waits its turn
        self.connect_window: AttemptWindow | None = None
        if self.venue.connect_limit is not None:
            shards = parse_shard(config.shard).count if config.shard else 1
            self.connect_window = window_for(self.venue.connect_limit, shards)
            opener = paced(opener, self.connect_window)
        self.repair = Repair(config, self.lanes, opener,
                             wall_ms=wall_clock_ms, fetch=fetch, use_http=connect is None,
                             venue=self.venue)
        self.router.gate = self.repair
        self.rotation.on_lost = self.repair.on_lost  # every loss leaves a record
        self.repair.losses.writes_done = lambda: sum(
            k.files_written for k in self.rotation.stats.kinds.values())
        self.repair.last_seen = self.router.stats.last_seen
        self._connect = self.repair.connector.connect
        self._use_http = connect is None  # the real network (or the simulator): check listings
        self.connections: list[Connection] = []
        self._base_url = config.ws_url
        self._ingest_nursery: trio.Nursery | None = None
        # --symbols all or patterns: the listing is followed while running (ops/universe.py)
        self.universe: Universe | None = None
        self.simulator: Any = None
        self._grace_scope: trio.CancelScope | None = None
        self._backfilling = False  # in the backfill phase of a stop
        self._ingest_scope = trio.CancelScope()
        self.channels = config.harvested  # what is harvested (channels.py)
        self.open_interest: OpenInterestPoller | None = None
        self._replayed: ReplayStats | None = None  # what a restart after a crash replayed
        self.stale_temps_removed = 0
        self.compaction = AutoCompactStats()  # auto_compact
        self.stop_clock = StopClock()
        self.rotation.on_stop_phase = self.stop_clock.mark
        self.resume_unreadable: dict[str, list[str]] = {}  # symbol -> files resume could not read
        # the write-ahead journal (checkpointed by the lanes) and the disk probe
        self.journal, self.replayer, self.probe = journal_wiring.attach(
            config, self.lanes, self.rotation, self.router, self.repair, lambda: self.connections,
            None if wall_clock_ms is wall_ms else (lambda: wall_clock_ms() * 1_000_000),
            probe_data_dir=save is None, store=self.data_store)

    def make_engine(self, symbol: str) -> SignalEngine:
        """A symbol's signal engine, emitting preview rows into its lanes."""
        cfg = self.config
        ofi = self.lanes.get(OFI, symbol)
        engine = SignalEngine(symbol, cfg.signals, cfg.depth_levels, self.lanes.offer,
                              book_ticker=cfg.book_ticker and QUOTES in cfg.harvested,
                              emit_ofi=ofi.offer_ofi,
                              emit_cvd=self.lanes.get(CVD, symbol).offer_cvd)
        if self.batched_signals:  # trades' CVD computed in batches from the prices lane
            tap = Tap("_trade", engine.flush_trades)
            self.lanes.get(PRICES, symbol).read_rows(tap)
            cvd = self.lanes.get(CVD, symbol)
            engine.read_trades(tap, cvd.offer_cvd_records, cvd.pack_cvd)
        if self.batched_signals and engine.book_ticker:
            # quotes and depth messages computed in batches from their lanes (signals/batches.py)
            tap = Tap("_quote", engine.flush_quotes)
            self.lanes.get(QUOTES, symbol).read_rows(tap)
            engine.read_quotes(tap, ofi.offer_ofi_records, ofi.pack_ofi)
            if cfg.book == "partial":
                tap = Tap("_depth", engine.flush_depth)
                self.lanes.get(ORDERBOOK, symbol).read_rows(tap)
                engine.read_depth(tap, ofi.offer_ofi_records, ofi.pack_ofi)
        return engine

    def open_connection(self, plan: Plan) -> Connection:
        """A connection added while running (new listings), started beside the others."""
        cfg = self.config
        conn = make_connections([plan], self._base_url, self._connect, self.router.feed,
                                stall_timeout=cfg.stall_timeout,
                                backoff_initial=cfg.backoff_initial,
                                backoff_max=cfg.backoff_max, on_disconnect=self._on_disconnect,
                                venue=self.venue)[0]
        conn.journal = self.journal
        conn.index = max((c.index for c in self.connections), default=-1) + 1
        self.connections.append(conn)
        if self._ingest_nursery is not None:
            self._ingest_nursery.start_soon(conn.run)
        return conn

    def _metadata_of(self, kind: str) -> dict[str, str]:
        """Parquet key-value metadata: derived kinds carry their parameters and OFI source."""
        if kind in PREVIEW_KINDS and self.engines:
            return next(iter(self.engines.values())).metadata(kind)
        return {"trio_harvest.version": __version__, "trio_harvest.kind": kind}

    async def _read_listing(self, rest_url: str) -> None:
        """The venue's listing, read once before any frame is decoded: a venue that needs it
        to decode (contract sizes) learns it here. Unreachable: one error, the run goes on."""
        try:
            await fetch_listing(rest_url, http_fetch, self.venue)
        except ListingError as exc:
            log.error("%s: the listing could not be read (%s); sizes of instruments it would "
                      "have described stay in the venue's own units", self.venue.name, exc)

    async def _replay_journal(self) -> None:
        """Restart: what an earlier run journaled but had not made durable goes in first."""
        if self.journal is not None:
            self._replayed = await journal_wiring.restart(self.journal, self.replayer,
                                                          self.repair, self.config)

    # -- running -------------------------------------------------------------------------------

    def stop_from_thread(self, reason: str) -> None:
        """``request_stop`` from a thread other than trio's (the lease renewer); a no-op before
        the run starts or after it ended."""
        token = self._trio_token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self.request_stop, reason, trio_token=token)

    def request_stop(self, reason: str) -> None:
        """Begin a clean stop (idempotent). A second request during the final flush cuts the
        grace short: everything still buffered goes straight to the dead letter."""
        st = self.stop_state
        st.signals += 1
        if not st.requested.is_set():
            st.reason = reason
            st.requested.set()
            return
        if st.signals == 2:  # one line, however many more follow
            log.warning("second stop request (%s): dead-lettering what is not yet written "
                        "(recover it later with `%s`)", reason,
                        recover_command(self.config.data_dir, self.config.deadletter_path))
        if self._grace_scope is not None:
            self._grace_scope.cancel()
        elif self._backfilling:  # the backfill phase gives up at once too
            log.warning("second stop request (%s): backfill gives up; dumping what is left to "
                        "the dead letter", reason)
            self.repair.backfill.hurry()

    def bind_clock(self) -> None:
        """Inside trio: the router reads trio time for every frame from the run's clock itself
        (one call instead of ``trio.current_time``'s three)."""
        self.router.now = trio.lowlevel.current_clock().current_time

    async def run(self, *, task_status: trio.TaskStatus[Harvester] = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        self._trio_token = trio.lowlevel.current_trio_token()
        self.bind_clock()
        # one start-up thread: sweep temp files left by a crash, read where each symbol left off
        self.stale_temps_removed, seeds = await trio.to_thread.run_sync(
            self._startup_scan, abandon_on_cancel=True)
        if self.journal is not None:
            await trio.to_thread.run_sync(self.journal.open, abandon_on_cancel=True)
        await self.ops.bind()  # a port in use is a ConfigError here, before anything starts
        try:
            async with trio.open_nursery() as root:
                base_url = cfg.ws_url
                if cfg.sim:
                    base_url = await self._start_simulator(root)
                self._base_url = base_url
                await root.start(self.rotation.run)
                if self.journal is not None:
                    await root.start(self.journal.run)
                await root.start(self.probe.run_task)
                if self._use_http and self.venue.needs_listing:  # before any frame is decoded
                    await self._read_listing(self.simulator.rest_url if cfg.sim
                                             else cfg.rest_url)
                await self._replay_journal()  # before connecting
                self._resume_continuity(seeds)
                await root.start(self.repair.run, self.simulator.rest_url if cfg.sim else cfg.rest_url)
                if self.diff_books is not None:
                    await self._start_diff_books(root)
                specs = stream_plan(self.venue, cfg.symbols, self.channels,
                                    depth_levels=cfg.depth_levels, depth_speed=cfg.depth_speed,
                                    book=cfg.book, book_ticker=cfg.book_ticker)
                self.router.streams = {spec.name: spec.symbol for spec in specs}
                plans = self.venue.plan_connections(specs, cfg.streams_per_connection)
                self.connections = make_connections(
                    plans,
                    base_url,
                    self._connect,
                    self.router.feed,
                    stall_timeout=cfg.stall_timeout,
                    backoff_initial=cfg.backoff_initial,
                    backoff_max=cfg.backoff_max,
                    on_disconnect=self._on_disconnect,
                    venue=self.venue,
                )
                for index, conn in enumerate(self.connections):  # journal every frame
                    conn.journal, conn.index = self.journal, index
                if cfg.universe:
                    self.universe = Universe(self, self.simulator.rest_url if cfg.sim
                                             else cfg.rest_url, weights=self.shard_weights,
                                             venue=self.venue,
                                             namespace=self.shard_namespace)
                self._make_open_interest()
                root.start_soon(self._run_ingest)
                if self._use_http:  # a symbol the venue does not list: one warning
                    root.start_soon(check_listing, self.simulator.rest_url if cfg.sim
                                    else cfg.rest_url, cfg.symbols, http_fetch, self.venue)
                root.start_soon(self._run_features)
                if cfg.auto_compact:
                    root.start_soon(self._run_compaction)
                if self.handle_signals:
                    root.start_soon(self._watch_signals)
                if cfg.duration is not None:
                    root.start_soon(self._stop_after, cfg.duration)
                self.started_at = trio.current_time()
                await root.start(self.ops.run)
                log.info(
                    "harvesting %d symbol%s over %d connection%s from %s into %s",
                    len(cfg.symbols), "" if len(cfg.symbols) == 1 else "s",
                    len(self.connections), "" if len(self.connections) == 1 else "s",
                    base_url, data_location(cfg),
                )
                task_status.started(self)
                await self.stop_state.requested.wait()
                clock = self.stop_clock
                clock.start()
                # What the run built up (after weeks, a large heap) is left out of the cyclic
                # collector's passes until the stop is over: the flush allocates a lot, and a
                # full collection over the whole heap in the middle of the grace costs time.
                gc.freeze()
                self._froze = True
                log.info("stopping (%s): ingest first, then the final flush", self.stop_state.reason)
                self._ingest_scope.cancel()
                clock.note("compaction running", self.compaction.running)
                self._halt_compaction()
                await self.router.release_held()  # frames the time guard still held
                clock.mark("ingest")
                self._backfilling = True
                try:
                    await self.repair.finish(min(5.0, cfg.shutdown_grace / 2))  # backfill, gaps
                    if self.open_interest is not None:  # its outages still open: gap rows
                        await self.open_interest.finish()
                finally:
                    self._backfilling = False
                clock.mark("backfill")
                self._features_scope.cancel()
                flush_all(self.engines, self.lanes.offer, self._final_features_ms())  # every closed second
                clock.mark("features")
                clock.note("rows buffered", self.lanes.total_pending())
                clock.note("lanes with rows", sum(1 for lane in self.lanes if lane.pending))
                await self._final_flush()
                await self._close_journal()
                clock.mark("journal")
                log.info("%s", clock.summary())
                root.cancel_scope.cancel()
        finally:
            if self._froze:  # what the stop froze goes back to the collector
                self._froze = False
                gc.unfreeze()
            self.stopped_at = trio.current_time()
            self.ops.close()
            # An internal crash tore the nursery down: whatever is still in a lane goes to the
            # dead letter (shielded, bounded), so even a crash loses nothing buffered.
            if self.lanes.total_pending():
                # The whole teardown, from the first cancelled write, ends within
                # shutdown_grace + deadletter_timeout + 1 s.
                now = trio.current_time()
                began = self.rotation.teardown_at if self.rotation.teardown_at is not None else now
                bound = began + cfg.shutdown_grace + cfg.deadletter_timeout + 1.0
                with trio.CancelScope(shield=True) as dump:
                    dump.deadline = bound
                    await self.rotation.abort(min(now + cfg.deadletter_timeout, bound - 1.0))

    def _startup_scan(self) -> tuple[int, dict[str, tuple[int, int]]]:
        """Blocking; runs in a worker thread before anything starts."""
        return startup_scan(self.config, self.data_store, self.deadletter_store,
                            self.resume_unreadable, sweep=self.sweep_temps)

    def _resume_continuity(self, seeds: dict[str, tuple[int, int]]) -> None:
        """After a restart, each symbol continues from its last written agg_id: the trades
        missed while the harvester was down become a gap that backfill fills (or records as
        unfilled)."""
        self.repair.resume_unreadable = dict(self.resume_unreadable)
        for symbol, (agg_id, ts_ms) in seeds.items():
            self.repair.trackers[symbol].resume(agg_id, ts_ms)
            log.info("%s: continuing after agg_id %d, already on disk", symbol, agg_id)

    def exchange_ms(self) -> int:
        """The exchange's clock as seen from here: the wall clock less the measured receipt lag
        (latency plus any skew between the clocks). Seconds of the feature table close on this
        clock, so a skewed host clock neither drops late trades nor emits seconds too early."""
        lag = self.repair.stats.lag_ms
        return self.wall_ms() - (int(lag) if lag is not None else 0)

    async def _run_features(self) -> None:
        with self._features_scope:
            await run_features(self.engines, self.lanes.offer, now_ms=self._features_ms)

    def _features_ms(self) -> int:
        """The features clock, journaled: replaying an archive closes seconds alike."""
        now = self.exchange_ms()
        if self.journal is not None:
            self.journal.features_tick(now, True)
        return now

    def _final_features_ms(self) -> int:
        now = self.exchange_ms()
        if self.journal is not None:
            self.journal.features_tick(now, False)
        return now

    async def _run_compaction(self) -> None:
        cfg = self.config

        def make() -> Compactor:
            self._compactor = auto_compactor(self.data_store, cfg.deadletter_path,
                                             older_than=cfg.compact_older_than,
                                             target_rows=cfg.compact_target_rows,
                                             symbols=self.compact_symbols,
                                             delete_after=cfg.compact_delete_after)
            return self._compactor

        with self._compaction_scope:
            await run_auto_compact(self.data_store, make, self.compaction,
                                   every=cfg.compact_interval)

    def _halt_compaction(self) -> None:
        """A background round under way ends after its current merge (crash-safe either
        way), so it does not take CPU from the final flush; no round starts after it."""
        self._compaction_scope.cancel()
        if self._compactor is not None:
            self._compactor.halt()

    def _make_open_interest(self) -> None:
        """With ``derivatives`` on a futures venue whose open interest is not a stream: the
        open-interest poll over REST (it runs with ingest, from the same weight budget as
        backfill); none where the venue's streams carry it (OKX's channel, Bybit's tickers)."""
        side = derivatives_of(self.venue)
        if side is None or DERIVATIVES not in self.channels or not self._use_http \
                or not side.polls_open_interest:
            return
        self.open_interest = OpenInterestPoller(
            side, lambda: self.router.symbols, self.router.put_state, self.repair.budget,
            self.wall_ms, interval=self.config.open_interest_interval, journal=self.journal,
            put_gap=self.put_gap)
        replayed = self._replayed
        if replayed is not None:  # after a crash: the poll's hole across it is recorded
            self.open_interest.resume(replayed.polled_ms, replayed.first_ms)

    async def _poll_open_interest(self, poller: OpenInterestPoller) -> None:
        rest_url = self.simulator.rest_url if self.config.sim else self.config.rest_url
        async with http_fetch(rest_url) as fetch:
            await poller.run(fetch)

    async def _run_ingest(self) -> None:
        with self._ingest_scope:
            async with trio.open_nursery() as nursery:
                if self.universe is not None:  # stops with ingest, before the final flush
                    # a shard's first poll windows the hand-overs it must make before any frame
                    # is routed; connections it opens meanwhile start with the others below
                    await nursery.start(self.universe.run)
                self._ingest_nursery = nursery
                if self.open_interest is not None:  # so does the open-interest poll
                    nursery.start_soon(self._poll_open_interest, self.open_interest)
                await run_ingest(self.connections)

    async def _final_flush(self) -> None:
        cfg = self.config
        with trio.CancelScope(shield=True) as grace:
            grace.deadline = trio.current_time() + cfg.shutdown_grace
            self._grace_scope = grace
            if self.stop_state.signals < 2:
                await self.rotation.flush_everything()
        self._grace_scope = None
        if grace.cancelled_caught or self.lanes.total_pending() or self.rotation.busy:
            if self.stop_state.signals < 2:  # else request_stop has said it
                log.warning("the final flush did not finish within %gs (shutdown_grace); "
                            "dead-lettering the rest", cfg.shutdown_grace)
            self.stop_clock.mark("grace ran out")
            with trio.CancelScope(shield=True) as dump:
                dump.deadline = trio.current_time() + cfg.deadletter_timeout + 1.0
                await self.rotation.abort()
            self.stop_clock.mark("dead letter")

    async def _close_journal(self) -> None:
        if self.journal is not None:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + 5.0
                await self.journal.close()

    async def _stop_after(self, seconds: float) -> None:
        """``--duration``: a stop once ``seconds`` have passed, unless one was requested before
        (a signal; in a run of several venues, another venue's unit ending as its own duration
        ran out a moment sooner). Never a second request: that would cut the final flush short
        and dead-letter what a clean stop writes."""
        await trio.sleep(seconds)
        if not self.stop_state.requested.is_set():
            self.request_stop(f"--duration {seconds:g}s reached")

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self.request_stop(signal.Signals(signum).name)

    async def _on_disconnect(self, plan: Any, error: str) -> None:
        await self.repair.on_disconnect(plan, error)  # a gap per stream, closed when it resumes
        now = self.wall_ms()
        for symbol in {spec.symbol for spec in plan.streams}:
            if symbol in self.engines:
                self.engines[symbol].on_gap(now, error)  # no OFI across it; flags the second

    async def put_gap(self, row: Row) -> None:
        await self.repair.put_gap(row)  # counted for health, then into the gaps lane

    async def _start_diff_books(self, nursery: trio.Nursery) -> None:
        """The snapshot fetcher of ``--book diff`` (with ``--sim``: the simulator's REST)."""
        assert self.diff_books is not None
        if self.config.sim:
            self.diff_books.rest_url = self.simulator.rest_url
        self.diff_books.shared_budget = self.repair.budget  # one REST weight cap for every caller
        self.diff_books.resubscribe = self._resubscribe
        await nursery.start(self.diff_books.run)

    async def _resubscribe(self, stream: str) -> bool:
        """Subscribe one stream again on the connection that carries it (a venue whose books
        resync on the stream); False when none carries it now."""
        for conn in self.connections:
            if any(s.name == stream for s in conn.plan.streams):
                return await conn.resubscribe([stream])
        return False

    async def _start_simulator(self, nursery: trio.Nursery) -> str:
        # imported here: a run against a real venue never loads the simulator's modules
        from .sim.inprocess import start_simulator

        self.simulator, url = await start_simulator(nursery, self.config, self.wall_ms,
                                                    venue=self.config.venue)
        return url
