"""Reading one dead-letter file back: every line decoded and validated against its kind's schema.

Owns the checks a recovered row must pass (each value fits its column, the symbol matches the
file's, the event time can name a date partition) and the split of a file into good rows, by
schema, and bad lines with their reason. Pure apart from reading the one file it is given
(blocking: call it from a worker thread). Never writes, moves or deletes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..kinds import Row, Schema
from .encoding import BadLine, decode_ndjson_line


@dataclass(slots=True)
class Loaded:
    groups: list[tuple[Schema, list[Row]]] = field(default_factory=list)
    bad: list[tuple[int, str, bytes]] = field(default_factory=list)  # line number, reason, raw


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _check_value(name: str, dtype: Any, value: Any) -> Any:
    if value is None:
        if name == "ts_ms":
            raise ValueError("ts_ms is null")
        return None
    if dtype == pl.Int64:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} is not an integer ({value!r})")
        if not INT64_MIN <= value <= INT64_MAX:  # would fail the whole file's write, every time
            raise ValueError(f"{name} does not fit in 64 bits ({str(value)[:40]})")
        return value
    if dtype == pl.Float64:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} is not a number ({value!r})")
        try:
            return float(value)
        except OverflowError:  # a huge integer in a float column
            raise ValueError(f"{name} is too large for a float ({str(value)[:40]})") from None
    if dtype == pl.Boolean:
        if not isinstance(value, bool):
            raise ValueError(f"{name} is not true/false ({value!r})")
        return value
    if dtype == pl.String:
        if not isinstance(value, str):
            raise ValueError(f"{name} is not a string ({value!r})")
        return value
    return value


MAX_TS_MS = 253_402_300_800_000  # 10000-01-01: the end of what a date partition can name


def validate_row(schema: Schema, row: Row, symbol: str, lineno: int) -> Row:
    """A decoded row whose every value fits its column, or ``BadLine``."""
    try:
        out = tuple(_check_value(n, t, v) for (n, t), v in zip(schema.columns, row, strict=True))
    except ValueError as exc:
        raise BadLine(lineno, str(exc)) from None
    got = out[schema.index("symbol")]
    if got != symbol:
        raise BadLine(lineno, f"symbol {got!r} does not match the file's {symbol!r}")
    if not 0 <= out[0] < MAX_TS_MS:  # no date partition can hold it; it would block the file
        raise BadLine(lineno, f"ts_ms {out[0]} is not a plausible time")
    return out


def load_file(path: Path, kind: str, symbol: str) -> Loaded:
    """Read and validate one dead-letter file (blocking). Rows of one schema stay together, in
    their order; blank lines carry nothing and are skipped."""
    data = path.read_bytes()
    loaded = Loaded()
    by_schema: dict[Schema, list[Row]] = {}
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            schema, row = decode_ndjson_line(kind, line, lineno)
            row = validate_row(schema, row, symbol, lineno)
        except BadLine as exc:
            loaded.bad.append((lineno, str(exc).split(": ", 1)[-1], line))
            continue
        rows = by_schema.get(schema)
        if rows is None:
            rows = by_schema[schema] = []
            loaded.groups.append((schema, rows))
        rows.append(row)
    return loaded


