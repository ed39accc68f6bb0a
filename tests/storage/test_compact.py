"""Compaction: small files of closed partitions merged into sorted files of
up to the target size; killed at any step and run again, every row is there exactly once, and
the reader never counts a row twice in between."""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePath
from typing import Any

import polars as pl
import pytest

from trio_harvest.cli.commands import main
from trio_harvest.dataset import scan
from trio_harvest.kinds import GAPS, ORDERBOOK, PRICES, orderbook_schema, schema_for
from trio_harvest.storage.compact import (
    Compactor,
    check_settings,
    is_closed,
    parse_duration,
    plan_groups,
)
from trio_harvest.storage.fileschema import SOURCES_KEY, is_compacted
from trio_harvest.storage.inventory import inspect_dataset
from trio_harvest.storage.store import LocalStore

from ..dsrows import in_memory, rows, write_new
from ..legacy import write_legacy
from ..opsfakes import logging_restored

DAY1 = 1_700_006_400_000  # 2023-11-15T00:00:00Z
LATER = DAY1 / 1000 + 10 * 86400  # "now": ten days on
STEPS = 12  # 3 prices groups x (publish + 2 deletes) + 1 orderbook group x (publish + 2)


class Killed(BaseException):
    """Stands for SIGKILL between two steps: nothing after it runs."""


def make_dataset(data: Path) -> dict[str, list[tuple[Any, ...]]]:
    """prices BTCUSDT: a first-version file and five new ones of 3 rows, out of time order;
    orderbook ETHUSDT (depth 5): one of each; gaps: a single file (nothing to merge). All where
    versions before venues wrote them (no ``venue=`` level)."""
    prices, book, gaps = schema_for(PRICES), orderbook_schema(5), schema_for(GAPS)
    out: dict[str, list[tuple[Any, ...]]] = {PRICES: [], ORDERBOOK: [], GAPS: []}
    legacy = rows(prices, DAY1, 3, "BTCUSDT", step=7)
    write_legacy(data, "2023-11-15", "BTCUSDT", prices, legacy, f"part-{DAY1}-{DAY1 + 14}-old.parquet")
    out[PRICES] += legacy
    for k in range(5):
        ts = DAY1 + 1 + 10 * k
        batch = rows(prices, ts, 3, "BTCUSDT", step=3)
        write_new(data, "2023-11-15", "BTCUSDT", prices, batch, f"part-{ts}-{ts + 6}-n{k}.parquet",
                  {"trio_harvest.kind": "prices"}, venue=None)
        out[PRICES] += batch
    b1, b2 = rows(book, DAY1 + 50, 3, "ETHUSDT"), rows(book, DAY1, 3, "ETHUSDT", step=3)
    write_legacy(data, "2023-11-15", "ETHUSDT", book, b1, f"part-{DAY1 + 50}-x-old.parquet")
    write_new(data, "2023-11-15", "ETHUSDT", book, b2, f"part-{DAY1}-x-new.parquet", venue=None)
    out[ORDERBOOK] += b1 + b2
    g = rows(gaps, DAY1, 2, "BTCUSDT")
    write_new(data, "2023-11-15", "BTCUSDT", gaps, g, "part-1-2-g.parquet", venue=None)
    out[GAPS] += g
    return out


def compactor(data: Path, **kw: Any) -> Compactor:
    kw.setdefault("target_rows", 7)
    kw.setdefault("older_than", 3600.0)
    return Compactor(LocalStore(data), now=lambda: LATER, written_at=lambda rel: DAY1 / 1000,
                     **kw)


def assert_exactly_once(data: Path, expected: dict[str, list[tuple[Any, ...]]]) -> None:
    for kind, want in expected.items():
        schema = schema_for(kind, 5)
        got = in_memory(scan(data, kind).collect().select(schema.names)).rows()
        assert sorted(got) == sorted(want), f"{kind}: {len(got)} rows, expected {len(want)}"


def part_files(data: Path, kind: str) -> list[Path]:
    # either layout: these tests write files where versions before venues did (tests/dsrows.py)
    return sorted([*data.glob(f"venue=*/date=*/symbol=*/kind={kind}/*.parquet"),
                   *data.glob(f"date=*/symbol=*/kind={kind}/*.parquet")])


