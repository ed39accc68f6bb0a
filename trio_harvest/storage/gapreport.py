"""What the ``gaps`` partitions of a dataset say, for ``inspect``: counts per symbol and reason,
agg ids that backfill repaired and that stay missing, and the latest rows.

Owns reading gap files (blocking, read-only) and the summary's shape (part of ``inspect
--json``, documented in the README). Never changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..gaps import parse_agg_detail
from ..kinds import GAPS, PARTITION_COLUMNS, schema_for
from .fileschema import as_ms

LATEST = 10
_FILE_COLUMNS = [n for n in schema_for(GAPS).names if n not in PARTITION_COLUMNS]


def _symbol_of(path: Path) -> str:
    """``…/symbol=S/kind=gaps/part-….parquet`` -> ``S``."""
    return path.parent.parent.name.split("=", 1)[-1]


@dataclass(slots=True)
class GapSummary:
    rows: int = 0
    by_reason: dict[str, dict[str, int]] = field(default_factory=dict)  # symbol -> reason -> rows
    filled_ids: dict[str, int] = field(default_factory=dict)  # symbol -> agg ids backfilled
    unfilled_ids: dict[str, int] = field(default_factory=dict)  # symbol -> agg ids still missing
    latest: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "by_symbol": self.by_reason, "filled_ids": self.filled_ids,
                "unfilled_ids": self.unfilled_ids, "latest": self.latest}

    def render(self) -> list[str]:
        if not self.rows:
            return ["gaps: none recorded"]
        lines = [f"gaps: {self.rows} rows"]
        for symbol, reasons in sorted(self.by_reason.items()):
            by = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
            lines.append(f"  {symbol}: {by}; agg ids backfilled {self.filled_ids.get(symbol, 0)}, "
                         f"unfilled {self.unfilled_ids.get(symbol, 0)}")
        for g in self.latest:
            lines.append(f"  {g['start']} .. {g['end']}  {g['symbol']:<10} {g['stream']:<24} "
                         f"{g['reason']}: {g['detail']}")
        return lines


def summarize_gaps(paths: Iterable[Path]) -> GapSummary:
    frames = []
    for path in paths:
        try:
            # symbol from the path; a first-version file also carries other kinds' columns
            frames.append(pl.read_parquet(path, columns=_FILE_COLUMNS)
                          .with_columns(pl.lit(_symbol_of(path)).alias("symbol")))
        except Exception:  # reported as unreadable by the inventory itself
            continue
    return summarize_gap_frames(frames)


def summarize_gap_frames(frames: list[pl.DataFrame]) -> GapSummary:
    """The summary of gap rows already read (with their ``symbol`` column)."""
    out = GapSummary()
    if not frames:
        return out
    df = pl.concat([as_ms(f) for f in frames], how="vertical_relaxed").sort("start_ms")
    out.rows = df.height
    for symbol, reason, detail in df.select("symbol", "reason", "detail").iter_rows():
        reasons = out.by_reason.setdefault(symbol, {})
        reasons[reason] = reasons.get(reason, 0) + 1
        agg = parse_agg_detail(detail or "")
        if agg is not None:
            counts = out.filled_ids if agg[2] else out.unfilled_ids
            counts[symbol] = counts.get(symbol, 0) + agg[1] - agg[0] + 1
    for row in df.tail(LATEST).iter_rows(named=True):
        out.latest.append({
            "symbol": row["symbol"], "stream": row["stream"], "reason": row["reason"],
            "detail": row["detail"], "start_ms": row["start_ms"], "end_ms": row["end_ms"],
            "start": _iso(row["start_ms"]), "end": _iso(row["end_ms"]),
        })
    return out


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
