"""The grace before a merge's sources are deleted (``compact_delete_after``): a read that
listed them a moment before the publish still finds them; the reader API never counts a row
twice meanwhile; a later round (a fresh process too: the publish time is in the footer) deletes
them once the grace has passed; a merged file whose sources are still kept is not merged again
until they are gone."""

from __future__ import annotations

import io
from pathlib import Path, PurePath
from typing import Any

import polars as pl
import pytest

from trio_harvest.cli.commands import build_parser, main
from trio_harvest.config import ConfigError, build_config, load_config
from trio_harvest.kinds import PRICES, schema_for
from trio_harvest.storage.compact import Compactor
from trio_harvest.storage.fileschema import is_compacted
from trio_harvest.storage.store import LocalStore

from ..conftest import make_config
from ..dsrows import rows, write_new
from ..opsfakes import logging_restored
from .test_compact import LATER, MemoryStore, assert_exactly_once, make_dataset, part_files

GRACE = 300.0
HOUR_MS = 3_600_000
DAY1 = 1_700_006_400_000  # 2023-11-15T00:00:00Z


def glob_rows(data: Path, kind: str) -> int:
    """Rows as a plain glob over every part file counts them."""
    return sum(int(pl.scan_parquet(f).select(pl.len()).collect().item())
               for f in part_files(data, kind))


def round_at(data: Path, now: float, **kw: Any) -> dict[str, Any]:
    """One compaction by a fresh compactor (a new process: it knows only what is on disk)."""
    kw.setdefault("older_than", 3600.0)
    report = Compactor(LocalStore(data), now=lambda: now, written_at=lambda rel: DAY1 / 1000,
                       delete_after=GRACE, **kw).run()
    assert not report.failed
    return report.as_dict()


def test_sources_stay_for_the_grace_and_a_later_round_deletes_them(tmp_path: Path) -> None:
    expected = make_dataset(tmp_path)
    sources = {p.name for p in part_files(tmp_path, PRICES)}
    doc = round_at(tmp_path, LATER, target_rows=7)
    assert (doc["merged_files"], doc["source_files"], doc["kept"], doc["cleaned"]) == (4, 8, 8, 0)
    after = {p.name for p in part_files(tmp_path, PRICES)}
    assert sources <= after and len(after - sources) == 3  # the sources are all still there
    assert_exactly_once(tmp_path, expected)  # the reader API: each row once
    assert glob_rows(tmp_path, PRICES) == 2 * 18  # a plain glob: twice, for the grace

    # inside the grace: nothing deleted, and the kept merges are not merged again (the default
    # target would make the closed day's three files one)
    doc = round_at(tmp_path, LATER + GRACE - 1)
    assert (doc["merged_files"], doc["cleaned"]) == (0, 0)
    assert {p.name for p in part_files(tmp_path, PRICES)} == after
    assert_exactly_once(tmp_path, expected)

    # the grace has passed: the sources go, then the day becomes one file, kept in its turn
    doc = round_at(tmp_path, LATER + GRACE)
    assert (doc["cleaned"], doc["merged_files"], doc["kept"]) == (8, 1, 3)
    assert_exactly_once(tmp_path, expected)
    doc = round_at(tmp_path, LATER + 2 * GRACE)
    assert (doc["cleaned"], doc["merged_files"]) == (3, 0)
    (final,) = part_files(tmp_path, PRICES)
    assert is_compacted(final.name)
    assert glob_rows(tmp_path, PRICES) == 18  # and now a plain glob sees each row once
    assert_exactly_once(tmp_path, expected)


def test_a_read_that_listed_the_sources_before_the_publish_still_reads_them(
        tmp_path: Path) -> None:
    make_dataset(tmp_path)
    listed = part_files(tmp_path, PRICES)
    round_at(tmp_path, LATER, target_rows=7)
    read = pl.scan_parquet(listed, missing_columns="insert", extra_columns="ignore")
    assert read.select(pl.len()).collect().item() == 18


