"""``Lane.put_columns_nowait``: many rows of the generic shape given as columns, in one put. It
stores exactly what ``put_nowait`` of each row stores (values, nulls, chunks, the watermark's
wake, the journal checkpoint), or takes nothing and says so (no room, the end of a chunk, a
value a column refuses, a shaped kind, a shard's window), so the caller puts them one by one."""

from __future__ import annotations

from typing import Any

from trio_harvest.kinds import BOOK_UPDATES, BOOK_UPDATES_SCHEMA, ORDERBOOK, Row
from trio_harvest.pipeline.chunks import GenericBuilder, UntypedBuilder
from trio_harvest.pipeline.lanes import Lane
from trio_harvest.pipeline.window import Window, WindowLane
from trio_harvest.venues.rows import level_rows, level_update_columns

BIDS = [(100.5, 1.25), (100.25, 0.0), (99.75, 3.0)]
ASKS = [(101.0, 2.0), (101.5, 0.5)]


def _rows(uid: int, bids: list[tuple[float, float]] = BIDS,
          asks: list[tuple[float, float]] = ASKS) -> list[Row]:
    return level_rows("BTCUSDT", 1_000 + uid, 999 + uid, 1_005 + uid, uid - 4, uid, uid - 5,
                      bids, asks, False)


def _columns(rows: list[Row]) -> list[list[Any]]:
    return [list(c) for c in zip(*rows, strict=True)]


def _lane(capacity: int = 400, high: int = 300, woken: list[Lane] | None = None,
          schema: bool = True) -> Lane:
    wake = woken.append if woken is not None else (lambda lane: None)
    return Lane(BOOK_UPDATES, "BTCUSDT", high=high, capacity=capacity, wake=wake,
                schema=BOOK_UPDATES_SCHEMA if schema else None, cursor=[7])


def _state(lane: Lane) -> tuple[list[int], list[Row], set[str]]:
    batch = lane.drain()
    nan: set[str] = set()
    for chunk in batch.chunks:
        nan |= chunk.nan_columns()
    return [c.n for c in batch.chunks], list(batch), nan


def test_level_update_columns_are_level_rows_by_column() -> None:
    rows = _rows(10)
    assert level_update_columns("BTCUSDT", 1_010, 1_009, 1_015, 6, 10, 5, BIDS, ASKS,
                                False) == _columns(rows)
    assert level_update_columns("X", 1, 1, 1, 1, 1, 1, [], [], True) == [[]] * 11


def test_columns_store_what_each_row_stores_chunks_and_all() -> None:
    """Events of 5 rows into chunks of 100 rows (capacity 400): where an event would end a
    chunk it is refused whole, and the rows one by one make the same chunks."""
    for typed in (True, False):
        by_rows, by_columns = _lane(schema=typed), _lane(schema=typed)
        refused = 0
        for uid in range(60):
            rows = _rows(uid)
            for row in rows:
                assert by_rows.put_nowait(row)
            if not by_columns.put_columns_nowait(_columns(rows), len(rows)):
                refused += 1
                for row in rows:
                    assert by_columns.put_nowait(row)
        assert by_columns.level == by_rows.level == 300
        assert by_columns.first_seq == by_rows.first_seq == 7
        assert refused == 0  # 5-row events fill 100-row chunks exactly
        assert _state(by_columns) == _state(by_rows)


def test_an_event_that_would_end_a_chunk_is_refused_whole() -> None:
    lane = _lane()  # chunks of 100 rows
    rows = _rows(1, BIDS * 11, ASKS * 11)  # 55 rows
    assert lane.put_columns_nowait(_columns(rows), 55)
    assert not lane.put_columns_nowait(_columns(rows), 55)  # 45 rows left in the chunk
    assert lane.level == 55
    for row in rows:
        lane.put_nowait(row)
    assert [c.n for c in lane.drain().chunks] == [100, 10]


def test_no_room_takes_nothing() -> None:
    woken: list[Lane] = []
    lane = _lane(capacity=40, high=38, woken=woken)  # chunks of 10 rows
    rows = _rows(1)
    for _ in range(7):
        assert lane.put_columns_nowait(_columns(rows), 5)
    assert lane.level == 35 and woken == []
    assert lane.put_columns_nowait(_columns(rows), 5)  # 40 rows: the high mark crossed
    assert lane.level == 40 and woken == [lane]
    assert not lane.put_columns_nowait(_columns(rows[:1]), 1)
    assert not lane.put_nowait(rows[0])
    assert lane.level == 40 and woken == [lane]
    assert len(list(lane.drain())) == 40


def test_values_a_column_refuses_are_taken_nowhere_then_row_by_row_as_before() -> None:
    """A null price (NaN, and remembered), an id beyond int64, a string where an int goes:
    the columns are refused whole; the rows one by one store (or refuse) what they always
    did."""
    cases = [
        _rows(3, [(100.0, None)], ASKS),  # type: ignore[list-item]
        [(*row[:5], 2**64, *row[6:]) for row in _rows(4)],
        [(*row[:4], "x", *row[5:]) for row in _rows(5)],
    ]
    for rows in cases:
        by_rows, by_columns = _lane(), _lane()
        for lane in (by_rows, by_columns):
            lane.put_nowait(_rows(1)[0])  # an open chunk with a row in it
        assert not by_columns.put_columns_nowait(_columns(rows), len(rows))
        assert by_columns.level == 1
        assert isinstance(by_columns._generic, GenericBuilder)
        assert all(len(col) == 1 for col in by_columns._generic.cols)
        outcomes = []
        for lane in (by_rows, by_columns):
            try:
                for row in rows:
                    lane.put_nowait(row)
                outcomes.append(None)
            except ValueError as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1]
        assert _state(by_columns) == _state(by_rows)


def test_untyped_columns_of_another_width_are_refused() -> None:
    b = UntypedBuilder()
    assert b.add_columns([[1, 2], ["a", "b"]], 2)
    assert not b.add_columns([[3], ["c"], [True]], 1)
    assert not b.add_columns([[3, 4], ["c"]], 2)
    assert b.n == 2 and b.cols == [[1, 2], ["a", "b"]]


def test_a_shaped_kind_and_a_window_take_rows_one_by_one() -> None:
    ob = Lane(ORDERBOOK, "BTCUSDT", high=10, capacity=20, wake=lambda lane: None)
    assert not ob.put_columns_nowait([[1], [2]], 1)
    lane = _lane()
    window = WindowLane(lane, Window(0, 1_003))
    rows = _rows(1)
    assert not window.put_columns_nowait(_columns(rows), 5)
    assert lane.level == 0 and window.window.dropped == 0
