"""Dead-letter recovery against real dead-letter files, produced by real writes that failed on a
data directory the test made unwritable (``chattr +i`` as root; otherwise a *file* where the
data directory must be, which fails the write's ``mkdir`` just as really)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import trio

from trio_harvest.cli.commands import main
from trio_harvest.kinds import DEFAULT_WATERMARKS, ORDERBOOK, PRICES, Row, schema_for
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.pipeline.rotation import Rotation
from trio_harvest.storage.backlog import list_deadletter
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import Partition
from trio_harvest.storage.recover import Recoverer
from trio_harvest.storage.store import LocalStore
from trio_harvest.storage.writer import Writer

from ..dsrows import in_memory
from ..opsfakes import logging_restored, unwritable

MIDNIGHT = 1_700_006_400_000  # 2023-11-15T00:00:00Z


def price_row(i: int, ts: int, symbol: str) -> Row:
    return (ts, ts, ts + 5, symbol, i, 100.0 + i / 100, 0.5, i, i, i % 2 == 0, None)


def book_row(i: int, ts: int, symbol: str) -> Row:
    levels: list[Any] = []
    for lvl in range(5):
        levels += [99.9 - lvl / 10, 1.0 + lvl, 100.1 + lvl / 10, 2.0 + lvl]
    return (ts, ts, ts + 3, symbol, "depth5", i, i, i - 1, *levels)


ROWS: dict[tuple[str, str], list[Row]] = {
    # crosses UTC midnight: one dead-letter file, two partitions
    (PRICES, "BTCUSDT"): [price_row(i, MIDNIGHT - 150_000 + i * 1000, "BTCUSDT")
                          for i in range(300)],
    (PRICES, "ETHUSDT"): [price_row(i, MIDNIGHT + i * 10, "ETHUSDT") for i in range(120)],
    (ORDERBOOK, "BTCUSDT"): [book_row(i, MIDNIGHT + i * 100, "BTCUSDT") for i in range(80)],
}


async def _fail_writes_into_deadletter(data: Path, dl: Path) -> None:
    """Real rotation, real writer, real failing disk: each batch's write fails and the batch goes
    to the dead letter. The last batch (across midnight) is dumped whole by ``abort()``, the
    shutdown path, so one dead-letter file spans two UTC dates."""
    writer = Writer(LocalStore(data), LocalStore(dl), lambda kind: schema_for(kind, 5))
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    rotation = Rotation(lanes, writer.save, writer.dead_letter, rotate_sec=3600, write_timeout=5,
                        deadletter_timeout=5, save_concurrency=2)
    lanes.set_wake(rotation.wake)
    btc = ROWS[(PRICES, "BTCUSDT")]
    batches = [((PRICES, "BTCUSDT"), btc[:100])]
    for key in ((PRICES, "ETHUSDT"), (ORDERBOOK, "BTCUSDT")):
        rows = ROWS[key]
        batches += [(key, rows[: len(rows) // 2]), (key, rows[len(rows) // 2:])]
    async with trio.open_nursery() as nursery:
        await nursery.start(rotation.run)
        for (kind, symbol), rows in batches:
            lane = lanes.get(kind, symbol)
            before = rotation.stats.kind(kind).deadletter_files
            for row in rows:
                await lane.put(row)
            rotation.wake(lane)
            with trio.fail_after(10):
                while rotation.stats.kind(kind).deadletter_files == before:
                    await trio.sleep(0.01)
        for row in btc[100:]:
            await lanes.get(PRICES, "BTCUSDT").put(row)
        await rotation.abort()
        nursery.cancel_scope.cancel()
    assert sum(k.write_failures for k in rotation.stats.kinds.values()) == 5
    assert sum(k.rows_lost for k in rotation.stats.kinds.values()) == 0


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Dead-letter files from real failed writes, made once and copied for each test."""
    root = tmp_path_factory.mktemp("deadletter-template")
    with unwritable(root / "data") as how:
        trio.run(_fail_writes_into_deadletter, root / "data", root / "dl")
    assert not (root / "data").exists() or not any((root / "data").iterdir())
    return root / "dl", how


@pytest.fixture
def dataset(tmp_path: Path, template: tuple[Path, str]) -> tuple[Path, Path]:
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    data.mkdir()
    shutil.copytree(template[0], dl)
    return data, dl


def read_kind(data: Path, kind: str) -> pl.DataFrame:
    files = sorted(data.glob(f"venue=*/date=*/symbol=*/kind={kind}/*.parquet"))
    if not files:
        return pl.DataFrame()
    return in_memory(pl.concat([pl.read_parquet(f, hive_partitioning=True)
                                .select(schema_for(kind, 5).names) for f in files]))


def assert_exactly_once(data: Path) -> None:
    for (kind, symbol), rows in ROWS.items():
        df = read_kind(data, kind).filter(pl.col("symbol") == symbol)
        got = sorted(df.rows())
        assert got == sorted(rows), f"{kind}/{symbol}: {len(got)} rows, expected {len(rows)}"


