"""Where a clean stop spends its time: one mark per phase, one summary line at the end.

Owns the stop's timing record (phase name, seconds since the stop began, CPU seconds of the
process) and its wording. Pure: the clocks are injected, nothing here stops, waits or writes.
The summary is logged at INFO, so an operator (and ``bench/wholemarket.py``) can see whether
the grace went to ingest, backfill, the authoritative files, the derived ones, the dead letter
or the journal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class StopClock:
    clock: Callable[[], float] = time.monotonic
    cpu: Callable[[], float] = time.process_time
    began: float | None = None
    cpu_began: float = 0.0
    marks: list[tuple[str, float, float]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.began = self.clock()
        self.cpu_began = self.cpu()
        self.marks.clear()

    def mark(self, phase: str) -> None:
        """``phase`` has just ended (a no-op before ``start``)."""
        if self.began is not None:
            self.marks.append((phase, self.clock() - self.began, self.cpu() - self.cpu_began))

    def note(self, key: str, value: object) -> None:
        """A fact about the stop (what was buffered, what was still running)."""
        self.notes[key] = str(value)

    def phases(self) -> list[tuple[str, float, float]]:
        """(phase, seconds it took, CPU seconds it took), in order."""
        out, prev_t, prev_c = [], 0.0, 0.0
        for name, t, c in self.marks:
            out.append((name, t - prev_t, c - prev_c))
            prev_t, prev_c = t, c
        return out

    def summary(self) -> str:
        if not self.marks:
            return "stop: no phase recorded"
        total, cpu = self.marks[-1][1], self.marks[-1][2]
        parts = [f"{name} {s:.2f}s" for name, s, _c in self.phases()]
        facts = "".join(f", {k} {v}" for k, v in self.notes.items())
        return (f"stop took {total:.2f}s ({cpu:.2f}s CPU): " + ", ".join(parts) + facts)
