"""Data model v3 on disk: ``venue=<venue>/date=/symbol=/kind=`` partitions whose time columns are
Parquet UTC timestamps, read as such by DuckDB and Polars with no conversion; datasets written
before (no ``venue=`` level, int ms times, bookTicker rows inside ``orderbook``) stay readable
through ``scan`` as ``binance-usdm``, mixed with new files, and ``compact``, ``recover`` and
``inspect`` work on such a mixed dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import trio

from trio_harvest.dataset import scan
from trio_harvest.kinds import (
    BOOK_UPDATES,
    DEFAULT_VENUE,
    DEFAULT_WATERMARKS,
    GAPS,
    ORDERBOOK,
    PRICES,
    PRICES_SCHEMA,
    QUOTES,
    TIMESTAMP,
    Row,
    Schema,
    orderbook_schema,
    schema_for,
)
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.storage.compact import Compactor
from trio_harvest.storage.encoding import encode_ndjson
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.inventory import inspect_dataset
from trio_harvest.storage.partitions import deadletter_name, split_by_date
from trio_harvest.storage.recover import Recoverer
from trio_harvest.storage.store import LocalStore
from trio_harvest.storage.writer import Writer

from ..dsrows import in_memory, write_new
from ..legacy import write_legacy

DAY = 1_700_006_400_000  # 2023-11-15T00:00:00Z
LATER = DAY / 1000 + 10 * 86_400


def trade(i: int, ts: int, symbol: str = "BTCUSDT") -> Row:
    return (ts, ts + 1, ts + 5, symbol, i, 100.0 + i, 0.5, i, i, i % 2 == 0, None)


# ``prices`` as files were written before ``trade_id`` (the venue's text id) was added
OLD_PRICES = Schema(PRICES, PRICES_SCHEMA.columns[:-1])


def old_trade(i: int, ts: int) -> Row:
    return trade(i, ts)[:-1]


def ticker(i: int, ts: int, symbol: str = "BTCUSDT", levels: int = 5) -> Row:
    """A bookTicker row as versions before ``quotes`` kept it: in ``orderbook``, level 1 only."""
    return (ts, ts, ts + 2, symbol, "bookTicker", i, i, -1, 99.0, 1.0, 101.0, 2.0) + \
        (None,) * (4 * (levels - 1))


def writer(data: Path, dl: Path) -> Writer:
    return Writer(LocalStore(data), LocalStore(dl), lambda kind: schema_for(kind, 5))


async def save(w: Writer, kind: str, rows: list[Row], venue: str = DEFAULT_VENUE) -> None:
    for part in split_by_date(kind, rows[0][3] if kind != GAPS else rows[0][1], rows, venue):
        await w.save(part, PublishGate())


async def test_duckdb_shows_the_event_time_as_timestamp_with_time_zone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await save(writer(data, tmp_path / "dl"), PRICES, [trade(i, DAY + i) for i in range(5)])
    folder = data / "venue=binance-usdm" / "date=2023-11-15" / "symbol=BTCUSDT" / "kind=prices"
    assert len(list(folder.glob("*.parquet"))) == 1
    described = {row[0]: row[1] for row in duckdb.sql(
        f"DESCRIBE SELECT * FROM read_parquet('{folder}/*.parquet', hive_partitioning=1)"
    ).fetchall()}
    for column in ("ts_ms", "event_ms", "recv_ms"):
        assert described[column] == "TIMESTAMP WITH TIME ZONE", (column, described)
    assert described["venue"] == "VARCHAR" and described["agg_id"] == "BIGINT"
    assert described["trade_id"] == "VARCHAR"  # the venue's text id: null for Binance
    # Polars reads them as UTC timestamps, no cast and no option
    df = pl.read_parquet(folder / "*.parquet")
    assert df.schema["ts_ms"] == pl.Datetime("ms", "UTC") == df.schema["recv_ms"]
    assert df.schema["trade_id"] == pl.String and df["trade_id"].null_count() == 5
    assert df["ts_ms"].dt.epoch("ms").to_list() == [DAY + i for i in range(5)]
    # and a plain glob over the new layout, with its Hive keys
    glob = pl.scan_parquet(data / "venue=*/date=*/symbol=*/kind=prices/*.parquet",
                           hive_partitioning=True).collect()
    assert glob.height == 5 and set(glob["venue"]) == {"binance-usdm"}


async def test_an_old_dataset_scans_with_new_files_as_binance_usdm(tmp_path: Path) -> None:
    """Old layout, both of its file formats (first-version union files and per-kind files with
    int ms times, bookTicker rows inside orderbook) and new files: one kind, one schema."""
    data = tmp_path / "data"
    prices, book = schema_for(PRICES), orderbook_schema(5)
    write_legacy(data, "2023-11-15", "BTCUSDT", OLD_PRICES,
                 [old_trade(i, DAY + i) for i in range(3)], "part-1-3-old.parquet")
    write_new(data, "2023-11-15", "BTCUSDT", OLD_PRICES,
              [old_trade(i, DAY + i) for i in range(3, 5)], "part-4-5-ms.parquet", venue=None)
    assert "trade_id" not in pl.read_parquet_schema(
        data / "date=2023-11-15/symbol=BTCUSDT/kind=prices/part-4-5-ms.parquet")
    depth = [(DAY + 9, DAY + 9, DAY + 10, "BTCUSDT", "depth5", 9, 9, 8)
             + (98.0, 1.0, 102.0, 1.0) * 5]
    write_new(data, "2023-11-15", "BTCUSDT", book, [ticker(i, DAY + i) for i in range(4)] + depth,
              "part-1-9-book.parquet", venue=None)
    w = writer(data, tmp_path / "dl")
    await save(w, PRICES, [trade(i, DAY + i) for i in range(5, 9)])
    df = scan(data, PRICES).collect()
    assert df.height == 9 and sorted(df["agg_id"].to_list()) == list(range(9))
    assert set(df["venue"]) == {"binance-usdm"}
    for column in ("ts_ms", "event_ms", "recv_ms", "ts", "recv_ts"):
        assert df.schema[column] == TIMESTAMP, column
    assert sorted(in_memory(df.select(prices.names)).rows()) == sorted(
        trade(i, DAY + i) for i in range(9))
    # time filters work across both layouts
    assert scan(data, PRICES, start=DAY + 2, end=DAY + 6).collect().height == 4
    assert scan(data, PRICES, venue="binance-usdm", symbols="btcusdt").collect().height == 9
    # the old orderbook's bookTicker rows read as quotes; orderbook keeps the snapshots
    ob = scan(data, ORDERBOOK).collect()
    assert ob.height == 1 and ob["source"].to_list() == ["depth5"]
    assert ob.schema["recv_ms"] == TIMESTAMP and ob["bid_px_5"].to_list() == [98.0]
    quotes = scan(data, QUOTES, symbols="BTCUSDT").collect()
    assert quotes.columns[:9] == schema_for(QUOTES).names and quotes.schema["ts_ms"] == TIMESTAMP
    assert sorted(in_memory(quotes.select(schema_for(QUOTES).names)).rows()) == [
        (DAY + i, DAY + i, DAY + i + 2, "BTCUSDT", i, 99.0, 1.0, 101.0, 2.0) for i in range(4)]
    assert set(quotes["venue"]) == {"binance-usdm"} and set(quotes["kind"]) == {"quotes"}


async def test_several_venues_share_one_dataset(tmp_path: Path) -> None:
    """One ``Lanes`` per venue: the same symbol of two venues lands in two partitions."""
    data, dl = tmp_path / "data", tmp_path / "dl"
    w = writer(data, dl)
    await save(w, PRICES, [trade(i, DAY + i) for i in range(3)])
    await save(w, PRICES, [trade(i, DAY + i) for i in range(100, 104)], venue="binance-spot")
    lanes = Lanes({PRICES: (10, 20)}, wake=lambda lane: None, venue="binance-coinm")
    assert lanes.get(PRICES, "BTCUSDT").venue == "binance-coinm"
    await w.dead_letter(PRICES, "BTCUSDT", [trade(7, DAY)], PublishGate(), venue="binance-spot")
    assert list(dl.glob("venue=binance-spot/prices/BTCUSDT_*.ndjson"))
    assert scan(data, PRICES).collect().height == 7
    spot = scan(data, PRICES, venue="binance-spot").collect()
    assert spot.height == 4 and set(spot["venue"]) == {"binance-spot"}
    assert scan(data, PRICES, venue="binance-usdm").collect().height == 3
    inv = inspect_dataset(data, dl)
    assert sorted((p.venue, p.rows) for p in inv.partitions) == [
        ("binance-spot", 4), ("binance-usdm", 3)]
    assert set(inv.continuity) == {"BTCUSDT", "binance-spot:BTCUSDT"}


async def test_compact_recover_and_inspect_work_on_a_mixed_dataset(tmp_path: Path) -> None:
    """Compaction merges an old-layout folder where it is (its int ms times become timestamps,
    its sources are deleted: a plain glob of either layout counts each row once); recovery of a
    dead-letter file of the old layout (``<kind>/``) writes into the new one; ``inspect``
    counts a partition's rows over both layouts."""
    data, dl = tmp_path / "data", tmp_path / "dl"
    prices = schema_for(PRICES)
    for k in range(3):
        write_new(data, "2023-11-15", "BTCUSDT", prices,
                  [trade(10 * k + i, DAY + 10 * k + i) for i in range(2)],
                  f"part-{DAY + 10 * k}-{DAY + 10 * k + 1}-o{k}.parquet", venue=None)
    w = writer(data, dl)
    for k in range(2):
        await save(w, PRICES, [trade(100 + 10 * k + i, DAY + 100 + 10 * k + i) for i in range(2)])
    old_dl = dl / PRICES / deadletter_name("BTCUSDT", 1_800_000_000_000, 2)
    old_dl.parent.mkdir(parents=True)
    old_dl.write_bytes(encode_ndjson(prices, [trade(200, DAY + 200), trade(201, DAY + 201)]))
    want = sorted([10 * k + i for k in range(3) for i in range(2)]
                  + [100 + 10 * k + i for k in range(2) for i in range(2)] + [200, 201])

    report = await Recoverer(data, dl).recover_all()
    assert not report.failed and not old_dl.exists()
    assert [o.file for o in report.files] == [f"prices/{old_dl.name}"]
    inv = inspect_dataset(data, dl)
    (part,) = inv.partitions
    assert (part.venue, part.rows, part.files) == ("binance-usdm", 12, 6)

    compacted = Compactor(LocalStore(data), older_than=3600.0, target_rows=100,
                          now=lambda: LATER, written_at=lambda rel: DAY / 1000).run()
    assert not compacted.failed and compacted.as_dict()["merged_files"] == 2
    old = list(data.glob("date=2023-11-15/symbol=BTCUSDT/kind=prices/*.parquet"))
    new = list(data.glob("venue=binance-usdm/date=2023-11-15/symbol=BTCUSDT/kind=prices/*"))
    assert len(old) == 1 and len(new) == 1  # each folder merged where it is
    assert pl.read_parquet(old[0]).schema["ts_ms"] == TIMESTAMP  # rewritten with timestamps
    glob: list[Any] = []
    for files in (old, new):
        glob += pl.read_parquet(files)["agg_id"].to_list()
    assert sorted(glob) == want
    assert sorted(scan(data, PRICES).collect()["agg_id"].to_list()) == want
    (part,) = inspect_dataset(data, dl).partitions
    assert (part.rows, part.files, part.agg_id_duplicates) == (12, 2, 0)


