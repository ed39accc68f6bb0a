"""Adversity, wired together: the router's gate (deduplication, agg-id continuity, resumed
streams), gaps as data for disconnects and stalls, REST backfill and the connection handover.

Owns the per-run state of that wiring: one ``AggIdTracker`` per symbol and one ``BookTracker``
per book stream (``continuity.py``), the streams interrupted by a disconnect and waiting for
their first frame (``resuming``), the backfill task (``backfill.py``) and the handover connector
(``handover.py``), and the counters health and the summary read (``RepairStats``). The gate's
methods are synchronous and O(1) per frame; gap rows go into the authoritative ``gaps`` lane
(``put_nowait``; if it is momentarily full they wait in a short list that a task drains).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import trio

from ..binance.decode import AggTrade
from ..binance.streams import ConnectionPlan
from ..config import Config
from ..ingest.connection import ConnectFn
from ..ingest.handover import HandoverConnector
from ..ingest.restclient import FetchFn, WeightBudget, http_fetch
from ..kinds import GAPS, PRICES, Row
from ..pipeline.lanes import Lanes
from ..ratelimit import RateLimitedLog
from .backfill import Backfill
from .continuity import BREAK, DUPLICATE, IMPLAUSIBLE, AggIdTracker, BookTracker
from .gaps import disconnect_reason, gap_row, parse_agg_detail

log = logging.getLogger("trio_harvest.repair")

LAG_WEIGHT = 0.02  # EWMA weight of one trade's receipt lag (recv_ms - E)
SKEW_NOTE_MS = 2000.0  # a mean receipt lag beyond this is reported as clock skew


@dataclass(slots=True)
class Interruption:
    symbol: str
    start_ms: int
    reason: str
    error: str
    sessions: int = 1  # ended sessions (failed attempts) before the stream resumed


@dataclass
class RepairStats:
    trade_duplicates: int = 0  # aggTrades dropped: agg_id already in prices
    trade_implausible: int = 0  # aggTrades dropped: an agg_id jump no exchange makes
    book_duplicates: int = 0  # book messages dropped: update id not newer
    gaps: dict[str, int] = field(default_factory=dict)  # gap rows by reason
    last_unfilled_at: float | None = None  # trio time
    lag_ms: float | None = None  # mean recv_ms - E over recent trades (latency + clock skew)


class Repair:
    def __init__(
        self,
        config: Config,
        lanes: Lanes,
        connect: ConnectFn,
        *,
        wall_ms: Callable[[], int],
        fetch: FetchFn | None = None,
        use_http: bool = True,
    ) -> None:
        self.config = config
        self.lanes = lanes
        self.wall_ms = wall_ms
        self.stats = RepairStats()
        self._ratelog = RateLimitedLog(log, interval=60.0)
        self.trackers = {s: AggIdTracker() for s in config.symbols}
        self.books: dict[str, BookTracker] = {}
        self.resuming: dict[str, Interruption] = {}
        self.last_seen: Mapping[str, float] = {}  # the router's (stream -> trio time)
        self._gap_backlog: list[Row] = []
        self.journal_row: Callable[[str, Row], None] | None = None  # issue 9: off-stream rows
        self._backlog_lock = trio.Lock()
        self._prices = {s: lanes.get(PRICES, s) for s in config.symbols}
        self._use_http = use_http and config.backfill and fetch is None
        self.budget = WeightBudget(config.backfill_weight)
        self.backfill = Backfill(
            self.trackers, self._put_trade, self.put_gap,
            fetch if config.backfill else None, self.budget,
            wall_ms=wall_ms, delay=config.backfill_delay,
        )
        self.connector = HandoverConnector(
            connect, lifetime=config.ws_lifetime, lead=config.handover_lead,
            overlap=config.handover_overlap,
        )

    # -- the router's gate (synchronous, per frame) --------------------------------------------

    def trade(self, t: AggTrade, recv_ms: int) -> bool:
        """False for a trade already in ``prices``. A jump in ids queues a backfill."""
        tracker = self.trackers[t.symbol]
        verdict = tracker.admit(t.agg_id, t.trade_ms)
        if verdict == DUPLICATE:
            self.stats.trade_duplicates += 1
            return False
        if verdict == IMPLAUSIBLE:
            self.stats.trade_implausible += 1
            self._ratelog.log(logging.WARNING, "implausible agg_id",
                              "%s: ignored a trade with an implausible agg_id %d (last %s)",
                              t.symbol, t.agg_id, tracker.last_id)
            return False
        if verdict == BREAK:
            assert tracker.last_break is not None
            self.backfill.request(t.symbol, tracker.last_break)
        lag = self.stats.lag_ms
        d = recv_ms - t.event_ms
        self.stats.lag_ms = d if lag is None else lag + (d - lag) * LAG_WEIGHT
        return True

    def book(self, stream: str, update_id: int) -> bool:
        """False for a book message that is not newer than the stream's last one."""
        tracker = self.books.get(stream)
        if tracker is None:
            tracker = self.books[stream] = BookTracker()
        if tracker.admit(update_id):
            return True
        self.stats.book_duplicates += 1
        return False

    def resumed(self, stream: str, recv_ms: int) -> None:
        """The first frame of an interrupted stream: its gap row (start: its last frame before
        the disconnect, end: this frame)."""
        gap = self.resuming.pop(stream, None)
        if gap is not None:
            self._gap_now(self._interruption_row(stream, gap, recv_ms, ""))

    # -- app hooks -----------------------------------------------------------------------------

    async def on_disconnect(self, plan: ConnectionPlan, error: str) -> None:
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

    def gap_now(self, row: Row) -> None:
        """A gap row from outside the stream (issue 9: an interval the journal missed)."""
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
            async with trio.open_nursery() as nursery:
                await nursery.start(self.connector.run)
                await nursery.start(self.backfill.run)
                nursery.start_soon(self._drain_backlog)
                task_status.started()

    async def finish(self, seconds: float) -> None:
        """Before the final flush (ingest has stopped): finish or record every pending backfill
        within ``seconds``, and close the intervals of streams that never resumed."""
        await self.backfill.finish(trio.current_time() + seconds)
        now_ms = self.wall_ms()
        for stream, gap in list(self.resuming.items()):
            del self.resuming[stream]
            await self.put_gap(self._interruption_row(
                stream, gap, now_ms, "; not resumed when the harvester stopped"))
        await self._flush_backlog()

    # -- reporting -----------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        st = self.stats
        return {
            "gaps": dict(sorted(st.gaps.items())),
            "trade_duplicates_dropped": st.trade_duplicates,
            "book_duplicates_dropped": st.book_duplicates,
            "late_trades": sum(t.late for t in self.trackers.values()),
            "interrupted_streams": len(self.resuming),
            "missing_ids_open": sum(t.missing_ids for t in self.trackers.values()),
            "receipt_lag_ms": None if st.lag_ms is None else round(st.lag_ms, 1),
            "backfill": self.backfill.stats.as_dict(),
            "backfill_weight_spent": self.budget.spent,
            "handover": self.connector.stats.as_dict(),
        }

    def findings(self, now: float) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """(problems, notes) for health, as (code, subject, message)."""
        problems: list[tuple[str, str, str]] = []
        notes: list[tuple[str, str, str]] = []
        st, bf = self.stats, self.backfill.stats
        recent = st.last_unfilled_at is not None and now - st.last_unfilled_at < 600.0
        if recent:
            problems.append(("gaps_unfilled", "prices",
                             f"{bf.unfilled_ids} agg ids could not be backfilled (recorded in "
                             f"gaps; last {now - (st.last_unfilled_at or now):.0f}s ago)"))
        if st.gaps:
            by = ", ".join(f"{r} {n}" for r, n in sorted(st.gaps.items()))
            notes.append(("gaps", "gaps", f"gaps recorded: {by}; backfill wrote {bf.rows} trades "
                          f"({bf.requests} requests, {bf.rate_limited} rate-limited)"))
        waiting = sum(t.missing_ids for t in self.trackers.values())
        if waiting:
            notes.append(("backfill_waiting", "prices",
                          f"{waiting} agg ids missing, waiting for backfill "
                          f"({bf.rate_limited} answers so far were 429/418)"))
        if self.resuming:
            notes.append(("interrupted", "streams",
                          f"{len(self.resuming)} streams interrupted, waiting to resume"))
        dups = st.trade_duplicates + st.book_duplicates
        if dups:
            notes.append(("duplicates", "streams",
                          f"duplicates dropped: {st.trade_duplicates} trades, "
                          f"{st.book_duplicates} book messages"))
        if st.lag_ms is not None and abs(st.lag_ms) > SKEW_NOTE_MS:
            notes.append(("clock_skew", "exchange",
                          f"trades arrive {st.lag_ms / 1000:+.1f}s after their event time on "
                          f"average: the exchange's clock and ours disagree (or latency is high)"))
        ho = self.connector.stats
        if ho.handovers or ho.failures:
            notes.append(("handover", "connections",
                          f"{ho.handovers} connection handovers ({ho.failures} failed attempts)"))
        return problems, notes

    # -- internals -----------------------------------------------------------------------------

    async def _put_trade(self, row: Row) -> None:
        if self.journal_row is not None:  # issue 9: a backfilled trade is journaled first
            self.journal_row(PRICES, row)
        await self._prices[row[3]].put(row)

    def _interruption_row(self, stream: str, gap: Interruption, end_ms: int, extra: str) -> Row:
        detail = gap.error + (f"; {gap.sessions} sessions ended" if gap.sessions > 1 else "") + extra
        return gap_row(gap.symbol, stream, gap.start_ms, end_ms, gap.reason, detail)

    def _gap_now(self, row: Row) -> None:
        self._count(row)
        if not self.lanes.get(GAPS, row[1]).put_nowait(row):
            self._gap_backlog.append(row)

    def _count(self, row: Row) -> None:
        if self.journal_row is not None:  # issue 9: every gap row passes here; journal it
            self.journal_row(GAPS, row)
        reason, agg = row[5], parse_agg_detail(row[6])
        self.stats.gaps[reason] = self.stats.gaps.get(reason, 0) + 1
        if agg is not None and not agg[2]:
            self.stats.last_unfilled_at = trio.current_time()

    async def _drain_backlog(self) -> None:
        while True:
            await trio.sleep(0.25)
            await self._flush_backlog()

    async def _flush_backlog(self) -> None:
        async with self._backlog_lock:
            while self._gap_backlog:
                row = self._gap_backlog[0]
                await self.lanes.get(GAPS, row[1]).put(row)
                self._gap_backlog.pop(0)
