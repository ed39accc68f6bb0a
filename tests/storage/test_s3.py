"""Object storage against a real S3 API (moto's server on loopback, started by the fixtures):
the store's seam, a run that writes there and reads back with Polars, a server that goes away
mid-run (dead letter, health 503) and comes back (automatic recovery empties the dead letter)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

import httpx
import polars as pl
import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.cli.commands import main
from trio_harvest.config import ConfigError
from trio_harvest.repair.resume import last_written
from trio_harvest.storage.backends import open_store
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.location import S3Options, parse_s3
from trio_harvest.storage.partitions import DEADLETTER_DIR
from trio_harvest.storage.s3store import S3Store
from trio_harvest.storage.store import Abandoned, LocalStore

from ..conftest import make_config
from ..opsfakes import FakeExchange, wait_for
from ..ports import free_port
from ..s3server import BUCKET, MotoS3, moto_s3

URL = f"s3://{BUCKET}/market"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    with moto_s3(monkeypatch) as server:
        yield server


def store_of(s3: MotoS3, url: str = URL) -> S3Store:
    return S3Store(parse_s3(url), S3Options(s3.endpoint, "us-east-1", allow_http=True))


def s3_settings(s3: MotoS3, tmp_path: Path) -> dict[str, Any]:
    return dict(data_dir=Path(URL), local_dir=tmp_path / "local", s3_endpoint=s3.endpoint,
                s3_allow_http=True, s3_region="us-east-1")


def test_open_store_picks_the_backend_by_location(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path), LocalStore)
    store = open_store(URL, S3Options("http://127.0.0.1:1", "us-east-1", True))
    assert isinstance(store, S3Store) and store.location == URL


def test_put_list_read_delete_and_an_overwrite_is_refused(s3: MotoS3) -> None:
    store = store_of(s3)
    rel = PurePath("date=2024-01-01/symbol=BTCUSDT/kind=prices/part-1-2-a.parquet")
    assert store.write_atomic(rel, lambda fh: fh.write(b"first")) == 5
    with pytest.raises(FileExistsError, match="not overwritten"):
        store.write_atomic(rel, lambda fh: fh.write(b"second"))
    assert store.read_bytes(rel) == b"first"  # the first object is untouched
    assert list(store.list(PurePath("date=2024-01-01"), ".parquet")) == [rel]
    assert list(store.list(None, ".ndjson")) == []
    assert store.children() == ("date=2024-01-01",)
    assert list(store.temp_files()) == [] and store.remove_stale_temps() == 0
    store.delete(rel)
    store.delete(rel)  # idempotent, like the local store
    assert list(store.list()) == []
    with pytest.raises(FileNotFoundError):
        store.read_bytes(rel)


def test_a_write_abandoned_by_its_waiter_is_taken_back(s3: MotoS3) -> None:
    store = store_of(s3)
    gate = PublishGate()
    rel = PurePath("x/part.parquet")

    def produce(fh: Any) -> None:
        fh.write(b"rows")
        assert gate.abandon()  # the waiter timed out while the PUT was on its way

    with pytest.raises(Abandoned):
        store.write_atomic(rel, produce, gate)
    assert list(store.list()) == []


def test_an_unreachable_server_is_an_oserror_in_seconds(s3: MotoS3) -> None:
    store = store_of(s3)
    s3.stop()
    with pytest.raises(OSError, match=r"PUT s3://harvest-test/market/a\.parquet"):
        store.write_atomic(PurePath("a.parquet"), lambda fh: fh.write(b"x"))


def fake_harvester(tmp_path: Path, s3: MotoS3, **overrides: Any) -> tuple[Harvester, FakeExchange]:
    exchange = FakeExchange(symbols=("BTCUSDT", "ETHUSDT"), interval=0.01)
    settings: dict[str, Any] = dict(symbols=("BTCUSDT", "ETHUSDT"), depth_levels=5,
                                    rotate_sec=0.2, min_file_rows=1, health_interval=0.1,
                                    write_timeout=5.0, **s3_settings(s3, tmp_path))
    settings.update(overrides)
    return Harvester(make_config(tmp_path, **settings), connect=exchange.connect), exchange


def read_prices(s3: MotoS3) -> pl.DataFrame:
    opts = S3Options(s3.endpoint, "us-east-1", True).polars()
    return pl.scan_parquet(f"{URL}/venue=*/date=*/symbol=*/kind=prices/*.parquet",
                           storage_options=opts, hive_partitioning=True).collect()


async def test_a_run_writes_to_s3_and_polars_reads_it_back(tmp_path: Path, s3: MotoS3) -> None:
    h, _exchange = fake_harvester(tmp_path, s3)
    assert h.config.data_url == URL and h.config.deadletter_path == tmp_path / "local" / "_deadletter"
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await wait_for(lambda: h.rotation.stats.kind("prices").files_written >= 3)
        h.request_stop("test over")
    written = h.rotation.stats.kind("prices").rows_written
    prices = read_prices(s3)
    assert set(prices["symbol"].unique()) == {"BTCUSDT", "ETHUSDT"}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        ids = prices.filter(pl.col("symbol") == symbol)["agg_id"].sort()
        assert ids.n_unique() == len(ids) and ids[-1] - ids[0] + 1 == len(ids)
    assert written == prices.height
    assert not (tmp_path / "local" / DEADLETTER_DIR).exists() or not any(
        (tmp_path / "local" / DEADLETTER_DIR).rglob("*.ndjson"))
    # nothing of the dataset is on local disk; resume reads where each symbol left off from S3
    assert not list((tmp_path / "local").rglob("*.parquet"))
    seeds = last_written(h.data_store, h.config.deadletter_path, ("BTCUSDT", "ETHUSDT", "XRPUSDT"))
    assert set(seeds) == {"BTCUSDT", "ETHUSDT"}
    for symbol, (agg_id, _ts) in seeds.items():
        assert agg_id == prices.filter(pl.col("symbol") == symbol)["agg_id"].max()


async def test_server_down_dead_letters_and_503_then_recovery_empties_it(
    tmp_path: Path, s3: MotoS3,
) -> None:
    h, _exchange = fake_harvester(tmp_path, s3, metrics_port=free_port(), auto_recover=True,
                                  auto_recover_after=0.5, auto_recover_batch=50)
    dl = h.config.deadletter_path
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.ops.port}", timeout=5) as c:
            await wait_for(lambda: h.rotation.stats.kind("prices").files_written >= 2)
            await trio.to_thread.run_sync(s3.stop)
            await wait_for(lambda: h.rotation.stats.kind("prices").deadletter_files >= 2)
            assert any(dl.rglob("*.ndjson"))  # on local disk
            await wait_for(lambda: h.ops.sampler.backlog.files > 0)
            r = await c.get("/healthz")
            assert r.status_code == 503
            assert any(p["code"] == "writes_failing" for p in r.json()["problems"])
            await trio.to_thread.run_sync(s3.restart)
            await wait_for(lambda: not any(dl.glob("*/*.ndjson")), seconds=30)
            await wait_for(lambda: h.ops.sampler.backlog.files == 0, seconds=10)
        h.request_stop("test over")
    assert not any(dl.glob("*/*.ndjson"))
    assert h.rotation.stats.kind("prices").rows_lost == 0
    prices = read_prices(s3)
    for symbol in ("BTCUSDT", "ETHUSDT"):  # every trade exactly once, recovered ones included
        ids = prices.filter(pl.col("symbol") == symbol)["agg_id"].sort()
        assert ids.n_unique() == len(ids) and ids[-1] - ids[0] + 1 == len(ids)


def test_run_with_an_unreachable_bucket_is_one_line_and_exit_2(
    tmp_path: Path, s3: MotoS3, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["run", "--sim", "--duration", "1", "--data-dir", "s3://no-such-bucket/x",
                 "--local-dir", str(tmp_path / "l"), "--s3-endpoint", s3.endpoint,
                 "--s3-allow-http"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("trio_harvest: error: data dir s3://no-such-bucket/x: cannot reach")


def test_config_errors_of_object_storage_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plain http"):
        make_config(tmp_path, data_dir=Path(URL), s3_endpoint="http://127.0.0.1:9000")
    with pytest.raises(ConfigError, match="dead letter stays on local disk"):
        make_config(tmp_path, data_dir=Path(URL), deadletter_dir=Path("s3://b-x/dl"))
    with pytest.raises(ConfigError, match="not a valid bucket name"):
        make_config(tmp_path, data_dir=Path("s3://A/x"))
    cfg = make_config(tmp_path, data_dir=Path(URL))
    assert cfg.data_dir == Path("trio_harvest-local", BUCKET, "market")  # documented default


def test_polars_reads_bytes_written_through_the_store(s3: MotoS3) -> None:
    store = store_of(s3)
    buf = io.BytesIO()
    pl.DataFrame({"a": [1, 2]}).write_parquet(buf)
    store.write_atomic(PurePath("t/x.parquet"), lambda fh: fh.write(buf.getvalue()))
    df = pl.read_parquet(f"{URL}/t/x.parquet",
                         storage_options=S3Options(s3.endpoint, "us-east-1", True).polars())
    assert df["a"].to_list() == [1, 2]


def test_recover_and_inspect_work_on_s3_from_the_command_line(
    tmp_path: Path, s3: MotoS3, capsys: pytest.CaptureFixture[str],
) -> None:
    h, _exchange = fake_harvester(tmp_path, s3, auto_recover=False)
    s3.stop()  # every write fails: the whole run lands in the local dead letter

    async def harvest() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(h.run)
            await wait_for(lambda: h.rotation.stats.kind("prices").deadletter_files >= 2)
            h.request_stop("test over")

    trio.run(harvest)
    dead = h.rotation.stats.kind("prices").rows_deadlettered
    assert dead > 0 and h.rotation.stats.kind("prices").rows_lost == 0
    s3.restart()
    flags = ["--data-dir", URL, "--deadletter-dir", str(h.config.deadletter_path),
             "--s3-endpoint", s3.endpoint, "--s3-allow-http", "--json"]
    capsys.readouterr()
    assert main(["recover", *flags]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_recovered"] > 0 and not any(h.config.deadletter_path.glob("*/*.ndjson"))
    assert read_prices(s3).height == dead
    assert main(["recover", *flags]) == 0  # again: nothing left, nothing written twice
    capsys.readouterr()
    assert read_prices(s3).height == dead
    assert main(["inspect", *flags]) == 0
    inv = json.loads(capsys.readouterr().out)
    assert inv["data_dir"] == URL and inv["deadletter"]["files"] == 0
    assert sum(p["rows"] for p in inv["partitions"] if p["kind"] == "prices") == dead
    assert all(c["holes"] == 0 and c["duplicates"] == 0 for c in inv["prices_continuity"].values())


def test_object_storage_settings_from_toml_and_environment(tmp_path: Path) -> None:
    from trio_harvest.config import load_config

    toml = tmp_path / "h.toml"
    toml.write_text(f'data_dir = "{URL}"\nlocal_dir = "{tmp_path / "l"}"\n'
                    's3_endpoint = "http://127.0.0.1:9000"\ns3_allow_http = true\n')
    cfg = load_config(config_file=toml)
    assert cfg.data_url == URL and cfg.data_dir == tmp_path / "l" and cfg.s3_allow_http
    env = {"TRIO_HARVEST_DATA_DIR": URL, "TRIO_HARVEST_S3_REGION": "eu-west-1",
           "TRIO_HARVEST_WORKERS": "3"}
    cfg = load_config(env=env)
    assert cfg.data_url == URL and cfg.s3_region == "eu-west-1" and cfg.workers == 3
    assert load_config(cli={"shard": "1/4"}).shard == "1/4"
