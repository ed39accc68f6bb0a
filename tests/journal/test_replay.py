"""Restart replay (exactly once with respect to what is on disk, also when it runs twice) and
the raw archive's ``replay`` command (the same rows as the live run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import trio

from tests.conftest import make_config
from tests.dsrows import in_memory
from tests.journal import killed
from trio_harvest.app import Harvester
from trio_harvest.cli.commands import main
from trio_harvest.sim.server import SimConfig, Simulator

SYMBOLS = ("BTCUSDT", "SOLUSDT")  # not the default symbols


def scan(data: Path, kind: str) -> pl.DataFrame:
    files = sorted(str(p) for p in data.glob(f"venue=*/date=*/symbol=*/kind={kind}/*.parquet"))
    return in_memory(pl.read_parquet(files, hive_partitioning=True)) if files else pl.DataFrame()


async def crash(h: Harvester) -> None:
    """Run ``h`` until some rows are written and more are only in memory, then end it the way
    SIGKILL would (``killed.crash``): nothing buffered is flushed or dead-lettered (the segments
    and the files already written stay)."""
    prices = h.rotation.stats.kind("prices")
    await killed.crash(h, lambda: (prices.rows_written > 0 and h.lanes.total_pending() > 200
                                   and h.journal is not None
                                   and h.journal.stats.records > 500))


async def test_restart_replays_what_memory_held_exactly_once_even_when_run_twice(
        tmp_path: Path) -> None:
    sim = Simulator(SimConfig(symbols=SYMBOLS, rate=600.0, seed=3))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.serve)
        urls = {"ws_url": f"ws://127.0.0.1:{port}", "rest_url": f"http://127.0.0.1:{port}"}
        cfg = make_config(tmp_path, journal=True, symbols=SYMBOLS, rotate_sec=0.5,
                          min_file_rows=120, max_file_age=3600.0, backfill_delay=0.2, **urls)
        first = Harvester(cfg)
        await crash(first)
        assert first.journal is not None and first.journal.stats.records > 500
        written = first.rotation.stats.kind("prices").rows_written
        assert 0 < written < first.router.stats.frames  # some rows were only in memory
        snapshot = tmp_path / "journal-at-crash"
        shutil.copytree(cfg.data_dir / "_journal", snapshot)

        second = Harvester(make_config(tmp_path, journal=True, symbols=SYMBOLS, rotate_sec=0.5,
                                       backfill_delay=0.2, duration=2.0, **urls))
        await second.run()
        assert second.replayer.stats.frames > 0
        assert not list((cfg.data_dir / "_journal").glob("seg-*"))  # all checkpointed
        prices, books = scan(cfg.data_dir, "prices"), scan(cfg.data_dir, "orderbook")
        assert prices.height == prices.select("symbol", "agg_id").n_unique()
        assert books.height == books.select("symbol", "source", "update_id").n_unique()
        restart = scan(cfg.data_dir, "gaps").filter(pl.col("reason") == "restart")
        assert set(restart["symbol"]) == set(SYMBOLS)
        for symbol in SYMBOLS:  # every trade the exchange made in the span is there, once
            ids = sorted(prices.filter(pl.col("symbol") == symbol)["agg_id"].to_list())
            assert ids == list(range(ids[0], ids[-1] + 1))
            tape = sim.tape(symbol)
            assert tape.first_id is not None and tape.first_id <= ids[0]

        # A crash during (or right after) that replay leaves its segments: replaying them again
        # must add no row that is already there.
        shutil.rmtree(cfg.data_dir / "_journal")
        shutil.copytree(snapshot, cfg.data_dir / "_journal")
        third = Harvester(make_config(tmp_path, journal=True, symbols=SYMBOLS, rotate_sec=0.5,
                                      backfill_delay=0.2, duration=0.5, **urls))
        await third.run()
        assert third.replayer.stats.skipped >= second.replayer.stats.frames // 2
        prices2, books2 = scan(cfg.data_dir, "prices"), scan(cfg.data_dir, "orderbook")
        assert prices2.height == prices2.select("symbol", "agg_id").n_unique()
        assert books2.height == books2.select("symbol", "source", "update_id").n_unique()
        nursery.cancel_scope.cancel()


async def test_replay_of_a_live_runs_raw_archive_gives_the_same_rows(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    cfg = make_config(tmp_path, journal=True, raw_dir=raw, sim=True, sim_rate=500.0,
                      symbols=SYMBOLS, duration=4.0, journal_segment_s=1.0,
                      sim_faults="disconnect=1.5")
    await Harvester(cfg).run()
    archived = list(raw.glob("date=*/seg-*.jnl.zst"))
    assert len(archived) >= 2
    out = tmp_path / "rebuilt"
    code = await trio.to_thread.run_sync(  # symbols: the archive's own
        main, ["replay", "--raw-dir", str(raw), "--data-dir", str(out)])
    assert code == 0
    again_code = await trio.to_thread.run_sync(  # into the same place: refused, not doubled
        main, ["replay", "--raw-dir", str(raw), "--data-dir", str(out)])
    assert again_code == 2
    for kind, key in (("prices", ["symbol", "agg_id"]),
                      ("orderbook", ["symbol", "source", "update_id"]),
                      ("gaps", ["symbol", "stream", "start_ms", "reason"]),
                      ("ofi", ["symbol", "ts_ms", "source", "bid", "ask"]),
                      ("cvd", ["symbol", "agg_id"]),
                      ("features", ["symbol", "ts_ms"]), ("fusion", ["symbol", "ts_ms"]),
                      ("derivatives", ["symbol", "source", "ts_ms"]),
                      ("liquidations", ["symbol", "ts_ms", "side", "price", "qty"])):
        live, again = scan(cfg.data_dir, kind), scan(out, kind)
        assert live.height > 0 or kind == "gaps", kind
        assert live.height == again.height, kind
        if live.height:
            cols = live.columns
            order = [*key, *(c for c in cols if c not in key)]
            assert live.sort(order, nulls_last=True).equals(
                again.select(cols).sort(order, nulls_last=True)), kind


async def test_replay_takes_a_time_window_and_a_symbol(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    cfg = make_config(tmp_path, journal=True, raw_dir=raw, sim=True, sim_rate=500.0,
                      symbols=SYMBOLS, duration=2.0)
    await Harvester(cfg).run()
    live = scan(cfg.data_dir, "prices")
    middle = int(live["recv_ms"].median())  # type: ignore[arg-type]
    out = tmp_path / "window"
    code = await trio.to_thread.run_sync(
        main, ["replay", "--raw-dir", str(raw), "--data-dir", str(out), "--symbols", SYMBOLS[1],
               "--start", str(middle), "--json"])
    assert code == 0
    got = scan(out, "prices")
    want = live.filter((pl.col("symbol") == SYMBOLS[1]) & (pl.col("recv_ms") >= middle))
    assert got.height == want.height > 0
    assert set(got["symbol"]) == {SYMBOLS[1]}