def test_an_hour_whose_merge_is_kept_waits_for_its_delete(tmp_path: Path) -> None:
    """A running day: a late file of an hour already merged joins that hour only once the hour's
    earlier sources are gone (else the hourly file would become a source while its own sources
    still exist)."""
    prices = schema_for(PRICES)
    want: list[Any] = []

    def put(ts: int, tag: str) -> None:
        batch = rows(prices, ts, 2, "BTCUSDT", step=1)
        write_new(tmp_path, "2023-11-15", "BTCUSDT", prices, batch,
                  f"part-{ts}-{ts + 1}-{tag}.parquet", {"trio_harvest.kind": PRICES})
        want.extend(batch)

    put(DAY1 + 10, "a")
    put(DAY1 + 20, "b")
    now = DAY1 / 1000 + 3 * 3600  # 03:00 the same day: the day runs, its hour 00 is due
    doc = round_at(tmp_path, now, older_than=600)
    assert (doc["merged_files"], doc["kept"], doc["open_partitions"]) == (1, 2, 1)
    put(DAY1 + 30, "late")
    doc = round_at(tmp_path, now + 60, older_than=600)
    assert (doc["merged_files"], doc["cleaned"]) == (0, 0)  # the hour waits
    assert_exactly_once(tmp_path, {PRICES: want})
    doc = round_at(tmp_path, now + GRACE, older_than=600)
    assert (doc["cleaned"], doc["merged_files"], doc["kept"]) == (2, 1, 2)
    doc = round_at(tmp_path, now + 2 * GRACE, older_than=600)
    assert doc["cleaned"] == 2
    (hourly,) = part_files(tmp_path, PRICES)
    assert is_compacted(hourly.name)
    assert_exactly_once(tmp_path, {PRICES: want})


def test_an_object_store_keeps_the_sources_by_the_footers_time(tmp_path: Path) -> None:
    """No write times on an object store: the publish time in the merged file's footer rules."""
    src = tmp_path / "src"
    expected = make_dataset(src)
    store = MemoryStore({PurePath(p.relative_to(src)): p.read_bytes()
                         for p in src.rglob("*.parquet")})

    def at(now: float) -> dict[str, Any]:
        return Compactor(store, target_rows=7, older_than=3600, now=lambda: now,
                         delete_after=GRACE).run().as_dict()

    assert at(LATER)["kept"] == 8
    assert at(LATER + GRACE - 1)["cleaned"] == 0
    assert at(LATER + GRACE)["cleaned"] == 8
    store.dump(tmp_path / "out")
    assert_exactly_once(tmp_path / "out", expected)
    names = [r.name for r in store.files if "kind=prices" in str(r)]
    assert len(names) == 3 and all(is_compacted(n) for n in names)
    assert sum(pl.read_parquet(io.BytesIO(store.files[r])).height
               for r in store.files if "kind=prices" in str(r)) == 18


def test_the_grace_is_a_setting_toml_env_and_flags(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # by default the sources go at once: a grace would make a plain glob count rows twice
    assert build_config({"data_dir": tmp_path}).compact_delete_after == 0.0
    toml = tmp_path / "h.toml"
    toml.write_text("compact_delete_after = 60\n")
    assert load_config({}, {}, toml).compact_delete_after == 60
    assert load_config({}, {"TRIO_HARVEST_COMPACT_DELETE_AFTER": "90"},
                       toml).compact_delete_after == 90
    args = build_parser().parse_args(["run", "--compact-delete-after", "2m"])
    assert args.compact_delete_after == 120.0
    with pytest.raises(ConfigError, match="compact_delete_after: must be a number of seconds"):
        make_config(tmp_path, compact_delete_after=-1.0)
    for command, flag in (("run", "--compact-delete-after"), ("compact", "--delete-after")):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        assert flag in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["run", "--compact-delete-after", "soon"],
                                  ["compact", "--data-dir", ".", "--delete-after", "-5"]])
def test_a_bad_grace_is_one_line_exit_2(argv: list[str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with logging_restored():
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "delete-after" in err
