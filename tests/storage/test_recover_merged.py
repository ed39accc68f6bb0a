"""Recovery merges many dead-letter files into one part file per (date, symbol, kind),
still exactly once and crash-safe; the command takes --config; automatic recovery keeps up with
a backlog of thousands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.kinds import PRICES, Row, schema_for
from trio_harvest.storage.backlog import list_deadletter
from trio_harvest.storage.encoding import encode_ndjson
from trio_harvest.storage.merge import plan_batches
from trio_harvest.storage.partitions import deadletter_name
from trio_harvest.storage.recover import Recoverer

from ..cli.test_cli import run_cli
from ..conftest import make_config
from ..dsrows import in_memory
from .test_recover import MIDNIGHT, Killed, price_row


def make_backlog(dl: Path, files: dict[str, int], rows_per_file: int = 10,
                 start: int = MIDNIGHT - 30_000, first: int = 0) -> dict[str, list[Row]]:
    """``files[symbol]`` prices dead-letter files per symbol, consecutive in time (the BTCUSDT
    ones cross UTC midnight when there are enough)."""
    out: dict[str, list[Row]] = {}
    schema = schema_for(PRICES)
    (dl / PRICES).mkdir(parents=True, exist_ok=True)
    for symbol, n in files.items():
        rows_all: list[Row] = []
        for j in range(first, first + n):
            rows = [price_row(j * rows_per_file + i, start + (j * rows_per_file + i) * 1000,
                              symbol) for i in range(rows_per_file)]
            name = deadletter_name(symbol, 1_800_000_000_000 + j, len(rows), f"u{j}")
            (dl / PRICES / name).write_bytes(encode_ndjson(schema, rows))
            rows_all += rows
        out[symbol] = rows_all
    return out


def read_prices(data: Path) -> pl.DataFrame:
    files = sorted(data.glob("venue=*/date=*/symbol=*/kind=prices/*.parquet"))
    return in_memory(pl.concat([pl.read_parquet(f, hive_partitioning=True)
                                .select(schema_for(PRICES).names) for f in files]))


def assert_exactly_once(data: Path, expected: dict[str, list[Row]]) -> None:
    df = read_prices(data)
    for symbol, rows in expected.items():
        got = sorted(df.filter(pl.col("symbol") == symbol).rows())
        assert got == sorted(rows), f"{symbol}: {len(got)} rows, expected {len(rows)}"


async def test_many_files_of_a_symbol_become_one_part_file_per_date(tmp_path: Path) -> None:
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    expected = make_backlog(dl, {"BTCUSDT": 40, "ETHUSDT": 5})
    report = await Recoverer(data, dl).recover_all()
    assert len(report.recovered) == 45 and not report.failed
    assert_exactly_once(data, expected)
    parts = sorted(str(p.relative_to(data)) for p in data.rglob("*.parquet"))
    # both cross midnight: one part file per date and symbol, not 45
    assert [p.split("/part-")[0] for p in parts] == [
        f"venue=binance-usdm/date={d}/symbol={s}/kind=prices" for d in ("2023-11-14", "2023-11-15")
        for s in ("BTCUSDT", "ETHUSDT")]
    assert report.partition_files == 4
    assert "recovered 45 files, 450 rows into 4 partition files" in report.render()
    meta = pl.read_parquet_metadata(next(data.glob("venue=binance-usdm/date=2023-11-15/**/*.parquet")))
    assert meta["trio_harvest.recovered_from"].count(".ndjson") == 40
    assert list_deadletter(dl) == [] and not list((dl / "_merging").glob("*"))


def test_batches_are_bounded_by_rows() -> None:
    from trio_harvest.storage.backlog import DeadLetterFile

    files = [DeadLetterFile(PRICES, f"BTCUSDT_{i}_100.ndjson", "BTCUSDT", i, 100) for i in range(10)]
    files.insert(3, DeadLetterFile(PRICES, "ETHUSDT_3_5.ndjson", "ETHUSDT", 3, 5))
    batches = plan_batches(files, max_rows=350)
    assert [len(b) for b in batches] == [3, 1, 3, 3, 1]
    assert all(len({f.symbol for f in b}) == 1 for b in batches)


@pytest.mark.parametrize("kill_at", range(30))
async def test_killed_at_any_step_of_a_merged_batch_and_run_again_yields_each_row_once(
    tmp_path: Path, kill_at: int,
) -> None:
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    expected = make_backlog(dl, {"BTCUSDT": 6, "ETHUSDT": 3})
    victim = dl / next(f.rel for f in list_deadletter(dl) if f.symbol == "ETHUSDT")
    with open(victim, "ab") as fh:
        fh.write(b'{"ts_ms": "soon"}\n')
    steps: list[str] = []

    def hook(step: str, f: Any) -> None:
        steps.append(step)
        if len(steps) == kill_at + 1:
            raise Killed

    try:
        await Recoverer(data, dl, hook=hook, max_batch_rows=50).recover_all()
    except Killed:
        pass
    else:
        assert kill_at >= len(steps)
    # a new file arrives meanwhile: the interrupted batch must still be redone on its own
    expected["BTCUSDT"] += make_backlog(dl, {"BTCUSDT": 1}, first=100)["BTCUSDT"]
    report = await Recoverer(data, dl).recover_all()
    assert not report.failed
    assert_exactly_once(data, expected)
    assert list_deadletter(dl) == [] and not list((dl / "_merging").glob("*"))
    (rejected,) = (dl / "_rejected").rglob("*.ndjson")
    assert len(rejected.read_text().splitlines()) == 1


async def test_two_recoverers_at_once_write_each_row_once(tmp_path: Path) -> None:
    """``recover`` while a harvester's automatic recovery runs: the lock keeps them apart."""
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    expected = make_backlog(dl, {"BTCUSDT": 30, "ETHUSDT": 30})
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(Recoverer(data, dl, max_batch_rows=100, concurrency=2).recover_all)
    assert_exactly_once(data, expected)
    assert list_deadletter(dl) == []


