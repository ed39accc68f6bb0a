"""Where each symbol's trades left off on disk: the highest ``agg_id`` already written (in the
dataset or waiting in the dead letter), so a restarted harvester can continue agg-id continuity
and backfill what it missed while it was down instead of leaving an unrecorded hole.

Owns the reading of that one number per symbol. Blocking (run it in a thread); reads only the
latest date partition of each symbol (on local disk or through an object store's listing) and the
dead-letter ``prices`` files; never writes.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import msgspec
import polars as pl

from ..kinds import PRICES
from ..storage.fileschema import local_live
from ..storage.partitions import parse_deadletter_name

if TYPE_CHECKING:
    from ..storage.backends import Store

_line = msgspec.json.Decoder(dict[str, object])
_COLUMNS = {"agg_id": pl.Int64, "ts_ms": pl.Int64}
log = logging.getLogger("trio_harvest.resume")


def last_written(data: Path | Store, deadletter_dir: Path,
                 symbols: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """``{symbol: (last agg_id, its ts_ms)}`` for the symbols that have any trades on disk.
    ``data`` is the dataset's folder, or a store (``LocalStore`` or ``S3Store``)."""
    if not isinstance(data, Path):
        root = getattr(data, "root", None)
        data = root if isinstance(root, Path) else data
    out: dict[str, tuple[int, int]] = {}
    for symbol in symbols:
        best = (_from_dataset(data, symbol) if isinstance(data, Path)
                else _from_store(data, symbol))
        for candidate in _from_deadletter(deadletter_dir, symbol):
            if best is None or candidate[0] > best[0]:
                best = candidate
        if best is not None:
            out[symbol] = best
    return out


def _from_dataset(data_dir: Path, symbol: str) -> tuple[int, int] | None:
    dirs = sorted(data_dir.glob(f"date=*/symbol={symbol}/kind={PRICES}"))
    for directory in reversed(dirs):  # the latest date that has a readable file
        with contextlib.suppress(Exception):  # an unreadable file: `inspect` reports it
            files = local_live(directory, strict=False)
            if not files:
                continue
            # per-kind and first-version (union-schema) files alike: only these two columns
            row = (pl.scan_parquet(files, schema=_COLUMNS, missing_columns="insert",
                                   extra_columns="ignore")
                   .sort("agg_id").tail(1).collect())
            if row.height:
                return int(row["agg_id"][0]), int(row["ts_ms"][0])
    return None


def _from_store(store: Store, symbol: str) -> tuple[int, int] | None:
    """The same as ``_from_dataset`` through a store's listing (an object store has no glob)."""
    children = getattr(store, "children", None)
    try:
        dates = sorted(children(None)) if children is not None else []
    except OSError as exc:  # the bucket is away: harvest anyway, without the resume point
        log.warning("%s: cannot read where it left off (%s); continuing without it", symbol, exc)
        return None
    for date in reversed([d for d in dates if d.startswith("date=")]):
        try:
            rels = sorted(store.list(PurePath(date, f"symbol={symbol}", f"kind={PRICES}"),
                                     ".parquet"))
        except OSError as exc:
            log.warning("%s: cannot list %s (%s); continuing without it", symbol, date, exc)
            return None
        frames = []
        for rel in rels:
            with contextlib.suppress(Exception):  # an unreadable file: `inspect` reports it
                frames.append(pl.read_parquet(io.BytesIO(store.read_bytes(rel)),
                                              columns=["agg_id", "ts_ms"]))
        if frames:
            row = pl.concat(frames).sort("agg_id").tail(1)
            if row.height:
                return int(row["agg_id"][0]), int(row["ts_ms"][0])
    return None


def _from_deadletter(deadletter_dir: Path, symbol: str) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    folder = deadletter_dir / PRICES
    if not folder.is_dir():
        return found
    for path in folder.glob(f"{symbol}_*.ndjson"):
        parsed = parse_deadletter_name(path.name)
        if parsed is None or parsed[0] != symbol:
            continue
        best: tuple[int, int] | None = None
        with contextlib.suppress(OSError):
            for line in path.read_bytes().splitlines():
                with contextlib.suppress(msgspec.DecodeError):
                    rec = _line.decode(line)
                    agg, ts = rec.get("agg_id"), rec.get("ts_ms")
                    if isinstance(agg, int) and isinstance(ts, int) and (
                            best is None or agg > best[0]):
                        best = (agg, ts)
        if best is not None:
            found.append(best)
    return found
