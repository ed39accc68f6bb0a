"""The journal's cost: the append on the loop per frame, and the bytes its writer thread commits.

Frames of the realistic stream mix (``--symbols`` 200 at ``--rate`` 10 000 msg/s, from the
simulator's own market model, no socket) are appended to a real ``Journal`` exactly as the
connection loop does (``journal.append(conn, frame)``), timed in batches; between batches the
group commit runs (encode + write + fsync in the committer thread, into a temp dir), timed apart.
Then the fixed cost of the group commit: the journal's own ``run`` commits on its grid (20 a
second at the default ``fsync_ms``) while a task appends 5 frames every 50 ms (100 msg/s), and
the whole process's CPU (all threads) is compared with the same appender and no commits (the
least of ``--rounds`` runs of each: on a shared machine other work only ever adds CPU).

Keys (last line, JSON): ``journal.us_per_msg`` (loop cost of one append; target <= 3),
``journal.bytes_per_s`` (journal bytes written per second at ``--rate``), ``journal.commit_us_per_msg``
(writer-thread cost per frame, off the loop), ``journal.avg_frame_bytes``,
``journal.commit_fixed_ms_per_s`` (CPU a second of the commits at 100 msg/s, all threads) and
``journal.commit_fixed_us`` (the same per commit). About 50 s (quick: 30).
Run: ``python bench/journal_append.py [--symbols N] [--rate R] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C

from trio_harvest.journal.journal import Journal

BATCH = 2000  # frames per group commit (200 ms at 10k msg/s)


def measure(symbols: int = C.REALISTIC_SYMBOLS, rate: float = C.REALISTIC_RATE,
            seconds: float = 10.0) -> dict[str, Any]:
    frames = list(C.generate_frames(C.symbols(symbols), rate, seconds))
    return trio.run(_measure, frames, rate)


async def _measure(frames: list[str], rate: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp), fsync_ms=200)
        await trio.to_thread.run_sync(journal.open)
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            loop_s = commit_s = 0.0
            append = journal.append
            for i in range(0, len(frames), BATCH):
                chunk = frames[i:i + BATCH]
                t0 = time.perf_counter()
                for frame in chunk:
                    append(0, frame)
                loop_s += time.perf_counter() - t0
                t1 = time.perf_counter()
                await journal.tick()  # the group commit (write + fsync in a thread)
                commit_s += time.perf_counter() - t1
            nursery.cancel_scope.cancel()
        n = len(frames)
        written = journal.stats.bytes
    return {
        "frames": n,
        "us_per_msg": round(1e6 * loop_s / n, 3),
        "commit_us_per_msg": round(1e6 * commit_s / n, 3),
        "avg_frame_bytes": round(sum(len(f) for f in frames) / n, 1),
        "bytes_per_s": round(written / n * rate),
        "target_us_per_msg": 3.0,
        "target_met": 1e6 * loop_s / n <= 3.0,
    }


FIXED_RATE = 100.0  # msg/s for the fixed cost: the commits, not the frames, dominate
FIXED_BURST = 5  # frames a wake-up of the appender (every 50 ms: few wake-ups of its own)


def fixed_cost(seconds: float, rounds: int) -> dict[str, Any]:
    """CPU a second of the journal's group commits at a low rate: the same appender with the
    journal's ``run`` committing and without it, alternated ``rounds`` times (the least of
    each)."""
    frame = next(iter(C.generate_frames(C.symbols(2), FIXED_RATE, 1.0)))
    with_run: list[float] = []
    without: list[float] = []
    commits: list[float] = []
    for _ in range(rounds):
        for committing in (True, False):
            cpu_s, n = trio.run(_fixed, frame, seconds, committing)
            (with_run if committing else without).append(1000 * cpu_s / seconds)
            if committing:
                commits.append(n / seconds)
    cost = min(with_run) - min(without)
    per_s = statistics.median(commits)
    return {"commit_fixed_ms_per_s": round(cost, 2), "commits_per_s": round(per_s, 1),
            "commit_fixed_us": round(1000 * cost / per_s) if per_s else None,
            "fixed_with_ms_per_s": [round(x, 2) for x in with_run],
            "fixed_without_ms_per_s": [round(x, 2) for x in without]}


def _cpu() -> float:
    """User + system CPU seconds of this process, all threads (finer than /proc's ticks)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


async def _fixed(frame: str, seconds: float, committing: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp), fsync_ms=200)
        await trio.to_thread.run_sync(journal.open)
        async with trio.open_nursery() as nursery:
            if committing:
                await nursery.start(journal.run)
            await trio.sleep(0.5)
            cpu0, commits0 = _cpu(), journal.stats.commits
            next_at = trio.current_time()
            end = next_at + seconds
            while next_at < end:
                for _ in range(FIXED_BURST):
                    journal.append(0, frame)
                next_at += FIXED_BURST / FIXED_RATE
                await trio.sleep_until(next_at)
            cpu = _cpu() - cpu0
            nursery.cancel_scope.cancel()
        return cpu, journal.stats.commits - commits0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=C.REALISTIC_SYMBOLS)
    ap.add_argument("--rate", type=float, default=C.REALISTIC_RATE)
    ap.add_argument("--seconds", type=float, default=None, help="market seconds (10; quick 5)")
    ap.add_argument("--fixed-seconds", type=float, default=None,
                    help="seconds of each fixed-cost run (5; quick 2)")
    ap.add_argument("--rounds", type=int, default=4, help="fixed-cost runs of each kind (4)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    if args.seconds is None:
        args.seconds = 5.0 if args.quick else 10.0
    load_before = os.getloadavg()
    r = measure(args.symbols, args.rate, args.seconds)
    if args.fixed_seconds is None:
        args.fixed_seconds = 2.0 if args.quick else 5.0
    r.update(fixed_cost(args.fixed_seconds, args.rounds))
    print(C.table(("frames", "loop us/msg", "target", "commit us/msg (thread)", "frame bytes",
                   "journal bytes/s"),
                  [(r["frames"], r["us_per_msg"], "<= 3", r["commit_us_per_msg"],
                    r["avg_frame_bytes"], r["bytes_per_s"])]))
    print(C.table(("commits/s at 100 msg/s", "commit CPU ms/s (all threads)", "per commit us",
                   "with (ms/s)", "without (ms/s)"),
                  [(r["commits_per_s"], r["commit_fixed_ms_per_s"], r["commit_fixed_us"],
                    r["fixed_with_ms_per_s"], r["fixed_without_ms_per_s"])]))
    C.emit_json({"bench": "journal_append", "journal": r, **C.conditions(load_before)})


if __name__ == "__main__":
    main()
