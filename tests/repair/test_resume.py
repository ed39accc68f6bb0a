"""A restart leaves no silent hole: the trades missed while the harvester was down are
backfilled (and recorded as a filled gap), whatever was on disk or in the dead letter."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import trio

from trio_harvest.app import Harvester
from trio_harvest.repair.resume import last_written

from ..conftest import make_config
from ..opsfakes import FakeExchange
from .test_backfill import FakeRest


async def harvest(tmp_path: Path, exchange: FakeExchange, rest: FakeRest, seconds: float) -> None:
    cfg = make_config(tmp_path, symbols=("BTCUSDT",), book_ticker=False, depth_levels=5,
                      min_file_rows=1, rotate_sec=0.5, backfill_delay=0.1, auto_recover=False)
    h = Harvester(cfg, connect=exchange.connect, fetch=rest.fetch)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(seconds)
        h.request_stop("test")


async def test_a_restart_backfills_what_was_missed_while_down(tmp_path: Path) -> None:
    rest = FakeRest(first=0, last=10**9)
    first = FakeExchange(symbols=("BTCUSDT",), interval=0.01)
    await harvest(tmp_path, first, rest, 1.0)
    written = first.sent_agg_ids("BTCUSDT")
    assert written > 20
    # down for a while: the exchange went on 500 trades further
    second = FakeExchange(symbols=("BTCUSDT",), interval=0.01,
                          agg_ids={"BTCUSDT": written + 500})
    await harvest(tmp_path, second, rest, 1.5)
    data = tmp_path / "data"
    prices = pl.scan_parquet(str(data / "**" / "kind=prices" / "*.parquet"),
                             hive_partitioning=True).collect()
    ids = prices["agg_id"].sort()
    assert ids.n_unique() == len(ids) and ids[0] == 0
    assert ids[-1] + 1 == len(ids) > written + 500  # contiguous across the restart
    gaps = pl.scan_parquet(str(data / "**" / "kind=gaps" / "*.parquet"),
                           hive_partitioning=True).collect()
    assert any("filled" in d and "unfilled" not in d for d in gaps["detail"])


def test_last_written_takes_the_dead_letter_into_account(tmp_path: Path) -> None:
    data = tmp_path / "data"
    part = data / "date=2023-11-14" / "symbol=BTCUSDT" / "kind=prices"
    part.mkdir(parents=True)
    pl.DataFrame({"ts_ms": [1, 2], "agg_id": [10, 11]}).write_parquet(part / "part-1-2-a.parquet")
    assert last_written(data, data / "deadletter", ("BTCUSDT", "ETHUSDT")) == {"BTCUSDT": (11, 2)}
    dead = data / "deadletter" / "prices"
    dead.mkdir(parents=True)
    (dead / "BTCUSDT_5_2-x.ndjson").write_text(
        json.dumps({"ts_ms": 9, "agg_id": 40}) + "\nnot json\n"
        + json.dumps({"ts_ms": 8, "agg_id": 39}) + "\n")
    assert last_written(data, data / "deadletter", ("BTCUSDT",)) == {"BTCUSDT": (40, 9)}


def test_last_written_reads_first_version_files_mixed_with_new_ones(tmp_path: Path) -> None:
    from trio_harvest.kinds import PRICES_SCHEMA

    from ..dsrows import write_new
    from ..legacy import write_legacy

    data = tmp_path / "data"
    trade = lambda i: (1000 + i, 1, 2, "BTCUSDT", i, 1.0, 1.0, i, i, False)  # noqa: E731
    write_legacy(data, "2023-11-14", "BTCUSDT", PRICES_SCHEMA, [trade(i) for i in range(30)])
    write_legacy(data, "2023-11-15", "BTCUSDT", PRICES_SCHEMA, [trade(i) for i in range(30, 40)])
    assert last_written(data, data / "deadletter", ("BTCUSDT",)) == {"BTCUSDT": (39, 1039)}
    write_new(data, "2023-11-15", "BTCUSDT", PRICES_SCHEMA, [trade(i) for i in range(40, 45)],
              "part-a.parquet")
    assert last_written(data, data / "deadletter", ("BTCUSDT",)) == {"BTCUSDT": (44, 1044)}
