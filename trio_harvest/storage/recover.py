"""Dead-letter recovery: replay dead-letter files into their partitions, exactly once.

Owns the procedure shared by ``python -m trio_harvest recover`` and the automatic recovery
inside ``run``. Files of one kind and symbol are merged, in batches (``merge.plan_batches``), so a
backlog of thousands becomes one part file per (date, symbol, kind) and batch, not one per file:

1. read and validate every line of every file of the batch (in worker threads; ``dlread.py``);
2. write the batch's manifest, ``<deadletter>/_merging/<token>.json`` (its sources);
3. bad lines, if any, go to ``<deadletter>/_rejected/<kind>/<same name>`` with their reason
   (atomic, deterministic name) — reported, kept aside, never silently dropped;
4. the good rows become one Polars frame per schema, cut by UTC date, each date written with the
   same atomic writer as ``part-<first>-<last>-dl<hash>.parquet``, the hash naming the sources;
5. the manifest is marked complete; only then are the sources removed, then the manifest.

Killed between any two steps (or a date's write failing) and run again, a batch with a manifest
is redone with exactly its own sources (same names: overwritten, not duplicated) or, once
complete, only finishes deleting; so each row lands exactly once. A file a manifest owns is
never batched anew with other files (``pending``), and a redo does not write a part file that a
compacted file already holds (compaction merged it meanwhile; compaction, for its part, leaves
an unfinished batch's part files alone). A file lock keeps two recoverers apart. Reads from disk only: it
never puts rows into a lane and never writes a dead-letter file (so it cannot re-create the
fail → re-queue loop of old fault 4).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path, PurePath
from typing import BinaryIO

import msgspec
import polars as pl
import trio

from ..kinds import Schema
from .backends import open_store
from .backlog import REJECTED_DIR, DeadLetterFile, list_deadletter
from .dlread import Loaded, load_file
from .encoding import to_frame
from .fileschema import merged_into
from .gate import PublishGate
from .location import S3Options
from .merge import (
    MAX_BATCH_ROWS,
    BacklogLock,
    batch_token,
    manifest_bytes,
    manifest_rel,
    owned_names,
    plan_batches,
    read_manifests,
    split_frame_by_date,
    to_partition,
)
from .partitions import Partition, part_name
from .recoverreport import FileOutcome, RecoveryReport

__all__ = ["FileOutcome", "Recoverer", "RecoveryReport", "recovery_token"]
from .store import LocalStore
from .writer import Writer

StepHook = Callable[[str, DeadLetterFile], None]  # step name, file: for tests of interruptions

_json = msgspec.json.Encoder()
log = logging.getLogger("trio_harvest.recover")


def recovery_token(f: DeadLetterFile, group: int = 0) -> str:
    """The deterministic ``unique`` part of the part-file names written for ``f`` alone."""
    return batch_token([f], group)


def _rejected_payload(f: DeadLetterFile, bad: Sequence[tuple[int, str, bytes]]) -> bytes:
    return b"".join(
        _json.encode({"source": f.rel.as_posix(), "line": n, "reason": reason,
                      "text": raw.decode("utf-8", "replace")}) + b"\n"
        for n, reason, raw in bad
    )


# -- the procedure ----------------------------------------------------------------------------


class Recoverer:
    """Recovers dead-letter files, many at a time: files of one kind and symbol are merged into
    one part file per date (``merge.plan_batches``). ``limiter`` and ``write_timeout`` make it
    share the writers fairly with a running harvester; the command line uses neither."""

    def __init__(
        self,
        data_dir: Path | str,
        deadletter_dir: Path,
        *,
        limiter: trio.CapacityLimiter | None = None,
        write_timeout: float | None = None,
        hook: StepHook | None = None,
        max_batch_rows: int = MAX_BATCH_ROWS,
        concurrency: int = 1,
        s3: S3Options | None = None,
    ) -> None:
        self.data = open_store(data_dir, s3)  # a path, or s3://bucket/prefix
        self.deadletter = LocalStore(deadletter_dir)
        self.limiter = limiter
        self.write_timeout = write_timeout
        self.hook = hook or (lambda step, f: None)
        self.max_batch_rows = max_batch_rows
        self.concurrency = concurrency  # batches at once (each write still under ``limiter``)
        self.lock = BacklogLock(deadletter_dir)
        self.lock_wait = 0.2  # seconds between attempts while another recoverer holds the lock

    async def pending(self, unknown: list[str] | None = None) -> list[DeadLetterFile]:
        """Dead-letter files to batch anew: all but those an unfinished batch owns (they are
        redone with that batch alone, under its names; ``finish_interrupted``)."""
        root = self.deadletter.root

        def free() -> list[DeadLetterFile]:
            owned = owned_names(root)
            return [f for f in list_deadletter(root, unknown) if f.rel.as_posix() not in owned]

        return await trio.to_thread.run_sync(free, abandon_on_cancel=True)

    async def finish_interrupted(self) -> list[FileOutcome]:
        """Redo (or finish deleting) the batches a crash or a failed write left unfinished."""
        async with self._locked():
            report = RecoveryReport()
            await self._finish_interrupted(report)
            return report.files

    async def recover_all(self, limit: int | None = None) -> RecoveryReport:
        report = RecoveryReport()
        async with self._locked():
            await self._finish_interrupted(report)
            files = await self.pending(report.unknown)
            await self.recover_batches(plan_batches(files[:limit], max_rows=self.max_batch_rows),
                                       report)
        return report

    async def recover_batches(self, batches: list[list[DeadLetterFile]],
                              report: RecoveryReport) -> None:
        """``concurrency`` batches at a time (the lock held by the caller); outcomes in order."""
        if self.concurrency <= 1:
            for batch in batches:
                report.files += await self._recover_batch(batch)
            return
        results: list[list[FileOutcome]] = [[] for _ in batches]
        limit = trio.CapacityLimiter(self.concurrency)

        async def one(i: int, batch: list[DeadLetterFile]) -> None:
            async with limit:
                results[i] = await self._recover_batch(batch)

        async with trio.open_nursery() as nursery:
            for i, batch in enumerate(batches):
                nursery.start_soon(one, i, batch)
        for outs in results:
            report.files += outs

    async def recover_file(self, f: DeadLetterFile) -> FileOutcome:
        """One file on its own (its part files are named as they always were)."""
        (out,) = await self.recover_batch([f])
        return out

    async def recover_batch(self, files: list[DeadLetterFile]) -> list[FileOutcome]:
        """Files of one kind and symbol into one part file per date, under the backlog lock.
        A file an unfinished batch owns is left to that batch (``finish_interrupted``)."""
        async with self._locked():
            owned = await trio.to_thread.run_sync(owned_names, self.deadletter.root,
                                                  abandon_on_cancel=True)
            return await self._recover_batch(
                [f for f in files if f.rel.as_posix() not in owned])

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        said = False
        while True:  # another recovery holds it: poll (a file lock has no event to wait on)
            if await trio.to_thread.run_sync(self.lock.try_acquire):
                break
            if not said:
                said = True
                log.warning("waiting for another recovery of %s to finish (a running "
                            "harvester's automatic recovery?)", self.deadletter.root)
            await trio.sleep(self.lock_wait)
        try:
            yield
        finally:
            self.lock.release()

    async def _finish_interrupted(self, report: RecoveryReport) -> None:
        """Batches a crash left half done: redo each with exactly its own sources (if none was
        deleted yet: every write repeats onto the same names), or finish deleting them."""
        for path, _kind, symbol, names, complete in await trio.to_thread.run_sync(
                lambda: list(read_manifests(self.deadletter.root)), abandon_on_cancel=True):
            files = [f for f in (DeadLetterFile.at(rel, symbol) for rel in names) if f is not None]
            present = [f for f in files if self.deadletter.path(f.rel).exists()]
            if not complete and present:
                report.files += await self._recover_batch(present, redo=True)
                continue
            for f in present:  # every part file is in place: only deleting was left
                await trio.to_thread.run_sync(self.deadletter.delete, f.rel, abandon_on_cancel=True)
            await trio.to_thread.run_sync(path.unlink, True, abandon_on_cancel=True)

    async def _recover_batch(self, files: list[DeadLetterFile], *,
                             redo: bool = False) -> list[FileOutcome]:
        """``redo``: the batch's manifest is from an earlier, unfinished attempt, whose part
        files compaction may have merged since (those are not written again)."""
        outs = {f.name: FileOutcome(f.rel.as_posix()) for f in files}
        loaded: list[tuple[DeadLetterFile, Loaded]] = []
        for f in files:
            try:
                got = await trio.to_thread.run_sync(
                    load_file, self.deadletter.path(f.rel), f.kind, f.symbol,
                    abandon_on_cancel=True)
            except FileNotFoundError:
                outs[f.name].gone = True
                continue
            except OSError as exc:
                outs[f.name].error = f"{type(exc).__name__}: {exc}"
                continue
            loaded.append((f, got))
            self.hook("loaded", f)
        if not loaded:
            return list(outs.values())
        batch = [f for f, _ in loaded]
        kind, symbol = batch[0].kind, batch[0].symbol
        manifest = manifest_rel(batch_token(batch))
        first = batch[0]
        try:
            await self._write_manifest(manifest, manifest_bytes(kind, symbol, batch,
                                                                complete=False))
            self.hook("manifest", first)
            for f, got in loaded:
                if got.bad:
                    await self._write_rejected(f, got, outs[f.name])
                    self.hook("rejected", f)
            parts = await self._write_merged(batch, loaded, first, redo)
            await self._write_manifest(manifest, manifest_bytes(kind, symbol, batch,
                                                                complete=True))
            self.hook("written", first)
            for f, got in loaded:
                o = outs[f.name]
                o.rows = sum(len(rows) for _, rows in got.groups)
                o.partitions = list(parts)
                o.merged_with = len(batch) - 1
            for f in batch:
                await trio.to_thread.run_sync(self.deadletter.delete, f.rel, abandon_on_cancel=True)
                self.hook("deleted", f)
            await trio.to_thread.run_sync(self.deadletter.delete, manifest, abandon_on_cancel=True)
        except Exception as exc:  # this batch's failure is its own; its files stay in place
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            for f in batch:
                outs[f.name].error, outs[f.name].rows, outs[f.name].partitions = error, 0, []
            return list(outs.values())
        self.hook("done", first)
        return list(outs.values())

    async def _write_merged(self, batch: list[DeadLetterFile],
                            loaded: list[tuple[DeadLetterFile, Loaded]],
                            first: DeadLetterFile, redo: bool = False) -> list[str]:
        """Every schema's rows of the batch as one Polars frame, cut by date, one part file per
        date; returns the part files written (on a redo, a part file that a compacted file
        already holds counts as written: its rows are there, under the compacted name)."""
        frames: dict[Schema, list[pl.DataFrame]] = {}
        for _f, got in loaded:
            for schema, rows in got.groups:
                frames.setdefault(schema, []).append(to_frame(schema, rows))
        written: list[str] = []
        sources = ",".join(f.rel.as_posix() for f in batch)
        for i, (schema, parts) in enumerate(frames.items()):
            merged = pl.concat(parts, how="vertical")
            token = batch_token(batch, i)
            for date, frame in split_frame_by_date(merged):
                part = to_partition(first.kind, first.symbol, date, frame, first.venue)
                rel = part.directory() / part_name(part.first_ts, part.last_ts, token)
                if redo and await trio.to_thread.run_sync(merged_into, self.data, rel,
                                                          abandon_on_cancel=True):
                    written.append(str(rel))
                    continue
                written.append(str(await self._write_part(part, schema, token, sources)))
                self.hook("partition", first)
        return written

    async def _write_manifest(self, rel: PurePath, payload: bytes) -> None:
        def produce(fh: BinaryIO) -> None:
            fh.write(payload)

        await trio.to_thread.run_sync(self.deadletter.write_atomic, rel, produce,
                                      abandon_on_cancel=True)

    async def _write_rejected(self, f: DeadLetterFile, loaded: Loaded, out: FileOutcome) -> None:
        rel = PurePath(REJECTED_DIR, f.kind, f.name)
        payload = _rejected_payload(f, loaded.bad)

        def produce(fh: BinaryIO) -> None:
            fh.write(payload)

        await trio.to_thread.run_sync(self.deadletter.write_atomic, rel, produce,
                                      abandon_on_cancel=True)
        out.rejected = len(loaded.bad)
        out.rejected_path = str(PurePath(self.deadletter.root.name, rel))
        out.first_reason = f"line {loaded.bad[0][0]}: {loaded.bad[0][1]}"

    async def _write_part(self, part: Partition, schema: Schema, token: str,
                          sources: str) -> PurePath:
        meta = {"trio_harvest.recovered_from": sources}
        writer = Writer(self.data, self.deadletter, lambda _kind: schema, lambda _kind: meta,
                        max_stuck=1)
        gate = PublishGate()
        if self.limiter is not None:
            async with self.limiter:
                return await self._save(writer, part, gate, token)
        return await self._save(writer, part, gate, token)

    async def _save(self, writer: Writer, part: Partition, gate: PublishGate, token: str) -> PurePath:
        try:
            return await self._save_once(writer, part, gate, token)
        except FileExistsError:  # an object store refuses to overwrite: an earlier run wrote it
            return part.directory() / part_name(part.first_ts, part.last_ts, token)

    async def _save_once(self, writer: Writer, part: Partition, gate: PublishGate,
                         token: str) -> PurePath:
        if self.write_timeout is None:
            return (await writer.save(part, gate, unique=token)).path
        with trio.move_on_after(self.write_timeout) as scope:
            return (await writer.save(part, gate, unique=token)).path
        if scope.cancelled_caught and gate.abandon():
            raise TimeoutError(f"recovery write timed out after {self.write_timeout:g}s")
        # the thread had already decided to publish: the file is (or will be) in place
        return part.directory() / part_name(part.first_ts, part.last_ts, token)

