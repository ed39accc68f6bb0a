"""The journal's committer: one long-lived thread that runs the group commit's blocking job
(``files.write_batch``: encode, compress, write, fsync) in the order handed in.

Why not a trio worker thread per commit: ``trio.to_thread.run_sync`` costs the loop a thread
hand-off, two thread renames, a capacity limiter and a wake-up of the loop when the job ends
(about 150 µs of CPU a commit here, 20 commits a second at any rate). Here the loop hands a job
over with a queue put and goes on; it looks at the outcome at its next commit, when the job has
almost always ended, so no wake-up is needed. Only a loop that must wait (a slow fsync, a
seal, ``close``) is woken, through the trio token.

Owns the thread and each job's outcome; never decides anything (``journal.py`` does) and never
touches the journal's state. The thread exits once idle for ``idle_s`` and starts again with
the next job, so a journal dropped without ``close`` leaves no thread behind; it is a daemon,
so a job stuck on a dead disk never holds the process's exit.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import trio

IDLE_S = 10.0  # an idle thread exits after this long (the next job starts a new one)


class Job:
    """One job handed to the thread: its outcome once ``done``."""

    __slots__ = ("_waiter", "args", "done", "error", "fn", "result", "started", "token")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...],
                 token: trio.lowlevel.TrioToken) -> None:
        self.fn = fn
        self.args = args
        self.token = token
        self.started = time.monotonic()  # wall time: a mock clock jumps while a thread runs
        self.done = False
        self.result: Any = None
        self.error: Exception | None = None
        self._waiter: trio.Event | None = None


class Committer:
    """Runs jobs one at a time, in order, on a thread of its own."""

    def __init__(self, idle_s: float = IDLE_S, name: str = "trio_harvest journal") -> None:
        self.idle_s = idle_s
        self.name = name
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()  # the thread's life, and a job's done/waiter hand-over
        self._running = False  # a thread is alive (or starting) and will see the queue
        self.threads_started = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> Job:
        """Hand ``fn(*args)`` to the thread (from the trio loop); never blocks."""
        job = Job(fn, args, trio.lowlevel.current_trio_token())
        with self._lock:
            self._jobs.put(job)
            if not self._running:
                self._running = True
                self.threads_started += 1
                threading.Thread(target=self._work, name=self.name, daemon=True).start()
        return job

    async def wait(self, job: Job) -> None:
        """Until ``job`` is done (no wake-up when it already is). Cancellable: the job itself
        goes on in the thread; ``done`` says when it has ended."""
        with self._lock:
            if job.done:
                return
            waiter = job._waiter
            if waiter is None:  # one event, however many wait
                waiter = job._waiter = trio.Event()
        await waiter.wait()

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            try:
                job = jobs.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:  # a submit between the timeout and here is seen, not lost
                    if jobs.empty():
                        self._running = False
                        return
                continue
            try:
                job.result = job.fn(*job.args)
            except Exception as exc:  # handed back to the loop, which decides
                job.error = exc
            job.fn = job.args = None  # type: ignore[assignment]  # frees the batch at once
            with self._lock:
                job.done = True
                waiter = job._waiter
            if waiter is not None:
                try:
                    job.token.run_sync_soon(waiter.set)
                except trio.RunFinishedError:  # the loop has gone: nobody waits any more
                    pass
