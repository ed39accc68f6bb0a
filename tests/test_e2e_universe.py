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
    assert "silent for" not in proc.stderr and "stream_stale" not in proc.stderr  # health

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


def test_a_shard_follows_only_its_share_even_from_an_empty_start(tmp_path: Path) -> None:
    """``--shard 1/2`` of the simulator's catalogue owns nothing at start (rendezvous hashing
    puts all eight on shard 0, unweighted); it runs anyway and harvests the new listings it owns, only."""
    from trio_harvest.scale.shards import Shard, symbols_of

    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "trio_harvest", "run", "--sim", "--shard", "1/2", "--symbols",
         "all", "--sim-faults", "listing=2", "--listing-interval", "1", "--duration", "14",
         "--shard-weights", "off",
         "--data-dir", str(data)],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    subscribed = re.findall(r"listing: 1 new symbol subscribed: (\w+)", proc.stderr)
    assert subscribed, proc.stderr[-3000:]
    assert symbols_of(subscribed, Shard(1, 2)) == tuple(subscribed)
    assert not symbols_of(CATALOGUE, Shard(1, 2))  # what this test's premise rests on
    harvested = set(scan(data, "prices").collect()["symbol"].unique().to_list())
    assert harvested and harvested <= set(subscribed)
