"""Compaction's pure rules: which files of a partition are due, and how they group.

Owns the settings check, durations (``90s``, ``2h``), the two levels of the file budget and the
grouping:

- an *hour* of a partition (its files by the hour of their first event time, from the name) is
  due once its newest file is older than ``older_than``, by the last event time its name
  carries and, where the store knows it, by write time; its files then merge into one hourly
  file (or parts of at most ``target_rows``). A busy symbol's hour is therefore merged about
  ``older_than`` after the hour ended; ``older_than = 0`` merges everything now, the running hour
  too.
- a *day* is closed once its UTC date ended ``older_than`` ago and nothing was written into it
  for ``older_than``; all its files then merge into files of at most ``target_rows`` rows
  (usually one per (date, symbol, kind)).

Pure: no I/O, no clock (``now`` is passed in).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import PurePath

from ..kinds import ALL_KINDS
from .fileschema import is_part
from .partitions import parse_partition_dir

HOUR_MS = 3_600_000
DEFAULT_OLDER_THAN = 600.0
DEFAULT_TARGET_ROWS = 1_000_000
# a merged file's sources stay this long after its publish, so a read that listed them a moment
# earlier still finds them (the reader API skips them meanwhile); a later round deletes them
DEFAULT_DELETE_AFTER = 0.0  # at once: a grace makes plain globs count the merged rows twice


def parse_duration(raw: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` -> seconds; ``ValueError`` otherwise."""
    text = raw.strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}.get(text[-1:], None)
    number = text[:-1] if scale is not None else text
    try:
        value = float(number) * (scale or 1.0)
    except ValueError:
        raise ValueError(f"{raw!r} is not a duration (e.g. 90s, 30m, 2h, 1d)") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{raw!r} is not a duration (e.g. 90s, 30m, 2h, 1d)")
    return value


def check_settings(older_than: float, target_rows: int,
                   delete_after: float = DEFAULT_DELETE_AFTER) -> str | None:
    """What is wrong with these settings, in one line, or None."""
    if not (isinstance(delete_after, int | float) and not isinstance(delete_after, bool)
            and 0 <= delete_after < float("inf")):
        return f"compact_delete_after: must be a number of seconds >= 0, got {delete_after!r}"
    if not (isinstance(older_than, int | float) and 0 <= older_than < float("inf")):
        return f"compact_older_than: must be a number of seconds >= 0, got {older_than!r}"
    if isinstance(target_rows, bool) or not isinstance(target_rows, int) or target_rows < 2:
        return f"compact_target_rows: must be a whole number of rows >= 2, got {target_rows!r}"
    return None


def is_closed(day: date, newest_write_s: float | None, now_s: float, older_than: float) -> bool:
    """A partition is closed when its UTC date ended at least ``older_than`` ago and (where the
    store knows write times) nothing was written into it for ``older_than``."""
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    if end.timestamp() + older_than > now_s:
        return False
    return newest_write_s is None or newest_write_s + older_than <= now_s


def grace_over(published_s: float, now_s: float, delete_after: float) -> bool:
    """A merged file's sources may go: it was published ``delete_after`` ago (a read that listed
    them before the publish has had that long to finish)."""
    return published_s + delete_after <= now_s


def name_times(name: str) -> tuple[int, int]:
    """(first, last) event time in ms from ``part-<first>-<last>-<unique>.parquet`` ((0, 0) if
    the name does not carry them)."""
    parts = name.split("-")
    try:
        return int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return 0, 0


def time_order(name: str) -> tuple[int, str]:
    return name_times(name)[0], name


def hour_of(name: str, day: date) -> int:
    """The hour (epoch ms // HOUR_MS) a file belongs to: that of its first event time, clamped
    into its partition's date (a name without times goes to the date's first hour)."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000) // HOUR_MS
    return min(max(name_times(name)[0] // HOUR_MS, start), start + 23)


def hour_is_due(names: Iterable[str], written: Callable[[str], float | None], now_s: float,
                older_than: float) -> bool:
    """Every file of the hour is older than ``older_than``: by the last event time in its name
    and, where known, by its write time (asked only once the names say yes)."""
    names = list(names)
    if any(name_times(n)[1] / 1000 + older_than > now_s for n in names):
        return False
    for name in names:
        at = written(name)
        if at is not None and at + older_than > now_s:
            return False
    return True


_RECOVERED = re.compile(r"^part-\d+-\d+-(dl[0-9a-f]{12})(?:g\d+)?\.parquet$")


def recovery_token(name: str) -> str | None:
    """The batch token of a part file written by dead-letter recovery (``…-dl<hash>[g<n>]``),
    which names the batch's crash record; None for any other file."""
    m = _RECOVERED.match(name)
    return m.group(1) if m else None


def plan_groups(files: Iterable[tuple[str, int]], target_rows: int) -> list[list[str]]:
    """Files (name, rows) in time order into groups of at most ``target_rows`` rows (a file of
    that size or more stays alone and is left as it is). Groups of one file are dropped."""
    groups: list[list[str]] = []
    current: list[str] = []
    rows = 0
    for name, n in files:
        if n >= target_rows:
            continue
        if current and rows + n > target_rows:
            groups.append(current)
            current, rows = [], 0
        current.append(name)
        rows += n
    groups.append(current)
    return [g for g in groups if len(g) > 1]


def hive_key(rel: PurePath) -> tuple[date, str, str] | None:
    """(date, symbol, kind) of ``venue=…/date=…/symbol=…/kind=…/part-….parquet`` (or of the
    layout before venues, without ``venue=…``), else None."""
    key = parse_partition_dir(rel.parent.parts)
    if key is None or not is_part(rel.name):
        return None
    try:
        day = date.fromisoformat(key.date)
    except ValueError:
        return None
    return (day, key.symbol, key.kind) if key.kind in ALL_KINDS else None
