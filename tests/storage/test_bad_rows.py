"""One bad row never costs its neighbours. A batch that cannot be written
because of one row writes the rest and sets that row aside; recovery never stalls behind one
bad file; ``recover`` never prints a traceback for a bad value."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.cli.commands import main
from trio_harvest.kinds import PRICES, Row, schema_for
from trio_harvest.storage.backlog import DeadLetterFile, list_deadletter
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import split_by_date
from trio_harvest.storage.recover import FileOutcome, Recoverer
from trio_harvest.storage.store import LocalStore
from trio_harvest.storage.writer import Writer

from ..conftest import make_config
from ..dsrows import in_memory
from ..opsfakes import logging_restored

T0 = 1_700_006_400_000


def price_row(i: int, **over: object) -> Row:
    row = [T0 + i, T0 + i, T0 + i + 5, "BTCUSDT", i, 100.0, 0.5, i, i, False, None]
    names = schema_for(PRICES).names
    for k, v in over.items():
        row[names.index(k)] = v
    return tuple(row)


def parquet_rows(data: Path) -> list[tuple[object, ...]]:
    files = sorted(data.glob("venue=*/date=*/symbol=*/kind=prices/*.parquet"))
    return sorted(in_memory(pl.concat([pl.read_parquet(f, hive_partitioning=True)
                                       .select(schema_for(PRICES).names)
                                       for f in files])).rows()) if files else []


async def test_one_row_out_of_int64_no_longer_fails_its_batch(tmp_path: Path) -> None:
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    writer = Writer(LocalStore(data), LocalStore(dl), lambda kind: schema_for(kind, 5))
    rows = [price_row(i) for i in range(10)]
    rows[4] = price_row(4, first_id=2**63)  # what once failed a whole batch's Parquet write
    rows[7] = price_row(7, price=10**400)
    (part,) = split_by_date(PRICES, "BTCUSDT", rows)
    written = await writer.save(part, PublishGate())
    assert written.rows == 8
    assert parquet_rows(data) == sorted(r for i, r in enumerate(rows) if i not in (4, 7))
    (aside,) = (dl / "_rejected" / PRICES).iterdir()
    lines = [json.loads(x) for x in aside.read_text().splitlines()]
    assert [("first_id" in x["reason"], "price" in x["reason"]) for x in lines] == [
        (True, False), (False, True)]
    assert writer.rows_rejected == 2


def _write_deadletter(dl: Path, name: str, rows: list[dict[str, object]]) -> None:
    (dl / PRICES).mkdir(parents=True, exist_ok=True)
    (dl / PRICES / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _records(rows: list[Row]) -> list[dict[str, object]]:
    names = schema_for(PRICES).names
    return [dict(zip(names, r, strict=True)) for r in rows]


async def test_recovery_sets_aside_values_no_column_holds(tmp_path: Path) -> None:
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    good = [price_row(i) for i in range(5)]
    bad = [price_row(5, first_id=2**63), price_row(6, qty=10**400)]
    _write_deadletter(dl, "BTCUSDT_1700006400000_7.ndjson", _records(good + bad))
    report = await Recoverer(data, dl).recover_all()
    (out,) = report.files
    assert not out.error and out.rows == 5 and out.rejected == 2
    assert parquet_rows(data) == sorted(good)
    assert list_deadletter(dl) == []


def test_cli_recover_prints_no_traceback_for_a_huge_number(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    data.mkdir()
    _write_deadletter(dl, "BTCUSDT_1700006400000_2.ndjson",
                      _records([price_row(0), price_row(1, price=10**400)]))
    with logging_restored():
        assert main(["recover", "--data-dir", str(data)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "1 bad line set aside" in captured.out


async def test_automatic_recovery_never_stalls_behind_one_bad_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path, auto_recover_after=1.0, auto_recover_batch=1)
    h = Harvester(cfg)
    for k in range(3):
        rows = [price_row(10 * k + i) for i in range(5)]
        await h.writer.dead_letter(PRICES, "BTCUSDT", rows, PublishGate())
        await trio.sleep(0.002)  # distinct names, in order
    files = list_deadletter(cfg.deadletter_path)
    poisoned = files[0].name  # first in line: it once blocked every round for good
    real = Recoverer.recover_batch

    async def recover_batch(self: Recoverer, batch: list[DeadLetterFile]) -> list[FileOutcome]:
        if any(f.name == poisoned for f in batch):  # a batch with it fails, every time
            return [FileOutcome(f"{f.kind}/{f.name}", error="ComputeError: cannot write")
                    for f in batch]
        return await real(self, batch)

    monkeypatch.setattr(Recoverer, "recover_batch", recover_batch)
    auto = h.ops.autorecovery
    for _ in range(4):
        await auto.round(trio.current_time())
    assert [f.name for f in list_deadletter(cfg.deadletter_path)] == [poisoned]
    assert auto.stats.files == 2
