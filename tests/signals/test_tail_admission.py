"""The tail's inline admission check agrees with the full rule at every edge: the earliest
record before the features task runs, the cursor, the lag at which the window falls behind,
and after the cursor moves (forward only)."""

from __future__ import annotations

from trio_harvest.signals.tail import TailWindow


def _counts(tail: TailWindow) -> tuple[int, int, int, int | None]:
    return len(tail.l1), tail.late, tail.skipped_s, tail.cursor_ms


def test_the_admission_edges_before_and_after_the_cursor() -> None:
    tail = TailWindow(history_s=10, max_lag_s=20)
    limit = 20_000 + 1000
    assert tail.add_l1(100_000, 0.0, 1.0, 2.0, 1.0, 1.0)  # the first record sets the start
    assert tail.add_l1(99_000, 0.0, 1.0, 2.0, 1.0, 1.0)  # earlier: the start moves back
    assert tail.first_second() == 99
    assert tail.add_ml(99_000 + limit, 0.0, 1.0, 1.0)  # exactly the lag: still in
    assert _counts(tail) == (2, 0, 0, None)
    assert tail.add_trade(99_000 + limit + 1, 1.0, 1.0, 1.0, 1.0, 1.0)  # one past: behind
    assert tail.skipped_s > 0 and tail.cursor_ms is not None
    cursor = tail.cursor_ms
    assert not tail.add_l1(cursor - 1, 0.0, 1.0, 2.0, 1.0, 1.0)  # its second was emitted
    assert tail.late == 1
    assert tail.add_l1(cursor, 0.0, 1.0, 2.0, 1.0, 1.0)
    skipped = tail.skipped_s
    assert tail.add_l1(cursor + limit, 0.0, 1.0, 2.0, 1.0, 1.0) and tail.skipped_s == skipped
    tail.advance(cursor - 5000)  # never backwards: the window stays where it was
    assert not tail.add_l1(cursor - 1, 0.0, 1.0, 2.0, 1.0, 1.0) and tail.late == 2
    tail.advance(cursor + 2000)
    assert not tail.add_ml(cursor + 1999, 0.0, 1.0, 1.0) and tail.late == 3
    assert tail.add_ml(cursor + 2000 + limit, 0.0, 1.0, 1.0) and tail.skipped_s == skipped
    assert tail.add_ml(cursor + 2000 + limit + 1, 0.0, 1.0, 1.0) and tail.skipped_s > skipped
