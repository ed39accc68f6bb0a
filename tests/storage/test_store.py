from __future__ import annotations

import os
import threading
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import polars as pl
import pytest
import trio

from trio_harvest.kinds import FILE_SCHEMA, PRICES_SCHEMA, schema_for
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import Partition
from trio_harvest.storage.store import HOST, Abandoned, LocalStore
from trio_harvest.storage.writer import StorageStuck, Writer


def _writer(tmp_path: Path, max_stuck: int = 8) -> Writer:
    return Writer(LocalStore(tmp_path / "data"), LocalStore(tmp_path / "dl"),
                  lambda kind: schema_for(kind, 5), lambda kind: {"k": "v"}, max_stuck=max_stuck)


def _rows(n: int) -> list[tuple[object, ...]]:
    return [(1_700_000_000_000 + i, 1, 2, "BTCUSDT", i, 100.0, 0.5, i, i, False) for i in range(n)]


def test_atomic_write_publishes_only_complete_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    def boom(fh: BinaryIO) -> None:
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.write_atomic(PurePath("a/b/x.bin"), boom)
    assert list(tmp_path.rglob("*")) == [tmp_path / "a", tmp_path / "a/b"]  # no temp left either
    size = store.write_atomic(PurePath("a/b/x.bin"), lambda fh: fh.write(b"whole") and None)
    assert size == 5 and (tmp_path / "a/b/x.bin").read_bytes() == b"whole"
    assert list(store.list()) == [PurePath("a/b/x.bin")]


def test_abandoned_gate_never_publishes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    gate = PublishGate()
    assert gate.abandon()
    with pytest.raises(Abandoned):
        store.write_atomic(PurePath("x.bin"), lambda fh: None, gate)
    assert list(tmp_path.iterdir()) == []
    late = PublishGate()
    assert late.try_publish() and not late.abandon()  # exactly one side wins


def test_stale_temps_removed_but_live_foreign_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / "d" / f".tmp-{HOST}-999999999-ab-part-1.parquet"
    live_foreign = tmp_path / "d" / ".tmp-otherhost-1-ab-part-2.parquet"
    old_foreign = tmp_path / "d" / ".tmp-otherhost-2-ab-part-3.parquet"
    for p in (dead, live_foreign, old_foreign):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    os.utime(old_foreign, (1, 1))
    assert LocalStore(tmp_path).remove_stale_temps() == 2
    assert live_foreign.exists() and not dead.exists() and not old_foreign.exists()


async def test_writer_saves_parquet_with_metadata(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    part = Partition("prices", "BTCUSDT", "2023-11-14", _rows(10))
    written = await w.save(part, PublishGate())
    path = tmp_path / "data" / written.path
    assert str(written.path).startswith("venue=binance-usdm/date=2023-11-14/symbol=BTCUSDT/kind=prices/part-")
    df = pl.read_parquet(path)
    # the kind's own columns only: no other kind's columns, no partition columns
    assert df.columns == [n for n in PRICES_SCHEMA.names if n != "symbol"] and df.height == 10
    assert "symbol" not in df.columns  # the path carries it
    assert not set(df.columns) & (set(FILE_SCHEMA.names) - set(PRICES_SCHEMA.names))
    # every column is filled but ``trade_id``: these ids are integers, so it is null
    assert df.drop("trade_id").null_count().sum_horizontal().item() == 0
    assert df["trade_id"].null_count() == 10 and df.schema["trade_id"] == pl.String
    full = pl.read_parquet(path, hive_partitioning=True)
    assert full.select(PRICES_SCHEMA.names).drop("trade_id").null_count().sum_horizontal(
        ).item() == 0
    assert pl.read_parquet_metadata(path)["k"] == "v"


async def test_timed_out_write_never_appears_later(tmp_path: Path) -> None:
    """A thread cannot be killed: the gate must stop it from renaming after a timeout."""
    store = LocalStore(tmp_path)
    release = threading.Event()

    def slow(fh: BinaryIO) -> None:
        fh.write(b"data")
        release.wait(10)

    gate = PublishGate()
    with trio.move_on_after(0.2) as scope:
        await trio.to_thread.run_sync(store.write_atomic, PurePath("x.bin"), slow, gate,
                                      abandon_on_cancel=True)
    assert scope.cancelled_caught and gate.abandon()
    release.set()
    await trio.sleep(0.3)
    assert list(tmp_path.rglob("*.bin")) == []
    assert list(tmp_path.rglob(".tmp-*")) == []


async def test_writer_refuses_to_pile_up_hanging_threads_per_store(tmp_path: Path) -> None:
    release = threading.Event()

    class HangingStore(LocalStore):
        def write_atomic(self, rel: PurePath, produce: object, gate: object = None) -> int:
            release.wait(10)
            return 0

        def stage(self, rel: PurePath, produce: object, gate: object) -> Any:
            release.wait(10)
            raise OSError("the hung disk came back failing")

    w = Writer(HangingStore(tmp_path / "data"), LocalStore(tmp_path / "dl"),
               lambda kind: schema_for(kind, 5), max_stuck=1)
    part = Partition("prices", "BTCUSDT", "2023-11-14", _rows(3))
    with trio.move_on_after(0.1):
        await w.save(part, PublishGate())
    assert w.threads_stuck == 1
    with pytest.raises(StorageStuck):
        await w.save(part, PublishGate())
    # the hung data disk does not stop the dead letter, which is another store
    written = await w.dead_letter("prices", "BTCUSDT", part.rows, PublishGate())
    assert (tmp_path / "dl" / written.path).exists()
    release.set()
    while w.threads_running:
        await trio.sleep(0.01)
    assert w.threads_stuck == 0


async def test_busy_but_healthy_writes_are_not_stuck(tmp_path: Path) -> None:
    w = _writer(tmp_path, max_stuck=1)
    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(w.save, Partition("prices", f"S{i}USDT", "2023-11-14", _rows(500)),
                               PublishGate())
    assert w.threads_stuck == 0 and len(list((tmp_path / "data").rglob("*.parquet"))) == 4


def test_a_write_makes_its_directory_again_when_it_went_missing(tmp_path: Path) -> None:
    """Directories are made by the write that finds them missing (not checked per file): a
    partition directory removed while running (retention, an operator) comes back."""
    store = LocalStore(tmp_path)
    store.write_atomic(PurePath("d=1/k=p/x.bin"), lambda fh: fh.write(b"one") and None)
    for f in (tmp_path / "d=1/k=p").iterdir():
        f.unlink()
    (tmp_path / "d=1/k=p").rmdir()
    (tmp_path / "d=1").rmdir()
    assert store.write_atomic(PurePath("d=1/k=p/y.bin"), lambda fh: fh.write(b"two") and None) == 3
    assert list(store.list()) == [PurePath("d=1/k=p/y.bin")]
    (tmp_path / "d=2").write_bytes(b"not a directory")
    with pytest.raises(NotADirectoryError):
        store.write_atomic(PurePath("d=2/k=p/z.bin"), lambda fh: fh.write(b"x") and None)
