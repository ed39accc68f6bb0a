"""Adversity, wired together: the router's gate (deduplication, agg-id continuity, resumed
streams), gaps as data for disconnects and stalls, REST backfill and the connection handover.

Owns the per-run state of that wiring: one ``AggIdTracker`` per symbol and one ``BookTracker``
per book stream (``continuity.py``), the streams interrupted by a disconnect and waiting for
their first frame (``resuming``), the backfill task (``backfill.py``) and the handover connector
(``handover.py``), and the counters health and the summary read (``RepairStats``). In front of
each tracker an outlier guard (``outliers.py``) holds a jumping id until the next ids confirm or
refute it; the rows it holds are kept here, and confirmed ones wait in ``released`` for the
router. Rows lost on a full disk are recorded and refilled through ``losses.py``. The gate's
methods are synchronous and O(1) per frame; gap rows go into the authoritative ``gaps`` lane
(``put_nowait``; if it is momentarily full they wait in a short list that a task drains).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from .. import venues
from ..gaps import disconnect_reason, gap_row, parse_agg_detail
from ..ingest.connection import ConnectFn
from ..ingest.handover import HandoverConnector
from ..ingest.restclient import FetchFn, WeightBudget, http_fetch
from ..ingest.subscribe import subscribing
from ..kinds import GAPS, PRICES, Row
from ..pipeline.lanes import Lanes, Sink
from ..ratelimit import RateLimitedLog
from ..venues.base import CONTIGUOUS, SPANS, Plan, Trade, Venue
from . import report
from .backfill import Backfill
from .continuity import BREAK, DUPLICATE, IMPLAUSIBLE, AggIdTracker, BookTracker, Break
from .losses import Losses
from .outliers import (
    BOOK_MIN_LIMIT,
    BOOK_STEP_FACTOR,
    HELD_DUPLICATE,
    HOLD,
    RELEASE,
    BookIdGuard,
    TradeIdGuard,
)
from .sweep import Sweeper

log = logging.getLogger("trio_harvest.repair")

LAG_WEIGHT = 0.02  # EWMA weight of one trade's receipt lag (recv_ms - E)
LAG_STEP_MS = 1000.0  # a sample is clamped to the estimate ± this: one outlier cannot drag it


@dataclass(slots=True)
class Interruption:
    symbol: str
    start_ms: int
    reason: str
    error: str
    sessions: int = 1  # ended sessions (failed attempts) before the stream resumed


@dataclass
class RepairStats:
    trade_duplicates: int = 0  # trades dropped: the trade id is already in prices
    trade_implausible: int = 0  # trades dropped: an id jump no exchange makes
    trade_quarantined: int = 0  # trades held for an id jump that the next ones refuted
    book_duplicates: int = 0  # book messages dropped: update id not newer
    book_quarantined: int = 0  # book messages held for an id jump that the next ones refuted
    quote_duplicates: int = 0  # of ``book_duplicates``: on a quote stream (kind ``quotes``)
    quote_quarantined: int = 0  # of ``book_quarantined``: on a quote stream
    gaps: dict[str, int] = field(default_factory=dict)  # gap rows by reason
    last_unfilled_at: float | None = None  # trio time
    lag_ms: float | None = None  # mean recv_ms - E over recent trades (latency + clock skew)


class RepairSettings(Protocol):
    """The few settings repair reads (``Config`` has them all)."""

    @property
    def symbols(self) -> tuple[str, ...]: ...
    @property
    def backfill(self) -> bool: ...
    @property
    def backfill_weight(self) -> int: ...
    @property
    def backfill_delay(self) -> float: ...
    @property
    def ws_lifetime(self) -> float: ...
    @property
    def handover_lead(self) -> float: ...
    @property
    def handover_overlap(self) -> float: ...


class Repair:
    def __init__(
        self,
        config: RepairSettings,
        lanes: Lanes,
        connect: ConnectFn,
        *,
        wall_ms: Callable[[], int],
        fetch: FetchFn | None = None,
        use_http: bool = True,
        venue: Venue | None = None,
    ) -> None:
        self.venue = venue = venue or venues.default()
        self.config = config
        self.lanes = lanes
        self.wall_ms = wall_ms
        self.stats = RepairStats()
        self._ratelog = RateLimitedLog(log, interval=60.0)
        self.trackers = {s: AggIdTracker() for s in config.symbols}
        self.books: dict[str, BookTracker] = {}  # one per subscribed book stream (router checks)
        # a lone outlier id is held until the next ids confirm or refute it
        self.trade_guards = {s: TradeIdGuard(t) for s, t in self.trackers.items()}
        self.book_guards: dict[str, BookIdGuard] = {}
        self._held_trades: dict[str, dict[int, Row]] = {s: {} for s in config.symbols}
        self._held_books: dict[str, dict[int, Row]] = {}
        self.released: list[Row] = []  # confirmed held rows: the router puts them, then the frame
        # journal checkpoint: the seq of the frame of each held row, and the oldest of those in
        # ``released`` (the router makes their lane hold it), so no segment goes before them
        self._held_at: dict[tuple[str, int], tuple[int, int]] = {}  # -> (seq, wall ms)
        self.released_at = -1
        self.resume_unreadable: dict[str, list[str]] = {}  # symbols not resumed (the app sets it)
        self.losses = Losses(self._reopen)  # written as gaps once writes succeed
        self.resuming: dict[str, Interruption] = {}
        self.last_seen: Mapping[str, float] = {}  # the router's (stream -> trio time)
        self._gap_backlog: list[Row] = []
        self.journal_row: Callable[[str, Row], None] | None = None  # off-stream rows
        self._backlog_lock = trio.Lock()
        self._prices: dict[str, Sink] = {s: lanes.get(PRICES, s) for s in config.symbols}
        self._use_http = use_http and config.backfill and fetch is None
        self.budget = WeightBudget(config.backfill_weight, header=venue.weight_header)
        self.backfill = Backfill(
            self.trackers, self._put_trade, self.put_gap,
            fetch if config.backfill else None, self.budget,
            wall_ms=wall_ms, delay=config.backfill_delay, venue=venue,
        )
        self._recent_ids: Any = None  # the venue's trade id window (``recent_ids``), if any
        self._recent: dict[str, Any] = {}  # symbol -> its window
        if venue.trade_continuity == SPANS:  # each trade covers first_id..agg_id
            self.trade = self._span_trade  # type: ignore[method-assign]
        elif venue.trade_continuity != CONTIGUOUS:  # ids prove nothing: admit every trade ...
            self._recent_ids = getattr(venue, "recent_ids", None)  # ... once, where the venue
            # keeps a window of its ids
            self.trade = (  # type: ignore[method-assign]
                self._unseen_trade if self._recent_ids is not None else self._any_trade)
        # a venue whose ids prove nothing but whose REST serves its latest trades: swept
        self.sweeper: Sweeper | None = None
        if (self._recent_ids is not None and config.backfill
                and getattr(venue, "fill", None) is not None):
            self.sweeper = Sweeper(config.symbols, venue, admit=self.admit_recent,
                                   put_trade=self._put_trade, put_gap=self.put_gap,
                                   budget=self.budget, wall_ms=wall_ms)
            self.sweeper.fetch = fetch
        self.connector = HandoverConnector(
            subscribing(connect, venue), lifetime=config.ws_lifetime, lead=config.handover_lead,
            overlap=config.handover_overlap, url_after=venue.url_after,
        )

    # -- the router's gate (synchronous, per frame) --------------------------------------------

    def _any_trade(self, t: Trade, recv_ms: int) -> bool:
        """The gate of a venue whose trade ids prove nothing: every trade is admitted."""
        return True

    def _unseen_trade(self, t: Trade, recv_ms: int) -> bool:
        """The gate of a venue whose trade ids prove nothing but name a trade: one whose id is
        among the symbol's recent ones (the venue's ``recent_ids`` window) is a duplicate."""
        ids = self._recent.get(t.symbol)
        if ids is None:
            ids = self._recent[t.symbol] = self._recent_ids()
        if ids.admit(t.trade_id):  # type: ignore[attr-defined]  # the venue's records have it
            return True
        self.stats.trade_duplicates += 1
        return False

    def admit_recent(self, symbol: str, trade_id: str) -> bool:
        """A trade fetched from REST: True when its id is not among the symbol's recent ones
        (then it is remembered); every trade when the venue keeps no window."""
        if not self._recent_ids:
            return True
        ids = self._recent.get(symbol)
        if ids is None:
            ids = self._recent[symbol] = self._recent_ids()
        admitted: bool = ids.admit(trade_id)
        return admitted

    def _span_trade(self, t: Trade, recv_ms: int) -> bool:
        """The gate of a venue whose trades each cover the ids ``first_id..agg_id``: the next
        trade starts at the previous ``agg_id + 1``. The tracker judges a trade by its first
        id (a jump opens a break for the ids before it, backfilled like any other), then takes
        the ids it covers as seen. Lone outliers are not held here (an implausible jump is
        still refused)."""
        tracker = self.trackers[t.symbol]
        last = tracker.last_id
        first = t.first_id
        if last is not None and first == last + 1:  # the hot path
            tracker.last_id = t.agg_id
            tracker.last_ms = t.trade_ms
            return True
        if not self._admit_trade(t.symbol, first, t.trade_ms, t.event_ms, recv_ms):
            return False
        if t.agg_id > first:
            if tracker.last_id == first:
                tracker.last_id = t.agg_id
            else:  # a late trade inside a missing range: what it covers is not missing
                tracker.close(first + 1, t.agg_id)
        return True

    def trade(self, t: Trade, recv_ms: int) -> bool:
        """False for a trade already in ``prices`` (or held, or quarantined). A jump in ids is
        held until the next trade confirms it (``outliers.py``); confirmed rows wait in
        ``released`` for the router, before this trade. A break queues a backfill."""
        symbol = t.symbol
        guard = self.trade_guards[symbol]
        tracker = guard.tracker
        last = tracker.last_id
        agg_id = t.agg_id
        if last is not None and agg_id == last + 1 and not guard.held:  # the hot path
            tracker.last_id = agg_id  # (what AggIdTracker.admit does for the next id)
            tracker.last_ms = t.trade_ms
            stats = self.stats
            lag = stats.lag_ms
            d: float = recv_ms - t.event_ms
            if lag is None:
                stats.lag_ms = d
            else:  # one odd sample moves the estimate by a bounded step, never far
                if d < lag - LAG_STEP_MS:
                    d = lag - LAG_STEP_MS
                elif d > lag + LAG_STEP_MS:
                    d = lag + LAG_STEP_MS
                stats.lag_ms = lag + (d - lag) * LAG_WEIGHT
            return True
        offer = guard.offer(t.agg_id)
        if offer:
            if offer == HOLD:
                self._held_trades[symbol][t.agg_id] = self.venue.trade_row(t, recv_ms)
                self._held_at[(symbol, t.agg_id)] = (self.lanes.cursor[0], recv_ms)
                self._quarantine_trades(symbol)
                return False
            if offer == HELD_DUPLICATE:
                self.stats.trade_duplicates += 1
                return False
            if offer == RELEASE:
                held = self._held_trades[symbol]
                for agg_id in guard.released:
                    row = held.pop(agg_id)
                    at = self._held_at.pop((symbol, agg_id), (-1, 0))[0]
                    if self._admit_trade(symbol, agg_id, row[0], row[1], row[2]):
                        self._release(row, at)
                guard.released.clear()
        if guard.quarantined:
            self._quarantine_trades(symbol)
        return self._admit_trade(symbol, t.agg_id, t.trade_ms, t.event_ms, recv_ms)

    def _admit_trade(self, symbol: str, agg_id: int, ts_ms: int, event_ms: int,
                     recv_ms: int) -> bool:
        tracker = self.trackers[symbol]
        verdict = tracker.admit(agg_id, ts_ms)
        if verdict == DUPLICATE:
            self.stats.trade_duplicates += 1
            return False
        if verdict == IMPLAUSIBLE:
            self.stats.trade_implausible += 1
            self._ratelog.log(logging.WARNING, "implausible agg_id",
                              "%s: ignored a trade with an implausible agg_id %d (last %s)",
                              symbol, agg_id, tracker.last_id)
            return False
        if verdict == BREAK:
            assert tracker.last_break is not None
            self.backfill.request(symbol, tracker.last_break)
        lag = self.stats.lag_ms
        d: float = recv_ms - event_ms
        if lag is not None:  # one odd sample moves the estimate by a bounded step, never far
            d = min(max(d, lag - LAG_STEP_MS), lag + LAG_STEP_MS)
        self.stats.lag_ms = d if lag is None else lag + (d - lag) * LAG_WEIGHT
        return True

    def _quarantine_trades(self, symbol: str) -> None:
        guard = self.trade_guards[symbol]
        held = self._held_trades[symbol]
        for agg_id in guard.quarantined:
            held.pop(agg_id, None)
            self._held_at.pop((symbol, agg_id), None)
            self.stats.trade_quarantined += 1
            self._ratelog.log(logging.WARNING, "quarantined agg_id",
                              "%s: quarantined a trade with agg_id %d: the stream's next ids "
                              "did not confirm it (last %s)", symbol, agg_id,
                              self.trackers[symbol].last_id)
        guard.quarantined.clear()

    def admit_row(self, kind: str, row: Row) -> bool:
        """A live ``derivatives`` or ``liquidations`` row: always (a restart replay's gate
        checks the disk)."""
        return True

    def book_fast(self, stream: str, update_id: int) -> bool | None:
        """``book``'s hot path with no row: True for the usual step forward on a stream with
        nothing held, None when ``book`` must judge it (and may hold the message's row)."""
        guard = self.book_guards.get(stream)
        if guard is None or guard.held:
            return None
        tracker = guard.tracker
        last = tracker.last_u
        d = update_id - last
        if last >= 0 and 0 < d <= guard.limit:
            tracker.last_u = update_id  # (what BookTracker.admit does for a newer id)
            step = guard.step + (d - guard.step) * 0.0625
            guard.step = step
            limit = step * BOOK_STEP_FACTOR
            guard.limit = limit if limit > BOOK_MIN_LIMIT else BOOK_MIN_LIMIT
            return True
        return None

    def book(self, stream: str, update_id: int, row: Row | None = None) -> bool:
        """False for a book message that is not newer than the stream's last one (or held, or
        quarantined). Confirmed held rows wait in ``released`` for the router."""
        fast = self.book_fast(stream, update_id)
        if fast is not None:
            return fast
        guard = self.book_guards.get(stream)
        if guard is None:
            tracker = self.books[stream] = BookTracker()
            guard = self.book_guards[stream] = BookIdGuard(tracker)
            self._held_books[stream] = {}
        offer = guard.offer(update_id)
        if offer:
            held = self._held_books[stream]
            if offer == HOLD:
                if row is not None:
                    held[update_id] = row
                    self._held_at[(stream, update_id)] = (self.lanes.cursor[0], self.wall_ms())
            elif offer == RELEASE:
                for u in guard.released:
                    old = held.pop(u, None)
                    at = self._held_at.pop((stream, u), (-1, 0))[0]
                    if guard.tracker.admit(u) and old is not None:
                        self._release(old, at)
                guard.released.clear()
            if guard.quarantined:
                self._quarantine_books(stream)
            if offer != RELEASE:
                if offer == HELD_DUPLICATE:
                    self._book_duplicate(stream)
                return False
        elif guard.quarantined:
            self._quarantine_books(stream)
        if guard.tracker.admit(update_id):
            return True
        self._book_duplicate(stream)
        return False

    def _book_duplicate(self, stream: str) -> None:
        self.stats.book_duplicates += 1
        if self.venue.is_quote_stream(stream):
            self.stats.quote_duplicates += 1

    def _quarantine_books(self, stream: str) -> None:
        guard = self.book_guards[stream]
        held = self._held_books[stream]
        for u in guard.quarantined:
            held.pop(u, None)
            self._held_at.pop((stream, u), None)
            self.stats.book_quarantined += 1
            if self.venue.is_quote_stream(stream):
                self.stats.quote_quarantined += 1
            self._ratelog.log(logging.WARNING, "quarantined update id",
                              "%s: quarantined a book message with update id %d: the stream's "
                              "next ids did not confirm it (last %d)", stream, u,
                              guard.tracker.last_u)
        guard.quarantined.clear()

    def _release(self, row: Row, at: int) -> None:
        self.released.append(row)
        if at >= 0 and (self.released_at < 0 or at < self.released_at):
            self.released_at = at

    def held_seqs(self, since_ms: int) -> list[int]:
        """Journal checkpoint: the seqs of the frames whose rows are held, not yet in a lane,
        since ``since_ms`` (wall clock)."""
        return [seq for seq, ms in self._held_at.values() if ms >= since_ms]

    def give_up_held(self) -> None:
        """At a stop: ids still held were never confirmed; they are quarantined (a restart
        resumes below a quarantined trade and backfills it)."""
        for symbol, tguard in self.trade_guards.items():
            tguard.give_up()
            self._quarantine_trades(symbol)
        for stream, bguard in self.book_guards.items():
            bguard.give_up()
            self._quarantine_books(stream)

    def resumed(self, stream: str, recv_ms: int) -> None:
        """The first frame of an interrupted stream: its gap row (start: its last frame before
        the disconnect, end: this frame)."""
        gap = self.resuming.pop(stream, None)
        if gap is not None:
            self._gap_now(self._interruption_row(stream, gap, recv_ms, ""))

    # -- the universe changes (a listing change) -------------------------------------------------

    def add_symbol(self, symbol: str, *, fresh: bool = False) -> None:
        """A symbol joins while running: its own continuity from its first trade (``fresh``:
        also when it was here before: a symbol back from another shard, whose trades meanwhile
        are that shard's)."""
        if fresh or symbol not in self.trackers:
            self.trackers[symbol] = tracker = AggIdTracker()
            self.trade_guards[symbol] = TradeIdGuard(tracker)
            self._held_trades[symbol] = {}
        self._prices[symbol] = self.lanes.get(PRICES, symbol)
        if self.sweeper is not None:
            self.sweeper.add_symbol(symbol)

    def prices_into(self, symbol: str, sink: Sink | None) -> None:
        """Where ``symbol``'s backfilled trades go: ``sink`` (a window around a hand-over, so a
        backfill never writes the other shard's side), or its own lane again (None)."""
        self._prices[symbol] = sink if sink is not None else self.lanes.get(PRICES, symbol)

    def remove_symbol(self, streams: list[str]) -> None:
        """A symbol leaves: its streams' open interruptions and book sequences end here (no
        disconnect or stall gap for it; its continuity tracker stays for a backfill under way)."""
        for name in streams:
            self.resuming.pop(name, None)
            self.books.pop(name, None)
            self.book_guards.pop(name, None)
            self._held_books.pop(name, None)

    # -- app hooks -----------------------------------------------------------------------------

    async def on_disconnect(self, plan: Plan, error: str) -> None:
        """A session of ``plan`` ended: every stream of it that had delivered is interrupted
        from its last frame until its first frame after a reconnect."""
        now_t, now_ms = trio.current_time(), self.wall_ms()
        reason = disconnect_reason(error)
        for spec in plan.streams:
            open_gap = self.resuming.get(spec.name)
            if open_gap is not None:
                open_gap.sessions += 1
                continue
            last = self.last_seen.get(spec.name)
            if last is None:
                continue  # it never delivered: nothing was interrupted (health reports silence)
            start = now_ms - max(0, int((now_t - last) * 1000))
            self.resuming[spec.name] = Interruption(spec.symbol, start, reason, error)

    def on_lost(self, kind: str, symbol: str, rows: list[Row], error: str) -> None:
        """Rows that neither their write nor the dead letter took (rotation calls it)."""
        if symbol in self.trackers:
            self.losses.on_lost(kind, symbol, rows, error)

    def _emit_losses(self) -> None:
        for row in self.losses.emit():
            self._gap_now(row)

    def _reopen(self, symbol: str, lo: int, hi: int, start_ms: int, end_ms: int) -> None:
        self.trackers[symbol].reopen(lo, hi)
        self.backfill.request(symbol, Break(lo, hi, start_ms, end_ms))
    def gap_now(self, row: Row) -> None:
        """A gap row from outside the stream (an interval the journal missed)."""
        self._gap_now(row)

    async def put_gap(self, row: Row) -> None:
        self._count(row)
        await self.lanes.get(GAPS, row[1]).put(row)

    async def run(self, rest_url: str, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with AsyncExitStack() as stack:
            if self._use_http:
                self.backfill.fetch = await stack.enter_async_context(http_fetch(rest_url))
                log.info("backfill: REST %s, up to %d request weight per minute",
                         rest_url, self.config.backfill_weight)
                if self.sweeper is not None:
                    self.sweeper.fetch = self.backfill.fetch
            async with trio.open_nursery() as nursery:
                await nursery.start(self.connector.run)
                await nursery.start(self.backfill.run)
                if self.sweeper is not None and self.sweeper.fetch is not None:
                    await nursery.start(self.sweeper.run)
                nursery.start_soon(self._drain_backlog)
                task_status.started()

    async def finish(self, seconds: float) -> None:
        """Before the final flush (ingest has stopped): finish or record every pending backfill
        within ``seconds``, and close the intervals of streams that never resumed."""
        self.give_up_held()
        if self.losses.pending:  # the final flush may write what could not be written before
            self._emit_losses()
        if self.sweeper is not None:  # a last sweep: what the socket lost at the end, too
            await self.sweeper.finish(trio.current_time() + seconds / 2)
        await self.backfill.finish(trio.current_time() + seconds)
        now_ms = self.wall_ms()
        for stream, gap in list(self.resuming.items()):
            del self.resuming[stream]
            await self.put_gap(self._interruption_row(
                stream, gap, now_ms, "; not resumed when the harvester stopped"))
        await self._flush_backlog()

    # -- reporting -----------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return report.as_dict(self)

    def findings(self, now: float) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """(problems, notes) for health, as (code, subject, message)."""
        return report.findings(self, now)

    # -- internals -----------------------------------------------------------------------------

    async def _put_trade(self, row: Row) -> None:
        if self.journal_row is not None:  # a backfilled trade is journaled first
            self.journal_row(PRICES, row)
        await self._prices[row[3]].put(row, unseen=True)  # the signal engine never sees it

    def _interruption_row(self, stream: str, gap: Interruption, end_ms: int, extra: str) -> Row:
        detail = gap.error + (f"; {gap.sessions} sessions ended" if gap.sessions > 1 else "") + extra
        return gap_row(gap.symbol, stream, gap.start_ms, end_ms, gap.reason, detail)

    def _gap_now(self, row: Row) -> None:
        self._count(row)
        if not self.lanes.get(GAPS, row[1]).put_nowait(row):
            self._gap_backlog.append(row)

    def _count(self, row: Row) -> None:
        if self.journal_row is not None:  # every gap row passes here; journal it
            self.journal_row(GAPS, row)
        reason, agg = row[5], parse_agg_detail(row[6])
        self.stats.gaps[reason] = self.stats.gaps.get(reason, 0) + 1
        if agg is not None and not agg[2]:
            self.stats.last_unfilled_at = trio.current_time()

    async def _drain_backlog(self) -> None:
        while True:
            await trio.sleep(0.25)
            if self.losses.due():
                self._emit_losses()
            if self._gap_backlog:  # (the lock is a schedule point: not taken for nothing)
                await self._flush_backlog()

    async def _flush_backlog(self) -> None:
        async with self._backlog_lock:
            while self._gap_backlog:
                row = self._gap_backlog[0]
                await self.lanes.get(GAPS, row[1]).put(row)
                self._gap_backlog.pop(0)
