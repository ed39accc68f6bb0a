"""The journal's committer thread: jobs in order on one long-lived thread, outcomes handed back
without waking the loop unless it waits, an idle thread that exits and comes back; and the
journal's group commit through it (a commit accounted at the next one, never two in flight,
a write in flight when the run ends finished before its file closes)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import trio

from trio_harvest.journal import files
from trio_harvest.journal import format as fmt
from trio_harvest.journal.committer import Committer
from trio_harvest.journal.journal import Journal


async def test_jobs_run_in_order_on_one_thread_and_hand_back_results_and_errors() -> None:
    committer = Committer()
    seen: list[tuple[int, str]] = []

    def job(i: int) -> int:
        time.sleep(0.01)
        seen.append((i, threading.current_thread().name))
        if i == 2:
            raise OSError(28, "No space left on device")
        return i * 10

    jobs = [committer.submit(job, i) for i in range(5)]
    assert not jobs[-1].done  # submitting never waits for the thread
    for j in jobs:
        await committer.wait(j)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {committer.name} and committer.threads_started == 1
    assert [j.result for j in jobs] == [0, 10, None, 30, 40]
    assert isinstance(jobs[2].error, OSError) and jobs[3].error is None  # the thread lives on
    assert jobs[0].fn is None and jobs[0].args is None  # the batch is freed once written


async def test_waiting_for_a_finished_job_returns_at_once_and_two_waiters_both_wake() -> None:
    committer = Committer()
    gate = threading.Event()
    job = committer.submit(gate.wait, 5.0)
    woken: list[int] = []

    async def waiter(i: int) -> None:
        await committer.wait(job)
        woken.append(i)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, 1)
        nursery.start_soon(waiter, 2)
        await trio.sleep(0.05)
        assert woken == [] and not job.done
        gate.set()
    assert sorted(woken) == [1, 2] and job.result is True
    with trio.fail_after(1):
        await committer.wait(job)  # already done: no event, no wake-up needed


async def test_an_idle_thread_exits_and_the_next_job_starts_another() -> None:
    committer = Committer(idle_s=0.05, name="committer-idle-test")

    def alive() -> int:
        return sum(t.name == "committer-idle-test" for t in threading.enumerate())

    await committer.wait(committer.submit(int, "7"))
    assert alive() == 1
    deadline = time.monotonic() + 5
    while alive():
        assert time.monotonic() < deadline, "the idle thread never exited"
        await trio.sleep(0.02)
    job = committer.submit(int, "8")
    await committer.wait(job)
    assert job.result == 8 and committer.threads_started == 2


async def test_a_submit_racing_the_idle_exit_is_never_lost() -> None:
    committer = Committer(idle_s=0.001)
    for i in range(200):  # each submit lands around the thread's idle timeout
        job = committer.submit(int, str(i))
        with trio.fail_after(5):
            await committer.wait(job)
        assert job.result == i
        await trio.sleep(0.001)


async def test_the_run_commits_through_the_thread_one_at_a_time_and_accounts_at_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = files.write_batch
    busy, most, stuck_seen = [0], [0], [False]
    journal: list[Journal] = []

    def slow(*args):  # type: ignore[no-untyped-def]
        busy[0] += 1
        most[0] = max(most[0], busy[0])
        time.sleep(0.08)  # slower than the commit grid (50 ms): the next commit must wait
        stuck_seen[0] = stuck_seen[0] or journal[0].commit_started is not None
        busy[0] -= 1
        return real(*args)

    monkeypatch.setattr(files, "write_batch", slow)
    j = Journal(tmp_path, fsync_ms=200)
    journal.append(j)
    await trio.to_thread.run_sync(j.open)
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        for i in range(40):
            j.append(0, f"frame-{i}")
            await trio.sleep(0.01)
        deadline = trio.current_time() + 10
        while j.stats.records < 40:  # the last commit is accounted by the next one
            assert trio.current_time() < deadline
            await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert most[0] == 1 and stuck_seen[0] and j.commit_started is None
    assert 2 <= j.stats.commits < 40
    assert [r.seq for r in fmt.iter_segments(tmp_path.glob("seg-*.jnl"))] == list(range(1, 41))


async def test_a_write_in_flight_when_the_run_ends_is_finished_before_its_file_closes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = files.write_batch
    entered = threading.Event()

    def slow(*args):  # type: ignore[no-untyped-def]
        entered.set()
        time.sleep(0.3)
        return real(*args)

    monkeypatch.setattr(files, "write_batch", slow)
    j = Journal(tmp_path, fsync_ms=200)
    await trio.to_thread.run_sync(j.open)
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        for i in range(5):
            j.append(0, f"frame-{i}")
        await trio.to_thread.run_sync(entered.wait, 5.0)
        nursery.cancel_scope.cancel()  # the run ends while the write is in the thread
    assert j.stats.records == 5 and j.stats.failures == 0 and not j.failing
    assert [r.seq for r in fmt.iter_segments(tmp_path.glob("seg-*.jnl"))] == [1, 2, 3, 4, 5]
    again = Journal(tmp_path)
    await trio.to_thread.run_sync(again.open)  # the directory was released
    assert [s.last_seq for s in again.old] == [5]


async def test_a_failed_write_is_seen_at_the_next_commit_and_journaling_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = files.write_batch
    fail = [True]

    def flaky(*args):  # type: ignore[no-untyped-def]
        if fail[0]:
            fail[0] = False
            raise OSError(5, "Input/output error")
        return real(*args)

    monkeypatch.setattr(files, "write_batch", flaky)
    outages: list[str] = []
    j = Journal(tmp_path, fsync_ms=60_000)  # no commit of its own: ``tick`` alone commits
    j.on_unprotected = lambda a, b, why: outages.append(why)
    await trio.to_thread.run_sync(j.open)
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        j.append(0, "lost")
        await j.tick()  # fails: the segment is sealed and a fresh one opened at once
        assert j.stats.failures == 1 and not j.failing and outages == ["OSError: [Errno 5] "
                                                                       "Input/output error"]
        j.append(0, "kept")
        await j.tick()
        nursery.cancel_scope.cancel()
    assert j.stats.records == 1 and j.stats.unprotected == 0
    assert [r.payload for r in fmt.iter_segments(tmp_path.glob("seg-*.jnl"))] == [b"kept"]
