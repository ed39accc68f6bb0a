"""The file budget: part files per (date, symbol, kind) hour after background compaction.

Runs ``run --sim`` (the built-in simulator) with a short in-memory age, so rotation writes many
small files, and background compaction on short timers; then counts the part files on disk per
partition and hour (the hour of each file's first event time). An hour counts as *settled* once
its end is more than ``--compact-older-than`` plus ``--compact-delete-after`` (the grace before
a merge's sources are deleted) plus two rounds before the stop: compaction has had its chance at
it. The running hour is reported apart. The harvester's event times are the wall
clock, so a run must cross a full hour boundary to settle an hour: start it a few minutes before
one (``--quick`` only proves the script works and settles nothing unless it does).

Prints a table, and as its LAST line one JSON object with ``files_per_partition_hour`` (the
largest count over settled partition-hours; null if no hour settled),
``files_per_partition_hour_mean``, ``running_hour_files_per_partition``, ``partitions``,
``settled_hours``, ``files_total``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C

HOUR_MS = 3_600_000


def count(data: Path) -> Counter[tuple[str, str, str, int]]:
    per: Counter[tuple[str, str, str, int]] = Counter()
    for f in data.glob("venue=*/date=*/symbol=*/kind=*/part-*.parquet"):
        date, symbol, kind = (p.split("=", 1)[1] for p in f.parts[-4:-1])
        first = int(f.name.split("-")[1])
        per[(date, symbol, kind, first // HOUR_MS)] += 1
    return per


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 s instead of --duration")
    ap.add_argument("--duration", type=float, default=480.0)
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--max-file-age", type=float, default=30.0)
    ap.add_argument("--compact-older-than", type=float, default=60.0)
    ap.add_argument("--compact-interval", type=float, default=15.0)
    ap.add_argument("--compact-delete-after", type=float, default=60.0)
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    duration = 60.0 if args.quick else args.duration
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="file-budget-")) / "data"
    syms = ("BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT,DOGEUSDT,ADAUSDT,BNBUSDT,LTCUSDT,DOTUSDT,"
            "LINKUSDT,AVAXUSDT,TRXUSDT,ATOMUSDT,NEARUSDT,APTUSDT,ARBUSDT,OPUSDT,SUIUSDT,"
            "FILUSDT,ETCUSDT").split(",")[: args.symbols]
    cmd = [sys.executable, "-m", "trio_harvest", "run", "--sim", "--symbols", ",".join(syms),
           "--data-dir", str(data), "--duration", str(duration), "--rotate-sec", "5",
           "--max-file-age", str(args.max_file_age), "--min-file-rows", "1000000",
           "--compact-older-than", str(args.compact_older_than),
           "--compact-interval", str(args.compact_interval),
           "--compact-delete-after", str(args.compact_delete_after), "--log-level", "WARNING"]
    started = time.time()
    load = os.getloadavg()
    subprocess.run(cmd, check=True)
    stopped_ms = int(time.time() * 1000)
    per = count(data)
    settle_ms = int((args.compact_older_than + args.compact_delete_after
                     + 2 * args.compact_interval) * 1000)
    settled = {k: n for k, n in per.items() if (k[3] + 1) * HOUR_MS + settle_ms <= stopped_ms}
    running = {k: n for k, n in per.items() if k not in settled}
    lines = []
    for hour in sorted({k[3] for k in per}):
        counts = [n for k, n in per.items() if k[3] == hour]
        label = time.strftime("%Y-%m-%d %H", time.gmtime(hour * 3600))
        state = "settled" if any(k[3] == hour for k in settled) else "running"
        lines.append((label, len(counts), sum(counts), max(counts), state))
    print(C.table(("hour (UTC)", "partitions", "files", "max/partition", "state"), lines))
    doc = {
        "files_per_partition_hour": max(settled.values()) if settled else None,
        "files_per_partition_hour_mean": round(sum(settled.values()) / len(settled), 3)
        if settled else None,
        "running_hour_files_per_partition": round(sum(running.values()) / len(running), 1)
        if running else None,
        "partitions": len({k[:3] for k in per}), "settled_hours": len({k[3] for k in settled}),
        "files_total": sum(per.values()), "run_s": round(time.time() - started, 1),
        "max_file_age": args.max_file_age, "compact_older_than": args.compact_older_than,
        "compact_interval": args.compact_interval,
        "compact_delete_after": args.compact_delete_after, "symbols": len(syms), **C.conditions(load)}
    C.emit_json(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
