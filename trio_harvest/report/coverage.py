"""The report's tables, from what ``gather`` read: rows per symbol and time bin (with where data
is missing), uptime per symbol and day, rows and bytes per kind, gap counts per status.

Pure: no I/O, no trio, no plotting. Row counts per bin are estimated from Parquet statistics (a
row group's rows spread evenly over its ``ts_ms`` range), so they are exact per file and
approximate within one; where data is missing comes from the ``gaps`` kind, exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..gaps import parse_agg_detail
from ..kinds import BOOK_UPDATES, ORDERBOOK, PRICES, QUOTES

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
BIN_CHOICES_MS = (1_000, 5_000, 15_000, 60_000, 300_000, 900_000, HOUR_MS)
MAX_BINS = 1_000  # an hour per bin from ~6 weeks on: the heat map stays readable
# the market data a symbol is harvested for: every authoritative kind but ``gaps`` (a symbol
# harvested for its best bid/ask alone has rows in ``quotes`` only)
COVERAGE_KINDS = (PRICES, ORDERBOOK, QUOTES, BOOK_UPDATES)

FILLED, UNFILLED, INTERVAL = "filled", "unfilled", "interval"  # a gap row's status


@dataclass(frozen=True, slots=True)
class Slice:
    """Rows of one part file (or one row group of it) and the event-time range they span."""

    first_ms: int
    last_ms: int
    rows: int


@dataclass(slots=True)
class FileStat:
    kind: str
    symbol: str
    date: str
    bytes: int
    rows: int = 0
    slices: list[Slice] = field(default_factory=list)
    error: str | None = None  # the footer could not be read
    name: str = ""
    sources: list[str] = field(default_factory=list)  # a compacted file's: no longer live


@dataclass(frozen=True, slots=True)
class GapRow:
    symbol: str
    stream: str
    start_ms: int
    end_ms: int
    reason: str
    detail: str

    @property
    def status(self) -> str:
        """``filled``/``unfilled`` for an agg-id range; ``interval`` for a time interval that
        says nothing about ids (a disconnect or stall of a stream)."""
        agg = parse_agg_detail(self.detail)
        if agg is None:
            return INTERVAL
        return FILLED if agg[2] else UNFILLED


@dataclass(slots=True)
class Gathered:
    data_dir: str
    files: list[FileStat] = field(default_factory=list)
    gaps: list[GapRow] = field(default_factory=list)
    deadletter_files: int = 0
    deadletter_rows: int = 0
    deadletter_by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)
    quarantine_files: int = 0  # dead-letter lines set aside as invalid (DEADLETTER/_rejected/)
    quarantine_lines: int = 0
    temp_files: int = 0


def choose_bin(span_ms: int) -> int:
    """The finest bin of ``BIN_CHOICES_MS`` that cuts ``span_ms`` into at most ``MAX_BINS``
    (an hour for anything longer than ~41 days)."""
    for b in BIN_CHOICES_MS:
        if span_ms <= b * MAX_BINS:
            return b
    return HOUR_MS


def span(files: Iterable[FileStat], start_ms: int | None = None, end_ms: int | None = None
         ) -> tuple[int, int] | None:
    """``[first, last]`` event time the files cover, clipped to the filters."""
    lo = min((s.first_ms for f in files for s in f.slices), default=None)
    hi = max((s.last_ms for f in files for s in f.slices), default=None)
    if lo is None or hi is None:
        return None
    if start_ms is not None:
        lo = max(lo, start_ms)
    if end_ms is not None:
        hi = min(hi, end_ms - 1)
    return (lo, hi) if lo <= hi else None


def merge_intervals(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of closed intervals, sorted, as disjoint intervals."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def overlap(intervals: Sequence[tuple[int, int]], lo: int, hi: int) -> int:
    """Milliseconds of ``[lo, hi)`` inside the disjoint ``intervals``."""
    return sum(max(0, min(b, hi) - max(a, lo)) for a, b in intervals if a < hi and b > lo)


@dataclass(slots=True)
class Heat:
    """``rows[i][j]``: estimated rows of symbol ``symbols[i]`` in bin ``j`` (starting at
    ``origin_ms + j * bin_ms``); ``missing[i][j]``: the share of the bin without data (a gap,
    or no rows at all), None where nothing is missing."""

    symbols: list[str]
    origin_ms: int
    bin_ms: int
    rows: list[list[float]]
    missing: list[list[float | None]]
    reasons: list[list[str]]

    @property
    def bins(self) -> int:
        return len(self.rows[0]) if self.rows else 0


def heat(files: Sequence[FileStat], gaps: Sequence[GapRow], lo: int, hi: int,
         kinds: Sequence[str] = COVERAGE_KINDS, bin_ms: int | None = None) -> Heat:
    """The coverage heat map of ``[lo, hi]``: rows of ``kinds`` per symbol and bin, and where
    data is missing (the gaps' union per symbol, and bins with no rows)."""
    bin_ms = bin_ms or choose_bin(hi - lo + 1)
    origin = lo - lo % bin_ms
    n = (hi - origin) // bin_ms + 1
    symbols = sorted({f.symbol for f in files if f.kind in kinds} | {g.symbol for g in gaps})
    index = {s: i for i, s in enumerate(symbols)}
    rows = [[0.0] * n for _ in symbols]
    for f in files:
        if f.kind not in kinds:
            continue
        line = rows[index[f.symbol]]
        for s in f.slices:
            _spread(line, s, origin, bin_ms, lo, hi)
    missing: list[list[float | None]] = [[None] * n for _ in symbols]
    reasons = [[""] * n for _ in symbols]
    by_symbol = gaps_by_symbol(gaps)
    for symbol, i in index.items():
        own = by_symbol.get(symbol, [])
        gap_ms = [0] * n  # per bin: ms inside the union of the symbol's gaps
        for a, b in merge_intervals((g.start_ms, g.end_ms) for g in own if g.end_ms > g.start_ms):
            for j in _bins(a, b - 1, origin, bin_ms, n):
                b0 = origin + j * bin_ms
                gap_ms[j] += max(0, min(b, b0 + bin_ms) - max(a, b0))
        hits: dict[int, set[str]] = {}
        for g in own:
            for j in _bins(g.start_ms, g.end_ms, origin, bin_ms, n):
                hits.setdefault(j, set()).add(g.reason)
        line = rows[i]
        empty = {j for j, v in enumerate(line) if v == 0}
        for j in sorted(empty | set(hits) | {j for j, ms in enumerate(gap_ms) if ms}):
            b0 = origin + j * bin_ms
            inside = max(0, min(b0 + bin_ms, hi + 1) - max(b0, lo))
            share = gap_ms[j] / inside if inside else 0.0
            hit = sorted(hits.get(j, ()))
            if j in empty and inside:
                share, hit = 1.0, hit or ["no rows"]
            if share > 0 or hit:
                missing[i][j] = min(1.0, max(share, 0.01))
                reasons[i][j] = ", ".join(hit)
    return Heat(symbols, origin, bin_ms, rows, missing, reasons)


def gaps_by_symbol(gaps: Iterable[GapRow]) -> dict[str, list[GapRow]]:
    out: dict[str, list[GapRow]] = {}
    for g in gaps:
        out.setdefault(g.symbol, []).append(g)
    return out


def _bins(first_ms: int, last_ms: int, origin: int, bin_ms: int, n: int) -> range:
    """The bins ``[first_ms, last_ms]`` touches, within ``0..n-1``."""
    return range(max(0, (first_ms - origin) // bin_ms), min(n - 1, (last_ms - origin) // bin_ms) + 1)


def _spread(line: list[float], s: Slice, origin: int, bin_ms: int, lo: int, hi: int) -> None:
    """Add ``s.rows`` to the bins of ``line``, evenly over ``[s.first_ms, s.last_ms]``, only the
    part within ``[lo, hi]``."""
    width = s.last_ms - s.first_ms + 1
    a, b = max(s.first_ms, lo), min(s.last_ms, hi)
    if a > b:
        return
    j = (a - origin) // bin_ms
    while j < len(line):
        b0, b1 = origin + j * bin_ms, origin + (j + 1) * bin_ms - 1
        if b0 > b:
            break
        part = min(b1, b) - max(b0, a) + 1
        line[j] += s.rows * part / width
        j += 1


@dataclass(slots=True)
class Uptime:
    """``percent[symbol][day]``: the share of the time the symbol was harvested that day (its
    first to its last row) not inside a gap."""

    days: list[str]
    percent: dict[str, dict[str, float]] = field(default_factory=dict)


def uptime(files: Sequence[FileStat], gaps: Sequence[GapRow], lo: int, hi: int) -> Uptime:
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for f in files:
        for s in f.slices:
            first[f.symbol] = min(first.get(f.symbol, s.first_ms), s.first_ms)
            last[f.symbol] = max(last.get(f.symbol, s.last_ms), s.last_ms)
    out = Uptime(days=[])
    day0 = lo - lo % DAY_MS
    days = range(day0, hi + 1, DAY_MS)
    out.days = [datetime.fromtimestamp(d / 1000, tz=UTC).date().isoformat() for d in days]
    by_symbol = gaps_by_symbol(gaps)
    for symbol in sorted(first):
        union = merge_intervals((g.start_ms, g.end_ms) for g in by_symbol.get(symbol, ())
                                if g.end_ms > g.start_ms)
        row: dict[str, float] = {}
        for d, name in zip(days, out.days, strict=True):
            a = max(d, first[symbol], lo)
            b = min(d + DAY_MS, last[symbol] + 1, hi + 1)
            if b <= a:
                continue
            row[name] = 100.0 * (1 - overlap(union, a, b) / (b - a))
        out.percent[symbol] = row
    return out


def per_kind(files: Iterable[FileStat]) -> dict[str, tuple[int, int, int]]:
    """kind -> (files, rows, bytes)."""
    out: dict[str, tuple[int, int, int]] = {}
    for f in files:
        n, r, b = out.get(f.kind, (0, 0, 0))
        out[f.kind] = (n + 1, r + f.rows, b + f.bytes)
    return dict(sorted(out.items()))


def gap_counts(gaps: Iterable[GapRow]) -> dict[tuple[str, str], tuple[int, int]]:
    """(reason, status) -> (rows, milliseconds covered)."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for g in gaps:
        key = (g.reason, g.status)
        n, ms = out.get(key, (0, 0))
        out[key] = (n + 1, ms + max(0, g.end_ms - g.start_ms))
    return dict(sorted(out.items()))


def worst(up: Uptime, gaps: Iterable[GapRow], n: int = 10) -> list[tuple[str, float, int]]:
    """The ``n`` symbols with the lowest daily uptime (then the most gap rows), as
    ``(symbol, lowest daily uptime %, gap rows)``; only symbols with a gap or below 100%."""
    counts: dict[str, int] = {}
    for g in gaps:
        counts[g.symbol] = counts.get(g.symbol, 0) + 1
    rows = [(s, min(days.values(), default=100.0), counts.get(s, 0))
            for s, days in up.percent.items()]
    rows += [(s, 100.0, c) for s, c in counts.items() if s not in up.percent]
    rows = [r for r in rows if r[1] < 100.0 or r[2]]
    rows.sort(key=lambda r: (r[1], -r[2], r[0]))
    return rows[:n]
