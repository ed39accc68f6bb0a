"""Row batches to bytes and back: Parquet (zstd) for partitions, NDJSON for the dead letter.

Owns the on-disk encodings of a batch of rows of one ``Schema``. Pure apart from writing to the
file object it is handed; never opens, renames or deletes files (that is ``store.py``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import msgspec
import polars as pl

from ..kinds import (
    ADDED_COLUMNS,
    EPOCH_MS_COLUMNS,
    ORDERBOOK,
    PARTITION_COLUMNS,
    TIMESTAMP,
    Row,
    Schema,
    full_rows,
    orderbook_schema,
    schema_for,
)
from .partitions import RowData, rows_to_frame

# zstd at level 3, pinned so a Polars upgrade cannot change it: level 1 saves no CPU (the cost is
# Parquet's own encoding), level 6 costs ~50 % more CPU for ~2 % smaller files, lz4 and snappy
# make files 1.6x larger (bench/compression.py; docs/performance.md)
ZSTD_LEVEL = 3

_json = msgspec.json.Encoder()
_json_decode = msgspec.json.Decoder(dict[str, Any])


def to_frame(schema: Schema, rows: RowData) -> pl.DataFrame:
    """A lane's columnar batch (O(columns) Python work), a frame, or row tuples (recovery)."""
    if isinstance(rows, pl.DataFrame):
        return rows
    if isinstance(rows, list):
        return rows_to_frame(schema, rows)
    return rows.to_frame(schema)


def to_file_frame(schema: Schema, rows: RowData) -> pl.DataFrame:
    """The kind's rows as a file holds them: the kind's own columns only, without the partition
    columns that the path already carries, and the time columns (epoch ms in memory) as UTC
    timestamps. (Files of the first version were widened to the union of every kind's columns,
    and files before timestamps held int ms; readers still accept both, see ``dataset.py``.)"""
    if not isinstance(rows, (list, pl.DataFrame)):
        # a lane's batch: never builds ``symbol``; its times come as timestamps where it can
        df = rows.to_frame(schema, for_file=True, timestamps=True)
    else:
        df = to_frame(schema, rows).drop([c for c in PARTITION_COLUMNS if c in schema.polars])
    # the time columns looked up by name: a scan of every column's name and type costs more
    # than the rest of this function for a depth file's 80-odd columns
    names = df.columns
    if not any(n in EPOCH_MS_COLUMNS and df.get_column(n).dtype != TIMESTAMP for n in names):
        return df
    columns = df.get_columns()
    # each Series cast on its own (a reinterpretation of the int64 ms): a ``with_columns``
    # query costs more in planning than the cast itself, once per file
    return pl.DataFrame([s.cast(TIMESTAMP) if s.name in EPOCH_MS_COLUMNS and s.dtype != TIMESTAMP
                         else s for s in columns])


# every part file's Parquet options: ``write_parquet_many`` must write the bytes
# ``write_parquet`` writes
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": ZSTD_LEVEL,
                                   "statistics": True}


def _eager_plan() -> Any:
    """The plan flags ``DataFrame.write_parquet`` runs its sink with (a private Polars API:
    None where this Polars has no such thing, and the files are then written one by one)."""
    try:
        from polars.lazyframe.opt_flags import QueryOptFlags

        return QueryOptFlags._eager()
    except (ImportError, AttributeError):
        return None


_EAGER = _eager_plan()


def write_parquet(
    fh: BinaryIO, schema: Schema, rows: RowData, metadata: Mapping[str, str] | None = None
) -> None:
    to_file_frame(schema, rows).write_parquet(
        fh, metadata=dict(metadata or {}) or None, **PARQUET_OPTIONS)


def write_parquet_many(
    files: Sequence[tuple[BinaryIO, Schema, RowData, Mapping[str, str] | None]],
) -> None:
    """Several files in one Polars call (``collect_all`` of one sink per file): the same bytes
    as ``write_parquet`` file by file (the same sink, options and eager plan), with one query
    dispatch for all of them, which is most of a small file's cost in Polars. One file that
    fails fails the call: the caller then writes them one by one to learn which."""
    if _EAGER is None:
        for fh, schema, rows, metadata in files:
            write_parquet(fh, schema, rows, metadata)
        return
    pl.collect_all(
        [to_file_frame(schema, rows).lazy().sink_parquet(
            fh, metadata=dict(metadata or {}) or None, lazy=True, **PARQUET_OPTIONS)
         for fh, schema, rows, metadata in files],
        optimizations=_EAGER,
    )


def encode_ndjson(schema: Schema, rows: RowData) -> bytes:
    if not isinstance(rows, list):
        buf = io.BytesIO()
        to_frame(schema, rows).write_ndjson(buf)
        return buf.getvalue()
    names = schema.names
    return b"".join(_json.encode(dict(zip(names, row, strict=True))) + b"\n"
                    for row in full_rows(schema, rows))


class BadLine(ValueError):
    def __init__(self, lineno: int, reason: str) -> None:
        super().__init__(f"line {lineno}: {reason}")
        self.lineno = lineno


def schema_for_record(kind: str, record: Mapping[str, Any]) -> Schema:
    """The schema of a dead-lettered record: for ``orderbook`` the depth comes from its keys."""
    if kind == ORDERBOOK:
        levels = sum(1 for k in record if k.startswith("bid_px_"))
        return orderbook_schema(max(levels, 1))
    return schema_for(kind)


def decode_ndjson_line(kind: str, line: bytes, lineno: int) -> tuple[Schema, Row]:
    """One dead-letter line back into (schema, row). Raises ``BadLine`` with a reason."""
    try:
        record = _json_decode.decode(line)
    except msgspec.DecodeError as exc:
        raise BadLine(lineno, f"not JSON ({exc})") from None
    schema = schema_for_record(kind, record)
    names = schema.names
    added = ADDED_COLUMNS.get(kind, frozenset())  # a record written before them: null there
    missing = [n for n in names if n not in record and n not in added]
    extra = [k for k in record if k not in schema.polars]
    if missing or extra:
        raise BadLine(lineno, f"columns do not match {kind}: missing {missing} extra {extra}")
    if not isinstance(record["ts_ms"], int) or isinstance(record["ts_ms"], bool):
        raise BadLine(lineno, "ts_ms is not an integer")
    return schema, tuple(record.get(n) for n in names)
