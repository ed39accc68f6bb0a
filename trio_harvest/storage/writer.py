"""The async boundary to the disk: ``save`` a partition as Parquet, ``dead_letter`` a batch as
NDJSON, each in a worker thread.

Owns thread hand-off (``abandon_on_cancel=True``, so a caller's cancel scope can time a write
out) and the cap on abandoned-but-still-running threads, so a hung disk cannot pile up threads
and the rows they hold. Never retries, never re-queues anything into memory (old fault 4), never
decides what a failure means: that is rotation's job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO

import trio

from ..kinds import Schema
from .backends import Store
from .encoding import encode_ndjson, write_parquet
from .gate import PublishGate
from .partitions import Partition, RowData, deadletter_name, part_name, unique_token


class StorageStuck(OSError):
    """Too many earlier writes are still hanging in their threads: refuse to start another."""


@dataclass(frozen=True, slots=True)
class Written:
    path: PurePath
    rows: int
    bytes: int


class Writer:
    def __init__(
        self,
        data: Store,
        deadletter: Store,
        schema_of: Callable[[str], Schema],
        metadata_of: Callable[[str], Mapping[str, str]] = lambda kind: {},
        *,
        max_stuck: int = 8,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.data = data
        self.deadletter_store = deadletter
        self.schema_of = schema_of
        self.metadata_of = metadata_of
        self.max_stuck = max_stuck
        self.wall_ms = wall_ms
        self._running = 0
        self._stuck: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def threads_running(self) -> int:
        return self._running

    async def save(self, part: Partition, gate: PublishGate, unique: str | None = None) -> Written:
        schema = self.schema_of(part.kind)
        meta = self.metadata_of(part.kind)
        rel = part.directory() / part_name(part.first_ts, part.last_ts, unique)
        size = await self._in_thread(
            self.data, rel, lambda fh: write_parquet(fh, schema, part.rows, meta), gate
        )
        return Written(rel, part.n, size)

    async def dead_letter(
        self, kind: str, symbol: str, rows: RowData, gate: PublishGate
    ) -> Written:
        schema = self.schema_of(kind)
        rel = PurePath(kind, deadletter_name(symbol, self.wall_ms(), len(rows), unique_token()))
        def produce(fh: BinaryIO) -> None:  # encoded in the worker thread, not on the loop
            fh.write(encode_ndjson(schema, rows))

        size = await self._in_thread(self.deadletter_store, rel, produce, gate)
        return Written(rel, len(rows), size)

    async def _in_thread(
        self,
        store: Store,
        rel: PurePath,
        produce: Callable[..., None],
        gate: PublishGate,
    ) -> int:
        """Run one blocking write in a thread. Only threads that were *abandoned* (their caller
        timed out) and still run count as stuck, separately per store, so a hung data disk never
        stops dead-letter writes to another one, and healthy concurrency never looks stuck."""
        key = id(store)
        with self._lock:
            stuck = self._stuck.get(key, 0)
            if stuck >= self.max_stuck:
                raise StorageStuck(f"{stuck} earlier writes to {store.location} "
                                   "are still hanging; not starting another")
            self._running += 1
        state = {"done": False, "abandoned": False}

        def run() -> int:
            try:
                return store.write_atomic(rel, produce, gate)
            finally:
                with self._lock:
                    self._running -= 1
                    state["done"] = True
                    if state["abandoned"]:
                        self._stuck[key] -= 1

        try:
            return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
        except BaseException:
            with self._lock:
                if not state["done"]:
                    state["abandoned"] = True
                    self._stuck[key] = self._stuck.get(key, 0) + 1
            raise

    @property
    def threads_stuck(self) -> int:
        """Abandoned write threads still running (a hung disk), over all stores."""
        return sum(self._stuck.values())
