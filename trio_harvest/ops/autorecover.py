"""Automatic dead-letter recovery inside ``run``: once writes have been succeeding again for a
while, replay dead-letter files into their partitions, many at a time.

Owns *when* to recover (no write failure for ``auto_recover_after`` seconds and at least one good
write since the last failure) and the pace (up to ``auto_recover_batch`` files per
``health_interval``, merged per kind and symbol into batches, one batch at a time, each write
under the writers' own ``CapacityLimiter``), so a backlog of thousands drains in minutes. Reads
from disk only, through ``recover.Recoverer``: it never puts rows back into a lane and never
writes a dead-letter file, so a failing disk cannot turn it into the fail → re-queue loop of old
fault 4; a failed recovery leaves its file in place and waits for writes to succeed again.
Never stops the harvester, and
never stalls behind one permanently bad file: files that failed before are tried after all the
others (fewest failures first), so the rest of the dead letter still drains.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from ..hints import plural
from ..ratelimit import RateLimitedLog
from ..storage.location import S3Options
from ..storage.merge import plan_batches
from ..storage.recover import FileOutcome, Recoverer

if TYPE_CHECKING:
    from .view import HarvestView

log = logging.getLogger("trio_harvest.autorecover")


@dataclass(slots=True)
class AutoRecoveryStats:
    files: int = 0
    rows: int = 0
    rejected_lines: int = 0
    failures: int = 0
    last_error: str = ""
    last_recovered_at: float | None = None  # trio time
    state: str = "waiting"  # off | waiting | recovering | idle

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "files": self.files, "rows": self.rows,
                "rejected_lines": self.rejected_lines, "failures": self.failures,
                "last_error": self.last_error}


class AutoRecovery:
    def __init__(self, harvester: HarvestView) -> None:
        self.h = harvester
        cfg = harvester.config
        self.enabled = cfg.auto_recover
        self.after = cfg.auto_recover_after
        self.batch = cfg.auto_recover_batch
        self.interval = cfg.health_interval
        self._recoverer: Recoverer | None = None
        self.stats = AutoRecoveryStats(state="waiting" if self.enabled else "off")
        self._failures_seen = 0
        self._writes_seen = 0
        self._last_failure_at: float | None = None
        self._last_success_at: float | None = None
        self._failed: dict[str, int] = {}  # "<kind>/<name>" -> failed recoveries (pending only)
        self._ratelog = RateLimitedLog(log, interval=300.0, clock=trio.current_time)

    @property
    def recoverer(self) -> Recoverer:
        """Built on first use: the harvester's writers (its limiter) exist by then."""
        if self._recoverer is None:
            cfg = self.h.config
            self._recoverer = Recoverer(cfg.data_url or cfg.data_dir, cfg.deadletter_path,
                                        limiter=self.h.rotation.limiter,
                                        write_timeout=cfg.write_timeout, s3=S3Options.of(cfg))
        return self._recoverer

    def observe(self, now: float) -> None:
        """Note new write failures and successes since the last look (cheap counters)."""
        kinds = self.h.rotation.stats.kinds.values()
        failures = sum(k.write_failures + k.write_timeouts + k.deadletter_files for k in kinds)
        writes = sum(k.files_written for k in kinds)
        if failures != self._failures_seen:
            self._failures_seen = failures
            self._last_failure_at = now
        if writes != self._writes_seen:
            self._writes_seen = writes
            self._last_success_at = now

    def ready(self, now: float) -> bool:
        """Writes have been succeeding again for a while."""
        if self._last_success_at is None:
            return False
        if self._last_failure_at is None:
            started = self.h.started_at if self.h.started_at is not None else now
            return now - started >= self.after
        return self._last_success_at > self._last_failure_at and \
            now - self._last_failure_at >= self.after

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if not self.enabled:
            return
        stop = self.h.stop_state.requested
        while not stop.is_set():
            await trio.sleep(self.interval)
            now = trio.current_time()
            self.observe(now)
            if stop.is_set() or not self.ready(now):
                if self.stats.state == "recovering":
                    self.stats.state = "waiting"
                continue
            try:
                await self.round(now)
            except Exception as exc:  # e.g. the dead letter cannot be listed: try again later
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self._last_failure_at = trio.current_time()
                self._ratelog.log(logging.WARNING, "round-failed",
                                  "automatic recovery failed: %s", self.stats.last_error)

    async def round(self, now: float) -> None:
        # first the batches a failed write or a crash left unfinished, each with its own files
        # only (under its own names: a new batch of them would write their rows twice)
        done, rows, _failed = self._account(await self.recoverer.finish_interrupted())
        files = await self.recoverer.pending()
        names = {f"{f.kind}/{f.name}" for f in files}
        self._failed = {k: n for k, n in self._failed.items() if k in names}  # bounded
        files.sort(key=lambda f: self._failed.get(f"{f.kind}/{f.name}", 0))  # stable
        if not files:
            if self.stats.state == "recovering":
                log.info("dead letter is empty: recovered %d files, %d rows so far",
                         self.stats.files, self.stats.rows)
            self.stats.state = "idle"
            return
        if self.stats.state != "recovering":
            log.info("writes are succeeding again: recovering %d dead-letter files, %d at a time",
                     len(files), self.batch)
        self.stats.state = "recovering"
        for batch in plan_batches(files[: self.batch], max_rows=self.recoverer.max_batch_rows):
            if self.h.stop_state.requested.is_set():
                break
            n, r, failed = self._account(await self.recoverer.recover_batch(batch))
            done, rows = done + n, rows + r
            if failed:
                break
        if done:
            log.info("recovered %s, %s (%s left)", plural(done, "dead-letter file"),
                     plural(rows, "row"), plural(max(0, len(files) - done), "file"))

    def _account(self, outs: list[FileOutcome]) -> tuple[int, int, bool]:
        """(files recovered, their rows, whether one failed) of a batch's outcomes, counted."""
        done = rows = 0
        failed = False
        for out in outs:
            if out.error:
                failed = True
                self._failed[out.file] = self._failed.get(out.file, 0) + 1
                self.stats.failures += 1
                self.stats.last_error = out.error
                self._last_failure_at = trio.current_time()
                self.stats.state = "waiting"
                self._ratelog.log(logging.WARNING, "recover-failed",
                                  "automatic recovery of %s failed: %s; it stays in the dead "
                                  "letter, retried after %gs of good writes",
                                  out.file, out.error, self.after)
                continue
            self._failed.pop(out.file, None)
            if out.gone:
                continue
            self.stats.files += 1
            self.stats.rows += out.rows
            self.stats.rejected_lines += out.rejected
            self.stats.last_recovered_at = trio.current_time()
            done, rows = done + 1, rows + out.rows
            log.debug("recovered %s: %d rows into %s", out.file, out.rows, out.partitions)
            if out.rejected:
                log.warning("recovered %s: %d bad lines set aside in %s (first: %s)", out.file,
                            out.rejected, out.rejected_path, out.first_reason)
        return done, rows, failed
