"""A halted compactor (the harvester's stop) merges nothing more and says work is left; the
dataset stays as it was, and a later compactor merges it as usual."""

from __future__ import annotations

from pathlib import Path

from .test_compact import compactor, make_dataset


def test_a_halted_compactor_merges_nothing_and_leaves_the_work_for_later(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_dataset(data)
    before = sorted(p.relative_to(data) for p in data.rglob("*.parquet"))
    halted = compactor(data)
    halted.halt()
    report = halted.run()
    assert report.more and not report.as_dict()["merged_files"]
    assert sorted(p.relative_to(data) for p in data.rglob("*.parquet")) == before
    later = compactor(data).run()
    assert later.as_dict()["merged_files"] > 0 and not later.more