def test_the_template_holds_real_deadletter_files(template: tuple[Path, str]) -> None:
    files = list_deadletter(template[0])
    assert len(files) == 6
    assert sum(f.rows for f in files) == sum(len(r) for r in ROWS.values())


async def test_recover_writes_every_row_into_its_partition_and_removes_the_files(
    dataset: tuple[Path, Path],
) -> None:
    data, dl = dataset
    report = await Recoverer(data, dl).recover_all()
    assert len(report.recovered) == 6 and not report.failed and report.rejected_lines == 0
    assert report.rows == sum(len(r) for r in ROWS.values())
    assert_exactly_once(data)
    assert list_deadletter(dl) == []
    # the batch that crossed midnight landed in two dates, under deterministic names
    btc_dates = sorted(p.name for p in (data / "venue=binance-usdm").glob("date=*") if (p / "symbol=BTCUSDT"
                                                             / "kind=prices").is_dir())
    assert btc_dates == ["date=2023-11-14", "date=2023-11-15"]
    names = [p.name for p in data.rglob("*.parquet")]
    assert all("-dl" in n for n in names) and len(names) == len(set(names))
    meta = pl.read_parquet_metadata(next(data.rglob("*.parquet")))
    assert meta["trio_harvest.recovered_from"].endswith(".ndjson")
    again = await Recoverer(data, dl).recover_all()
    assert again.files == [] and sorted(p.name for p in data.rglob("*.parquet")) == sorted(names)


class Killed(BaseException):
    """Stands for SIGKILL between two steps: nothing after it runs, no cleanup either."""


@pytest.mark.parametrize("kill_at", range(22))
async def test_killed_at_any_step_and_run_again_yields_each_row_exactly_once(
    dataset: tuple[Path, Path], kill_at: int,
) -> None:
    data, dl = dataset
    # one file also carries a bad line, so the "rejected" step is interrupted too
    victim = dl / next(f.rel for f in list_deadletter(dl) if f.kind == PRICES)
    with open(victim, "ab") as fh:
        fh.write(b'{"ts_ms": "soon"}\n')
    steps: list[str] = []

    def hook(step: str, f: Any) -> None:
        steps.append(step)
        if len(steps) == kill_at + 1:
            raise Killed

    try:
        await Recoverer(data, dl, hook=hook).recover_all()
    except Killed:
        pass
    else:
        assert kill_at >= len(steps)  # past the last step: nothing to interrupt
    report = await Recoverer(data, dl).recover_all()
    assert not report.failed
    assert_exactly_once(data)
    assert list_deadletter(dl) == []
    rejected = list((dl / "_rejected").rglob("*.ndjson"))
    assert len(rejected) == 1
    lines = rejected[0].read_text().splitlines()
    assert len(lines) == 1 and "missing" in json.loads(lines[0])["reason"]


async def test_bad_lines_are_set_aside_with_their_reason_never_dropped(tmp_path: Path) -> None:
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    (dl / PRICES).mkdir(parents=True)
    good = [price_row(i, MIDNIGHT + i, "BTCUSDT") for i in range(2)]
    names = schema_for(PRICES).names
    lines = [json.dumps(dict(zip(names, good[0], strict=True))),
             "{not json",
             json.dumps({"ts_ms": 1}),
             json.dumps(dict(zip(names, (*good[1][:5], "abc", *good[1][6:]), strict=True))),
             json.dumps(dict(zip(names, (*good[1][:3], "ETHUSDT", *good[1][4:]), strict=True))),
             "",
             json.dumps(dict(zip(names, good[1], strict=True)))]
    (dl / PRICES / "BTCUSDT_1700006400000_6.ndjson").write_text("\n".join(lines) + "\n")
    report = await Recoverer(data, dl).recover_all()
    (out,) = report.files
    assert out.rows == 2 and out.rejected == 4 and not out.error
    assert sorted(read_kind(data, PRICES).rows()) == sorted(good)
    rejected = [json.loads(x) for x in (dl / "_rejected" / PRICES /
                                        "BTCUSDT_1700006400000_6.ndjson").read_text().splitlines()]
    assert [r["line"] for r in rejected] == [2, 3, 4, 5]
    reasons = " | ".join(r["reason"] for r in rejected)
    assert "not JSON" in reasons and "missing" in reasons and "price is not a number" in reasons
    assert "does not match the file's 'BTCUSDT'" in reasons
    assert rejected[0]["text"] == "{not json" and rejected[0]["source"].startswith("prices/")
    assert "4 bad lines set aside" in report.render()


async def test_unknown_files_are_left_alone_and_reported(tmp_path: Path) -> None:
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    (dl / PRICES).mkdir(parents=True)
    (dl / "weird").mkdir()
    (dl / PRICES / "notes.txt").write_text("hello")
    (dl / "weird" / "X_1_1.ndjson").write_text("{}\n")
    report = await Recoverer(data, dl).recover_all()
    assert report.files == [] and sorted(report.unknown) == ["prices/notes.txt", "weird/"]
    assert (dl / PRICES / "notes.txt").exists() and (dl / "weird" / "X_1_1.ndjson").exists()


