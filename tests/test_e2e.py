"""End to end: the real app against the real simulator over loopback (no MockClock)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import trio

from trio_harvest.app import Harvester
from trio_harvest.cli.summary import summarize
from trio_harvest.dataset import scan
from trio_harvest.kinds import STORED_FILE_SCHEMA, columns_of

from .conftest import make_config


async def test_harvest_from_simulator_end_to_end(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, sim=True, sim_rate=600.0, rotate_sec=1.0, min_file_rows=1,
                      max_file_age=1.0, symbols=("BTCUSDT", "ETHUSDT"), shutdown_grace=10.0)
    harvester = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(harvester.run)
        await trio.sleep(4)
        harvester.request_stop("test over")
    summary = summarize(harvester)
    assert summary.frames > 1000 and summary.malformed == 0 and summary.unexpected == 0
    assert not summary.deadlettered and not summary.lost
    data = tmp_path / "data"
    prices = pl.scan_parquet(str(data / "venue=*" / "date=*" / "symbol=*" / "kind=prices"
                                 / "*.parquet"), hive_partitioning=True).collect()
    assert set(prices["symbol"].unique()) == {"BTCUSDT", "ETHUSDT"}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        ids = prices.filter(pl.col("symbol") == symbol)["agg_id"].sort()
        assert ids.n_unique() == len(ids), "duplicate agg_id"
        assert ids[-1] - ids[0] + 1 == len(ids), "hole in agg_id"
    book = pl.scan_parquet(str(data / "venue=*" / "date=*" / "symbol=*" / "kind=orderbook"
                               / "*.parquet"), hive_partitioning=True).collect()
    assert set(book["source"].unique()) == {"depth20"}  # top-N snapshots only
    quotes = pl.scan_parquet(str(data / "venue=*" / "date=*" / "symbol=*" / "kind=quotes"
                                 / "*.parquet"), hive_partitioning=True).collect()
    assert book.height > 20 and book.height + quotes.height > 100  # the same rows, two kinds
    assert (quotes["ask"] > quotes["bid"]).all()
    assert quotes.select("symbol", "update_id").n_unique() == quotes.height
    assert scan(data, "quotes").collect().select(quotes.columns).sort("ts_ms", "update_id").equals(
        quotes.sort("ts_ms", "update_id"))
    depth = book.filter(pl.col("source") == "depth20")
    assert (depth["ask_px_1"] > depth["bid_px_1"]).all()
    assert depth["bid_px_20"].null_count() == 0
    # every row that was written is in the files, and the summary agrees with the disk
    written = sum(n for (kind, _), n in summary.rows_written.items() if kind == "prices")
    assert written == prices.height
    assert not list(data.rglob(".tmp-*"))
    # files hold their own kind's columns; the reader API reads a kind ...
    assert scan(data, "prices").collect().height == prices.height
    assert scan(data, "orderbook").collect().select(book.columns).sort("ts_ms", "source").equals(
        book.sort("ts_ms", "source"))
    # ... and the whole dataset, every kind at once, reads as one table with the union schema
    everything = pl.scan_parquet(str(data / "**" / "*.parquet"), hive_partitioning=True,
                                 schema=STORED_FILE_SCHEMA.polars,
                                 missing_columns="insert").collect()
    assert set(everything["kind"].unique()) >= {"prices", "orderbook", "quotes"}
    assert everything.filter(pl.col("kind") == "prices").height == prices.height
    # ... and so do PyArrow and DuckDB, with no options (the harvester's folders start with _)
    table = ds.dataset(str(data), format="parquet", partitioning="hive").to_table()
    assert table.num_rows == everything.height and "symbol" in table.column_names
    glob = str(data / "**" / "*.parquet")
    n = duckdb.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning=true) "
                   "where kind = 'prices'").fetchall()
    assert n == [(prices.height,)]
    # derived kinds: written, one features row per symbol-second, parameters in the metadata
    assert set(everything["kind"].unique()) >= {"ofi", "cvd", "fusion", "features"}
    features = everything.filter(pl.col("kind") == "features").select(columns_of("features"))
    for symbol in ("BTCUSDT", "ETHUSDT"):
        secs = features.filter(pl.col("symbol") == symbol)["ts_ms"].dt.epoch("ms").sort()
        assert len(secs) >= 3 and secs.n_unique() == len(secs)
        assert (secs.diff().drop_nulls() == 1000).all()
    assert (features["ask"] > features["bid"]).all()
    ofi_file = next((data / "date=*").parent.glob("venue=*/date=*/symbol=BTCUSDT/kind=ofi/*.parquet"))
    meta = pl.read_parquet_metadata(ofi_file)
    assert meta["trio_harvest.kind"] == "ofi" and "trio_harvest.signals.w_ofi" in meta
    assert meta["trio_harvest.signals.ofi_source"].startswith("l1=bookTicker")
