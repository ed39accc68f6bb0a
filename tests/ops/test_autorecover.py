"""Automatic dead-letter recovery inside ``run``: only once writes succeed again, from disk
only, never a fail → re-queue loop (old fault 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.kinds import PRICES
from trio_harvest.storage.backlog import list_deadletter
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.inventory import inspect_dataset
from trio_harvest.storage.partitions import Partition
from trio_harvest.storage.writer import Writer

from ..conftest import make_config
from ..opsfakes import FakeExchange, chattr_works, unwritable, wait_for


async def test_run_recovers_the_deadletter_once_writes_succeed_again(tmp_path: Path) -> None:
    """Writes fail (dead letter fills, ingest goes on, no recovery attempted); then the disk
    is fine again: the dead letter empties by itself and the dataset has no hole and no
    duplicate in agg_id."""
    exchange = FakeExchange(symbols=("BTCUSDT", "ETHUSDT"), interval=0.005)
    broken = True
    holder: list[Harvester] = []

    async def save(part: Partition, gate: PublishGate) -> Any:
        if broken:
            raise OSError(30, "Read-only file system")
        return await holder[0].writer.save(part, gate)

    cfg = make_config(tmp_path, min_file_rows=1, symbols=("BTCUSDT", "ETHUSDT"), depth_levels=5,
                      rotate_sec=0.1, health_interval=0.05, auto_recover_after=0.3,
                      auto_recover_batch=3)
    h = Harvester(cfg, connect=exchange.connect, save=save)
    holder.append(h)
    dl = cfg.deadletter_path
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await wait_for(lambda: h.rotation.stats.kind(PRICES).deadletter_files >= 6)
        frames = h.router.stats.frames
        await trio.sleep(0.5)  # longer than auto_recover_after: still failing, so no recovery
        assert h.ops.autorecovery.stats.files == 0 and h.ops.autorecovery.stats.state == "waiting"
        assert h.router.stats.frames > frames  # ingest went on
        assert len(list_deadletter(dl)) >= 12
        broken = False
        await wait_for(lambda: h.ops.autorecovery.stats.state == "idle", seconds=15)
        assert list_deadletter(dl) == []
        h.request_stop("test over")
    rec = h.ops.autorecovery.stats
    assert rec.files >= 12 and rec.failures == 0
    assert rec.rows == sum(k.rows_deadlettered for k in h.rotation.stats.kinds.values())
    assert list_deadletter(dl) == []
    inv = inspect_dataset(cfg.data_dir)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        c = inv.continuity[symbol]
        assert (c.holes, c.duplicates) == (0, 0)
        assert (c.first_agg_id, c.last_agg_id) == (0, exchange.sent_agg_ids(symbol) - 1)
    assert inv.deadletter["files"] == 0 and inv.temp_files == []


@pytest.mark.parametrize("how", ["injected failing writer", "chattr +i"])
async def test_a_failing_recovery_leaves_its_file_and_never_requeues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str,
) -> None:
    cfg = make_config(tmp_path, auto_recover_after=1.0)
    h = Harvester(cfg)
    rows = [(1_700_000_000_000 + i, 1, 2, "BTCUSDT", i, 1.0, 1.0, i, i, False) for i in range(50)]
    await h.writer.dead_letter(PRICES, "BTCUSDT", rows, PublishGate())
    before = list_deadletter(cfg.deadletter_path)
    auto = h.ops.autorecovery
    h.started_at = trio.current_time() - 10.0
    h.rotation.stats.kind(PRICES).files_written = 1  # live writes have been succeeding...
    auto.observe(trio.current_time())
    assert auto.ready(trio.current_time())  # ...so recovery may run
    if how == "chattr +i":
        if not chattr_works(tmp_path / "probe"):
            pytest.skip("needs root and chattr")
        with unwritable(cfg.data_dir):
            await auto.round(trio.current_time())
    else:
        async def failing_save(self: Writer, part: Partition, gate: PublishGate,
                               unique: str | None = None) -> Any:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(Writer, "save", failing_save)
        await auto.round(trio.current_time())
    assert auto.stats.failures == 1 and auto.stats.files == 0
    assert auto.stats.state == "waiting" and auto.stats.last_error
    assert list_deadletter(cfg.deadletter_path) == before  # kept; no new dead-letter file
    assert h.lanes.total_pending() == 0  # nothing went back into memory
    assert not auto.ready(trio.current_time())  # waits for good writes before trying again


def test_ready_means_writes_have_succeeded_for_a_while(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, auto_recover_after=60.0)
    h = Harvester(cfg)
    h.started_at = 0.0
    auto = h.ops.autorecovery
    ks = h.rotation.stats.kind(PRICES)
    auto.observe(10.0)
    assert not auto.ready(10.0)  # nothing written yet
    ks.files_written = 1
    auto.observe(20.0)
    assert not auto.ready(59.0) and auto.ready(61.0)  # a minute since the start, no failure
    ks.write_failures = 1
    auto.observe(100.0)
    assert not auto.ready(200.0)  # failed since the last good write
    ks.files_written = 2
    auto.observe(110.0)
    assert not auto.ready(159.0) and auto.ready(161.0)  # good again, a minute after the failure


def test_auto_recovery_can_be_switched_off(tmp_path: Path) -> None:
    h = Harvester(make_config(tmp_path, auto_recover=False))
    assert h.ops.autorecovery.stats.state == "off"
