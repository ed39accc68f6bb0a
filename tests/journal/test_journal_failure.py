"""The journal's own failures: a full disk (real ENOSPC on a tiny tmpfs; where mounting is not
possible, the same errno injected at the write), a removed directory. Harvesting goes on,
``/healthz`` says ``journal_failing``, journaling resumes when the disk allows, and the
unprotected interval is a ``gaps`` row (reason ``journal``)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import trio

from tests.conftest import make_config
from trio_harvest.app import Harvester
from trio_harvest.journal import files


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str = "2m") -> Iterator[bool]:
    where.mkdir(parents=True, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                        capture_output=True).returncode == 0
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


async def wait_for(pred: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await trio.sleep(0.05)


def codes(h: Harvester) -> set[str]:
    return {p.code for p in h.ops.health_now()[1].problems}


async def test_a_full_journal_disk_keeps_harvesting_says_so_and_records_the_gap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jdir = tmp_path / "mnt"
    with tiny_tmpfs(jdir) as mounted:
        cfg = make_config(tmp_path, journal=True, journal_dir=jdir / "j", sim=True,
                          sim_rate=400.0, symbols=("BTCUSDT",), min_file_rows=1, rotate_sec=0.5,
                          journal_fsync_ms=50, journal_segment_bytes=64 * 1024,
                          journal_max_bytes=1024 * 1024, health_interval=0.2, duration=60.0)
        h = Harvester(cfg)
        filler = jdir / "filler"
        injected = {"on": False}
        if not mounted:  # no mount here: the same errno, injected where the write happens
            real_write, real_create = files.write_batch, files.create_segment

            def full() -> None:
                if injected["on"]:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def write(fh, batch, path, *level):  # type: ignore[no-untyped-def]
                full()
                return real_write(fh, batch, path, *level)

            def create(path, *compressed):  # type: ignore[no-untyped-def]
                full()
                return real_create(path, *compressed)

            monkeypatch.setattr(files, "write_batch", write)
            monkeypatch.setattr(files, "create_segment", create)
        async with trio.open_nursery() as nursery:
            await nursery.start(h.run)
            assert h.journal is not None
            await wait_for(lambda: h.journal.stats.records > 100)
            if mounted:  # fill the disk for real
                with open(filler, "wb") as fh, contextlib.suppress(OSError):
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
            else:
                injected["on"] = True
            await wait_for(lambda: bool(h.journal.failing))
            assert "No space left on device" in h.journal.failing
            assert "journal_failing" in codes(h)
            assert b"trio_harvest_journal_failing 1.0" in h.ops.metrics.exposition()[0]
            before = h.router.stats.frames
            written = h.rotation.stats.kind("prices").rows_written
            await wait_for(lambda: h.rotation.stats.kind("prices").rows_written > written + 20)
            assert h.router.stats.frames > before  # harvesting goes on
            if mounted:
                filler.unlink()
            else:
                injected["on"] = False
            await wait_for(lambda: not h.journal.failing)
            await wait_for(lambda: "journal_failing" not in codes(h))
            h.request_stop("test")
    gaps = pl.read_parquet(str(cfg.data_dir / "venue=*/date=*/symbol=*/kind=gaps/*.parquet"))
    journal_gaps = gaps.filter(pl.col("reason") == "journal")
    assert journal_gaps.height == 1
    assert journal_gaps["end_ms"][0] > journal_gaps["start_ms"][0]
    shutil.rmtree(tmp_path, ignore_errors=True)


async def test_a_removed_journal_directory_is_noticed_and_journaling_resumes(
        tmp_path: Path) -> None:
    cfg = make_config(tmp_path, journal=True, sim=True, sim_rate=300.0, symbols=("BTCUSDT",),
                      journal_fsync_ms=50, health_interval=0.2, duration=60.0)
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        assert h.journal is not None
        await wait_for(lambda: h.journal.stats.records > 50)
        shutil.rmtree(h.journal.directory)
        await wait_for(lambda: h.journal.stats.failures >= 1)
        await wait_for(lambda: not h.journal.failing and h.journal.directory.is_dir())
        n = h.journal.stats.records
        await wait_for(lambda: h.journal.stats.records > n + 20)
        h.request_stop("test")
    gaps = pl.read_parquet(str(cfg.data_dir / "venue=*/date=*/symbol=*/kind=gaps/*.parquet"))
    assert gaps.filter(pl.col("reason") == "journal").height == 1


async def test_an_unwritable_data_dir_turns_health_red_without_a_write_being_due(
        tmp_path: Path) -> None:
    """A bad disk is seen at once: the probe, not the next Parquet write, finds it."""
    cfg = make_config(tmp_path, journal=True, sim=True, sim_rate=100.0, symbols=("BTCUSDT",),
                      min_file_rows=1_000_000, max_file_age=3600.0, health_interval=0.2,
                      duration=60.0)
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await wait_for(lambda: h.probe.probes >= 2)
        assert "disk_unwritable" not in codes(h)
        try:  # permission bits do not stop root: a read-only bind mount of the data dir does
            await trio.run_process(["mount", "--bind", "-o", "ro", str(cfg.data_dir),
                                    str(cfg.data_dir)], capture_stdout=True, capture_stderr=True)
            await wait_for(lambda: "disk_unwritable" in codes(h), seconds=5.0)
        finally:
            await trio.run_process(["umount", str(cfg.data_dir)], check=False,
                                   capture_stdout=True, capture_stderr=True)
        await wait_for(lambda: "disk_unwritable" not in codes(h), seconds=5.0)
        h.request_stop("test")


async def test_a_hung_probe_counts_as_failing_by_wall_time(tmp_path: Path) -> None:
    """A write+fsync that never returns (a hung NFS mount) is a problem, found without any trio
    timeout (a mock clock would jump while the thread runs)."""
    from trio_harvest.journal.probe import DiskProbe

    wall = [0.0]
    probe = DiskProbe((tmp_path,), interval=5.0, wall=lambda: wall[0])
    probe._running[tmp_path] = 0.0  # a probe thread started at wall time 0, still running
    wall[0] = 2.0
    assert probe.findings() == []
    wall[0] = 2.6
    (code, _subject, message), = probe.findings()
    assert code == "disk_unwritable" and "has not returned for 3s" in message
