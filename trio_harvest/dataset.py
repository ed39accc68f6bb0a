"""The reader API: one kind of a trio_harvest dataset as a Polars ``LazyFrame``.

``scan(data_dir, kind, venue=None, symbols=None, start=None, end=None)`` lists only the
partition directories that can match (by venue, date and symbol), skips files that a compacted
file names as its sources (so no row is counted twice, even between a compaction's publish and
its delete), reads per-kind files and first-version union files alike with the kind's schema
(orderbook: the deepest level present), adds the Hive columns ``venue``, ``date`` (Date),
``symbol`` and ``kind``, filters ``start <= ts_ms < end`` and adds each time column again
under its short name (``ts_ms`` -> ``ts``, ``event_ms`` -> ``event_ts``, ``recv_ms`` ->
``recv_ts``, ``start_ms`` -> ``start_ts``, ``end_ms`` -> ``end_ts``). Times are UTC timestamps:
files hold them so, and files of versions before (int ms, in folders without ``venue=``, read
as ``DEFAULT_VENUE``) are cast. Local folders and ``s3://`` datasets (``dataset_s3.py``). The
files are listed when the frame is collected, and listed again if a compaction deleted one
before its read (``dataset_relist.py``): a compaction running meanwhile is never seen. Reads
footers; never writes anything.

A reader is never misled: a missing dataset root, an unknown kind or venue, and a symbol the
dataset does not hold each raise ``DatasetError`` (one line; a symbol is matched without regard
to case, and a near miss gets a did-you-mean) instead of an empty frame that reads as "no data".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from . import venues
from .dataset_compat import BOOK_DEPTH, quotes_of, snapshots_only
from .dataset_relist import relisting
from .hints import did_you_mean
from .kinds import (
    ALL_KINDS,
    DEFAULT_VENUE,
    ORDERBOOK,
    QUOTES,
    TIMESTAMP,
    schema_for,
    stored_type,
)
from .storage.fileschema import (
    as_timestamps,
    file_columns,
    has_timestamps,
    local_live,
    ms_file_columns,
    orderbook_depth,
)
from .storage.location import S3Options, as_s3_url

__all__ = ["TIME_COLUMNS", "VENUES", "DatasetError", "arrow_schema", "scan", "to_ms"]

TimeLike = datetime | date | str | int | float
TIME_COLUMNS = {"ts_ms": "ts", "event_ms": "event_ts", "recv_ms": "recv_ts",
                "start_ms": "start_ts", "end_ms": "end_ts"}
DAY = timedelta(days=1)
VENUES = tuple(venues.VENUES)  # the venues known without looking (others: any venue= folder held)


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


def check_venue(venue: str | None, held: Iterable[str] = ()) -> None:
    """``DatasetError`` unless ``venue`` is None, a known venue or one the dataset holds."""
    known = sorted({*VENUES, *held})
    if venue is not None and venue not in known:
        raise DatasetError(f"venue: {venue!r} is not one of {', '.join(known)}"
                           + did_you_mean(venue.lower(), known))


def dataset_venues(data_dir: Path) -> list[str]:
    """The venues with a ``venue=`` folder, and ``DEFAULT_VENUE`` if files of the layout before
    venues (``date=`` folders at the top) are there (sorted)."""
    held = {v for v, _ in subdirs(data_dir, "venue")}
    if subdirs(data_dir, "date"):
        held.add(DEFAULT_VENUE)
    return sorted(held)


def venue_roots(data_dir: Path, venue: str | None = None) -> list[tuple[str, Path, bool]]:
    """``(venue, folder of its date= folders, legacy)``: each ``venue=`` folder (of ``venue``
    only, if given) and the dataset root itself, where versions before venues wrote
    ``DEFAULT_VENUE``'s partitions (``legacy``)."""
    out = [(v, d, False) for v, d in subdirs(data_dir, "venue") if venue in (None, v)]
    if venue in (None, DEFAULT_VENUE):
        out.append((DEFAULT_VENUE, data_dir, True))
    return out


def dataset_symbols(data_dir: Path, venue: str | None = None) -> list[str]:
    """Every symbol with a ``symbol=`` folder on any date (of ``venue``, default all; sorted)."""
    return sorted({s for _, root, _ in venue_roots(data_dir, venue)
                   for _, day_dir in subdirs(root, "date")
                   for s, _ in subdirs(day_dir, "symbol")})


def resolve_symbols(data_dir: Path, symbols: Iterable[str],
                    venue: str | None = None) -> list[str]:
    """``symbols`` as the dataset spells them (matched without regard to case), or
    ``DatasetError`` naming the first one it does not hold, with the nearest it does."""
    return match_symbols(dataset_symbols(data_dir, venue), symbols, str(data_dir))


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


