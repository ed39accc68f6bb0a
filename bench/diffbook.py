"""The CPU of one diff-depth event in ``run --book diff``: ``Router.feed`` of a ``@depth@100ms``
frame, which applies it to the symbol's local book and writes its ``book_updates`` rows and its
``orderbook`` row (top 20) into their lanes, and hands the row to the symbol's signal engine.

The harvester is built exactly as ``run --book diff`` builds it (``Harvester(Config)``: router,
``DiffBooks`` with ``book_updates``, signal engines, lanes); each book is synced from the
simulator's own REST snapshot (``offer_snapshot``, as the fetcher hands one over), then the
simulator's frames (aggTrade, bookTicker, diff depth; its market model and wire encoders) are
fed through ``Router.feed`` as the connection loop does. Frames are generated before timing;
lanes are drained between batches, with watermarks large enough that no producer waits. Timed:
process CPU per diff-depth frame (each diff frame timed alone), median of ``--repeat`` passes.

``--instructions``: instead, what a diff event costs as an instruction count, which does not
move with the machine's load: the stream is fed under ``valgrind --tool=callgrind`` (fixed hash
seed) twice, with its diff frames and without them; the difference over the diff frames is
the instructions per diff event (decode, book, rows, signals; start-up cancels).

Run: ``python bench/diffbook.py [--quick] [--symbols N] [--seconds S] [--repeat N] [--profile]
[--instructions]``.
Output: a table, then (last line) one JSON object.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import trio

from trio_harvest.app import Harvester
from trio_harvest.config import Config
from trio_harvest.kinds import ALL_KINDS
from trio_harvest.ops.gcpolicy import tuned
from trio_harvest.signals.batches import flush_batches
from trio_harvest.sim.market import Market

BATCH = 5_000
START_MS = 1_700_000_000_000


def stream(symbols: tuple[str, ...], rate: float,
           seconds: float) -> tuple[dict[str, dict[str, Any]], list[tuple[bool, str]]]:
    """Each symbol's REST snapshot at the start (the simulator's market, deterministic for its
    seed, at that time), and the frames after it ``(diff?, frame)``."""
    market = Market(symbols, rate=rate, seed=1)
    market.step(START_MS)
    snaps: dict[str, dict[str, Any]] = {}
    for s, model in market.symbols.items():
        snap, spec = model.snapshot(1000), model.spec
        snaps[s] = {"lastUpdateId": snap.last_update_id, "E": START_MS,
                    "T": snap.trade_ms or START_MS,
                    "bids": [[spec.price_str(p), spec.qty_str(q)] for p, q in snap.bids],
                    "asks": [[spec.price_str(p), spec.qty_str(q)] for p, q in snap.asks]}
    frames = [("@depth@" in frame[:60], frame) for _, frame in C.generate_timed_frames(
        symbols, rate, seconds, seed=1, start_ms=START_MS, book="diff")]
    return snaps, frames


def one_pass(symbols: tuple[str, ...], snaps: dict[str, dict[str, Any]],
             frames: list[tuple[bool, str]],
             data_dir: Path) -> tuple[float, float, float, int, int]:
    """CPU seconds in ``Router.feed`` (and what it returns to await) for the diff frames and
    for the others, and, of the diff frames', in ``DiffBooks.on_depth`` and the coroutine it
    returns; diff frames fed; ``orderbook`` rows written."""
    huge = {kind: (10**7, 2 * 10**7) for kind in ALL_KINDS}
    h = Harvester(Config(symbols=symbols, data_dir=data_dir, watermarks=huge, book="diff"))
    books = h.diff_books
    assert books is not None
    diff_s = other_s = book_s = 0.0
    n_diff = 0
    on_depth = books.on_depth
    clock = time.process_time

    def timed_on_depth(*args: Any) -> Any:  # the book's share of a diff frame
        nonlocal book_s
        t0 = clock()
        try:
            return on_depth(*args)
        finally:
            book_s += clock() - t0

    books.on_depth = timed_on_depth  # type: ignore[method-assign]

    async def main() -> None:
        nonlocal diff_s, other_s, book_s, n_diff
        h.bind_clock()
        for s in symbols:
            books.offer_snapshot(s, snaps[s])
        feed = h.router.feed
        for i in range(0, len(frames), BATCH):
            for is_diff, frame in frames[i:i + BATCH]:
                t0 = clock()
                waiting = feed(frame)
                if waiting is not None:
                    tw = clock()
                    await waiting
                    if is_diff:  # the rest of the book's work
                        book_s += clock() - tw
                t1 = clock()
                if is_diff:
                    diff_s += t1 - t0
                    n_diff += 1
                else:
                    other_s += t1 - t0
            flush_batches(h.engines.values())
            for lane in h.lanes:
                lane.take_spill()
                lane.drain()

    with tuned():
        trio.run(main)
    return diff_s, other_s, book_s, n_diff, books.stats.rows


def feed(path: str, with_diff: bool) -> None:
    """The child of ``--instructions``: the harvester as ``one_pass`` builds it, the frames
    (without the diff ones unless ``with_diff``) fed through ``Router.feed``, nothing timed."""
    with open(path, "rb") as fh:
        symbols, snaps, frames = pickle.load(fh)
    huge = {kind: (10**7, 2 * 10**7) for kind in ALL_KINDS}
    with tempfile.TemporaryDirectory() as tmp:
        h = Harvester(Config(symbols=symbols, data_dir=Path(tmp), watermarks=huge, book="diff"))
        books = h.diff_books
        assert books is not None

        async def main() -> None:
            h.bind_clock()
            for s in symbols:
                books.offer_snapshot(s, snaps[s])
            feed = h.router.feed
            for is_diff, frame in frames:
                if with_diff or not is_diff:
                    waiting = feed(frame)
                    if waiting is not None:
                        await waiting
            flush_batches(h.engines.values())

        with tuned():
            trio.run(main)


def instructions(path: str, with_diff: bool) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, __file__, "--feed", path, str(int(with_diff))],
                         env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def count(symbols: tuple[str, ...], snaps: dict[str, dict[str, Any]],
          frames: list[tuple[bool, str]], load: tuple[float, float, float]) -> None:
    """``--instructions``: the table and JSON line of instructions per diff event."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    n_diff = sum(d for d, _ in frames)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "stream.pickle")
        with open(path, "wb") as fh:
            pickle.dump((symbols, snaps, frames), fh)
        with_diff, without = instructions(path, True), instructions(path, False)
    per = (with_diff - without) / n_diff
    print(C.table(["frames", "diff frames", "instructions with", "without", "per diff event"],
                  [[len(frames), n_diff, with_diff, without, round(per)]]))
    C.emit_json({"instructions_per_diff_event": round(per), "diff_events": n_diff,
                 "frames": len(frames), "symbols": len(symbols), **C.conditions(load)})


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--feed":
        feed(sys.argv[2], sys.argv[3] == "1")
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a shorter stream, fewer passes")
    ap.add_argument("--symbols", type=int, default=2)
    ap.add_argument("--rate", type=float, default=3000.0, help="msg/s of the stream in all")
    ap.add_argument("--seconds", type=float, default=60.0, help="market seconds of frames")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one pass")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions per diff event under callgrind instead of timing")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.repeat = min(args.seconds, 15.0), min(args.repeat, 3)
    load = os.getloadavg()
    symbols = C.symbols(args.symbols)
    snaps, frames = stream(symbols, args.rate, args.seconds)
    if args.instructions:
        count(symbols, snaps, frames, load)
        return
    per_diff: list[float] = []
    per_book: list[float] = []
    per_other: list[float] = []
    n_diff = rows = 0
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.runcall(one_pass, symbols, snaps, frames, Path(tmp))
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        for _ in range(args.repeat):
            diff_s, other_s, book_s, n_diff, rows = one_pass(symbols, snaps, frames, Path(tmp))
            per_diff.append(diff_s / max(n_diff, 1) * 1e6)
            per_book.append(book_s / max(n_diff, 1) * 1e6)
            per_other.append(other_s / max(len(frames) - n_diff, 1) * 1e6)
    us, book = statistics.median(per_diff), statistics.median(per_book)
    print(C.table(["frames", "diff frames", "orderbook rows", "passes", "min µs/diff",
                   "median µs/diff", "max µs/diff", "of it books µs", "µs/other frame"],
                  [[len(frames), n_diff, rows, len(per_diff), min(per_diff), us, max(per_diff),
                    book, statistics.median(per_other)]]))
    C.emit_json({
        "us_per_diff_event": round(us, 1),
        "us_per_diff_event_min": round(min(per_diff), 1),
        "us_per_diff_event_max": round(max(per_diff), 1),
        "us_in_books_per_diff_event": round(book, 1),
        "us_per_other_frame": round(statistics.median(per_other), 2),
        "diff_events": n_diff,
        "orderbook_rows": rows,
        "symbols": args.symbols,
        **C.conditions(load),
    })


if __name__ == "__main__":
    main()
