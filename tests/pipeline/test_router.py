"""The router's guards: a corrupt frame is counted and dropped, never admitted anywhere."""

from __future__ import annotations

import json

import trio
import trio.testing

from trio_harvest.kinds import DEFAULT_WATERMARKS, PRICES
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.pipeline.rotation import Rotation
from trio_harvest.pipeline.router import Router
from trio_harvest.repair.continuity import IMPLAUSIBLE, AggIdTracker

NOW = 1_700_000_000_000


def agg(i: int, t: int = NOW) -> str:
    return json.dumps({"stream": "btcusdt@aggTrade", "data": {
        "e": "aggTrade", "E": t, "s": "BTCUSDT", "a": i, "p": "100.5", "q": "0.1", "f": i,
        "l": i, "T": t, "m": False}})


async def test_an_implausible_event_time_is_rejected_not_written() -> None:
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    router = Router(lanes, ("BTCUSDT",), depth_levels=5, wall_ms=lambda: NOW)
    for i in range(10):
        await router.handle(agg(i))
    await router.handle(agg(10, t=10**17))  # year 3170843
    await router.handle(agg(11, t=123))  # 1970
    await router.handle(agg(12, t=NOW - 400 * 86_400_000))  # a year off its own stream
    await router.handle(agg(13))
    rows = lanes.get(PRICES, "BTCUSDT").drain()
    assert [r[4] for r in rows] == [*range(10), 13]
    assert router.stats.rejected == 3 and router.stats.quarantined == 1


async def test_a_stream_a_year_off_the_local_clock_is_kept() -> None:
    """Times are judged against the stream's own, never against the host's clock."""
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    router = Router(lanes, ("BTCUSDT",), depth_levels=5, wall_ms=lambda: NOW)
    year_ago = NOW - 400 * 86_400_000
    for i in range(5):
        await router.handle(agg(i, t=year_ago + i))
    await router.release_held()
    assert [r[4] for r in lanes.get(PRICES, "BTCUSDT").drain()] == list(range(5))
    assert router.stats.rejected == 0


def test_an_implausible_agg_id_jump_is_not_admitted() -> None:
    tracker = AggIdTracker()
    for i in range(100):
        tracker.admit(i, NOW)
    assert tracker.admit(10**12, NOW) == IMPLAUSIBLE
    assert tracker.admit(100, NOW) != IMPLAUSIBLE and tracker.last_id == 100  # real ids go on


async def test_rows_that_cannot_be_partitioned_go_to_the_dead_letter() -> None:
    """Defence in depth behind the router: a batch rotation cannot split by date is
    dead-lettered, never dropped, and rotation keeps running."""
    saved: list[object] = []
    dead: list[list[tuple[object, ...]]] = []

    async def save(part: object, gate: object) -> None:
        saved.append(part)

    async def dead_letter(kind: str, symbol: str, rows: list[tuple[object, ...]],
                          gate: object, *, venue: str = "binance-usdm") -> None:
        dead.append(list(rows))

    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    rotation = Rotation(lanes, save, dead_letter, rotate_sec=1, write_timeout=5,
                        deadletter_timeout=5, save_concurrency=2)
    lanes.set_wake(rotation.wake)
    lane = lanes.get(PRICES, "BTCUSDT")
    async with trio.open_nursery() as nursery:
        await nursery.start(rotation.run)
        lane.put_nowait((10**17, 0, 0, "BTCUSDT", 1, 1.0, 1.0, 1, 1, False))
        await trio.sleep(1.5)
        lane.put_nowait((NOW, 0, 0, "BTCUSDT", 2, 1.0, 1.0, 2, 2, False))
        await trio.sleep(1.5)
        nursery.cancel_scope.cancel()
    assert len(dead) == 1 and dead[0][0][4] == 1
    assert len(saved) == 1


def eth(i: int, t: int = NOW) -> str:
    return agg(i, t).replace("btcusdt", "ethusdt").replace("BTCUSDT", "ETHUSDT")


async def test_symbols_join_and_leave_while_running() -> None:
    """A listing change: a new symbol's frames are routed once added; a removed symbol's late
    frames and the venue's subscription replies are counted, never warned about or routed."""
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    router = Router(lanes, ("BTCUSDT",), depth_levels=5, wall_ms=lambda: NOW,
                    streams={"btcusdt@aggTrade": "BTCUSDT"})
    await router.handle(eth(1))
    assert router.stats.unexpected == 1  # not subscribed yet
    router.add_symbol("ETHUSDT", {"ethusdt@aggTrade": "ETHUSDT"}, None)
    await router.handle(eth(2))
    await router.handle('{"result":null,"id":7}')
    await router.handle('{"error":{"code":2,"msg":"Invalid request"},"id":8}')
    assert router.stats.replies == 2 and router.stats.unexpected == 1
    assert router.remove_symbol("BTCUSDT") == ["btcusdt@aggTrade"]
    await router.handle(agg(5))
    assert router.stats.retired == 1 and router.stats.unexpected == 1
    await router.release_held()
    assert [r[4] for r in lanes.get(PRICES, "ETHUSDT").drain()] == [2]
    assert lanes.get(PRICES, "BTCUSDT").pending == 0


async def test_book_levels_without_a_time_are_stamped_with_their_receipt() -> None:
    """Spot's partial depth carries no time: its rows and the signals see the receive time, never
    0 (a 1970 partition)."""
    from trio_harvest import venues
    from trio_harvest.kinds import ORDERBOOK

    seen: list[int] = []

    class Hook:
        def on_book_levels(self, d: object, source: str) -> None:
            seen.append(d.event_ms)  # type: ignore[attr-defined]

    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    router = Router(lanes, ("BTCUSDT",), depth_levels=5, wall_ms=lambda: NOW,
                    venue=venues.get("binance-spot"))
    router.hooks = {"BTCUSDT": Hook()}  # type: ignore[dict-item]
    for u in (9, 10):
        await router.handle(json.dumps({"stream": "btcusdt@depth5@100ms", "data": {
            "lastUpdateId": u, "bids": [["1.0", "2.0"]] * 5, "asks": [["1.1", "3.0"]] * 5}}))
    rows = lanes.get(ORDERBOOK, "BTCUSDT").drain()
    assert [(r[0], r[1], r[2], r[5]) for r in rows] == [(NOW, NOW, NOW, 9), (NOW, NOW, NOW, 10)]
    assert seen == [NOW, NOW] and router.stats.rejected == 0
