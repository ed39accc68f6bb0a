"""A real SIGKILL in the middle of an open-interest outage, then a restart: the hole in the poll
is a ``gaps`` row. The killed run's polls all failed (its REST URL refuses connections), so the
outage it had open never became the row a stop writes; the restart, whose polls are answered,
records the hole from where the replayed journal starts (no answer was journaled) to its first
answer, reason ``restart``, once per symbol."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import polars as pl

from trio_harvest.dataset import scan

from .crashkit import PY, finish, kill, replayed_log, start_sim, stop_sim, wait_line

SYMBOLS = "BTCUSDT,ETHUSDT"


def _refusing_url() -> str:
    """An http:// URL on a loopback port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_an_outage_open_at_a_kill_is_a_gap_row_after_the_restart(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "harvester.log"
    sim, port = start_sim(SYMBOLS, 100.0, 7, "", "binance-usdm")
    cmd = [PY, "-m", "trio_harvest", "run", "--ws-url", f"ws://127.0.0.1:{port}",
           "--data-dir", str(data), "--symbols", SYMBOLS, "--log-level", "INFO",
           "--no-backfill", "--journal-fsync-ms", "50", "--open-interest-interval", "1"]

    def harvest(rest: str, *more: str) -> subprocess.Popen[bytes]:
        with open(log, "ab") as fh:
            fh.write(b"--- start\n")
            return subprocess.Popen([*cmd, "--rest-url", rest, *more],
                                    stdout=subprocess.DEVNULL, stderr=fh)

    try:
        proc = harvest(_refusing_url())
        assert wait_line(proc, log, "harvesting", 60.0), log.read_text()[-2000:]
        started_ms = time.time() * 1000
        time.sleep(5.0)
        assert wait_line(proc, log, "open interest poll failed", 30.0)
        kill_ms = kill(proc)
        finish(harvest(f"http://127.0.0.1:{port}", "--duration", "4"), log)
    finally:
        stop_sim(sim)
    replayed_log(log)

    gaps = scan(data, "gaps", venue="binance-usdm").collect().filter(
        pl.col("stream").str.ends_with("@openInterest"))
    assert not gaps.filter(pl.col("reason").str.starts_with("poll failed")).height  # killed
    rows = gaps.filter(pl.col("reason") == "restart")
    assert sorted(rows["symbol"]) == sorted(SYMBOLS.split(","))  # one each
    for row in rows.iter_rows(named=True):
        assert row["stream"] == f"{row['symbol'].lower()}@openInterest"
        start = row["start_ms"].timestamp() * 1000 if hasattr(row["start_ms"], "timestamp") \
            else row["start_ms"]
        end = row["end_ms"].timestamp() * 1000 if hasattr(row["end_ms"], "timestamp") \
            else row["end_ms"]
        # from where the replayed journal starts (the first run's first frames) past the kill
        assert started_ms - 5_000 <= start <= kill_ms - 3_000, (start, started_ms, kill_ms)
        assert end >= kill_ms
        assert "killed or crashed" in row["detail"]
