"""Rows of any kind for dataset tests, and writing them as a harvester of today does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from trio_harvest.kinds import PARTITION_COLUMNS, Row, Schema
from trio_harvest.storage.encoding import to_frame, write_parquet
from trio_harvest.storage.fileschema import as_ms


def row(schema: Schema, ts: int, symbol: str, i: int = 0) -> Row:
    """A plausible row of ``schema``: ``ts_ms`` = ts, ``symbol``, every other value from ``i``."""
    out: list[Any] = []
    for name, dtype in schema.columns:
        if name == "ts_ms":
            out.append(ts)
        elif name == "symbol":
            out.append(symbol)
        elif name.endswith("_ms"):
            out.append(ts + 1)
        elif dtype == pl.Int64:
            out.append(i)
        elif dtype == pl.Float64:
            out.append(float(i) + 0.5)
        elif dtype == pl.Boolean:
            out.append(i % 2 == 0)
        else:
            out.append(f"{name}{i}")
    return tuple(out)


def in_memory(df: pl.DataFrame) -> pl.DataFrame:
    """A frame read back from the dataset with its times as rows hold them (int epoch ms):
    files hold UTC timestamps, and older ones int ms."""
    return as_ms(df)


def rows(schema: Schema, ts0: int, n: int, symbol: str, step: int = 1000) -> list[Row]:
    return [row(schema, ts0 + k * step, symbol, k) for k in range(n)]


def write_new(data: Path, date: str, symbol: str, schema: Schema, batch: list[Row], name: str,
              metadata: Mapping[str, str] | None = None,
              venue: str | None = "binance-usdm") -> Path:
    """A per-kind file in ``venue``'s partition, as today's writer writes it; ``venue=None``:
    as the version before venues wrote it (no ``venue=`` level, times as int64 epoch ms)."""
    top = data / f"venue={venue}" if venue is not None else data
    path = top / f"date={date}" / f"symbol={symbol}" / f"kind={schema.kind}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if venue is None:
        to_frame(schema, batch).drop([c for c in PARTITION_COLUMNS if c in schema.polars]
                                     ).write_parquet(path, compression="zstd", statistics=True,
                                                     metadata=dict(metadata or {}) or None)
        return path
    with open(path, "wb") as fh:
        write_parquet(fh, schema, batch, metadata)
    return path
