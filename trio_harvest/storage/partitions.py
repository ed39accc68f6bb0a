"""Partition keys and file names of the Hive layout, and the split of a batch by UTC date.

Owns ``date=YYYY-MM-DD/symbol=SYMBOL/kind=KIND/part-<first>-<last>-<unique>.parquet`` and
``deadletter/<kind>/<SYMBOL>_<unix_ms>_<rows>.ndjson``. Pure: computes names, touches no disk.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath

from ..kinds import Row

TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".tmp"
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Partition:
    """Rows of one kind and symbol whose event time falls on one UTC date."""

    kind: str
    symbol: str
    date: str
    rows: list[Row]

    @property
    def first_ts(self) -> int:
        return int(min(r[0] for r in self.rows))

    @property
    def last_ts(self) -> int:
        return int(max(r[0] for r in self.rows))

    def directory(self) -> PurePath:
        return partition_dir(self.date, self.symbol, self.kind)


def utc_date(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def split_by_date(kind: str, symbol: str, rows: list[Row]) -> list[Partition]:
    """Split a drained batch into one ``Partition`` per UTC event-time date, in date order.
    Rows keep their arrival order inside each partition."""
    by_day: dict[int, list[Row]] = {}
    for row in rows:
        day = row[0] // DAY_MS
        bucket = by_day.get(day)
        if bucket is None:
            by_day[day] = [row]
        else:
            bucket.append(row)
    return [
        Partition(kind, symbol, utc_date(day * DAY_MS), day_rows)
        for day, day_rows in sorted(by_day.items())
    ]


def partition_dir(date: str, symbol: str, kind: str) -> PurePath:
    return PurePath(f"date={date}", f"symbol={symbol}", f"kind={kind}")


def unique_token() -> str:
    """Unique across processes and hosts without coordination: pid plus 48 random bits."""
    return f"{os.getpid():x}{secrets.token_hex(6)}"


def part_name(first_ts: int, last_ts: int, unique: str | None = None) -> str:
    return f"part-{first_ts}-{last_ts}-{unique or unique_token()}.parquet"


def deadletter_name(symbol: str, unix_ms: int, rows: int, unique: str | None = None) -> str:
    """``<SYMBOL>_<unix_ms>_<rows>.ndjson``; a short unique suffix keeps two batches dead-lettered
    in the same millisecond apart (``<SYMBOL>_<unix_ms>_<rows>-<unique>.ndjson``)."""
    suffix = f"-{unique}" if unique else ""
    return f"{symbol}_{unix_ms}_{rows}{suffix}.ndjson"


def parse_deadletter_name(name: str) -> tuple[str, int, int] | None:
    """(symbol, unix_ms, rows) from a dead-letter file name, or None if it is not one."""
    if not name.endswith(".ndjson") or name.startswith(TMP_PREFIX):
        return None
    stem = name[: -len(".ndjson")].split("-", 1)[0]
    parts = stem.rsplit("_", 2)
    if len(parts) != 3:
        return None
    symbol, ms, rows = parts
    try:
        return symbol, int(ms), int(rows)
    except ValueError:
        return None
