"""Compaction: merge a closed partition's small part files into files of up to ``target_rows``
rows, sorted by ``ts_ms``, crash-safe and idempotent.

Owns the procedure, per partition (``date=…/symbol=…/kind=…``), through the store interface
only (``list``, ``read_bytes``, ``write_atomic``, ``delete``), so it runs on local disk and on
an object store alike:

1. a compacted file already there whose sources still exist (a run killed between steps 3 and
   4) has them deleted: their rows are in it;
2. the live small files (not compacted, not named by a compacted file) are grouped in time
   order, up to ``target_rows`` per group;
3. each group is read, given its kind's schema, sorted by ``ts_ms`` and written atomically as
   ``part-<first>-<last>-cmp<hash>.parquet``, whose metadata names its sources; from then on
   every reader of this package ignores the sources (``fileschema.live_names``);
4. the sources are deleted in one batch.

Killed at any point and run again, every row is there exactly once: before step 3 nothing has
changed; after it, step 1 of the next run finishes the delete. A compacted file is never a
source again. It never deletes a file that no published compacted file names, and never
touches a partition that is still open (its date not yet ``older_than`` past, or a file in it
written less than ``older_than`` ago). Blocking: run it in a worker thread.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Protocol

import polars as pl

from ..kinds import ALL_KINDS, ORDERBOOK
from .fileschema import (
    ROWS_KEY,
    SOURCES_KEY,
    compacted_name,
    conform,
    file_columns,
    is_compacted,
    is_part,
    orderbook_depth,
    sources_in,
)
from .gate import PublishGate
from .store import LocalStore

log = logging.getLogger("trio_harvest.compact")

DEFAULT_OLDER_THAN = 7200.0
DEFAULT_TARGET_ROWS = 1_000_000
LOCK_NAME = ".compact.lock"  # hidden: no reader's glob matches it
_DROP_META = ("ARROW:schema", SOURCES_KEY, ROWS_KEY, "trio_harvest.recovered_from")

StepHook = Callable[[str, PurePath], None]  # step name, file: for tests of interruptions


class Store(Protocol):
    """The storage seam compaction needs (``store.LocalStore`` and the object store have it).
    A store may also offer ``written_at(rel) -> float | None`` (epoch seconds), so that "closed"
    also means "nothing written for ``older_than``"; without it, only the date rule applies."""

    def write_atomic(self, rel: PurePath, produce: Callable[[BinaryIO], None],
                     gate: PublishGate | None = None) -> int: ...
    def list(self, prefix: PurePath | None = None, suffix: str = "") -> Iterator[PurePath]: ...
    def read_bytes(self, rel: PurePath) -> bytes: ...
    def delete(self, rel: PurePath) -> None: ...


@dataclass(slots=True)
class PartitionOutcome:
    partition: str
    merged_files: int = 0  # compacted files written
    sources: int = 0  # small files merged into them (and deleted)
    rows: int = 0
    cleaned: int = 0  # leftover sources of an earlier, interrupted run, deleted
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "merged_files": self.merged_files,
                "sources": self.sources, "rows": self.rows, "cleaned": self.cleaned,
                "error": self.error}


@dataclass(slots=True)
class CompactReport:
    partitions: list[PartitionOutcome] = field(default_factory=list)
    open_partitions: int = 0  # still written to (or too recent): left alone

    @property
    def failed(self) -> list[PartitionOutcome]:
        return [p for p in self.partitions if p.error]

    def as_dict(self) -> dict[str, Any]:
        done = [p for p in self.partitions if not p.error]
        return {"partitions_compacted": sum(1 for p in done if p.merged_files),
                "merged_files": sum(p.merged_files for p in done),
                "source_files": sum(p.sources for p in done),
                "rows": sum(p.rows for p in done),
                "cleaned": sum(p.cleaned for p in done),
                "open_partitions": self.open_partitions,
                "failed": [{"partition": p.partition, "error": p.error} for p in self.failed],
                "partitions": [p.as_dict() for p in self.partitions]}

    def render(self) -> str:
        lines = []
        for p in self.partitions:
            if p.error:
                lines.append(f"FAILED    {p.partition}: {p.error} (left as it was)")
            elif p.merged_files or p.cleaned:
                lines.append(f"compacted {p.partition}: {p.sources} files, {p.rows} rows -> "
                             f"{p.merged_files} files"
                             + (f"; {p.cleaned} leftover sources deleted" if p.cleaned else ""))
        d = self.as_dict()
        lines.append(f"compacted {d['partitions_compacted']} partitions: {d['source_files']} "
                     f"files ({d['rows']} rows) into {d['merged_files']}; {d['cleaned']} leftover "
                     f"sources deleted; {d['open_partitions']} partitions still open; "
                     f"{len(self.failed)} failed")
        return "\n".join(lines)


# -- pure rules --------------------------------------------------------------------------------


def parse_duration(raw: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` -> seconds; ``ValueError`` otherwise."""
    text = raw.strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}.get(text[-1:], None)
    number = text[:-1] if scale is not None else text
    try:
        value = float(number) * (scale or 1.0)
    except ValueError:
        raise ValueError(f"{raw!r} is not a duration (e.g. 90s, 30m, 2h, 1d)") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{raw!r} is not a duration (e.g. 90s, 30m, 2h, 1d)")
    return value


