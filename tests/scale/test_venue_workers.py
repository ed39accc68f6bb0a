"""``run --config two.toml --workers 2`` as a real supervisor process: two ``[venues.<name>]``
tables (USD-M and Spot, each on its own standalone simulator process), whose (venue, symbol)
pairs are split across both workers. Each worker runs a unit per venue it has pairs of, with its
journal under ``_journal/shard-I-of-2/<venue>``; every trade id of each venue's tape is written
exactly once (none twice, none missing between the first and the last one kept)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.journal.crashkit import start_venue_sims, stop_sim, tape
from trio_harvest.dataset import scan

ROOT = Path(__file__).resolve().parents[2]
TWO = {"binance-usdm": ["BTCUSDT", "ETHUSDT"], "binance-spot": ["BTCUSDT", "ETHUSDT"]}


def test_two_workers_split_the_pairs_of_two_venues_and_write_each_trade_once(
        tmp_path: Path) -> None:
    data, config = tmp_path / "data", tmp_path / "two.toml"
    sims = start_venue_sims(TWO, config)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "trio_harvest", "run", "--config", str(config),
             "--workers", "2", "--duration", "15", "--data-dir", str(data),
             "--summary-json", "--log-level", "INFO"],
            capture_output=True, text=True, env=env, timeout=150)
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        workers = summary["workers"]
        assert sorted(workers) == ["0", "1"] and summary["frames"] > 0, summary
        assert all(w["summary"] == "yes" and w["frames"] for w in workers.values()), workers
        assert sum(summary["rows_written"].values()) > 0
        # each worker: one pair of each venue (weights by each venue's own 24 h ticker)
        for i in range(2):
            assert f"shard {i}/2: binance-usdm 1, binance-spot 1" in proc.stderr, \
                proc.stderr[-3000:]
            for venue in TWO:  # a unit per venue, its own journal
                assert (data / "_journal" / f"shard-{i}-of-2" / venue).is_dir(), (i, venue)
        for venue in TWO:  # each venue's own day snapshot of weights
            assert list((data / "_shards").glob(f"weights-{venue}-*.json")), venue
        for venue, symbols in TWO.items():
            prices = scan(data, "prices", venue=venue).collect()
            assert set(prices["symbol"]) == set(symbols), venue
            assert prices.height == prices.select("symbol", "agg_id").n_unique(), \
                f"{venue}: a trade written twice"
            for (symbol,), part in prices.group_by(["symbol"]):
                ids = part["agg_id"].sort().to_list()
                sent = tape(sims[venue][1], str(symbol), ids[0], ids[-1], venue)
                assert ids == sent, (venue, symbol, len(ids), len(sent))
            books = scan(data, "orderbook", venue=venue).collect()
            assert set(books["symbol"]) == set(symbols), venue
    finally:
        for proc_, _port in sims.values():
            stop_sim(proc_)
