"""New connections paced to the venue's per-IP limit: the sliding window, a host's limit shared by
its worker processes, a storm of opens under MockClock, and the limits each venue declares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from trio_harvest import venues
from trio_harvest.ingest.connectpace import MARGIN, AttemptWindow, paced, share, window_for


def test_the_window_lets_n_attempts_through_then_waits_for_the_oldest_to_age_out() -> None:
    w = AttemptWindow(3, 1.0)
    for t in (10.0, 10.2, 10.4):
        assert w.next_at(t) == t
        w.take(t)
    assert w.next_at(10.5) == 11.0  # the fourth waits until the first is a second old
    w.take(11.0)
    assert w.next_at(11.0) == 11.2
    assert w.next_at(20.0) == 20.0  # long after: at once


def test_a_bad_window_is_refused() -> None:
    with pytest.raises(ValueError):
        AttemptWindow(0, 1.0)
    with pytest.raises(ValueError):
        AttemptWindow(3, 0.0)


@pytest.mark.parametrize(("limit", "processes", "part"), [
    ((3, 1.0), 1, (3, 1.0)),
    ((3, 1.0), 2, (1, 1.0)),  # 2 a second together: never 4 in a second
    ((3, 1.0), 4, (1, 2.0)),  # fewer attempts than processes: each window widened
    ((3, 1.0), 7, (1, 3.0)),
    ((300, 300.0), 4, (75, 300.0)),
    ((500, 300.0), 0, (500, 300.0)),
])
def test_workers_on_one_host_share_its_limit(limit: tuple[int, float], processes: int,
                                             part: tuple[int, float]) -> None:
    assert share(limit, processes) == part
    attempts, seconds = part
    n = max(processes, 1)
    if seconds == limit[1]:  # the same window: together never more than the host's limit
        assert n * attempts <= limit[0]
    else:  # one each per widened window: the host's rate on average
        assert attempts == 1 and n / seconds <= limit[0] / limit[1]


def test_the_window_paced_with_is_a_little_longer_than_the_venue_s() -> None:
    """The venue counts arrivals: an attempt started exactly a window after another may arrive
    within it. The pace keeps a margin."""
    w = window_for((3, 1.0), 1)
    assert (w.attempts, w.seconds) == (3, pytest.approx(1.0 + MARGIN)) and MARGIN >= 0.1
    w = window_for((3, 1.0), 4)
    assert (w.attempts, w.seconds) == (1, pytest.approx(2.0 * (1 + MARGIN)))


async def test_a_storm_of_opens_goes_out_at_the_venue_s_pace(
        autojump_clock: trio.testing.MockClock) -> None:
    opened: list[tuple[float, str]] = []

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[Any]:
        opened.append((trio.current_time(), url))
        yield url

    window = AttemptWindow(3, 1.0)
    open_paced = paced(connect, window)
    start = trio.current_time()

    async def one(url: str) -> None:
        async with open_paced(url) as ws:
            assert ws == url

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(one, f"ws://x/{i}")
            await trio.lowlevel.checkpoint()  # in this order: first come, first served
    assert [u for _, u in opened] == [f"ws://x/{i}" for i in range(10)]
    times = [t - start for t, _ in opened]
    for t in times:  # in any 1 s window at most 3 opens
        assert sum(1 for u in times if t <= u < t + 1.0) <= 3
    assert times[-1] == pytest.approx(3.0)  # and no slower than the limit: 3, 3, 3, then 1
    assert window.waited > 0


async def test_a_failed_attempt_still_counts(autojump_clock: trio.testing.MockClock) -> None:
    """The venue counts the attempt, not the success: a refused handshake uses its turn."""
    tried: list[float] = []

    @asynccontextmanager
    async def refused(url: str) -> AsyncIterator[Any]:
        tried.append(trio.current_time())
        raise OSError("refused")
        yield  # pragma: no cover

    open_paced = paced(refused, AttemptWindow(2, 1.0))
    start = trio.current_time()
    for _ in range(4):
        with pytest.raises(OSError):
            async with open_paced("ws://x"):
                pass  # pragma: no cover
    assert [t - start for t in tried] == pytest.approx([0.0, 0.0, 1.0, 1.0])


def test_each_venue_declares_its_documented_limit() -> None:
    limits = {name: v.connect_limit for name, v in venues.VENUES.items()}
    assert limits["okx-swap"] == limits["okx-spot"] == (3, 1.0)
    assert limits["binance-spot"] == (300, 300.0)
    assert limits["bybit-linear"] == limits["bybit-spot"] == (500, 300.0)
    assert limits["binance-usdm"] is None and limits["binance-coinm"] is None  # none documented
