"""The stop's timing record: phases in order, each with its own seconds and CPU seconds."""

from __future__ import annotations

from trio_harvest.ops.stopclock import StopClock


def test_phases_are_differences_between_marks_and_the_summary_names_them() -> None:
    t = [100.0]
    c = [5.0]
    clock = StopClock(clock=lambda: t[0], cpu=lambda: c[0])
    clock.mark("ignored before start")
    clock.start()
    t[0], c[0] = 100.5, 5.1
    clock.mark("ingest")
    t[0], c[0] = 104.0, 7.1
    clock.mark("authoritative files")
    clock.note("rows buffered", 1234)
    assert [(n, round(s, 2), round(cpu, 2)) for n, s, cpu in clock.phases()] == [
        ("ingest", 0.5, 0.1), ("authoritative files", 3.5, 2.0)]
    line = clock.summary()
    assert line.startswith("stop took 4.00s (2.10s CPU): ingest 0.50s, authoritative files 3.50s")
    assert line.endswith("rows buffered 1234")


def test_no_mark_says_so() -> None:
    assert StopClock().summary() == "stop: no phase recorded"
