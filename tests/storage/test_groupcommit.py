"""Group commit: staged files become durable and published together; the publish gate still
decides, so a write its waiter gave up on never appears."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePath
from typing import BinaryIO

import polars as pl
import pytest
import trio

from trio_harvest.kinds import schema_for
from trio_harvest.storage import groupcommit
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.groupcommit import Abandoned, GroupCommit, commit_batch
from trio_harvest.storage.partitions import Partition
from trio_harvest.storage.store import LocalStore
from trio_harvest.storage.writer import Committing, Writer


def _bytes(data: bytes) -> Callable[[BinaryIO], None]:
    def produce(fh: BinaryIO) -> None:
        fh.write(data)
    return produce


def _rows(n: int, symbol: str) -> list[tuple[object, ...]]:
    t = 1_700_000_000_000
    return [(t + i, t + i, t + i, symbol, i, 100.0, 0.1, i, i, False) for i in range(n)]


def test_a_batch_publishes_every_file_but_the_abandoned_one(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    gates = [PublishGate() for _ in range(6)]
    staged = [store.stage(PurePath(f"d{i % 3}", f"f{i}.bin"), _bytes(b"x" * i), g)
              for i, g in enumerate(gates)]
    assert not list(tmp_path.rglob("*.bin"))  # staged: nothing visible yet
    assert gates[4].abandon()  # its waiter timed out before the commit
    commit_batch(staged)
    assert sorted(p.name for p in tmp_path.rglob("*.bin")) == [
        f"f{i}.bin" for i in range(6) if i != 4]
    assert isinstance(staged[4].error, Abandoned)
    assert not list(tmp_path.rglob(".tmp-*"))  # the abandoned temp file is gone too
    assert all(s.error is None for i, s in enumerate(staged) if i != 4)


def test_without_syncfs_each_file_and_each_directory_is_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    monkeypatch.setattr(groupcommit, "syncfs", lambda path: False)
    real = groupcommit.fsync_path

    def fsync_path(path: Path) -> None:
        synced.append(path.name if path.is_file() else f"dir:{path.name}")
        real(path)

    monkeypatch.setattr(groupcommit, "fsync_path", fsync_path)
    store = LocalStore(tmp_path)
    staged = [store.stage(PurePath(f"d{i % 2}", f"f{i}.bin"), _bytes(b"y"), PublishGate())
              for i in range(4)]
    commit_batch(staged)
    assert len([s for s in synced if not s.startswith("dir:")]) == 4
    assert sorted(s for s in synced if s.startswith("dir:")) == ["dir:d0", "dir:d1"]  # once each
    assert len(list(tmp_path.rglob("*.bin"))) == 4


async def test_concurrent_writes_share_commits_and_all_land(tmp_path: Path) -> None:
    w = Writer(LocalStore(tmp_path / "data"), LocalStore(tmp_path / "dl"),
               lambda kind: schema_for(kind, 5))
    parts = [Partition("prices", f"S{i}USDT", "2023-11-14", _rows(50, f"S{i}USDT"))
             for i in range(40)]
    async with trio.open_nursery() as nursery:
        for part in parts:
            nursery.start_soon(w.save, part, PublishGate())
    files = list((tmp_path / "data").rglob("*.parquet"))
    assert len(files) == 40 and w.group.files == 40
    assert w.group.batches < 40  # files staged meanwhile were committed together
    assert pl.read_parquet(files).height == 40 * 50
    assert not list((tmp_path / "data").rglob(".tmp-*"))


async def test_a_waiter_that_gave_up_never_sees_its_file_appear(tmp_path: Path) -> None:
    """The gate contract through the group commit: abandoned while queued for the commit, the
    staged file is removed, not renamed, whenever the commit runs."""
    w = Writer(LocalStore(tmp_path / "data"), LocalStore(tmp_path / "dl"),
               lambda kind: schema_for(kind, 5))
    gate = PublishGate()
    out = await w.stage(Partition("prices", "BTCUSDT", "2023-11-14", _rows(10, "BTCUSDT")),
                        gate)
    assert isinstance(out, Committing)
    assert gate.abandon()  # the caller timed out before awaiting the commit
    try:
        await out.result()
    except Abandoned:
        pass
    else:
        raise AssertionError("an abandoned write was published")
    assert not list((tmp_path / "data").rglob("*.parquet"))
    assert not list((tmp_path / "data").rglob(".tmp-*"))


async def test_an_idle_group_commit_starts_again_for_the_next_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    group = GroupCommit()
    for i in range(3):
        size = await group.commit(store.stage(PurePath(f"f{i}.bin"), _bytes(b"abc"),
                                              PublishGate()))
        assert size == 3
    assert group.batches == 3 and len(list(tmp_path.glob("*.bin"))) == 3
