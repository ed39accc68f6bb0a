"""Background compaction inside ``run`` (``auto_compact``, on by default).

Owns the pace: a first round ``FIRST_AFTER`` seconds after start, then one every ``every``
seconds (``compact_interval``), each in one worker thread, over this run's own symbols only (so
shards sharing a dataset never compact the same partition), under the dataset's compaction lock
(a round is skipped while another compaction holds it: ``compact``, or another host on the same
bucket). Bounded: a round does at most ``ROUND_MERGES`` merges in ``ROUND_SECONDS`` and lists
only today and yesterday, except a full listing on the first round and every ``FULL_EVERY``
seconds; the next round goes on where it stopped. It never merges what an unfinished dead-letter
recovery wrote (its crash records in the dead letter say which). Never stops the harvester: a
failed round is logged and the next one tries again. A round cut off by the stop is safe
(compaction is crash-safe).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from .compact import DEFAULT_DELETE_AFTER, Compactor, CompactReport
from .compactlock import Busy, exclusive
from .merge import unfinished_tokens
from .store import LocalStore

log = logging.getLogger("trio_harvest.autocompact")

FIRST_AFTER = 10.0
EVERY = 60.0
FULL_EVERY = 3600.0  # seconds between rounds that list the whole dataset, not just two days
ROUND_MERGES = 400
ROUND_SECONDS = 30.0


@dataclass(slots=True)
class AutoCompactStats:
    passes: int = 0
    merged_files: int = 0
    source_files: int = 0
    failures: int = 0
    last_error: str = ""
    running: bool = False  # a round is in its worker thread now


def auto_compactor(store: Any, deadletter: Path, *, older_than: float, target_rows: int,
                   symbols: Iterable[str], delete_after: float = DEFAULT_DELETE_AFTER
                   ) -> Compactor:
    """The one compactor of a run: its symbols, bounded rounds, recovery's batches left alone,
    a merge's sources deleted by a later round once ``delete_after`` has passed."""
    return Compactor(store, older_than=older_than, target_rows=target_rows, symbols=symbols,
                     delete_after=delete_after,
                     busy=lambda: unfinished_tokens(deadletter), max_merges=ROUND_MERGES,
                     max_seconds=ROUND_SECONDS)


def recent_dates(now_s: float) -> list[str]:
    """Today and yesterday (UTC): where new files land, save a late straggler."""
    today = datetime.fromtimestamp(now_s, tz=UTC).date()
    return [(today - timedelta(days=1)).isoformat(), today.isoformat()]


def compact_once(where: Path | Any, compactor: Compactor,
                 dates: list[str] | None = None) -> CompactReport | None:
    """One round (blocking); None if another compaction holds the lock."""
    if isinstance(where, LocalStore):
        where = where.root
    if isinstance(where, Path) and not where.is_dir():  # nothing written yet
        return CompactReport()
    try:
        with exclusive(where) as held:
            compactor.keep = held.keep
            return compactor.run(dates)
    except Busy:
        return None


InThread = Callable[[Callable[[], CompactReport | None]], Awaitable[CompactReport | None]]


async def _worker_thread(fn: Callable[[], CompactReport | None]) -> CompactReport | None:
    return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


async def run_auto_compact(where: Path | Any, make: Callable[[], Compactor],
                           stats: AutoCompactStats, *, first_after: float | None = None,
                           every: float = EVERY, full_every: float | None = None,
                           in_thread: InThread = _worker_thread) -> None:
    """``where``: a local data dir or a store (the lock's place); ``make`` builds the compactor
    once (it remembers what it has read from round to round)."""
    await trio.sleep(FIRST_AFTER if first_after is None else first_after)
    compactor: Compactor | None = None
    last_full: float | None = None
    full_every = FULL_EVERY if full_every is None else full_every
    while True:
        try:
            if compactor is None:
                compactor = make()
            now = trio.current_time()
            full = last_full is None or now - last_full >= full_every
            dates = None if full else recent_dates(compactor.now())
            stats.running = True
            try:
                report = await in_thread(functools.partial(compact_once, where, compactor, dates))
            finally:
                stats.running = False
            if full and report is not None and not report.more:
                last_full = now
        except Exception as exc:  # e.g. the data dir cannot be listed right now
            stats.failures += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("background compaction failed: %s", stats.last_error)
        else:
            stats.passes += 1
            if report is None:
                log.info("background compaction skipped: another compaction is running")
            else:
                doc = report.as_dict()
                stats.merged_files += doc["merged_files"]
                stats.source_files += doc["source_files"]
                if report.failed:
                    stats.failures += len(report.failed)
                    stats.last_error = report.failed[0].error
                if doc["merged_files"] or report.failed:
                    log.info("background compaction: %s", report.render().splitlines()[-1])
        await trio.sleep(every)
