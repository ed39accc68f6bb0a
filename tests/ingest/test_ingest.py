"""Ingest against an injected fake ``connect``: reconnects, stalls and errors, under MockClock."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
import trio_websocket

from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import Connection, MessageSource
from trio_harvest.venues.binance_usdm.streams import MARKET, ConnectionPlan, StreamSpec


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def plan(name: str) -> ConnectionPlan:
    return ConnectionPlan(MARKET, (StreamSpec("BTCUSDT", "aggTrade", name),))


class Script:
    """Each connection attempt pops one behaviour: 'refuse', 'handshake', or a list of frames
    followed by 'close' / 'stall'."""

    def __init__(self, attempts: list[object]) -> None:
        self.attempts = attempts
        self.urls: list[str] = []
        self.opened_at: list[float] = []

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[MessageSource]:
        self.urls.append(url)
        self.opened_at.append(trio.current_time())
        behaviour = self.attempts.pop(0) if self.attempts else "stall"
        if behaviour == "refuse":
            raise OSError(111, "Connection refused")
        if behaviour == "handshake":
            raise trio_websocket.HandshakeError("bad handshake")
        frames = list(behaviour) if isinstance(behaviour, list) else []
        end = frames.pop() if frames and frames[-1] in ("close", "stall") else "stall"

        class Source:
            async def get_message(self) -> str:
                if frames:
                    await trio.sleep(0.01)
                    return str(frames.pop(0))
                if end == "close":
                    raise trio_websocket.ConnectionClosed(None)
                await trio.sleep_forever()
                raise AssertionError

        yield Source()


async def test_reconnects_with_backoff_after_errors_and_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(["refuse", "handshake", ["a", "b", "close"], ["c", "close"]])
    got: list[str | bytes] = []

    async def handle(frame: str | bytes) -> None:
        got.append(frame)

    disconnects: list[str] = []

    async def on_disconnect(p: ConnectionPlan, error: str) -> None:
        disconnects.append(error)

    conn = Connection(plan("btcusdt@aggTrade"), "ws://x", script.connect, handle, stall_timeout=5,
                      backoff=Backoff(1.0, 4.0, random.Random(1)), on_disconnect=on_disconnect)
    with trio.move_on_after(20):
        await conn.run()
    assert got == ["a", "b", "c"]
    assert script.urls[0] == "ws://x/market/stream?streams=btcusdt@aggTrade"
    assert disconnects[0].startswith("ConnectionRefusedError") and disconnects[1].startswith("HandshakeError")
    assert disconnects[2].startswith("ConnectionClosed")
    assert conn.stats.connects >= 2 and conn.stats.reconnects >= 4
    gaps = [b - a for a, b in zip(script.opened_at, script.opened_at[1:], strict=False)]
    assert all(g <= 4.1 for g in gaps[:2])  # capped backoff between failed attempts


async def test_stalled_connection_is_replaced(autojump_clock: trio.testing.MockClock) -> None:
    script = Script([["a", "stall"], ["b", "stall"]])
    got: list[str | bytes] = []

    async def handle(frame: str | bytes) -> None:
        got.append(frame)

    conn = Connection(plan("s"), "ws://x", script.connect, handle, stall_timeout=30,
                      backoff=Backoff(0.5, 1.0, random.Random(1)))
    with trio.move_on_after(45):
        await conn.run()
    assert got == ["a", "b"]
    assert conn.stats.last_error.startswith("stalled")
    assert 30 <= script.opened_at[1] - script.opened_at[0] <= 32.1  # stall + check + backoff


async def test_a_failing_connection_never_takes_down_another(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bad = Script(["refuse"] * 1000)
    good = Script([[str(i) for i in range(100)] + ["stall"]])
    got: list[str | bytes] = []

    async def boom(frame: str | bytes) -> None:
        raise RuntimeError("a bug in a handler")

    async def handle(frame: str | bytes) -> None:
        got.append(frame)

    conns = [
        Connection(plan("a"), "ws://x", bad.connect, handle, stall_timeout=10,
                   backoff=Backoff(0.1, 1.0, random.Random(1))),
        Connection(plan("b"), "ws://x", good.connect, handle, stall_timeout=100,
                   backoff=Backoff(0.1, 1.0, random.Random(1))),
        Connection(plan("c"), "ws://x", Script([["x", "stall"]] * 1000).connect, boom,
                   stall_timeout=10, backoff=Backoff(0.1, 1.0, random.Random(1))),
    ]
    with trio.move_on_after(30):
        async with trio.open_nursery() as nursery:
            for c in conns:
                nursery.start_soon(c.run)
    assert got == [str(i) for i in range(100)]
    assert conns[0].stats.failures > 10
    assert conns[2].stats.last_error.startswith("unexpected RuntimeError"), conns[2].stats


async def test_request_reconnect(autojump_clock: trio.testing.MockClock) -> None:
    script = Script([["a", "stall"], ["b", "stall"]])
    got: list[str | bytes] = []

    async def handle(frame: str | bytes) -> None:
        got.append(frame)

    conn = Connection(plan("s"), "ws://x", script.connect, handle, stall_timeout=1000,
                      backoff=Backoff(0.5, 1.0, random.Random(1)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        await trio.sleep(5)
        conn.request_reconnect("health says stale")
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert got == ["a", "b"] and conn.stats.last_error == "reconnect requested"


async def test_waiting_on_backpressure_is_not_a_stall(autojump_clock: trio.testing.MockClock) -> None:
    """A full lane can block ``handle`` for longer than ``stall_timeout``: that is our disk, not a
    silent exchange, so it must neither reconnect nor cancel the blocked put."""
    script = Script([["a", "b", "stall"]])
    got: list[str | bytes] = []
    released = trio.Event()

    async def handle(frame: str | bytes) -> None:
        if frame == "a":
            await released.wait()
        got.append(frame)

    conn = Connection(plan("s"), "ws://x", script.connect, handle, stall_timeout=30,
                      backoff=Backoff(0.5, 1.0, random.Random(1)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        await trio.sleep(100)  # blocked three stall timeouts long
        conn.request_reconnect("health thinks it is stale")
        assert conn.stats.failures == 0 and got == []
        released.set()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert got == ["a", "b"] and conn.stats.failures == 0


async def test_a_failing_disconnect_hook_never_ends_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A per-connection failure stays there (it used to end ingest)."""
    script = Script([["a", "close"], ["b", "close"], ["c", "close"]])
    got: list[str | bytes] = []

    async def handle(frame: str | bytes) -> None:
        got.append(frame)

    async def on_disconnect(p: ConnectionPlan, error: str) -> None:
        raise KeyError("a bug while recording the gap")

    conn = Connection(plan("s"), "ws://x", script.connect, handle, stall_timeout=30,
                      backoff=Backoff(0.1, 0.2, random.Random(1)), on_disconnect=on_disconnect)
    with trio.move_on_after(10):
        await conn.run()
    assert got == ["a", "b", "c"] and conn.stats.reconnects >= 3


