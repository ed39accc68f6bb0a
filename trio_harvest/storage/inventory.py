"""``python -m trio_harvest inspect``: what is on disk, per date, symbol and kind.

Owns the inventory of a data directory: part files, rows, first/last event time and bytes per
partition; for ``prices``, the continuity of ``agg_id`` (holes and duplicates, per partition and
per symbol across dates); the dead-letter backlog; temporary files left by a crash; files that
cannot be read. Its JSON shape is a stable interface (documented in the README). Read-only and
blocking: it never changes, moves or deletes anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import ConfigError
from ..hints import plural
from ..kinds import DEFAULT_VENUE, GAPS, PRICES, SPAN_ID_VENUES, UNCHAINED_ID_VENUES
from .backlog import REJECTED_DIR, scan_backlog
from .fileschema import live_names, local_sources
from .gapreport import GapSummary, summarize_gaps
from .partitions import (
    DEADLETTER_DIR,
    LEGACY_DEADLETTER_DIR,
    TMP_PREFIX,
    frame_ts_range,
    parse_partition_dir,
)

MAX_LISTED = 50
Keep = Callable[[str, str], bool]  # (date, symbol) -> whether a partition is listed


@dataclass(slots=True)
class PartitionInfo:
    date: str
    symbol: str
    kind: str
    files: int = 0
    rows: int = 0
    bytes: int = 0
    first_ts_ms: int | None = None
    last_ts_ms: int | None = None
    agg_id_holes: int | None = None  # prices only
    agg_id_missing: int | None = None
    agg_id_duplicates: int | None = None
    venue: str = DEFAULT_VENUE

    @property
    def label(self) -> str:
        """The symbol as listed: ``VENUE:SYMBOL`` for a venue other than the default."""
        return venue_label(self.venue, self.symbol)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "venue": self.venue, "date": self.date, "symbol": self.symbol, "kind": self.kind,
            "files": self.files,
            "rows": self.rows, "bytes": self.bytes, "first_ts_ms": self.first_ts_ms,
            "last_ts_ms": self.last_ts_ms, "first_ts": _iso(self.first_ts_ms),
            "last_ts": _iso(self.last_ts_ms),
        }
        if self.kind == PRICES:
            d.update(agg_id_holes=self.agg_id_holes, agg_id_missing=self.agg_id_missing,
                     agg_id_duplicates=self.agg_id_duplicates)
        return d


@dataclass(slots=True)
class Continuity:
    first_agg_id: int | None = None
    last_agg_id: int | None = None
    rows: int = 0
    holes: int = 0
    missing: int = 0
    duplicates: int = 0
    hole_ranges: list[tuple[int, int]] = field(default_factory=list)  # missing ids, inclusive

    def as_dict(self) -> dict[str, Any]:
        return {"first_agg_id": self.first_agg_id, "last_agg_id": self.last_agg_id,
                "rows": self.rows, "holes": self.holes, "missing": self.missing,
                "duplicates": self.duplicates,
                "hole_ranges": [list(r) for r in self.hole_ranges[:MAX_LISTED]]}


@dataclass(slots=True)
class Inventory:
    data_dir: Path
    deadletter_dir: Path
    partitions: list[PartitionInfo] = field(default_factory=list)
    continuity: dict[str, Continuity] = field(default_factory=dict)
    deadletter: dict[str, Any] = field(default_factory=dict)
    temp_files: list[tuple[str, int]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    gaps: GapSummary = field(default_factory=GapSummary)  # the gaps kind

    @property
    def holes(self) -> int:
        return sum(c.holes for c in self.continuity.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "deadletter_dir": str(self.deadletter_dir),
            "partitions": [p.as_dict() for p in self.partitions],
            "prices_continuity": {s: c.as_dict() for s, c in sorted(self.continuity.items())},
            "deadletter": self.deadletter,
            "temp_files": {"count": len(self.temp_files),
                           "bytes": sum(n for _, n in self.temp_files),
                           "paths": [p for p, _ in self.temp_files[:MAX_LISTED]]},
            "unreadable": [{"path": p, "error": e} for p, e in self.unreadable],
            "totals": {"files": sum(p.files for p in self.partitions),
                       "rows": sum(p.rows for p in self.partitions),
                       "bytes": sum(p.bytes for p in self.partitions),
                       "agg_id_holes": self.holes},
            "gaps": self.gaps.as_dict(),  # the gaps kind, summarised
        }

    def render(self) -> str:
        head = (f"{'date':<10}  {'symbol':<12} {'kind':<9} {'files':>6} {'rows':>10} "
                f"{'first (UTC)':<24} {'last (UTC)':<24} {'bytes':>10}  agg_id holes")
        lines = [f"data dir {self.data_dir}", head]
        for p in self.partitions:
            holes = "" if p.kind != PRICES else (
                f"{p.agg_id_holes} ({p.agg_id_missing} missing"
                + (f", {p.agg_id_duplicates} duplicates)" if p.agg_id_duplicates else ")"))
            lines.append(
                f"{p.date:<10}  {p.label:<12} {p.kind:<9} {p.files:>6} {p.rows:>10} "
                f"{_iso(p.first_ts_ms) or '-':<24} {_iso(p.last_ts_ms) or '-':<24} "
                f"{human_size(p.bytes):>10}  {holes}".rstrip())
        if not self.partitions:
            lines.append("(no partitions)")
        for symbol, c in sorted(self.continuity.items()):
            ranges = ", ".join(f"{a}..{b}" for a, b in c.hole_ranges[:5])
            more = f" (+{len(c.hole_ranges) - 5} more)" if len(c.hole_ranges) > 5 else ""
            lines.append(
                f"prices {symbol}: agg_id {c.first_agg_id}..{c.last_agg_id}, "
                f"{plural(c.rows, 'row')}, {plural(c.holes, 'hole')} ({c.missing} missing), "
                f"{plural(c.duplicates, 'duplicate')}"
                + (f"; missing {ranges}{more}" if ranges else ""))
        dl = self.deadletter
        by_kind = ", ".join(f"{k} {plural(v['files'], 'file')}/{plural(v['rows'], 'row')}"
                            for k, v in dl.get("by_kind", {}).items())
        lines.append(f"dead letter: {plural(dl.get('files', 0), 'file')}, "
                     f"{plural(dl.get('rows', 0), 'row')}"
                     + (f" ({by_kind})" if by_kind else "")
                     + f"; rejected: {plural(dl.get('rejected_files', 0), 'file')}, "
                       f"{plural(dl.get('rejected_lines', 0), 'line')}")
        lines.append(f"temp leftovers: {len(self.temp_files)}"
                     + "".join(f"\n  {p}" for p, _ in self.temp_files[:10]))
        if self.unreadable:
            lines.append(f"unreadable files: {len(self.unreadable)}"
                         + "".join(f"\n  {p}: {e}" for p, e in self.unreadable[:10]))
        lines += self.gaps.render()
        t = self.as_dict()["totals"]
        lines.append(f"totals: {plural(t['files'], 'file')}, {plural(t['rows'], 'row')}, "
                     f"{human_size(t['bytes'])}")
        return "\n".join(lines)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def human_size(n: int) -> str:
    """``512 B``, ``1.5 KiB``, … ``3.2 GiB`` (at most GiB)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def venue_label(venue: str, symbol: str) -> str:
    return symbol if venue == DEFAULT_VENUE else f"{venue}:{symbol}"