async def test_files_and_dead_letters_from_before_trade_id_merge_with_new_ones(
        tmp_path: Path) -> None:
    """A venue's ``prices`` files and dead-letter lines written before ``trade_id`` read it as
    null beside new rows that carry the venue's text id: through ``recover``, ``compact``
    (which merges both schemas into one file) and ``scan``."""
    data, dl, venue = tmp_path / "data", tmp_path / "dl", "bybit-linear"
    uuid = "0d5c9a3e-1f6b-5d2e-8c47-3a9b2e61f0d4"
    write_new(data, "2023-11-15", "BTCUSDT", OLD_PRICES, [old_trade(1, DAY + 1)],
              f"part-{DAY + 1}-{DAY + 1}-o.parquet", venue=venue)
    await save(writer(data, dl), PRICES, [(*trade(2, DAY + 2)[:-1], uuid)], venue)
    line = dl / f"venue={venue}" / PRICES / deadletter_name("BTCUSDT", 1_800_000_000_000, 1)
    line.parent.mkdir(parents=True)
    line.write_bytes(encode_ndjson(OLD_PRICES, [old_trade(3, DAY + 3)]))
    assert b"trade_id" not in line.read_bytes()
    report = await Recoverer(data, dl).recover_all()
    assert not report.failed and report.rows == 1 and not report.rejected_lines
    compacted = Compactor(LocalStore(data), older_than=3600.0, target_rows=100,
                          now=lambda: LATER, written_at=lambda rel: DAY / 1000).run()
    assert not compacted.failed and compacted.as_dict()["merged_files"] == 1
    (merged,) = data.glob(f"venue={venue}/date=2023-11-15/symbol=BTCUSDT/kind=prices/*")
    assert pl.read_parquet(merged).schema["trade_id"] == pl.String
    got = scan(data, PRICES, venue=venue).collect().sort("agg_id")
    assert got.select("agg_id", "trade_id").rows() == [(1, None), (2, uuid), (3, None)]


