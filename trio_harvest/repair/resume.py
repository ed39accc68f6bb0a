"""Where each symbol's trades left off on disk: the highest ``agg_id`` already written (in the
dataset or waiting in the dead letter), so a restarted harvester can continue agg-id continuity
and backfill what it missed while it was down instead of leaving an unrecorded hole.

Owns the reading of that one number per symbol. Blocking (run it in a thread); reads (on local
disk, or through an object store's listing) the latest date partition of each symbol that is not
in the future by the host's clock (ids grow with time,
so it holds the highest real id), every partition dated later than that (one trade dated in the
future must not hide the others, nor its id be taken for theirs), and the dead-letter ``prices``
files; so the cost stays that of about one day whatever the dataset's age. Never writes. It never
silently skips what it cannot read: a symbol with an unreadable file is not seeded at all (a
seed below the true last id would make backfill write ids that are already there) and the file
is reported in ``unreadable``. A file that vanishes between the listing and the read (a
compaction merged it) is no such file: the partition is listed again. The dead letter is read
before the dataset, so a concurrent ``recover`` cannot hide a file from both reads.
"""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import msgspec
import polars as pl

from ..kinds import DEFAULT_VENUE, PRICES
from ..storage.fileschema import as_ms, local_live, scan_ms
from ..storage.partitions import deadletter_dir as deadletter_dir_of
from ..storage.partitions import parse_deadletter_name

if TYPE_CHECKING:
    from ..storage.backends import Store

_line = msgspec.json.Decoder(dict[str, object])
_COLUMNS = {"agg_id": pl.Int64, "ts_ms": pl.Int64}
log = logging.getLogger("trio_harvest.resume")

Seed = tuple[int, int]  # (agg_id, its ts_ms)
RELISTS = 3  # a partition whose files vanish while read (compaction) is listed again this often


def last_written(data: Path | Store, deadletter_dir: Path, symbols: tuple[str, ...],
                 unreadable: dict[str, list[str]] | None = None,
                 today: str | None = None, venue: str = DEFAULT_VENUE) -> dict[str, Seed]:
    """``{symbol: (last agg_id, its ts_ms)}`` for the symbols that have any trades on disk and
    whose files could all be read; the others' unreadable files go into ``unreadable``.
    ``data`` is the dataset's folder, or a store (``LocalStore`` or ``S3Store``). ``today``
    (``YYYY-MM-DD``, UTC; default: the host's clock) tells dates in the future."""
    if today is None:
        today = time.strftime("%Y-%m-%d", time.gmtime())
    if not isinstance(data, Path):
        root = getattr(data, "root", None)
        data = root if isinstance(root, Path) else data
    out: dict[str, Seed] = {}
    for symbol in symbols:
        bad: list[str] = []
        # the dead letter first: a ``recover`` moves a file from it into the dataset (written
        # there before it is removed here), so read in this order the file is seen once or
        # twice, never missed
        best: Seed | None = None
        for candidate in _from_deadletter(deadletter_dir, symbol, bad, venue):
            if best is None or candidate[0] > best[0]:
                best = candidate
        found = (_from_dataset(data, symbol, bad, today, venue) if isinstance(data, Path)
                 else _from_store(data, symbol, bad, today, venue))
        if found is not None and (best is None or found[0] > best[0]):
            best = found
        if bad:
            if unreadable is not None:
                unreadable[symbol] = bad
            continue
        if best is not None:
            out[symbol] = best
    return out


def _last_of(files: list[str]) -> Seed | None:
    # per-kind and first-version (union-schema) files alike: only these two columns
    row = scan_ms(files, _COLUMNS).sort("agg_id").tail(1).collect()
    return (int(row["agg_id"][0]), int(row["ts_ms"][0])) if row.height else None


def _tops(venue: str) -> list[str]:
    """The folders (relative to the dataset's root) holding ``venue``'s ``date=`` folders:
    ``venue=…``, and the root itself for ``DEFAULT_VENUE`` (the layout before venues)."""
    return [f"venue={venue}", ""] if venue == DEFAULT_VENUE else [f"venue={venue}"]


def _from_dataset(data_dir: Path, symbol: str, bad: list[str], today: str,
                  venue: str = DEFAULT_VENUE) -> Seed | None:
    dirs = sorted(((d.parent.parent.name.removeprefix("date="), d) for top in _tops(venue)
                   for d in (data_dir / top).glob(f"date=*/symbol={symbol}/kind={PRICES}")),
                  reverse=True)
    best: Seed | None = None
    day_seed: Seed | None = None  # of this date, over both layouts
    for i, (date, directory) in enumerate(dirs):  # latest first
        if i and dirs[i - 1][0] != date:
            day_seed = None
        for attempt in range(RELISTS):
            files = sorted(str(p) for p in local_live(directory, strict=False))
            vanished: list[str] = []
            seed = _last_in(files, bad, vanished) if files else None
            if not vanished:
                break
            if attempt == RELISTS - 1:  # never a seed from part of the partition
                bad.extend(f"{f}: vanished while read {RELISTS} times" for f in vanished)
        if seed is not None and (best is None or seed[0] > best[0]):
            best = seed
        day_seed = day_seed or seed
        more_of_day = i + 1 < len(dirs) and dirs[i + 1][0] == date  # the other layout's
        if date <= today and not more_of_day and (
                day_seed is not None or any(f in b for f in files for b in bad)):
            break  # the latest day that is not in the future: older days hold lower ids
    return best


