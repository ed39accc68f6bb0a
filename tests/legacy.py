"""Files the way the first version wrote them: every batch widened to the union schema
(``kinds.FILE_SCHEMA``, 100+ columns, the other kinds' ones null). Readers must keep reading
them."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from trio_harvest.kinds import FILE_SCHEMA, Row, Schema
from trio_harvest.storage.encoding import to_frame


def legacy_frame(schema: Schema, rows: list[Row]) -> pl.DataFrame:
    """The old ``to_dataset_frame``, verbatim."""
    df = to_frame(schema, rows)
    own = set(df.columns)
    return df.select([
        pl.col(name) if name in own else pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in FILE_SCHEMA.columns
    ])


def write_legacy(data: Path, date: str, symbol: str, schema: Schema, rows: list[Row],
                 name: str = "part-0-0-legacy.parquet") -> Path:
    path = data / f"date={date}" / f"symbol={symbol}" / f"kind={schema.kind}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    legacy_frame(schema, rows).write_parquet(path, compression="zstd", statistics=True,
                                             metadata={"trio_harvest.kind": schema.kind})
    assert len(pl.read_parquet_schema(path)) == len(FILE_SCHEMA.columns)
    return path