def test_a_dead_letter_of_another_venue_is_recovered_into_it(tmp_path: Path) -> None:
    data, dl = tmp_path / "data", tmp_path / "dl"
    folder = dl / "venue=binance-spot" / PRICES
    folder.mkdir(parents=True)
    (folder / deadletter_name("ETHUSDT", 1_800_000_000_000, 1)).write_bytes(
        encode_ndjson(schema_for(PRICES), [trade(5, DAY, "ETHUSDT")]))
    report = trio.run(Recoverer(data, dl).recover_all)
    assert not report.failed and report.rows == 1
    got = scan(data, PRICES, venue="binance-spot").collect()
    assert got["agg_id"].to_list() == [5] and set(got["venue"]) == {"binance-spot"}
    assert list(data.glob("venue=binance-spot/date=2023-11-15/symbol=ETHUSDT/kind=prices/*"))


async def test_quotes_and_book_updates_are_authoritative_kinds_with_their_own_files(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    w = writer(data, tmp_path / "dl")
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None,
                  schema_of=lambda kind: schema_for(kind, 5))
    quotes = [(DAY + i, DAY + i, DAY + i + 2, "BTCUSDT", 10 + i, 99.0 + i, 1.0, 101.0, 2.0)
              for i in range(3)]
    book = [(DAY, None, DAY + 1, "BTCUSDT", 50, 50, None, "bid", 99.0, 1.5, True),
            (DAY, None, DAY + 1, "BTCUSDT", 50, 50, None, "ask", 101.0, 2.5, True),
            (DAY + 5, DAY + 5, DAY + 6, "BTCUSDT", 51, 53, 50, "ask", 101.0, 0.0, False)]
    for kind, rows in ((QUOTES, quotes), (BOOK_UPDATES, book)):
        lane = lanes.get(kind, "BTCUSDT")
        assert lane.authoritative and lane.capacity == DEFAULT_WATERMARKS[kind][1]
        for r in rows:
            assert lane.put_nowait(r)
        for part in split_by_date(kind, "BTCUSDT", lane.drain(), lanes.venue):
            await w.save(part, PublishGate())
        got = scan(data, kind, venue="binance-usdm").collect()
        assert got.columns[:len(rows[0])] == schema_for(kind).names
        assert got.schema["ts_ms"] == TIMESTAMP == got.schema["recv_ms"]
        assert sorted(in_memory(got.select(schema_for(kind).names)).rows(),
                      key=repr) == sorted(rows, key=repr)
        assert list(data.glob(f"venue=binance-usdm/date=2023-11-15/symbol=BTCUSDT/kind={kind}/*"))
    snapshot = scan(data, BOOK_UPDATES).filter(pl.col("is_snapshot")).collect()
    assert sorted(snapshot["side"].to_list()) == ["ask", "bid"]
    assert set(snapshot["update_id"]) == {50}


