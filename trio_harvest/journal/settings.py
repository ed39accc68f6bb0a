"""Validation and defaults of the journal's settings (``journal_dir``, ``journal_fsync_ms``,
``journal_max_bytes``, ``journal_segment_bytes``, ``raw_dir``), kept out of ``config.py``.

Owns the rules and the one-line messages. Pure: no I/O (whether the directories are writable is
checked at start-up and, continuously, by the disk probe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..errors import ConfigError

MIN_SEGMENT_BYTES = 64 * 1024


class JournalSettings(Protocol):
    @property
    def data_dir(self) -> Path: ...
    @property
    def journal(self) -> bool: ...
    @property
    def journal_dir(self) -> Path | None: ...
    @property
    def journal_fsync_ms(self) -> int: ...
    @property
    def journal_max_bytes(self) -> int: ...
    @property
    def journal_segment_bytes(self) -> int: ...
    @property
    def journal_segment_s(self) -> float: ...
    @property
    def journal_compress(self) -> bool: ...
    @property
    def raw_dir(self) -> Path | None: ...
    @property
    def shard(self) -> str: ...


def journal_path(c: JournalSettings) -> Path:
    """``journal_dir``, or ``<data_dir>/_journal`` (a leading underscore: Hive readers and the
    ``*.parquet`` globs of the README skip it, as they skip ``deadletter/``); a shard of a
    shared data dir (``--shard I/N``, every worker of ``--workers N``) journals in its own
    ``_journal/shard-I-of-N``, since a journal directory has one owner."""
    if c.journal_dir is not None:
        return c.journal_dir
    if c.shard:
        i, n = c.shard.split("/")
        return c.data_dir / "_journal" / f"shard-{i}-of-{n}"
    return c.data_dir / "_journal"


def validate(c: JournalSettings) -> None:
    if not 1 <= c.journal_fsync_ms <= 60_000:
        raise ConfigError(f"journal_fsync_ms: must be 1..60000 milliseconds, got {c.journal_fsync_ms}")
    if c.journal_segment_bytes < MIN_SEGMENT_BYTES:
        raise ConfigError(f"journal_segment_bytes: at least {MIN_SEGMENT_BYTES}, got "
                          f"{c.journal_segment_bytes}")
    if c.journal_max_bytes < 2 * c.journal_segment_bytes:
        raise ConfigError(f"journal_max_bytes: at least twice journal_segment_bytes "
                          f"({2 * c.journal_segment_bytes}), got {c.journal_max_bytes}")
    if not c.journal_segment_s > 0:
        raise ConfigError(f"journal_segment_s: must be a positive number of seconds, got "
                          f"{c.journal_segment_s!r}")
    if c.raw_dir is not None:
        raw, data = c.raw_dir.resolve(), c.data_dir.resolve()
        if raw == data or data in raw.parents:
            raise ConfigError(f"raw_dir: {c.raw_dir} is inside data_dir; readers of the dataset "
                              "would see its date= folders: put it beside data_dir")
        if not c.journal:
            raise ConfigError("raw_dir needs the journal (raw_dir archives journal segments)")
