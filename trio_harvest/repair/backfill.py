"""REST backfill of aggregate trades: fetch the ids a stream skipped, exactly once, within a
request-weight budget, and record the outcome as ``gaps`` rows.

Owns the backfill task. A break (``continuity.Break``) becomes a job that waits ``delay``
seconds (frames that were only late, e.g. during a connection handover, close the break on
their own and cost nothing), then pages through the venue's trades request (``Venue.trades_request``:
trades from an id on) over the ids *still* missing, each page covering as many missing ids as
fit in one request (``trades_page``), each costing the venue's ``trades_weight``. Every returned id
that the tracker still misses goes into the same ``prices`` lane as streamed trades (the tracker
decides, so a trade is never written twice, whichever of REST and websocket comes first; where
the venue's trades each cover a span of ids, a trade is judged by its first id and the rest of
its span is taken as seen). What
cannot be fetched stays missing and is written as an ``unfilled`` gap row; a break that backfill
repaired is written as ``filled`` (see ``gaps.py``). 429/418 answers pause the budget for
``Retry-After``; other failures are retried a few times, then given up. Stopping: ``finish``
processes what is queued until a deadline, and whatever is left is recorded as unfilled; a row
is never cancelled half-way between the tracker and its lane.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from .. import venues
from ..gaps import AGG_ID_BREAK, FILLED, UNFILLED, agg_detail, gap_row
from ..ingest.restclient import FetchFn, RestError, WeightBudget, retry_after
from ..kinds import Row
from ..ratelimit import RateLimitedLog
from ..venues.base import SPANS, Venue
from .continuity import AggIdTracker, Break

log = logging.getLogger("trio_harvest.backfill")

MAX_BREAKS_PER_JOB = 1000
NOT_ON_TAPE = "not on the exchange's tape"
STOPPED = "stopped before backfill"
BACKFILL_OFF = "backfill off"


@dataclass
class Job:
    symbol: str
    due: float
    breaks: list[Break] = field(default_factory=list)


@dataclass
class BackfillStats:
    jobs: int = 0
    breaks: int = 0
    healed: int = 0  # breaks closed by late frames before backfill ran (no gap row)
    requests: int = 0
    rows: int = 0  # trades written from REST
    filled: int = 0  # breaks fully repaired
    unfilled_ids: int = 0
    rate_limited: int = 0  # 429/418 answers
    errors: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Backfill:
    def __init__(
        self,
        trackers: Mapping[str, AggIdTracker],
        put_trade: Callable[[Row], Awaitable[None]],
        put_gap: Callable[[Row], Awaitable[None]],
        fetch: FetchFn | None,
        budget: WeightBudget,
        *,
        wall_ms: Callable[[], int],
        delay: float = 1.0,
        max_attempts: int = 4,
        max_rate_limited: int = 8,
        retry_delay: float = 1.0,
        venue: Venue | None = None,
    ) -> None:
        self.venue = venue or venues.default()
        self.trackers = trackers
        self._put_trade = put_trade
        self._put_gap = put_gap
        self.fetch = fetch
        self.budget = budget
        self.wall_ms = wall_ms
        self.delay = delay
        self.max_attempts = max_attempts
        self.max_rate_limited = max_rate_limited
        self.retry_delay = retry_delay
        self.stats = BackfillStats()
        self._pending: dict[str, Job] = {}
        self._wake = trio.Event()
        self._busy = False
        self._idle = trio.Event()
        self._idle.set()
        self._deadline = float("inf")
        self._stopping = False
        self._job_scope: trio.CancelScope | None = None
        self._finish_scope: trio.CancelScope | None = None
        self._ratelog = RateLimitedLog(log, interval=60.0, clock=trio.current_time)

    # -- producer side (sync, from the router) -------------------------------------------------

    def request(self, symbol: str, brk: Break) -> None:
        """Queue a break for backfill. One job per symbol waits at a time (bounded memory)."""
        self.stats.breaks += 1
        job = self._pending.get(symbol)
        if job is None:
            job = self._pending[symbol] = Job(symbol, trio.current_time() + self.delay)
            self.stats.jobs += 1
            self._idle = trio.Event()
            self._wake.set()
        if len(job.breaks) < MAX_BREAKS_PER_JOB:
            job.breaks.append(brk)
        else:  # merge into the last one: the ids in between are not missing, so never refetched
            last = job.breaks[-1]
            job.breaks[-1] = Break(last.first_id, brk.last_id, last.start_ms, brk.end_ms)

    @property
    def pending(self) -> int:
        return sum(len(j.breaks) for j in self._pending.values())

    # -- the task ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            if not self._pending:
                if not self._busy:
                    self._idle.set()
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            job = min(self._pending.values(), key=lambda j: j.due)
            if not self._stopping and job.due > trio.current_time():
                with trio.move_on_at(job.due):
                    await self._wake.wait()
                    self._wake = trio.Event()
                continue
            del self._pending[job.symbol]
            self._busy = True
            try:
                await self._process(job)
            finally:
                self._busy = False
            await self._abandoned(job.symbol)

    async def finish(self, deadline: float) -> None:
        """Stop: run every queued job now; past ``deadline`` no more requests go out and what
        is still missing is recorded as unfilled. Returns when nothing is queued or running."""
        self._stopping = True
        self._deadline = deadline
        if self._job_scope is not None:  # the job running now stops fetching on time too
            self._job_scope.deadline = min(self._job_scope.deadline, deadline)
        self._wake.set()
        if self._pending or self._busy:
            self._idle = trio.Event()
            with trio.move_on_at(self._deadline + 5.0) as scope:
                self._finish_scope = scope
                await self._idle.wait()
            self._finish_scope = None
        for symbol in list(self._pending):  # the task is not running (or hung): record them here
            job = self._pending.pop(symbol)
            await self._process(job)

    def hurry(self) -> None:
        """A second stop request: no more requests; what is still missing is recorded as
        unfilled now, not at the deadline."""
        now = trio.current_time()
        self._deadline = min(self._deadline, now)
        if self._job_scope is not None:
            self._job_scope.cancel()
        if self._finish_scope is not None:
            self._finish_scope.deadline = min(self._finish_scope.deadline, now + 1.0)

    # -- one job -------------------------------------------------------------------------------

    async def _process(self, job: Job) -> None:
        tracker = self.trackers[job.symbol]
        job.breaks.sort(key=lambda b: b.first_id)  # ids lost in a write may lie below a break
        breaks = [(b, tracker.missing_in(b.first_id, b.last_id)) for b in job.breaks]
        todo = [b for b, missing in breaks if missing]
        self.stats.healed += len(breaks) - len(todo)
        if not todo:
            return
        lo, hi = todo[0].first_id, todo[-1].last_id
        if self.fetch is None:
            why = BACKFILL_OFF
        elif self._stopping and trio.current_time() >= self._deadline:
            why = STOPPED
        else:
            with trio.move_on_at(self._deadline) as scope:
                self._job_scope = scope
                try:
                    why = await self._fetch_range(job.symbol, tracker, lo, hi)
                finally:
                    self._job_scope = None
            if scope.cancelled_caught:
                why = STOPPED
        stream = self.venue.trade_stream(job.symbol)
        for b in todo:
            remaining = tracker.close(b.first_id, b.last_id)
            if not remaining:
                self.stats.filled += 1
                await self._put_gap(gap_row(job.symbol, stream, b.start_ms, b.end_ms, AGG_ID_BREAK,
                                            agg_detail(b.first_id, b.last_id, FILLED)))
                continue
            for a, c in remaining:
                self.stats.unfilled_ids += c - a + 1
                await self._put_gap(gap_row(job.symbol, stream, b.start_ms, b.end_ms, AGG_ID_BREAK,
                                            agg_detail(a, c, UNFILLED, why or NOT_ON_TAPE)))
            self._ratelog.log(logging.WARNING, f"unfilled:{job.symbol}",
                              "%s: agg_id %d..%d could not be backfilled (%s); recorded in gaps",
                              job.symbol, remaining[0][0], remaining[-1][1], why or NOT_ON_TAPE)

    async def _fetch_range(self, symbol: str, tracker: AggIdTracker, lo: int, hi: int) -> str:
        """Fetch what is missing in ``lo..hi``; '' when the exchange answered for all of it,
        else why not. Rows are put into the lane between requests, never cancelled half-way."""
        fetch = self.fetch
        assert fetch is not None
        venue = self.venue
        page = venue.trades_page
        spans = venue.trade_continuity == SPANS  # a trade covers first_id..agg_id
        cursor = lo
        failures = limited = 0
        while True:
            todo = tracker.missing_in(cursor, hi)
            if not todo:
                return "" if not tracker.missing_in(lo, hi) else NOT_ON_TAPE
            from_id = todo[0][0]
            end = min(from_id + page - 1, max(b for a, b in todo if a < from_id + page))
            req = venue.trades_request(symbol, from_id, end - from_id + 1)
            await self.budget.acquire(req.weight)
            self.stats.requests += 1
            try:
                resp = await fetch(req.path, req.params)
            except RestError as exc:
                failures += 1
                self._error(str(exc))
                if failures >= self.max_attempts:
                    return f"REST failed: {exc}"
                await trio.sleep(self.retry_delay * failures)
                continue
            self.budget.observe_used(resp.headers)
            if resp.status in (418, 429):
                limited += 1
                self.stats.rate_limited += 1
                self.budget.pause(retry_after(resp, 60.0))
                if limited > self.max_rate_limited:
                    return f"rate limited (HTTP {resp.status})"
                continue
            if resp.status != 200:
                failures += 1
                self._error(f"HTTP {resp.status}: {resp.body[:120]!r}")
                if failures >= self.max_attempts or 400 <= resp.status < 500:
                    return f"REST answered HTTP {resp.status}"
                await trio.sleep(self.retry_delay * failures)
                continue
            try:
                trades = venue.decode_trades(resp.body)
            except venue.bad_frame as exc:
                self._error(f"bad trades body: {exc}")
                return "REST answered something else than trades"
            if not trades:
                return NOT_ON_TAPE
            recv_ms = self.wall_ms()
            for t in trades:
                if t.agg_id > hi and not spans:
                    break
                first = t.first_id if spans else t.agg_id
                if first > hi:
                    break
                if tracker.fill(first):
                    if spans and t.agg_id > first:  # the ids the trade covers are not missing
                        tracker.close(first + 1, t.agg_id)
                    self.stats.rows += 1
                    await self._put_trade(venue.rest_trade_row(symbol, t, recv_ms))
            if trades[-1].agg_id < from_id:  # an answer that does not move on
                return "REST answered out of range"
            cursor = trades[-1].agg_id + 1

    async def _abandoned(self, symbol: str) -> None:
        """Ranges the tracker had to give up (more open breaks than it keeps)."""
        tracker = self.trackers[symbol]
        while tracker.abandoned:
            a, b = tracker.abandoned.pop(0)
            self.stats.unfilled_ids += b - a + 1
            ts = tracker.last_ms  # when exactly is not known any more: at the latest, now
            await self._put_gap(gap_row(symbol, self.venue.trade_stream(symbol), ts, ts, AGG_ID_BREAK,
                                        agg_detail(a, b, UNFILLED, "too many open breaks")))

    def _error(self, message: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = message
        self._ratelog.log(logging.WARNING, "rest", "backfill: %s", message)
