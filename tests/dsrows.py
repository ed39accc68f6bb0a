"""Rows of any kind for dataset tests, and writing them as a harvester of today does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from trio_harvest.kinds import Row, Schema
from trio_harvest.storage.encoding import write_parquet


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


def rows(schema: Schema, ts0: int, n: int, symbol: str, step: int = 1000) -> list[Row]:
    return [row(schema, ts0 + k * step, symbol, k) for k in range(n)]


def write_new(data: Path, date: str, symbol: str, schema: Schema, batch: list[Row], name: str,
              metadata: Mapping[str, str] | None = None,
              venue: str | None = "binance-usdm") -> Path:
    """A per-kind file in ``venue``'s partition (None: where versions before venues wrote)."""
    top = data / f"venue={venue}" if venue is not None else data
    path = top / f"date={date}" / f"symbol={symbol}" / f"kind={schema.kind}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        write_parquet(fh, schema, batch, metadata)
    return path
