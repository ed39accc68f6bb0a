"""``inspect`` of a dataset on object storage (``s3://bucket/prefix``): the same ``Inventory``
as ``inventory.py`` builds for a local folder, from the store's listing and GETs.

Owns only the remote walk; the shape, the continuity and the rendering are inventory.py's. An
object store has no temp files (a PUT is whole), so that list is empty; the dead letter is on
local disk. Read-only and blocking.
"""

from __future__ import annotations

import io
from pathlib import Path, PurePath

import polars as pl

from ..kinds import GAPS, PRICES
from .gapreport import summarize_gap_frames
from .inventory import (
    Inventory,
    Keep,
    PartitionInfo,
    PartKey,
    _continuity,
    _hive,
    account,
    backlog_doc,
    unreadable_reason,
)
from .s3store import S3Store


def inspect_store(store: S3Store, deadletter_dir: Path, keep: Keep | None = None) -> Inventory:
    inv = Inventory(Path(store.location), deadletter_dir)
    inv.data_dir = store.location  # type: ignore[assignment]  # rendered as the URL
    groups: dict[PartKey, list[PurePath]] = {}
    for rel in store.list(None, ".parquet"):
        key = _hive(rel.parent.parts)
        if key is not None and (keep is None or keep(key[1], key[2])):
            groups.setdefault(key, []).append(rel)
    prices_ids: dict[str, list[pl.Series]] = {}
    gap_frames: list[pl.DataFrame] = []
    for (venue, date, symbol, kind), rels in sorted(groups.items()):
        info = PartitionInfo(date, symbol, kind, venue=venue)
        ids: list[pl.Series] = []
        for rel in sorted(rels):
            try:
                raw = store.read_bytes(rel)
                df = pl.read_parquet(io.BytesIO(raw))
            except Exception as exc:  # a broken object is reported, not fatal
                inv.unreadable.append((rel.as_posix(), unreadable_reason(exc)))
                continue
            account(info, df, len(raw))
            if kind == PRICES:
                ids.append(df["agg_id"])
            if kind == GAPS:
                gap_frames.append(df.with_columns(pl.lit(symbol).alias("symbol")))
        if kind == PRICES:
            c = _continuity(pl.concat(ids) if ids else pl.Series("agg_id", [], pl.Int64))
            info.agg_id_holes, info.agg_id_missing = c.holes, c.missing
            info.agg_id_duplicates = c.duplicates
            prices_ids.setdefault(info.label, []).extend(ids)
        inv.partitions.append(info)
    for symbol, series in prices_ids.items():
        inv.continuity[symbol] = _continuity(
            pl.concat(series) if series else pl.Series("agg_id", [], pl.Int64))
    inv.deadletter = backlog_doc(deadletter_dir)
    inv.gaps = summarize_gap_frames(gap_frames)
    return inv
