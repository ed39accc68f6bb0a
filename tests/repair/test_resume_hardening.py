"""Resume finds the true last id on disk (every date, dead letter included),
never silently skips what it cannot read, and a restart never writes an id that is there."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import trio

from trio_harvest.app import Harvester
from trio_harvest.dataset import scan
from trio_harvest.kinds import PRICES_SCHEMA
from trio_harvest.repair.resume import last_written

from ..conftest import make_config
from ..legacy import legacy_frame
from ..opsfakes import FakeExchange
from .test_backfill import FakeRest
from .test_resume import harvest


def _part(data: Path, date: str, name: str, ids: list[int], ts: int) -> Path:
    folder = data / f"date={date}" / "symbol=BTCUSDT" / "kind=prices"
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"ts_ms": [ts] * len(ids), "agg_id": ids}).write_parquet(folder / name)
    return folder / name


def test_the_highest_id_counts_whatever_its_date(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _part(data, "2023-11-14", "part-1-2-a.parquet", list(range(10, 101)), 1_699_920_000_000)
    _part(data, "2024-06-01", "part-3-4-b.parquet", [50], 1_717_200_000_000)  # dated ahead
    assert last_written(data, data / "deadletter", ("BTCUSDT",), today="2023-11-14") == {
        "BTCUSDT": (100, 1_699_920_000_000)}
    # and the days before the latest one that is not in the future are not read at all
    older = data / "date=2023-11-01" / "symbol=BTCUSDT" / "kind=prices"
    older.mkdir(parents=True)
    (older / "part-0-0-q.parquet").write_bytes(b"not read")
    unreadable: dict[str, list[str]] = {}
    assert last_written(data, data / "deadletter", ("BTCUSDT",), unreadable,
                        today="2023-11-14") == {"BTCUSDT": (100, 1_699_920_000_000)}
    assert unreadable == {}


def test_an_unreadable_file_is_reported_and_never_lowers_the_seed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _part(data, "2023-11-14", "part-1-2-a.parquet", list(range(10, 101)), 1_699_920_000_000)
    good = _part(data, "2023-11-15", "part-5-6-c.parquet", [200], 1_700_006_400_000)
    (good.parent / "part-7-8-d.parquet").write_bytes(b"PAR1 not really parquet")
    unreadable: dict[str, list[str]] = {}
    assert last_written(data, data / "deadletter", ("BTCUSDT",), unreadable) == {}
    assert list(unreadable) == ["BTCUSDT"] and "part-7-8-d.parquet" in unreadable["BTCUSDT"][0]


async def test_a_restart_after_a_future_dated_trade_writes_no_id_twice(tmp_path: Path) -> None:
    rest = FakeRest(first=0, last=10**9)
    first = FakeExchange(symbols=("BTCUSDT",), interval=0.01)
    await harvest(tmp_path, first, rest, 1.0)
    written = first.sent_agg_ids("BTCUSDT")
    assert written > 20
    data = tmp_path / "data"
    # one trade of that run, dated far ahead (written before event times were checked); from
    # its middle: a loaded machine may have sent fewer than the 100 trades a second asks for
    ts, agg = 4_000_000_000_000, written // 2
    row = legacy_frame(PRICES_SCHEMA, [(ts, ts, ts, "BTCUSDT", agg, 100.0, 1.0, agg, agg,
                                            False)])
    folder = data / "date=2096-10-02" / "symbol=BTCUSDT" / "kind=prices"
    folder.mkdir(parents=True)
    row.write_parquet(folder / "part-4000000000000-4000000000000-z.parquet")
    second = FakeExchange(symbols=("BTCUSDT",), interval=0.01,
                          agg_ids={"BTCUSDT": written + 100})
    await harvest(tmp_path, second, rest, 1.5)
    ids = scan(data, "prices").collect()["agg_id"]  # old union files and new ones alike
    assert ids.is_duplicated().sum() == 2  # the future-dated copy and its original only
    assert ids.n_unique() == ids.max() + 1  # contiguous across the restart


async def test_a_symbol_with_an_unreadable_file_is_not_resumed_and_says_so(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    _part(data, "2023-11-14", "part-1-2-a.parquet", list(range(10, 101)), 1_699_920_000_000)
    (data / "date=2023-11-14" / "symbol=BTCUSDT" / "kind=prices" / "part-3-4-x.parquet"
     ).write_bytes(b"garbage")
    cfg = make_config(tmp_path, symbols=("BTCUSDT",), auto_recover=False)
    h = Harvester(cfg, connect=FakeExchange(symbols=("BTCUSDT",)).connect)
    _removed, seeds = await trio.to_thread.run_sync(h._startup_scan)
    h._resume_continuity(seeds)
    assert seeds == {} and h.repair.as_dict()["resume_unreadable_files"] == 1
