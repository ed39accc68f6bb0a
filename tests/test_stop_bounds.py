"""A stop is bounded whatever the number of lanes. Tearing down after an
internal error ends within ``shutdown_grace + deadletter_timeout + 1 s`` even with a dozen busy
lanes whose dead-letter writes hang; a second signal during the backfill phase of a stop takes
effect at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from trio_harvest.app import Harvester
from trio_harvest.kinds import PRICES
from trio_harvest.repair.continuity import Break
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import Partition

from .conftest import make_config
from .opsfakes import FakeDisk, FakeExchange
from .repair.test_backfill import FakeRest

SYMBOLS = tuple(f"S{i:02d}USDT" for i in range(12))


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def _hang_save(part: Partition, gate: PublishGate) -> Any:
    await trio.sleep_forever()


async def _hang_dead_letter(kind: str, symbol: str, rows: list[Any], gate: PublishGate, *,
                            venue: str = "binance-usdm") -> Any:
    await trio.sleep_forever()


async def test_teardown_after_a_crash_is_bounded_whatever_the_number_of_lanes(
        autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, symbols=SYMBOLS, book_ticker=False, depth_levels=5,
                      rotate_sec=0.5, min_file_rows=1, write_timeout=600.0,
                      deadletter_timeout=1.0, shutdown_grace=2.0, auto_recover=False,
                      resume=False, save_concurrency=2, duration=3.0)
    h = Harvester(cfg, connect=FakeExchange(symbols=SYMBOLS, interval=0.05).connect,
                  save=_hang_save, dead_letter=_hang_dead_letter)
    crashed_at: list[float] = []

    async def crash(seconds: float) -> None:  # an internal error instead of --duration
        await trio.sleep(seconds)
        crashed_at.append(trio.current_time())
        raise RuntimeError("internal error")

    h._stop_after = crash  # type: ignore[method-assign]
    with pytest.raises(BaseExceptionGroup):
        await h.run()
    took = trio.current_time() - crashed_at[0]
    assert took <= cfg.shutdown_grace + cfg.deadletter_timeout + 1.0, took
    assert h.lanes.total_pending() == 0


async def test_a_second_signal_during_the_backfill_phase_takes_effect_at_once(
        autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, symbols=("BTCUSDT",), book_ticker=False, depth_levels=5,
                      shutdown_grace=60.0, deadletter_timeout=0.5, auto_recover=False,
                      resume=False, backfill_delay=0.1)
    rest = FakeRest(first=0, last=10**9, delay=3600.0)  # an exchange that never answers
    disk = FakeDisk()
    h = Harvester(cfg, connect=FakeExchange(symbols=("BTCUSDT",)).connect, fetch=rest.fetch,
                  save=disk.save, dead_letter=disk.dead_letter)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(1.0)
        tracker = h.repair.trackers["BTCUSDT"]
        last = tracker.last_id
        assert last is not None and last > 10
        tracker.missing.insert(0, [last - 10, last - 5])  # as if the stream had skipped them
        h.repair.backfill.request("BTCUSDT", Break(last - 10, last - 5, 0, 0))
        await trio.sleep(0.5)
        assert rest.calls, "backfill is waiting for the exchange"
        h.request_stop("SIGTERM")
        await trio.sleep(0.5)
        second = trio.current_time()
        h.request_stop("SIGINT")
    assert trio.current_time() - second <= cfg.deadletter_timeout + 1.0
    assert h.rotation.stats.kind(PRICES).rows_lost == 0
    unfilled = [r for _, _, rows in disk.deadlettered for r in rows if "unfilled" in str(r)]
    assert unfilled, "what backfill could not fetch is recorded"


async def test_the_duration_running_out_during_a_stop_does_not_cut_its_final_flush(
        autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    """A stop requested from elsewhere (a signal, or in a run of several venues another venue's
    unit ending, whose own ``--duration`` ran out a moment sooner) just before this run's
    ``--duration`` runs out: the duration is no second stop request, so the final flush still
    in progress is not cut short and nothing goes to the dead letter."""
    cfg = make_config(tmp_path, symbols=("BTCUSDT",), book_ticker=False, depth_levels=5,
                      shutdown_grace=60.0, deadletter_timeout=0.5, auto_recover=False,
                      resume=False, duration=3.0)
    disk = FakeDisk()

    async def slow_save(part: Partition, gate: PublishGate) -> None:  # the flush outlasts 3 s
        await trio.sleep(1.0)
        await disk.save(part, gate)

    h = Harvester(cfg, connect=FakeExchange(symbols=("BTCUSDT",)).connect, save=slow_save,
                  dead_letter=disk.dead_letter)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(2.8)
        h.request_stop("binance-usdm ended")
    assert h.stop_state.reason == "binance-usdm ended" and h.stop_state.signals == 1
    assert disk.agg_ids("BTCUSDT"), "the final flush wrote the trades"
    assert not disk.deadlettered
    assert h.rotation.stats.kind(PRICES).rows_deadlettered == 0
