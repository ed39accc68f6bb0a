"""A shard that joins a symbol at a boundary to come subscribes its streams on connections that
are open: the first frames arrive while the follower is still telling them (a connection's
messages are paced; the next connection waits its turn). The symbol's window must be in place
before the first subscription goes out, else those frames, timed before the boundary, are kept
by the joiner as well as by the old owner (the duplicated trades of the venue hand-over
end-to-end test, a few ms before the join's log line)."""

from __future__ import annotations

from types import SimpleNamespace

from trio_harvest.channels import stream_plan

from .test_handover_start import BOUNDARY, T0, started, timeline


async def test_a_joining_symbol_is_windowed_before_its_streams_are_subscribed() -> None:
    start = started(lambda: T0 - 1_300)  # a poll in the grid step before the one before it
    follower, router = start.follower, start.router
    cfg = follower.host.config
    routes = {s.route for s in stream_plan(follower.venue, ("BTCUSDT",), cfg.harvested,
                                           depth_levels=cfg.depth_levels,
                                           depth_speed=cfg.depth_speed, book=cfg.book,
                                           book_ticker=cfg.book_ticker)}
    told: list[dict[str, tuple[int | None, int | None]]] = []

    class Connection:  # an open connection with room: the follower tells it the new streams
        def __init__(self, route: str) -> None:
            self.plan = SimpleNamespace(route=route, streams=())

        def room(self, limit: int) -> int:
            return 100

        def retarget(self, add: tuple[object, ...] = (), remove: object = ()) -> None:
            self.plan.streams = (*self.plan.streams, *add)

        async def tell(self) -> None:  # frames of the new streams may be routed from here on
            told.append(dict(router.windows))

    follower.host.connections.extend(Connection(r) for r in sorted(routes))
    shard = follower.shard
    assert shard is not None
    joins = {s for s in start.joins if not timeline(shard).mine(s, T0 - 1_300)}
    assert joins  # the premise: symbols that join at the boundary, announced one step before
    await follower.poll()
    assert told  # they were subscribed on the open connections
    for windows in told:  # and each time a connection was told, already windowed
        assert {s: windows.get(s) for s in joins} == {s: (BOUNDARY, None) for s in joins}
    assert follower.joining == {s: BOUNDARY for s in joins}
