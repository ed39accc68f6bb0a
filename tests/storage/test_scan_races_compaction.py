"""``scan`` against a compaction that deletes the files it listed: the listing runs when the
frame is collected and, if a listed file vanished before its read, runs once more. The user
never sees "file not found", and never a row twice. Compaction here deletes at once
(``delete_after=0``), the worst case the grace period normally avoids."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import trio_harvest.dataset as dataset
from trio_harvest.dataset import scan
from trio_harvest.dataset_relist import relisting, vanished
from trio_harvest.kinds import PRICES, schema_for
from trio_harvest.storage.compact import Compactor
from trio_harvest.storage.store import LocalStore

from ..dsrows import rows, write_new
from ..s3server import MotoS3, moto_s3
from .test_compact_s3 import URL, store_of, upload

DAY1 = 1_700_006_400_000  # 2023-11-15T00:00:00Z


def put(data: Path, first_id: int, n: int = 3, symbol: str = "BTCUSDT") -> list[int]:
    """A part file of ``n`` trades with agg_ids from ``first_id``; their agg_ids."""
    prices = schema_for(PRICES)
    at = prices.names.index("agg_id")
    ts = DAY1 + first_id
    batch = [(*r[:at], first_id + k, *r[at + 1:])
             for k, r in enumerate(rows(prices, ts, n, symbol, step=1))]
    name = f"part-{ts}-{ts + n - 1}-u{first_id}.parquet"
    staged = write_new(data / ".staging", "2023-11-15", symbol, prices, batch, name,
                       {"trio_harvest.kind": PRICES})  # then renamed in: atomic, as rotation
    final = data / staged.relative_to(data / ".staging")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)
    return [first_id + k for k in range(n)]


def compact_now(store: Any) -> None:
    report = Compactor(store, older_than=0, target_rows=1_000_000, now=time.time,
                       delete_after=0).run()
    assert not report.failed


def ids(frame: pl.LazyFrame) -> list[int]:
    return sorted(frame.collect()["agg_id"].to_list())


def test_a_compaction_between_the_listing_and_the_read_is_not_seen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    want = put(tmp_path, 0) + put(tmp_path, 10) + put(tmp_path, 20)
    real = dataset.local_live
    listings: list[int] = []

    def listed_then_compacted(directory: Path, **kw: Any) -> list[Path]:
        got = real(directory, **kw)
        listings.append(len(got))
        if len(listings) == 1:  # right after the first listing, a merge deletes what it named
            compact_now(LocalStore(tmp_path))
        return got

    monkeypatch.setattr(dataset, "local_live", listed_then_compacted)
    frame = scan(tmp_path, PRICES)
    assert ids(frame) == want
    assert listings == [3, 1]  # the three sources, then (once more) the merged file alone


def test_a_scan_collected_later_lists_again(tmp_path: Path) -> None:
    """A frame is a query, not a snapshot of a listing: collected after a merge, it reads the
    merged file."""
    want = put(tmp_path, 0) + put(tmp_path, 10)
    frame = scan(tmp_path, PRICES).filter(pl.col("agg_id") >= 0)
    compact_now(LocalStore(tmp_path))
    assert ids(frame) == want
    assert ids(frame.select("agg_id", "ts")) == want  # projections pass through


def test_a_file_gone_twice_is_an_error_not_a_silent_gap(tmp_path: Path) -> None:
    put(tmp_path, 0)
    (path,) = tmp_path.rglob("*.parquet")

    def build() -> pl.LazyFrame:
        lf = pl.scan_parquet(path.with_name("missing.parquet"))
        return lf

    with pytest.raises(FileNotFoundError):
        relisting(build, {"agg_id": pl.Int64}).collect()
    assert vanished(FileNotFoundError("x")) and not vanished(ValueError("not found"))


SYMBOLS = tuple(f"S{k:02d}USDT" for k in range(12))


def race(data: Path, symbols: tuple[str, ...], delete_after: float, pause: float,
         seconds: float = 2.0) -> None:
    """A thread keeps writing small files of ``symbols`` and compacting them (a round every
    ``pause``); scans of them keep reading for ``seconds``. Every scan succeeds, each sees every
    symbol, and no agg_id comes twice."""
    for symbol in symbols:
        put(data, 0, symbol=symbol)
    stop = threading.Event()
    errors: list[BaseException] = []

    def compactor() -> None:
        next_id = 1000
        try:
            while not stop.is_set():
                for symbol in symbols:
                    put(data, next_id, symbol=symbol)
                    put(data, next_id + 10, symbol=symbol)
                next_id += 20
                Compactor(LocalStore(data), older_than=0, now=time.time,
                          delete_after=delete_after).run()
                time.sleep(pause)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    worker = threading.Thread(target=compactor)
    worker.start()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            got = scan(data, PRICES).select("symbol", "agg_id").collect()
            assert got.height == got.unique().height, "a row counted twice"
            assert set(got["symbol"]) == set(symbols)
    finally:
        stop.set()
        worker.join()
    assert not errors, errors


def test_scans_race_a_compaction_that_sweeps_many_partitions(tmp_path: Path) -> None:
    """The default design: the sources stay a grace period (here 2 s), so a read that takes
    less than that never misses a file, however many partitions the round sweeps meanwhile."""
    race(tmp_path, SYMBOLS, delete_after=2.0, pause=0.0, seconds=4.0)


def test_scans_race_a_compaction_that_deletes_at_once(tmp_path: Path) -> None:
    """No grace at all: a source deleted between the listing and the read costs one more
    listing, never an error."""
    race(tmp_path, ("BTCUSDT",), delete_after=0.0, pause=0.2)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    with moto_s3(monkeypatch) as server:
        yield server


def test_on_s3_a_compaction_between_the_listing_and_the_read_is_not_seen(
        tmp_path: Path, s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    from trio_harvest.dataset_s3 import S3Listing

    src = tmp_path / "src"
    want = put(src, 0) + put(src, 10) + put(src, 20)
    store = store_of(s3)
    upload(store, src)
    real = S3Listing.files
    listings: list[int] = []

    def listed_then_compacted(self: S3Listing, *args: Any) -> Any:
        got = real(self, *args)
        listings.append(sum(len(files) for _, files in got))
        if len(listings) == 1:  # right after the read's listing, a merge deletes what it named
            compact_now(store)
        return got

    monkeypatch.setattr(S3Listing, "files", listed_then_compacted)
    options = store.options
    assert ids(scan(URL, PRICES, s3=options)) == want
    assert listings == [3, 1]
