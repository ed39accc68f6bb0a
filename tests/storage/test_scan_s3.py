"""`scan` reads an s3:// dataset with the settings `run` uses (TRIO_HARVEST_S3_* and the AWS
variables), counts no row twice across a compaction, and says what is wrong in one line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import PurePath

import pytest

from trio_harvest.dataset import DatasetError, scan
from trio_harvest.kinds import PRICES, schema_for
from trio_harvest.storage.encoding import write_parquet
from trio_harvest.storage.fileschema import SOURCES_KEY, compacted_name
from trio_harvest.storage.location import S3Options

from ..dsrows import rows
from ..s3server import BUCKET, MotoS3, moto_s3
from .test_s3 import URL, store_of

DAY1 = 1_700_006_400_000  # 2023-11-15T00:00:00Z


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    with moto_s3(monkeypatch) as server:
        yield server


def put(s3: MotoS3, symbol: str, name: str, n: int, meta: dict[str, str] | None = None) -> None:
    buf = io.BytesIO()
    write_parquet(buf, schema_for(PRICES), rows(schema_for(PRICES), DAY1, n, symbol), meta)
    rel = PurePath(f"date=2023-11-15/symbol={symbol}/kind=prices/{name}")
    store_of(s3).write_atomic(rel, lambda fh: fh.write(buf.getvalue()))


def test_scan_reads_a_bucket_with_the_run_settings(s3: MotoS3,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    put(s3, "BTCUSDT", "part-1-3-a.parquet", 3)
    put(s3, "ETHUSDT", "part-1-2-b.parquet", 2)
    with pytest.raises(DatasetError, match="plain http"):  # no settings yet: refused, one line
        monkeypatch.setenv("TRIO_HARVEST_S3_ENDPOINT", s3.endpoint)
        scan(URL, PRICES)
    monkeypatch.setenv("TRIO_HARVEST_S3_ALLOW_HTTP", "true")
    monkeypatch.setenv("TRIO_HARVEST_S3_REGION", "us-east-1")
    assert scan(URL, PRICES).collect().height == 5
    got = scan(URL, PRICES, symbols="ethusdt").collect()
    assert got.height == 2 and set(got["symbol"]) == {"ETHUSDT"}
    # a compaction's merged object hides its sources, even before they are deleted
    put(s3, "BTCUSDT", compacted_name(1, 3, ["part-1-3-a.parquet"]), 3,
        {SOURCES_KEY: json.dumps(["part-1-3-a.parquet"])})
    assert scan(URL, PRICES, symbols=["BTCUSDT"]).collect().height == 3
    with pytest.raises(DatasetError, match=r"symbol 'BTCUSD' .*did you mean 'BTCUSDT'"):
        scan(URL, PRICES, symbols="BTCUSD")
    with pytest.raises(DatasetError, match=r"dataset root s3://.*/nothing: holds no partition$"):
        scan(f"s3://{BUCKET}/nothing", PRICES)
    explicit = S3Options(s3.endpoint, "us-east-1", allow_http=True)
    monkeypatch.delenv("TRIO_HARVEST_S3_ENDPOINT")
    assert scan(URL, PRICES, s3=explicit).collect().height == 5


def test_an_unreachable_bucket_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    opts = S3Options("http://127.0.0.1:1", "us-east-1", allow_http=True)
    with pytest.raises(DatasetError, match=r"^dataset root s3://\S+: cannot list it") as info:
        scan(URL, PRICES, s3=opts)
    assert "\n" not in str(info.value)
