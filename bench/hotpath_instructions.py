"""The loop's own work per frame as an instruction count: what ``hotpath.py`` times, counted by
callgrind, so that two versions compare on a shared machine whose load moves the timings.

The same stream as ``hotpath.py`` (200 symbols, the realistic mix) is generated once and
pickled; a child process builds the harvester as ``hotpath.py`` does and feeds the first N
frames through ``Router.feed``, under ``valgrind --tool=callgrind`` with a fixed hash seed. It
runs twice, with N frames and with none: the difference over N is the instructions per frame
(start-up and imports cancel; their run-to-run drift is about ±500 per frame at N = 20,000).
Instructions are not time (cache misses and branches differ), but they do not move with the
machine's load. Skips with a clear line when valgrind is not installed.

Run: ``python bench/hotpath_instructions.py [--quick] [--frames N] [--kind bookTicker|aggTrade|depth]``.
Output: a table, then (last line) one JSON object.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C


def feed(path: str, n: int) -> None:
    """The child: build the harvester as hotpath.py does, then feed the first ``n`` frames."""
    import hotpath
    import trio

    with open(path, "rb") as fh:
        frames: list[str] = pickle.load(fh)[:n]
    with tempfile.TemporaryDirectory() as tmp:
        h = hotpath.build(C.symbols(C.REALISTIC_SYMBOLS), Path(tmp))

        trio.run(hotpath.feed_all, h, frames)


def instructions(path: str, n: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, __file__, "--feed", path, str(n)],
                         env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--feed":
        feed(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5,000 frames instead of 20,000")
    ap.add_argument("--frames", type=int, default=20_000)
    ap.add_argument("--kind", default="", help="only frames of this stream (e.g. depth)")
    args = ap.parse_args()
    if args.quick:
        args.frames = min(args.frames, 5_000)
    if shutil.which("valgrind") is None:
        print("skipped: valgrind is not installed (apt-get install valgrind)")
        C.emit_json({"skipped": "valgrind not installed"})
        return
    import hotpath

    load = os.getloadavg()
    symbols = C.symbols(C.REALISTIC_SYMBOLS)
    stream = hotpath.frames_for(symbols, 60_000, C.REALISTIC_RATE)
    frames = [f for f in stream if f"@{args.kind}" in f] if args.kind else stream
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "frames.pkl")
        with open(path, "wb") as fh:
            pickle.dump(frames[:args.frames], fh)
        n = min(args.frames, len(frames))
        base = instructions(path, 0)
        total = instructions(path, n)
    per_frame = (total - base) / n
    print(C.table(["frames", "kind", "instructions (N)", "instructions (0)", "per frame"],
                  [[n, args.kind or "all", total, base, round(per_frame)]]))
    doc: dict[str, Any] = {"instructions_per_frame": round(per_frame), "frames": n,
                           "kind": args.kind or "all", **C.conditions(load)}
    C.emit_json(doc)


if __name__ == "__main__":
    main()
