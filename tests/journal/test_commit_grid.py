"""When the journal's group commit is due: the half period while commits are fast, a quarter
after trouble; the first frame once it is due wakes the commit, a timer only when none comes."""

from __future__ import annotations

import time
from pathlib import Path

import trio
import trio.testing

from trio_harvest.journal.grid import CommitGrid
from trio_harvest.journal.journal import Journal


def test_half_the_promise_while_commits_are_fast() -> None:
    g = CommitGrid(0.2, hold_s=30.0)
    assert g.period(0.0) == 0.1
    g.committed(0.02, now=1.0)  # under an eighth (25 ms)
    g.woke(0.01, now=1.0)
    assert g.period(1.0) == 0.1


def test_a_slow_commit_or_a_late_wake_up_falls_back_to_a_quarter_for_a_while() -> None:
    g = CommitGrid(0.2, hold_s=30.0)
    g.committed(0.03, now=10.0)  # over an eighth
    assert g.period(10.0) == 0.05 and g.period(39.9) == 0.05
    assert g.period(40.0) == 0.1  # the hold has passed with no more trouble
    g.woke(0.026, now=50.0)  # the loop was busy: the timer fired late
    assert g.period(50.0) == 0.05 and g.period(80.0) == 0.1
    g.woke(-0.05, now=90.0)  # woken early (by a frame): no trouble
    assert g.period(90.0) == 0.1


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
        # due half a second (of the journal's clock) after it; trio's clock stands still now
        now_ns[0] += 499_000_000
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
        mock_clock.jump(0.59)
        await trio.testing.wait_all_tasks_blocked()
        assert j.pending_bytes > 0
        mock_clock.jump(0.02)
        await trio.testing.wait_all_tasks_blocked()
        assert j.pending_bytes == 0
        await j.tick()
        nursery.cancel_scope.cancel()
    assert j.stats.records == 3
