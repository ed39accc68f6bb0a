from __future__ import annotations

from trio_harvest.storage.partitions import (
    deadletter_name,
    parse_deadletter_name,
    part_name,
    partition_dir,
    split_by_date,
    utc_date,
)

MIDNIGHT = 1_700_006_400_000  # 2023-11-15T00:00:00Z


def test_split_by_utc_date_keeps_order() -> None:
    rows = [(MIDNIGHT - 2, "a"), (MIDNIGHT + 1, "b"), (MIDNIGHT - 1, "c"), (MIDNIGHT, "d")]
    parts = split_by_date("prices", "BTCUSDT", rows)
    assert [p.date for p in parts] == ["2023-11-14", "2023-11-15"]
    assert [r[1] for r in parts[0].rows] == ["a", "c"]
    assert [r[1] for r in parts[1].rows] == ["b", "d"]
    assert parts[1].first_ts == MIDNIGHT and parts[1].last_ts == MIDNIGHT + 1


def test_names() -> None:
    assert utc_date(MIDNIGHT) == "2023-11-15"
    assert str(partition_dir("2023-11-15", "BTCUSDT", "prices")) == (
        "venue=binance-usdm/date=2023-11-15/symbol=BTCUSDT/kind=prices"
    )
    a, b = part_name(1, 2), part_name(1, 2)
    assert a.startswith("part-1-2-") and a.endswith(".parquet") and a != b
    name = deadletter_name("BTCUSDT", 1700, 42, "x1")
    assert name == "BTCUSDT_1700_42-x1.ndjson"
    assert parse_deadletter_name(name) == ("BTCUSDT", 1700, 42)
    assert parse_deadletter_name("BTCUSDT_1700_42.ndjson") == ("BTCUSDT", 1700, 42)
    assert parse_deadletter_name(".tmp-x-BTCUSDT_1_2.ndjson") is None
    assert parse_deadletter_name("notes.txt") is None
