"""What a part file of a kind holds, and which part files of a partition are live.

Owns two rules every reader of the dataset shares (the reader API, compaction, ``inspect``,
resume, the gap report):

- a file holds its kind's own columns without the partition columns (``date``, ``symbol``,
  ``kind``: the path carries them); files of the first version held the union of every kind's
  columns (``kinds.FILE_SCHEMA``), the other kinds' ones null, and stay readable;
- a compacted file (``part-<first>-<last>-cmp<hash>.parquet``) names its sources in its
  metadata; a source it names is no longer live, even while it still exists, so no reader counts
  a row twice.

Pure apart from ``local_live``, ``stored_metadata`` and ``merged_into``, which list a partition
and read compacted footers. Never writes or deletes anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

import polars as pl

from ..kinds import (
    EPOCH_MS_COLUMNS,
    MAX_DEPTH_LEVELS,
    ORDERBOOK,
    PARTITION_COLUMNS,
    TIMESTAMP,
    schema_for,
    stored_type,
)
from .partitions import TMP_PREFIX
from .store import LocalStore

PART_SUFFIX = ".parquet"
COMPACTED_MARK = "-cmp"  # never in a harvester's unique token (hex) or a recovery's (dl…)
SOURCES_KEY = "trio_harvest.compacted_from"  # JSON list of the source names (same directory)
ROWS_KEY = "trio_harvest.compacted_rows"
# when the merge was made (epoch seconds): its sources are deleted a grace period after that
PUBLISHED_KEY = "trio_harvest.compacted_at"


def is_part(name: str) -> bool:
    return name.endswith(PART_SUFFIX) and not name.startswith((TMP_PREFIX, ".", "_"))


def is_compacted(name: str) -> bool:
    return name.startswith("part-") and COMPACTED_MARK in name


def compacted_name(first_ts: int, last_ts: int, sources: Iterable[str]) -> str:
    """Deterministic in its sources: a rerun after a crash makes the same name."""
    digest = hashlib.sha256("\n".join(sorted(sources)).encode()).hexdigest()[:16]
    return f"part-{first_ts}-{last_ts}{COMPACTED_MARK}{digest}{PART_SUFFIX}"


def sources_in(metadata: Mapping[str, str]) -> list[str]:
    raw = metadata.get(SOURCES_KEY)
    if not raw:
        return []
    value = json.loads(raw)
    return [str(v) for v in value] if isinstance(value, list) else []


def published_in(metadata: Mapping[str, str]) -> float:
    """When a compacted file was made (0.0 if its footer does not say: an older file)."""
    try:
        return float(metadata.get(PUBLISHED_KEY, "0"))
    except ValueError:
        return 0.0


def live_names(names: Iterable[str], sources_of: Callable[[str], Iterable[str]]) -> list[str]:
    """The names whose rows count, sorted: every part name except those that a compacted file
    among ``names`` lists as a source (whether or not that source still exists)."""
    present = sorted(set(names))
    dead: set[str] = set()
    for name in present:
        if is_compacted(name):
            dead.update(sources_of(name))
    return [n for n in present if n not in dead]


def local_parts(directory: Path) -> list[Path]:
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [directory / name for name in sorted(entries) if is_part(name)]


def local_sources(path: Path) -> list[str]:
    return sources_in(pl.read_parquet_metadata(path))


def stored_metadata(store: Any, rel: PurePath) -> dict[str, str]:
    """The footer's key-value metadata of a part file in a store (local disk: the footer only;
    another store: the object, read whole)."""
    if isinstance(store, LocalStore):
        return pl.read_parquet_metadata(store.path(rel))
    return pl.read_parquet_metadata(io.BytesIO(store.read_bytes(rel)))


def merged_into(store: Any, rel: PurePath) -> bool:
    """Whether a compacted file in ``rel``'s partition holds ``rel`` (names it as a source):
    its rows are there, so ``rel`` must not be written again. Blocking."""
    for other in store.list(rel.parent, suffix=PART_SUFFIX):
        if other.parent == rel.parent and is_compacted(other.name) and \
                rel.name in sources_in(stored_metadata(store, other)):
            return True
    return False


def local_live(directory: Path, *, strict: bool = True) -> list[Path]:
    """Live part files of one local partition directory. ``strict=False``: a compacted file whose
    footer cannot be read hides nothing (its sources then still count; ``inspect`` reports it)."""

    def sources_of(name: str) -> list[str]:
        try:
            return local_sources(directory / name)
        except Exception:
            if strict:
                raise
            return []

    return [directory / n for n in live_names((p.name for p in local_parts(directory)),
                                              sources_of)]


# -- columns ----------------------------------------------------------------------------------


def file_columns(kind: str, depth_levels: int = MAX_DEPTH_LEVELS) -> dict[str, Any]:
    """The columns a new file of ``kind`` holds (name -> Polars type), in order: its time
    columns are UTC timestamps (``kinds.TIMESTAMP``)."""
    return {name: stored_type(name, dtype) for name, dtype in schema_for(kind, depth_levels).columns
            if name not in PARTITION_COLUMNS}


def ms_file_columns(kind: str, depth_levels: int = MAX_DEPTH_LEVELS) -> dict[str, Any]:
    """``file_columns`` as versions before timestamps wrote them: times as Int64 epoch ms."""
    return {name: dtype for name, dtype in schema_for(kind, depth_levels).columns
            if name not in PARTITION_COLUMNS}


def as_ms(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with its time columns as Int64 epoch ms, whichever way its file stored them
    (a timestamp, or the ms of versions before): what rows in memory hold."""
    times = [n for n, t in df.schema.items() if n in EPOCH_MS_COLUMNS and t.is_temporal()]
    return df.with_columns(pl.col(n).dt.epoch("ms") for n in times) if times else df


