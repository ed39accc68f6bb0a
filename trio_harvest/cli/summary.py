"""The end-of-run summary: what was received, written, dead-lettered and lost, as a table that
fits a screen for a person (per kind, in a fixed order; per symbol on request or for a handful of
symbols) and a dict for tests and tools; and, when the dead letter holds anything, where it is and
the command that replays it. Reads stats; changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..hints import plural
from ..journal.report import as_dict as journal_report
from ..kinds import ALL_KINDS
from ..ops.startup import recover_command
from ..ops.view import HarvestView
from ..storage.backlog import Backlog

PER_SYMBOL_UP_TO = 4  # with this many symbols or fewer, the per-symbol table is shown anyway


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
    by_symbol: bool = False  # the per-symbol table as well
    backlog: Backlog | None = None  # the dead letter after the run (None: not scanned)
    recover_command: str = ""  # what replays it
    endpoint: str = ""  # where the frames were to come from
    deadletter_dir: str = ""
    rejected: int = 0  # frames whose values or times are not market data
    journal: dict[str, Any] = field(default_factory=dict)  # journal.report.as_dict()

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
            "rejected": self.rejected,
            "reconnects": self.reconnects,
            "rows_written": {f"{k}/{s}": n for (k, s), n in sorted(self.rows_written.items())},
            "files": {f"{k}/{s}": n for (k, s), (n, _, _) in sorted(self.files.items())},
            "rows_per_file": {f"{k}/{s}": {"min": lo, "max": hi}
                              for (k, s), (_, lo, hi) in sorted(self.files.items())},
            "rows_deadlettered": dict(self.deadlettered),
            "rows_lost": dict(self.lost),
            "adversity": self.adversity,
            "features_late_trades": self.late_trades,
            "per_kind": {k: {"files": f, "rows": r, "rows_per_file": {"min": lo, "max": hi},
                             "rows_deadlettered": dl}
                         for k, f, r, lo, hi, dl in self.per_kind()},
            "deadletter": None if self.backlog is None else {
                "files": self.backlog.files, "rows": self.backlog.rows,
                "dir": self.deadletter_dir, "recover": self.recover_command},
            "journal": self.journal,
        }

    def per_kind(self) -> list[tuple[str, int, int, int, int, int]]:
        """(kind, files, rows, fewest and most rows in a file, rows dead-lettered), every kind
        that wrote or dead-lettered anything, in ``ALL_KINDS`` order."""
        out = []
        for kind in ALL_KINDS:
            mine = [(n, lo, hi) for (k, _), (n, lo, hi) in self.files.items() if k == kind and n]
            rows = sum(r for (k, _), r in self.rows_written.items() if k == kind)
            dl = self.deadlettered.get(kind, 0)
            if not (mine or rows or dl):
                continue
            out.append((kind, sum(n for n, _, _ in mine), rows,
                        min((lo for _, lo, _ in mine), default=0),
                        max((hi for _, _, hi in mine), default=0), dl))
        return out

    def render(self) -> str:
        lines = [
            f"stopped after {self.seconds:.1f}s ({self.reason})",
            f"frames received: {self.frames:,} ({self.msgs_per_sec:,.0f} msg/s); "
            f"malformed {self.malformed:,}, unexpected {self.unexpected:,}, "
            f"rejected {self.rejected:,}; "
            f"reconnects {self.reconnects:,}",
        ]
        if not self.frames:
            lines.append(f"NO DATA: not a single frame was received"
                         f"{' from ' + self.endpoint if self.endpoint else ''} (see the log for "
                         "why; exit code 3)")
        lines.append(f"{'kind':<12} {'files':>7} {'rows written':>13} {'rows/file':>15} "
                     f"{'dead-lettered':>14}")
        for kind, files, rows, lo, hi, dl in self.per_kind():
            lines.append(f"{kind:<12} {files:>7,} {rows:>13,} {_span(files, lo, hi):>15} "
                         f"{dl:>14,}")
        if self.by_symbol and self.rows_written:
            lines.append(f"{'kind':<12} {'symbol':<16} {'files':>7} {'rows written':>13} "
                         f"{'rows/file':>15}")
            order = {k: i for i, k in enumerate(ALL_KINDS)}
            for (kind, symbol), rows in sorted(self.rows_written.items(),
                                               key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])):
                n, lo, hi = self.files.get((kind, symbol), (0, 0, 0))
                lines.append(f"{kind:<12} {symbol:<16} {n:>7,} {rows:>13,} {_span(n, lo, hi):>15}")
        dl = sum(self.deadlettered.values())
        lost = sum(self.lost.values())
        lines.append(
            f"rows dead-lettered: {dl:,}"
            + (f" ({', '.join(f'{k} {n:,}' for k, n in self.deadlettered.items() if n)})" if dl else "")
        )
        b = self.backlog
        if b is not None and b.files:
            lines.append(f"DEAD LETTER: {plural(b.files, 'file')}, {plural(b.rows, 'row')} wait in "
                         f"{self.deadletter_dir}; replay them with: {self.recover_command}")
        if lost:
            lines.append(f"ROWS LOST (dead letter failed too): {lost:,}")
        if self.late_trades:
            lines.append(f"features: {plural(self.late_trades, 'trade')} came after their second "
                         "was emitted (they are in prices, not in features; see grace_ms)")
        a = self.adversity
        if a:
            bf, ho = a["backfill"], a["handover"]
            gaps = ", ".join(f"{r} {n}" for r, n in a["gaps"].items()) or "none"
            lines.append(
                f"gaps recorded: {gaps}; backfill: {plural(bf['rows'], 'trade')} in "
                f"{plural(bf['requests'], 'request')}, {bf['unfilled_ids']} ids unfilled; "
                f"duplicates dropped: {a['trade_duplicates_dropped']} trades, "
                f"{a['book_duplicates_dropped']} book; handovers {ho['handovers']}")
        j = self.journal
        if j:
            lines.append(f"journal: {j['records']} records ({j['bytes'] / 1e6:.1f} MB) fsynced, "
                         f"{j['deleted']} segments removed, {j['archived']} archived, "
                         f"{j['segments']} left; {j['unprotected']} frames not journaled"
                         + (f" ({j['failing']})" if j["failing"] else ""))
        return "\n".join(lines)


def _span(files: int, lo: int, hi: int) -> str:
    return "-" if not files else (f"{lo:,}" if lo == hi else f"{lo:,}..{hi:,}")


def summarize(h: HarvestView, backlog: Backlog | None = None, config_file: str | None = None,
              by_symbol: bool | None = None) -> Summary:
    """The summary of ``h``'s run; ``backlog`` is the dead letter scanned after it."""
    cfg = h.config
    if by_symbol is None:
        by_symbol = cfg.summary_by_symbol or len(cfg.symbols) <= PER_SYMBOL_UP_TO
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
        by_symbol=by_symbol,
        backlog=backlog,
        recover_command=recover_command(cfg.data_dir, cfg.deadletter_path, config_file),
        endpoint="the built-in simulator" if cfg.sim else cfg.ws_url,
        deadletter_dir=str(cfg.deadletter_path),
        rejected=h.router.stats.rejected,
        journal=journal_report(h.journal) if h.journal is not None else {},
    )
