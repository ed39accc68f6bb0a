"""The day's weight snapshot shared through the dataset: the first shard of a UTC day publishes
what it fetched, every later one (another host, a restart, a race loser) reads exactly that."""

from __future__ import annotations

import logging
from pathlib import Path, PurePath

import pytest

from trio_harvest.scale.shards import assignment
from trio_harvest.scale.snapshot import LocalShared, day_snapshot, grid_day, snapshot_key
from trio_harvest.scale.weights import decode

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "LINKUSDT"]
MORNING = {"BTCUSDT": 91, "ETHUSDT": 91, "SOLUSDT": 45, "XRPUSDT": 45, "DOGEUSDT": 32,
           "ADAUSDT": 23, "LINKUSDT": 23}
EVENING = MORNING | {"ETHUSDT": 64, "ADAUSDT": 32, "LINKUSDT": 16}  # the rolling 24 h moved on


def test_shards_starting_at_different_moments_of_a_day_assign_alike(tmp_path: Path) -> None:
    day = grid_day(1_765_000_000.0)
    first = day_snapshot(LocalShared(tmp_path), day, lambda: MORNING)
    calls: list[int] = []

    def evening() -> dict[str, int]:
        calls.append(1)
        return EVENING

    later = day_snapshot(LocalShared(tmp_path), day, evening)  # another host, hours later
    assert first == later == MORNING and not calls
    assert assignment(SYMBOLS, first, 3) == assignment(SYMBOLS, later, 3)
    assert assignment(SYMBOLS, MORNING, 3) != assignment(SYMBOLS, EVENING, 3)  # else moot
    assert decode((tmp_path / snapshot_key(day)).read_bytes()) == MORNING


def test_the_grid_is_the_utc_day() -> None:
    midnight = 1_765_065_600.0  # 2025-12-07 00:00:00 UTC
    assert grid_day(midnight - 1) == "2025-12-06" and grid_day(midnight) == "2025-12-07"
    assert grid_day(midnight + 86_399) == "2025-12-07"
    assert snapshot_key("2025-12-07") == PurePath("_shards", "weights-2025-12-07.json")


class RacingStore:
    """Another shard publishes between our read (absent) and our create."""

    def __init__(self, theirs: dict[str, int]) -> None:
        self.files: dict[PurePath, bytes] = {}
        self.theirs = theirs

    def read_bytes(self, rel: PurePath) -> bytes:
        if rel not in self.files:
            raise FileNotFoundError(rel)
        return self.files[rel]

    def create(self, rel: PurePath, data: bytes) -> object:
        import json

        self.files[rel] = json.dumps(self.theirs).encode()
        raise FileExistsError(rel)


def test_the_loser_of_a_race_takes_the_winners_snapshot() -> None:
    assert day_snapshot(RacingStore(MORNING), "2025-12-07", lambda: EVENING) == MORNING


def test_a_failed_fetch_publishes_nothing_and_a_later_shard_still_can(tmp_path: Path) -> None:
    assert day_snapshot(LocalShared(tmp_path), "2025-12-07", lambda: None) is None
    assert not (tmp_path / snapshot_key("2025-12-07")).exists()
    assert day_snapshot(LocalShared(tmp_path), "2025-12-07", lambda: MORNING) == MORNING


class BrokenStore:
    def read_bytes(self, rel: PurePath) -> bytes:
        raise FileNotFoundError(rel)

    def create(self, rel: PurePath, data: bytes) -> object:
        raise OSError("bucket unreachable")


def test_a_store_that_cannot_publish_keeps_the_fetch_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "trio_harvest.shards"):
        assert day_snapshot(BrokenStore(), "2025-12-07", lambda: MORNING) == MORNING
    assert len(caplog.records) == 1 and "cannot publish" in caplog.records[0].getMessage()


def test_on_s3_the_first_shard_of_the_day_publishes_and_the_next_host_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trio_harvest.storage.location import S3Options, parse_s3
    from trio_harvest.storage.s3store import S3Store

    from ..s3server import BUCKET, moto_s3

    with moto_s3(monkeypatch) as server:
        def host() -> S3Store:  # each host its own client on the same bucket
            return S3Store(parse_s3(f"s3://{BUCKET}/usdm"),
                           S3Options(server.endpoint, "us-east-1", allow_http=True))

        assert day_snapshot(host(), "2025-12-07", lambda: MORNING) == MORNING
        assert day_snapshot(host(), "2025-12-07", lambda: EVENING) == MORNING
        assert decode(host().read_bytes(snapshot_key("2025-12-07"))) == MORNING
        assert day_snapshot(host(), "2025-12-08", lambda: EVENING) == EVENING  # a new day
