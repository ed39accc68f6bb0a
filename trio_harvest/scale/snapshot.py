"""The day's weight snapshot, shared through the dataset: how shards on different hosts agree on
every symbol's owner without a coordinator.

Owns ``_shards/weights-YYYY-MM-DD.json`` (the UTC day: a fixed time grid) in the dataset's own
location; a run of several venues keeps one per venue (``weights-<venue>-YYYY-MM-DD.json``, each
venue's own figures). The first shard of a grid day that needs weights fetches the venue's 24 h
figures and publishes them create-if-absent (a conditional PUT on S3, a hard link on local disk:
exactly one writer wins, even in a race); every other shard that day reads the published
snapshot, so all of them feed the same numbers to the same pure assignment (shards.py). The
venue's figures roll (a 24 h window), so two fetches minutes apart differ; publishing one per day
is what pins them.
Blocking (call before trio starts, or from a thread); never writes anything but that one file
and its temporary twin.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Protocol

from .weights import decode, encode

log = logging.getLogger("trio_harvest.shards")

SNAPSHOT_DIR = "_shards"


class Shared(Protocol):
    """Where a snapshot is published: the dataset's store (S3Store has both)."""

    def create(self, rel: PurePath, data: bytes) -> object: ...

    def read_bytes(self, rel: PurePath) -> bytes: ...


class LocalShared:
    """``Shared`` on a local (or network) folder: create-if-absent by hard-linking a complete
    temporary file to the final name, which fails if the name exists."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, rel: PurePath, data: bytes) -> object:
        final = self.root / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        try:
            os.link(tmp, final)  # FileExistsError: another shard published first
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return None

    def read_bytes(self, rel: PurePath) -> bytes:
        return (self.root / rel).read_bytes()


def grid_day(now_s: float) -> str:
    """The grid point a snapshot belongs to: the UTC day of ``now_s`` (epoch seconds)."""
    return datetime.fromtimestamp(now_s, UTC).strftime("%Y-%m-%d")


def snapshot_key(day: str, venue: str = "") -> PurePath:
    return PurePath(SNAPSHOT_DIR, f"weights-{venue}-{day}.json" if venue else f"weights-{day}.json")


def day_snapshot(shared: Shared, day: str, fetch: Callable[[], dict[str, int] | None],
                 venue: str = "") -> dict[str, int] | None:
    """The weights of grid day ``day``: the published snapshot, else ``fetch()`` published (or
    the one a faster shard published meanwhile). ``None`` if there is none and the fetch failed
    (the caller assigns unweighted). A store that cannot be read or written: the fetched
    weights, unshared, with one log line."""
    key = snapshot_key(day, venue)
    try:
        return decode(shared.read_bytes(key))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("shard weights: cannot read the shared snapshot %s (%s); using this "
                    "process's own fetch, which other shards may not share", key, exc)
        return fetch()
    weights = fetch()
    if weights is None:
        return None
    try:
        shared.create(key, encode(weights))
    except FileExistsError:  # another shard published first: theirs is the day's snapshot
        return decode(shared.read_bytes(key))
    except OSError as exc:
        log.warning("shard weights: cannot publish the snapshot %s (%s); other shards may "
                    "compute different owners", key, exc)
    return weights