def _last_in(files: list[str], bad: list[str], vanished: list[str]) -> Seed | None:
    """The highest trade of ``files``; files that cannot be read go into ``bad``, files that
    are gone (a compaction merged them meanwhile: list again) into ``vanished``."""
    try:
        return _last_of(files)  # one scan: the usual case
    except Exception:  # find which files cannot be read; the rest still count
        best: Seed | None = None
        for f in files:
            try:
                seed = _last_of([f])
            except Exception as exc:
                if not os.path.exists(f):
                    vanished.append(f)
                    continue
                bad.append(f"{f}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            if seed is not None and (best is None or seed[0] > best[0]):
                best = seed
        return best


def _from_store(store: Store, symbol: str, bad: list[str], today: str,
                venue: str = DEFAULT_VENUE) -> Seed | None:
    """``_from_dataset`` through a store's listing (an object store has no glob). An unreachable
    bucket: harvest anyway, without the resume point (logged)."""
    children = getattr(store, "children", None)
    try:
        dated = sorted(((d, PurePath(top, d)) for top in _tops(venue)
                        for d in (children(PurePath(top) if top else None)
                                  if children is not None else ())
                        if d.startswith("date=")), reverse=True)
    except OSError as exc:
        log.warning("%s: cannot read where it left off (%s); continuing without it", symbol, exc)
        return None
    best: Seed | None = None
    day_seed: Seed | None = None  # of this date, over both layouts
    for i, (date, day_dir) in enumerate(dated):
        if i and dated[i - 1][0] != date:
            day_seed = None
        seed: Seed | None = None
        for attempt in range(RELISTS):
            try:
                rels = sorted(store.list(day_dir / f"symbol={symbol}" / f"kind={PRICES}",
                                         ".parquet"))
            except OSError as exc:
                log.warning("%s: cannot list %s (%s); continuing without it", symbol, date, exc)
                return None
            seed, vanished = None, []
            for rel in rels:
                try:
                    row = as_ms(pl.read_parquet(io.BytesIO(store.read_bytes(rel)))
                                .select("agg_id", "ts_ms")).sort("agg_id").tail(1)
                except FileNotFoundError:  # compacted meanwhile: list again
                    vanished.append(rel)
                    continue
                except Exception as exc:
                    bad.append(f"{rel}: {type(exc).__name__}: {str(exc)[:120]}")
                    continue
                if row.height and (seed is None or int(row["agg_id"][0]) > seed[0]):
                    seed = (int(row["agg_id"][0]), int(row["ts_ms"][0]))
            if not vanished:
                break
            if attempt == RELISTS - 1:
                bad.extend(f"{rel}: vanished while read {RELISTS} times" for rel in vanished)
        if seed is not None and (best is None or seed[0] > best[0]):
            best = seed
        day_seed = day_seed or seed
        more_of_day = i + 1 < len(dated) and dated[i + 1][0] == date  # the other layout's
        if date.removeprefix("date=") <= today and not more_of_day and (
                day_seed is not None or bad):
            break  # the latest day that is not in the future
    return best


def _from_deadletter(deadletter_dir: Path, symbol: str, bad: list[str],
                     venue: str = DEFAULT_VENUE) -> list[Seed]:
    found: list[Seed] = []
    folders = [deadletter_dir / deadletter_dir_of(PRICES, venue)]
    if venue == DEFAULT_VENUE:
        folders.append(deadletter_dir / PRICES)  # written before venues
    for path in [p for folder in folders if folder.is_dir()
                 for p in folder.glob(f"{symbol}_*.ndjson")]:
        parsed = parse_deadletter_name(path.name)
        if parsed is None or parsed[0] != symbol:
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # recovered meanwhile: its rows are in the dataset now
        except OSError as exc:
            bad.append(f"{path}: {type(exc).__name__}: {exc}")
            continue
        best: Seed | None = None
        for line in data.splitlines():
            try:
                rec = _line.decode(line)
            except msgspec.DecodeError:
                continue  # a bad line: recovery sets it aside; it holds no trade to resume from
            agg, ts = rec.get("agg_id"), rec.get("ts_ms")
            if isinstance(agg, int) and isinstance(ts, int) and (best is None or agg > best[0]):
                best = (agg, ts)
        if best is not None:
            found.append(best)
    return found
