"""Group commit: many staged files made durable together, then published, then their directories.

A staged file is a complete temporary file in its final directory that nobody has synced or
renamed yet (``LocalStore.stage``). ``commit_batch`` takes every file staged meanwhile and does,
for the whole batch: one durability pass over the data (``syncfs`` of the filesystem, or one
``fsync`` per file where ``syncfs`` is missing or fails), then each file's publish gate and
rename, then one durability pass over the renames (``syncfs`` again, or one ``fsync`` per
distinct directory). A batch of one is exactly the classic sequence (fsync, rename, fsync dir).

``GroupCommit`` is the async side: a writer hands over its staged file and waits; one system
task runs batches back to back in a worker thread, so whatever is staged while a batch syncs
joins the next one. A final flush of thousands of files then costs a few filesystem syncs, not
two fsyncs per file. Never retries and never decides what a failure means (rotation does).
The gate contract is unchanged: a file whose waiter gave up (``gate.abandon()``) is removed,
never renamed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import trio

from .gate import PublishGate


class Abandoned(Exception):
    """The waiter gave up on this write before it was published; nothing was published."""


@dataclass(slots=True, eq=False)
class Staged:
    tmp: Path
    final: Path
    size: int
    gate: PublishGate
    error: BaseException | None = None
    done: trio.Event | None = field(default=None)


def _load_syncfs() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _load_syncfs()


def syncfs(path: Path) -> bool:
    """Flush the whole filesystem holding ``path`` (Linux ``syncfs``). False if unavailable or
    failed: the caller then syncs file by file, which reports each file's own error."""
    if _SYNCFS is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return bool(_SYNCFS(fd) == 0)
    finally:
        os.close(fd)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Best effort, as before: a directory that cannot be opened or synced is not an error."""
    with contextlib.suppress(OSError):
        fsync_path(path)


def _discard(s: Staged, exc: BaseException) -> None:
    s.error = exc
    with contextlib.suppress(OSError):
        s.tmp.unlink()


def _sync_filesystems(paths: list[Path]) -> bool:
    """``syncfs`` once per filesystem the paths live on (a data dir may span mounts)."""
    one_each: dict[int, Path] = {}
    for path in paths:
        try:
            one_each.setdefault(os.stat(path).st_dev, path)
        except OSError:
            return False
    return all(syncfs(path) for path in one_each.values())


def commit_batch(batch: list[Staged]) -> None:
    """Blocking (a worker thread). Sets ``error`` on each entry that did not get published."""
    live = batch
    if len(batch) > 1 and _sync_filesystems([s.tmp for s in batch]):
        pass  # every staged byte of these filesystems is durable
    else:
        live = []
        for s in batch:
            try:
                fsync_path(s.tmp)
                live.append(s)
            except OSError as exc:
                _discard(s, exc)
    published: list[Staged] = []
    for s in live:
        if not s.gate.begin():
            _discard(s, Abandoned(str(s.final)))
            continue
        try:
            os.replace(s.tmp, s.final)
        except OSError as exc:
            s.gate.settle(False)  # a waiter that timed out meanwhile dead-letters the batch
            _discard(s, exc)
            continue
        s.gate.settle(True)
        published.append(s)
    if not published:
        return
    if len(published) > 1 and _sync_filesystems([s.final.parent for s in published]):
        return
    for parent in dict.fromkeys(s.final.parent for s in published):
        fsync_dir(parent)


class GroupCommit:
    """Hands staged files to one committing task; ``commit`` returns once the file is published
    (or raises ``Abandoned``/``OSError``). Cancelling a waiter does not cancel the batch: its
    caller abandons the gate, and the batch then removes the file instead of renaming it."""

    def __init__(self) -> None:
        self._pending: list[Staged] = []
        self._running = False
        self.batches = 0
        self.files = 0

    async def commit(self, staged: Staged) -> int:
        await self.commit_many([staged])
        if staged.error is not None:
            raise staged.error
        return staged.size

    async def commit_many(self, staged: list[Staged]) -> None:
        """``commit`` for several files, which join one batch together: returns once each is
        published or has its ``error`` (raises only if the wait itself is cancelled)."""
        done = trio.Event()
        for s in staged:
            s.done = done
        self._pending.extend(staged)
        if not self._running:
            self._running = True
            trio.lowlevel.spawn_system_task(self._run, name="trio_harvest group commit")
        await done.wait()

    async def _run(self) -> None:
        try:
            while self._pending:
                await trio.lowlevel.checkpoint()  # writers done this tick join the batch
                batch, self._pending = self._pending, []
                self.batches += 1
                self.files += len(batch)
                try:
                    await trio.to_thread.run_sync(commit_batch, batch, abandon_on_cancel=True)
                except BaseException as exc:  # the run is ending (Cancelled) or a bug
                    for s in batch + self._pending:
                        # the thread may still publish an entry it has decided on; any other
                        # entry is given up through its gate, so it can never appear later
                        if s.error is None and s.gate.abandon():
                            s.error = OSError(f"commit interrupted: {exc!r}")
                    self._wake(batch + self._pending)
                    self._pending = []
                    if not isinstance(exc, Exception):
                        raise
                    return
                self._wake(batch)
        finally:
            self._running = False

    @staticmethod
    def _wake(batch: list[Staged]) -> None:
        for s in batch:
            if s.done is not None:
                s.done.set()
