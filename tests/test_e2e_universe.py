"""``run --sim --symbols all --sim-faults listing=S``, a real process end to end: new listings are
subscribed and have rows, each delisting has its one ``delisted`` gap row, and no other stream
has a gap (a shorter run and interval than the 45 s / 10 s of the acceptance command)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl

from trio_harvest.dataset import scan
from trio_harvest.sim.listing import CATALOGUE


def test_a_run_follows_the_simulators_listing_changes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "trio_harvest", "run", "--sim", "--symbols", "all",
         "--sim-faults", "listing=5", "--duration", "21", "--data-dir", str(data),
         "--summary-json"],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    subscribed = re.findall(r"listing: 1 new symbol subscribed: (\w+)", proc.stderr)
    unsubscribed = re.findall(r"listing: 1 symbol unsubscribed: (\w+)", proc.stderr)
    assert len(subscribed) >= 2 and len(unsubscribed) >= 2, proc.stderr[-3000:]
    assert not set(subscribed) & set(CATALOGUE)

    gaps = scan(data, "gaps").collect()
    # one delisted row per delisted symbol, and no other gap at all (no disconnect, no stall)
    assert gaps["reason"].to_list() == ["delisted"] * gaps.height
    assert sorted(gaps["symbol"].to_list()) == sorted(unsubscribed)
    prices = scan(data, "prices").collect()
    with_rows = set(prices["symbol"].unique().to_list())
    for symbol in subscribed[:-1]:  # the last one may have been listed just before the stop
        assert symbol in with_rows
    for symbol in unsubscribed:  # its rows up to the delisting were flushed and written
        assert symbol in with_rows
    # every trade is there once: ids contiguous per symbol (no hole, no repeat)
    for (symbol,), part in prices.group_by(["symbol"]):
        ids = part["agg_id"].sort()
        assert ids.n_unique() == part.height, symbol
        assert ids[-1] - ids[0] + 1 == part.height, symbol
    assert summary["reconnects"] == 0 and not any(summary["rows_deadlettered"].values())
    assert pl.Series(gaps["symbol"]).n_unique() == gaps.height
