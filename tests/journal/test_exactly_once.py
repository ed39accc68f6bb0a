"""Exactly once on local disk, with real processes killed with SIGKILL and counted against the
simulator's tape (``crashkit.count``):

- a restart with fewer symbols still writes the journaled rows of the symbol it dropped;
- rows lost to an unwritable data dir and dead letter, refetched by backfill and then killed,
  are written once by the restart's replay (a trade from a replayed frame and the same trade
  from a replayed REST row are one row);
- rows that neither the data dir nor the dead letter takes at a clean stop stay in the journal,
  and the next start writes them.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import trio

from tests.journal.crashkit import (
    _scan,
    count,
    harvester,
    kill,
    start_sim,
    stop_sim,
    tape,
    wait_line,
)
from trio_harvest.journal import format as fmt

FSYNC_MS = 100


@contextmanager
def simulator(symbols: str, rate: float, seed: int) -> Iterator[int]:
    sim, port = start_sim(symbols, rate, seed, "")
    try:
        yield port
    finally:
        stop_sim(sim)


def fewer_symbols(work: Path) -> dict[str, Any]:
    data, log = work / "data", work / "harvester.log"
    with simulator("BTCUSDT,ETHUSDT", 400.0, 5) as port:
        # nothing is written before the kill: every row is in memory and the journal only
        proc = harvester(port, data, "BTCUSDT,ETHUSDT", FSYNC_MS,
                         ("--rotate-sec", "600", "--min-file-rows", "1000000"))
        assert wait_line(proc, log, "harvesting", 30.0)
        time.sleep(3.0)
        kill(proc)
        assert not _scan(data, "prices").height
        proc = harvester(port, data, "BTCUSDT", FSYNC_MS, ("--duration", "2"))
        proc.wait(timeout=60)
        result = count(data, port, ["BTCUSDT", "ETHUSDT"], [], FSYNC_MS)
    eth = _scan(data, "prices").filter(pl.col("symbol") == "ETHUSDT")
    gaps = _scan(data, "gaps")
    result["eth_trades"] = eth.height
    result["eth_restart_gaps"] = gaps.filter((pl.col("symbol") == "ETHUSDT")
                                             & (pl.col("reason") == "restart")).height
    result["segments_left"] = len(list((data / "_journal").glob("seg-*")))
    return result


async def test_a_restart_with_fewer_symbols_writes_the_journaled_rows_of_the_dropped_one(
        tmp_path: Path) -> None:
    r = await trio.to_thread.run_sync(lambda: fewer_symbols(tmp_path))
    assert r["eth_trades"] > 50, r  # received before the kill: written, not thrown away
    assert r["duplicates"] == 0, r
    assert r["unrecorded_loss"] == 0, r
    assert r["eth_restart_gaps"] >= 1, r  # its streams end at the restart, on the record
    assert r["segments_left"] == 0, r  # durable now, so the segments went


def _backfilled_in_journal(journal: Path) -> int:
    """Trades of REST backfill in the journal (rows of kind ``prices``)."""
    n = 0
    for seg in journal.glob("seg-*"):
        for rec in fmt.read_segment(seg):
            if rec.type == fmt.ROW and json.loads(rec.payload)["kind"] == "prices":
                n += 1
    return n


def _files(data: Path) -> int:
    return len(list(data.glob("venue=*/date=*/symbol=*/kind=prices/*.parquet")))


def chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", "-R", flag, *map(str, paths)], check=True)


def backfill_then_kill(work: Path) -> dict[str, Any]:
    data, dl, journal = work / "data", work / "deadletter", work / "journal"
    log = work / "harvester.log"
    extra = ("--journal-dir", str(journal), "--deadletter-dir", str(dl), "--rotate-sec", "3",
             "--min-file-rows", "1", "--no-auto-recover")
    with simulator("BTCUSDT,ETHUSDT", 600.0, 11) as port:
        proc = harvester(port, data, "BTCUSDT,ETHUSDT", FSYNC_MS, extra)
        assert wait_line(proc, log, "harvesting", 30.0)
        deadline = time.monotonic() + 20
        while not _scan(data, "prices").height and time.monotonic() < deadline:
            time.sleep(0.2)
        for kind in ("prices", "orderbook", "gaps"):
            (dl / kind).mkdir(parents=True, exist_ok=True)
        chattr("+i", data, dl)  # neither the dataset nor the dead letter takes a row
        try:
            assert wait_line(proc, log, "LOST", 10.0)
            time.sleep(5.0)
            files = _files(data)
        finally:
            chattr("-i", data, dl)
        # the first write after the block: the loss is recorded and its trades go to backfill,
        # whose rows then wait in memory (and the journal) for the next rotation, as the lost
        # frames do; the kill comes before that rotation
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _files(data) <= files:
            time.sleep(0.05)
        time.sleep(1.2)
        kill(proc)
        journaled = _backfilled_in_journal(journal)
        proc = harvester(port, data, "BTCUSDT,ETHUSDT", FSYNC_MS, ("--duration", "3", *extra))
        proc.wait(timeout=60)
        result = count(data, port, ["BTCUSDT", "ETHUSDT"], [], FSYNC_MS)
    # a depth hole whose rows were lost to the block is on the record by its ``write lost`` row
    # (which spans the lost rows, inside the hole, not the rows around it)
    lost = _scan(data, "gaps").filter(pl.col("reason") == "write lost")
    holes = result["unrecorded_holes"]
    result["unrecorded_holes"] = [h for h in holes if not lost.filter(
        (pl.col("symbol") == h["symbol"]) & pl.col("stream").str.ends_with("@orderbook")
        & (pl.col("start_ms") > h["after_event_ms"])
        & (pl.col("end_ms") < h["before_event_ms"])).height]
    result["unrecorded_loss"] -= len(holes) - len(result["unrecorded_holes"])
    result["lost_logged"] = log.read_text(errors="replace").count("LOST")
    result["backfilled_in_journal"] = journaled
    return result


async def test_rows_lost_then_backfilled_then_killed_are_written_once_by_the_replay(
        tmp_path: Path) -> None:
    r = await trio.to_thread.run_sync(lambda: backfill_then_kill(tmp_path))
    assert r["lost_logged"] > 0, r  # the block did lose rows
    assert r["backfilled_in_journal"] > 0, r  # ... and backfill refetched them before the kill
    assert r["gaps_by_reason"].get("write lost", 0) >= 1, r
    assert r["duplicates"] == 0, r
    assert r["unrecorded_loss"] == 0, r


def lost_at_stop(work: Path) -> dict[str, Any]:
    data, dl, journal = work / "data", work / "deadletter", work / "journal"
    log = work / "harvester.log"
    extra = ("--journal-dir", str(journal), "--deadletter-dir", str(dl), "--rotate-sec", "600",
             "--min-file-rows", "1000000", "--no-auto-recover", "--no-auto-compact",
             "--shutdown-grace", "3", "--deadletter-timeout", "2")
    with simulator("BTCUSDT,ETHUSDT", 400.0, 17) as port:
        data.mkdir(parents=True)
        for kind in ("prices", "orderbook", "gaps"):
            (dl / kind).mkdir(parents=True, exist_ok=True)
        proc = harvester(port, data, "BTCUSDT,ETHUSDT", FSYNC_MS, extra)
        assert wait_line(proc, log, "harvesting", 30.0)
        time.sleep(3.0)  # every row is in memory (no rotation yet) and in the journal
        chattr("+i", data, dl)  # the final flush and its dead letter both fail
        try:
            proc.terminate()
            proc.wait(timeout=60)
        finally:
            chattr("-i", data, dl)
        first = log.read_text(errors="replace")
        segments = len(list(journal.glob("seg-*")))
        proc = harvester(port, data, "BTCUSDT,ETHUSDT", FSYNC_MS, ("--duration", "3", *extra))
        proc.wait(timeout=60)
        result = count(data, port, ["BTCUSDT", "ETHUSDT"], [], FSYNC_MS)
        result["trades_before_stop"] = _first_run_trades(data, port)
    result["kept_logged"] = first.count("the journal keeps them")
    result["segments_after_stop"] = segments
    return result


def _first_run_trades(data: Path, port: int) -> dict[str, int]:
    """Per symbol: how many of the tape's trades, from its first to the last one on disk, are
    missing from ``prices`` (0: none)."""
    prices = _scan(data, "prices")
    out: dict[str, int] = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        ids = set(prices.filter(pl.col("symbol") == symbol)["agg_id"].to_list())
        out[symbol] = len(set(tape(port, symbol, min(ids), max(ids))) - ids) if ids else -1
    return out


async def test_rows_the_dead_letter_refuses_at_a_stop_are_written_by_the_next_start(
        tmp_path: Path) -> None:
    r = await trio.to_thread.run_sync(lambda: lost_at_stop(tmp_path))
    assert r["kept_logged"] > 0, r  # the stop did lose its authoritative writes ...
    assert r["segments_after_stop"] > 0, r  # ... and the journal kept what held them
    assert r["duplicates"] == 0, r
    assert r["trades_before_stop"] == {"BTCUSDT": 0, "ETHUSDT": 0}, r  # all written, none lost
