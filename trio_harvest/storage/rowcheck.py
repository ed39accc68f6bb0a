"""One bad row never costs its neighbours: find the rows of a batch that their columns cannot
hold, so the rest is written and they are set aside (``<deadletter>/_rejected/``).

Owns the per-value check (an Int64 column holds an int within 64 bits, a Float64 column a number
a float can hold, a Boolean column a bool, a String column a str; ``ts_ms`` is never null) and the
NDJSON of rows set aside with their reason. Used only on the failure path of a write: a batch is
checked row by row only after it failed to encode as a whole. Pure: no trio, no I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec
import polars as pl

from ..kinds import Row, Schema, full_rows

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ENCODE_ERRORS = (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError)

_json = msgspec.json.Encoder()


def bad_value(dtype: Any, value: Any) -> str | None:
    """Why ``value`` cannot go into a column of ``dtype``, or None when it can."""
    if value is None:
        return None
    if dtype == pl.Int64:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"not an integer ({value!r:.40})"
        if not INT64_MIN <= value <= INT64_MAX:
            return f"does not fit in 64 bits ({str(value)[:40]})"
    elif dtype == pl.Float64:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"not a number ({value!r:.40})"
        if isinstance(value, int):
            try:
                float(value)
            except OverflowError:
                return f"too large for a float ({str(value)[:40]})"
    elif dtype == pl.Boolean:
        if not isinstance(value, bool):
            return f"not true/false ({value!r:.40})"
    elif dtype == pl.String and not isinstance(value, str):
        return f"not a string ({value!r:.40})"
    return None


def row_problem(schema: Schema, row: Row) -> str | None:
    if len(row) != len(schema.columns):
        return f"{len(row)} values for {len(schema.columns)} columns"
    if row[0] is None:
        return "ts_ms is null"
    for (name, dtype), value in zip(schema.columns, row, strict=True):
        why = bad_value(dtype, value)
        if why is not None:
            return f"{name} {why}"
    return None


def split_rows(schema: Schema, rows: list[Row]) -> tuple[list[Row], list[tuple[Row, str]]]:
    """(rows the columns hold, [(row, reason)] for the others), each in their order."""
    good: list[Row] = []
    bad: list[tuple[Row, str]] = []
    for row in full_rows(schema, rows):
        why = row_problem(schema, row)
        if why is None:
            good.append(row)
        else:
            bad.append((row, why))
    return good, bad


def rejected_ndjson(kind: str, symbol: str, bad: list[tuple[Row, str]]) -> bytes:
    """The lines of ``_rejected/<kind>/…``: where they come from, why, and the row as text."""
    return b"".join(
        _json.encode({"source": f"write {kind}/{symbol}", "reason": why,
                      "text": repr(row)}) + b"\n"
        for row, why in bad
    )
