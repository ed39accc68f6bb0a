"""Background compaction inside ``run`` (``auto_compact``): paced, bounded, never fatal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from trio_harvest.app import Harvester
from trio_harvest.config import ConfigError, build_config, load_config
from trio_harvest.storage.autocompact import AutoCompactStats, run_auto_compact
from trio_harvest.storage.compact import CompactReport, exclusive
from trio_harvest.storage.fileschema import is_compacted

from ..conftest import make_config
from ..opsfakes import FakeExchange
from .test_compact import compactor, make_dataset


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def inline(fn: Callable[[], CompactReport | None]) -> CompactReport | None:
    """Under an autojump clock a worker thread would let the clock jump: run passes inline."""
    return fn()


def merged(data: Path) -> list[str]:
    return sorted(p.name for p in data.rglob("*.parquet") if is_compacted(p.name))


async def test_passes_run_on_their_timer_and_skip_while_the_lock_is_held(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    make_dataset(tmp_path)
    stats = AutoCompactStats()
    async with trio.open_nursery() as nursery:
        with exclusive(tmp_path):  # a `compact` command is running: the first pass waits
            nursery.start_soon(lambda: run_auto_compact(tmp_path, lambda: compactor(tmp_path),
                                                        stats, first_after=5, every=60,
                                                        in_thread=inline))
            await trio.sleep(6)
            assert stats.passes == 1 and merged(tmp_path) == []
        await trio.sleep(60)
        assert stats.passes == 2 and stats.merged_files == 4 and stats.failures == 0
        await trio.sleep(60)
        assert stats.passes == 3 and stats.merged_files == 4  # nothing left to do
        nursery.cancel_scope.cancel()
    assert len(merged(tmp_path)) == 4


async def test_a_failing_pass_is_counted_and_the_next_one_runs(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    calls = 0

    def make() -> object:
        nonlocal calls
        calls += 1
        raise OSError("listing failed")

    stats = AutoCompactStats()
    with trio.move_on_after(130):
        await run_auto_compact(tmp_path, make, stats, first_after=5, every=60,  # type: ignore[arg-type]
                               in_thread=inline)
    assert calls == 3 and stats.failures == 3 and "listing failed" in stats.last_error


async def test_run_with_auto_compact_compacts_its_own_closed_partitions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_dataset(data)  # 2023: closed long ago
    cfg = make_config(tmp_path, symbols=("BTCUSDT",), auto_compact=True, compact_older_than=0.0,
                      compact_target_rows=7, book_ticker=False, depth_levels=5, resume=False,
                      auto_recover=False)
    h = Harvester(cfg, connect=FakeExchange(symbols=("BTCUSDT",), interval=0.05).connect)
    import trio_harvest.storage.autocompact as auto

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(auto, "FIRST_AFTER", 0.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(h.run)
            with trio.fail_after(20):
                while h.compaction.passes == 0:
                    await trio.sleep(0.05)
            h.request_stop("test")
    assert h.compaction.merged_files == 3 and h.compaction.failures == 0
    # only this run's symbol: ETHUSDT's orderbook files are left as they were
    assert not [n for n in merged(data / "venue=binance-usdm" / "date=2023-11-15" / "symbol=ETHUSDT")]


def test_settings_are_toml_env_and_flags(tmp_path: Path) -> None:
    toml = tmp_path / "h.toml"
    toml.write_text("auto_compact = true\ncompact_older_than = 600\n")
    cfg = load_config({"compact_target_rows": 5000}, {"TRIO_HARVEST_COMPACT_OLDER_THAN": "900"},
                      toml)
    assert (cfg.auto_compact, cfg.compact_older_than, cfg.compact_target_rows) == (True, 900, 5000)
    assert build_config({"data_dir": tmp_path}).auto_compact is True  # on by default
    assert (build_config({"data_dir": tmp_path}).compact_older_than,
            build_config({"data_dir": tmp_path}).compact_interval) == (600.0, 60.0)
    with pytest.raises(ConfigError, match="compact_interval"):
        make_config(tmp_path, compact_interval=0.0)
    with pytest.raises(ConfigError, match="compact_target_rows: must be a whole number"):
        make_config(tmp_path, compact_target_rows=1)
    with pytest.raises(ConfigError, match="compact_older_than"):
        make_config(tmp_path, compact_older_than=-1.0)
    from trio_harvest.cli.commands import build_parser

    args = build_parser().parse_args(["run", "--auto-compact", "--compact-older-than", "2h",
                                      "--compact-target-rows", "100"])
    assert (args.auto_compact, args.compact_older_than, args.compact_target_rows) == (
        True, 7200.0, 100)
    args = build_parser().parse_args(["run", "--no-auto-compact", "--compact-interval", "5s"])
    assert (args.auto_compact, args.compact_interval) == (False, 5.0)


@pytest.mark.alone  # a pace in real time (a round every 0.3 s): measured on a machine it alone loads
async def test_compaction_keeps_pace_with_rotation_for_many_rounds(tmp_path: Path) -> None:
    """A real run with rotation every 0.2 s and a round every 0.3 s, the exchange's clock
    jumping an hour every 1.2 s: round after round, each hour that went quiet becomes one file
    while ingest and rotation go on, and every trade is on disk once, by the reader API and by
    a plain glob alike."""
    import polars as pl

    from trio_harvest.dataset import scan
    from trio_harvest.kinds import PRICES

    from .test_compact import part_files

    cfg = make_config(tmp_path, symbols=("BTCUSDT",), auto_compact=True,
                      compact_older_than=0.5, compact_interval=0.3, rotate_sec=0.2,
                      compact_delete_after=0.0,
                      max_file_age=0.2, min_file_rows=1_000_000, book_ticker=False,
                      depth_levels=5, resume=False, auto_recover=False, backfill=False)
    exchange = FakeExchange(symbols=("BTCUSDT",), interval=0.02)
    h = Harvester(cfg, connect=exchange.connect)
    import trio_harvest.storage.autocompact as auto

    hours = 6
    seen: list[tuple[int, int, int]] = []  # (passes, merged files, files written) per hour
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(auto, "FIRST_AFTER", 0.0)
        mp.setattr(auto, "FULL_EVERY", 0.0)  # the exchange's dates are not today's
        async with trio.open_nursery() as nursery:
            await nursery.start(h.run)
            for _ in range(hours):
                await trio.sleep(1.2)
                exchange.ts += 3_600_000  # the next hour: the last one goes quiet
                written = h.rotation.stats.kind(PRICES).files_written
                seen.append((h.compaction.passes, h.compaction.merged_files, written))
            await trio.sleep(1.5)  # the last hours' rounds
            h.request_stop("test")
    assert h.compaction.failures == 0, h.compaction.last_error
    passes = [s[0] for s in seen]
    written = [s[2] for s in seen]
    assert passes == sorted(passes) and passes[-1] - passes[1] >= 4  # rounds kept coming
    assert written == sorted(written) and written[-1] - written[1] >= 4  # and so did files
    assert seen[-1][1] > seen[1][1] > 0, seen  # merging all along
    # every hour but the last two (the running one and the one that was settling) is one file
    per_hour: dict[int, int] = {}
    for f in part_files(cfg.data_dir, PRICES):
        hour = int(f.name.split("-")[1]) // 3_600_000
        per_hour[hour] = per_hour.get(hour, 0) + 1
    settled = sorted(per_hour)[:-2]
    assert len(settled) >= hours - 3 and all(per_hour[hr] <= 2 for hr in settled), per_hour
    api = scan(cfg.data_dir, PRICES).collect()["agg_id"].to_list()
    glob = pl.scan_parquet(part_files(cfg.data_dir, PRICES)).collect()["agg_id"].to_list()
    assert sorted(api) == sorted(glob) == list(range(min(api), max(api) + 1))
    assert len(api) >= exchange.sent_agg_ids("BTCUSDT") - 1
