"""A diff event whose rows must wait for room (a full lane; replay, which always goes row by row):
each of its lanes holds the journal seq of the event's own frame, whatever frame the journal's
cursor points at when the row goes in; and a wait cancelled at a stop leaves no event half
written (the rest of its rows are kept, spilled to the dead letter where there is no room)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import trio
import trio.testing

from trio_harvest.kinds import BOOK_UPDATES, ORDERBOOK, Row, schema_for
from trio_harvest.pipeline.lanes import Lane, Lanes
from trio_harvest.repair.booksync import DONE, DiffBooks
from trio_harvest.venues.binance_usdm.decode import DepthUpdate
from trio_harvest.venues.binance_usdm.diffbook import Snapshot

LEVELS = 5
SYMBOL = "BTCUSDT"
LEVEL_CHANGES = 10  # rows of the event's book_updates
FRAME_SEQ = 7  # the journal seq of the event's frame


def rig(updates_room: int, live: bool = True) -> tuple[Lanes, DiffBooks]:
    """A book (live, or waiting for a snapshot) whose ``book_updates`` lane has room for
    ``updates_room`` more rows."""
    capacity = 40
    lanes = Lanes({BOOK_UPDATES: (capacity, capacity), ORDERBOOK: (capacity, capacity)},
                  wake=lambda lane: None, depth_levels=LEVELS,
                  schema_of=lambda kind: schema_for(kind, LEVELS))

    async def put_gap(row: Row) -> None:
        raise AssertionError("no gap here")

    books = DiffBooks((SYMBOL,), levels=LEVELS, put_gap=put_gap,
                      updates_of=lambda s: lanes.get(BOOK_UPDATES, s))
    books.bases.cursor = lanes.cursor  # as the journal wiring does
    if live:
        books.books[SYMBOL].restore({"last_update_id": 1, "last_ts_ms": 1000,
                                     "bids": [[99.0, 1.0]], "asks": [[201.0, 1.0]]})
    updates = lanes.get(BOOK_UPDATES, SYMBOL)
    for i in range(capacity - updates_room):  # rows of earlier frames, drained later
        assert updates.put_nowait(old_row(i))
    return lanes, books


def old_row(i: int) -> Row:
    return (1000, 1000, 1000, SYMBOL, 0, 1, 0, "bid", 50.0 - i / 100, 1.0, False)


def event(u: int = 2, changes: int = LEVEL_CHANGES) -> DepthUpdate:
    half = changes // 2
    return DepthUpdate(event_ms=2000 + u, symbol=SYMBOL, first_update_id=u, update_id=u,
                       bids=[(98.0 - i, 1.0) for i in range(half)],
                       asks=[(202.0 + i, 1.0) for i in range(half)],
                       trade_ms=2000 + u, prev_update_id=u - 1)


async def finish(rest: Awaitable[None]) -> None:
    await rest


def lanes_of(lanes: Lanes) -> tuple[Lane, Lane]:
    return lanes.get(BOOK_UPDATES, SYMBOL), lanes.get(ORDERBOOK, SYMBOL)


async def test_rows_that_waited_hold_their_own_frame_not_the_one_journaled_meanwhile() -> None:
    lanes, books = rig(updates_room=3)
    updates, top = lanes_of(lanes)
    lanes.cursor[0] = FRAME_SEQ  # the journal has just appended the event's frame
    rest = books.on_depth(event(), 2000, top, None)
    assert rest is not DONE  # 10 rows, room for 3: they go one by one and wait
    async with trio.open_nursery() as nursery:
        nursery.start_soon(finish, rest)
        await trio.testing.wait_all_tasks_blocked()
        assert updates.level == updates.capacity and top.level == 0  # waiting for room
        lanes.cursor[0] = FRAME_SEQ + 5  # another connection journals frames meanwhile
        drained = updates.drain()  # rotation makes room (the batch holds the seq itself)
        updates.drained()
        assert drained.n == updates.capacity
    # the rows that went in after the wait, and the event's orderbook row, came from FRAME_SEQ
    assert updates.level == LEVEL_CHANGES - 3 and top.level == 1
    assert updates.first_seq == FRAME_SEQ
    assert top.first_seq == FRAME_SEQ


async def test_a_wait_cancelled_at_a_stop_leaves_no_event_half_written() -> None:
    lanes, books = rig(updates_room=3)
    updates, top = lanes_of(lanes)
    lanes.cursor[0] = FRAME_SEQ
    rest = books.on_depth(event(), 2000, top, None)
    async with trio.open_nursery() as nursery:  # the lane stays full: the stop cancels
        nursery.start_soon(finish, rest)
        await trio.testing.wait_all_tasks_blocked()
        assert updates.level == updates.capacity and top.level == 0
        nursery.cancel_scope.cancel()
    kept: list[Any] = list(updates.drain()) + list(updates.take_spill())
    new = [r for r in kept if r[5] == 2]  # the event's update id
    assert len(new) == LEVEL_CHANGES  # each level change once: in the lane or spilled
    assert len({(r[7], r[8]) for r in new}) == LEVEL_CHANGES
    assert top.pending == 1  # and the book's top after it
    assert updates.pending == 0 and top.first_seq == FRAME_SEQ


async def test_a_stop_during_a_snapshot_keeps_the_rows_of_every_event_it_replays() -> None:
    """The snapshot's levels wait for room; the stop cancels that wait: the events buffered
    before the snapshot, and the one that brought it, are applied and written all the same."""
    lanes, books = rig(updates_room=3, live=False)
    updates, top = lanes_of(lanes)
    for u in (2, 3, 4):  # buffered: the book waits for its snapshot
        assert books.on_depth(event(u, 2), 2000 + u, top, None) is DONE
    books._ready[SYMBOL] = Snapshot(1, [(99.0 - i, 1.0) for i in range(3)],
                                    [(201.0 + i, 1.0) for i in range(3)])
    lanes.cursor[0] = FRAME_SEQ
    rest = books.on_depth(event(5, 2), 2005, top, None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(finish, rest)
        await trio.testing.wait_all_tasks_blocked()
        assert updates.level == updates.capacity and top.level == 0  # the snapshot waits
        nursery.cancel_scope.cancel()
    assert top.first_seq == FRAME_SEQ  # (updates: the older rows still in it hold theirs)
    kept = list(updates.drain()) + list(updates.take_spill())
    assert sum(1 for r in kept if r[10]) == 6  # the snapshot's levels
    assert sorted(r[5] for r in kept if r[4] > 1 and not r[10]) == [2, 2, 3, 3, 4, 4, 5, 5]
    assert [r[5] for r in top.drain()] == [2, 3, 4, 5]  # each event's top
    assert books.books[SYMBOL].live
