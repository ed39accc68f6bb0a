from __future__ import annotations

import trio
import trio.testing

from trio_harvest.kinds import OFI, PRICES
from trio_harvest.pipeline.lanes import Lane, Lanes


def _row(i: int, symbol: str = "BTCUSDT") -> tuple[object, ...]:
    return (i, symbol)


def test_high_watermark_wakes_once_per_crossing() -> None:
    woken: list[Lane] = []
    lane = Lane(PRICES, "BTCUSDT", high=3, capacity=6, wake=woken.append)
    for i in range(2):
        assert lane.put_nowait(_row(i))
    assert woken == []
    lane.put_nowait(_row(2))
    assert woken == [lane]
    lane.put_nowait(_row(3))
    assert woken == [lane]
    assert [r[0] for r in lane.drain()] == [0, 1, 2, 3]
    assert lane.level == 0 and lane.buffered == 0


async def test_authoritative_lane_applies_backpressure_and_never_drops() -> None:
    woken: list[Lane] = []
    lane = Lane(PRICES, "BTCUSDT", high=2, capacity=3, wake=woken.append)
    for i in range(3):
        await lane.put(_row(i))
    done = trio.Event()

    async def producer() -> None:
        await lane.put(_row(3))  # blocks: lane is full
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set() and lane.stats.blocked == 1
        assert woken[-1] is lane  # a full lane forces a flush
        first = lane.drain()
        await done.wait()
    assert [r[0] for r in first] == [0, 1, 2]
    assert [r[0] for r in lane.drain()] == [3]
    assert lane.level == 0


def test_preview_lane_spills_then_counts_drops_never_blocks() -> None:
    woken: list[Lane] = []
    lane = Lane(OFI, "BTCUSDT", high=2, capacity=2, wake=woken.append)
    for i in range(6):
        lane.offer(_row(i))
    assert lane.level == 2
    assert [r[0] for r in lane.spill] == [2, 3]
    assert lane.stats.spilled == 2 and lane.stats.dropped == 2
    assert [r[0] for r in lane.take_spill()] == [2, 3] and len(lane.spill) == 0


def test_lanes_registry_routes_preview_rows_by_symbol() -> None:
    lanes = Lanes({OFI: (10, 20), PRICES: (10, 20)}, wake=lambda lane: None)
    lanes.offer(OFI, (1, "ETHUSDT"))
    lanes.offer(OFI, (2, "BTCUSDT"))
    assert lanes.get(OFI, "ETHUSDT").level == 1
    assert lanes.total_pending() == 2 and len(lanes) == 2
