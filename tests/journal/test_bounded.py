"""The checkpoint keeps the journal bounded over a run: segments go once their rows are durable,
and near ``journal_max_bytes`` the lanes holding the checkpoint back are flushed early."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import trio

from tests.conftest import make_config
from trio_harvest.app import Harvester

# The bounds are about bytes on disk; these tests journal uncompressed so a few seconds of the
# simulator fill several segments (compressed segments are bounded by the same code).
SEG = 64 * 1024


async def sample(h: Harvester, seconds: float) -> list[int]:
    assert h.journal is not None
    sizes: list[int] = []
    for _ in range(int(seconds / 0.05)):
        await trio.sleep(0.05)
        sizes.append(h.journal.disk_bytes)
    return sizes


async def test_segments_are_deleted_as_rows_become_durable(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, journal=True, sim=True, sim_rate=2000.0,
                      symbols=("BTCUSDT", "ETHUSDT"), rotate_sec=0.25, min_file_rows=400,
                      journal_segment_bytes=SEG, journal_segment_s=0.25,
                      journal_compress=False,
                      journal_max_bytes=8 * SEG, duration=60.0)
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        sizes = await sample(h, 5.0)
        h.request_stop("test")
    assert h.journal is not None
    written = h.journal.stats.bytes
    assert written > 2 * cfg.journal_max_bytes  # it journaled more than it ever held
    assert h.journal.stats.deleted >= 8
    assert max(sizes) <= cfg.journal_max_bytes + SEG
    assert not list(h.journal.directory.glob("seg-*"))  # a clean stop leaves none


async def test_near_journal_max_bytes_the_lanes_holding_it_back_are_flushed(
        tmp_path: Path) -> None:
    """Rotation alone would hold these rows for an hour (min_file_rows never reached)."""
    cap = 4 * SEG
    cfg = make_config(tmp_path, journal=True, sim=True, sim_rate=2000.0,
                      symbols=("BTCUSDT", "ETHUSDT"), rotate_sec=0.25, min_file_rows=10**9,
                      max_file_age=3600.0, journal_segment_bytes=SEG, journal_segment_s=0.25,
                      journal_compress=False,
                      journal_max_bytes=cap, duration=60.0)
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        sizes = await sample(h, 5.0)
        h.request_stop("test")
    assert h.journal is not None
    assert h.journal.stats.bytes > 3 * cap
    assert h.rotation.stats.kind("orderbook").files_written >= 2  # flushed early, for the journal
    assert max(sizes) <= cap + SEG
    assert h.journal.stats.deleted >= 4
    if h.journal.stats.unprotected:  # it had to stop journaling at the cap: recorded
        gaps = pl.read_parquet(str(cfg.data_dir / "venue=*/date=*/symbol=*/kind=gaps/*.parquet"))
        assert gaps.filter(pl.col("reason") == "journal").height >= 2  # one per symbol
