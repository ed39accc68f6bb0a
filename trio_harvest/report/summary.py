"""``inspect``'s default output: a summary of a dataset that fits a screen, from the same
footers and gap rows as the report (per kind totals, gaps and how many stay unfilled, the worst
symbols, the dead letter and the quarantine), however many partitions there are.

Pure: gets ``Gathered`` and returns text or a dict. The per-partition listing is
``storage/inventory.py``'s (``inspect --partitions``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..dataset import VENUES
from ..gaps import parse_agg_detail
from ..hints import plural
from ..storage.inventory import human_size
from .coverage import UNFILLED, Gathered, per_kind, span, uptime, worst

WORST = 5


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summarize(data: Gathered, start_ms: int | None = None, end_ms: int | None = None
              ) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for kind, (files, rows, size) in per_kind(data.files).items():
        own = [f for f in data.files if f.kind == kind]
        lo = min((s.first_ms for f in own for s in f.slices), default=None)
        hi = max((s.last_ms for f in own for s in f.slices), default=None)
        kinds[kind] = {"files": files, "rows": rows, "bytes": size,
                       "symbols": len({f.symbol for f in own}), "first_ts_ms": lo,
                       "last_ts_ms": hi}
    reasons: dict[str, int] = {}
    for g in data.gaps:
        reasons[g.reason] = reasons.get(g.reason, 0) + 1
    unfilled = [g for g in data.gaps if g.status == UNFILLED]
    ids = {True: 0, False: 0}
    for g in data.gaps:
        agg = parse_agg_detail(g.detail)
        if agg is not None:
            ids[agg[2]] += agg[1] - agg[0] + 1
    covered = span(data.files, start_ms, end_ms)
    bad = worst(uptime(data.files, data.gaps, *covered), data.gaps, WORST) if covered else []
    return {
        "venue": VENUES[0],
        "kinds": kinds,
        "totals": {"files": len(data.files), "rows": sum(f.rows for f in data.files),
                   "bytes": sum(f.bytes for f in data.files),
                   "symbols": len({f.symbol for f in data.files})},
        "gaps": {"rows": len(data.gaps), "by_reason": dict(sorted(reasons.items())),
                 "unfilled_rows": len(unfilled), "filled_ids": ids[True],
                 "unfilled_ids": ids[False],
                 "unfilled_symbols": sorted({g.symbol for g in unfilled})},
        "worst_symbols": [{"symbol": s, "lowest_daily_uptime_pct": round(u, 3), "gaps": n}
                          for s, u, n in bad],
        "deadletter": {"files": data.deadletter_files, "rows": data.deadletter_rows},
        "quarantine": {"files": data.quarantine_files, "lines": data.quarantine_lines},
        "unreadable_files": sum(1 for f in data.files if f.error),
    }


def render(doc: dict[str, Any], data_dir: str, filters: str = "") -> str:
    t = doc["totals"]
    lines = [f"data dir {data_dir}" + (f" ({filters})" if filters else ""),
             f"venue {doc['venue']}: {plural(t['symbols'], 'symbol')}, "
             f"{plural(t['files'], 'file')}, {plural(t['rows'], 'row')}, {human_size(t['bytes'])}",
             f"  {'kind':<11} {'symbols':>7} {'files':>8} {'rows':>14} {'bytes':>10}  "
             f"{'first (UTC)':<20}  last (UTC)"]
    for kind, k in doc["kinds"].items():
        lines.append(f"  {kind:<11} {k['symbols']:>7,} {k['files']:>8,} {k['rows']:>14,} "
                     f"{human_size(k['bytes']):>10}  {_iso(k['first_ts_ms']):<20}  "
                     f"{_iso(k['last_ts_ms'])}")
    if not doc["kinds"]:
        lines.append("  (no partitions)")
    g = doc["gaps"]
    by = ", ".join(f"{r} {n:,}" for r, n in g["by_reason"].items())
    lines.append(f"gaps: {plural(g['rows'], 'row')}" + (f" ({by})" if by else "")
                 + f"; agg ids backfilled {g['filled_ids']:,}, unfilled {g['unfilled_ids']:,}"
                 + (f" (in {', '.join(g['unfilled_symbols'][:5])}"
                    + (" …" if len(g["unfilled_symbols"]) > 5 else "") + ")"
                    if g["unfilled_rows"] else ""))
    if doc["worst_symbols"]:
        lines.append("worst symbols (lowest daily uptime, then most gaps): " + ", ".join(
            f"{w['symbol']} {w['lowest_daily_uptime_pct']:.2f}% ({plural(w['gaps'], 'gap')})"
            for w in doc["worst_symbols"]))
    dl, q = doc["deadletter"], doc["quarantine"]
    lines.append(f"dead letter: {plural(dl['files'], 'file')}, {plural(dl['rows'], 'row')}; "
                 f"quarantine (rejected lines): {plural(q['files'], 'file')}, "
                 f"{plural(q['lines'], 'line')}")
    if doc["unreadable_files"]:
        lines.append(f"unreadable files: {doc['unreadable_files']:,} (see --partitions)")
    lines.append("per partition, with agg_id continuity and temp leftovers: --partitions; "
                 "a picture: report")
    return "\n".join(lines)
