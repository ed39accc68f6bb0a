"""What a dead-letter recovery did, per file and in total: the report ``recover`` prints (text,
or ``--json``: a stable interface) and automatic recovery counts. Pure data; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..hints import plural


@dataclass(slots=True)
class FileOutcome:
    file: str  # "venue=<venue>/<kind>/<name>" (before venues: "<kind>/<name>") in the dead letter
    rows: int = 0  # rows written into partitions
    partitions: list[str] = field(default_factory=list)  # part files written (relative paths)
    rejected: int = 0  # bad lines set aside
    rejected_path: str | None = None
    first_reason: str = ""
    error: str = ""  # non-empty: the file could not be recovered and was left in place
    gone: bool = False  # someone else recovered it first
    merged_with: int = 0  # other dead-letter files whose rows share its part files

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "rows": self.rows, "partitions": list(self.partitions),
                "rejected": self.rejected, "rejected_path": self.rejected_path,
                "error": self.error}


@dataclass(slots=True)
class RecoveryReport:
    files: list[FileOutcome] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> list[FileOutcome]:
        return [f for f in self.files if not f.error and not f.gone]

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.error]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.recovered)

    @property
    def rejected_lines(self) -> int:
        return sum(f.rejected for f in self.recovered)

    @property
    def partition_files(self) -> int:
        return len({p for f in self.recovered for p in f.partitions})

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_recovered": len(self.recovered),
            "rows_recovered": self.rows,
            "partition_files": self.partition_files,
            "rejected_lines": self.rejected_lines,
            "rejected_files": [f.rejected_path for f in self.recovered if f.rejected_path],
            "failed": [{"file": f.file, "error": f.error} for f in self.failed],
            "unknown": list(self.unknown),
            "files": [f.as_dict() for f in self.files if not f.gone],
        }

    def render(self) -> str:
        """One line per file recovered alone, one per merged batch (its first and last file)."""
        lines: list[str] = []
        done: set[int] = set()
        for i, f in enumerate(self.files):
            if f.gone or i in done:
                continue
            if f.error:
                lines.append(f"FAILED    {f.file}: {f.error} (left in place)")
                continue
            where = ", ".join(f.partitions) or "no partition (no good rows)"
            batch = [j for j in range(i, len(self.files)) if not self.files[j].error
                     and not self.files[j].gone and self.files[j].partitions == f.partitions
                     and f.merged_with][: f.merged_with + 1] or [i]
            done.update(batch)
            if len(batch) == 1:
                lines.append(f"recovered {f.file}: {plural(f.rows, 'row')} -> {where}")
            else:
                rows = sum(self.files[j].rows for j in batch)
                lines.append(f"recovered {len(batch)} files {f.file} .. "
                             f"{self.files[batch[-1]].file.split('/', 1)[-1]}: "
                             f"{plural(rows, 'row')} -> {where}")
            for j in batch:
                g = self.files[j]
                if g.rejected:
                    lines.append(f"rejected  {plural(g.rejected, 'bad line')} of {g.file} -> "
                                 f"{g.rejected_path} (first: {g.first_reason})")
        for name in self.unknown:
            lines.append(f"skipped   {name}: not a dead-letter file (left alone)")
        lines.append(
            f"recovered {plural(len(self.recovered), 'file')}, {plural(self.rows, 'row')} into "
            f"{plural(self.partition_files, 'partition file')}; "
            f"{plural(self.rejected_lines, 'bad line')} set aside; {len(self.failed):,} failed; "
            f"{plural(len(self.unknown), 'unknown file')} left alone"
        )
        return "\n".join(lines)
