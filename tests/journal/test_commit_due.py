"""When the journal's group commit runs: the first frame once it is due (a quarter of
``fsync_ms`` after the last) wakes it, and a timer a fifth of a period later only when none
comes."""

from __future__ import annotations

import time
from pathlib import Path

import trio
import trio.testing

from trio_harvest.journal.journal import Journal


async def thread_done(j: Journal) -> None:
    """Until the commit in flight has ended in the committer thread (real time)."""
    for _ in range(500):
        if j._inflight is None or j._inflight.job.done:
            return
        await trio.to_thread.run_sync(time.sleep, 0.01)
    raise AssertionError("the commit did not end in 5 s")


async def test_the_first_frame_once_the_commit_is_due_wakes_it_and_a_timer_covers_silence(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    now_ns = [10**18]
    j = Journal(tmp_path, fsync_ms=1000, clock_ns=lambda: now_ns[0])
    await trio.to_thread.run_sync(j.open)
    j.checkpoint = lambda: 1
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        mock_clock.jump(0.25)  # the first commit, a quarter in: nothing to write yet
        await trio.testing.wait_all_tasks_blocked()
        # due 250 ms (of the journal's clock) after it; trio's clock stands still now
        now_ns[0] += 249_000_000
        j.append(0, b'{"a":1}')
        await trio.testing.wait_all_tasks_blocked()
        assert j.pending_bytes > 0  # not due yet
        now_ns[0] += 1_000_000
        j.append(0, b'{"a":2}')  # due: this frame wakes the commit, no timer involved
        await trio.testing.wait_all_tasks_blocked()
        assert j.pending_bytes == 0
        await thread_done(j)  # so the next commit finds it done and goes on at once
        # no frame comes once the next commit is due: the timer, 1.2 periods on, commits
        j.append(0, b'{"a":3}')
        mock_clock.jump(0.29)
        await trio.testing.wait_all_tasks_blocked()
        assert j.pending_bytes > 0
        mock_clock.jump(0.02)
        await trio.testing.wait_all_tasks_blocked()
        assert j.pending_bytes == 0
        await j.tick()
        nursery.cancel_scope.cancel()
    assert j.stats.records == 3
