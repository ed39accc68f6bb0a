"""Two real shard processes (``run --config two.toml --shard 0/2`` and ``1/2``) of a run of two
venues that follow their listings (``symbols = ["all"]`` in each ``[venues.<name>]`` table), each
venue on its own standalone simulator whose listing changes (``listing=S``). The (venue, symbol)
pairs are split across the shards and a pair that moves is handed over at one boundary, by its
venue's own timeline: every trade id of each venue's tape is in that venue's dataset exactly
once, for the moved pairs and all others, with no gap but hand-overs and delistings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.journal.crashkit import start_venue_sims, stop_sim, tape
from trio_harvest.dataset import DatasetError, scan

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]
VENUES = ("binance-usdm", "binance-spot")  # with listing dates, and without


def shard(config: Path, data: Path, index: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [PY, "-m", "trio_harvest", "run", "--config", str(config), "--data-dir", str(data),
           "--shard", f"{index}/2", "--listing-interval", "2", "--duration", "24",
           "--log-level", "INFO", "--backfill-delay", "0.2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh, env=env)


def rows(data: Path, kind: str, venue: str) -> pl.DataFrame:
    try:
        return scan(data, kind, venue=venue).collect()
    except DatasetError:
        return pl.DataFrame()


def test_pairs_that_move_between_shards_are_harvested_once_per_venue(tmp_path: Path) -> None:
    data, config = tmp_path / "data", tmp_path / "two.toml"
    sims = start_venue_sims({v: ["all"] for v in VENUES}, config, 300.0, "listing=6", 0)
    try:
        logs = [tmp_path / f"shard{i}.log" for i in range(2)]
        procs = [shard(config, data, i, logs[i]) for i in range(2)]
        codes = [p.wait(timeout=120) for p in procs]
        text = [log.read_text() for log in logs]
        assert codes == [0, 0], "\n".join(t[-3000:] for t in text)

        moved = 0
        for venue in VENUES:
            port = sims[venue][1]
            gaps = rows(data, "gaps", venue)
            if gaps.height:  # nothing but hand-overs and delistings: no loss of any kind
                assert set(gaps["reason"].to_list()) <= {"handover", "delisted"}, gaps.rows()
                handovers = gaps.filter(pl.col("reason") == "handover")
                for row in handovers.iter_rows(named=True):  # the other shard took it then
                    moved += 1
                    name = f"[{venue}] {row['symbol']}"
                    old = next(i for i in range(2) if f"{name}: handed over" in text[i])
                    assert f"{name}: joins shard {1 - old}/2" in text[1 - old]
            for i in range(2):  # each shard harvested some of this venue's pairs
                assert f"[{venue}] harvesting" in text[i], (venue, i)
            prices = rows(data, "prices", venue)
            assert prices.height, venue
            assert prices.height == prices.select("symbol", "agg_id").n_unique(), \
                f"{venue}: a trade written twice"
            for (symbol,), part in prices.group_by(["symbol"]):
                ids = part["agg_id"].sort().to_list()
                sent = tape(port, str(symbol), ids[0], ids[-1], venue)
                assert ids == sent, (venue, symbol, len(ids), len(sent))  # none missing
            books = rows(data, "orderbook", venue)
            assert books.height == books.select("symbol", "update_id").n_unique(), venue
        assert moved, "\n".join(t[-2000:] for t in text)  # at least one pair changed shards
        for i in range(2):  # each venue's journal of each shard
            for venue in VENUES:
                assert (data / "_journal" / f"shard-{i}-of-2" / venue).is_dir()
    finally:
        for proc, _port in sims.values():
            stop_sim(proc)
