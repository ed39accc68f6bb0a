"""A loss leaves a record. When a write and its dead letter both fail (a full
disk), the lost rows become a ``gaps`` row once something can be written again, and lost trades
are backfilled from REST: in the end every trade id is in ``prices`` exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import trio

from trio_harvest.app import Harvester
from trio_harvest.gaps import WRITE_LOST
from trio_harvest.kinds import GAPS, ORDERBOOK, PRICES
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import Partition

from ..conftest import make_config
from ..opsfakes import FakeExchange
from .test_backfill import FakeRest


async def test_rows_lost_on_a_full_disk_become_gaps_and_trades_are_backfilled(
        tmp_path: Path) -> None:
    cfg = make_config(tmp_path, symbols=("BTCUSDT",), book_ticker=False, depth_levels=5,
                      min_file_rows=1, rotate_sec=0.2, backfill_delay=0.1, auto_recover=False,
                      resume=False)
    exchange = FakeExchange(symbols=("BTCUSDT",), interval=0.01)
    rest = FakeRest(first=0, last=10**9)
    h = Harvester(cfg, connect=exchange.connect, fetch=rest.fetch)
    disk_full = {"on": True}
    save, dead_letter = h.writer.save, h.writer.dead_letter

    async def full_save(part: Partition, gate: PublishGate) -> Any:
        if disk_full["on"]:
            raise OSError(28, "No space left on device")
        return await save(part, gate)

    async def full_dead_letter(kind: str, symbol: str, rows: list[Any], gate: PublishGate, *,
                               venue: str = "binance-usdm") -> Any:
        if disk_full["on"]:
            raise OSError(28, "No space left on device")
        return await dead_letter(kind, symbol, rows, gate, venue=venue)

    h.rotation._save = full_save
    h.rotation._dead_letter_fn = full_dead_letter
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(0.6)
        lost = h.rotation.stats.kind(PRICES).rows_lost
        assert lost > 0 and h.rotation.stats.kind(ORDERBOOK).rows_lost > 0
        disk_full["on"] = False
        await trio.sleep(1.5)
        h.request_stop("test")
    data = cfg.data_dir
    prices = pl.scan_parquet(str(data / "**" / f"kind={PRICES}" / "*.parquet"),
                             hive_partitioning=True).collect()
    ids = prices["agg_id"]
    # a batch whose write failed just as the disk came back is in the dead letter: also kept
    for f in cfg.deadletter_path.glob(f"venue=*/{PRICES}/*.ndjson"):
        ids = ids.append(pl.Series([json.loads(x)["agg_id"] for x in f.read_text().splitlines()]))
    assert ids.n_unique() == len(ids) == exchange.sent_agg_ids("BTCUSDT")  # all, once each
    gaps = pl.scan_parquet(str(data / "**" / f"kind={GAPS}" / "*.parquet"),
                           hive_partitioning=True).collect()
    lost_rows = gaps.filter(pl.col("reason") == WRITE_LOST)
    assert set(lost_rows["stream"]) == {"btcusdt@prices", "btcusdt@orderbook"}
    assert h.repair.backfill.stats.rows >= lost
