"""The rotation task: drains lanes on a timer and on high-watermark wake-ups, splits each drain by
UTC event-time date, and writes every partition on its own.

Owns what a write's outcome means. Each partition write runs under a ``CapacityLimiter``
(SAVE_CONCURRENCY) inside its own cancel scope (``write_timeout``); a failed, timed-out or
cancelled write sends its batch to the dead letter, never back into memory (old fault 4); no lock
is held around I/O (old fault 3). At most one flush per lane is in flight, so memory stays bounded
by twice the lane capacities. Never runs per message (old fault 7): ingest only wakes it.

Owns the flush policy too: a timer rotation writes a lane once it holds ``min_file_rows`` rows or
its last write is ``max_file_age`` old; and, every ``BUDGET_CHECK_S``, when the rows held by all
lanes exceed ``max_buffered_bytes`` (estimated: 8 bytes a cell), the lanes holding the most are
written until the rest fits in ``BUDGET_LOW`` of it. So memory is bounded whatever the message
rate, the busy lanes write files of about equal size, and the quiet ones write only at their age.

Lanes due at once (a tick's, a stop's) are flushed in small groups when the writer can stage
several partitions in one job (``save_many``): one task, one limiter slot and one worker-thread
job for up to ``BATCH_FILES`` files of at most ``GROUP_BYTES`` of rows together. Each file still
has its own gate, timeout, group-commit wait and outcome, so a group changes no file and no
failure's fate; it only saves the per-file cost of the loop, the thread hand-off and Polars.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import polars as pl
import trio

from ..kinds import DEFAULT_VENUE, Row
from ..ratelimit import RateLimitedLog
from ..storage.gate import PublishGate
from ..storage.partitions import Partition, RowData, split_by_date
from ..storage.writer import Committing, published
from .lanes import Lane, Lanes
from .rotationtypes import (
    BATCH_FILES,
    GROUP_BYTES,
    DeadLetterFn,
    LostFn,
    PartWrite,
    RotationStats,
    SaveFn,
    SaveManyFn,
    WriteObserver,
)

log = logging.getLogger("trio_harvest.rotation")

STOP_CONCURRENCY = 16  # partition writes at once during the final flush (at least save_concurrency)
FIRST_FLUSH_S = 30.0  # a new run's first timer rotation writes every lane with rows, by then
BUDGET_CHECK_S = 2.0  # how often the rows held by all lanes are measured against the budget
BUDGET_LOW = 0.75  # an over-budget check writes the biggest lanes until this share is left
CELL_BYTES = 8  # a held value's estimated bytes (int64 and float64 columns)

class Rotation:
    def __init__(
        self,
        lanes: Lanes,
        save: SaveFn,
        dead_letter: DeadLetterFn,
        *,
        rotate_sec: float,
        write_timeout: float,
        deadletter_timeout: float,
        save_concurrency: int,
        min_file_rows: int = 1,
        max_file_age: float = 0.0,
        max_buffered_bytes: int = 0,
        first_flush: float = 0.0,
        observe: WriteObserver | None = None,
        on_lost: LostFn | None = None,
        save_many: SaveManyFn | None = None,
        batch_files: int = BATCH_FILES,
    ) -> None:
        self.lanes = lanes
        self._save = save
        # Lanes that a tick finds due together are flushed ``batch_files`` at a time, their
        # single-date partitions written by one ``save_many`` job (each file keeps its own gate,
        # commit and outcome); without ``save_many`` every lane is flushed on its own.
        self._save_many = save_many
        self._paired_save = save  # the save ``save_many`` batches (see ``_grouped``)
        self.batch_files = max(1, batch_files)
        self._dead_letter_fn = dead_letter
        self.rotate_sec = rotate_sec
        # A timer rotation flushes a lane once it holds ``min_file_rows`` rows, or once its last
        # flush is ``max_file_age`` seconds old, so files reach a useful size at realistic load.
        self.min_file_rows = min_file_rows
        self.max_file_age = max_file_age
        # Memory: all lanes together hold at most about ``max_buffered_bytes`` (0: no bound
        # but each lane's own watermarks); over it, the biggest lanes are written first.
        self.max_buffered_bytes = max_buffered_bytes
        self._row_bytes: dict[Lane, int] = {}
        # A new run shows files early: the first timer rotation comes after ``first_flush`` s
        # (if sooner than ``rotate_sec``) and flushes every lane with rows; then the cadence.
        self.first_flush = first_flush
        self._first_pending = first_flush > 0
        self._last_flush: dict[Lane, float] = {}
        self.write_timeout = write_timeout
        self.deadletter_timeout = deadletter_timeout
        self.limiter = trio.CapacityLimiter(save_concurrency)
        self.deadletter_limiter = trio.CapacityLimiter(max(1, save_concurrency))
        self.stats = RotationStats()
        self._observe = observe
        self.on_lost = on_lost  # rows lost for good: a gaps row, and backfill for prices
        self._ratelog = RateLimitedLog(log, interval=30.0, clock=trio.current_time)
        self._wakeup = trio.Event()
        self._urgent: dict[Lane, None] = {}
        self._busy: set[Lane] = set()
        self._again: set[Lane] = set()
        self._write_scopes: set[trio.CancelScope] = set()
        self._idle = trio.Event()
        self._idle.set()
        self._nursery: trio.Nursery | None = None
        self._stopping = False
        self._hard_deadline = math.inf  # set by abort(): bounds every dead-letter write
        self._dl_scopes: set[trio.CancelScope] = set()
        self.next_rotation: float = math.inf
        self.teardown_at: float | None = None  # trio time a teardown cancelled the first write
        self.held: dict[Lane, int] = {}  # journal checkpoint: seq of a batch in flight
        # journal checkpoint: the oldest seq of an authoritative batch that even the dead letter
        # could not take during a stop (-1: none). The journal then keeps everything from there
        # on, so the next start replays those rows (replay writes each row once). Only at a stop:
        # while running, a pin would hold the journal until ``journal_max_bytes`` ends journaling
        # for the rest of the run; there the loss is a ``write lost`` gap and prices backfill.
        self.lost_seq = -1
        self.on_stop_phase: Callable[[str], None] | None = None  # the stop's timing record

    # -- producer side -------------------------------------------------------------------------

    def wake(self, lane: Lane) -> None:
        """Called by a lane crossing its high watermark (or full): flush it soon."""
        self._urgent[lane] = None
        self.stats.wakeups += 1
        self._wakeup.set()

    # -- the task ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            first = min(self.rotate_sec, self.first_flush) if self._first_pending else self.rotate_sec
            self.next_rotation = trio.current_time() + first
            next_check = trio.current_time() + BUDGET_CHECK_S if self.max_buffered_bytes \
                else math.inf
            task_status.started()
            while True:
                with trio.move_on_at(min(self.next_rotation, next_check)):
                    await self._wakeup.wait()
                self._wakeup = trio.Event()
                now = trio.current_time()
                if now >= self.next_rotation:
                    self.stats.rotations += 1
                    self.next_rotation = max(self.next_rotation + self.rotate_sec, now)
                    first, self._first_pending = self._first_pending, False
                    targets = [lane for lane in self.lanes if lane in self._urgent or
                               (first and lane.pending) or self._due(lane, now)]
                else:
                    targets = list(self._urgent)
                self._urgent.clear()
                if now >= next_check:
                    next_check = now + BUDGET_CHECK_S
                    targets.extend(self.over_budget())
                if not self._stopping:
                    self._start_flushes(list(dict.fromkeys(targets)))

    def _due(self, lane: Lane, now: float) -> bool:
        if not lane.pending:
            return False
        last = self._last_flush.setdefault(lane, now - self.rotate_sec)
        # Half a tick of slack: a flush starts a little after its tick, so an age equal to
        # the tick period must not slip by a whole period.
        return bool(lane.pending_spill) or lane.level >= min(self.min_file_rows, lane.high) or (
            now - last >= self.max_file_age - self.rotate_sec / 2
        )

    def over_budget(self) -> list[Lane]:
        """The lanes to write now so that the rest fits in ``BUDGET_LOW`` of the budget, the
        biggest first (none while all lanes together hold no more than the budget). O(lanes),
        every ``BUDGET_CHECK_S``; lanes being written are counted but not picked again."""
        budget = self.max_buffered_bytes
        if not budget:
            return []
        total = 0
        held: list[tuple[int, Lane]] = []
        for lane in self.lanes:
            if not lane.level:
                continue
            size = self._held_bytes(lane)
            total += size
            if lane not in self._busy:
                held.append((size, lane))
        if total <= budget:
            return []
        held.sort(key=lambda pair: pair[0], reverse=True)
        picked: list[Lane] = []
        for size, lane in held:
            if total <= budget * BUDGET_LOW:
                break
            picked.append(lane)
            total -= size
        self.stats.budget_flushes += len(picked)
        return picked

    def _held_bytes(self, lane: Lane) -> int:
        """The bytes ``lane``'s rows hold (estimated: ``CELL_BYTES`` a cell)."""
        width = self._row_bytes.get(lane)
        if width is None:
            width = self._row_bytes[lane] = CELL_BYTES * len(lane.frame_schema.columns)
        return lane.level * width

    def _start_flushes(self, lanes: list[Lane]) -> None:
        """Flush each lane; with ``save_many``, the lanes not already being written go in
        groups of ``batch_files`` (one task and one write job a group)."""
        assert self._nursery is not None
        free = []
        for lane in lanes:
            if lane in self._busy:
                self._again.add(lane)
            else:
                self._busy.add(lane)
                free.append(lane)
        if not free:
            return
        self._idle = trio.Event()
        if self._grouped() is None:
            for lane in free:
                self._nursery.start_soon(self._flush_lane, lane)
            return
        # a group holds at most ``GROUP_BYTES`` of rows, so the frames one job builds at once
        # stay about those of one big lane: a lane as big as that is written on its own
        group: list[Lane] = []
        held = 0
        for lane in free:
            size = self._held_bytes(lane)
            if group and (len(group) >= self.batch_files or held + size > GROUP_BYTES):
                self._start_group(group)
                group, held = [], 0
            group.append(lane)
            held += size
        self._start_group(group)

    def _start_group(self, group: list[Lane]) -> None:
        assert self._nursery is not None
        if len(group) == 1:
            self._nursery.start_soon(self._flush_lane, group[0])
        else:
            self._nursery.start_soon(self._flush_group, group)

    async def _flush_lane(self, lane: Lane) -> None:
        try:
            while True:
                self._again.discard(lane)
                await self._flush_once([lane])
                if not self._wants_more(lane):
                    break
        finally:
            self._release(lane)

    async def _flush_group(self, group: list[Lane]) -> None:
        """One flush of each lane of ``group`` together; a lane that wants another one right
        away (woken meanwhile, or above its watermark) then goes on on its own."""
        more: list[Lane] = []
        try:
            for lane in group:
                self._again.discard(lane)
            await self._flush_once(group)
            more = [lane for lane in group if self._wants_more(lane)]
        finally:
            for lane in group:
                if lane not in more:
                    self._release(lane)
        assert self._nursery is not None
        for lane in more:  # still busy: its own task flushes it again
            self._nursery.start_soon(self._flush_lane, lane)

    def _wants_more(self, lane: Lane) -> bool:
        return lane in self._again or lane.level >= lane.high or (
            self._stopping and bool(lane.pending))

    def _release(self, lane: Lane) -> None:
        self._busy.discard(lane)
        self._again.discard(lane)
        if not self._busy:
            self._idle.set()

    async def _flush_once(self, lanes: list[Lane]) -> None:
        now = trio.current_time()
        for lane in lanes:
            self._last_flush[lane] = now
            self.held[lane] = lane.first_seq  # journal checkpoint: until durable
        try:
            parts: list[Partition] = []
            for lane in lanes:
                parts.extend(await self._drain_parts(lane))
            await self._write_partitions(parts)
        finally:
            for lane in lanes:
                del self.held[lane]

    async def _drain_parts(self, lane: Lane) -> list[Partition]:
        """Drain ``lane``: its spilled rows to the dead letter, its rows as one partition per
        UTC date (rows no calendar can place to the dead letter too)."""
        spilled = lane.take_spill()
        rows = lane.drain()
        lane.drained()  # journal checkpoint
        if spilled:
            await self._to_dead_letter(lane.kind, lane.symbol, spilled, "spilled from a full lane",
                                      lane.venue)
        if not rows:
            return []
        try:
            return split_by_date(lane.kind, lane.symbol, rows, lane.venue)
        except Exception as exc:  # e.g. an event time no calendar has: keep the rows anyway
            await self._to_dead_letter(lane.kind, lane.symbol, rows, f"cannot partition: {exc}",
                                       lane.venue)
            return []

    def _grouped(self) -> SaveManyFn | None:
        """``save_many`` while ``save`` is still the one it batches; a save replaced since (a
        wrapper, an injected fault) is honoured, file by file."""
        return self._save_many if self._save is self._paired_save else None

    async def _write_partitions(self, parts: list[Partition]) -> None:
        """One partition (the usual batch, within one UTC date) without a task of its own;
        several: written as one job with ``save_many``, else each on its own, concurrently."""
        if len(parts) <= 1 or self._grouped() is not None:
            if parts:
                await self._write_partition(parts)
            return
        async with trio.open_nursery() as nursery:
            for part in parts:
                nursery.start_soon(self._write_partition, [part])

    async def _save_parts(self, parts: list[Partition], gates: list[PublishGate],
                          writes: list[PartWrite]) -> None:
        """The writes themselves (under the limiter and the write timeout): one ``save``, or
        one ``save_many`` job for several. A failure is its write's own."""
        save_many = self._grouped()
        if len(parts) == 1 or save_many is None:
            for part, gate, write in zip(parts, gates, writes, strict=True):
                try:
                    write.written = await self._save(part, gate)
                except Exception as exc:  # any failure of one write is its own
                    write.fail(exc, self.stats.kind(part.kind))
            return
        try:
            outcomes = await save_many(parts, gates)
        except Exception as exc:  # the whole job failed: every write of it did
            outcomes = [exc] * len(parts)
        for write, part, outcome in zip(writes, parts, outcomes, strict=True):
            if isinstance(outcome, Exception):
                write.fail(outcome, self.stats.kind(part.kind))
            else:
                write.written = outcome

    async def _published(self, writes: list[PartWrite], parts: list[Partition],
                         started: float) -> None:
        """Staged files wait for their group commit outside the limiter, so the next
        partitions encode meanwhile and one sync serves many files (a group's files together,
        in one batch: they share the deadline too)."""
        waiting = [(write, part) for write, part in zip(writes, parts, strict=True)
                   if isinstance(write.written, Committing) and write.error is None
                   and not write.timed_out]
        if not waiting:
            return
        with trio.move_on_at(started + self.write_timeout) as timeout:
            outcomes = await published([write.written for write, _part in waiting])
            for (write, part), outcome in zip(waiting, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    write.fail(outcome, self.stats.kind(part.kind))
                else:
                    write.written = outcome
        for write, _part in waiting:
            write.timed_out = timeout.cancelled_caught

    async def _write_partition(self, parts: list[Partition]) -> None:
        """Write ``parts`` (one job), each file with its own gate, commit and outcome: a failed,
        timed-out or aborted one goes to the dead letter, never back into memory."""
        gates = [PublishGate() for _part in parts]
        writes = [PartWrite() for _part in parts]
        elapsed = 0.0
        try:
            # ``abort()`` cancels this scope: a write waiting for the limiter, or running, then
            # goes straight to the dead letter instead of starting (or finishing) late.
            with trio.CancelScope() as aborted:
                self._write_scopes.add(aborted)
                try:
                    async with self.limiter:
                        started = trio.current_time()
                        with trio.move_on_after(self.write_timeout) as timeout:
                            await self._save_parts(parts, gates, writes)
                        for write in writes:
                            write.timed_out = timeout.cancelled_caught
                    await self._published(writes, parts, started)
                    elapsed = trio.current_time() - started
                finally:
                    self._write_scopes.discard(aborted)
            for write, part, gate in zip(writes, parts, gates, strict=True):
                if (aborted.cancelled_caught or write.timed_out) and write.error is None:
                    if gate.abandon():
                        self.stats.kind(part.kind).write_timeouts += 1
                        write.error = ("aborted at shutdown" if aborted.cancelled_caught
                                       else f"write timed out after {self.write_timeout:g}s")
                    else:  # the thread had already decided to publish: how did that end?
                        write.error = await self._publish_outcome(gate, part.kind, part.symbol,
                                                                  part.n)
        except BaseException:
            # The app is being torn down mid-write (Cancelled, or a group of them from a
            # backend's own nursery): the batches must still reach the disk, all at once (each
            # dump is shielded and ends by the teardown's deadline).
            self._tearing_down()
            dumps = [(part.kind, part.symbol, part.rows, "cancelled", part.venue)
                     for part, gate in zip(parts, gates, strict=True) if gate.abandon()]
            with trio.CancelScope(shield=True):
                await self._all_at_once(self._to_dead_letter, dumps)
            raise
        failed = []
        for write, part in zip(writes, parts, strict=True):
            if write.error is None:
                self._record_written(part, write.written)
                self._notify(part.kind, "ok", part.n, elapsed)
            else:
                failed.append((part, write.error, elapsed, aborted.cancelled_caught))
        await self._all_at_once(self._failed, failed)

    @staticmethod
    async def _all_at_once(fn: Callable[..., Awaitable[None]], calls: list[Any]) -> None:
        """``fn(*args)`` for each of ``calls``, concurrently (one without a task of its own)."""
        if len(calls) == 1:
            await fn(*calls[0])
        elif calls:
            async with trio.open_nursery() as nursery:
                for args in calls:
                    nursery.start_soon(fn, *args)

    async def _failed(self, part: Partition, error: str, elapsed: float, aborted: bool) -> None:
        """A failed write: its batch goes to the dead letter."""
        self.stats.kind(part.kind).last_error = error
        if not aborted:  # an abort is announced once, by whoever stopped us
            self._ratelog.log(logging.WARNING, f"{part.kind}:{error.split(':')[0]}",
                              "write of %s/%s %s (%d rows) failed: %s; sent to the dead letter",
                              part.kind, part.symbol, part.date, part.n, error)
        self._notify(part.kind, "failed", part.n, elapsed)
        await self._to_dead_letter(part.kind, part.symbol, part.rows, error, part.venue)

    async def _publish_outcome(self, gate: PublishGate, kind: str, symbol: str,
                               n: int) -> str | None:
        """The waiter timed out after the write thread had won the gate: wait (shielded, until
        a stop's hard deadline at most) for its publish step to end. None: the file is
        published; else why not (the batch then goes on as a failed write: nothing was
        published)."""
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def wake() -> None:  # the writer's thread
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        if gate.when_settled(wake):
            # a rename is short unless the disk hangs; this lane waits for it (its batch holds
            # the journal checkpoint meanwhile), other lanes go on; a stop's hard deadline ends it
            with trio.CancelScope(shield=True, deadline=self._hard_deadline):
                await done.wait()
        if gate.failed:
            return "publishing the file failed after the write timed out"
        if not gate.settled:  # a rename hanging past the stop: the file may still appear
            log.error("publish of %d %s rows of %s still under way at the stop's deadline; "
                      "counted as written (the file appears if the rename returns)",
                      n, kind, symbol)
        return None

    def _record_written(self, part: Partition, written: Any) -> None:
        ks = self.stats.kind(part.kind)
        ks.rows_written += part.n
        ks.files_written += 1
        ks.bytes_written += int(getattr(written, "bytes", 0) or 0)
        ks.last_write_at = trio.current_time()
        key = (part.kind, part.symbol)
        self.stats.rows_written_by[key] = self.stats.rows_written_by.get(key, 0) + part.n
        fs = self.stats.files.get(key)
        n = part.n
        self.stats.files[key] = (1, n, n) if fs is None else (fs[0] + 1, min(fs[1], n),
                                                              max(fs[2], n))

    async def _to_dead_letter(self, kind: str, symbol: str, rows: RowData, reason: str,
                              venue: str = DEFAULT_VENUE) -> None:
        """Write rows to the dead letter, within ``deadletter_timeout``. If even that fails the
        rows are counted as lost and logged as an error: memory is never the fallback."""
        ks = self.stats.kind(kind)
        gate = PublishGate()
        error: str | None = None
        timed_out = False
        # Shielded: a teardown must not interrupt it. Bounded instead by its own timeout and,
        # once ``abort()`` has set it, by the stop's hard deadline (limiter wait included).
        with trio.CancelScope(shield=True, deadline=self._hard_deadline) as hard:
            self._dl_scopes.add(hard)
            async with contextlib.AsyncExitStack() as stack:
                stack.callback(self._dl_scopes.discard, hard)
                if not self._stopping:  # at a stop every dump runs at once (threads permitting)
                    await stack.enter_async_context(self.deadletter_limiter)
                with trio.move_on_after(self.deadletter_timeout) as scope:
                    try:
                        await self._dead_letter_fn(kind, symbol, rows, gate, venue=venue)
                    except Exception as exc:
                        error = f"{type(exc).__name__}: {exc}"
                timed_out = scope.cancelled_caught
        if (timed_out or hard.cancelled_caught) and error is None:
            if gate.abandon():
                error = f"dead-letter write timed out after {self.deadletter_timeout:g}s"
            else:
                error = await self._publish_outcome(gate, kind, symbol, len(rows))
        if error is None:
            ks.rows_deadlettered += len(rows)
            ks.deadletter_files += 1
            self._notify(kind, "deadlettered", len(rows), 0.0)
        else:
            ks.rows_lost += len(rows)
            kept = self._keep_in_journal(kind, symbol)
            log.error("LOST %d %s rows of %s: dead letter failed too (%s); first write: %s%s",
                      len(rows), kind, symbol, error, reason,
                      "; the journal keeps them for the next start" if kept else "")
            self._notify(kind, "lost", len(rows), 0.0)
            if self.on_lost is not None:
                try:
                    self.on_lost(kind, symbol, _as_rows(rows), error)
                except Exception:
                    log.exception("recording the loss of %d %s rows of %s failed",
                                  len(rows), kind, symbol)

    def _keep_in_journal(self, kind: str, symbol: str) -> bool:
        """Authoritative rows the dead letter could not take at a stop: pin the journal
        checkpoint at the seq their batch still holds, so the segments holding their frames
        survive this run (a replay at the next start writes them). True when a seq was pinned."""
        if not self._stopping:
            return False
        seqs = [seq for lane, seq in self.held.items()
                if lane.authoritative and lane.kind == kind and lane.symbol == symbol and seq >= 0]
        if not seqs:
            return False
        low = min(seqs)
        if self.lost_seq < 0 or low < self.lost_seq:
            self.lost_seq = low
        return True

    def _notify(self, kind: str, outcome: str, rows: int, seconds: float) -> None:
        if self._observe is not None:
            self._observe(kind, outcome, rows, seconds)

    # -- shutdown ------------------------------------------------------------------------------

    def _tearing_down(self) -> None:
        """The first write cancelled by a teardown (a crash): from now on every dump runs at
        once, without the limiter, and all of them end by one deadline, so the teardown takes
        ``deadletter_timeout`` whatever the number of busy lanes."""
        if self.teardown_at is not None:
            return
        now = trio.current_time()
        self.teardown_at = now
        self._stopping = True
        self._hard_deadline = min(self._hard_deadline, now + self.deadletter_timeout)
        for hard in self._dl_scopes:
            hard.deadline = min(hard.deadline, self._hard_deadline)

    @property
    def busy(self) -> int:
        return len(self._busy)

    async def flush_everything(self) -> None:
        """Final flush: stop timer-driven flushing, flush every lane with data and wait until all
        flushes (including ones already in flight) are done. Call it after ingest has stopped,
        inside a shielded scope with a deadline; on that deadline call ``abort()``."""
        self._stopping = True
        if self._nursery is None:
            raise RuntimeError("rotation is not running")
        # At a stop nothing else competes for the disk: write more partitions at once (fsyncs
        # overlap; Polars encodes outside the GIL), so a large buffer lands within the grace.
        if self.limiter.total_tokens < STOP_CONCURRENCY:
            self.limiter.total_tokens = STOP_CONCURRENCY
        # Authoritative lanes first, alone: if the grace runs out, what is left for the dead
        # letter should be derived rows, not trades and books.
        for authoritative in (True, False):
            self._start_flushes([lane for lane in self.lanes
                                 if lane.authoritative == authoritative and lane.pending])
            await self._idle.wait()
            if self.on_stop_phase is not None:
                self.on_stop_phase("authoritative files" if authoritative else "derived files")

    async def abort(self, deadline: float | None = None) -> None:
        """Grace is over: cancel every write queued or in flight (their batches go to the dead
        letter) and dump every lane straight into the dead letter, all at once. Every dead-letter
        write, however it started, ends by ``deadline`` (default: ``deadletter_timeout`` from
        now); what is not written by then is counted as lost and logged."""
        self._stopping = True
        self._hard_deadline = (trio.current_time() + self.deadletter_timeout
                               if deadline is None else deadline)
        for hard in self._dl_scopes:  # dumps already under way or queued
            hard.deadline = min(hard.deadline, self._hard_deadline)
        for scope in list(self._write_scopes):
            scope.cancel()
        async with trio.open_nursery() as nursery:
            for lane in self.lanes:
                spilled = lane.take_spill()
                spilled.extend(lane.drain())
                if spilled:
                    nursery.start_soon(
                        self._to_dead_letter, lane.kind, lane.symbol, spilled, "shutdown",
                        lane.venue)
        await self._idle.wait()


def _as_rows(rows: RowData) -> list[Row]:
    """Tuples, for the rare path that records a loss (a batch, a frame or already a list)."""
    if isinstance(rows, list):
        return rows
    if isinstance(rows, pl.DataFrame):
        return rows.rows()
    return list(rows)