PartKey = tuple[str, str, str, str]  # venue, date, symbol, kind


def _hive(parts: tuple[str, ...]) -> PartKey | None:
    """(venue, date, symbol, kind) of a partition folder (of either layout: a partition written
    before venues joins its ``DEFAULT_VENUE`` twin)."""
    key = parse_partition_dir(parts)
    return None if key is None else (key.venue, key.date, key.symbol, key.kind)


def _continuity(ids: pl.Series, firsts: pl.Series | None = None,
                chained: bool = True) -> Continuity:
    """Holes in ``agg_id``; with ``firsts`` (a venue whose rows cover ``first_id..agg_id``) a
    hole is an id no row covers; not ``chained`` (ids prove no continuity): duplicates only."""
    c = Continuity(rows=ids.len())
    if ids.len() == 0:
        return c
    if not chained:
        uniq = ids.unique().sort()
        c.duplicates = ids.len() - uniq.len()
        c.first_agg_id, c.last_agg_id = int(uniq[0]), int(uniq[-1])
        return c
    if firsts is not None:
        rows = pl.DataFrame({"cur": ids, "first": firsts}).unique("cur").sort("cur")
        uniq, starts = rows["cur"], rows["first"]
    else:
        uniq = ids.unique().sort()
        starts = uniq
    c.duplicates = ids.len() - uniq.len()
    c.first_agg_id, c.last_agg_id = int(uniq[0]), int(uniq[-1])
    prev = uniq.shift(1)
    # a hole before a row: ids between the previous row's last id and this row's first one
    gap = pl.DataFrame({"prev": prev, "cur": starts}).filter(
        pl.col("cur") - pl.col("prev") > 1)
    c.holes = gap.height
    c.missing = int((gap["cur"] - gap["prev"] - 1).sum()) if gap.height else 0
    c.hole_ranges = [(int(a) + 1, int(b) - 1) for a, b in gap.head(1000).iter_rows()]
    return c


