"""Which dead-letter files recovery merges, under which name, and its crash record.

Owns the plan (files of one kind and symbol, oldest first, in batches bounded by rows and files,
so a backlog of thousands becomes one partition file per (date, symbol, kind) and batch instead
of one per file), the batch's deterministic token (the same sources give the same part-file
names, so a repeated batch overwrites instead of duplicating), the manifest that makes a batch
crash-safe (written before any part file, removed after the last source: while it exists, the
batch is redone or finished with exactly its own sources), the conversion of a merged Polars
frame into the writer's ``Partition`` (one small function, ``to_partition``), and the lock that
keeps two recoverers (``recover`` and a harvester's automatic recovery) off the same backlog.
Blocking file I/O only where named (``*_manifest``, ``BacklogLock``); the plan is pure.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath

import polars as pl

from ..kinds import DEFAULT_VENUE
from .backlog import MERGING_DIR, DeadLetterFile
from .partitions import DAY_MS, Partition, ms_expr, utc_date

MAX_BATCH_ROWS = 250_000  # rows held in memory by one batch (by the rows in the file names)
MAX_BATCH_FILES = 1_000
LOCK_NAME = ".recover.lock"


def plan_batches(files: Sequence[DeadLetterFile], *, max_rows: int = MAX_BATCH_ROWS,
                 max_files: int = MAX_BATCH_FILES) -> list[list[DeadLetterFile]]:
    """Files grouped by (kind, symbol), each group cut into batches of at most ``max_rows`` rows
    (a single larger file is a batch of its own) and ``max_files`` files; batches are ordered by
    their oldest file, files inside a batch oldest first."""
    open_batch: dict[tuple[str, str, str], list[DeadLetterFile]] = {}
    rows: dict[tuple[str, str, str], int] = {}
    out: list[list[DeadLetterFile]] = []
    for f in files:
        key = (f.venue, f.kind, f.symbol)
        batch = open_batch.get(key)
        if batch is not None and (rows[key] + f.rows > max_rows or len(batch) >= max_files):
            batch = None
        if batch is None:
            batch = open_batch[key] = []
            rows[key] = 0
            out.append(batch)
        batch.append(f)
        rows[key] += f.rows
    return out


def batch_token(files: Sequence[DeadLetterFile], group: int = 0) -> str:
    """The ``unique`` part of the part-file names of a batch: a hash of its sources (for one
    file, the same name recovery always gave that file; the venue's name is added for a venue
    other than ``DEFAULT_VENUE``, so files written before venues keep their tokens)."""
    names = "\n".join(sorted(f"{f.kind}/{f.name}" if f.venue == DEFAULT_VENUE
                             else f"{f.rel.as_posix()}" for f in files))
    digest = hashlib.sha256(names.encode()).hexdigest()[:12]
    return f"dl{digest}" + (f"g{group}" if group else "")


def split_frame_by_date(frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """A merged frame cut by UTC event-time date (``ts_ms``), in date order; rows keep their
    order inside a date."""
    if frame.is_empty():
        return []
    day = (ms_expr("ts_ms", frame.schema["ts_ms"]) // DAY_MS).alias("_day")
    parts = frame.with_columns(day).partition_by("_day", as_dict=True, maintain_order=True)
    return [(utc_date(int(key[0]) * DAY_MS), part.drop("_day"))
            for key, part in sorted(parts.items(), key=lambda kv: kv[0])]


def to_partition(kind: str, symbol: str, date: str, frame: pl.DataFrame,
                 venue: str = DEFAULT_VENUE) -> Partition:
    """The one place a merged frame becomes the writer's ``Partition`` (today: rows)."""
    return Partition(kind, symbol, date, frame.rows(), venue)


# -- the crash record (blocking) ----------------------------------------------------------------


def manifest_rel(token: str) -> PurePath:
    return PurePath(MERGING_DIR, f"{token}.json")


def manifest_bytes(kind: str, symbol: str, files: Sequence[DeadLetterFile], *,
                   complete: bool) -> bytes:
    """``complete``: every part file of the batch is in place (only deleting is left). The
    sources are paths in the dead letter (``venue=V/<kind>/<name>``, or ``<kind>/<name>`` for a
    file written before venues); a manifest of an earlier version lists bare names of
    ``<kind>/`` and has no ``"paths"`` key."""
    return json.dumps({"kind": kind, "symbol": symbol, "complete": complete, "paths": True,
                       "sources": [f.rel.as_posix() for f in files]}).encode()


def read_manifests(root: Path) -> Iterator[tuple[Path, str, str, list[str], bool]]:
    """(path, kind, symbol, source paths in the dead letter, complete) of every batch a crash
    left unfinished."""
    folder = root / MERGING_DIR
    if not folder.is_dir():
        return
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.name.endswith(".json") or not entry.is_file():
            continue
        try:
            doc = json.loads(Path(entry.path).read_bytes())
            kind = str(doc["kind"])
            paths = [str(n) if doc.get("paths") else f"{kind}/{n}" for n in doc["sources"]]
            yield (Path(entry.path), kind, str(doc["symbol"]), paths, bool(doc["complete"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: left alone, its sources are recovered as ordinary files


def unfinished_tokens(root: Path) -> set[str]:
    """Batch tokens of the batches a crash or a failed write left unfinished (their redo writes
    the same part-file names again, so compaction must leave those files alone)."""
    return {path.stem for path, _kind, _symbol, _names, complete in read_manifests(root)
            if not complete}


def owned_names(root: Path) -> set[str]:
    """The path (``DeadLetterFile.rel``) of every dead-letter file an unfinished batch still
    owns: recovered with that batch only, never batched anew (a new batch name would write its
    rows twice)."""
    return {rel for _path, _kind, _symbol, rels, _complete in read_manifests(root)
            for rel in rels}


class BacklogLock:
    """An exclusive ``flock`` on ``<deadletter>/.recover.lock`` (blocking calls)."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
