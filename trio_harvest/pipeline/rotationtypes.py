"""What rotation is handed and what it counts: the write functions it calls (one partition, or
several staged by one job), its statistics per kind, and one partition write's state as it goes.

Pure types and counters: no trio, no I/O, no policy (``rotation.py`` owns what an outcome means).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..kinds import DEFAULT_VENUE, Row
from ..storage.gate import PublishGate
from ..storage.partitions import Partition, RowData

SaveFn = Callable[[Partition, PublishGate], Awaitable[Any]]
# ``Writer.stage_many``: several partitions in one job, an outcome each (a result or its error)
SaveManyFn = Callable[[Sequence[Partition], Sequence[PublishGate]], Awaitable[list[Any]]]
BATCH_FILES = 8  # lanes due together are written this many to a job (one Polars call)
GROUP_BYTES = 1 << 20  # and holding at most this many bytes of rows together (estimated)


class DeadLetterFn(Protocol):
    """``Writer.dead_letter``: rows of one kind, symbol and venue into the dead letter."""

    def __call__(self, kind: str, symbol: str, rows: RowData, gate: PublishGate, *,
                 venue: str = DEFAULT_VENUE) -> Awaitable[Any]: ...


@dataclass(slots=True)
class KindStats:
    rows_written: int = 0
    files_written: int = 0
    bytes_written: int = 0
    rows_deadlettered: int = 0
    deadletter_files: int = 0
    rows_lost: int = 0
    write_failures: int = 0
    write_timeouts: int = 0
    last_write_at: float | None = None  # trio time of the last successful write
    last_error: str = ""


@dataclass(slots=True)
class RotationStats:
    kinds: dict[str, KindStats] = field(default_factory=dict)
    rows_written_by: dict[tuple[str, str], int] = field(default_factory=dict)
    # per (kind, symbol): (files, fewest rows in a file, most rows in a file)
    files: dict[tuple[str, str], tuple[int, int, int]] = field(default_factory=dict)
    rotations: int = 0
    wakeups: int = 0
    budget_flushes: int = 0  # lanes written because all lanes together held too much

    def kind(self, kind: str) -> KindStats:
        ks = self.kinds.get(kind)
        if ks is None:
            ks = self.kinds[kind] = KindStats()
        return ks


WriteObserver = Callable[[str, str, int, float], None]  # kind, outcome, rows, seconds
LostFn = Callable[[str, str, list[Row], str], None]  # kind, symbol, rows, error


@dataclass(slots=True)
class PartWrite:
    """One partition's write as it goes: what the store returned, its error, its timeout."""

    written: Any = None
    error: str | None = None
    timed_out: bool = False

    def fail(self, exc: Exception, ks: KindStats) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        ks.write_failures += 1
