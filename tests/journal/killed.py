"""An in-process crash that leaves on disk what SIGKILL would: the harvester runs until ``ready()``,
then its tasks are cancelled with every path that writes on the way out turned off, so nothing
buffered is flushed or dead-lettered. The files already published stay, and so do the journal's
committed records; a write in flight is published only if its thread had already won its
publish gate (as a rename that SIGKILL comes after).

Two paths write on a cancel and must be off: ``Rotation.abort`` (the lanes' rows to the dead
letter) and the dump of a write in flight (``Rotation._write_partition`` sends its batch to the
dead letter when cancelled). With the second left on, the batches being written at the crash
went to the dead letter, the replay (rightly) took their rows as written, and a test counting
the dataset found them missing: the rows were where no SIGKILL leaves them.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from trio_harvest.app import Harvester
from trio_harvest.storage.partitions import RowData

POLL_S = 0.05


async def crash(h: Harvester, ready: Callable[[], bool]) -> None:
    """Run ``h`` until ``ready()`` (looked at every ``POLL_S``), then end it as SIGKILL would."""

    async def nothing(deadline: float | None = None) -> None:
        return None

    async def vanished(kind: str, symbol: str, rows: RowData, reason: str,
                       venue: str = "") -> None:
        return None  # a killed process writes no dead letter

    h.rotation.abort = nothing  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        while not ready():
            await trio.sleep(POLL_S)
        h.rotation._to_dead_letter = vanished  # type: ignore[method-assign]
        nursery.cancel_scope.cancel()