class QueuedSource:
    """Frames already received: ``poll`` takes them without a checkpoint, ``get_message`` with
    one; once they are gone, ``get_message`` waits forever."""

    def __init__(self, queued: list[str]) -> None:
        self.queued = queued
        self.gets = 0

    async def get_message(self) -> str:
        self.gets += 1
        if self.queued:
            await trio.lowlevel.checkpoint()
            return self.queued.pop(0)
        await trio.sleep_forever()
        raise AssertionError

    def poll(self) -> str | None:
        return self.queued.pop(0) if self.queued else None

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[MessageSource]:
        yield self  # type: ignore[misc]


async def test_a_burst_a_source_already_holds_is_handled_in_order_and_yields_to_others() -> None:
    """With ``poll``, frames already received are handed over without a checkpoint each, in
    order, journaled first; after ``BURST`` of them the loop lets other tasks run."""
    from trio_harvest.ingest.connection import BURST

    total = 3 * BURST + 7
    source = QueuedSource([f"f{i}" for i in range(total)])
    got: list[str | bytes] = []
    journaled: list[str | bytes] = []
    others_ran_at: list[int] = []

    class Journal:
        def append(self, conn: int, frame: str | bytes) -> int:
            journaled.append(frame)
            return len(journaled)

        def event(self, conn: int, opened: bool, text: str) -> None:
            pass

    def handle(frame: str | bytes) -> None:
        assert journaled[-1] == frame  # write-ahead: journaled before it is routed
        got.append(frame)

    conn = Connection(plan("btcusdt@aggTrade"), "ws://x", source.connect, handle,
                      stall_timeout=5, backoff=Backoff(1.0, 4.0, random.Random(1)))
    conn.journal = Journal()

    async def other() -> None:
        while True:
            others_ran_at.append(len(got))
            await trio.lowlevel.checkpoint()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run)
            nursery.start_soon(other)
            while len(got) < total:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert got == [f"f{i}" for i in range(total)]
    assert conn.stats.frames == total
    assert source.gets == 4 + 1  # one awaited read per burst (4 bursts), then the one that waits
    steps = [b - a for a, b in itertools.pairwise(others_ran_at)]
    # never more than a burst per scheduling round: trio may run this task last in one round
    # and first in the next, so another task sees at most two bursts go by between its turns
    assert max(steps) <= 2 * BURST
    assert not conn.handling


async def test_a_burst_waits_on_a_full_lane_as_handling(autojump_clock: trio.testing.MockClock,
                                                        ) -> None:
    """A frame in the middle of a burst that must wait (a full lane) waits as ``handling``:
    a reconnect request is refused meanwhile, and the rest of the burst follows in order."""
    source = QueuedSource(["a", "b", "c", "d"])
    got: list[str | bytes] = []
    refused: list[bool] = []

    async def wait_then(frame: str | bytes) -> None:
        refused.append(conn.handling)
        conn.request_reconnect("test")  # refused: ingest waits for the disk
        await trio.sleep(30)  # longer than the stall timeout
        got.append(frame)

    def handle(frame: str | bytes) -> object:
        if frame == "b":
            return wait_then(frame)
        got.append(frame)
        return None

    conn = Connection(plan("btcusdt@aggTrade"), "ws://x", source.connect,
                      handle,  # type: ignore[arg-type]
                      stall_timeout=5, backoff=Backoff(1.0, 4.0, random.Random(1)))
    with trio.move_on_after(33):  # the wait, and less than a stall timeout after it
        await conn.run()
    assert got == ["a", "b", "c", "d"]
    assert refused == [True]
    assert conn.stats.connects == 1  # neither the request nor the watchdog ended the session
