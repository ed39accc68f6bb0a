"""Partition keys and file names of the Hive layout, and the split of a batch by UTC date.

Owns ``venue=VENUE/date=YYYY-MM-DD/symbol=SYMBOL/kind=KIND/part-<first>-<last>-<unique>.parquet``
(and its parsing, which also accepts the ``date=…/symbol=…/kind=…`` folders that versions before
venues wrote: those belong to ``DEFAULT_VENUE``) and
``_deadletter/venue=VENUE/<kind>/<SYMBOL>_<unix_ms>_<rows>.ndjson`` (the dead letter's default
place: a ``_`` folder, which PyArrow, DuckDB and Spark skip when they read the dataset's root;
before, it was ``deadletter/``, still recovered from, and had no ``venue=`` level). Pure:
computes names, touches no disk.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, NamedTuple, Union

import polars as pl

from ..kinds import DEFAULT_VENUE, Row, Schema, full_rows

if TYPE_CHECKING:
    from ..pipeline.chunks import Batch


DEADLETTER_DIR = "_deadletter"  # the default dead letter, in the data dir (or an S3 run's local dir)
LEGACY_DEADLETTER_DIR = "deadletter"  # where it was: moved to DEADLETTER_DIR at start-up/recover
TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".tmp"
DAY_MS = 86_400_000


RowData = Union[list[Row], "Batch", pl.DataFrame]


@dataclass(frozen=True, slots=True)
class Partition:
    """Rows of one kind and symbol whose event time falls on one UTC date: a lane's columnar
    ``Batch``, a Polars frame, or (tests, recovery) a list of row tuples."""

    kind: str
    symbol: str
    date: str
    rows: RowData
    venue: str = DEFAULT_VENUE

    @property
    def n(self) -> int:
        rows = self.rows
        return rows.height if isinstance(rows, pl.DataFrame) else len(rows)

    @property
    def first_ts(self) -> int:
        return self._ts_range()[0]

    @property
    def last_ts(self) -> int:
        return self._ts_range()[1]

    def _ts_range(self) -> tuple[int, int]:
        rows = self.rows
        if isinstance(rows, pl.DataFrame):
            return frame_ts_range(rows)
        if isinstance(rows, list):
            return int(min(r[0] for r in rows)), int(max(r[0] for r in rows))
        return rows.ts_range()

    def frame(self, schema: Schema) -> pl.DataFrame:
        """The rows as a frame of ``schema`` (a batch: O(columns) Python work)."""
        rows = self.rows
        if isinstance(rows, pl.DataFrame):
            return rows
        if isinstance(rows, list):
            return rows_to_frame(schema, rows)
        return rows.to_frame(schema)

    def directory(self) -> PurePath:
        return partition_dir(self.date, self.symbol, self.kind, self.venue)


def frame_ts_range(df: pl.DataFrame) -> tuple[int, int]:
    """(first, last) event time in epoch ms of a frame's ``ts_ms``, int or timestamp."""
    ts = df.get_column("ts_ms")
    if ts.dtype.is_temporal():
        ts = ts.dt.epoch("ms")
    return int(ts.min()), int(ts.max())  # type: ignore[arg-type]


def rows_to_frame(schema: Schema, rows: list[Row]) -> pl.DataFrame:
    """Row tuples as a frame, column by column (recovery and tests; lanes never hold tuples)."""
    if not rows:
        return pl.DataFrame(schema=schema.polars)
    rows = full_rows(schema, rows)
    return pl.DataFrame([pl.Series(name, column, dtype=dtype)
                         for (name, dtype), column in zip(schema.columns, zip(*rows, strict=True),
                                                             strict=True)])


