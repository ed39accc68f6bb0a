"""A real SIGKILL, then a restart: the ``derivatives`` and ``liquidations`` rows received before
the kill and not yet written come back from the journal, once. Mark prices (one a second per
symbol on the simulator, as on Binance) are counted against that cadence: every second from a
symbol's first mark to shortly before the kill has its row; polled open interest (journaled as
off-stream rows) comes back too. Backfill is off and rotation slow, so nothing but the journal
can bring them back."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import polars as pl

from trio_harvest.dataset import DatasetError, scan

from .crashkit import PY, kill, start_sim, stop, stop_sim, wait_line

SYMBOLS = "BTCUSDT,ETHUSDT"


def rows(data: Path, kind: str) -> pl.DataFrame:
    try:
        return scan(data, kind, venue="binance-usdm").collect()
    except DatasetError:
        return pl.DataFrame()


def keys(df: pl.DataFrame, cols: list[str]) -> set[tuple[object, ...]]:
    return set(df.select(cols).iter_rows()) if df.height else set()


def test_a_killed_run_replays_its_derivatives_and_liquidations_once(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "harvester.log"
    sim, port = start_sim(SYMBOLS, 200.0, 7, "")
    cmd = [PY, "-m", "trio_harvest", "run", "--ws-url", f"ws://127.0.0.1:{port}",
           "--rest-url", f"http://127.0.0.1:{port}", "--data-dir", str(data),
           "--symbols", SYMBOLS, "--log-level", "INFO", "--no-backfill",
           "--journal-fsync-ms", "50", "--rotate-sec", "120", "--min-file-rows", "100000",
           "--max-file-age", "120", "--open-interest-interval", "1"]

    def harvest(*extra: str) -> subprocess.Popen[bytes]:
        with open(log, "ab") as fh:
            fh.write(b"--- start\n")
            return subprocess.Popen([*cmd, *extra], stdout=subprocess.DEVNULL, stderr=fh)

    try:
        proc = harvest()
        assert wait_line(proc, log, "harvesting", 60.0), log.read_text()[-2000:]
        time.sleep(6.0)
        kill_ms = kill(proc)
        marks_before = keys(rows(data, "derivatives"), ["symbol", "source", "ts_ms"])
        proc = harvest("--duration", "3")
        try:
            assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
        finally:
            stop(proc)
    finally:
        stop_sim(sim)
    restart = log.read_text().rsplit("--- start\n", 1)[-1]
    assert "journal: replayed" in restart, restart[-3000:]

    derivs = rows(data, "derivatives")
    assert derivs.height == len(keys(derivs, ["symbol", "source", "ts_ms"]))  # each once
    liqs = rows(data, "liquidations")
    assert liqs.height > 0  # the simulator's first burst comes within seconds
    assert liqs.height == len(keys(liqs, ["symbol", "ts_ms", "side", "price", "qty"]))
    old = derivs.filter(pl.col("ts").dt.epoch("ms") < kill_ms - 1000)
    replayed = keys(old, ["symbol", "source", "ts_ms"]) - marks_before
    assert {s for s, src, _ in replayed if src == "markPrice"} == set(SYMBOLS.split(","))
    assert any(src == "openInterest" for _, src, _ in replayed)  # journaled REST rows too
    for symbol in SYMBOLS.split(","):
        seconds = old.filter((pl.col("symbol") == symbol) & (pl.col("source") == "markPrice")
                             )["ts"].dt.epoch("ms").to_list()
        first, last = min(seconds) // 1000, max(seconds) // 1000
        assert sorted(s // 1000 for s in seconds) == list(range(first, last + 1)), symbol
        assert last - first >= 3, symbol
