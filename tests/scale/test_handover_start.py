"""A shard that starts shortly before a hand-over boundary: its start-up share is the owners of
the moment it was computed (cli/scale.py), so a symbol the timeline already moves away at the
next boundary is in it. The listing follower (ops/universe.py) must window that leave before
ingest routes the first frame: a periodic poll comes one listing interval after the start, past
the boundary, and the rows taken from the boundary on meanwhile are the new owner's too (the
duplicated trades of the venue hand-over end-to-end test)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from trio_harvest.config import Config
from trio_harvest.ops.universe import Universe
from trio_harvest.scale.handover import Timeline, day_of, grid_ceil
from trio_harvest.scale.shards import Shard
from trio_harvest.venues import get
from trio_harvest.venues.binance_usdm.listing import TRADING, Listed

from .test_handover import MIDNIGHT, NAMES, STEP

VENUE = get("binance-usdm")
WEIGHTS = {s: 16 * (i + 1) ** 2 for i, s in enumerate(NAMES)}
CHANGE = MIDNIGHT + 3_600_000  # SUIUSDT listed, LTCUSDT delisted (the venue's own times)
LISTING = {s: Listed(TRADING, 1_000) for s in NAMES} | {
    "SUIUSDT": Listed(TRADING, CHANGE), "LTCUSDT": Listed("SETTLING", 1_000, CHANGE)}
BOUNDARY = grid_ceil(CHANGE + 2 * STEP, STEP)  # where that change moves symbols
T0 = BOUNDARY - 500  # the shard starts half a second before it


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Router:
    """The follower's view of the router: the symbols it routes and the windows it was told."""

    def __init__(self, symbols: set[str]) -> None:
        self.symbols = frozenset(symbols)
        self.stats = SimpleNamespace(last_seen={})
        self.windows: dict[str, tuple[int | None, int | None]] = {}

    def window(self, symbol: str, start_ms: int | None, end_ms: int | None) -> object:
        self.windows[symbol] = (start_ms, end_ms)
        return object()

    def unwindow(self, symbol: str) -> None:
        self.windows.pop(symbol, None)

    def add_symbol(self, symbol: str, streams: object, hook: object) -> None:
        self.symbols = self.symbols | {symbol}


def timeline(shard: Shard) -> Timeline:
    return Timeline(LISTING, ("ALL",), shard, lambda day: WEIGHTS, STEP, day_of(T0),
                    trading=TRADING)


@dataclass
class Start:
    """The shard that loses a symbol at BOUNDARY, started at T0 with cli/scale.py's share."""

    follower: Universe
    router: Router
    leaves: set[str]  # the symbols of its start-up share it must leave at the boundary
    joins: set[str]  # those it joins there


def started(exchange_ms: Callable[[], int]) -> Start:
    moves = {}
    for i in range(2):
        tl = timeline(Shard(i, 2))
        moves[i] = ({s for s in LISTING if tl.mine(s, T0) and not tl.mine(s, BOUNDARY)},
                    {s for s in LISTING if not tl.mine(s, T0) and tl.mine(s, BOUNDARY)})
    index = next(i for i in range(2) if moves[i][0])  # the premise: some symbol moves away
    shard = Shard(index, 2)
    share = {s for s in LISTING if timeline(shard).mine(s, T0)}
    config = Config(symbols=tuple(sorted(share)), universe=("ALL",), shard=str(shard),
                    listing_interval=STEP / 1000)
    connections: list[object] = []

    def open_connection(plan: object) -> None:  # a connection opened for joins (full at once)
        connections.append(SimpleNamespace(plan=plan, room=lambda limit: 0))

    router = Router(share)
    host: Any = SimpleNamespace(
        config=config, router=router, engines={}, connections=connections, diff_books=None,
        lanes=SimpleNamespace(get=lambda kind, symbol: object()),
        repair=SimpleNamespace(prices_into=lambda symbol, sink: None,
                               add_symbol=lambda symbol, fresh: None),
        make_engine=lambda symbol: object(), open_connection=open_connection,
        exchange_ms=exchange_ms, wall_ms=exchange_ms)

    async def fetch(url: str) -> dict[str, Listed]:
        return LISTING

    follower = Universe(host, "http://venue", fetch=fetch, weights=lambda day: WEIGHTS,
                        venue=VENUE)
    return Start(follower, router, *moves[index])


def windowed(start: Start) -> tuple[dict[str, int], dict[str, int], dict[str, Any]]:
    return start.follower.leaving, start.follower.joining, start.router.windows


def planned(start: Start) -> tuple[dict[str, int], dict[str, int], dict[str, Any]]:
    """Every leave kept until the boundary, every join from it, each a window on the router."""
    leaving = {s: BOUNDARY for s in start.leaves}
    joining = {s: BOUNDARY for s in start.joins}
    windows = {s: (None, BOUNDARY) for s in start.leaves} | {
        s: (BOUNDARY, None) for s in start.joins}
    return leaving, joining, windows


async def test_by_the_boundary_a_shard_just_started_has_windowed_its_hand_overs(
        autojump_clock: trio.testing.MockClock) -> None:
    begun = trio.current_time()

    def exchange_ms() -> int:
        return T0 + round((trio.current_time() - begun) * 1000)

    start = started(exchange_ms)
    start.follower.weights_of(day_of(T0))  # had at start-up (no thread: the clock jumps then)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(start.follower.run)
        await trio.sleep((BOUNDARY - T0) / 1000)  # the exchange's clock reaches the boundary
        assert windowed(start) == planned(start)  # no row from it on is kept of a leaving one
        nursery.cancel_scope.cancel()


async def test_the_follower_reports_started_only_once_its_first_poll_planned_the_moves() -> None:
    start = started(lambda: T0)
    async with trio.open_nursery() as nursery:
        await nursery.start(start.follower.run)  # the app routes frames only once this returned
        assert windowed(start) == planned(start) and start.follower.polls == 1
        nursery.cancel_scope.cancel()