def _cat(series: list[pl.Series]) -> pl.Series:
    return pl.concat(series) if series else pl.Series("agg_id", [], pl.Int64)


def inspect_dataset(data_dir: Path, deadletter_dir: Path | None = None,
                    keep: Keep | None = None) -> Inventory:
    """Inventory of ``data_dir`` (blocking), of the partitions ``keep`` accepts (default all).
    ``ConfigError`` if it is not a directory."""
    if not data_dir.is_dir():
        what = "is not a directory" if data_dir.exists() else "no such directory"
        raise ConfigError(f"data dir {data_dir}: {what}")
    data_dir = data_dir.resolve()
    dl_dir = (deadletter_dir if deadletter_dir is not None else data_dir / DEADLETTER_DIR
              ).resolve()
    if dl_dir.exists() and not dl_dir.is_dir():
        raise ConfigError(f"dead-letter dir {dl_dir}: is not a directory")
    inv = Inventory(data_dir, dl_dir)
    groups: dict[PartKey, list[Path]] = {}
    for dirpath, dirs, files in os.walk(data_dir):
        here = Path(dirpath)
        if here == dl_dir:
            dirs[:] = []
        for name in files:
            path = here / name
            if name.startswith(TMP_PREFIX):
                inv.temp_files.append((str(path.relative_to(data_dir)), _stat_size(path)))
                continue
            if here == dl_dir or dl_dir in here.parents:
                continue
            key = _hive(here.relative_to(data_dir).parts)
            if key is None or not name.endswith(".parquet"):
                continue
            if keep is not None and not keep(key[1], key[2]):
                continue
            groups.setdefault(key, []).append(path)
    if dl_dir.is_dir() and data_dir not in (dl_dir, *dl_dir.parents):
        for dirpath, _dirs, files in os.walk(dl_dir):
            for name in files:
                if name.startswith(TMP_PREFIX):
                    path = Path(dirpath, name)
                    inv.temp_files.append((str(path), _stat_size(path)))
    inv.temp_files.sort()
    groups = {key: _live_by_dir(paths) for key, paths in groups.items()}
    prices_ids: dict[str, list[pl.Series]] = {}
    prices_firsts: dict[str, list[pl.Series]] = {}  # venues whose rows cover id spans
    unchained: set[str] = set()  # labels of venues whose ids prove no continuity
    for (venue, date, symbol, kind), paths in sorted(groups.items()):
        info = PartitionInfo(date, symbol, kind, venue=venue)
        ids: list[pl.Series] = []
        firsts: list[pl.Series] = []
        spans = venue in SPAN_ID_VENUES
        for path in sorted(paths):
            try:
                cols = ["ts_ms", "agg_id"] if kind == PRICES else ["ts_ms"]
                if kind == PRICES and spans:
                    cols.append("first_id")
                df = pl.read_parquet(path, columns=cols)
            except Exception as exc:  # a broken file is reported, not fatal
                inv.unreadable.append((str(path.relative_to(data_dir)), unreadable_reason(exc)))
                continue
            account(info, df, _stat_size(path))
            if kind == PRICES:
                ids.append(df["agg_id"])
                if spans:
                    firsts.append(df["first_id"])
        if kind == PRICES:
            c = _continuity(_cat(ids), _cat(firsts) if spans else None,
                            venue not in UNCHAINED_ID_VENUES)
            info.agg_id_holes, info.agg_id_missing = c.holes, c.missing
            info.agg_id_duplicates = c.duplicates
            prices_ids.setdefault(info.label, []).extend(ids)
            if venue in UNCHAINED_ID_VENUES:
                unchained.add(info.label)
            if spans:
                prices_firsts.setdefault(info.label, []).extend(firsts)
        inv.partitions.append(info)
    for symbol, series in prices_ids.items():
        inv.continuity[symbol] = _continuity(
            _cat(series), _cat(prices_firsts[symbol]) if symbol in prices_firsts else None,
            symbol not in unchained)
    doc = backlog_doc(dl_dir)
    legacy = data_dir / LEGACY_DEADLETTER_DIR  # not yet moved by a start or a recover
    if legacy != dl_dir and legacy.is_dir():
        doc = merged_backlog_docs(doc, backlog_doc(legacy))
    inv.deadletter = doc
    inv.gaps = summarize_gaps(p for (_, _, _, kind), ps in sorted(groups.items()) if kind == GAPS
                              for p in sorted(ps))
    return inv


