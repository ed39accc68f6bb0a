"""The lock that keeps two processes off the same shard of the same dataset.

Owns one ``flock`` per (data location, shard) on local disk: ``<data_dir>/_locks/shard-I-of-N.lock``
(for an ``s3://`` data dir, ``data_dir`` is its local folder). The kernel drops the lock when the
process dies, so a crash never leaves a stale lock. The second process refuses to start with one
line (``ConfigError``, exit 2). The file names its holder (pid, host) and a token unique to the
run; whoever gets the lock next learns its predecessor's token, proven gone (the kernel let go
of its lock), which lease.py uses to take over that run's lease without waiting for it to
expire. Across hosts and local folders on object storage, lease.py's lease object decides.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .shards import Shard

LOCK_DIR = "_locks"


def lock_path(local_dir: Path, shard: Shard) -> Path:
    return local_dir / LOCK_DIR / f"{shard.slug}.lock"


@dataclass(frozen=True, slots=True)
class Held:
    path: Path
    token: str  # this run's, unique: host, pid and 64 random bits
    previous: str  # the token of the run that held the lock before ("" if none), now gone


def new_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(8).hex()}"


def _token_in(text: str) -> str:
    _, sep, token = text.partition(" token ")
    return token.split()[0] if sep and token.split() else ""


@contextlib.contextmanager
def shard_lock(local_dir: Path, shard: Shard, location: str) -> Iterator[Held]:
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
            holder = (os.pread(fd, 400, 0).decode(errors="replace").split(" token ")[0].strip()
                      or "another process")
            raise ConfigError(f"shard {shard} of {location} is already being harvested by "
                              f"{holder} (lock {path}); stop it first or give another --shard") \
                from None
        previous = _token_in(os.pread(fd, 400, 0).decode(errors="replace"))
        token = new_token()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} token {token}\n".encode(), 0)
        yield Held(path, token, previous)
    finally:
        os.close(fd)  # releases the flock
