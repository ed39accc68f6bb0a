"""Background compaction inside ``run`` (``auto_compact``, off by default).

Owns the pace: a first pass ``FIRST_AFTER`` seconds after start, then one every ``EVERY``
seconds, each in one worker thread, over the closed partitions of this run's own symbols only
(so shards sharing a dataset never compact the same partition), under the dataset's compaction
lock (a pass is skipped while ``python -m trio_harvest compact`` holds it). Bounded: one pass at
a time, nothing kept between passes. Never stops the harvester: a failed pass is logged and
the next one tries again. A pass cut off by the stop is safe (compaction is crash-safe).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from .compact import Busy, Compactor, CompactReport, exclusive

log = logging.getLogger("trio_harvest.autocompact")

FIRST_AFTER = 10.0
EVERY = 600.0


@dataclass(slots=True)
class AutoCompactStats:
    passes: int = 0
    merged_files: int = 0
    source_files: int = 0
    failures: int = 0
    last_error: str = ""


def compact_once(data_dir: Path, make: Callable[[], Compactor]) -> CompactReport | None:
    """One pass (blocking); None if another compaction holds the lock."""
    if not data_dir.is_dir():  # nothing written yet
        return CompactReport()
    try:
        with exclusive(data_dir):
            return make().run()
    except Busy:
        return None


InThread = Callable[[Callable[[], CompactReport | None]], Awaitable[CompactReport | None]]


async def _worker_thread(fn: Callable[[], CompactReport | None]) -> CompactReport | None:
    return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


async def run_auto_compact(data_dir: Path, make: Callable[[], Compactor], stats: AutoCompactStats,
                           *, first_after: float | None = None, every: float = EVERY,
                           in_thread: InThread = _worker_thread) -> None:
    await trio.sleep(FIRST_AFTER if first_after is None else first_after)
    while True:
        try:
            report = await in_thread(functools.partial(compact_once, data_dir, make))
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
