"""The end-of-run summary: what was received, written, dead-lettered and lost, per kind and
symbol, as a short table for a person (and a dict for tests and tools). Reads stats; changes
nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..journal.report import as_dict as journal_report
from ..ops.view import HarvestView


@dataclass(slots=True)
class Summary:
    seconds: float
    reason: str
    frames: int
    malformed: int
    unexpected: int
    reconnects: int
    rows_written: dict[tuple[str, str], int] = field(default_factory=dict)
    files: dict[tuple[str, str], tuple[int, int, int]] = field(default_factory=dict)  # n, min, max
    deadlettered: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    adversity: dict[str, Any] = field(default_factory=dict)  # repair.Repair.as_dict()
    late_trades: int = 0  # trades that came after their second was emitted (not in features)
    journal: dict[str, Any] = field(default_factory=dict)  # issue 9: journal.report.as_dict()

    @property
    def msgs_per_sec(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
            "frames": self.frames,
            "msgs_per_sec": round(self.msgs_per_sec, 1),
            "malformed": self.malformed,
            "unexpected": self.unexpected,
            "reconnects": self.reconnects,
            "rows_written": {f"{k}/{s}": n for (k, s), n in sorted(self.rows_written.items())},
            "files": {f"{k}/{s}": n for (k, s), (n, _, _) in sorted(self.files.items())},
            "rows_per_file": {f"{k}/{s}": {"min": lo, "max": hi}
                              for (k, s), (_, lo, hi) in sorted(self.files.items())},
            "rows_deadlettered": dict(self.deadlettered),
            "rows_lost": dict(self.lost),
            "adversity": self.adversity,
            "features_late_trades": self.late_trades,
            "journal": self.journal,
        }

    def render(self) -> str:
        lines = [
            f"stopped after {self.seconds:.1f}s ({self.reason})",
            f"frames received: {self.frames} ({self.msgs_per_sec:.0f} msg/s); "
            f"malformed {self.malformed}, unexpected {self.unexpected}; "
            f"reconnects {self.reconnects}",
            f"{'kind':<10} {'symbol':<12} {'rows written':>12} {'files':>6} {'rows/file':>18}",
        ]
        for (kind, symbol), rows in sorted(self.rows_written.items()):
            n, lo, hi = self.files.get((kind, symbol), (0, 0, 0))
            per_file = "-" if not n else (str(lo) if lo == hi else f"{lo}..{hi}")
            lines.append(f"{kind:<10} {symbol:<12} {rows:>12} {n:>6} {per_file:>18}")
        dl = sum(self.deadlettered.values())
        lost = sum(self.lost.values())
        lines.append(
            f"rows dead-lettered: {dl}"
            + (f" ({', '.join(f'{k} {n}' for k, n in self.deadlettered.items() if n)})" if dl else "")
        )
        if lost:
            lines.append(f"ROWS LOST (dead letter failed too): {lost}")
        if self.late_trades:
            lines.append(f"features: {self.late_trades} trades came after their second was "
                         "emitted (they are in prices, not in features; see grace_ms)")
        a = self.adversity
        if a:
            bf, ho = a["backfill"], a["handover"]
            gaps = ", ".join(f"{r} {n}" for r, n in a["gaps"].items()) or "none"
            lines.append(
                f"gaps recorded: {gaps}; backfill: {bf['rows']} trades in {bf['requests']} "
                f"requests, {bf['unfilled_ids']} ids unfilled; duplicates dropped: "
                f"{a['trade_duplicates_dropped']} trades, {a['book_duplicates_dropped']} book; "
                f"handovers {ho['handovers']}")
        j = self.journal
        if j:
            lines.append(f"journal: {j['records']} records ({j['bytes'] / 1e6:.1f} MB) fsynced, "
                         f"{j['deleted']} segments removed, {j['archived']} archived, "
                         f"{j['segments']} left; {j['unprotected']} frames not journaled"
                         + (f" ({j['failing']})" if j["failing"] else ""))
        return "\n".join(lines)


def summarize(h: HarvestView) -> Summary:
    started = h.started_at or 0.0
    stopped = h.stopped_at or started
    kinds = h.rotation.stats.kinds
    return Summary(
        seconds=max(0.0, stopped - started),
        reason=h.stop_state.reason or "stopped",
        frames=h.router.stats.frames,
        malformed=h.router.stats.malformed,
        unexpected=h.router.stats.unexpected,
        reconnects=sum(c.stats.reconnects for c in h.connections),
        rows_written=dict(h.rotation.stats.rows_written_by),
        files=dict(h.rotation.stats.files),
        deadlettered={k: v.rows_deadlettered for k, v in kinds.items() if v.rows_deadlettered},
        lost={k: v.rows_lost for k, v in kinds.items() if v.rows_lost},
        adversity=h.repair.as_dict(),
        late_trades=sum(e.tail.late for e in h.engines.values()),
        journal=journal_report(h.journal) if h.journal is not None else {},
    )
