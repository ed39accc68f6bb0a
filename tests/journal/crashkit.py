"""Real crashes: a standalone simulator process, a harvester process killed with SIGKILL at random
moments (one of them during its own restart replay), a last clean run, then a count of what is
on disk against what the simulator sent.

Used by ``tests/journal/test_crash.py`` and ``bench/crash.py``. What counts:

- ``duplicates``: rows of ``prices`` (by agg id), ``orderbook`` (by source and update id) or
  ``quotes`` (by update id) that are on disk more than once;
- ``unrecorded_loss``: trades of the simulator's tape (its REST ``aggTrades``) missing from
  ``prices`` and not in an ``unfilled`` gap row, plus holes in a depth stream's ``pu`` chain not
  covered by a ``gaps`` row of that stream;
- ``max_loss_ms``: the largest window of book frames lost around a kill (the kill time less the
  event time of the first frame missing before it), measured against the simulator's clock;
  ``max_loss_ms_received`` the same against what reached the harvester: less its receive lag at
  that moment (what a starved CPU had not even received yet is not the journal's to keep), and
  none when the kill came while the simulator's disconnect (``disconnect=``) had the book
  connection down and the first missing frame was sent after that close (it never reached the
  harvester; a frame sent before the close did, and counts); ``kills_while_disconnected``
  counts the kills that came while it was down.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from tests.dsrows import in_memory
from trio_harvest import venues

PY = sys.executable
CADENCE_MS = 100  # depth@100ms


def start_sim(symbols: str, rate: float, seed: int, faults: str,
              venue: str = venues.DEFAULT) -> tuple[subprocess.Popen[str], int]:
    cmd = [PY, "-m", "trio_harvest", "sim", "--port", "0", "--symbols", symbols,
           "--rate", str(rate), "--seed", str(seed), "--venue", venue]
    if faults:
        cmd += ["--faults", faults]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for _ in range(50):
        line = proc.stdout.readline()
        m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    proc.wait()
    proc.stdout.close()
    raise RuntimeError("simulator did not start")


Sims = dict[str, tuple[subprocess.Popen[str], int]]


def start_venue_sims(tables: Mapping[str, Sequence[str]], toml: Path, rate: float = 200.0,
                     faults: str = "", first_seed: int = 1) -> Sims:
    """A standalone simulator per venue (seeds ``first_seed``, …: different tapes; if one cannot
    start, those started are stopped), and ``toml``: a ``[venues.<name>]`` table per venue with
    its symbols and its simulator's URLs. The caller stops them (``stop_sim``)."""
    sims: Sims = {}
    try:
        for seed, (venue, symbols) in enumerate(tables.items(), start=first_seed):
            sims[venue] = start_sim(",".join(symbols), rate, seed, faults, venue)
    except BaseException:
        for proc, _port in sims.values():
            stop_sim(proc)
        raise
    toml.write_text("".join(
        f'[venues.{venue}]\nsymbols = {json.dumps(list(symbols))}\n'
        f'ws_url = "ws://127.0.0.1:{sims[venue][1]}"\n'
        f'rest_url = "http://127.0.0.1:{sims[venue][1]}"\n\n'
        for venue, symbols in tables.items()))
    return sims


def stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM (unless it has exited), then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def finish(proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    """Wait for a run with ``--duration`` to exit 0 (the log's tail when it does not); it is
    stopped whatever happens."""
    try:
        assert proc.wait(timeout=timeout) == 0, log.read_text()[-3000:]
    finally:
        stop(proc)


def replayed_log(log: Path) -> str:
    """The log of the last run, which must have replayed the journal."""
    restart = log.read_text().rsplit("--- start\n", 1)[-1]
    assert "journal: replayed" in restart, restart[-3000:]
    return restart


def stop_sim(sim: subprocess.Popen[str]) -> None:
    stop(sim)
    if sim.stdout is not None:
        sim.stdout.close()


def harvester(port: int, data: Path, symbols: str, fsync_ms: int,
              extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    cmd = [PY, "-m", "trio_harvest", "run", "--ws-url", f"ws://127.0.0.1:{port}",
           "--rest-url", f"http://127.0.0.1:{port}", "--data-dir", str(data),
           "--symbols", symbols, "--journal-fsync-ms", str(fsync_ms), "--log-level", "INFO",
           "--backfill-delay", "0.2", *extra]
    log = data.parent / "harvester.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(b"--- start\n")
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh)


def wait_line(proc: subprocess.Popen[bytes], log: Path, needle: str, timeout: float) -> bool:
    """Wait for ``needle`` in the log written since this process started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_bytes().rsplit(b"--- start\n", 1)[-1]
        if needle.encode() in text:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def kill(proc: subprocess.Popen[bytes]) -> int:
    ms = time.time_ns() // 1_000_000
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return ms


def run_kills(work: Path, *, kills: int = 10, rate: float = 1000.0, fsync_ms: int = 200,
              symbols: str = "BTCUSDT,ETHUSDT", seed: int = 1, min_up: float = 1.5,
              max_up: float = 3.0, faults: str = "disconnect=4",
              extra: tuple[str, ...] = ()) -> dict[str, Any]:
    rng = random.Random(seed)
    data = work / "data"
    log = work / "harvester.log"
    sim, port = start_sim(symbols, rate, seed, faults)
    kill_times: list[int] = []
    replay_kills = 0
    try:
        for i in range(kills):
            proc = harvester(port, data, symbols, fsync_ms, extra)
            if i == kills // 2 and i > 0:  # SIGKILL during the restart's own replay
                if wait_line(proc, log, "journal: replaying", 30.0):
                    kill(proc)
                    replay_kills += 1
                    proc = harvester(port, data, symbols, fsync_ms, extra)
            wait_line(proc, log, "harvesting", 30.0)
            time.sleep(rng.uniform(min_up, max_up))
            kill_times.append(kill(proc))
        proc = harvester(port, data, symbols, fsync_ms, ("--duration", "4", *extra))
        proc.wait(timeout=120)
        result = count(data, port, symbols.split(","), kill_times, fsync_ms,
                       book_down_at(log, kill_times))
    finally:
        stop_sim(sim)
    result["kills"] = len(kill_times) + replay_kills
    result["kill_ms"] = kill_times
    result["replay_kills"] = replay_kills
    return result


# the book connection's own account of its state, one line each: closed (by the simulator) or open
_BOOK_LINE = re.compile(
    r"^(\S+) \w+ +ingest: public\[[^\]]*\]: (?:(.*reconnecting in)|(?:re)?connected$)")


def book_down_at(log: Path, kills: list[int]) -> list[int | None]:
    """Per kill: since when (ms) the harvester's book connection had been closed and not yet
    reopened, or None when it was open. Read from the harvester's log, its own account (each
    life logs every (re)connect and its first close of a kind; a life is shorter than the
    simulator's disconnect period, so no close of it is rate-limited away). The logged time
    is at or after the close, never before."""
    events: list[tuple[int, bool]] = []  # (ms, open)
    for line in log.read_text(errors="replace").splitlines():
        m = _BOOK_LINE.match(line)
        if m:
            ms = int(datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() * 1000)
            events.append((ms, m.group(2) is None))
    down: list[int | None] = []
    for k in kills:
        last = [e for e in events if e[0] <= k]
        down.append(last[-1][0] if last and not last[-1][1] else None)
    return down


def _scan(data: Path, kind: str) -> pl.DataFrame:
    files = sorted(str(p) for p in data.glob(f"venue=*/date=*/symbol=*/kind={kind}/*.parquet"))
    if not files:
        return pl.DataFrame()
    return in_memory(pl.scan_parquet(files, hive_partitioning=True).collect())


def tape(port: int, symbol: str, first: int, last: int, venue: str = venues.DEFAULT) -> list[int]:
    """The trade ids ``first..last`` the simulator sent, by its REST (in ``venue``'s paths)."""
    return list(tape_prices(port, symbol, first, last, venue))


def tape_prices(port: int, symbol: str, first: int, last: int,
                venue: str = venues.DEFAULT) -> dict[int, float]:
    """The trades ``first..last`` the simulator sent, by its REST: id -> price."""
    out: dict[int, float] = {}
    cursor = first
    while cursor <= last:
        req = venues.get(venue).trades_request(symbol, cursor, 1000)
        query = "&".join(f"{k}={v}" for k, v in req.params.items())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{req.path}?{query}", timeout=10) as r:
            page = json.loads(r.read())
        if not page:
            break
        out.update((int(t["a"]), float(t["p"])) for t in page if int(t["a"]) <= last)
        cursor = int(page[-1]["a"]) + 1
    return out


def count(data: Path, port: int, symbols: list[str], kills: list[int],
          fsync_ms: int, down: list[int | None] | None = None) -> dict[str, Any]:
    prices, books, gaps = _scan(data, "prices"), _scan(data, "orderbook"), _scan(data, "gaps")
    dup_prices = prices.height - prices.select("symbol", "agg_id").n_unique()
    dup_books = books.height - books.select("symbol", "source", "update_id").n_unique()
    quotes = _scan(data, "quotes")
    dup_quotes = quotes.height - quotes.select("symbol", "update_id").n_unique() \
        if quotes.height else 0
    unrecorded = 0
    holes: list[dict[str, Any]] = []
    for symbol in symbols:
        p = prices.filter(pl.col("symbol") == symbol)
        if p.height:
            on_disk = set(p["agg_id"].to_list())
            sent = tape(port, symbol, min(on_disk), max(on_disk))
            unfilled = gaps.filter((pl.col("symbol") == symbol)
                                   & pl.col("detail").str.contains("unfilled")) if gaps.height \
                else pl.DataFrame()
            covered: list[tuple[int, int]] = []
            for d in (unfilled["detail"].to_list() if unfilled.height else []):
                m = re.match(r"agg_id (\d+)\.\.(\d+)", d)
                if m:
                    covered.append((int(m.group(1)), int(m.group(2))))
            for a in sent:
                if a not in on_disk and not any(lo <= a <= hi for lo, hi in covered):
                    unrecorded += 1
        d = books.filter((pl.col("symbol") == symbol) & pl.col("source").str.starts_with("depth")
                         ).sort("update_id")
        stream_gaps = gaps.filter((pl.col("symbol") == symbol) & (
            pl.col("stream").str.contains("@depth") | (pl.col("stream") == "*"))) \
            if gaps.height else pl.DataFrame()
        ids, prevs = d["update_id"].to_list(), d["prev_update_id"].to_list()
        ev, rc = d["event_ms"].to_list(), d["recv_ms"].to_list()
        for i in range(1, len(ids)):
            if prevs[i] == ids[i - 1]:
                continue
            cover = stream_gaps.filter(
                (pl.col("start_ms") <= rc[i - 1] + 1) & (pl.col("end_ms") >= rc[i] - 1)) \
                if stream_gaps.height else pl.DataFrame()
            ok = cover.height > 0
            holes.append({"restart": ok and "restart" in cover["reason"].to_list(),
                          "symbol": symbol, "after_event_ms": ev[i - 1],
                          "before_event_ms": ev[i], "after_recv_ms": rc[i - 1],
                          "before_recv_ms": rc[i], "recorded": ok})
            if not ok:
                unrecorded += 1
    loss = loss_received = 0
    per_kill: list[int] = []
    per_kill_received: list[int] = []
    for k, down_since in zip(kills, down or [None] * len(kills), strict=True):
        # a restart hole spanning the kill: what was sent before the kill and is not on disk
        before = [h for h in holes if h["restart"] and h["after_event_ms"] <= k <= h["before_event_ms"]]
        lost = max([k - (h["after_event_ms"] + CADENCE_MS) for h in before], default=0)
        per_kill.append(lost)
        loss = max(loss, lost)
        # the same against what reached the harvester (what never did is no journal's to keep):
        # less its receive lag at that moment (a starved CPU delays receiving); and nothing when
        # the first missing frame was sent after the simulator had closed the connection, which
        # was still down at the kill (every frame sent before the close arrived before it)
        adjusted = max([0 if down_since is not None
                        and h["after_event_ms"] + CADENCE_MS >= down_since
                        else k - (h["after_event_ms"] + CADENCE_MS)
                        - max(0, h["after_recv_ms"] - h["after_event_ms"]) for h in before],
                       default=0)
        per_kill_received.append(adjusted)
        loss_received = max(loss_received, adjusted)
    return {"max_loss_ms": max(0, loss), "loss_ms_per_kill": per_kill,
            "max_loss_ms_received": max(0, loss_received),
            "loss_ms_received_per_kill": per_kill_received,
            "kills_while_disconnected": sum(d is not None for d in down or []),
            "unrecorded_loss": unrecorded,
            "duplicates": dup_prices + dup_books + dup_quotes, "trades": prices.height,
            "book_rows": books.height, "quote_rows": quotes.height, "holes": len(holes),
            "unrecorded_holes": [h for h in holes if not h["recorded"]],
            "gaps_by_reason": dict(gaps.group_by("reason").len().iter_rows()) if gaps.height
            else {}, "bound_ms": fsync_ms + 100}
