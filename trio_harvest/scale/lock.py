"""The lock that keeps two processes off the same shard of the same dataset.

Owns one ``flock`` per (data location, shard) on local disk: ``<data_dir>/_locks/shard-I-of-N.lock``
(for an ``s3://`` data dir, ``data_dir`` is its local folder). The kernel drops the lock when the
process dies, so a crash never leaves a stale lock. The second process refuses to start with one
line (``ConfigError``, exit 2). Across hosts on object storage, lease.py adds a lease object.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError
from .shards import Shard

LOCK_DIR = "_locks"


def lock_path(local_dir: Path, shard: Shard) -> Path:
    return local_dir / LOCK_DIR / f"{shard.slug}.lock"


@contextlib.contextmanager
def shard_lock(local_dir: Path, shard: Shard, location: str) -> Iterator[Path]:
    path = lock_path(local_dir, shard)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"shard lock {path}: cannot create it ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise ConfigError(f"shard {shard} of {location} is already being harvested by "
                              f"{holder} (lock {path}); stop it first or give another --shard") \
                from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock
