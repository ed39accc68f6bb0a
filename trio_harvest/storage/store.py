"""Local-disk storage of whole files, published atomically.

Owns the one storage seam (write a file atomically, list, read, delete) that an object store can
replace without touching rotation. A file appears complete or not at all: temp name in the same
directory, fsync, gate check, ``os.replace``, fsync of the directory. A write that finds its
directory missing creates it. Blocking: call it from a worker thread, never from the trio loop.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import BinaryIO

from .gate import PublishGate
from .groupcommit import Abandoned as Abandoned
from .groupcommit import Staged, commit_batch, fsync_dir
from .partitions import TMP_PREFIX, TMP_SUFFIX, unique_token

HOST = socket.gethostname().replace("-", "_")[:32] or "host"
FOREIGN_TEMP_MAX_AGE_S = 3600.0


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def path(self, rel: PurePath) -> Path:
        return self.root / rel

    def stage(self, rel: PurePath, produce: Callable[[BinaryIO], None],
              gate: PublishGate) -> Staged:
        """The first half of an atomic write: ``produce`` into a temp file in the final
        directory, closed but neither synced nor renamed. ``groupcommit.commit_batch`` finishes
        it (durable, gate, rename, directory) together with every other file staged meanwhile."""
        final, tmp, fh = self._open_temp(rel)
        try:
            with fh:
                produce(fh)
                fh.flush()
                size = fh.tell()
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return Staged(tmp, final, size, gate)

    def stage_many(
        self, items: list[tuple[PurePath, PublishGate]],
        produce_all: Callable[[list[BinaryIO]], list[BaseException | None]],
    ) -> list[Staged | BaseException]:
        """``stage`` for several files at once: ``produce_all`` writes every temp file (in one
        call) and returns each file's error or None. A file that failed is removed and its
        error takes its place in the result; the others are staged as ``stage`` stages them."""
        opened: list[tuple[Path, Path, BinaryIO]] = []
        try:
            for rel, _gate in items:
                opened.append(self._open_temp(rel))
            errors = produce_all([fh for _f, _t, fh in opened])
            out: list[Staged | BaseException] = []
            for (final, tmp, fh), (_rel, gate), error in zip(opened, items, errors, strict=True):
                if error is None:
                    fh.flush()
                    out.append(Staged(tmp, final, fh.tell(), gate))
                    fh.close()
                else:
                    fh.close()
                    with contextlib.suppress(OSError):
                        tmp.unlink()
                    out.append(error)
            return out
        except BaseException:
            for _final, tmp, fh in opened:
                fh.close()
                with contextlib.suppress(OSError):
                    tmp.unlink()
            raise

    def _open_temp(self, rel: PurePath) -> tuple[Path, Path, BinaryIO]:
        """(final path, temp path, the temp file open for writing) in the final directory."""
        final = self.root / rel
        tmp = self._temp_for(final)
        try:  # the directory is there but for a lane's first file of a day: no mkdir per file
            fh = open(tmp, "wb")  # the caller closes it
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "wb")
        return final, tmp, fh

    @staticmethod
    def _temp_for(final: Path) -> Path:
        # ``.tmp-…-<name>.tmp``: hidden, and never matched by a reader's ``*.parquet`` glob
        return final.with_name(
            f"{TMP_PREFIX}{HOST}-{unique_token()}-{final.name}{TMP_SUFFIX}")

    def write_atomic(
        self, rel: PurePath, produce: Callable[[BinaryIO], None], gate: PublishGate | None = None
    ) -> int:
        """Write ``rel`` via ``produce(fh)``; returns the size in bytes. Raises ``Abandoned`` if the
        gate was abandoned before publishing (the temp file is removed), OSError on I/O failure.
        A commit of its own: fsync, gate, rename, fsync of the directory."""
        staged = self.stage(rel, produce, gate or PublishGate())
        commit_batch([staged])
        if staged.error is not None:
            raise staged.error
        return staged.size

    def list(self, prefix: PurePath | None = None, suffix: str = "") -> Iterator[PurePath]:
        """Published files below ``prefix`` (temp files excluded), relative to the root."""
        base = self.root / prefix if prefix is not None else self.root
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(TMP_PREFIX) or not name.endswith(suffix):
                    continue
                yield PurePath(os.path.relpath(os.path.join(dirpath, name), self.root))

    def children(self, prefix: PurePath | None = None) -> tuple[str, ...]:
        """Names of the folders directly below ``prefix`` (sorted; none if it is missing)."""
        base = self.root / prefix if prefix is not None else self.root
        try:
            return tuple(sorted(e.name for e in os.scandir(base) if e.is_dir()))
        except (FileNotFoundError, NotADirectoryError):
            return ()

    def list_modified(self, prefix: PurePath, suffix: str = "") -> Iterator[tuple[PurePath, float]]:
        """``list`` with each file's modification time (Unix seconds); a file gone meanwhile is
        left out."""
        for rel in self.list(prefix, suffix):
            try:
                yield rel, (self.root / rel).stat().st_mtime
            except OSError:
                continue

    def read_bytes(self, rel: PurePath) -> bytes:
        return (self.root / rel).read_bytes()

    def delete(self, rel: PurePath) -> None:
        (self.root / rel).unlink(missing_ok=True)
        fsync_dir((self.root / rel).parent)

    def temp_files(self) -> Iterator[Path]:
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TMP_PREFIX):
                    yield Path(dirpath, name)

    def remove_stale_temps(self, now: float | None = None) -> int:
        """Remove temp files left by a crash: ours from dead processes on this host, and anyone's
        older than an hour (another live harvester sharing the dataset keeps its fresh ones)."""
        now = time.time() if now is None else now
        removed = 0
        for tmp in self.temp_files():
            if _is_stale(tmp, now):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed += 1
        return removed


def _is_stale(tmp: Path, now: float) -> bool:
    parts = tmp.name[len(TMP_PREFIX):].split("-", 2)
    if len(parts) == 3 and parts[0] == HOST:
        try:
            pid = int(parts[1])
        except ValueError:
            return True
        return pid == os.getpid() or not _pid_alive(pid)
    try:
        return now - tmp.stat().st_mtime > FOREIGN_TEMP_MAX_AGE_S
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
