"""The async boundary to the disk: ``save`` a partition as Parquet, ``dead_letter`` a batch as
NDJSON, each in a worker thread.

Owns thread hand-off (``abandon_on_cancel=True``, so a caller's cancel scope can time a write
out) and the cap on abandoned-but-still-running threads, so a hung disk cannot pile up threads
and the rows they hold. Never retries, never re-queues anything into memory (old fault 4), never
decides what a failure means: that is rotation's job. One row that its columns cannot hold
never fails its batch: the batch is written without it and the row is set aside in the dead
letter's ``_rejected/`` folder with its reason (``rowcheck.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO

import trio

from ..kinds import Row, Schema
from .backends import Store
from .backlog import REJECTED_DIR
from .encoding import encode_ndjson, write_parquet
from .gate import PublishGate
from .partitions import Partition, RowData, deadletter_name, part_name, unique_token
from .rowcheck import ENCODE_ERRORS, rejected_ndjson, split_rows

log = logging.getLogger("trio_harvest.writer")


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
        self.rows_rejected = 0  # rows set aside because their columns cannot hold them

    @property
    def threads_running(self) -> int:
        return self._running

    async def save(self, part: Partition, gate: PublishGate, unique: str | None = None) -> Written:
        schema = self.schema_of(part.kind)
        meta = self.metadata_of(part.kind)
        rel = part.directory() / part_name(part.first_ts, part.last_ts, unique)
        rejected: list[tuple[Row, str]] = []

        def produce(fh: BinaryIO) -> None:
            try:
                write_parquet(fh, schema, part.rows, meta)
            except ENCODE_ERRORS:
                if not isinstance(part.rows, list):
                    raise  # a lane's batch: its values were checked when they were appended
                good, bad = split_rows(schema, part.rows)
                if not bad or fh.tell():
                    raise  # not a bad row (or bytes already out): the batch's failure
                rejected.extend(bad)
                write_parquet(fh, schema, good, meta)

        size = await self._in_thread(self.data, rel, produce, gate)
        if rejected:
            await self._set_aside(part.kind, part.symbol, rejected)
        return Written(rel, part.n - len(rejected), size)

    async def _set_aside(self, kind: str, symbol: str, bad: list[tuple[Row, str]]) -> None:
        """Rows no column holds: into ``_rejected/``, never back into a batch. If even that
        fails they are only logged (they are not data a reader could use)."""
        self.rows_rejected += len(bad)
        rel = PurePath(REJECTED_DIR, kind, deadletter_name(symbol, self.wall_ms(), len(bad),
                                                           unique_token()))
        payload = rejected_ndjson(kind, symbol, bad)

        def produce(fh: BinaryIO) -> None:
            fh.write(payload)

        log.warning("%s/%s: %d rows their columns cannot hold were set aside in %s (first: %s)",
                    kind, symbol, len(bad), rel, bad[0][1])
        try:
            await self._in_thread(self.deadletter_store, rel, produce, PublishGate())
        except Exception as exc:
            log.error("%s/%s: could not set aside %d bad rows (%s: %s): %s", kind, symbol,
                      len(bad), type(exc).__name__, exc, payload[:400])

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
