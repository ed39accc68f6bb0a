"""The reader API: one kind of a trio_harvest dataset as a Polars ``LazyFrame``.

``scan(data_dir, kind, symbols=None, start=None, end=None)`` lists only the partition
directories that can match (by date and symbol), skips files that a compacted file names as its
sources (so no row is counted twice, even between a compaction's publish and its delete),
reads per-kind files and first-version union files alike with the kind's schema (orderbook: the
deepest level present), adds the Hive columns ``date`` (Date), ``symbol`` and ``kind``, filters
``start <= ts_ms < end`` and adds each time column again as a UTC timestamp (``ts_ms`` ->
``ts``, ``event_ms`` -> ``event_ts``, ``recv_ms`` -> ``recv_ts``, ``start_ms`` -> ``start_ts``,
``end_ms`` -> ``end_ts``). Local folders and ``s3://`` datasets (``dataset_s3.py``). The files
are listed when the frame is collected, and listed again if a compaction deleted one before its
read (``dataset_relist.py``): a compaction running meanwhile is never seen. Reads footers;
never writes anything.

A reader is never misled: a missing dataset root, an unknown kind or venue, and a symbol the
dataset does not hold each raise ``DatasetError`` (one line; a symbol is matched without regard
to case, and a near miss gets a did-you-mean) instead of an empty frame that reads as "no data".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from .dataset_relist import relisting
from .hints import did_you_mean
from .kinds import ALL_KINDS, ORDERBOOK, schema_for
from .storage.fileschema import file_columns, local_live, orderbook_depth
from .storage.location import S3Options, as_s3_url

__all__ = ["TIME_COLUMNS", "VENUES", "DatasetError", "arrow_schema", "scan", "to_ms"]

TimeLike = datetime | date | str | int | float
TIME_COLUMNS = {"ts_ms": "ts", "event_ms": "event_ts", "recv_ms": "recv_ts",
                "start_ms": "start_ts", "end_ms": "end_ts"}
DAY = timedelta(days=1)
VENUES = ("binance-usdm",)  # the venues a dataset can hold today (its only one: no venue= level)


class DatasetError(ValueError):
    """A request the dataset cannot answer truthfully (no such root, kind, venue or symbol);
    its message is one line that says what to change."""


def check_root(data_dir: Path) -> None:
    """``DatasetError`` unless ``data_dir`` is an existing directory."""
    if not data_dir.is_dir():
        what = "is not a directory" if data_dir.exists() else "no such directory"
        raise DatasetError(f"dataset root {data_dir}: {what}")


def check_kind(kind: str) -> None:
    if kind not in ALL_KINDS:
        raise DatasetError(f"kind: {kind!r} is not one of {', '.join(ALL_KINDS)}"
                           + did_you_mean(kind, ALL_KINDS))


def check_venue(venue: str | None) -> None:
    if venue is not None and venue not in VENUES:
        raise DatasetError(f"venue: {venue!r} is not one of {', '.join(VENUES)}"
                           + did_you_mean(venue.lower(), VENUES))


def dataset_symbols(data_dir: Path) -> list[str]:
    """Every symbol with a ``symbol=`` folder on any date (sorted)."""
    return sorted({s for _, day_dir in subdirs(data_dir, "date")
                   for s, _ in subdirs(day_dir, "symbol")})


def resolve_symbols(data_dir: Path, symbols: Iterable[str]) -> list[str]:
    """``symbols`` as the dataset spells them (matched without regard to case), or
    ``DatasetError`` naming the first one it does not hold, with the nearest it does."""
    return match_symbols(dataset_symbols(data_dir), symbols, str(data_dir))


def match_symbols(held: list[str], symbols: Iterable[str], where: str) -> list[str]:
    by_upper = {s.upper(): s for s in held}
    out: list[str] = []
    for raw in symbols:
        found = by_upper.get(raw.strip().upper())
        if found is None:
            hint = did_you_mean(raw.strip().upper(), held) if held else ""
            holds = f"it holds {len(held)} symbols" if held else "it holds no symbol yet"
            raise DatasetError(f"symbol {raw!r} is not in the dataset {where} ({holds})" + hint)
        out.append(found)
    return out


def to_ms(value: TimeLike, name: str = "time") -> int:
    """Epoch milliseconds from a datetime (naive = UTC), a date (its UTC midnight), an ISO 8601
    string or a number of epoch milliseconds. ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not a time")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not an ISO 8601 time "
                             "(e.g. 2024-01-31T12:00:00Z)") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    raise ValueError(f"{name}: {value!r} is not a time")


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