def test_small_files_become_sorted_files_of_at_most_the_target(tmp_path: Path) -> None:
    expected = make_dataset(tmp_path)
    report = compactor(tmp_path).run()
    assert not report.failed
    doc = report.as_dict()
    assert (doc["merged_files"], doc["source_files"], doc["rows"]) == (4, 8, 24)
    assert_exactly_once(tmp_path, expected)
    files = part_files(tmp_path, PRICES)
    assert len(files) == 3 and all(is_compacted(f.name) for f in files)
    for f in files:
        df = pl.read_parquet(f)
        assert df.height == 6 and df["ts_ms"].is_sorted()
        assert df.columns == [n for n in schema_for(PRICES).names if n != "symbol"]  # per kind
        meta = pl.read_parquet_metadata(f)
        assert len(json.loads(meta[SOURCES_KEY])) == 2 and meta["trio_harvest.kind"] == "prices"
    # the plain glob sees each row once too, now that the sources are gone
    assert pl.scan_parquet(files).select(pl.len()).collect().item() == 18
    (book,) = part_files(tmp_path, ORDERBOOK)
    assert "bid_px_5" in pl.read_parquet_schema(book) and "bid_px_6" not in pl.read_parquet_schema(
        book)
    assert [f.name for f in part_files(tmp_path, GAPS)] == ["part-1-2-g.parquet"]  # alone: kept
    # idempotent: a second run finds nothing to do and changes nothing
    before = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    again = compactor(tmp_path).run()
    assert again.as_dict()["merged_files"] == 0 and again.partitions == []
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == before
    inv = inspect_dataset(tmp_path)
    assert inv.as_dict()["totals"]["rows"] == 26 and inv.holes == 0


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("compact-template")
    return root, make_dataset(root)


@pytest.mark.parametrize("kill_at", range(STEPS + 1))
def test_killed_at_any_step_and_run_again_every_row_is_there_once(
    tmp_path: Path, template: tuple[Path, dict[str, Any]], kill_at: int
) -> None:
    data = tmp_path / "data"
    shutil.copytree(template[0], data)
    steps: list[str] = []

    def hook(step: str, rel: PurePath) -> None:
        if len(steps) == kill_at:
            raise Killed
        steps.append(step)

    if kill_at < STEPS:
        with pytest.raises(Killed):
            compactor(data, hook=hook).run()
        # killed between publish and delete: the reader still counts every row once
        assert_exactly_once(data, template[1])
    else:
        compactor(data, hook=hook).run()
        assert len(steps) == STEPS
    report = compactor(data).run()
    assert not report.failed
    assert_exactly_once(data, template[1])
    assert not [f for f in part_files(data, PRICES) if not is_compacted(f.name)]
    assert len(part_files(data, ORDERBOOK)) == 1 and not list(data.rglob(".tmp-*"))
    assert compactor(data).run().partitions == []