class Located(NamedTuple):
    """A ``symbol=`` (or ``kind=``) folder with its keys; ``legacy``: of the layout before
    venues (no ``venue=`` level; ``DEFAULT_VENUE``)."""

    venue: str
    day: date
    symbol: str
    path: Path
    legacy: bool


def located_dirs(data_dir: Path, symbols: Iterable[str] | None = None,
                 start_ms: int | None = None, end_ms: int | None = None,
                 venue: str | None = None) -> list[Located]:
    """The ``[venue=…/]date=…/symbol=…`` folders that can hold rows in ``[start_ms, end_ms)``
    for ``symbols`` (default all) of ``venue`` (default all): only matching folders are
    listed."""
    first = _day(start_ms) if start_ms is not None else None
    last = _day(end_ms - 1) if end_ms is not None else None
    wanted = sorted(set(symbols)) if symbols is not None else None
    out: list[Located] = []
    for v, root, legacy in venue_roots(data_dir, venue):
        for raw, date_dir in subdirs(root, "date"):
            day = day_within(raw, first, last)
            if day is None:
                continue
            if wanted is not None:
                out += [Located(v, day, s, date_dir / f"symbol={s}", legacy) for s in wanted]
            else:
                out += [Located(v, day, s, d, legacy) for s, d in subdirs(date_dir, "symbol")]
    return out


def symbol_dirs(data_dir: Path, symbols: Iterable[str] | None = None,
                start_ms: int | None = None, end_ms: int | None = None,
                venue: str | None = None) -> list[tuple[date, str, Path]]:
    """``(date, symbol, directory)`` of ``located_dirs``."""
    return [(d.day, d.symbol, d.path)
            for d in located_dirs(data_dir, symbols, start_ms, end_ms, venue)]


def kind_dirs(data_dir: Path, kind: str, symbols: Iterable[str] | None = None,
              start_ms: int | None = None, end_ms: int | None = None,
              venue: str | None = None) -> list[Located]:
    """The partitions of ``kind`` that can hold rows in ``[start_ms, end_ms)``: only the
    matching ``venue=``, ``date=`` and ``symbol=`` directories are listed."""
    return [d._replace(path=d.path / f"kind={kind}")
            for d in located_dirs(data_dir, symbols, start_ms, end_ms, venue)
            if (d.path / f"kind={kind}").is_dir()]


def partition_dirs(data_dir: Path, kind: str, symbols: Iterable[str] | None = None,
                   start_ms: int | None = None, end_ms: int | None = None,
                   venue: str | None = None) -> list[tuple[date, str, Path]]:
    """``(date, symbol, directory)`` of ``kind_dirs``."""
    return [(d.day, d.symbol, d.path)
            for d in kind_dirs(data_dir, kind, symbols, start_ms, end_ms, venue)]


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
    out = {name: stored_type(name, dtype) for name, dtype in schema_for(kind, depth).columns}
    out.update(venue=pl.String, date=pl.Date, kind=pl.String)
    for col, ts in TIME_COLUMNS.items():
        if col in out:
            out[ts] = TIMESTAMP
    return out


def _file_has_timestamps(path: Any, options: dict[str, str] | None) -> bool:
    """Whether a part file holds its times as timestamps (one footer read)."""
    if options is None:
        return has_timestamps(dict(pl.read_parquet_schema(path)))
    return has_timestamps(dict(pl.scan_parquet(path, storage_options=options).collect_schema()))


def arrow_schema(kind: str, depth: int = 20) -> Any:
    """The PyArrow schema of ``kind`` with its Hive columns, for ``pyarrow.dataset.dataset(…,
    schema=…)`` over per-kind and first-version files alike (needs PyArrow installed)."""
    return pl.DataFrame(schema={**file_columns(kind, depth), "symbol": pl.String,
                                "venue": pl.String, "date": pl.Date, "kind": pl.String}
                        ).to_arrow().schema


