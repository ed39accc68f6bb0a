"""The raw archive: a sealed journal segment, compressed with zstd, kept under
``raw_dir/date=YYYY-MM-DD/seg-<first seq>.jnl.zst`` (the UTC date of its first receive time)
instead of being deleted.

Owns the move: compress to a temporary name, fsync, rename, fsync the directory, and only then
remove the segment, so a crash at any point leaves the segment or its archive (possibly both;
the archive name is the segment's, so a repeat overwrites the same file). Blocking: run it in a
worker thread. Never reads records.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import zstandard

from .format import ARCHIVE_SUFFIX, SUFFIX

LEVEL = 3


def archive_path(raw_dir: Path, segment: Path, first_ns: int) -> Path:
    day = dt.datetime.fromtimestamp(first_ns / 1e9, dt.UTC).date().isoformat()
    return raw_dir / f"date={day}" / (segment.name[: -len(SUFFIX)] + ARCHIVE_SUFFIX)


def archive_segment(segment: Path, raw_dir: Path, first_ns: int) -> Path:
    target = archive_path(raw_dir, segment, first_ns)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    data = zstandard.ZstdCompressor(level=LEVEL).compress(segment.read_bytes())
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    segment.unlink()
    return target