def as_timestamps(lf: pl.LazyFrame, names: Iterable[str]) -> pl.LazyFrame:
    """``lf`` (of a file with int ms times) with its time columns as UTC timestamps."""
    return lf.with_columns(pl.col(n).cast(TIMESTAMP) for n in names if n in EPOCH_MS_COLUMNS)


def has_timestamps(schema: Mapping[str, Any]) -> bool:
    """Whether a file's schema holds its times as timestamps (else: int ms, an older file)."""
    dtype = schema.get("ts_ms")
    return dtype is not None and dtype.is_temporal()


def scan_ms(files: Iterable[Any], columns: Mapping[str, Any],
            options: dict[str, str] | None = None) -> pl.LazyFrame:
    """``columns`` (name -> in-memory type) of ``files`` as one frame, times as Int64 ms,
    whatever each file holds (timestamps or int ms; a first-version file's other columns are
    ignored, a column it lacks is null). Reads each footer when the plan is built."""
    frames = []
    for f in files:
        lf = pl.scan_parquet(f, storage_options=options)
        have = lf.collect_schema()
        frames.append(lf.select([
            (pl.col(n).dt.epoch("ms") if have[n].is_temporal() else pl.col(n).cast(t))
            if n in have else pl.lit(None, dtype=t).alias(n)
            for n, t in columns.items()]))
    if not frames:
        return pl.LazyFrame(schema=dict(columns))
    return pl.concat(frames, how="vertical")


def is_legacy(kind: str, columns: Iterable[str]) -> bool:
    """A first-version file: it carries columns of other kinds."""
    own = file_columns(kind)
    return any(c not in own for c in columns)


def depth_of_columns(columns: Iterable[str]) -> int:
    """Book levels a per-kind orderbook file's columns name (0 if none)."""
    return max((int(c[len("bid_px_"):]) for c in columns if c.startswith("bid_px_")), default=0)


LEGACY_DEPTHS = (20, 10, 5)  # the depths a first-version harvester could be configured with


def depth_of_frame(df: pl.LazyFrame | pl.DataFrame) -> int:
    """Book levels that hold a value in some row: the depth of a first-version orderbook file,
    whose columns always name 20 levels. Reads at most three columns; at least 1 (a file of
    quote rows only)."""
    names = set(df.collect_schema().names())
    lazy = df.lazy() if isinstance(df, pl.DataFrame) else df
    for level in LEGACY_DEPTHS:
        col = f"bid_px_{level}"
        if col in names and lazy.select(pl.col(col).is_not_null().any()).collect().item():
            return level
    return 1


def orderbook_depth(columns: Iterable[str], read: Callable[[], pl.LazyFrame]) -> int:
    """The depth of one orderbook file: from its columns, or, for a first-version file, from
    which levels hold data (``read`` opens it)."""
    columns = list(columns)
    if is_legacy(ORDERBOOK, columns):
        return depth_of_frame(read())
    return max(depth_of_columns(columns), 1)


def conform(df: pl.DataFrame, columns: Mapping[str, Any]) -> pl.DataFrame:
    """``df`` with exactly ``columns``: missing ones null, others' columns dropped, in order."""
    have = set(df.columns)
    return df.select([pl.col(n).cast(t) if n in have else pl.lit(None, dtype=t).alias(n)
                      for n, t in columns.items()])
