"""Restart replay's keys of what is on disk: ``quotes`` rows by (symbol, update id), in their own
kind and in the ``orderbook`` folders of datasets written before quotes had one."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from trio_harvest.journal.diskkeys import read_keys
from trio_harvest.storage.partitions import legacy_partition_dir, partition_dir, utc_date
from trio_harvest.storage.store import LocalStore
from trio_harvest.venues import QUOTE_SOURCE


def test_quotes_keys_come_from_the_quotes_kind_and_from_old_orderbook_folders(
        tmp_path: Path) -> None:
    ts = int(time.time() * 1000)
    date = utc_date(ts)
    quotes = tmp_path / partition_dir(date, "BTCUSDT", "quotes")
    quotes.mkdir(parents=True)
    pl.DataFrame({"ts_ms": [ts, ts], "update_id": [7, 8]}).write_parquet(quotes / "part-0.parquet")
    old = tmp_path / legacy_partition_dir(date, "BTCUSDT", "orderbook")
    old.mkdir(parents=True)
    pl.DataFrame({"ts_ms": [ts, ts], "source": [QUOTE_SOURCE, "depth20"],
                  "update_id": [5, 6]}).write_parquet(old / "part-0.parquet")
    keys = read_keys(LocalStore(tmp_path), tmp_path / "dl", ("BTCUSDT",), ts / 1000 - 60)
    assert keys.quotes == {("BTCUSDT", 5), ("BTCUSDT", 7), ("BTCUSDT", 8)}
    assert ("BTCUSDT", "depth20", 6) in keys.orderbook