def utc_date(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def split_by_date(kind: str, symbol: str, rows: RowData,
                  venue: str = DEFAULT_VENUE) -> list[Partition]:
    """Split a drained batch into one ``Partition`` per UTC event-time date, in date order.
    Rows keep their order inside each partition. A batch within one day (the usual case) is
    not copied; one that spans midnight becomes frames, split by Polars."""
    if isinstance(rows, list):
        by_day: dict[int, list[Row]] = {}
        for row in rows:
            day = row[0] // DAY_MS
            bucket = by_day.get(day)
            if bucket is None:
                by_day[day] = [row]
            else:
                bucket.append(row)
        return [Partition(kind, symbol, utc_date(day * DAY_MS), day_rows, venue)
                for day, day_rows in sorted(by_day.items())]
    if isinstance(rows, pl.DataFrame):
        if rows.height == 0:
            return []
        lo, hi = frame_ts_range(rows)
    else:
        if not rows:
            return []
        lo, hi = rows.ts_range()
    if lo // DAY_MS == hi // DAY_MS:
        return [Partition(kind, symbol, utc_date(lo), rows, venue)]
    from ..pipeline.chunks import FrameBatch  # storage must not import the pipeline at load

    if isinstance(rows, pl.DataFrame):
        df = rows
        schema = Schema(kind, tuple(rows.schema.items()))
    else:
        df, schema = rows.to_frame(), rows.schema
    days = df.with_columns((ms_expr("ts_ms", df.schema["ts_ms"]) // DAY_MS).alias("_day"))
    return [Partition(kind, symbol, utc_date(int(key[0]) * DAY_MS),
                      FrameBatch(part.drop("_day"), schema, symbol), venue)
            for key, part in sorted(days.partition_by("_day", as_dict=True,
                                                      maintain_order=True).items())]


def ms_expr(column: str, dtype: object) -> pl.Expr:
    """``column`` as epoch ms: as it is if int, from a timestamp otherwise."""
    col = pl.col(column)
    return col.dt.epoch("ms") if isinstance(dtype, pl.Datetime) else col


def partition_dir(date: str, symbol: str, kind: str, venue: str = DEFAULT_VENUE) -> PurePath:
    return PurePath(f"venue={venue}", f"date={date}", f"symbol={symbol}", f"kind={kind}")


def legacy_partition_dir(date: str, symbol: str, kind: str) -> PurePath:
    """Where a version before venues wrote a partition (its venue is ``DEFAULT_VENUE``)."""
    return PurePath(f"date={date}", f"symbol={symbol}", f"kind={kind}")


def partition_dirs_of(date: str, symbol: str, kind: str,
                      venue: str = DEFAULT_VENUE) -> list[PurePath]:
    """Every folder that may hold rows of (venue, date, symbol, kind): the venue's, and for
    ``DEFAULT_VENUE`` also the folder a version before venues wrote."""
    here = partition_dir(date, symbol, kind, venue)
    return [here, legacy_partition_dir(date, symbol, kind)] if venue == DEFAULT_VENUE else [here]


class HiveKey(NamedTuple):
    """The keys of a partition folder; ``legacy``: written before venues (no ``venue=``)."""

    venue: str
    date: str
    symbol: str
    kind: str
    legacy: bool


_KEYS = ("date=", "symbol=", "kind=")


def parse_partition_dir(parts: tuple[str, ...] | list[str]) -> HiveKey | None:
    """The keys of ``venue=V/date=D/symbol=S/kind=K`` (or the older ``date=D/symbol=S/kind=K``,
    as ``DEFAULT_VENUE``), given as path parts relative to the dataset's root; else None."""
    legacy = len(parts) == 3
    if legacy:
        venue = DEFAULT_VENUE
    elif len(parts) == 4 and parts[0].startswith("venue=") and len(parts[0]) > 6:
        venue, parts = parts[0][6:], parts[1:]
    else:
        return None
    if not all(p.startswith(k) for p, k in zip(parts, _KEYS, strict=True)):
        return None
    return HiveKey(venue, parts[0][5:], parts[1][7:], parts[2][5:], legacy)


def date_prefixes(top: Iterable[str], dates: Iterable[str]) -> list[PurePath]:
    """The folders holding ``dates`` (``YYYY-MM-DD``) under a dataset root whose top-level
    entries are ``top``: one per venue, and the older layout's ``date=`` folder."""
    venues = sorted(t for t in top if t.startswith("venue="))
    days = sorted(set(dates))
    return [PurePath(v, f"date={d}") for v in venues for d in days] + [
        PurePath(f"date={d}") for d in days]


_TOKEN_BASE = secrets.randbits(48)
_TOKEN_COUNT = itertools.count()


def unique_token() -> str:
    """Unique across processes and hosts without coordination: pid plus 48 bits, a random
    start drawn once per process and counted up per call (no system call per file)."""
    return f"{os.getpid():x}{(_TOKEN_BASE + next(_TOKEN_COUNT)) % (1 << 48):012x}"


def part_name(first_ts: int, last_ts: int, unique: str | None = None) -> str:
    return f"part-{first_ts}-{last_ts}-{unique or unique_token()}.parquet"


def deadletter_dir(kind: str, venue: str = DEFAULT_VENUE) -> PurePath:
    """A kind's folder in the dead letter, ``venue=VENUE/<kind>`` (versions before venues wrote
    ``<kind>`` alone: read as ``DEFAULT_VENUE``)."""
    return PurePath(f"venue={venue}", kind)


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
