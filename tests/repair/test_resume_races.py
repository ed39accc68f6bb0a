"""Where trades left off, read while ``recover`` or ``compact`` change the files under it: a file
moved from the dead letter into the dataset between the two reads is still seen; files a
compaction merged and deleted after they were listed leave resume on, at the right id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

import polars as pl
import pytest

from trio_harvest.repair import resume
from trio_harvest.repair.resume import last_written

DATE = "2023-11-14"
TODAY = "2023-11-15"


def part_dir(data: Path) -> Path:
    d = data / f"date={DATE}" / "symbol=BTCUSDT" / "kind=prices"
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_part(data: Path, name: str, ids: list[int]) -> Path:
    path = part_dir(data) / name
    pl.DataFrame({"ts_ms": [1_700_000_000_000 + i for i in ids], "agg_id": ids}).write_parquet(path)
    return path


def test_a_recover_between_the_two_reads_does_not_lower_the_resume_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, dead = tmp_path / "data", tmp_path / "deadletter"
    write_part(data, "part-1-2-a.parquet", [10, 11])
    (dead / "prices").mkdir(parents=True)
    dl = dead / "prices" / "BTCUSDT_5_2-x.ndjson"
    dl.write_text("".join(json.dumps({"ts_ms": 1_700_000_000_000 + i, "agg_id": i}) + "\n"
                          for i in (40, 41)))
    moved: list[bool] = []

    def recover_now() -> None:  # what recover does: write the partition, then remove the file
        if not moved:
            moved.append(True)
            write_part(data, "part-3-4-r.parquet", [40, 41])
            dl.unlink()

    def after(real: Any) -> Any:
        def wrapped(*args: Any) -> Any:
            out = real(*args)
            recover_now()  # right after whichever of the two reads comes first
            return out
        return wrapped

    monkeypatch.setattr(resume, "_from_dataset", after(resume._from_dataset))
    monkeypatch.setattr(resume, "_from_deadletter", after(resume._from_deadletter))
    unreadable: dict[str, list[str]] = {}
    seeds = last_written(data, dead, ("BTCUSDT",), unreadable, today=TODAY)
    assert moved and seeds == {"BTCUSDT": (41, 1_700_000_000_041)}, (seeds, unreadable)


class ListingStore:
    """An object store's view of ``root`` (list, read; no folder to glob), compacted right
    after its first listing."""

    def __init__(self, root: Path, after_list: Any) -> None:
        self._root = root
        self._after_list = after_list

    def children(self, prefix: PurePath | None = None) -> tuple[str, ...]:
        return tuple(p.name for p in self._root.iterdir())

    def list(self, prefix: PurePath | None = None, suffix: str = "") -> Iterator[PurePath]:
        base = self._root / prefix if prefix is not None else self._root
        out = [p.relative_to(self._root) for p in base.rglob(f"*{suffix}")]
        self._after_list()
        return iter([PurePath(p) for p in out])

    def read_bytes(self, rel: PurePath) -> bytes:
        return (self._root / rel).read_bytes()


@pytest.mark.parametrize("through_store", [False, True])
def test_files_a_compaction_merged_after_they_were_listed_leave_resume_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through_store: bool) -> None:
    data = tmp_path / "data"
    a = write_part(data, "part-1-2-a.parquet", [10, 11])
    b = write_part(data, "part-3-4-b.parquet", [12, 13])
    compacted: list[bool] = []

    def compact_now() -> None:  # merged file first, then the sources go
        if not compacted:
            compacted.append(True)
            write_part(data, "part-1-4-m.parquet", [10, 11, 12, 13])
            a.unlink()
            b.unlink()

    if through_store:
        target: Any = ListingStore(data, compact_now)
    else:
        from trio_harvest.storage.fileschema import local_live as real_live

        def live(directory: Path, strict: bool = True) -> list[Path]:
            out = real_live(directory, strict=strict)
            compact_now()
            return out

        monkeypatch.setattr(resume, "local_live", live)
        target = data
    unreadable: dict[str, list[str]] = {}
    seeds = last_written(target, tmp_path / "dl", ("BTCUSDT",), unreadable, today=TODAY)
    assert compacted
    assert seeds == {"BTCUSDT": (13, 1_700_000_000_013)}, (seeds, unreadable)
    assert not unreadable