async def test_the_snippets_of_the_data_model_page_run(tmp_path: Path,
                                                       monkeypatch: Any) -> None:
    """docs/data-model.md's snippets, against a dataset of the new layout (and one old-layout
    folder): every expression runs and reads rows."""
    import re

    from ..test_recipes import rows_of, run_snippet

    noon = 1_796_083_200_000 + 12 * 3_600_000  # 2026-12-01T12:00:00Z
    data = tmp_path / "data"
    w = writer(data, tmp_path / "dl")
    await save(w, PRICES, [trade(i, noon + 1000 * i) for i in range(4)])
    depth = [(noon + i, noon + i, noon + i + 1, "ETHUSDT", "depth20", i, i, i - 1)
             + (100.0, 1.0, 101.0, 1.0) + (None,) * 16 for i in range(3)]
    await save(w, ORDERBOOK, depth)
    await save(w, QUOTES, [(noon + i, noon + i, noon + i + 1, "BTCUSDT", 10 + i, 99.0, 1.0, 101.0,
                            2.0) for i in range(3)])
    await save(w, BOOK_UPDATES, [
        (noon, noon, noon + 1, "BTCUSDT", 10, 10, -1, "bid", 99.0, 1.0, True),
        (noon, noon, noon + 1, "BTCUSDT", 10, 10, -1, "ask", 101.0, 2.0, True),
        (noon + 1, noon + 1, noon + 2, "BTCUSDT", 11, 12, 10, "bid", 99.5, 3.0, False)])
    write_new(data, "2026-12-01", "BTCUSDT", schema_for(PRICES),
              [trade(9, noon + 9000)], "part-old.parquet", venue=None)
    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).resolve().parents[2] / "docs" / "data-model.md").read_text()
    results = [r for code in re.findall(r"```python\n(.*?)```", text, re.S)
               for r in run_snippet(code)]
    assert len(results) == 7
    for source, n, _cols in results:
        assert n > 0, source
    assert rows_of(scan(data, PRICES, venue="binance-usdm"))[0] == 5
