"""One compaction at a time per dataset, on local disk and on an object store alike.

Owns the lock: on local disk an ``flock`` on ``<data_dir>/.compact.lock`` (released when the
process dies); on an object store a lease object ``_compact.lock`` in the dataset's root, taken
with a create-only PUT and taken over only once expired, or at once when its holder was a
process of this host that is gone (a compare-and-swap on its ETag either way), kept alive by
``Held.keep()`` between partitions and deleted on release. Two compactors at once could
merge the same files into two different files, which a reader would count twice: this is what
keeps them apart. Blocking: call it from a worker thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import Any

from .store import HOST, LocalStore, _pid_alive

LOCK_NAME = ".compact.lock"  # hidden: no reader's glob matches it
LEASE = PurePath("_compact.lock")  # "_": no reader's glob or Hive discovery matches it
LEASE_S = 120.0  # renewed between partitions; a killed holder blocks others this long at most


class Busy(Exception):
    """Another compaction holds this dataset's lock (or the lock cannot be taken)."""


class Held:
    """A held lock; ``keep()`` renews an object-store lease that is half way to expiry."""

    def __init__(self, renew: Callable[[], None] = lambda: None) -> None:
        self._renew = renew

    def keep(self) -> None:
        self._renew()


@contextlib.contextmanager
def exclusive(where: Path | Any, *, now: Callable[[], float] = time.time) -> Iterator[Held]:
    """Hold the compaction lock of a local data dir (a ``Path`` or a ``LocalStore``) or of an
    object store (one with ``create``, ``read_tagged`` and ``replace_if``)."""
    if isinstance(where, LocalStore):
        where = where.root
    if isinstance(where, Path):
        with _flock(where):
            yield Held()
        return
    with _lease(where, now) as held:
        yield held


@contextlib.contextmanager
def _flock(data_dir: Path) -> Iterator[None]:
    try:
        fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise Busy(f"cannot take the compaction lock {data_dir / LOCK_NAME}: "
                   f"{exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another compaction is running on {data_dir} "
                       f"(it holds {data_dir / LOCK_NAME})") from None
        yield
    finally:
        os.close(fd)


def _doc(owner: str, until: float) -> bytes:
    return json.dumps({"owner": owner, "until": until}).encode()


def _parse(raw: bytes) -> tuple[str, float]:
    """(owner, expiry) of a lease object; an unreadable one has expired."""
    try:
        doc = json.loads(raw)
        return str(doc.get("owner", "?")), float(doc.get("until", 0))
    except (ValueError, TypeError, AttributeError):
        return "?", 0.0


def _dead_here(holder: str) -> bool:
    """The holder ran on this host and its process is gone (killed): its lease is stale."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return host == HOST and pid.isdigit() and not _pid_alive(int(pid))


@contextlib.contextmanager
def _lease(store: Any, now: Callable[[], float]) -> Iterator[Held]:
    owner = f"{HOST}:{os.getpid()}:{os.urandom(4).hex()}"
    until = now() + LEASE_S
    try:
        tag = store.create(LEASE, _doc(owner, until))
    except FileExistsError:
        try:
            raw, old_tag = store.read_tagged(LEASE)
        except FileNotFoundError:  # released in between: the next round takes it
            raise Busy(f"another compaction just released {store.location}/{LEASE}") from None
        holder, expires = _parse(raw)
        if expires > now() and not _dead_here(holder):
            raise Busy(f"another compaction is running on {store.location} (it holds "
                       f"{LEASE} as {holder} for {expires - now():.0f} s more)") from None
        try:
            tag = store.replace_if(LEASE, _doc(owner, until), old_tag)
        except OSError as exc:
            raise Busy(f"another compaction took {store.location}/{LEASE} first ({exc})") \
                from None
    except OSError as exc:
        raise Busy(f"cannot take the compaction lock {store.location}/{LEASE}: {exc}") from None
    state = {"tag": tag, "until": until}

    def renew() -> None:
        if state["until"] - now() > LEASE_S / 2:
            return
        new_until = now() + LEASE_S
        state["tag"] = store.replace_if(LEASE, _doc(owner, new_until), state["tag"])
        state["until"] = new_until

    try:
        yield Held(renew)
    finally:
        with contextlib.suppress(Exception):  # still ours: delete it; else its holder will
            _raw, tag_now = store.read_tagged(LEASE)
            if tag_now == state["tag"]:
                store.delete(LEASE)
