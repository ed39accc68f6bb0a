"""The journal: every frame received, as its exact bytes with its receive time and connection,
appended to local append-only segments before it is routed (each commit one zstd block by
default, ``format.py``).

Owns the loop side (``append``: a tuple into a list, no I/O, no context manager, bounded by
``memory_bytes``), the group commit (a task that every quarter ``fsync_ms``, or sooner when the
buffer fills, hands the batch to the committer thread to write and fsync, ``committer.py``,
and accounts it at the next commit), segment rolls, deleting
(or archiving, ``raw_dir``) sealed segments once the checkpoint has passed them (never one found
at start-up before restart replay has read it: ``replayed``), ``max_bytes``
on disk, and its own failure: a write error, a full disk or a stuck thread stops journaling
(ingest goes on; ``failing`` says why), a retry every tick reopens a fresh segment, and the
unprotected interval is handed to ``on_unprotected`` to become a ``gaps`` row. Ingest never
waits for the disk. Never reads frames back (``replay.py`` does) and never decodes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import msgspec
import trio

from ..ratelimit import RateLimitedLog
from . import files
from . import format as fmt
from .archive import archive_segment
from .checkpoint import NONE, deletable, oldest_not_durable
from .committer import Committer, Job

log = logging.getLogger("trio_harvest.journal")

Pending = files.Pending  # seq, recv_ns, conn, type, payload
UnprotectedFn = Callable[[int, int, str], None]  # start_ms, end_ms, why
PressureFn = Callable[[int], None]  # please make rows derived from seqs below this durable

_encode = msgspec.json.encode
_FRAME = fmt.FRAME
STUCK_AFTER = 10.0  # a commit thread running this long counts as stuck


@dataclass(eq=False, slots=True)
class Segment:
    first_seq: int
    path: Path
    last_seq: int = -1  # -1: no record yet
    bytes: int = 0
    first_ns: int = 0  # receive time of its first record (0: none)
    opened_at: float = 0.0  # trio time
    sealed: bool = False


@dataclass(slots=True)
class JournalStats:
    records: int = 0  # records written and fsynced
    bytes: int = 0
    commits: int = 0
    unprotected: int = 0  # records appended while journaling was off
    failures: int = 0
    deleted: int = 0  # segments removed after the checkpoint passed them
    archived: int = 0  # segments moved to raw_dir


@dataclass(eq=False, slots=True)
class _InFlight:  # a group commit handed to the committer thread, not yet accounted
    job: Job
    seg: Segment
    records: int
    first_ns: int
    last_seq: int
    roll: bool  # the segment was due to roll when the batch was handed over


@dataclass(slots=True)
class _Outage:
    since_ms: int
    why: str


class Journal:
    def __init__(
        self,
        directory: Path,
        *,
        fsync_ms: int = 200,
        segment_bytes: int = 64 * 1024**2,
        segment_s: float = 60.0,
        max_bytes: int = 2 * 1024**3,
        raw_dir: Path | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        buffer_bytes: int = 4 * 1024**2,
        memory_bytes: int = 64 * 1024**2,
        compress_level: int | None = fmt.ZSTD_LEVEL,
        venue: str | None = None,
    ) -> None:
        self.directory = directory
        self.venue = venue  # named in each connection's OPEN record: the archive says its venue
        self.fsync_s = fsync_ms / 1000
        self.segment_bytes = segment_bytes
        self.segment_s = segment_s
        self.max_bytes = max_bytes
        self.raw_dir = raw_dir
        self.clock_ns = clock_ns
        self.buffer_bytes = buffer_bytes
        self.memory_bytes = memory_bytes
        # each commit's records as one zstd block (None: plain records, the old format)
        self.compress_level = compress_level
        self.seq = 0  # the last seq handed out
        self.cursor = [0]  # seq of the frame being routed, shared with the lanes (one store)
        self.last_ns = 0  # receive time of the last frame appended
        self.stats = JournalStats()
        self.segments: list[Segment] = []  # oldest first; the last one is active unless sealed
        self.old: list[Segment] = []  # segments found at start-up: what restart replay reads
        # the first seq of ``old`` until restart replay has read them (``replayed``): the commit
        # task's housekeeping runs from the start, while the start-up (a venue's listing over
        # REST) still comes before the replay, whose position holds the checkpoint only once
        # it runs; without this hold a segment the checkpoint function knows nothing of yet
        # would be deleted unread
        self.replay_hold = NONE
        self.failing = ""  # why journaling is off ("" = journaling)
        self.checkpoint: Callable[[], int] = lambda: self.seq + 1
        self.on_unprotected: UnprotectedFn | None = None
        self.pressure: PressureFn | None = None
        self._pending: list[Pending] = []
        self._pending_bytes = 0
        self._accepting = False  # until run() has opened a segment
        self._outage: _Outage | None = None
        self._wake = trio.Event()
        self._fh: IO[bytes] | None = None
        self._committer = Committer()
        self._inflight: _InFlight | None = None
        self._closed = False
        self._lock_fd: int | None = None
        self._lock = trio.Lock()  # one commit step at a time
        self._hk_lock = trio.Lock()
        self._ratelog = RateLimitedLog(log, interval=60.0)

    # -- the loop side (hot path) ----------------------------------------------------------------

    def append(self, conn: int, frame: str | bytes) -> int:
        """Journal one received frame (in memory); returns its seq. O(1), never blocks."""
        seq = self.seq = self.seq + 1
        self.cursor[0] = seq
        ns = self.last_ns = self.clock_ns()
        if self._accepting:
            self._pending.append((seq, ns, conn, _FRAME, frame))
            size = self._pending_bytes = self._pending_bytes + len(frame)
            if size > self.buffer_bytes:
                self._filled()
        else:
            self.stats.unprotected += 1
        return seq

    def recv_ms(self) -> int:
        """The receive time of the frame being routed (the router's ``recv_ms``)."""
        return self.last_ns // 1_000_000

    def record(self, rtype: int, payload: bytes, conn: int = 0) -> int:
        """Journal a non-frame record (connection event, off-stream row). Does not move the
        cursor: the rows it makes are covered by the frame seq current when they enter a lane."""
        seq = self.seq = self.seq + 1
        if self._accepting:
            self._pending.append((seq, self.clock_ns(), conn, rtype, payload))
            self._pending_bytes += len(payload)
            if self._pending_bytes > self.buffer_bytes:
                self._filled()
        return seq

    def event(self, conn: int, opened: bool, text: str) -> None:
        """A connection opened (``text``: its URL) or its session ended (``text``: why)."""
        body = ({"url": text} if self.venue is None else {"url": text, "venue": self.venue}) \
            if opened else {"reason": text}
        self.record(fmt.OPEN if opened else fmt.CLOSE, _encode(body), conn)

    def row(self, kind: str, row: tuple[object, ...]) -> None:
        """An authoritative row made off the stream (a gap, a backfilled trade)."""
        self.record(fmt.ROW, _encode({"kind": kind, "row": row}))

    def book_snapshot(self, venue: str, symbol: str, body: object) -> int:
        """A REST depth snapshot handed to ``symbol``'s diff book; returns its seq."""
        return self.record(fmt.SNAPSHOT, _encode({"venue": venue, "symbol": symbol,
                                                  "body": body}))

    def book_state(self, venue: str, symbol: str, state: object) -> int:
        """``symbol``'s diff book as it stands (a base replay can rebuild it from); its seq."""
        return self.record(fmt.BOOK_STATE, _encode({"venue": venue, "symbol": symbol,
                                                    "state": state}))

    @property
    def closing(self) -> bool:
        """``close`` has begun: no record written now reaches the disk."""
        return self._closed

    def features_tick(self, now_ms: int, grace: bool) -> None:
        """The features clock read ``now_ms`` (once a second): replay closes seconds alike."""
        self.record(fmt.TICK, _encode({"now_ms": now_ms, "grace": grace}))

    def _filled(self) -> None:
        if self._pending_bytes > self.memory_bytes:  # the disk cannot keep up: stop, stay bounded
            self._stop_journaling("the journal's disk cannot keep up (memory bound reached)",
                                  drop_pending=True)
        self._wake.set()

    # -- state ---------------------------------------------------------------------------------

    @property
    def disk_bytes(self) -> int:
        return sum(s.bytes for s in self.segments)

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    @property
    def commit_started(self) -> float | None:
        """Wall (monotonic) time the commit in flight started; None when none is."""
        inflight = self._inflight
        if inflight is None or inflight.job.done:
            return None
        return inflight.job.started

    # -- start-up ------------------------------------------------------------------------------

    def open(self) -> None:
        """Blocking (start-up, in a thread): find the segments an earlier run left (they are
        what replay reads) and continue the seq after them. A directory that cannot be read is
        logged, not raised: harvesting starts anyway and ``run`` reports the journal failing."""
        try:
            self._scan()
        except OSError as exc:
            log.error("journal: cannot read %s (%s); starting without what it held",
                      self.directory, exc)

    def _scan(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = files.lock_dir(self.directory)  # ConfigError if another process has it
        last = 0
        for path in sorted(self.directory.glob(f"seg-*{fmt.SUFFIX}")):
            first = fmt.parse_segment_name(path.name)
            if first is None:
                continue
            records = fmt.read_segment(path)
            seg = Segment(first, path, records[-1].seq if records else first - 1,
                          path.stat().st_size, records[0].recv_ns if records else 0, 0.0, True)
            self.old.append(seg)
            last = max(last, seg.last_seq, first)  # new segments sort after every old one
        for tmp in self.directory.glob("*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.segments = list(self.old)
        self.replay_hold = min((s.first_seq for s in self.old), default=NONE)
        self.seq = last
        self.cursor[0] = last

    def replayed(self) -> None:
        """Restart replay has read the segments found at start-up: from now on the checkpoint
        alone says when they may go."""
        self.replay_hold = NONE

    # -- the commit task -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commits on a fixed grid of a quarter ``fsync_ms`` (a slow fsync is followed at once by the
        next commit, so a frame waits at most ``fsync_ms / 4`` plus one commit); housekeeping
        (deleting, archiving) in its own task, so a segment being compressed never delays one.
        Each commit is handed to the committer thread and accounted at the next one (or at once
        by ``tick`` and ``close``), which waits for it first: one commit in flight at a time."""
        await self._try_reopen()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._housekeeping)
                task_status.started()
                period = self.fsync_s / 4  # the rest is left for a slow fsync or a busy loop
                next_at = trio.current_time() + period
                while True:
                    with trio.move_on_at(next_at):
                        await self._wake.wait()
                    self._wake = trio.Event()
                    started = trio.current_time()
                    await self._commit_step(wait=False)
                    next_at = started + period
        finally:  # cancelled (a crash of the app): what is on disk stays for the next replay
            # the commit in flight ends (as a trio worker thread's did) before the file closes
            # and the directory is released; a disk stuck that long is left to its thread
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + STUCK_AFTER
                await self._settle()
            fh, self._fh = self._fh, None
            if fh is not None:
                if self._inflight is None:
                    with contextlib.suppress(OSError):
                        fh.close()
                else:  # still writing: closed by the committer thread after that write
                    self._committer.submit(fh.close)
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the directory for the next run
                self._lock_fd = None

    async def _housekeeping(self) -> None:
        while True:
            await trio.sleep(self.fsync_s)
            await self.housekeep()

    async def tick(self) -> None:  # one group commit, then housekeeping (``run``'s two tasks)
        await self._commit_step()
        await self.housekeep()

    async def _commit_step(self, wait: bool = True) -> None:
        """A group commit; after a failure, seal what was written and retry when allowed.
        ``wait``: until it is durable and accounted (else that is left to the next commit)."""
        try:  # the lock free (as it nearly always is): taken without a scheduler round
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()
        try:
            await self._commit(wait)
            if not self._accepting and self._fh is not None:  # stopped: seal what was written
                await self._seal()
            if (not self._accepting and not self._closed
                    and self.disk_bytes <= self.max_bytes * 0.9):
                await self._try_reopen()  # journaling again once the disk allows
        finally:
            self._lock.release()

    async def _commit(self, wait: bool = True) -> None:
        await self._collect()  # the previous commit first: one in flight, in order
        if (self._fh is not None and self._pending
                and self.disk_bytes + self._pending_bytes > self.max_bytes):
            # the bound holds at the write, not only when housekeeping next looks (a busy loop
            # or a slow disk can delay that by many commits)
            self._stop_journaling(f"journal_max_bytes ({self.max_bytes}) reached",
                                  drop_pending=True)
            return
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        if not batch or self._fh is None:
            return
        seg = self.segments[-1]
        roll = (seg.bytes >= self.segment_bytes
                or trio.current_time() - seg.opened_at >= self.segment_s)
        job = self._committer.submit(files.write_batch, self._fh, batch, seg.path,
                                     self.compress_level)
        self._inflight = _InFlight(job, seg, len(batch), batch[0][1], batch[-1][0], roll)
        if wait:
            await self._collect()

    async def _collect(self) -> None:
        """Account the commit in flight once it is durable (waiting for it if need be): its
        records, or its failure; then the roll it was due for."""
        inflight = self._inflight
        if inflight is not None:
            await self._committer.wait(inflight.job)
            if self._inflight is inflight and self._account():
                await self._roll()

    async def _settle(self) -> None:
        """Wait for the commit in flight and account it, without the roll (its segment is
        being sealed, or the run is ending)."""
        inflight = self._inflight
        if inflight is not None:
            await self._committer.wait(inflight.job)
            if self._inflight is inflight:  # not accounted meanwhile by another waiter
                self._account()

    def _account(self) -> bool:
        """Account the commit in flight, which has ended; whether its segment is due to roll."""
        inflight, self._inflight = self._inflight, None
        assert inflight is not None
        job = inflight.job
        if job.error is not None:  # ENOSPC, EIO, a removed directory...: never the app's end
            self.stats.failures += 1
            self._outage_from(inflight.first_ns // 1_000_000,
                              f"{type(job.error).__name__}: {job.error}")
            return False
        written: int = job.result
        st = self.stats
        st.records += inflight.records
        st.bytes += written
        st.commits += 1
        seg = inflight.seg
        if not seg.first_ns:
            seg.first_ns = inflight.first_ns
        seg.last_seq = inflight.last_seq
        seg.bytes += written
        return inflight.roll

    async def _roll(self) -> None:
        """Seal the active segment and open the next one."""
        await self._seal()
        await self._try_reopen()

    async def _seal(self) -> None:
        """Close the active segment (in a thread: the disk may hang); it can go once passed."""
        await self._settle()  # the write in flight ends before its file closes
        fh, self._fh = self._fh, None
        if self.segments:
            self.segments[-1].sealed = True
        if fh is not None:
            with contextlib.suppress(Exception):
                await trio.to_thread.run_sync(fh.close, abandon_on_cancel=True)

    async def _try_reopen(self) -> None:
        first = self._pending[0][0] if self._pending else self.seq + 1
        path = self.directory / fmt.segment_name(first)
        try:
            fh = await trio.to_thread.run_sync(files.create_segment, path,
                                               self.compress_level is not None)
        except Exception as exc:
            self._outage_from(self.clock_ns() // 1_000_000, f"{type(exc).__name__}: {exc}")
            return
        if self.disk_bytes > self.max_bytes:
            with contextlib.suppress(OSError):
                fh.close()
                path.unlink()
            self._outage_from(self.clock_ns() // 1_000_000,
                              f"journal_max_bytes ({self.max_bytes}) reached")
            return
        self._fh = fh
        self.segments.append(Segment(first, path, first - 1, len(fmt.MAGIC),
                                     opened_at=trio.current_time()))
        self._accepting = True
        outage, self._outage = self._outage, None
        if outage is not None:
            self.failing = ""
            end_ms = self.clock_ns() // 1_000_000
            log.warning("journal: journaling again (it was off since %d: %s)", outage.since_ms,
                        outage.why)
            if self.on_unprotected is not None:
                self.on_unprotected(outage.since_ms, end_ms, outage.why)

    def _outage_from(self, since_ms: int, why: str) -> None:
        if self._outage is None:
            self._outage = _Outage(since_ms, why)
            log.error("journal: stopped journaling (%s); harvesting goes on without crash "
                      "protection until the journal's disk allows", why)
        self._stop_journaling(why, drop_pending=True)

    def _stop_journaling(self, why: str, *, drop_pending: bool) -> None:
        if self._outage is None:
            first = self._pending[0][1] // 1_000_000 if self._pending else self.clock_ns() // 1_000_000
            self._outage = _Outage(first, why)
            log.error("journal: stopped journaling (%s)", why)
        self.failing = why
        self._accepting = False
        if drop_pending:
            self.stats.unprotected += len(self._pending)
            self._pending, self._pending_bytes = [], 0
        # the file is closed by the commit task (``tick``): a commit thread may be using it now

    # -- checkpoint and bounds -------------------------------------------------------------------

    async def housekeep(self) -> None:
        """Delete (or archive) sealed segments the checkpoint has passed; apply ``max_bytes``."""
        async with self._hk_lock:  # one at a time: a segment is archived once
            await self._housekeep()

    async def _housekeep(self) -> None:
        cp = oldest_not_durable(self.checkpoint(), (self.replay_hold,))
        sealed = [(s.first_seq, s.last_seq) for s in self.segments if s.sealed]
        gone = set(deletable(sealed, cp))
        for seg in [s for s in self.segments if s.first_seq in gone]:
            try:
                if self.raw_dir is not None and seg.last_seq >= seg.first_seq:
                    await trio.to_thread.run_sync(archive_segment, seg.path, self.raw_dir,
                                                  seg.first_ns)
                    self.stats.archived += 1
                else:
                    await trio.to_thread.run_sync(seg.path.unlink, True)
                    self.stats.deleted += 1
            except Exception as exc:  # e.g. raw_dir unwritable: the segment stays, journal grows
                self._ratelog.log(logging.WARNING, "remove", "journal: cannot %s segment %s: %s",
                                  "archive" if self.raw_dir is not None else "remove",
                                  seg.path.name, exc)
                continue
            if seg in self.segments:
                self.segments.remove(seg)
            if seg in self.old:
                self.old.remove(seg)
        total = self.disk_bytes
        if self.pressure is not None and total > self.max_bytes // 2:
            self.pressure(cp)  # flush the lanes that hold the checkpoint back
        if total > self.max_bytes and self._accepting:
            self._stop_journaling(f"journal_max_bytes ({self.max_bytes}) reached",
                                  drop_pending=False)

    async def close(self) -> None:
        """At the end of a run (shielded by the caller): commit what is pending, seal the active
        segment, and remove every segment the checkpoint has passed."""
        self._closed = True
        async with self._lock:
            await self._commit()
            fh, self._fh = self._fh, None
            if fh is not None:
                with contextlib.suppress(OSError):
                    await trio.to_thread.run_sync(fh.close)
            for seg in self.segments:
                seg.sealed = True
            await self.housekeep()

