"""The journal's cost: the append on the loop per frame, and the bytes its writer thread commits.

Frames of the realistic stream mix (``--symbols`` 200 at ``--rate`` 10 000 msg/s, from the
simulator's own market model, no socket) are appended to a real ``Journal`` exactly as the
connection loop does (``journal.append(conn, frame)``), timed in batches; between batches the
group commit runs (encode + write + fsync in a worker thread, into a temp dir), timed apart.

Keys (last line, JSON): ``journal.us_per_msg`` (loop cost of one append; target <= 3),
``journal.bytes_per_s`` (journal bytes written per second at ``--rate``), ``journal.commit_us_per_msg``
(writer-thread cost per frame, off the loop), ``journal.avg_frame_bytes``. About 10 s.
Run: ``python bench/journal_append.py [--symbols N] [--rate R] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=C.REALISTIC_SYMBOLS)
    ap.add_argument("--rate", type=float, default=C.REALISTIC_RATE)
    ap.add_argument("--seconds", type=float, default=None, help="market seconds (10; quick 5)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    if args.seconds is None:
        args.seconds = 5.0 if args.quick else 10.0
    load_before = os.getloadavg()
    r = measure(args.symbols, args.rate, args.seconds)
    print(C.table(("frames", "loop us/msg", "target", "commit us/msg (thread)", "frame bytes",
                   "journal bytes/s"),
                  [(r["frames"], r["us_per_msg"], "<= 3", r["commit_us_per_msg"],
                    r["avg_frame_bytes"], r["bytes_per_s"])]))
    C.emit_json({"bench": "journal_append", "journal": r, **C.conditions(load_before)})


if __name__ == "__main__":
    main()