def test_cli_recover_prints_what_it_recovered(dataset: tuple[Path, Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data, dl = dataset
    first_two = sum(f.rows for f in list_deadletter(dl)[:2])
    with logging_restored():
        assert main(["recover", "--data-dir", str(data), "--limit", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("recovered venue=binance-usdm/prices/") for line in out) in (1, 2)
    assert sum(line.startswith("recovered ") and ".ndjson:" in line for line in out) == 2
    assert out[-1].startswith("recovered 2 files, ")
    with logging_restored():
        assert main(["recover", "--data-dir", str(data), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    total = sum(len(r) for r in ROWS.values())
    assert doc["files_recovered"] == 4 and doc["failed"] == [] and doc["rejected_lines"] == 0
    assert set(doc) == {"files_recovered", "rows_recovered", "partition_files", "rejected_lines",
                        "rejected_files", "failed", "unknown", "files"}
    assert doc["rows_recovered"] + first_two == total  # the first two files went before
    assert_exactly_once(data)


def test_cli_recover_on_an_unwritable_data_dir_keeps_the_files_and_exits_1(
    tmp_path: Path, template: tuple[Path, str], capsys: pytest.CaptureFixture[str],
) -> None:
    if template[1] != "chattr +i":
        pytest.skip("needs root and chattr for a data dir that exists but cannot be written")
    data, dl = tmp_path / "data", tmp_path / "dl"
    shutil.copytree(template[0], dl)
    with unwritable(data), logging_restored():
        code = main(["recover", "--data-dir", str(data), "--deadletter-dir", str(dl)])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED" in out and "left in place" in out
    assert len(list_deadletter(dl)) == 6
    with logging_restored():
        assert main(["recover", "--data-dir", str(data), "--deadletter-dir", str(dl)]) == 0
    assert list_deadletter(dl) == []
    assert_exactly_once(data)


def test_cli_recover_missing_data_dir_exits_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with logging_restored():
        assert main(["recover", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err


async def test_a_recovery_write_that_times_out_leaves_the_file(
    dataset: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, dl = dataset

    async def hang(self: Writer, part: Partition, gate: PublishGate,
                   unique: str | None = None) -> Any:
        await trio.sleep_forever()

    monkeypatch.setattr(Writer, "save", hang)
    out = await Recoverer(data, dl, write_timeout=0.05).recover_file(list_deadletter(dl)[0])
    assert "timed out" in out.error and len(list_deadletter(dl)) == 6


def test_cli_recover_dead_letter_dir_mistakes_exit_2_and_touch_nothing(
    tmp_path: Path, template: tuple[Path, str], capsys: pytest.CaptureFixture[str],
) -> None:
    data, dl = tmp_path / "data", tmp_path / "dl"
    data.mkdir()
    shutil.copytree(template[0], dl)
    with logging_restored():
        assert main(["recover", "--data-dir", str(data), "--deadletter-dir", str(tmp_path / "dlx")]) == 2
        assert main(["recover", "--data-dir", str(data),
                     "--deadletter-dir", str(next(dl.rglob("*.ndjson")))]) == 2
        assert main(["recover", "--data-dir", str(data)]) == 0  # the default dead letter is absent
    out = capsys.readouterr()
    assert out.err.splitlines() == [
        f"trio_harvest: error: --deadletter-dir {tmp_path / 'dlx'}: no such directory",
        f"trio_harvest: error: --deadletter-dir {next(dl.rglob('*.ndjson'))}: is not a directory",
    ]
    assert out.out.startswith("nothing to recover")
    assert len(list_deadletter(dl)) == 6 and list(data.iterdir()) == []


async def test_recovery_into_a_first_version_dataset_reads_back_as_one_kind(
    dataset: tuple[Path, Path],
) -> None:
    """A dataset holding union-schema files of the first version takes recovered
    per-kind files beside them; the reader, ``inspect`` and resume read both."""
    from trio_harvest.dataset import scan
    from trio_harvest.repair.resume import last_written
    from trio_harvest.storage.inventory import inspect_dataset

    from ..legacy import write_legacy

    data, dl = dataset
    old = [price_row(i, MIDNIGHT + 500_000 + i, "ETHUSDT") for i in range(1000, 1010)]
    write_legacy(data, "2023-11-15", "ETHUSDT", schema_for(PRICES), old)
    report = await Recoverer(data, dl).recover_all()
    assert not report.failed
    eth = scan(data, PRICES, symbols="ETHUSDT").collect()
    assert sorted(in_memory(eth.select(schema_for(PRICES).names)).rows()) == sorted(
        ROWS[(PRICES, "ETHUSDT")] + old)
    book = scan(data, ORDERBOOK).collect()
    assert sorted(in_memory(book.select(schema_for(ORDERBOOK, 5).names)).rows()) == sorted(
        ROWS[(ORDERBOOK, "BTCUSDT")])
    inv = inspect_dataset(data, dl)
    assert not inv.unreadable
    assert inv.continuity["ETHUSDT"].rows == 130 and inv.continuity["ETHUSDT"].holes == 1
    assert last_written(data, dl, ("ETHUSDT",)) == {"ETHUSDT": (1009, MIDNIGHT + 501_009)}