def _live_by_dir(paths: list[Path]) -> list[Path]:
    """``_live`` of each folder's files (a partition may have a folder in either layout)."""
    by_dir: dict[Path, list[Path]] = {}
    for p in paths:
        by_dir.setdefault(p.parent, []).append(p)
    return [p for ps in by_dir.values() for p in _live(ps)]


def _live(paths: list[Path]) -> list[Path]:
    """Without the files a compacted file names as its sources (their rows are in it); a
    compacted file that cannot be read hides nothing (it is reported as unreadable)."""
    by_name = {p.name: p for p in paths}

    def sources_of(name: str) -> list[str]:
        try:
            return local_sources(by_name[name])
        except Exception:
            return []

    return [by_name[n] for n in live_names(by_name, sources_of)]


def backlog_doc(dl_dir: Path) -> dict[str, Any]:
    """The ``deadletter`` object of the inventory for one dead-letter folder."""
    doc: dict[str, Any] = scan_backlog(dl_dir).as_dict()
    doc["rejected_lines"] = count_lines(dl_dir / REJECTED_DIR)
    return doc


def merged_backlog_docs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key in ("files", "rows", "rejected_files", "rejected_lines"):
        out[key] = a[key] + b[key]
    by_kind = {k: dict(v) for k, v in a["by_kind"].items()}
    for kind, v in b["by_kind"].items():
        have = by_kind.setdefault(kind, {"files": 0, "rows": 0})
        have["files"] += v["files"]
        have["rows"] += v["rows"]
    out["by_kind"] = dict(sorted(by_kind.items()))
    out["unknown_files"] = [*a["unknown_files"], *b["unknown_files"]]
    return out


def count_lines(root: Path) -> int:
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(TMP_PREFIX):
                continue
            try:
                with open(Path(dirpath, name), "rb") as fh:
                    n += sum(1 for line in fh if line.strip())
            except OSError:
                continue
    return n


def unreadable_reason(exc: Exception) -> str:
    """One line for a file that cannot be read (``inspect`` lists it, never fails on it)."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def account(info: PartitionInfo, df: pl.DataFrame, size: int) -> None:
    """Add one file of ``info``'s partition (read as ``df``, ``size`` bytes) to its totals."""
    info.files += 1
    info.rows += df.height
    info.bytes += size
    if df.height:
        lo, hi = frame_ts_range(df)
        info.first_ts_ms = _min(info.first_ts_ms, int(lo))
        info.last_ts_ms = _max(info.last_ts_ms, int(hi))


def _stat_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _min(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def _max(a: int | None, b: int) -> int:
    return b if a is None else max(a, b)
