"""The reader API ``trio_harvest.dataset.scan``: kind schema, Hive columns,
pruning by date and symbol, time filters, UTC timestamps, first-version files, compaction."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from trio_harvest.dataset import DatasetError, partition_dirs, scan, to_ms
from trio_harvest.kinds import (
    ALL_KINDS,
    GAPS,
    ORDERBOOK,
    PRICES,
    orderbook_schema,
    schema_for,
    stored_type,
)
from trio_harvest.storage.fileschema import SOURCES_KEY, compacted_name

from .dsrows import rows, write_new
from .legacy import write_legacy

DAY1 = 1_700_006_400_000  # 2023-11-15T00:00:00Z
DAY0 = DAY1 - 86_400_000  # 2023-11-14


def test_scan_reads_first_version_and_per_kind_files_as_one_kind(tmp_path: Path) -> None:
    prices = schema_for(PRICES)
    write_legacy(tmp_path, "2023-11-15", "BTCUSDT", prices, rows(prices, DAY1, 3, "BTCUSDT"))
    write_new(tmp_path, "2023-11-15", "BTCUSDT", prices,
              rows(prices, DAY1 + 10_000, 2, "BTCUSDT"), "part-a.parquet", venue=None)
    df = scan(tmp_path, PRICES).collect()
    assert df.columns == [*prices.names, "venue", "date", "kind", "ts", "event_ts", "recv_ts"]
    assert df.height == 5 and df.null_count().sum_horizontal().item() == 0
    assert dict(df.schema)["ts"] == pl.Datetime("ms", "UTC")
    assert dict(df.schema)["date"] == pl.Date
    assert set(df["symbol"]) == {"BTCUSDT"} and set(df["kind"]) == {"prices"}
    first = df.sort("ts_ms").row(0, named=True)
    assert first["ts"] == datetime(2023, 11, 15, tzinfo=UTC) and first["date"] == date(2023, 11, 15)
    assert first["recv_ts"] == datetime(2023, 11, 15, 0, 0, 0, 1000, tzinfo=UTC)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_comes_back_with_its_schema(tmp_path: Path, kind: str) -> None:
    schema = schema_for(kind, 5)
    write_legacy(tmp_path, "2023-11-15", "ETHUSDT", schema, rows(schema, DAY1, 2, "ETHUSDT"))
    write_new(tmp_path, "2023-11-15", "ETHUSDT", schema, rows(schema, DAY1 + 5000, 2, "ETHUSDT"),
              "part-b.parquet", venue=None)
    df = scan(tmp_path, kind).collect()
    assert df.columns[: len(schema.names)] == schema.names
    # times come back as UTC timestamps, whether the file held them so or as int ms
    assert [dict(df.schema)[n] for n in schema.names] == [stored_type(n, t)
                                                          for n, t in schema.columns]
    assert df.height == 4 and df.select(schema.names).null_count().sum_horizontal().item() == 0
    stamps = {n for n in df.columns if n.endswith("ts")}
    if kind == GAPS:
        assert stamps == {"ts", "start_ts", "end_ts"}
    assert "ts" in stamps


def test_orderbook_has_the_depth_present(tmp_path: Path) -> None:
    five, ten = orderbook_schema(5), orderbook_schema(10)
    write_legacy(tmp_path, "2023-11-15", "BTCUSDT", five, rows(five, DAY1, 2, "BTCUSDT"))
    assert scan(tmp_path, ORDERBOOK).collect().columns[:len(five.names)] == five.names
    assert "bid_px_6" not in scan(tmp_path, ORDERBOOK).collect_schema()  # legacy: 20 columns
    write_new(tmp_path, "2023-11-15", "BTCUSDT", ten, rows(ten, DAY1 + 9000, 2, "BTCUSDT"),
              "part-c.parquet", venue=None)
    df = scan(tmp_path, ORDERBOOK).collect().sort("ts_ms")
    assert "bid_px_10" in df.columns and "bid_px_11" not in df.columns
    assert df["bid_px_10"].to_list() == [None, None, 0.5, 1.5]
    assert "bid_px_3" not in scan(tmp_path, ORDERBOOK, depth=2).collect_schema()


def test_scan_lists_only_the_matching_partitions(tmp_path: Path) -> None:
    prices = schema_for(PRICES)
    for day, ts in (("2023-11-14", DAY0), ("2023-11-15", DAY1)):
        for symbol in ("BTCUSDT", "ETHUSDT"):
            write_new(tmp_path, day, symbol, prices, rows(prices, ts, 3, symbol), "part-x.parquet",
                      venue=None)
    # a broken file in a partition that does not match: never opened
    (tmp_path / "date=2023-11-14" / "symbol=ETHUSDT" / "kind=prices" / "part-y.parquet"
     ).write_bytes(b"not parquet")
    (tmp_path / "date=2023-11-16" / "symbol=BTCUSDT").mkdir(parents=True)  # no kind dir
    got = scan(tmp_path, PRICES, symbols="BTCUSDT").collect()
    assert got.height == 6 and set(got["symbol"]) == {"BTCUSDT"}
    got = scan(tmp_path, PRICES, start="2023-11-15T00:00:00Z").collect()
    assert got.height == 6 and set(got["date"]) == {date(2023, 11, 15)}
    dirs = partition_dirs(tmp_path, PRICES, ["BTCUSDT"], DAY1, DAY1 + 1)
    assert [(d, s) for d, s, _ in dirs] == [(date(2023, 11, 15), "BTCUSDT")]
    with pytest.raises(pl.exceptions.ComputeError):  # the broken file is read when it matches
        scan(tmp_path, PRICES, symbols=["ETHUSDT"]).collect()


def test_time_filter_accepts_datetimes_iso_strings_and_epoch_ms(tmp_path: Path) -> None:
    prices = schema_for(PRICES)
    write_new(tmp_path, "2023-11-15", "BTCUSDT", prices, rows(prices, DAY1, 10, "BTCUSDT"),
              "part-x.parquet")
    start, end = DAY1 + 2000, DAY1 + 5000  # [start, end): 3 rows
    forms = [(start, end),
             (datetime(2023, 11, 15, 0, 0, 2, tzinfo=UTC), datetime(2023, 11, 15, 0, 0, 5)),
             ("2023-11-15T00:00:02Z", "2023-11-15T00:00:05+00:00")]
    for a, b in forms:
        got = scan(tmp_path, PRICES, start=a, end=b).collect()
        assert got["ts_ms"].dt.epoch("ms").to_list() == [start, start + 1000, start + 2000]
    assert to_ms(date(2023, 11, 15)) == DAY1
    assert scan(tmp_path, PRICES, end=DAY1 - 1).collect().height == 0  # the day before: pruned
    with pytest.raises(ValueError, match="start: 'yesterday' is not an ISO 8601 time"):
        scan(tmp_path, PRICES, start="yesterday")
    with pytest.raises(ValueError, match="kind: 'trades' is not one of"):
        scan(tmp_path, "trades")


def test_empty_dataset_gives_an_empty_frame_with_the_schema(tmp_path: Path) -> None:
    df = scan(tmp_path, PRICES).collect()  # the root exists and holds nothing yet
    names = schema_for(PRICES).names
    assert df.height == 0 and df.columns[:len(names)] == names
    assert dict(df.schema)["ts"] == pl.Datetime("ms", "UTC")


def test_sources_named_by_a_compacted_file_are_not_counted_twice(tmp_path: Path) -> None:
    prices = schema_for(PRICES)
    a = rows(prices, DAY1, 3, "BTCUSDT")
    b = rows(prices, DAY1 + 3000, 2, "BTCUSDT")
    write_legacy(tmp_path, "2023-11-15", "BTCUSDT", prices, a, "part-1-3-old.parquet")
    write_new(tmp_path, "2023-11-15", "BTCUSDT", prices, b, "part-4-5-new.parquet", venue=None)
    assert scan(tmp_path, PRICES).collect().height == 5
    sources = ["part-1-3-old.parquet", "part-4-5-new.parquet"]
    # the moment between publishing the merged file and deleting its sources
    write_new(tmp_path, "2023-11-15", "BTCUSDT", prices, a + b,
              compacted_name(1, 5, sources), {SOURCES_KEY: json.dumps(sources)}, venue=None)
    df = scan(tmp_path, PRICES).collect()
    assert df.height == 5 and df["agg_id"].sort().to_list() == [0, 0, 1, 1, 2]


def test_scan_raises_one_clear_error_for_each_bad_input(tmp_path: Path) -> None:
    prices = schema_for(PRICES)
    write_new(tmp_path, "2023-11-15", "BTCUSDT", prices, rows(prices, DAY1, 3, "BTCUSDT"),
              "part-x.parquet")
    cases = [
        (lambda: scan(tmp_path / "nope", PRICES), r"dataset root .*nope: no such directory$"),
        (lambda: scan(tmp_path, "price"), r"kind: 'price' is not one of .*did you mean 'prices'"),
        (lambda: scan(tmp_path, PRICES, venue="binance"),
         r"venue: 'binance' is not one of binance-coinm, binance-spot, binance-usdm, "
         r"bybit-linear, bybit-spot, okx-spot, okx-swap \(did you mean 'binance-usdm'\?\)$"),
        (lambda: scan(tmp_path, PRICES, symbols="BTCUSD"),
         r"symbol 'BTCUSD' is not in the dataset .* \(did you mean 'BTCUSDT'\?\)$"),
        (lambda: scan(tmp_path, PRICES, symbols=["BTCUSDT", "SOLUSDT"]),
         r"symbol 'SOLUSDT' is not in the dataset .*holds 1 symbols\)$"),
    ]
    for call, pattern in cases:
        with pytest.raises(DatasetError, match=pattern) as info:
            call()
        assert "\n" not in str(info.value)
    # a symbol matches without regard to case; the known venue is accepted
    got = scan(tmp_path, PRICES, symbols="btcusdt", venue="binance-usdm").collect()
    assert got.height == 3 and set(got["symbol"]) == {"BTCUSDT"}


def test_pyarrow_and_duckdb_read_the_root_with_no_options(tmp_path: Path) -> None:
    """The root holds partitions and `_` folders only (dead letter, journal, locks), which
    PyArrow's dataset and DuckDB skip by default."""
    import duckdb
    import pyarrow.dataset as ds

    prices = schema_for(PRICES)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        write_new(tmp_path, "2023-11-15", symbol, prices, rows(prices, DAY1, 4, symbol),
                  "part-x.parquet")
    for junk in ("_deadletter/prices/BTCUSDT_1_1.ndjson", "_journal/seg-1.jnl",
                 "_locks/shard-0-of-1.lock", "_deadletter/_rejected/prices/BTCUSDT_2_1.ndjson"):
        (tmp_path / junk).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / junk).write_text("not parquet")
    table = ds.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 8 and set(table.column("symbol").to_pylist()) == {"BTCUSDT",
                                                                               "ETHUSDT"}
    got = duckdb.sql(f"select count(*), count(distinct symbol) from '{tmp_path}/**/*.parquet'")
    assert got.fetchall() == [(8, 2)]