async def test_automatic_recovery_drains_a_backlog_of_a_thousand_files_in_one_round(
    tmp_path: Path,
) -> None:
    cfg = make_config(tmp_path, auto_recover_after=1.0, symbols=("BTCUSDT", "ETHUSDT"))
    expected = make_backlog(cfg.deadletter_path, {"BTCUSDT": 600, "ETHUSDT": 600},
                            rows_per_file=2)
    h = Harvester(cfg)
    auto = h.ops.autorecovery
    await auto.round(trio.current_time())
    assert auto.stats.files == 1000 and auto.stats.failures == 0
    await auto.round(trio.current_time())
    assert auto.stats.files == 1200 and list_deadletter(cfg.deadletter_path) == []
    assert_exactly_once(cfg.data_dir, expected)
    assert len(list(cfg.data_dir.rglob("*.parquet"))) <= 8


def test_recover_and_inspect_take_the_runs_config(tmp_path: Path) -> None:
    data, dl = tmp_path / "data", tmp_path / "elsewhere"
    make_backlog(dl, {"BTCUSDT": 3})
    toml = tmp_path / "h.toml"
    toml.write_text(f'data_dir = "{data}"\ndeadletter_dir = "{dl}"\n')
    data.mkdir()
    out = run_cli("recover", "--data-dir", str(data))  # without the run's settings
    assert out.returncode == 0 and "nothing to recover" in out.stdout
    out = run_cli("inspect", "--config", str(toml), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["deadletter"]["files"] == 3
    out = run_cli("recover", "--config", str(toml))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("recovered 3 files, 30 rows into 1 partition file;")
    assert list_deadletter(dl) == []
    out = run_cli("recover")
    assert out.returncode == 2 and "required: --data-dir (or --config)" in out.stderr


async def test_a_manifest_whose_sources_are_all_gone_is_cleared(tmp_path: Path) -> None:
    data, dl = tmp_path / "data", tmp_path / "data" / "deadletter"
    (dl / "_merging").mkdir(parents=True)
    (dl / "_merging" / "dlx.json").write_text(json.dumps(
        {"kind": PRICES, "symbol": "BTCUSDT", "complete": False,
         "sources": ["BTCUSDT_1_1.ndjson"]}))
    report = await Recoverer(data, dl).recover_all()
    assert report.files == [] and not list((dl / "_merging").iterdir())
