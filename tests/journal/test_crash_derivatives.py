"""A real SIGKILL, then a restart: the ``derivatives`` and ``liquidations`` rows received before
the kill and not yet written come back from the journal, once. Mark prices (one a second per
symbol on the simulator, as on Binance) are counted against that cadence: every second from a
symbol's first mark to shortly before the kill has its row; polled open interest (journaled as
off-stream rows) comes back too. On Bybit linear the rows come from the merged tickers (the
simulator's mark moves every second, so each second has its row too); a replay that starts
between a snapshot and its deltas writes what each delta says. Backfill is off and rotation
slow, so nothing but the journal can bring them back."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import polars as pl

from trio_harvest.dataset import DatasetError, scan

from .crashkit import PY, finish, kill, replayed_log, start_sim, stop_sim, wait_line

SYMBOLS = "BTCUSDT,ETHUSDT"
KEY = ["symbol", "source", "ts_ms"]


def rows(data: Path, kind: str, venue: str) -> pl.DataFrame:
    try:
        return scan(data, kind, venue=venue).collect()
    except DatasetError:
        return pl.DataFrame()


def keys(df: pl.DataFrame, cols: list[str]) -> set[tuple[object, ...]]:
    return set(df.select(cols).iter_rows()) if df.height else set()


def kill_and_restart(tmp_path: Path, venue: str,
                     *extra: str) -> tuple[pl.DataFrame, set[tuple[object, ...]]]:
    """Harvest ``venue`` from a standalone simulator, SIGKILL it after 6 s, restart it for 3 s;
    the rows older than a second before the kill, and the keys of those that were not on disk
    before the restart (replayed). Checks each row is written once and liquidations came."""
    data, log = tmp_path / "data", tmp_path / "harvester.log"
    sim, port = start_sim(SYMBOLS, 200.0, 7, "", venue)
    cmd = [PY, "-m", "trio_harvest", "run", "--venue", venue,
           "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}",
           "--data-dir", str(data), "--symbols", SYMBOLS, "--log-level", "INFO",
           "--no-backfill", "--journal-fsync-ms", "50", "--rotate-sec", "120",
           "--min-file-rows", "100000", "--max-file-age", "120", *extra]

    def harvest(*more: str) -> subprocess.Popen[bytes]:
        with open(log, "ab") as fh:
            fh.write(b"--- start\n")
            return subprocess.Popen([*cmd, *more], stdout=subprocess.DEVNULL, stderr=fh)

    try:
        proc = harvest()
        assert wait_line(proc, log, "harvesting", 60.0), log.read_text()[-2000:]
        time.sleep(6.0)
        kill_ms = kill(proc)
        before = keys(rows(data, "derivatives", venue), KEY)
        finish(harvest("--duration", "3"), log)
    finally:
        stop_sim(sim)
    replayed_log(log)

    derivs = rows(data, "derivatives", venue)
    assert derivs.height == len(keys(derivs, KEY))  # each once
    liqs = rows(data, "liquidations", venue)
    assert liqs.height > 0  # the simulator's first burst comes within seconds
    assert liqs.height == len(keys(liqs, ["symbol", "ts_ms", "side", "price", "qty"]))
    old = derivs.filter(pl.col("ts").dt.epoch("ms") < kill_ms - 1000)
    return old, keys(old, KEY) - before


def every_second(old: pl.DataFrame, source: str) -> None:
    """Each symbol has a ``source`` row in every second from its first to its last (>= 3 s)."""
    for symbol in SYMBOLS.split(","):
        seconds = old.filter((pl.col("symbol") == symbol) & (pl.col("source") == source)
                             )["ts"].dt.epoch("ms").to_list()
        first, last = min(seconds) // 1000, max(seconds) // 1000
        assert sorted(s // 1000 for s in seconds) == list(range(first, last + 1)), symbol
        assert last - first >= 3, symbol


def test_a_killed_run_replays_its_derivatives_and_liquidations_once(tmp_path: Path) -> None:
    old, replayed = kill_and_restart(tmp_path, "binance-usdm", "--open-interest-interval", "1")
    assert {s for s, src, _ in replayed if src == "markPrice"} == set(SYMBOLS.split(","))
    assert any(src == "openInterest" for _, src, _ in replayed)  # journaled REST rows too
    every_second(old, "markPrice")


def test_a_killed_bybit_run_replays_its_tickers_and_liquidations_once(tmp_path: Path) -> None:
    old, replayed = kill_and_restart(tmp_path, "bybit-linear")
    assert {s for s, src, _ in replayed if src == "tickers"} == set(SYMBOLS.split(","))
    every_second(old, "tickers")
    assert old["mark_price"].is_not_null().all()  # the mark moves every second
    assert old["open_interest"].is_not_null().any()
