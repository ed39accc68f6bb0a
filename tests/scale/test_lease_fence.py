"""One owner per shard on object storage, with real processes against moto's S3 server: a second
process on the same host with another local folder is refused with one line naming the holder;
an owner cut off from the bucket fences itself (writes nothing more to it, its rows go to the
local dead letter) before its lease can expire, a contender takes over only after the expiry,
and the old owner, back in touch, sees its lease gone and stops without writing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trio_harvest.config import ConfigError
from trio_harvest.scale.lease import ShardLease, lease_key
from trio_harvest.scale.shards import Shard
from trio_harvest.storage.location import S3Options, parse_s3
from trio_harvest.storage.partitions import DEADLETTER_DIR
from trio_harvest.storage.s3store import S3Store

from ..journal.crashkit import stop
from ..s3proxy import Proxy, fault_proxy
from ..s3server import BUCKET, ENV, MotoS3, moto_s3

URL = f"s3://{BUCKET}/leased"
SHARD = Shard(0, 2)
SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    with moto_s3(monkeypatch) as server:
        yield server


@pytest.fixture
def proxy(s3: MotoS3) -> Iterator[Proxy]:
    with fault_proxy(s3.endpoint) as p:
        yield p


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRIO_HARVEST_"))}
    env.update(ENV)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env.update(extra)
    return env


def _run(endpoint: str, local: Path, log: Path, *extra: str,
         env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "trio_harvest", "run", "--sim", "--symbols", SYMBOLS,
             "--shard", str(SHARD), "--data-dir", URL, "--local-dir", str(local),
             "--s3-endpoint", endpoint, "--s3-allow-http", "--rotate-sec", "0.5",
             "--min-file-rows", "1", "--no-auto-recover", "--log-level", "INFO", *extra],
            env=env or _env(), stdout=subprocess.DEVNULL, stderr=fh)


def _wait(what: str, ok: object, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(ok) and ok():
            return
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s:\n{log.read_text()}")


def test_a_second_process_with_another_local_dir_exits_2_naming_the_holder(
    tmp_path: Path, s3: MotoS3,
) -> None:
    store = S3Store(parse_s3(URL), S3Options(s3.endpoint, "us-east-1", allow_http=True))
    log = tmp_path / "first.log"
    first = _run(s3.endpoint, tmp_path / "one", log)
    try:
        _wait("the first process's lease", lambda: lease_key(SHARD) in set(store.list()), 30,
              first, log)
        doc = json.loads(store.read_bytes(lease_key(SHARD)))
        assert doc["pid"] == first.pid
        second = subprocess.run(
            [sys.executable, "-m", "trio_harvest", "run", "--sim", "--symbols", SYMBOLS,
             "--shard", str(SHARD), "--data-dir", URL, "--local-dir", str(tmp_path / "two"),
             "--s3-endpoint", s3.endpoint, "--s3-allow-http", "--duration", "2"],
            env=_env(), capture_output=True, text=True, timeout=60)
        assert first.poll() is None
    finally:
        stop(first, timeout=30)
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"trio_harvest: error: shard {SHARD} of {URL} is leased by host ")
    assert f"(pid {first.pid}," in lines[0] and " until 20" in lines[0]
    assert not (tmp_path / "two" / "_journal").exists() or not any(
        (tmp_path / "two" / "_journal").rglob("*.jnl"))


def test_an_owner_cut_off_fences_itself_and_a_contender_waits_for_the_expiry(
    tmp_path: Path, s3: MotoS3, proxy: Proxy,
) -> None:
    ttl = 4.0
    direct = S3Store(parse_s3(URL), S3Options(s3.endpoint, "us-east-1", allow_http=True))
    local, log = tmp_path / "owner", tmp_path / "owner.log"
    owner = _run(proxy.endpoint, local, log, env=_env(TRIO_HARVEST_LEASE_TTL=str(ttl)))
    try:
        _wait("rows in the bucket", lambda: len(proxy.puts("kind=prices")) >= 4, 30, owner, log)
        proxy.faults.arm("down")  # the owner's S3 is gone; the bucket is still there for others
        cut = time.time()
        held = json.loads(direct.read_bytes(lease_key(SHARD)))
        contender = ShardLease(direct, SHARD, holder="elsewhere", ttl=60)
        refused = 0
        while True:
            try:
                contender.acquire()
                break
            except ConfigError as exc:
                assert "is leased by host" in str(exc)
                refused += 1
                held = json.loads(direct.read_bytes(lease_key(SHARD)))
                time.sleep(0.2)
            assert time.time() < cut + 3 * ttl, "the lease never expired"
        taken = time.time()
        assert refused > 0 and taken * 1000 >= held["expires_ms"]  # only after the expiry
        proxy.faults.arm("")  # back in touch: the owner sees its lease gone and stops
        owner.wait(timeout=30)
    finally:
        stop(owner, timeout=30)
    text = log.read_text()
    assert "fenced: the lease of shard" in text  # its writes were refused, not sent
    assert "was taken by another process" in text
    # nothing of the owner's reached the bucket after its lease would have expired (writes
    # stop at half the lease; what was refused went to the local dead letter, recorded)
    late = [p for t, p, _s in proxy.puts("venue=") if t * 1000 >= held["expires_ms"]]
    assert late == []
    assert any((local / DEADLETTER_DIR).rglob("*.ndjson"))
    assert json.loads(direct.read_bytes(lease_key(SHARD)))["holder"] == "elsewhere"


def test_a_failed_renewal_is_not_a_success_and_the_fence_closes_at_half_the_lease(
    s3: MotoS3, proxy: Proxy, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trio_harvest.storage import fence

    now = [100.0]
    monkeypatch.setattr(fence, "clock", lambda: now[0])
    store = S3Store(parse_s3(URL), S3Options(proxy.endpoint, "us-east-1", allow_http=True))
    lease = ShardLease(store, SHARD, ttl=10, monotonic=lambda: now[0])
    lease.acquire()
    try:
        assert fence.refusal(URL) is None and lease.renew_every == 1.25
        proxy.faults.arm("down")
        now[0] += 4.9
        assert lease.renew() is False and not lease.lost  # the bucket did not answer
        assert fence.refusal(URL) is None  # still within half the lease of the last grant
        now[0] += 0.2
        why = fence.refusal(URL)
        assert why is not None and "could not be renewed for 5s" in why
        with pytest.raises(OSError, match="fenced"):  # refused here, never sent
            store.write_atomic(Path("venue=binance-usdm/date=2024-01-01/x.parquet"), lambda fh: None)
        assert proxy.puts("venue=") == []
        proxy.faults.arm("")
        assert lease.renew() is True and fence.refusal(URL) is None  # renewed in time: open
    finally:
        lease.release()
        fence.release(URL)
