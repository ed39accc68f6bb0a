"""A real SIGKILL of a run of three venues (``[venues.<name>]`` tables, one standalone simulator
per venue, each speaking its own wire), then a restart: each venue's journal
(``_journal/<venue>``) is replayed into that venue's own router, so the trades received before
the kill and not yet written land under that venue's ``venue=`` partition, once, with that
venue's values. Backfill is off so nothing but the journal can bring them back; every other trade of each
venue's tape is on disk or inside that venue's unfilled restart gap."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import polars as pl

from trio_harvest.dataset import DatasetError, scan
from trio_harvest.gaps import parse_agg_detail

from .crashkit import PY, kill, start_venue_sims, stop, stop_sim, tape_prices, wait_line

THREE = {"binance-usdm": ("BTCUSDT", "ETHUSDT"), "binance-spot": ("BTCUSDT", "ETHUSDT"),
         "binance-coinm": ("BTCUSD_PERP", "ETHUSD_PERP")}


def unfilled(data: Path, venue: str, symbol: str) -> list[tuple[int, int]]:
    """The venue's ``unfilled`` trade-id ranges of ``symbol`` (its restart gap, backfill off)."""
    try:
        gaps = scan(data, "gaps", venue=venue).collect()
    except DatasetError:
        return []
    return [(p[0], p[1]) for d in gaps.filter(pl.col("symbol") == symbol)["detail"]
            if (p := parse_agg_detail(d)) is not None and not p[2]]


def prices(data: Path, venue: str) -> pl.DataFrame:
    try:
        return scan(data, "prices", venue=venue).collect()
    except DatasetError:
        return pl.DataFrame({"symbol": [], "agg_id": [], "price": []},
                            schema={"symbol": pl.String, "agg_id": pl.Int64, "price": pl.Float64})


def harvest(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        fh.write(b"--- start\n")
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh)


def test_a_killed_run_of_three_venues_replays_each_venues_frames_into_its_own_venue(
        tmp_path: Path) -> None:
    data, log, toml = tmp_path / "data", tmp_path / "harvester.log", tmp_path / "three.toml"
    sims = start_venue_sims(THREE, toml)  # different tapes
    try:
        cmd = [PY, "-m", "trio_harvest", "run", "--config", str(toml), "--data-dir", str(data),
               "--log-level", "INFO", "--no-backfill", "--journal-fsync-ms", "50"]
        proc = harvest(cmd, log)
        assert wait_line(proc, log, "harvesting 3 venues", 60.0), log.read_text()[-2000:]
        time.sleep(3.0)
        kill_ms = kill(proc)
        before = {v: set(prices(data, v)["agg_id"].to_list()) for v in THREE}
        for venue in THREE:  # each venue journaled its own frames
            assert any((data / "_journal" / venue).iterdir()), venue
        proc = harvest([*cmd, "--duration", "3"], log)
        try:
            assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
        finally:
            stop(proc)
        restart = log.read_text().rsplit("--- start\n", 1)[-1]
        assert restart.count("journal: replayed") == 3, restart[-3000:]
        # each venue's final flush ran to its end: nothing was cut short into the dead letter
        assert "second stop request" not in restart, restart[-3000:]
        for venue, symbols in THREE.items():
            rows = prices(data, venue)
            assert rows.height and set(rows["symbol"]) == set(symbols), venue
            port = sims[venue][1]
            replayed = 0
            for symbol in symbols:
                mine = rows.filter(pl.col("symbol") == symbol)
                ids = mine["agg_id"].to_list()
                assert len(set(ids)) == len(ids), f"{venue} {symbol}: a trade written twice"
                tape = tape_prices(port, symbol, min(ids), max(ids), venue)
                by_id = dict(zip(ids, mine["price"].to_list(), strict=True))
                assert all(tape.get(i) == p for i, p in by_id.items()), \
                    f"{venue} {symbol}: a row that is not this venue's trade"
                holes = unfilled(data, venue, symbol)  # the rest of its tape: in a gap row
                lost = [i for i in tape if i not in by_id
                        and not any(a <= i <= b for a, b in holes)]
                assert not lost, f"{venue} {symbol}: trades lost without a gap row: {lost[:5]}"
                # received well before the kill, not on disk at the kill: only the journal has it
                old = mine.filter(pl.col("ts").dt.epoch("ms") < kill_ms - 1000)
                replayed += sum(1 for i in old["agg_id"].to_list() if i not in before[venue])
            assert replayed > 0, f"{venue}: nothing of the killed run came back from its journal"
    finally:
        for p, _ in sims.values():
            stop_sim(p)
