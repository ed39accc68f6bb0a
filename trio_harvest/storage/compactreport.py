"""What a compaction run did: per partition (merged files, their sources, rows, sources of
earlier merges deleted, sources kept for readers, an error) and in all, as text and as the
``--json`` object of ``compact``. Pure data; never touches a store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CompactReport", "PartitionOutcome"]


@dataclass(slots=True)
class PartitionOutcome:
    partition: str
    merged_files: int = 0  # compacted files written
    sources: int = 0  # files merged into them (deleted now, or once the grace has passed)
    rows: int = 0
    cleaned: int = 0  # sources of an earlier merge (deferred, or an interrupted run's), deleted
    kept: int = 0  # sources of a merge kept for readers until their grace has passed
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "merged_files": self.merged_files,
                "sources": self.sources, "rows": self.rows, "cleaned": self.cleaned,
                "kept": self.kept, "error": self.error}


@dataclass(slots=True)
class CompactReport:
    partitions: list[PartitionOutcome] = field(default_factory=list)
    open_partitions: int = 0  # their day still runs: only their due hours were looked at
    more: bool = False  # the run stopped at its bound with work left

    @property
    def failed(self) -> list[PartitionOutcome]:
        return [p for p in self.partitions if p.error]

    def as_dict(self) -> dict[str, Any]:
        done = [p for p in self.partitions if not p.error]
        return {"partitions_compacted": sum(1 for p in done if p.merged_files),
                "merged_files": sum(p.merged_files for p in done),
                "source_files": sum(p.sources for p in done),
                "rows": sum(p.rows for p in done),
                "cleaned": sum(p.cleaned for p in done),
                "kept": sum(p.kept for p in done),
                "open_partitions": self.open_partitions,
                "more": self.more,
                "failed": [{"partition": p.partition, "error": p.error} for p in self.failed],
                "partitions": [p.as_dict() for p in self.partitions]}

    def render(self) -> str:
        lines = []
        for p in self.partitions:
            if p.error:
                lines.append(f"FAILED    {p.partition}: {p.error} (left as it was)")
            elif p.merged_files or p.cleaned or p.kept:
                lines.append(f"compacted {p.partition}: {p.sources} files, {p.rows} rows -> "
                             f"{p.merged_files} files"
                             + (f"; {p.cleaned} earlier sources deleted" if p.cleaned else "")
                             + (f"; {p.kept} sources kept for readers" if p.kept else ""))
        d = self.as_dict()
        lines.append(f"compacted {d['partitions_compacted']} partitions: {d['source_files']} "
                     f"files ({d['rows']} rows) into {d['merged_files']}; {d['cleaned']} earlier "
                     f"sources deleted; {d['kept']} sources kept for readers until their grace "
                     f"has passed; {d['open_partitions']} partitions of a running day; "
                     f"{len(self.failed)} failed" + ("; more to do" if self.more else ""))
        return "\n".join(lines)