def check_settings(older_than: float, target_rows: int) -> str | None:
    """What is wrong with these settings, in one line, or None."""
    if not (isinstance(older_than, int | float) and 0 <= older_than < float("inf")):
        return f"compact_older_than: must be a number of seconds >= 0, got {older_than!r}"
    if isinstance(target_rows, bool) or not isinstance(target_rows, int) or target_rows < 2:
        return f"compact_target_rows: must be a whole number of rows >= 2, got {target_rows!r}"
    return None


def is_closed(day: date, newest_write_s: float | None, now_s: float, older_than: float) -> bool:
    """A partition is closed when its UTC date ended at least ``older_than`` ago and (where the
    store knows write times) nothing was written into it for ``older_than``."""
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    if end.timestamp() + older_than > now_s:
        return False
    return newest_write_s is None or newest_write_s + older_than <= now_s


def plan_groups(files: Iterable[tuple[str, int]], target_rows: int) -> list[list[str]]:
    """Files (name, rows) in time order into groups of at most ``target_rows`` rows (a file of
    that size or more stays alone and is left as it is). Groups of one file are dropped."""
    groups: list[list[str]] = []
    current: list[str] = []
    rows = 0
    for name, n in files:
        if n >= target_rows:
            continue
        if current and rows + n > target_rows:
            groups.append(current)
            current, rows = [], 0
        current.append(name)
        rows += n
    groups.append(current)
    return [g for g in groups if len(g) > 1]


def _time_order(name: str) -> tuple[int, str]:
    parts = name.split("-")
    try:
        return int(parts[1]), name
    except (IndexError, ValueError):
        return 0, name


def _hive(rel: PurePath) -> tuple[date, str, str] | None:
    parts = rel.parts
    if len(parts) != 4 or not is_part(parts[3]):
        return None
    keys = ("date=", "symbol=", "kind=")
    if not all(p.startswith(k) for p, k in zip(parts[:3], keys, strict=True)):
        return None
    try:
        day = date.fromisoformat(parts[0][5:])
    except ValueError:
        return None
    kind = parts[2][5:]
    return (day, parts[1][7:], kind) if kind in ALL_KINDS else None


# -- the procedure ----------------------------------------------------------------------------


