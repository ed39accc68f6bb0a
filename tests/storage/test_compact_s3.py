"""Compaction on an object store works as on local disk (moto's S3 server on loopback): the same
command with run's S3 flags, crash-safe when killed at any step or by SIGKILL, one compaction at
a time (a lease object in the bucket), and background compaction of a run on S3. Rows are
counted with the reader API over a copy of the bucket and with a plain glob on the bucket."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

import polars as pl
import pytest
import trio

from trio_harvest.cli.commands import main
from trio_harvest.kinds import PRICES
from trio_harvest.storage.compact import exclusive
from trio_harvest.storage.fileschema import is_compacted
from trio_harvest.storage.location import S3Options, parse_s3
from trio_harvest.storage.s3store import S3Store

from ..opsfakes import logging_restored, wait_for
from ..s3server import BUCKET, MotoS3, moto_s3
from .test_compact import STEPS, assert_exactly_once, kill_then_finish, make_dataset

URL = f"s3://{BUCKET}/market"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    with moto_s3(monkeypatch) as server:
        yield server


def store_of(s3: MotoS3) -> S3Store:
    return S3Store(parse_s3(URL), S3Options(s3.endpoint, "us-east-1", allow_http=True))


def upload(store: S3Store, src: Path) -> None:
    for p in sorted(src.rglob("*.parquet")):
        data = p.read_bytes()
        store.write_atomic(PurePath(p.relative_to(src)), lambda fh, d=data: fh.write(d))


def download(store: S3Store, dest: Path) -> Path:
    for rel in store.list(None, ".parquet"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(store.read_bytes(rel))
    return dest


def glob_rows(s3: MotoS3, kind: str, top: str = "venue=*/") -> int:
    """Rows of a plain glob; ``top=""``: the layout before venues (``make_dataset``'s)."""
    opts = S3Options(s3.endpoint, "us-east-1", True).polars()
    return int(pl.scan_parquet(f"{URL}/{top}date=*/symbol=*/kind={kind}/*.parquet",
                               storage_options=opts).select(pl.len()).collect().item())


def assert_once_on_s3(s3: MotoS3, tmp: Path, expected: dict[str, list[Any]]) -> None:
    assert_exactly_once(download(store_of(s3), tmp), expected)  # the reader API
    for kind, rows in expected.items():  # and a plain glob on the bucket
        assert glob_rows(s3, kind, "") == len(rows), kind


def flags(s3: MotoS3) -> list[str]:
    return ["--data-dir", URL, "--s3-endpoint", s3.endpoint, "--s3-allow-http"]


def test_compact_an_s3_dataset_like_a_local_one(
    tmp_path: Path, s3: MotoS3, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = make_dataset(tmp_path / "src")
    store = store_of(s3)
    upload(store, tmp_path / "src")
    with exclusive(store), logging_restored():  # another compaction holds the bucket's lease
        code = main(["compact", *flags(s3), "--older-than", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "another compaction is running on " + URL in err
    with logging_restored():
        code = main(["compact", *flags(s3), "--older-than", "0", "--target-rows", "7", "--json",
                     "--delete-after", "0"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["merged_files"] == 4 and doc["failed"] == [], doc
    assert_once_on_s3(s3, tmp_path / "copy", expected)
    assert not [r for r in store.list(None, ".lock")]  # the lease is given back
    with logging_restored():  # again: the closed day's files become one per partition
        assert main(["compact", *flags(s3), "--older-than", "0", "--json",
                     "--delete-after", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["merged_files"] == 1
    assert_once_on_s3(s3, tmp_path / "copy2", expected)


@pytest.mark.parametrize("kill_at", [0, 1, 2, 5, STEPS - 1])
def test_killed_at_any_step_on_s3_and_run_again_every_row_is_there_once(
    tmp_path: Path, s3: MotoS3, kill_at: int
) -> None:
    expected = make_dataset(tmp_path / "src")
    store = store_of(s3)
    upload(store, tmp_path / "src")
    kill_then_finish(store, kill_at, lambda: assert_exactly_once(  # the reader, meanwhile
        download(store, tmp_path / "mid"), expected))
    assert_once_on_s3(s3, tmp_path / "copy", expected)
    assert all(is_compacted(r.name) for r in store.list(PurePath("date=2023-11-15/symbol=BTCUSDT"
                                                                 "/kind=prices"), ".parquet"))


def test_sigkilled_compactions_on_s3_leave_every_row_once(tmp_path: Path, s3: MotoS3) -> None:
    """Real ``compact`` processes, SIGKILLed at random moments (their lease stays behind and is
    taken over: its holder is gone), then one that finishes."""
    expected = make_dataset(tmp_path / "src")
    store = store_of(s3)
    upload(store, tmp_path / "src")
    rng = random.Random(7)
    cmd = [sys.executable, "-m", "trio_harvest", "compact", *flags(s3), "--older-than", "0",
           "--target-rows", "7", "--delete-after", "0"]
    for _ in range(4):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_once_on_s3(s3, tmp_path / "copy", expected)


async def test_a_run_on_s3_compacts_its_partitions_in_the_background(
    tmp_path: Path, s3: MotoS3
) -> None:
    from .test_s3 import fake_harvester

    h, _exchange = fake_harvester(tmp_path, s3, auto_compact=True, compact_older_than=0.0,
                                  compact_delete_after=0.0, compact_interval=0.3,
                                  max_file_age=0.2, auto_recover=False)
    import trio_harvest.storage.autocompact as auto

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(auto, "FIRST_AFTER", 0.0)
        mp.setattr(auto, "FULL_EVERY", 0.0)  # the fake exchange's dates are not today's
        async with trio.open_nursery() as nursery:
            await nursery.start(h.run)
            await wait_for(lambda: h.compaction.merged_files >= 2, 20)
            h.request_stop("test over")
    assert h.compaction.failures == 0, h.compaction.last_error
    written = h.rotation.stats.kind(PRICES).rows_written
    assert glob_rows(s3, PRICES) == written
    copy = download(store_of(s3), tmp_path / "copy")
    from trio_harvest.dataset import scan

    ids = scan(copy, PRICES).collect().group_by("symbol").agg(pl.col("agg_id"))
    for _symbol, agg in ids.iter_rows():
        assert sorted(agg) == list(range(min(agg), max(agg) + 1))
    assert sum(len(a) for _s, a in ids.iter_rows()) == written


def test_the_buckets_compaction_lease(s3: MotoS3) -> None:
    """Refused while its holder lives and it has not expired; taken over once it expired, or at
    once when its holder was a process of this host that is gone; renewed by ``keep()``."""
    import os

    from trio_harvest.storage.compact import Busy
    from trio_harvest.storage.compactlock import LEASE, LEASE_S
    from trio_harvest.storage.store import HOST

    store = store_of(s3)
    clock = [1000.0]
    with exclusive(store, now=lambda: clock[0]) as held:
        with pytest.raises(Busy, match="another compaction is running on " + URL):
            with exclusive(store, now=lambda: clock[0]):
                pass
        clock[0] += LEASE_S * 0.75
        held.keep()  # renewed: still ours a whole lease from now
        clock[0] += LEASE_S * 0.75
        with pytest.raises(Busy):
            with exclusive(store, now=lambda: clock[0]):
                pass
    assert not list(store.list(None, ".lock"))  # given back
    with exclusive(store, now=lambda: clock[0]):  # a holder that never gives it back
        clock[0] += LEASE_S + 1
        with exclusive(store, now=lambda: clock[0]):  # expired: taken over
            pass
    gone = subprocess.Popen(["true"])
    gone.wait()
    store.create(LEASE, json.dumps({"owner": f"{HOST}:{gone.pid}:x", "until": 1e12}).encode())
    with exclusive(store):  # its holder was a process of this host that is gone
        assert json.loads(store.read_tagged(LEASE)[0])["owner"].startswith(f"{HOST}:{os.getpid()}:")
