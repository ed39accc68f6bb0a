"""The usual diff event's ``book_updates`` rows go in synchronously, as columns in one put; the
rows, their chunks and the ``orderbook`` rows are exactly those of the row-by-row path (the
one replay and a lane that cannot take the columns use). On the real USD-M capture: diff
depth, REST snapshots handed over as the fetcher would, small lanes whose chunks end inside
events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trio_harvest.kinds import BOOK_UPDATES, ORDERBOOK, Row, schema_for
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.repair.booksync import DONE, DiffBooks
from trio_harvest.venues.binance_usdm.decode import DepthUpdate

from . import capture

SYMBOLS = ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")
LEVELS = 5
# capacity 4004: chunks of 1001 rows, drained past 2000 rows, so chunks end inside events
MARKS = {BOOK_UPDATES: (3_000, 4_004), ORDERBOOK: (3_000, 4_004)}


async def _harvest(fixtures_dir: Path, by_rows: bool,
                   marks: dict[str, tuple[int, int]] = MARKS) -> tuple[list[Any], int, DiffBooks]:
    """Every drained chunk (its kind, symbol, size and rows) in order, and how many events
    were done synchronously. A full lane is drained when its producer waits for room."""
    drained: list[Any] = []

    def wake(lane: Any) -> None:
        if lane.level >= lane.capacity:  # rotation, woken by a producer that must wait
            drained.append(_taken(lane))

    lanes = Lanes(marks, wake=wake, depth_levels=LEVELS,
                  schema_of=lambda kind: schema_for(kind, LEVELS))

    async def put_gap(row: Row) -> None:
        raise AssertionError("no gap in the capture")

    books = DiffBooks(SYMBOLS, levels=LEVELS, put_gap=put_gap,
                      updates_of=lambda s: lanes.get(BOOK_UPDATES, s))
    if by_rows:
        books.admit = lambda kind, row: True  # replay's path: each row looked at, one by one
    done = 0
    for recv_ms, msg in capture.messages(fixtures_dir, books):
        if isinstance(msg, DepthUpdate):
            rest = books.on_depth(msg, recv_ms, lanes.get(ORDERBOOK, msg.symbol), None)
            done += rest is DONE
            await rest
            for lane in lanes:
                if lane.level > 2_000:
                    drained.append(_taken(lane))
    drained += [_taken(lane) for lane in lanes]
    return drained, done, books


def _taken(lane: Any) -> tuple[str, str, list[int], list[Row]]:
    batch = lane.drain()
    return lane.kind, lane.symbol, [c.n for c in batch.chunks], list(batch)


async def test_synchronous_columns_write_what_row_by_row_writes(fixtures_dir: Path) -> None:
    fast, fast_done, fast_books = await _harvest(fixtures_dir, by_rows=False)
    slow, slow_done, slow_books = await _harvest(fixtures_dir, by_rows=True)
    assert fast == slow
    assert fast_books.stats.update_rows == slow_books.stats.update_rows > 1_000
    assert fast_books.stats.rows == slow_books.stats.rows > 100
    assert sum(len(sizes) - 1 for kind, _, sizes, _ in fast if kind == BOOK_UPDATES) >= 5
    # applied events, but for those after a snapshot or at the end of a chunk: no coroutine
    assert fast_done - slow_done > 0.9 * fast_books.stats.rows


async def test_a_full_book_updates_lane_makes_the_event_wait_as_row_by_row_does(
        fixtures_dir: Path) -> None:
    """Lanes of 40 rows (chunks of 10): most events do not fit in the room left; they wait
    for room row by row, and every row arrives, in order, in the same chunks."""
    small = {BOOK_UPDATES: (30, 40), ORDERBOOK: (30, 40)}
    fast, _, fast_books = await _harvest(fixtures_dir, by_rows=False, marks=small)
    slow, _, _ = await _harvest(fixtures_dir, by_rows=True, marks=small)
    assert fast == slow
    assert len(fast) > fast_books.stats.update_rows // 40 > 100
