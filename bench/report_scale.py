"""How long `report` takes on a month of a whole venue: a synthetic dataset shaped like one.

Builds DAYS x SYMBOLS partitions of every kind, each day compacted into one file per partition
(as auto-compaction leaves a closed day), with a gaps file (a few disconnects and agg-id rows)
per symbol and day. One real Parquet file is written per kind and day and hard-linked into every
symbol's folder, so the dataset costs seconds to build and little disk, while `report` still
opens every footer. Then `python -m trio_harvest report` runs on it (a child process, timed).

    python bench/report_scale.py            # 500 symbols x 30 days
    python bench/report_scale.py --quick    # 50 symbols x 3 days

Last line: {"symbols", "days", "files", "seconds", "html_mb", ...conditions}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import conditions, emit_json, symbols, table
from trio_harvest.kinds import ALL_KINDS, GAPS, PARTITION_COLUMNS, schema_for
from trio_harvest.storage.fileschema import SOURCES_KEY, compacted_name

DAY_MS = 86_400_000
DAY0 = 1_767_225_600_000  # 2026-01-01T00:00Z
ROWS = 2_000  # rows per template file (their count does not change a footer's size)


def template(kind: str, day_ms: int, path: Path) -> str:
    """One file of ``kind`` for the day starting at ``day_ms``; returns its compacted name."""
    schema = {n: t for n, t in schema_for(kind).polars.items() if n not in PARTITION_COLUMNS}
    n = 6 if kind == GAPS else ROWS
    ts = [day_ms + i * (DAY_MS // n) for i in range(n)]
    cols: dict[str, list[object]] = {}
    for name in schema:
        if name in ("ts_ms", "start_ms", "event_ms", "recv_ms"):
            cols[name] = ts
        elif name == "end_ms":
            cols[name] = [t + 1_500 for t in ts]
        elif name == "reason":
            cols[name] = ["disconnect", "agg-id break"] * (n // 2)
        elif name == "detail":
            cols[name] = ["", "agg_id 1..5 (5 ids): filled"] * (n // 2)
        else:
            cols[name] = [None] * n
    df = pl.DataFrame(cols, schema=schema)
    sources = [f"part-{ts[0]}-{ts[-1]}-src{i}.parquet" for i in range(3)]
    name = compacted_name(ts[0], ts[-1], sources)
    path.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path / name, metadata={SOURCES_KEY: json.dumps(sources)})
    return name


def build(root: Path, n_symbols: int, days: int) -> int:
    syms = symbols(n_symbols)
    files = 0
    for d in range(days):
        day_ms = DAY0 + d * DAY_MS
        date = time.strftime("%Y-%m-%d", time.gmtime(day_ms / 1000))
        for kind in ALL_KINDS:
            tdir = root.parent / "templates" / date / kind
            name = template(kind, day_ms, tdir)
            for s in syms:
                target = root / f"date={date}" / f"symbol={s}" / f"kind={kind}"
                target.mkdir(parents=True, exist_ok=True)
                os.link(tdir / name, target / name)
                files += 1
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 symbols x 3 days")
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    n, days = (50, 3) if args.quick else (args.symbols, args.days)
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="report-scale-"))
    try:
        root = work / "data"
        t0 = time.perf_counter()
        files = build(root, n, days)
        built = time.perf_counter() - t0
        out = work / "report.html"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "trio_harvest", "report", "--data-dir",
                               str(root), "--out", str(out)], capture_output=True, text=True,
                              env=env, check=False)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"report failed: {done.stderr[-2000:]}")
        html_mb = out.stat().st_size / 2**20
        print(table(["symbols", "days", "files", "build s", "report s", "html MiB"],
                    [[n, days, files, built, seconds, html_mb]]))
        print(done.stdout.strip())
        emit_json({"symbols": n, "days": days, "files": files, "seconds": round(seconds, 2),
                   "html_mb": round(html_mb, 2), **conditions(load)})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