def test_killed_while_writing_the_merged_file_publishes_nothing(
    tmp_path: Path, template: tuple[Path, dict[str, Any]]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(template[0], data)

    class DyingStore(LocalStore):
        def write_atomic(self, rel: PurePath, produce: Any, gate: Any = None) -> int:
            def half(fh: Any) -> None:
                produce(fh)
                raise Killed

            return super().write_atomic(rel, half, gate)

    with pytest.raises(Killed):
        Compactor(DyingStore(data), target_rows=7, older_than=0, now=lambda: LATER,
                  written_at=lambda rel: 0.0).run()
    assert not list(data.rglob(".tmp-*")) and not [
        p for p in data.rglob("*.parquet") if is_compacted(p.name)]
    compactor(data).run()
    assert_exactly_once(data, template[1])


def test_a_recovered_source_written_again_after_compaction_is_not_counted(tmp_path: Path) -> None:
    """Recovery rewrites its deterministic names when it is run again: a name that a compacted
    file already holds is ignored by the reader and deleted by the next compaction."""
    expected = make_dataset(tmp_path)
    compactor(tmp_path).run()
    again = rows(schema_for(PRICES), DAY1 + 1, 3, "BTCUSDT", step=3)
    write_new(tmp_path, "2023-11-15", "BTCUSDT", schema_for(PRICES), again,
              f"part-{DAY1 + 1}-{DAY1 + 7}-n0.parquet", venue=None)
    assert_exactly_once(tmp_path, expected)
    report = compactor(tmp_path).run()
    assert report.as_dict()["cleaned"] == 1 and report.as_dict()["merged_files"] == 0
    assert_exactly_once(tmp_path, expected)


def test_recent_writes_and_other_symbols_are_left_alone(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    recent = Compactor(LocalStore(tmp_path), older_than=7200, target_rows=7,
                       now=lambda: LATER, written_at=lambda rel: LATER - 60).run()
    assert recent.open_partitions == 2 and recent.partitions == []
    other = compactor(tmp_path, symbols=["SOLUSDT"]).run()
    assert other.partitions == [] and sorted(p.name for p in tmp_path.rglob("*.parquet")) == before
    eth = compactor(tmp_path, symbols=["ETHUSDT"]).run()
    assert [p.partition for p in eth.partitions] == [
        "date=2023-11-15/symbol=ETHUSDT/kind=orderbook"]  # written where versions before venues did


def test_a_running_day_merges_its_due_hours_into_hourly_files(tmp_path: Path) -> None:
    """The day has not ended ``older_than`` ago, but its first hour has: merged per hour; the
    running hour waits until its newest file is older than ``older_than``."""
    expected = make_dataset(tmp_path)
    prices = schema_for(PRICES)
    hour2 = DAY1 + 2 * 3_600_000
    for k in range(2):  # two files of the running hour, written just now
        ts = hour2 + 10 * k
        write_new(tmp_path, "2023-11-15", "BTCUSDT", prices, rows(prices, ts, 2, "BTCUSDT"),
                  f"part-{ts}-{ts + 1}-h{k}.parquet", venue=None)
        expected[PRICES] += rows(prices, ts, 2, "BTCUSDT")
    now = hour2 / 1000 + 60
    report = Compactor(LocalStore(tmp_path), older_than=600, target_rows=100,
                       now=lambda: now, written_at=lambda rel: 0.0).run()
    assert not report.failed and report.open_partitions == 2
    assert_exactly_once(tmp_path, expected)
    names = [f.name for f in part_files(tmp_path, PRICES)]
    assert len([n for n in names if is_compacted(n)]) == 1  # hour 0: one file
    assert sorted(n for n in names if not is_compacted(n)) == [
        f"part-{hour2}-{hour2 + 1}-h0.parquet", f"part-{hour2 + 10}-{hour2 + 11}-h1.parquet"]
    # ten minutes on, the running hour's files are due too: one file per hour
    later = Compactor(LocalStore(tmp_path), older_than=600, target_rows=100,
                      now=lambda: now + 600, written_at=lambda rel: 0.0).run()
    assert later.as_dict()["merged_files"] == 1
    assert len(part_files(tmp_path, PRICES)) == 2 and all(
        is_compacted(f.name) for f in part_files(tmp_path, PRICES))
    assert_exactly_once(tmp_path, expected)
    # the day closes: its hourly files become one file of the day
    closed = compactor(tmp_path, target_rows=100).run()
    assert closed.open_partitions == 0 and closed.as_dict()["merged_files"] == 1
    (day,) = part_files(tmp_path, PRICES)
    assert pl.read_parquet(day)["ts_ms"].is_sorted()
    assert_exactly_once(tmp_path, expected)
    assert pl.scan_parquet(day).select(pl.len()).collect().item() == len(expected[PRICES])


def test_pure_rules() -> None:
    assert plan_groups([("a", 3), ("b", 3), ("c", 3), ("big", 10), ("d", 1)], 7) == [
        ["a", "b"], ["c", "d"]]
    assert plan_groups([("a", 3)], 7) == []
    end = 1_700_092_800.0  # 2023-11-16T00:00:00Z, the end of 2023-11-15
    from datetime import date

    day = date(2023, 11, 15)
    assert not is_closed(day, None, end + 7199, 7200) and is_closed(day, None, end + 7200, 7200)
    assert not is_closed(day, end + 7000, end + 8000, 7200)
    assert [parse_duration(s) for s in ("90", "90s", "30m", "2h", "1d", "0")] == [
        90, 90, 1800, 7200, 86400, 0]
    for bad in ("", "2x", "-1h", "h", "nan"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)
    assert check_settings(7200, 1_000_000) is None
    assert "compact_target_rows" in (check_settings(1, 1) or "")


def test_cli_compact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_dataset(tmp_path)
    now = ["--delete-after", "0"]  # sources deleted at once (the grace has its own test)
    with logging_restored():
        code = main(["compact", "--data-dir", str(tmp_path), "--older-than", "0",
                     "--target-rows", "7", "--json", *now])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["merged_files"] == 4 and doc["failed"] == []
    with logging_restored():
        assert main(["compact", "--data-dir", str(tmp_path), "--older-than", "0s",
                     "--target-rows", "7", *now]) == 0
    assert "compacted 0 partitions" in capsys.readouterr().out
    with logging_restored():  # the default target: the closed day becomes one file
        assert main(["compact", "--data-dir", str(tmp_path), "--older-than", "0s", *now]) == 0
    assert "compacted 1 partitions: 3 files (18 rows) into 1" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--data-dir", "{missing}"], "--data-dir {missing}: no such directory"),
    (["--data-dir", "{tmp}", "--older-than", "soon"], "--older-than: 'soon' is not a duration"),
    (["--data-dir", "{tmp}", "--target-rows", "1"], "--target-rows: must be at least 2"),
])
def test_cli_compact_mistakes_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    fill = {"missing": str(tmp_path / "nope"), "tmp": str(tmp_path)}
    with logging_restored():
        try:
            code = main(["compact", *(a.format(**fill) for a in argv)])
        except SystemExit as exc:  # argparse's own one-line error
            code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message.format(**fill) in err


