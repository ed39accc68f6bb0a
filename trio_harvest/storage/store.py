"""Local-disk storage of whole files, published atomically.

Owns the one storage seam (write a file atomically, list, read, delete) that an object store can
replace without touching rotation. A file appears complete or not at all: temp name in the same
directory, fsync, gate check, ``os.replace``, fsync of the directory. Directories are created
inside each write. Blocking: call it from a worker thread, never from the trio loop.
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
from .partitions import TMP_PREFIX, TMP_SUFFIX

HOST = socket.gethostname().replace("-", "_")[:32] or "host"
FOREIGN_TEMP_MAX_AGE_S = 3600.0


class Abandoned(Exception):
    """The waiter gave up on this write before it was published; nothing was published."""


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def path(self, rel: PurePath) -> Path:
        return self.root / rel

    def write_atomic(
        self, rel: PurePath, produce: Callable[[BinaryIO], None], gate: PublishGate | None = None
    ) -> int:
        """Write ``rel`` via ``produce(fh)``; returns the size in bytes. Raises ``Abandoned`` if the
        gate was abandoned before publishing (the temp file is removed), OSError on I/O failure."""
        final = self.root / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        # ``.tmp-…-<name>.tmp``: hidden, and never matched by a reader's ``*.parquet`` glob
        tmp = final.with_name(
            f"{TMP_PREFIX}{HOST}-{os.getpid()}-{os.urandom(4).hex()}-{final.name}{TMP_SUFFIX}")
        try:
            with open(tmp, "wb") as fh:
                produce(fh)
                fh.flush()
                os.fsync(fh.fileno())
                size = fh.tell()
            if gate is not None and not gate.try_publish():
                raise Abandoned(str(rel))
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(final.parent)
        return size

    def list(self, prefix: PurePath | None = None, suffix: str = "") -> Iterator[PurePath]:
        """Published files below ``prefix`` (temp files excluded), relative to the root."""
        base = self.root / prefix if prefix is not None else self.root
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(TMP_PREFIX) or not name.endswith(suffix):
                    continue
                yield PurePath(os.path.relpath(os.path.join(dirpath, name), self.root))

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
        _fsync_dir((self.root / rel).parent)

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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