def day_within(raw: str, first: date | None, last: date | None) -> date | None:
    """The date a ``date=`` folder names, if it is one and within ``[first, last]``."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    if (first is not None and day < first) or (last is not None and day > last):
        return None
    return day


def subdirs(directory: Path, key: str) -> list[tuple[str, Path]]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    prefix = f"{key}="
    return [(e.name[len(prefix):], Path(e.path)) for e in entries
            if e.name.startswith(prefix) and e.is_dir()]


def symbol_dirs(data_dir: Path, symbols: Iterable[str] | None = None,
                start_ms: int | None = None, end_ms: int | None = None
                ) -> list[tuple[date, str, Path]]:
    """``(date, symbol, directory)`` of the ``date=…/symbol=…`` folders that can hold rows in
    ``[start_ms, end_ms)`` for ``symbols`` (default all): only matching folders are listed."""
    first = _day(start_ms) if start_ms is not None else None
    last = _day(end_ms - 1) if end_ms is not None else None
    wanted = sorted(set(symbols)) if symbols is not None else None
    out: list[tuple[date, str, Path]] = []
    for raw, date_dir in subdirs(data_dir, "date"):
        day = day_within(raw, first, last)
        if day is None:
            continue
        if wanted is not None:
            out += [(day, s, date_dir / f"symbol={s}") for s in wanted]
        else:
            out += [(day, s, d) for s, d in subdirs(date_dir, "symbol")]
    return out


def partition_dirs(data_dir: Path, kind: str, symbols: Iterable[str] | None = None,
                   start_ms: int | None = None, end_ms: int | None = None
                   ) -> list[tuple[date, str, Path]]:
    """``(date, symbol, directory)`` of the partitions of ``kind`` that can hold rows in
    ``[start_ms, end_ms)``: only the matching ``date=`` and ``symbol=`` directories are listed."""
    return [(day, symbol, symbol_dir / f"kind={kind}")
            for day, symbol, symbol_dir in symbol_dirs(data_dir, symbols, start_ms, end_ms)
            if (symbol_dir / f"kind={kind}").is_dir()]


def _depth(files: list[Any], options: dict[str, str] | None = None) -> int:
    """The deepest book level any of these orderbook files holds (20 if there are none)."""
    if not files:
        return 20

    def one(path: Any) -> int:
        if options is None:
            return orderbook_depth(list(pl.read_parquet_schema(path)),
                                   lambda: pl.scan_parquet(path))
        lazy = pl.scan_parquet(path, storage_options=options)
        return orderbook_depth(list(lazy.collect_schema()), lambda: lazy)

    return max(one(f) for f in files)


def _output_schema(kind: str, depth: int) -> dict[str, Any]:
    out = dict(schema_for(kind, depth).columns)
    out.update(date=pl.Date, kind=pl.String)
    for col, ts in TIME_COLUMNS.items():
        if col in out:
            out[ts] = pl.Datetime("ms", "UTC")
    return out


def arrow_schema(kind: str, depth: int = 20) -> Any:
    """The PyArrow schema of ``kind`` with its Hive columns, for ``pyarrow.dataset.dataset(…,
    schema=…)`` over per-kind and first-version files alike (needs PyArrow installed)."""
    return pl.DataFrame(schema={**schema_for(kind, depth).polars, "date": pl.Date,
                                "kind": pl.String}).to_arrow().schema


def scan(
    data_dir: str | os.PathLike[str],
    kind: str,
    symbols: str | Iterable[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    venue: str | None = None,
    depth: int | None = None,
    s3: S3Options | None = None,
) -> pl.LazyFrame:
    """Rows of ``kind`` (for ``symbols``, default all) with ``start <= ts_ms < end``.

    ``data_dir`` is a local folder or ``s3://bucket/prefix`` (read with ``s3``, default the
    settings ``run`` takes from the environment: ``TRIO_HARVEST_S3_*`` and the AWS variables).
    ``depth`` fixes the orderbook's levels (default: the deepest any matching file holds).
    ``DatasetError`` (a ``ValueError``) for a missing root, an unknown kind or venue, a symbol
    the dataset does not hold; ``ValueError`` for a time that cannot be read."""
    check_kind(kind)
    check_venue(venue)
    if isinstance(symbols, str):
        symbols = [symbols]
    start_ms = to_ms(start, "start") if start is not None else None
    end_ms = to_ms(end, "end") if end is not None else None
    url = as_s3_url(data_dir)
    list_parts: Callable[[], list[tuple[date, str, list[Any]]]]
    options: dict[str, str] | None = None
    if url is not None:
        from .dataset_s3 import S3Listing

        listing = S3Listing(url, s3)
        if symbols is not None:
            symbols = match_symbols(listing.symbols, symbols, listing.url)
        first = _day(start_ms) if start_ms is not None else None
        last = _day(end_ms - 1) if end_ms is not None else None
        wanted = symbols
        options = listing.storage_options()

        def list_parts() -> list[tuple[date, str, list[Any]]]:
            return S3Listing(url, s3).files(kind, wanted, first, last)
    else:
        root = Path(data_dir)
        check_root(root)
        if symbols is not None:
            symbols = resolve_symbols(root, symbols)
        wanted = symbols

        def list_parts() -> list[tuple[date, str, list[Any]]]:
            return [(day, symbol, list(local_live(directory)))
                    for day, symbol, directory in partition_dirs(root, kind, wanted,
                                                                 start_ms, end_ms)]
    if depth is None:
        depth = (_depth([f for _, _, files in list_parts() for f in files], options)
                 if kind == ORDERBOOK else 20)
    schema = _output_schema(kind, depth)
    columns = file_columns(kind, depth)
    names = schema_for(kind, depth).names
    times = [pl.col(col).cast(pl.Datetime("ms", "UTC")).alias(ts)
             for col, ts in TIME_COLUMNS.items() if col in columns]

    def build() -> pl.LazyFrame:  # at collect time: a fresh listing (see dataset_relist)
        frames = [
            pl.scan_parquet(files, schema=columns, missing_columns="insert",
                            extra_columns="ignore", storage_options=options)
            .with_columns(pl.lit(day, dtype=pl.Date).alias("date"),
                          pl.lit(symbol).alias("symbol"), pl.lit(kind).alias("kind"))
            for day, symbol, files in list_parts() if files
        ]
        if not frames:
            return pl.LazyFrame(schema=schema)
        lf = pl.concat(frames, how="vertical")
        if start_ms is not None:
            lf = lf.filter(pl.col("ts_ms") >= start_ms)
        if end_ms is not None:
            lf = lf.filter(pl.col("ts_ms") < end_ms)
        return lf.select(*names, "date", "kind", *times)

    return relisting(build, schema)
