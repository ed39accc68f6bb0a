"""Compaction: merge a partition's small part files into hourly files while its day runs, and
a closed day into files of up to ``target_rows`` rows; sorted by ``ts_ms``, crash-safe and
idempotent, on local disk and on an object store alike.

Owns the procedure, per partition (``date=…/symbol=…/kind=…``), through the store interface
only (``list``, ``read_bytes``, ``write_atomic``, ``delete``); which files are due is
``compactrules``' (hours while the day runs, the whole day once closed):

1. a compacted file already there whose sources still exist (their delete was deferred, or a
   run was killed between steps 3 and 4) has them deleted once it was published
   ``delete_after`` ago (their rows are in it); until then it is *pending*: neither it nor
   anything of its hour (its day, once closed) is merged again;
2. the live files that are due (not named by a compacted file, not owned by an unfinished
   dead-letter recovery) are grouped in time order, up to ``target_rows`` per group; an hourly
   file is itself a source when its day closes (or a late file joins its hour);
3. each group is read, given its kind's schema, sorted by ``ts_ms`` and written atomically as
   ``part-<first>-<last>-cmp<hash>.parquet``, whose metadata names its sources (and, through
   merged compacted files, every recovered file it holds); from then on every reader of this
   package ignores the sources (``fileschema.live_names``);
4. the sources are deleted, at once with ``delete_after = 0``; otherwise step 1 of a later run
   deletes them once the grace has passed, so a read that listed them just before the publish
   (a plain glob, DuckDB, a ``scan`` collected a moment later) still finds them.

Killed at any point and run again, every row is there exactly once: before step 3 nothing has
changed; after it, step 1 of a later run finishes the delete. A deferred delete is the same
state as a crash between steps 3 and 4, so it needs nothing else to be crash-safe. A compacted
file becomes a source only after step 1 cleared its own sources. Recovery's unfinished batches
are skipped (``busy``): their redo writes the same names again, which must not come back after
a merge. One run does at most ``max_merges`` merges within ``max_seconds``
(``CompactReport.more`` says work is left), so a background round stays bounded. Blocking: run
it in a worker thread.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePath
from typing import BinaryIO, Protocol

import polars as pl

from ..kinds import ORDERBOOK
from .compactlock import LOCK_NAME, Busy, exclusive
from .compactreport import CompactReport, PartitionOutcome
from .compactrules import (
    DEFAULT_DELETE_AFTER,
    DEFAULT_OLDER_THAN,
    DEFAULT_TARGET_ROWS,
    check_settings,
    grace_over,
    hive_key,
    hour_is_due,
    hour_of,
    is_closed,
    parse_duration,
    plan_groups,
    recovery_token,
    time_order,
)
from .encoding import PARQUET_OPTIONS
from .fileschema import (
    PUBLISHED_KEY,
    ROWS_KEY,
    SOURCES_KEY,
    compacted_name,
    conform,
    file_columns,
    is_compacted,
    orderbook_depth,
    published_in,
    sources_in,
    stored_metadata,
)
from .gate import PublishGate
from .partitions import date_prefixes, frame_ts_range
from .store import LocalStore

__all__ = ["DEFAULT_DELETE_AFTER", "DEFAULT_OLDER_THAN", "DEFAULT_TARGET_ROWS", "LOCK_NAME",
           "Busy", "CompactReport", "Compactor", "PartitionOutcome", "check_settings",
           "exclusive", "is_closed", "parse_duration", "plan_groups"]

log = logging.getLogger("trio_harvest.compact")

# a merge holds its group in memory (in a worker thread, beside a running harvester): at most
# this many cells (rows x columns, ~8 bytes each), so a wide kind (a 20-level book) gets more,
# smaller parts than ``target_rows`` alone would give
MAX_GROUP_CELLS = 16_000_000
_DROP_META = ("ARROW:schema", SOURCES_KEY, ROWS_KEY, PUBLISHED_KEY,
              "trio_harvest.recovered_from")

StepHook = Callable[[str, PurePath], None]  # step name, file: for tests of interruptions


class Store(Protocol):
    """The storage seam compaction needs (``store.LocalStore`` and the object store have it).
    A store may also offer ``written_at(rel) -> float | None`` (epoch seconds), so that "due"
    also means "nothing written for ``older_than``"; without it, event times alone decide."""

    def write_atomic(self, rel: PurePath, produce: Callable[[BinaryIO], None],
                     gate: PublishGate | None = None) -> int: ...
    def list(self, prefix: PurePath | None = None, suffix: str = "") -> Iterator[PurePath]: ...
    def read_bytes(self, rel: PurePath) -> bytes: ...
    def delete(self, rel: PurePath) -> None: ...


# -- the procedure ----------------------------------------------------------------------------


class Compactor:
    """One compactor per dataset (or per shard's symbols); reuse it from round to round: it
    remembers the sources of the compacted files it has seen (their names never change)."""

    def __init__(
        self,
        store: Store,
        *,
        older_than: float = DEFAULT_OLDER_THAN,
        target_rows: int = DEFAULT_TARGET_ROWS,
        delete_after: float = 0.0,
        symbols: Iterable[str] | None = None,
        now: Callable[[], float] = time.time,
        written_at: Callable[[PurePath], float | None] | None = None,
        hook: StepHook | None = None,
        busy: Callable[[], set[str]] = set,
        max_merges: int | None = None,
        max_seconds: float | None = None,
        keep: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.older_than = older_than
        self.target_rows = target_rows
        self.delete_after = delete_after  # grace before a merge's sources are deleted
        self.symbols = set(symbols) if symbols is not None else None
        self.now = now
        self.written_at = written_at if written_at is not None else _written_at(store)
        self.hook = hook or (lambda step, rel: None)
        self.busy = busy  # batch tokens of unfinished recoveries (``merge.unfinished_tokens``)
        self.max_merges = max_merges
        self.max_seconds = max_seconds
        self.keep = keep  # between partitions (the object-store lock's renewal)
        self._sources: dict[PurePath, list[str]] = {}  # compacted file -> its sources
        self._published: dict[PurePath, float] = {}  # compacted file -> when it was made
        self._merges = 0
        self._stop_at: float | None = None
        self._halted = False

    def partitions(self, dates: Iterable[str] | None = None) -> dict[PurePath, list[str]]:
        """Part files per partition directory (of the wanted symbols; of ``dates`` only, if
        given: ``YYYY-MM-DD``, one listing each)."""
        wanted = None if dates is None else set(dates)
        children = getattr(self.store, "children", None)
        prefixes: list[PurePath | None] = [None] if wanted is None or children is None else [
            *date_prefixes(children(None), wanted)]
        out: dict[PurePath, list[str]] = {}
        for prefix in prefixes:
            for rel in self.store.list(prefix, suffix=".parquet"):
                key = hive_key(rel)
                if key is None or (self.symbols is not None and key[1] not in self.symbols) or \
                        (wanted is not None and key[0].isoformat() not in wanted):
                    continue
                out.setdefault(rel.parent, []).append(rel.name)
        return {d: sorted(names) for d, names in sorted(out.items())}

    def run(self, dates: Iterable[str] | None = None) -> CompactReport:
        report = CompactReport()
        now = self.now()
        self._merges = 0
        self._stop_at = time.monotonic() + self.max_seconds if self.max_seconds else None
        busy = self.busy()
        seen: set[PurePath] = set()
        for directory, names in self.partitions(dates).items():
            seen.update(directory / n for n in names if is_compacted(n))
            if len(names) < 2:
                continue  # one file: nothing to merge, and no leftover to delete
            if self._spent():
                report.more = True
                break
            key = hive_key(directory / names[0])
            assert key is not None
            closed = is_closed(key[0], None, now, self.older_than) and is_closed(
                key[0], self._newest(directory, names), now, self.older_than)
            report.open_partitions += not closed
            outcome = PartitionOutcome(str(directory))
            try:
                self.compact_partition(directory, key[2], names, outcome, closed=closed,
                                       now=now, busy=busy)
            except _Spent:
                report.more = True
            except Exception as exc:  # this partition's failure is its own; it stays as it was
                outcome.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning("compaction of %s failed: %s", directory, outcome.error)
            if outcome.merged_files or outcome.cleaned or outcome.kept or outcome.error:
                report.partitions.append(outcome)
            self.keep()
            if report.more:
                break
        if dates is None:  # a full listing: forget compacted files that are gone
            self._sources = {k: v for k, v in self._sources.items() if k in seen}
            self._published = {k: v for k, v in self._published.items() if k in seen}
        return report

    def halt(self) -> None:
        """From any thread: a round under way ends after its current merge (as when its
        budget is spent), and later rounds merge nothing. The harvester's stop calls it, so a
        background round does not compete with the final flush for the CPU."""
        self._halted = True

    def _spent(self) -> bool:
        return self._halted or (
            self.max_merges is not None and self._merges >= self.max_merges) or (
            self._stop_at is not None and time.monotonic() >= self._stop_at)

    def _newest(self, directory: PurePath, names: list[str]) -> float | None:
        """The latest write into the partition; a merged file is none (else a rerun right
        after an interrupted one would see the partition as open and not finish its delete)."""
        times = [self.written_at(directory / n) for n in names if not is_compacted(n)]
        known = [t for t in times if t is not None]
        return max(known) if known else None

    def compact_partition(self, directory: PurePath, kind: str, names: list[str],
                          outcome: PartitionOutcome, *, closed: bool = True,
                          now: float | None = None, busy: set[str] | None = None) -> None:
        present = set(names)
        hidden: set[str] = set()
        pending: set[str] = set()  # merged files whose sources are kept for readers a while
        now = self.now() if now is None else now
        for name in names:  # step 1: a deferred (or an interrupted run's) delete
            if is_compacted(name) and name not in hidden:
                leftover = [s for s in self.sources_of(directory / name)
                            if s in present and s not in hidden]
                hidden.update(leftover)
                if not leftover:
                    continue
                if grace_over(self.published_at(directory / name), now, self.delete_after):
                    self._delete(directory, leftover)
                    outcome.cleaned += len(leftover)
                else:
                    pending.add(name)
        live = [n for n in names if n not in hidden]
        busy = self.busy() if busy is None else busy
        mine = [n for n in live if recovery_token(n) not in busy]  # recovery's own: left alone
        if closed:
            buckets = [] if pending else [sorted(mine, key=time_order)]
        else:
            buckets = self._due_hours(directory, live, mine, now, pending)
        data: dict[str, bytes] = {}
        target = min(self.target_rows, max(2, MAX_GROUP_CELLS // len(file_columns(kind))))
        for bucket in buckets:
            if len(bucket) < 2:
                continue
            counted = [(n, self._rows(directory / n, data)) for n in bucket]
            for group in plan_groups(counted, target):  # step 2
                if self._spent():
                    raise _Spent
                self._merge_group(directory, kind, group, data, outcome)
            data.clear()

    def _due_hours(self, directory: PurePath, live: list[str], mine: list[str],
                   now: float, pending: set[str]) -> list[list[str]]:
        """The files of each hour whose every file (recovery's own included) is due, and none
        of which is a merged file whose sources are still kept (it waits for their delete)."""
        key = hive_key(directory / live[0])
        assert key is not None
        hours: dict[int, list[str]] = {}
        for name in live:
            hours.setdefault(hour_of(name, key[0]), []).append(name)
        wanted = set(mine)
        out = []
        for _hour, files in sorted(hours.items()):
            if len(files) > 1 and not pending.intersection(files) and hour_is_due(
                    files, lambda n: self.written_at(directory / n), now, self.older_than):
                out.append(sorted((n for n in files if n in wanted), key=time_order))
        return out

    def _merge_group(self, directory: PurePath, kind: str, group: list[str],
                     data: dict[str, bytes], outcome: PartitionOutcome) -> None:
        raw = [data.pop(n) if n in data else self.store.read_bytes(directory / n) for n in group]
        frames = [pl.read_parquet(io.BytesIO(b)) for b in raw]
        held = [s for n in group if is_compacted(n) for s in self.sources_of(directory / n)
                if recovery_token(s) is not None]  # recovered files it holds, however deep
        sources = group + sorted(set(held) - set(group))
        made = self.now()
        merged, meta = _merge(kind, sources, frames, raw[0])
        meta[PUBLISHED_KEY] = repr(made)
        del frames, raw
        first, last = frame_ts_range(merged) if merged.height \
            else (0, 0)
        rel = directory / compacted_name(first, last, group)
        try:
            self.store.write_atomic(rel, _producer(merged, meta))  # step 3
        except FileExistsError:  # an object store refuses to overwrite: an earlier run wrote it
            pass
        self._sources[rel] = sources
        self._published[rel] = made
        self.hook("published", rel)
        if self.delete_after > 0:  # step 4, deferred: a later run's step 1
            outcome.kept += len(group)
        else:
            self._delete(directory, group)  # step 4
            for name in group:
                self._sources.pop(directory / name, None)
                self._published.pop(directory / name, None)
        self._merges += 1
        outcome.merged_files += 1
        outcome.sources += len(group)
        outcome.rows += merged.height

    def sources_of(self, rel: PurePath) -> list[str]:
        """The sources a compacted file names (read once, then remembered)."""
        got = self._sources.get(rel)
        if got is None:
            meta = self._metadata(rel)
            self._published[rel] = published_in(meta)
            got = self._sources[rel] = sources_in(meta)
        return got

    def published_at(self, rel: PurePath) -> float:
        """When a compacted file was made (its footer says; read once, then remembered)."""
        if rel not in self._published:
            self.sources_of(rel)
        return self._published.get(rel, 0.0)

    def _rows(self, rel: PurePath, cache: dict[str, bytes]) -> int:
        if isinstance(self.store, LocalStore):
            return int(pl.scan_parquet(self.store.path(rel)).select(pl.len()).collect().item())
        cache[rel.name] = self.store.read_bytes(rel)
        return _rows(cache[rel.name])

    def _delete(self, directory: PurePath, names: Iterable[str]) -> None:
        for name in names:
            self.store.delete(directory / name)
            self.hook("deleted", directory / name)

    def _metadata(self, rel: PurePath) -> dict[str, str]:
        return stored_metadata(self.store, rel)


class _Spent(Exception):
    """The run reached its bound (merges or seconds) in the middle of a partition."""


def _producer(df: pl.DataFrame, meta: dict[str, str]) -> Callable[[BinaryIO], None]:
    def produce(fh: BinaryIO) -> None:
        df.write_parquet(fh, metadata=meta, **PARQUET_OPTIONS)

    return produce


def _rows(data: bytes) -> int:
    return int(pl.scan_parquet(io.BytesIO(data)).select(pl.len()).collect().item())


def _merge(kind: str, names: list[str], frames: list[pl.DataFrame],
           first: bytes) -> tuple[pl.DataFrame, dict[str, str]]:
    """The group as one frame of its kind's schema (per-kind and first-version sources alike;
    orderbook: the deepest level present), sorted by ``ts_ms`` (stable), and its metadata: the
    first source's, plus the sources' names and the row count."""
    depth = 20
    if kind == ORDERBOOK:
        depth = max(orderbook_depth(df.columns, df.lazy) for df in frames)
    columns = file_columns(kind, depth)
    merged = pl.concat([conform(df, columns) for df in frames], how="vertical")
    merged = merged.sort("ts_ms", maintain_order=True)
    meta = {k: v for k, v in pl.read_parquet_metadata(io.BytesIO(first)).items()
            if k not in _DROP_META}
    meta[SOURCES_KEY] = json.dumps(names)
    meta[ROWS_KEY] = str(merged.height)
    return merged, meta


def _written_at(store: Store) -> Callable[[PurePath], float | None]:
    """When a file was written, where the store can tell (local disk: its mtime)."""
    if isinstance(store, LocalStore):
        local = store

        def mtime(rel: PurePath) -> float | None:
            try:
                return local.path(rel).stat().st_mtime
            except OSError:
                return None

        return mtime
    written = getattr(store, "written_at", None)
    if callable(written):
        return written  # type: ignore[no-any-return]
    return lambda rel: None
