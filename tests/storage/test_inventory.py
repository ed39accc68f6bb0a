"""``inspect``: partitions, agg_id holes and duplicates, dead letter, temp leftovers."""

from __future__ import annotations

import json
from pathlib import Path, PurePath

import pytest
import trio

from trio_harvest.cli.commands import main
from trio_harvest.config import ConfigError
from trio_harvest.kinds import schema_for
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.inventory import inspect_dataset
from trio_harvest.storage.partitions import Partition, split_by_date
from trio_harvest.storage.store import LocalStore
from trio_harvest.storage.writer import Writer

from ..opsfakes import logging_restored

MIDNIGHT = 1_700_006_400_000  # 2023-11-15T00:00:00Z


def trade(i: int, ts: int, symbol: str = "BTCUSDT") -> tuple[object, ...]:
    return (ts, ts, ts, symbol, i, 100.0, 1.0, i, i, False)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return trio.run(_write_dataset, tmp_path / "data")


async def _write_dataset(data: Path) -> Path:
    w = Writer(LocalStore(data), LocalStore(data / "deadletter"), lambda k: schema_for(k, 5))
    batches = [
        [trade(i, MIDNIGHT - 100_000 + i * 1000) for i in range(0, 100)],  # the 14th
        [trade(i, MIDNIGHT - 100_000 + i * 1000) for i in range(100, 200)],  # the 15th
        [trade(i, MIDNIGHT + i * 1000) for i in range(205, 300)],  # 200..204 missing
        [trade(50, MIDNIGHT - 50_000)],  # agg_id 50 again
    ]
    for rows in batches:
        for part in split_by_date("prices", "BTCUSDT", rows):
            await w.save(part, PublishGate())
    book = [(MIDNIGHT + i, MIDNIGHT + i, MIDNIGHT + i, "ETHUSDT", "bookTicker", i, i, -1,
             1.0, 2.0, 1.1, 3.0) + (None,) * 16 for i in range(10)]
    await w.save(Partition("orderbook", "ETHUSDT", "2023-11-15", book), PublishGate())
    await w.dead_letter("prices", "ETHUSDT", [trade(i, MIDNIGHT, "ETHUSDT") for i in range(7)],
                        PublishGate())
    rejected = data / "deadletter" / "_rejected" / "prices" / "ETHUSDT_1_2.ndjson"
    rejected.parent.mkdir(parents=True)
    rejected.write_text('{"line": 1}\n{"line": 2}\n')
    part_dir = data / "venue=binance-usdm" / "date=2023-11-15" / "symbol=BTCUSDT" / "kind=prices"
    (part_dir / ".tmp-otherhost-1-ab-part-1-2-x.parquet").write_bytes(b"half a file")
    (part_dir / "part-1-2-broken.parquet").write_bytes(b"not parquet at all")
    return data


def test_inventory_reports_partitions_holes_duplicates_and_leftovers(dataset: Path) -> None:
    doc = inspect_dataset(dataset).as_dict()
    parts = {(p["date"], p["symbol"], p["kind"]): p for p in doc["partitions"]}
    assert set(parts) == {("2023-11-14", "BTCUSDT", "prices"), ("2023-11-15", "BTCUSDT", "prices"),
                          ("2023-11-15", "ETHUSDT", "orderbook")}
    day1 = parts[("2023-11-14", "BTCUSDT", "prices")]
    assert (day1["files"], day1["rows"]) == (2, 101)
    assert day1["first_ts_ms"] == MIDNIGHT - 100_000 and day1["last_ts_ms"] == MIDNIGHT - 1000
    assert day1["first_ts"] == "2023-11-14T23:58:20.000Z" and day1["bytes"] > 0
    assert (day1["agg_id_holes"], day1["agg_id_missing"], day1["agg_id_duplicates"]) == (0, 0, 1)
    day2 = parts[("2023-11-15", "BTCUSDT", "prices")]
    assert (day2["files"], day2["rows"]) == (2, 195)
    assert (day2["agg_id_holes"], day2["agg_id_missing"]) == (1, 5)
    book = parts[("2023-11-15", "ETHUSDT", "orderbook")]
    assert book["rows"] == 10 and "agg_id_holes" not in book
    c = doc["prices_continuity"]["BTCUSDT"]
    assert c == {"first_agg_id": 0, "last_agg_id": 299, "rows": 296, "holes": 1, "missing": 5,
                 "duplicates": 1, "hole_ranges": [[200, 204]]}
    assert doc["deadletter"]["files"] == 1 and doc["deadletter"]["rows"] == 7
    assert doc["deadletter"]["by_kind"] == {"prices": {"files": 1, "rows": 7}}
    assert doc["deadletter"]["rejected_files"] == 1 and doc["deadletter"]["rejected_lines"] == 2
    assert doc["temp_files"]["count"] == 1
    assert doc["temp_files"]["paths"][0].endswith(".tmp-otherhost-1-ab-part-1-2-x.parquet")
    assert [u["path"] for u in doc["unreadable"]] == [
        str(PurePath("venue=binance-usdm/date=2023-11-15/symbol=BTCUSDT/kind=prices/part-1-2-broken.parquet"))]
    assert doc["totals"]["rows"] == 101 + 195 + 10 and doc["totals"]["agg_id_holes"] == 1