class Compactor:
    def __init__(
        self,
        store: Store,
        *,
        older_than: float = DEFAULT_OLDER_THAN,
        target_rows: int = DEFAULT_TARGET_ROWS,
        symbols: Iterable[str] | None = None,
        now: Callable[[], float] = time.time,
        written_at: Callable[[PurePath], float | None] | None = None,
        hook: StepHook | None = None,
    ) -> None:
        self.store = store
        self.older_than = older_than
        self.target_rows = target_rows
        self.symbols = set(symbols) if symbols is not None else None
        self.now = now
        self.written_at = written_at if written_at is not None else _written_at(store)
        self.hook = hook or (lambda step, rel: None)

    def partitions(self) -> dict[PurePath, list[str]]:
        """Part files per partition directory (of the wanted symbols)."""
        out: dict[PurePath, list[str]] = {}
        for rel in self.store.list(suffix=".parquet"):
            key = _hive(rel)
            if key is None or (self.symbols is not None and key[1] not in self.symbols):
                continue
            out.setdefault(rel.parent, []).append(rel.name)
        return {d: sorted(names) for d, names in sorted(out.items())}

    def run(self) -> CompactReport:
        report = CompactReport()
        now = self.now()
        for directory, names in self.partitions().items():
            if not any(not is_compacted(n) for n in names):
                continue  # nothing small and nothing left over: already compacted
            key = _hive(directory / names[0])
            assert key is not None
            newest = self._newest(directory, names)
            if not is_closed(key[0], newest, now, self.older_than):
                report.open_partitions += 1
                continue
            outcome = PartitionOutcome(str(directory))
            try:
                self.compact_partition(directory, key[2], names, outcome)
            except Exception as exc:  # this partition's failure is its own; it stays as it was
                outcome.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning("compaction of %s failed: %s", directory, outcome.error)
            if outcome.merged_files or outcome.cleaned or outcome.error:
                report.partitions.append(outcome)
        return report

    def _newest(self, directory: PurePath, names: list[str]) -> float | None:
        """The latest write into the partition; a merged file is none (else a rerun right
        after an interrupted one would see the partition as open and not finish its delete)."""
        times = [self.written_at(directory / n) for n in names if not is_compacted(n)]
        known = [t for t in times if t is not None]
        return max(known) if known else None

    def compact_partition(self, directory: PurePath, kind: str, names: list[str],
                          outcome: PartitionOutcome) -> None:
        present = set(names)
        hidden: set[str] = set()
        for name in names:
            if is_compacted(name):
                leftover = [s for s in sources_in(self._metadata(directory / name))
                            if s in present]
                hidden.update(leftover)
                self._delete(directory, leftover)  # step 1: an interrupted run's delete
                outcome.cleaned += len(leftover)
        live = sorted((n for n in names if n not in hidden and not is_compacted(n)),
                      key=_time_order)
        if len(live) < 2:
            return
        # local disk: row counts from the footers, bytes one group at a time (memory: one
        # group); another store: each file read once, its (compressed) bytes kept until merged
        data: dict[str, bytes] = {}
        counted = [(n, self._rows(directory / n, data)) for n in live]
        for group in plan_groups(counted, self.target_rows):  # step 2
            raw = [data.pop(n) if n in data else self.store.read_bytes(directory / n) for n in group]
            frames = [pl.read_parquet(io.BytesIO(b)) for b in raw]
            merged, meta = _merge(kind, group, frames, raw[0])
            del frames, raw
            first, last = (int(merged["ts_ms"][0]), int(merged["ts_ms"][-1])) if merged.height \
                else (0, 0)
            rel = directory / compacted_name(first, last, group)
            self.store.write_atomic(rel, _producer(merged, meta))  # step 3
            self.hook("published", rel)
            self._delete(directory, group)  # step 4
            outcome.merged_files += 1
            outcome.sources += len(group)
            outcome.rows += merged.height

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
        if isinstance(self.store, LocalStore):  # the footer only
            return pl.read_parquet_metadata(self.store.path(rel))
        return pl.read_parquet_metadata(io.BytesIO(self.store.read_bytes(rel)))


def _producer(df: pl.DataFrame, meta: dict[str, str]) -> Callable[[BinaryIO], None]:
    def produce(fh: BinaryIO) -> None:
        df.write_parquet(fh, compression="zstd", statistics=True, metadata=meta)

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


class Busy(Exception):
    """Another compaction holds this dataset's lock (or the lock file cannot be made)."""


@contextlib.contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """One compaction at a time per local dataset (``<data_dir>/.compact.lock``, released when
    the process dies). On an object store, run one compactor per dataset (or per shard's
    symbols): two at once could merge the same files twice."""
    import fcntl

    try:
        fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise Busy(f"cannot take the compaction lock {data_dir / LOCK_NAME}: "
                   f"{exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another compaction is running on {data_dir} "
                       f"(it holds {data_dir / LOCK_NAME})") from None
        yield
    finally:
        os.close(fd)
