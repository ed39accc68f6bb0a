"""Lanes and rotation hold journal seqs until their rows are durable (the checkpoint's inputs)."""

from __future__ import annotations

import trio

from trio_harvest.kinds import GAPS, OFI, PRICES
from trio_harvest.pipeline.lanes import Lanes

WM = {PRICES: (10, 2), GAPS: (10, 20), OFI: (10, 20)}


def row(symbol: str = "BTCUSDT") -> tuple[object, ...]:
    return (1, 1, 1, symbol, 1, 1.0, 1.0, 1, 1, False)


async def test_a_lane_holds_the_seq_of_its_oldest_pending_row_until_drained() -> None:
    lanes = Lanes(dict(WM), wake=lambda lane: None)
    lane = lanes.get(PRICES, "BTCUSDT")
    assert lanes.held_seqs() == [-1]
    lanes.cursor[0] = 7
    assert lane.put_nowait(row())
    lanes.cursor[0] = 9
    assert lane.put_nowait(row())
    assert lanes.held_seqs() == [7]  # the oldest, not the newest
    lanes.get(OFI, "BTCUSDT").offer((1, "BTCUSDT"))
    assert lanes.held_seqs() == [7]  # derived kinds are recomputed on replay: never held
    lane.drain()
    lane.drained()
    assert lanes.held_seqs() == [-1]


async def test_a_blocked_producer_holds_its_own_frame_seq_not_a_later_one() -> None:
    lanes = Lanes(dict(WM), wake=lambda lane: None)
    lane = lanes.get(PRICES, "BTCUSDT")
    lanes.cursor[0] = 1
    lane.put_nowait(row())
    lane.put_nowait(row())  # full (capacity 2)
    lanes.cursor[0] = 5
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lane.put, row())  # frame 5 waits for room
        await trio.testing.wait_all_tasks_blocked()
        lane.drain()
        lane.drained()  # the drained batch holds 1 (in rotation); the lane nothing yet
        lanes.cursor[0] = 12  # other connections moved on meanwhile
    assert lane.level == 1 and lanes.held_seqs() == [5]
