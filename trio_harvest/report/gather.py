"""What the report reads from a local dataset: one ``FileStat`` per live part file (from its
name, its size and its Parquet footer), every ``gaps`` row, and the dead-letter counts.

Owns the walk of the Hive layout under the report's filters (dates, symbols, kinds) and the
footer reads (PyArrow: ~60 µs a file on a quiet core, so a month of 500 symbols, compacted to a
file per partition and day, is seconds).
Reads only the ``gaps`` kind row by row. Blocking and read-only: never writes, moves or deletes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from ..dataset import subdirs, symbol_dirs
from ..kinds import ALL_KINDS, GAPS, PARTITION_COLUMNS, schema_for
from ..storage.backlog import REJECTED_DIR, scan_backlog
from ..storage.fileschema import (
    SOURCES_KEY,
    as_ms,
    live_names,
    local_parts,
    scan_ms,
    sources_in,
)
from ..storage.inventory import count_lines
from .coverage import FileStat, GapRow, Gathered, Slice

_GAP_COLUMNS = [n for n in schema_for(GAPS).names if n not in PARTITION_COLUMNS]
_GAP_SCHEMA = {n: t for n, t in schema_for(GAPS).polars.items() if n in _GAP_COLUMNS}
def partition_dirs_of(data_dir: Path, symbols: Iterable[str] | None, start_ms: int | None,
                     end_ms: int | None, kinds: Iterable[str] = ALL_KINDS,
                     venue: str | None = None) -> list[tuple[str, str, str, Path]]:
    """``(date, symbol, kind, folder)`` of the partitions the filters can match: the dates and
    symbols as ``dataset.partition_dirs`` selects them, then one listing per symbol folder for
    its kinds (not one lookup per kind: a month of 500 symbols is 15,000 folders)."""
    wanted_kinds = set(kinds)
    out = []
    for day, symbol, sym_dir in symbol_dirs(data_dir, symbols, start_ms, end_ms, venue):
        for kind, directory in subdirs(sym_dir, "kind"):
            if kind in wanted_kinds:
                out.append((day.isoformat(), symbol, kind, directory))
    return out


def _range_of(name: str) -> tuple[int, int] | None:
    """``part-<first>-<last>-…`` -> ``(first, last)`` (event-time ms), None if not so named."""
    bits = name.split("-")
    try:
        return int(bits[1]), int(bits[2])
    except (IndexError, ValueError):
        return None


def _footer(path: Path, stat: FileStat) -> FileStat:
    """Rows, size and sources (a compacted file's) from the footer. The rows are spread over
    the range the file's name gives, or, for a file of several row groups (a compacted day),
    over each row group's ``ts_ms`` statistics."""
    try:
        stat.bytes = path.stat().st_size
        meta = pq.read_metadata(path)
    except Exception as exc:  # a broken file is counted as such, never fatal
        stat.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return stat
    stat.rows = meta.num_rows
    if meta.metadata and SOURCES_KEY.encode() in meta.metadata:
        stat.sources = sources_in({SOURCES_KEY: meta.metadata[SOURCES_KEY.encode()].decode()})
    named = _range_of(path.name)
    if meta.num_row_groups == 1 and named is not None:
        stat.slices.append(Slice(named[0], named[1], meta.num_rows))
        return stat
    ts_col = next((i for i in range(meta.num_columns)
                   if meta.schema.column(i).name == "ts_ms"), None)
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        lo_hi = named
        if ts_col is not None:
            st = group.column(ts_col).statistics
            if st is not None and st.has_min_max:
                lo_hi = (_ms(st.min), _ms(st.max))
        if lo_hi is not None and group.num_rows:
            stat.slices.append(Slice(lo_hi[0], lo_hi[1], group.num_rows))
    return stat


def _ms(value: Any) -> int:
    """A ``ts_ms`` statistic as epoch ms: a timestamp (files since times became timestamps)
    or the int ms of older files."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def _gap_frame(paths: list[tuple[str, Path]]) -> pl.DataFrame | None:
    """Every gap row of ``paths`` in one scan (times as epoch ms, whichever way each file
    holds them); file by file (skipping a broken one, which its footer read reports) if the
    scan fails."""
    try:
        return pl.concat([scan_ms([p], _GAP_SCHEMA).with_columns(pl.lit(symbol).alias("symbol"))
                          for symbol, p in paths], how="vertical").collect()
    except Exception:
        frames = []
        for symbol, path in paths:
            try:
                frames.append(as_ms(pl.read_parquet(path, columns=_GAP_COLUMNS))
                              .with_columns(pl.lit(symbol).alias("symbol")))
            except Exception:
                continue
        return pl.concat(frames, how="vertical_relaxed") if frames else None


def _gap_rows(paths: list[tuple[str, Path]]) -> list[GapRow]:
    df = _gap_frame(paths) if paths else None
    if df is None or df.height == 0:
        return []
    df = df.sort("start_ms")
    return [GapRow(r["symbol"], r["stream"] or "", int(r["start_ms"]), int(r["end_ms"]),
                   r["reason"] or "", r["detail"] or "")
            for r in df.select("symbol", "stream", "start_ms", "end_ms", "reason", "detail")
            .iter_rows(named=True)]


def gather(data_dir: Path, deadletter_dirs: Iterable[Path], symbols: Iterable[str] | None = None,
           start_ms: int | None = None, end_ms: int | None = None,
           venue: str | None = None) -> Gathered:
    """Everything the report shows about ``data_dir`` under the filters (blocking)."""
    out = Gathered(str(data_dir))
    parts = partition_dirs_of(data_dir, symbols, start_ms, end_ms, venue=venue)
    jobs = [(p, FileStat(kind, symbol, day, 0, name=p.name)) for day, symbol, kind, d in parts
            for p in local_parts(d)]
    stats = [_footer(path, stat) for path, stat in jobs]  # GIL-bound: threads do not help
    by_dir: dict[Path, list[tuple[Path, FileStat]]] = {}
    for (path, _), stat in zip(jobs, stats, strict=True):
        by_dir.setdefault(path.parent, []).append((path, stat))
    live_paths: list[tuple[str, str, Path]] = []
    for own in by_dir.values():
        named = {stat.name: stat for _, stat in own}
        live = set(live_names(named, lambda n: named[n].sources))  # noqa: B023
        for path, stat in own:
            if stat.name in live:
                out.files.append(stat)
                live_paths.append((stat.kind, stat.symbol, path))
    gaps = _gap_rows([(symbol, p) for kind, symbol, p in live_paths if kind == GAPS])
    out.gaps = [g for g in gaps if (start_ms is None or g.end_ms >= start_ms)
                and (end_ms is None or g.start_ms < end_ms)]
    for dl in deadletter_dirs:
        backlog = scan_backlog(dl)
        out.deadletter_files += backlog.files
        out.deadletter_rows += backlog.rows
        for kind, (n, r) in backlog.by_kind.items():
            f0, r0 = out.deadletter_by_kind.get(kind, (0, 0))
            out.deadletter_by_kind[kind] = (f0 + n, r0 + r)
        out.quarantine_files += backlog.rejected_files
        out.quarantine_lines += count_lines(dl / REJECTED_DIR)
    return out