def test_cli_inspect_json_and_table(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with logging_restored():
        assert main(["inspect", "--data-dir", str(dataset), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["data_dir", "deadletter_dir", "partitions", "prices_continuity",
                         "deadletter", "temp_files", "unreadable", "totals", "gaps"]
    assert doc == json.loads(json.dumps(inspect_dataset(dataset).as_dict()))
    with logging_restored():
        assert main(["inspect", "--data-dir", str(dataset), "--partitions"]) == 0
    out = capsys.readouterr().out
    assert "date        symbol       kind       files" in out
    assert "prices BTCUSDT: agg_id 0..299, 296 rows, 1 hole (5 missing), 1 duplicate; " \
           "missing 200..204" in out
    assert "dead letter: 1 file, 7 rows (prices 1 file/7 rows); rejected: 1 file, 2 lines" in out
    assert "temp leftovers: 1" in out and "unreadable files: 1" in out


def test_cli_inspect_missing_data_dir_exits_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with logging_restored():
        assert main(["inspect", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_empty_dataset(tmp_path: Path) -> None:
    inv = inspect_dataset(tmp_path)
    assert inv.partitions == [] and inv.continuity == {} and inv.deadletter["files"] == 0
    assert "(no partitions)" in inv.render()


def test_a_file_instead_of_a_directory_is_a_one_line_mistake(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    regular = tmp_path / "regular"
    regular.write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        inspect_dataset(regular)
    with pytest.raises(ConfigError, match=r"dead-letter dir .*regular: is not a directory"):
        inspect_dataset(tmp_path, regular)
    with logging_restored():
        assert main(["inspect", "--data-dir", str(tmp_path), "--deadletter-dir", str(regular)]) == 2
    err = capsys.readouterr().err
    assert err == f"trio_harvest: error: --deadletter-dir {regular}: is not a directory\n"


def test_first_version_union_files_are_inspected_with_todays(tmp_path: Path) -> None:
    """Files are per kind now; a dataset written by the first version (every file
    widened to the union schema) is still inventoried, mixed with new files, and a compacted
    file's sources are not counted twice."""
    from ..dsrows import rows, write_new
    from ..legacy import write_legacy

    data = tmp_path / "data"
    prices, gaps = schema_for("prices"), schema_for("gaps")
    write_legacy(data, "2023-11-15", "BTCUSDT", prices, [trade(i, MIDNIGHT + i) for i in range(5)],
                 "part-1-5-old.parquet")
    write_new(data, "2023-11-15", "BTCUSDT", prices,
              [trade(i, MIDNIGHT + i) for i in range(5, 8)], "part-6-8-new.parquet", venue=None)
    write_legacy(data, "2023-11-15", "BTCUSDT", gaps, rows(gaps, MIDNIGHT, 2, "BTCUSDT"))
    write_new(data, "2023-11-15", "BTCUSDT", gaps, rows(gaps, MIDNIGHT + 5, 1, "BTCUSDT"),
              "part-g.parquet", venue=None)
    inv = inspect_dataset(data)
    assert not inv.unreadable
    (p_gaps,) = [p for p in inv.partitions if p.kind == "gaps"]
    (p_prices,) = [p for p in inv.partitions if p.kind == "prices"]
    assert (p_prices.files, p_prices.rows, p_prices.agg_id_holes) == (2, 8, 0)
    assert p_prices.first_ts_ms == MIDNIGHT and p_prices.last_ts_ms == MIDNIGHT + 7
    assert p_gaps.rows == 3 and inv.gaps.rows == 3
    assert inv.gaps.by_reason == {"BTCUSDT": {"reason0": 2, "reason1": 1}}
    # the moment between a compaction's publish and its delete: its sources do not count
    import json

    from trio_harvest.storage.fileschema import SOURCES_KEY, compacted_name

    sources = ["part-1-5-old.parquet", "part-6-8-new.parquet"]
    write_new(data, "2023-11-15", "BTCUSDT", prices, [trade(i, MIDNIGHT + i) for i in range(8)],
              compacted_name(MIDNIGHT, MIDNIGHT + 7, sources), {SOURCES_KEY: json.dumps(sources)}, venue=None)
    (p_prices,) = [p for p in inspect_dataset(data).partitions if p.kind == "prices"]
    assert (p_prices.files, p_prices.rows, p_prices.agg_id_duplicates) == (1, 8, 0)


def test_cli_inspect_summary_fits_a_screen_and_filters(
        dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with logging_restored():
        assert main(["inspect", "--data-dir", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) <= 25
    assert "venue binance-usdm: " in out and "  prices " in out
    assert "dead letter: 1 file, 7 rows; quarantine (rejected lines): 1 file, 2 lines" in out
    assert "unreadable files: 1" in out
    with logging_restored():
        assert main(["inspect", "--data-dir", str(dataset), "--json", "--summary-only"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["venue", "kinds", "totals", "gaps", "worst_symbols", "deadletter",
                         "quarantine", "unreadable_files"]
    assert doc["deadletter"] == {"files": 1, "rows": 7}
    full = inspect_dataset(dataset).as_dict()
    with logging_restored():
        assert main(["inspect", "--data-dir", str(dataset), "--json", "--symbols", "btcusdt",
                     "--start", "2023-11-15", "--end", "2023-11-16"]) == 0
    some = json.loads(capsys.readouterr().out)
    assert some["partitions"] and all(p["symbol"] == "BTCUSDT" and p["date"] == "2023-11-15"
                                      for p in some["partitions"])
    assert len(some["partitions"]) <= len(full["partitions"])
    with logging_restored():
        assert main(["inspect", "--data-dir", str(dataset), "--symbols", "XRPUSDT"]) == 2
    assert "symbol 'XRPUSDT' is not in the dataset" in capsys.readouterr().err
