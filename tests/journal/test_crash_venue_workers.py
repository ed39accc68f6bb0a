"""A real SIGKILL of one worker of ``run --config two.toml --workers 2`` (two venues, each on its
own standalone simulator; the (venue, symbol) pairs split across the workers). The supervisor
restarts the worker, which replays each of its venues' journals
(``_journal/shard-0-of-2/<venue>``) into that venue's unit. Backfill is off, so nothing but the
journal brings back what the killed worker had received: every trade id of each venue's tape
is written exactly once or lies inside that venue's restart gap row, with that venue's values."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from ..ports import free_port
from ..scale.test_workers_stay_up import alive, both_up, wait_for
from .crashkit import start_venue_sims, stop_sim, tape_prices
from .test_crash_venues import prices, unfilled

ROOT = Path(__file__).resolve().parents[2]
TWO = {"binance-usdm": ("BTCUSDT", "ETHUSDT"), "binance-spot": ("BTCUSDT", "ETHUSDT")}


def test_a_killed_worker_of_two_venues_replays_each_venues_journal_once(tmp_path: Path) -> None:
    data, toml = tmp_path / "data", tmp_path / "two.toml"
    port = free_port(3)  # the host's, then one per worker
    pids: list[int] = []
    sup: subprocess.Popen[bytes] | None = None
    sims = start_venue_sims(TWO, toml)
    try:
        cmd = [sys.executable, "-m", "trio_harvest", "run", "--config", str(toml), "--workers",
               "2", "--data-dir", str(data), "--metrics-port", str(port), "--log-level", "INFO",
               "--no-backfill", "--journal-fsync-ms", "50", "--summary-json"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with (tmp_path / "sup.log").open("wb") as log:
            sup = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log)
            first = wait_for(lambda: both_up(port), 60, "both workers up")
            pids = [first["0"]["pid"], first["1"]["pid"]]
            assert sorted(first["0"]["symbols"] + first["1"]["symbols"]) == sorted(
                f"{v}:{s}" for v, symbols in TWO.items() for s in symbols)
            time.sleep(3.0)
            os.kill(pids[0], signal.SIGKILL)
            after = wait_for(lambda: (d := both_up(port)) and d["0"]["pid"] != pids[0] and d,
                             60, "worker 0 restarted")
            pids.append(after["0"]["pid"])
            time.sleep(3.0)
            sup.send_signal(signal.SIGTERM)
            out, _ = sup.communicate(timeout=90)
        text = (tmp_path / "sup.log").read_text(errors="replace")
        assert sup.returncode == 0, text[-3000:]
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert [summary["workers"]["0"]["restarts"], summary["workers"]["1"]["restarts"]] == [1, 0]
        replays = [line for line in text.splitlines()
                   if line.startswith("[worker 0]") and "journal: replayed" in line]
        assert {v for v in TWO if any(f"[{v}]" in line for line in replays)} == set(TWO), \
            text[-3000:]  # the restarted worker replayed each venue's own journal
        for venue in TWO:
            assert (data / "_journal" / "shard-0-of-2" / venue).is_dir(), venue
        for venue, symbols in TWO.items():
            rows = prices(data, venue)
            assert set(rows["symbol"]) == set(symbols), venue
            for symbol in symbols:
                mine = rows.filter(pl.col("symbol") == symbol)
                ids = mine["agg_id"].to_list()
                assert len(set(ids)) == len(ids), f"{venue} {symbol}: a trade written twice"
                tape = tape_prices(sims[venue][1], symbol, min(ids), max(ids), venue)
                by_id = dict(zip(ids, mine["price"].to_list(), strict=True))
                assert all(tape.get(i) == p for i, p in by_id.items()), \
                    f"{venue} {symbol}: a row that is not this venue's trade"
                holes = unfilled(data, venue, symbol)
                lost = [i for i in tape if i not in by_id
                        and not any(a <= i <= b for a, b in holes)]
                assert not lost, f"{venue} {symbol}: trades lost without a gap row: {lost[:5]}"
    finally:
        if sup is not None and sup.poll() is None:
            sup.kill()
            sup.wait()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for p, _ in sims.values():
            stop_sim(p)
