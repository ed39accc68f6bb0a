"""What a run reads from disk before anything starts: temp files a crash left behind (removed),
the notes worth a warning (a dead-letter backlog, simulated ids that would collide), and where
each symbol's trades left off (resume).

Owns that one start-up pass, at the app's level (it reads the config and asks storage, ops and
repair). Blocking: the app runs it in a worker thread. Never writes data;
removes only stale temporary files, and moves a dead letter from its old place
(``deadletter/``) to its new one (``_deadletter/``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .ops.startup import startup_notes
from .repair.resume import last_written
from .storage.dlmove import adopt_legacy
from .storage.partitions import DEADLETTER_DIR, LEGACY_DEADLETTER_DIR

if TYPE_CHECKING:
    from .config import Config
    from .storage.backends import Store
    from .storage.store import LocalStore

log = logging.getLogger("trio_harvest.app")


def startup_scan(cfg: Config, data: Store, deadletter: LocalStore,
                 unreadable: dict[str, list[str]], *,
                 sweep: bool = True) -> tuple[int, dict[str, tuple[int, int]]]:
    """(stale temp files removed, ``{symbol: (last agg_id, its ts_ms)}``); symbols whose files
    resume could not read go into ``unreadable`` and are logged, not seeded. ``sweep=False``:
    the caller removed stale temp files already (a run of several venues, once for all)."""
    removed = sweep_dataset(cfg, data, deadletter) if sweep else 0
    for note in startup_notes(cfg):  # a dead-letter backlog, simulated ids that would collide
        log.warning("%s", note)
    if cfg.sim or not cfg.resume:  # the simulator is a new exchange each run
        return removed, {}
    seeds = last_written(data, cfg.deadletter_path, cfg.symbols, unreadable, venue=cfg.venue)
    for symbol, files in unreadable.items():
        log.error("%s: not resuming agg-id continuity: %d files on disk cannot be read, so "
                  "the last trade written is not known (first: %s); the trades missed "
                  "while down are not backfilled", symbol, len(files), files[0])
    return removed, seeds


def sweep_dataset(cfg: Config, data: Store, deadletter: LocalStore) -> int:
    """The dataset-wide part of the start-up pass, once per process: a dead letter moved from
    its old place, stale temp files removed (their count)."""
    moved = adopt_legacy(cfg.data_dir, cfg.deadletter_path)
    if moved:
        log.info("moved %d dead-letter files from %s to %s (its new place)", moved,
                 cfg.data_dir / LEGACY_DEADLETTER_DIR, cfg.deadletter_path)
    return remove_stale_temps(cfg, data, deadletter)


def remove_stale_temps(cfg: Config, data: Store, deadletter: LocalStore) -> int:
    removed = data.remove_stale_temps()
    if (cfg.data_url  # the data store is a bucket: the local dead letter is apart
            or cfg.deadletter_path != cfg.data_dir / DEADLETTER_DIR):
        removed += deadletter.remove_stale_temps()
    if removed:
        log.info("removed %d stale temporary files left by an earlier crash", removed)
    return removed