def scan(
    data_dir: str | os.PathLike[str],
    kind: str,
    venue: str | None = None,
    symbols: str | Iterable[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    depth: int | None = None,
    s3: S3Options | None = None,
) -> pl.LazyFrame:
    """Rows of ``kind`` (of ``venue`` and ``symbols``, default all) with ``start <= ts < end``.

    ``data_dir`` is a local folder or ``s3://bucket/prefix`` (read with ``s3``, default the
    settings ``run`` takes from the environment: ``TRIO_HARVEST_S3_*`` and the AWS variables).
    Partitions written before venues (no ``venue=`` level) are read as ``DEFAULT_VENUE``.
    ``depth`` fixes the orderbook's levels (default: the deepest any matching file holds).
    ``DatasetError`` (a ``ValueError``) for a missing root, an unknown kind or venue, a symbol
    the dataset does not hold; ``ValueError`` for a time that cannot be read."""
    check_kind(kind)
    if isinstance(symbols, str):
        symbols = [symbols]
    start_ms = to_ms(start, "start") if start is not None else None
    end_ms = to_ms(end, "end") if end is not None else None
    url = as_s3_url(data_dir)
    list_parts: Callable[[], list[tuple[Located, list[Any]]]]
    options: dict[str, str] | None = None
    if url is not None:
        from .dataset_s3 import S3Listing

        listing = S3Listing(url, s3)
        check_venue(venue, listing.venues)
        if symbols is not None:
            symbols = match_symbols(listing.symbols_of(venue), symbols, listing.url)
        first = _day(start_ms) if start_ms is not None else None
        last = _day(end_ms - 1) if end_ms is not None else None
        wanted = symbols
        options = listing.storage_options()

        def list_parts(of: str = kind) -> list[tuple[Located, list[Any]]]:
            return S3Listing(url, s3).files(of, wanted, first, last, venue)
    else:
        root = Path(data_dir)
        check_root(root)
        check_venue(venue, dataset_venues(root))
        if symbols is not None:
            symbols = resolve_symbols(root, symbols, venue)
        wanted = symbols

        def list_parts(of: str = kind) -> list[tuple[Located, list[Any]]]:
            return [(d, list(local_live(d.path)))
                    for d in kind_dirs(root, of, wanted, start_ms, end_ms, venue)]
    if depth is None:
        depth = (_depth([f for _, files in list_parts() for f in files], options)
                 if kind == ORDERBOOK else 20)
    schema = _output_schema(kind, depth)
    columns = file_columns(kind, depth)  # times as timestamps
    older = ms_file_columns(kind, depth)  # times as int ms: files of versions before
    names = schema_for(kind, depth).names
    times = [pl.col(col).alias(ts) for col, ts in TIME_COLUMNS.items() if col in columns]

    def read(part: Located, files: list[Any], of: str = kind) -> list[pl.LazyFrame]:
        """A partition's files with the kind's schema. A folder of the layout before venues
        holds int ms files (cast to timestamps here) and, once compacted, timestamped ones;
        its orderbook holds the best bid/ask rows that are ``quotes`` now (dataset_compat)."""
        new_cols, old_cols = (columns, older) if of == kind else (
            file_columns(of, BOOK_DEPTH), ms_file_columns(of, BOOK_DEPTH))
        groups = [(files, new_cols)]
        if part.legacy:
            new = [f for f in files if _file_has_timestamps(f, options)]
            groups = [(new, new_cols), ([f for f in files if f not in new], old_cols)]
        keys = (pl.lit(part.venue).alias("venue"), pl.lit(part.day, dtype=pl.Date).alias("date"),
                pl.lit(part.symbol).alias("symbol"), pl.lit(kind).alias("kind"))
        out = []
        for group, cols in groups:
            if not group:
                continue
            lf = as_timestamps(pl.scan_parquet(group, schema=cols, missing_columns="insert",
                                               extra_columns="ignore", storage_options=options),
                               cols if cols is old_cols else ())
            if part.legacy and kind == ORDERBOOK:
                lf = snapshots_only(lf)
            elif of != kind:
                lf = quotes_of(lf)
            out.append(lf.with_columns(*keys))
        return out

    def build() -> pl.LazyFrame:  # at collect time: a fresh listing (see dataset_relist)
        frames = [lf for part, files in list_parts() if files for lf in read(part, files)]
        if kind == QUOTES:  # the best bid/ask rows that datasets before kept in orderbook
            frames += [lf for part, files in list_parts(ORDERBOOK) if files and part.legacy
                       for lf in read(part, files, ORDERBOOK)]
        if not frames:
            return pl.LazyFrame(schema=schema)
        lf = pl.concat(frames, how="vertical")
        if start_ms is not None:
            lf = lf.filter(pl.col("ts_ms") >= pl.lit(start_ms, dtype=pl.Int64).cast(TIMESTAMP))
        if end_ms is not None:
            lf = lf.filter(pl.col("ts_ms") < pl.lit(end_ms, dtype=pl.Int64).cast(TIMESTAMP))
        return lf.select(*names, "venue", "date", "kind", *times)

    return relisting(build, schema)
