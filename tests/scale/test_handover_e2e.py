"""Two real shard processes (``run --shard 0/2`` and ``1/2``) on one dataset, against one
simulator process whose listing changes (``listing=S``: each change of the listing moves a
few symbols between the load-weighted shards). Every trade id of the simulator's tape is in the
dataset exactly once, for the moved symbols and all others; a moved symbol's rows before the
boundary come from the old owner and those from it on from the new one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.journal.crashkit import start_sim, tape

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]


def shard(port: int, data: Path, index: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [PY, "-m", "trio_harvest", "run", "--ws-url", f"ws://127.0.0.1:{port}",
           "--rest-url", f"http://127.0.0.1:{port}", "--data-dir", str(data),
           "--symbols", "all", "--shard", f"{index}/2", "--listing-interval", "2",
           "--duration", "24", "--log-level", "INFO", "--backfill-delay", "0.2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh, env=env)


def scan(data: Path, kind: str) -> pl.DataFrame:
    files = sorted(str(p) for p in data.glob(f"venue=*/date=*/symbol=*/kind={kind}/*.parquet"))
    return pl.scan_parquet(files, hive_partitioning=True).collect() if files else pl.DataFrame()


def test_a_symbol_that_moves_between_shards_is_harvested_once_and_never_dropped(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    sim, port = start_sim("all", 300.0, 0, "listing=6")
    try:
        logs = [tmp_path / f"shard{i}.log" for i in range(2)]
        procs = [shard(port, data, i, logs[i]) for i in range(2)]
        codes = [p.wait(timeout=90) for p in procs]
        text = [log.read_text() for log in logs]
        assert codes == [0, 0], "\n".join(t[-3000:] for t in text)

        gaps = scan(data, "gaps")
        handovers = gaps.filter(pl.col("reason") == "handover")
        # nothing but hand-overs and delistings: no loss of any kind
        assert set(gaps["reason"].to_list()) <= {"handover", "delisted"}, gaps.rows()
        moved = sorted(set(handovers["symbol"].to_list()))
        assert moved, text  # at least one symbol changed shards
        for row in handovers.iter_rows(named=True):  # the other shard took it at that boundary
            old = next(i for i in range(2) if f"{row['symbol']}: handed over" in text[i])
            assert f"{row['symbol']}: joins shard {1 - old}/2" in text[1 - old]

        prices = scan(data, "prices")
        assert prices.height == prices.select("symbol", "agg_id").n_unique()  # no id twice
        for (symbol,), part in prices.group_by(["symbol"]):
            ids = part["agg_id"].sort().to_list()
            sent = tape(port, str(symbol), ids[0], ids[-1])
            assert ids == sent, (symbol, len(ids), len(sent))  # none missing, none extra
        for row in handovers.iter_rows(named=True):  # rows on both sides of the boundary
            part = prices.filter(pl.col("symbol") == row["symbol"])
            assert (part["ts_ms"] < row["start_ms"]).any() and (
                part["ts_ms"] >= row["start_ms"]).any()
        books = scan(data, "orderbook")
        assert books.height == books.select("symbol", "source", "update_id").n_unique()
    finally:
        sim.kill()
        sim.wait()
        if sim.stdout is not None:
            sim.stdout.close()