class MemoryStore:
    """An object store in memory, with the four methods only (no paths, no write times):
    what compaction may assume of S3. A PUT refuses to overwrite, as on S3 with If-None-Match."""

    def __init__(self, files: dict[PurePath, bytes]) -> None:
        self.files = dict(files)

    def write_atomic(self, rel: PurePath, produce: Any, gate: Any = None) -> int:
        import io

        buf = io.BytesIO()
        produce(buf)
        if rel in self.files:
            raise FileExistsError(str(rel))
        self.files[rel] = buf.getvalue()
        return len(self.files[rel])

    def list(self, prefix: PurePath | None = None, suffix: str = "") -> Any:
        return iter([r for r in sorted(self.files) if str(r).endswith(suffix)])

    def read_bytes(self, rel: PurePath) -> bytes:
        return self.files[rel]

    def delete(self, rel: PurePath) -> None:
        self.files.pop(rel, None)

    def dump(self, root: Path) -> None:
        for rel, data in self.files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)


def kill_then_finish(store: Any, kill_at: int, meanwhile: Any = lambda: None) -> None:
    """A compaction of ``store`` killed before its step ``kill_at`` (not at all from ``STEPS``
    on), then ``meanwhile()``, then a whole run."""
    steps: list[str] = []

    def hook(step: str, rel: PurePath) -> None:
        if len(steps) == kill_at:
            raise Killed
        steps.append(step)

    def run(**kw: Any) -> Any:
        return Compactor(store, target_rows=7, older_than=3600, now=lambda: LATER, **kw).run()

    if kill_at < STEPS:
        with pytest.raises(Killed):
            run(hook=hook)
    meanwhile()
    assert not run().failed


@pytest.mark.parametrize("kill_at", [0, 1, 2, 5, STEPS])
def test_through_the_store_interface_only(
    tmp_path: Path, template: tuple[Path, dict[str, Any]], kill_at: int
) -> None:
    src = template[0]
    store = MemoryStore({PurePath(p.relative_to(src)): p.read_bytes()
                         for p in src.rglob("*.parquet")})
    kill_then_finish(store, kill_at)
    store.dump(tmp_path / "data")
    assert_exactly_once(tmp_path / "data", template[1])
    assert len(part_files(tmp_path / "data", PRICES)) == 3


def test_a_second_compaction_on_the_same_data_dir_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trio_harvest.storage.compact import exclusive

    make_dataset(tmp_path)
    with exclusive(tmp_path), logging_restored():
        code = main(["compact", "--data-dir", str(tmp_path), "--older-than", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "another compaction is running on" in err
    assert not [p for p in tmp_path.rglob("*.parquet") if is_compacted(p.name)]


def test_a_rerun_right_after_an_interrupted_one_finishes_its_delete(tmp_path: Path) -> None:
    """The merged file itself is no write into the partition: it must not make the partition
    look open (for ``older_than``) and so postpone the delete of its sources."""
    import os

    expected = make_dataset(tmp_path)
    old = DAY1 / 1000 + 86400
    for p in tmp_path.rglob("*.parquet"):
        os.utime(p, (old, old))

    def kill_after_publish(step: str, rel: PurePath) -> None:
        if step == "published":
            raise Killed

    with pytest.raises(Killed):
        Compactor(LocalStore(tmp_path), target_rows=7, older_than=3600,
                  hook=kill_after_publish).run()
    report = Compactor(LocalStore(tmp_path), target_rows=7, older_than=3600).run()
    assert report.as_dict()["cleaned"] == 2 and report.open_partitions == 0
    assert_exactly_once(tmp_path, expected)
    assert len(part_files(tmp_path, PRICES)) == 3


def test_compact_older_than_0_merges_todays_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Today's partitions, the running hour included: ``--older-than 0`` merges them now."""
    import time

    prices = schema_for(PRICES)
    now_ms = int(time.time() * 1000) - 5000
    today = time.strftime("%Y-%m-%d", time.gmtime(now_ms / 1000))
    want = []
    for k in range(4):
        ts = now_ms + k
        batch = rows(prices, ts, 1, "BTCUSDT")
        if time.strftime("%Y-%m-%d", time.gmtime(ts / 1000)) == today:
            write_new(tmp_path, today, "BTCUSDT", prices, batch, f"part-{ts}-{ts}-t{k}.parquet")
            want += batch
    with logging_restored():
        assert main(["compact", "--data-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["merged_files"] == 0  # 10 minutes: not yet
    with logging_restored():
        assert main(["compact", "--data-dir", str(tmp_path), "--older-than", "0", "--json",
                     "--delete-after", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["merged_files"] == 1 and doc["open_partitions"] == 1
    (merged,) = part_files(tmp_path, PRICES)
    assert is_compacted(merged.name)
    assert_exactly_once(tmp_path, {PRICES: want})
