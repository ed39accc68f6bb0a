"""The shard lease in the bucket (moto's S3 server on loopback): a second host is refused, this
host's dead predecessor and an expired lease are taken over, a stolen lease is noticed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from trio_harvest.cli.commands import main
from trio_harvest.config import ConfigError
from trio_harvest.scale.lease import ShardLease, lease_key
from trio_harvest.scale.shards import Shard
from trio_harvest.storage.location import S3Options, parse_s3
from trio_harvest.storage.s3store import S3Store

from ..s3server import BUCKET, MotoS3, moto_s3

URL = f"s3://{BUCKET}/usdm"
SHARD = Shard(1, 4)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    with moto_s3(monkeypatch) as server:
        yield server


@pytest.fixture
def store(s3: MotoS3) -> S3Store:
    return S3Store(parse_s3(URL), S3Options(s3.endpoint, "us-east-1", allow_http=True))


def test_another_host_is_refused_until_the_lease_expires(store: S3Store) -> None:
    now = [1_000_000.0]
    a = ShardLease(store, SHARD, holder="host-a", clock=lambda: now[0], ttl=60)
    a.acquire()
    doc = json.loads(store.read_bytes(lease_key(SHARD)))
    assert doc == {"holder": "host-a", "pid": os.getpid(), "token": a.token,
                   "expires_ms": int((now[0] + 60) * 1000)}
    b = ShardLease(store, SHARD, holder="host-b", clock=lambda: now[0])
    with pytest.raises(ConfigError, match=r"shard 1/4 of s3://harvest-test/usdm is leased by "
                                          rf"host host-a until .* \(pid {os.getpid()}, .*\); "
                                          "stop it first"):
        b.acquire()
    assert ShardLease(store, Shard(2, 4), holder="host-b").acquire() is None  # another shard
    now[0] += 61  # host-a stopped renewing
    b.acquire()
    assert json.loads(store.read_bytes(lease_key(SHARD)))["holder"] == "host-b"
    assert not a.renew() and a.lost  # host-a notices it lost the lease
    a.release()  # and never deletes what it does not hold
    assert json.loads(store.read_bytes(lease_key(SHARD)))["holder"] == "host-b"
    assert b.renew()
    b.release()
    assert list(store.list()) == [lease_key(Shard(2, 4))]


def test_the_same_host_waits_unless_its_predecessor_is_proven_gone(store: S3Store) -> None:
    """Two containers sharing a hostname (or two local folders on one host) never meet in a
    flock: the same hostname proves nothing. Only the token the local shard lock recorded for
    the run before us (gone: we hold its lock now) lets the lease go at once."""
    dead = ShardLease(store, SHARD, holder="pod-1")
    dead.acquire()  # crashed without releasing
    with pytest.raises(ConfigError, match="is leased by host pod-1 until"):
        ShardLease(store, SHARD, holder="pod-1").acquire()
    with pytest.raises(ConfigError, match="is leased by host pod-1 until"):
        ShardLease(store, SHARD, holder="pod-1", predecessor="pod-1:1:someone-else").acquire()
    again = ShardLease(store, SHARD, holder="pod-1", predecessor=dead.token)
    again.acquire()
    assert again.e_tag is not None and again.renew()
    assert not dead.renew() and dead.lost


def test_run_refuses_a_shard_leased_by_another_host(
    tmp_path: Path, s3: MotoS3, store: S3Store, capsys: pytest.CaptureFixture[str],
) -> None:
    ShardLease(store, Shard(0, 2), holder="elsewhere").acquire()
    code = main(["run", "--sim", "--duration", "1", "--symbols", "BTCUSDT,ETHUSDT",
                 "--shard", "0/2", "--data-dir", URL, "--local-dir", str(tmp_path / "l"),
                 "--s3-endpoint", s3.endpoint, "--s3-allow-http"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "shard 0/2 of s3://harvest-test/usdm is leased by host elsewhere" in err[0]


def test_a_run_on_s3_holds_its_lease_and_releases_it(
    tmp_path: Path, s3: MotoS3, store: S3Store, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["run", "--sim", "--duration", "2", "--symbols", "BTCUSDT,ETHUSDT",
                 "--shard", "0/2", "--data-dir", URL, "--local-dir", str(tmp_path / "l"),
                 "--s3-endpoint", s3.endpoint, "--s3-allow-http", "--rotate-sec", "1",
                 "--min-file-rows", "1"])
    assert code == 0, capsys.readouterr().err
    keys = {p.as_posix() for p in store.list()}
    assert "_locks/shard-0-of-2.lease" not in keys  # released at the end
    assert any(k.startswith("venue=") and "kind=prices" in k for k in keys)
