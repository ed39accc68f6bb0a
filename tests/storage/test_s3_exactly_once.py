"""Exactly once on object storage, against moto's S3 server on loopback (no mock of our store):
a restart after SIGKILL replays each row once; a PUT the server stored but whose reply was lost
(503, or a timeout) is a success, never a second copy; the standard AWS variables work.
The shard lease and its fence are in tests/scale/test_lease_fence.py."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path, PurePath
from typing import Any

import polars as pl
import pytest

from trio_harvest.cli.commands import main
from trio_harvest.config import ConfigError, load_config
from trio_harvest.journal import format as fmt
from trio_harvest.journal.diskkeys import read_keys
from trio_harvest.storage import s3store
from trio_harvest.storage.location import S3Options, parse_s3
from trio_harvest.storage.partitions import partition_dir, utc_date
from trio_harvest.storage.s3store import S3Store

from ..s3proxy import Proxy, fault_proxy
from ..s3server import BUCKET, ENV, MotoS3, moto_s3

URL = f"s3://{BUCKET}/exact"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    with moto_s3(monkeypatch) as server:
        yield server


@pytest.fixture
def proxy(s3: MotoS3) -> Iterator[Proxy]:
    with fault_proxy(s3.endpoint) as p:
        yield p


def store_at(endpoint: str, url: str = URL) -> S3Store:
    return S3Store(parse_s3(url), S3Options(endpoint, "us-east-1", allow_http=True))


def bucket_frame(store: S3Store, kind: str) -> pl.DataFrame:
    frames = [pl.read_parquet(io.BytesIO(store.read_bytes(rel))).with_columns(
                  pl.lit(rel.parent.parent.name.removeprefix("symbol=")).alias("symbol"))
              for rel in store.list(None, ".parquet") if f"kind={kind}/" in rel.as_posix()]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def deadletter_files(local: Path) -> list[Path]:
    return sorted(p for p in (local / "deadletter").rglob("*.ndjson")
                  if "_rejected" not in p.parts)


# -- a PUT whose reply was lost -----------------------------------------------------------------


def test_a_put_stored_but_answered_503_is_a_success_and_one_object(proxy: Proxy) -> None:
    store = store_at(proxy.endpoint)
    rel = PurePath("date=2024-01-01/symbol=BTCUSDT/kind=prices/part-1-2-a.parquet")
    proxy.faults.arm("store_then_503", "kind=prices")
    assert store.write_atomic(rel, lambda fh: fh.write(b"rows")) == 4
    assert proxy.faults.injected == 1
    puts = proxy.puts("kind=prices")
    assert len(puts) >= 2 and puts[0][2] == 200  # stored; the retry met the object
    assert store.read_bytes(rel) == b"rows"
    assert list(store.list()) == [rel]
    # a stranger's object under the name (other bytes) is still refused, never overwritten
    with pytest.raises(FileExistsError, match="not overwritten"):
        store.write_atomic(rel, lambda fh: fh.write(b"ROWS"))
    assert store.read_bytes(rel) == b"rows"


def test_a_put_stored_whose_reply_times_out_is_a_success(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3store, "REQUEST_TIMEOUT", timedelta(seconds=1))
    monkeypatch.setattr(s3store, "RETRY_TIMEOUT", timedelta(seconds=2))
    store = store_at(proxy.endpoint)
    rel = PurePath("date=2024-01-01/symbol=BTCUSDT/kind=prices/part-3-4-b.parquet")
    proxy.faults.stall_s = 2.5
    proxy.faults.arm("store_then_stall", "kind=prices", times=5)  # every attempt stalls
    assert store.write_atomic(rel, lambda fh: fh.write(b"more rows")) == 9
    assert proxy.faults.injected >= 1
    assert store.read_bytes(rel) == b"more rows" and list(store.list()) == [rel]


@pytest.mark.parametrize("fault", ["store_then_503", "store_then_stall"])
def test_a_run_whose_puts_lose_their_replies_writes_each_row_once(
    tmp_path: Path, s3: MotoS3, proxy: Proxy, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, fault: str,
) -> None:
    monkeypatch.setattr(s3store, "REQUEST_TIMEOUT", timedelta(seconds=1))
    monkeypatch.setattr(s3store, "RETRY_TIMEOUT", timedelta(seconds=2))
    proxy.faults.stall_s = 1.5  # past the client's timeout: it gives up, then retries
    proxy.faults.arm(fault, "kind=prices", times=3)
    local = tmp_path / "local"
    code = main(["run", "--sim", "--duration", "4", "--symbols", "BTCUSDT,ETHUSDT",
                 "--data-dir", URL, "--local-dir", str(local), "--s3-endpoint",
                 proxy.endpoint, "--s3-allow-http", "--rotate-sec", "1", "--min-file-rows", "1",
                 "--no-auto-recover"])
    assert code == 0, capsys.readouterr().err
    assert proxy.faults.injected == 3
    prices = bucket_frame(store_at(s3.endpoint), "prices")
    assert prices.height > 50
    assert prices.height == prices.select("symbol", "agg_id").n_unique()
    assert deadletter_files(local) == []
    for symbol in ("BTCUSDT", "ETHUSDT"):  # every trade of the run, no hole
        ids = prices.filter(pl.col("symbol") == symbol)["agg_id"].sort().to_list()
        assert ids == list(range(ids[0], ids[-1] + 1))


# -- a restart after SIGKILL --------------------------------------------------------------------


def test_replay_keys_come_from_the_bucket_bounded_to_the_window(s3: MotoS3, tmp_path: Path) -> None:
    store = store_at(s3.endpoint)
    day = 86_400_000
    t1 = 1_700_000_000_000  # 2023-11-14
    for ts, ids in ((t1 - day, [1, 2]), (t1, [3, 4])):
        buf = io.BytesIO()
        pl.DataFrame({"ts_ms": [ts, ts], "agg_id": ids}).write_parquet(buf)
        rel = partition_dir(utc_date(ts), "BTCUSDT", "prices") / f"part-{ts}-{ts}-x.parquet"
        data = buf.getvalue()
        store.write_atomic(rel, lambda fh, data=data: fh.write(data))
    keys = read_keys(store, tmp_path / "dl", ("BTCUSDT",), t1 / 1000 - 60, t1 / 1000)
    assert keys.prices == {("BTCUSDT", 3), ("BTCUSDT", 4)}  # the window's date only
    assert keys.last_trade["BTCUSDT"] == (4, t1)
    assert keys.cover(utc_date(t1 - day), "BTCUSDT", "prices")  # a replayed older row
    assert ("BTCUSDT", 1) in keys.prices and ("BTCUSDT", 2) in keys.prices
    assert not keys.cover(utc_date(t1 - day), "BTCUSDT", "prices")  # read once
    # files written before the window began hold none of its rows: not read
    assert read_keys(store, tmp_path / "dl", ("BTCUSDT",), time.time() + 3600).prices == set()



def _env(s3: MotoS3) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRIO_HARVEST_"))}
    env.update(ENV)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


def _journaled(journal: Path, event: str, key: str) -> set[tuple[str, int]]:
    """(symbol, id) of the journaled frames of one event type (``aggTrade``: agg ids,
    ``depthUpdate``: book update ids)."""
    out: set[tuple[str, int]] = set()
    for seg in sorted(journal.rglob("*.jnl")):
        for rec in fmt.read_segment(seg):
            if rec.type != fmt.FRAME:
                continue
            with_stream: Any = json.loads(rec.payload)
            data = with_stream.get("data", with_stream) if isinstance(with_stream, dict) else {}
            if isinstance(data, dict) and data.get("e") == event:
                out.add((str(data["s"]), int(data[key])))
    return out


def test_a_restart_after_sigkill_on_s3_replays_each_row_once(tmp_path: Path, s3: MotoS3) -> None:
    local = tmp_path / "local"
    log = tmp_path / "run.log"
    common = ["--data-dir", URL, "--local-dir", str(local), "--s3-endpoint", s3.endpoint,
              "--s3-allow-http", "--symbols", "BTCUSDT,ETHUSDT", "--log-level", "INFO",
              "--no-auto-recover"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trio_harvest", "run", "--sim", "--rotate-sec", "1",
             "--min-file-rows", "1", *common], env=_env(s3), stdout=subprocess.DEVNULL, stderr=fh)
    store = store_at(s3.endpoint)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and bucket_frame(store, "prices").height < 200:
        assert proc.poll() is None, log.read_text()
        time.sleep(0.3)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    journaled = _journaled(local, "aggTrade", "a")
    journaled_books = _journaled(local, "depthUpdate", "u")
    before = bucket_frame(store, "prices")
    overlap = journaled & set(zip(before["symbol"].to_list(), before["agg_id"].to_list(),
                                  strict=True))
    assert journaled and overlap, "the kill left no journaled row that is also in the bucket"
    # the restart: no exchange reachable, so only the journal's replay writes
    closed = "127.0.0.1:9"
    restart = subprocess.run(
        [sys.executable, "-m", "trio_harvest", "run", "--ws-url", f"ws://{closed}",
         "--rest-url", f"http://{closed}", "--duration", "4", *common],
        env=_env(s3), capture_output=True, text=True, timeout=90)
    assert "rows already on disk skipped" in restart.stderr, restart.stderr
    prices = bucket_frame(store, "prices")
    keys = set(zip(prices["symbol"].to_list(), prices["agg_id"].to_list(), strict=True))
    assert prices.height == len(keys), "a trade is in the bucket twice"
    assert journaled <= keys, "a journaled trade is missing"
    books = bucket_frame(store, "orderbook")
    assert books.height > 0
    assert books.height == books.select("symbol", "source", "update_id").n_unique()
    book_keys = set(zip(books["symbol"].to_list(), books["update_id"].to_list(), strict=True))
    assert journaled_books and journaled_books <= book_keys, "a journaled book update is missing"


# -- the standard AWS variables ----------------------------------------------------------------


def test_aws_endpoint_and_allow_http_variables_work_like_in_every_s3_tool(
    tmp_path: Path, s3: MotoS3, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        monkeypatch.setenv(var, s3.endpoint)
        monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
        url = f"s3://{BUCKET}/{var.lower()}"
        code = main(["run", "--sim", "--duration", "1.5", "--symbols", "BTCUSDT",
                     "--data-dir", url, "--local-dir", str(tmp_path / var), "--rotate-sec", "1",
                     "--min-file-rows", "1"])
        assert code == 0, capsys.readouterr().err
        assert any("kind=prices" in p.as_posix() for p in store_at(s3.endpoint, url).list())
    # AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL, as in the AWS tools
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
    assert list(store_at("", f"s3://{BUCKET}/aws_endpoint_url_s3").list())
    # the region and the endpoint reach the settings (credentials are read by the client)
    cfg = load_config({"data_dir": URL}, {"AWS_REGION": "eu-west-1", "AWS_ALLOW_HTTP": "1",
                                          "AWS_ENDPOINT_URL": "http://minio:9000"})
    assert (cfg.s3_region, cfg.s3_endpoint, cfg.s3_allow_http) == (
        "eu-west-1", "http://minio:9000", True)
    cfg = load_config({"data_dir": URL}, {"AWS_ENDPOINT_URL": "http://minio:9000",
                                          "TRIO_HARVEST_S3_ENDPOINT": "https://s3.example"})
    assert cfg.s3_endpoint == "https://s3.example"  # our own variable wins


def test_a_plain_http_endpoint_without_permission_fails_with_one_line(
    tmp_path: Path, s3: MotoS3, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.delenv("AWS_ALLOW_HTTP", raising=False)
    code = main(["run", "--sim", "--duration", "1", "--data-dir", URL,
                 "--local-dir", str(tmp_path / "l")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "--s3-allow-http" in err[0] and "AWS_ALLOW_HTTP" in err[0] and "plain http" in err[0]
    assert "builder error" not in err[0]
    monkeypatch.setenv("AWS_ALLOW_HTTP", "false")
    with pytest.raises(ConfigError, match="AWS_ALLOW_HTTP"):
        S3Store(parse_s3(URL), S3Options())
    # a local data dir never looks at an S3 endpoint
    code = main(["run", "--sim", "--duration", "1", "--data-dir", str(tmp_path / "d")])
    assert code == 0, capsys.readouterr().err
