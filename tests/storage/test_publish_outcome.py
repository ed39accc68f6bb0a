"""The publish gate after a timeout: when the write thread won the gate and its rename then
fails, the batch is not counted as written (it goes to the dead letter); when the rename
succeeds, it is written once and never dead-lettered as well."""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl
import pytest
import trio

from trio_harvest.kinds import PRICES, schema_for
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.pipeline.rotation import Rotation
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.store import LocalStore
from trio_harvest.storage.writer import Writer

N = 50
_real_replace = os.replace


def slow_rename(fail: bool) -> object:
    """``os.replace`` of Parquet files: slower than the write timeout, then failing or not."""

    def replace(src: object, dst: object) -> None:
        if str(dst).endswith(".parquet"):
            time.sleep(0.6)
            if fail:
                raise PermissionError(1, "Operation not permitted", str(dst))
        _real_replace(src, dst)  # type: ignore[arg-type]

    return replace


async def rotate_once(tmp_path: Path) -> Rotation:
    w = Writer(LocalStore(tmp_path / "data"), LocalStore(tmp_path / "dl"),
               lambda kind: schema_for(kind, 5))
    lanes = Lanes({PRICES: (10_000, 20_000)}, wake=lambda lane: None)
    lane = lanes.get(PRICES, "BTCUSDT")
    for i in range(N):
        assert lane.put_nowait((1_700_000_000_000 + i, 1, 2, "BTCUSDT", i, 100.0, 0.5, i, i,
                                False))
    rotation = Rotation(lanes, w.save, w.dead_letter, rotate_sec=0.1, write_timeout=0.2,
                        deadletter_timeout=5.0, save_concurrency=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(rotation.run)
        await trio.sleep(2.0)  # the rename ends (0.6 s) long before this
        nursery.cancel_scope.cancel()
    return rotation


def on_disk(tmp_path: Path) -> tuple[int, int]:
    parquet = [pl.read_parquet(p).height for p in (tmp_path / "data").rglob("*.parquet")]
    ndjson = [len(p.read_bytes().splitlines()) for p in (tmp_path / "dl").rglob("*.ndjson")]
    return sum(parquet), sum(ndjson)


async def test_a_rename_that_fails_after_the_gate_was_won_is_dead_lettered_not_counted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "replace", slow_rename(fail=True))
    rotation = await rotate_once(tmp_path)
    ks = rotation.stats.kind(PRICES)
    assert on_disk(tmp_path) == (0, N)  # every row in the dead letter, none lost
    assert ks.rows_written == 0 and ks.rows_deadlettered == N


async def test_a_rename_that_succeeds_after_the_timeout_is_written_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "replace", slow_rename(fail=False))
    rotation = await rotate_once(tmp_path)
    ks = rotation.stats.kind(PRICES)
    assert on_disk(tmp_path) == (N, 0)
    assert ks.rows_written == N and ks.rows_deadlettered == 0


def test_exactly_one_side_wins_and_the_writer_reports_how_its_publish_ended() -> None:
    gate = PublishGate()
    assert gate.begin() and not gate.abandon() and not gate.settled
    gate.settle(False)
    assert gate.settled and gate.failed
    late = PublishGate()
    assert late.abandon() and not late.begin() and not late.try_publish()
