"""The async boundary to the disk: ``save`` a partition as Parquet, ``dead_letter`` a batch as
NDJSON, each in a worker thread.

Owns thread hand-off (``abandon_on_cancel=True``, so a caller's cancel scope can time a write
out) and the cap on abandoned-but-still-running threads, so a hung disk cannot pile up threads
and the rows they hold. Never retries, never re-queues anything into memory (old fault 4), never
decides what a failure means: that is rotation's job. One row that its columns cannot hold
never fails its batch: the batch is written without it and the row is set aside in the dead
letter's ``_rejected/`` folder with its reason (``rowcheck.py``). On local disk a partition is
staged (a complete temp file) in the thread and then published by the group commit
(``groupcommit.py``) together with every other file staged meanwhile; ``stage`` hands the
waiting back to the caller, so a caller's limiter covers encoding, not the shared sync. A
dead-letter file is group-committed too, in a group of its own. ``stage_many`` stages several
partitions in one thread job, their Parquet encoded by one Polars call (the same bytes), each
with its own outcome.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO, TypeVar

import trio

from ..kinds import DEFAULT_VENUE, Row, Schema
from .backends import Store
from .backlog import REJECTED_DIR
from .encoding import encode_ndjson, write_parquet, write_parquet_many
from .gate import PublishGate
from .groupcommit import GroupCommit, Staged
from .partitions import (
    Partition,
    RowData,
    deadletter_dir,
    deadletter_name,
    part_name,
    unique_token,
)
from .rowcheck import ENCODE_ERRORS, rejected_ndjson, split_rows

log = logging.getLogger("trio_harvest.writer")
T = TypeVar("T")


class StorageStuck(OSError):
    """Too many earlier writes are still hanging in their threads: refuse to start another."""


@dataclass(frozen=True, slots=True)
class Written:
    path: PurePath
    rows: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Committing:
    """A partition in a complete temp file, not yet durable nor published: ``result()`` waits
    for its group commit and returns what was written (or raises ``Abandoned``/``OSError``)."""

    written: Written
    staged: Staged
    group: GroupCommit

    async def result(self) -> Written:
        await self.group.commit(self.staged)
        return self.written


async def published(items: Sequence[Committing]) -> list[Written | Exception]:
    """``result()`` of several staged files of one group commit, waited for together (one
    batch): each its ``Written``, or the error that kept it from being published."""
    group = items[0].group
    if any(c.group is not group for c in items):
        raise ValueError("files of different group commits")
    await group.commit_many([c.staged for c in items])
    return [c.written if c.staged.error is None else
            c.staged.error if isinstance(c.staged.error, Exception) else
            RuntimeError(repr(c.staged.error)) for c in items]


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
        self._schemas: dict[str, Schema] = {}
        self.metadata_of = metadata_of
        self.max_stuck = max_stuck
        self.wall_ms = wall_ms
        self._running = 0
        self._stuck: dict[int, int] = {}
        self._lock = threading.Lock()
        self.rows_rejected = 0  # rows set aside because their columns cannot hold them
        self.group = GroupCommit()
        self.deadletter_group = GroupCommit()

    @property
    def threads_running(self) -> int:
        return self._running

    async def save(self, part: Partition, gate: PublishGate, unique: str | None = None) -> Written:
        """Write one partition and return once it is published."""
        out = await self.stage(part, gate, unique)
        return await out.result() if isinstance(out, Committing) else out

    async def stage(
        self, part: Partition, gate: PublishGate, unique: str | None = None
    ) -> Written | Committing:
        """Encode and write one partition in a thread. On local disk the file is only staged:
        the caller awaits ``result()`` (outside any limiter it holds) for the group commit.
        Elsewhere (an object store: one whole PUT) the file is already published."""
        job = self._job(part, *self._spec(part.kind), unique)
        rel, produce, rejected = job.rel, job.produce, job.rejected
        stage = getattr(self.data, "stage", None)
        if stage is not None:
            staged: Staged = await self._in_thread(
                self.data, lambda: stage(rel, produce, gate), _drop)
            result: Written | Committing = Committing(
                Written(rel, part.n - len(rejected), staged.size), staged, self.group)
        else:
            size = await self._in_thread(
                self.data, lambda: self.data.write_atomic(rel, produce, gate))
            result = Written(rel, part.n - len(rejected), size)
        if rejected:
            await self._set_aside(part.kind, part.symbol, rejected)
        return result

    @property
    def batches_files(self) -> bool:
        """True when ``stage_many`` writes its partitions in one job (local disk); an object
        store writes them one by one, so a caller should not group them at all there."""
        return getattr(self.data, "stage_many", None) is not None

    async def stage_many(
        self, parts: Sequence[Partition], gates: Sequence[PublishGate]
    ) -> list[Written | Committing | Exception]:
        """``stage`` for several partitions in one worker-thread job, their Parquet encoded in
        one Polars call (the same bytes as one by one): for the many small files of lanes that
        are due together. Each partition gets its own outcome (a failed one does not fail the
        others), its own temp file and gate, and its own group-commit wait (``result()``).
        A store without staging (an object store) writes them one by one."""
        stage_many = getattr(self.data, "stage_many", None)
        if stage_many is None or len(parts) == 1:
            return [await _outcome(self.stage(part, gate)) for part, gate in zip(parts, gates,
                                                                                   strict=True)]
        specs: dict[str, tuple[Schema, Mapping[str, str]] | Exception] = {}
        for part in parts:  # a kind's schema and metadata: made here, on the loop
            if part.kind not in specs:
                try:
                    specs[part.kind] = self._spec(part.kind)
                except Exception as exc:  # these partitions' own failure (as ``stage``'s)
                    specs[part.kind] = exc

        def run() -> tuple[list[_Job | Exception], list[Staged | BaseException]]:
            # in the thread: each file's path (its time range) too, not on the loop
            made: list[_Job | Exception] = []
            items: list[tuple[PurePath, PublishGate]] = []
            for part, gate in zip(parts, gates, strict=True):
                spec = specs[part.kind]
                try:
                    if isinstance(spec, Exception):
                        raise spec
                    job = self._job(part, *spec)
                except Exception as exc:  # this partition's own failure (``stage`` raises it)
                    made.append(exc)
                    continue
                made.append(job)
                items.append((job.rel, gate))
            jobs = [j for j in made if isinstance(j, _Job)]
            return made, stage_many(items, _produce_all(jobs)) if jobs else []

        made, staged = await self._in_thread(self.data, run, lambda done: _drop_all(done[1]))
        out: list[Written | Committing | Exception] = []
        one = iter(staged)
        for j in made:
            if isinstance(j, Exception):
                out.append(j)
                continue
            result = next(one)
            if isinstance(result, Staged):
                out.append(Committing(Written(j.rel, j.part.n - len(j.rejected), result.size),
                                      result, self.group))
            else:
                out.append(result if isinstance(result, Exception) else
                           RuntimeError(repr(result)))
            if j.rejected:
                await self._set_aside(j.part.kind, j.part.symbol, j.rejected)
        return out

    def _spec(self, kind: str) -> tuple[Schema, Mapping[str, str]]:
        schema = self._schemas.get(kind)
        if schema is None:  # a kind's schema is fixed for the run: made once, not per file
            schema = self._schemas[kind] = self.schema_of(kind)
        return schema, self.metadata_of(kind)

    @staticmethod
    def _job(part: Partition, schema: Schema, meta: Mapping[str, str],
             unique: str | None = None) -> _Job:
        """What writing one partition needs: its path, schema, metadata, and ``produce``, which
        writes its Parquet into a file (rows a column cannot hold go to ``rejected``)."""
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

        return _Job(part, rel, schema, meta, produce, rejected)

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
            store, gate = self.deadletter_store, PublishGate()
            await self._in_thread(store, lambda: store.write_atomic(rel, produce, gate))
        except Exception as exc:
            log.error("%s/%s: could not set aside %d bad rows (%s: %s): %s", kind, symbol,
                      len(bad), type(exc).__name__, exc, payload[:400])

    async def dead_letter(
        self, kind: str, symbol: str, rows: RowData, gate: PublishGate, *,
        venue: str = DEFAULT_VENUE,
    ) -> Written:
        schema = self.schema_of(kind)
        rel = deadletter_dir(kind, venue) / deadletter_name(symbol, self.wall_ms(), len(rows),
                                                             unique_token())
        def produce(fh: BinaryIO) -> None:  # encoded in the worker thread, not on the loop
            fh.write(encode_ndjson(schema, rows))

        store = self.deadletter_store
        stage = getattr(store, "stage", None)
        if stage is None:
            size = await self._in_thread(store, lambda: store.write_atomic(rel, produce, gate))
            return Written(rel, len(rows), size)
        # On local disk a dump is group-committed like a partition, in a group of its own (a
        # hung data disk never holds a dump up): a stop that dumps thousands of lanes pays a
        # few filesystem syncs, not two fsyncs per file. The caller's timeout abandons the
        # gate, and then the temp file is removed, never renamed.
        staged: Staged = await self._in_thread(store, lambda: stage(rel, produce, gate), _drop)
        await self.deadletter_group.commit(staged)
        return Written(rel, len(rows), staged.size)

    async def _in_thread(self, store: Store, write: Callable[[], T],
                         orphaned: Callable[[T], None] | None = None) -> T:
        """Run one blocking write in a thread. Only threads that were *abandoned* (their caller
        timed out) and still run count as stuck, separately per store, so a hung data disk never
        stops dead-letter writes to another one, and healthy concurrency never looks stuck.
        ``orphaned(result)`` runs in the thread if its caller gave up before it finished (a
        staged temp file nobody will commit is removed)."""
        key = id(store)
        with self._lock:
            stuck = self._stuck.get(key, 0)
            if stuck >= self.max_stuck:
                raise StorageStuck(f"{stuck} earlier writes to {store.location} "
                                   "are still hanging; not starting another")
            self._running += 1
        state = {"done": False, "abandoned": False}

        def run() -> T:
            abandoned = False
            try:
                result = write()
            finally:
                with self._lock:
                    self._running -= 1
                    state["done"] = True
                    if state["abandoned"]:
                        self._stuck[key] -= 1
                        abandoned = True
            if abandoned and orphaned is not None:
                orphaned(result)
            return result

        try:
            return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
        except BaseException:
            with self._lock:
                if not state["done"]:
                    state["abandoned"] = True
                    self._stuck[key] = self._stuck.get(key, 0) + 1
            raise

    @property
    def commit_batches(self) -> int:
        return self.group.batches

    @property
    def threads_stuck(self) -> int:
        """Abandoned write threads still running (a hung disk), over all stores."""
        return sum(self._stuck.values())


@dataclass(frozen=True, slots=True)
class _Job:
    part: Partition
    rel: PurePath
    schema: Schema
    meta: Mapping[str, str]
    produce: Callable[[BinaryIO], None]
    rejected: list[tuple[Row, str]]


def _produce_all(jobs: list[_Job]) -> Callable[[list[BinaryIO]], list[BaseException | None]]:
    """Writes every job's file in one Polars call; if that fails, each on its own (with its
    own outcome, bad rows set aside as ``stage`` does)."""

    def produce_all(fhs: list[BinaryIO]) -> list[BaseException | None]:
        try:
            write_parquet_many([(fh, j.schema, j.part.rows, j.meta)
                                for fh, j in zip(fhs, jobs, strict=True)])
            return [None] * len(fhs)
        except ENCODE_ERRORS:
            pass  # one file's failure: write them one by one, each with its own outcome
        errors: list[BaseException | None] = []
        for fh, j in zip(fhs, jobs, strict=True):
            fh.seek(0)
            fh.truncate()
            try:
                j.produce(fh)
                errors.append(None)
            except Exception as exc:
                errors.append(exc)
        return errors

    return produce_all


async def _outcome(write: Awaitable[T]) -> T | Exception:
    try:
        return await write
    except Exception as exc:
        return exc


def _drop(staged: Staged) -> None:
    with contextlib.suppress(OSError):
        staged.tmp.unlink()


def _drop_all(staged: list[Staged | BaseException]) -> None:
    for one in staged:
        if isinstance(one, Staged):
            _drop(one)
