"""The journal's blocking file operations, run in worker threads: lock the directory for this
process, create a segment (magic, fsync, fsync of the directory) and write one group-commit
batch (write, fsync).

Owns nothing but those syscalls; never decides anything (``journal.py`` does).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

from ..errors import ConfigError
from . import format as fmt

Pending = tuple[int, int, int, int, str | bytes]  # seq, recv_ns, conn, type, payload


def lock_dir(directory: Path) -> int:
    """Hold ``directory/LOCK`` (flock) for this process: two harvesters must never share a
    journal (each would replay and delete the other's segments). Returns the descriptor."""
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"journal dir {directory} is in use by another harvester; give each "
                          "harvester its own --journal-dir (or --data-dir)") from None
    return fd


def create_segment(path: Path, compressed: bool = False) -> IO[bytes]:
    """A new, empty segment file, durable with its directory entry; kept open for appends.
    ``compressed``: a ``TRHJ2`` segment, whose batches are zstd blocks (``format.py``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "xb")  # kept open across commits
    try:
        fmt.write_header(fh, compressed)
        fh.flush()
        os.fsync(fh.fileno())
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        # a half-made segment (the disk filled while writing its header) must not block the
        # next attempt under the same name, nor be read back as a segment
        with contextlib.suppress(OSError):
            fh.close()
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return fh


# a group commit appends: its data and the file's new size must be durable, its times need not
# (``fdatasync`` writes the size too; about a quarter less CPU per commit here than ``fsync``)
_DATASYNC = getattr(os, "fdatasync", os.fsync)


def write_batch(fh: IO[bytes], batch: list[Pending], path: Path,
                level: int | None = None) -> int:
    """Append and fsync one batch (one zstd block at ``level``, if given; ``fdatasync`` where
    the system has it); its byte count. Raises ``OSError`` (ENOSPC, EIO, ...)."""
    data = fmt.encode(batch)
    if level is not None:
        data = fmt.compress_block(data, level)
    fh.write(data)
    fh.flush()
    _DATASYNC(fh.fileno())
    os.stat(path)  # a removed directory: the writes above went to an unlinked file
    return len(data)
