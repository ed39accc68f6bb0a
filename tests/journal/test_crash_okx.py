"""A real SIGKILL of an ``okx-swap`` run against a standalone simulator speaking OKX, then a
restart: the journal (frames of a socket that subscribed after its handshake; the URL's
fragment names its streams) is replayed before connecting, with the contract values of the
listing read first (the segments must outlive that read), so every trade journaled at the kill
lands, once, with OKX's values in base currency, and so do its derivatives rows. Backfill is
off: every other trade of the tape is on disk or its fill ids lie inside the unfilled restart
gap."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import polars as pl

from trio_harvest.dataset import scan
from trio_harvest.gaps import parse_agg_detail
from trio_harvest.journal import format as fmt

from .crashkit import PY, kill, start_sim, stop, stop_sim, wait_line

SYMBOLS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")


def _tape(port: int, symbol: str, first: int, last: int) -> dict[int, tuple[int, float]]:
    """The simulator's trades with fill ids up to ``last`` back to ``first``, by its REST
    (history-trades pages down): tradeId -> (first fill id, size in contracts)."""
    out: dict[int, tuple[int, float]] = {}
    after = last + 1
    while after > first:
        url = (f"http://127.0.0.1:{port}/api/v5/market/history-trades?instId={symbol}&type=1"
               f"&after={after}&limit=100")
        for _ in range(20):  # 20 requests per 2 s
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    page = json.loads(r.read())["data"]
                break
            except urllib.error.HTTPError as exc:
                assert exc.code == 429
                time.sleep(0.5)
        if not page:
            break
        for t in page:
            out[int(t["tradeId"])] = (int(t["tradeId"]) - int(t["count"]) + 1, float(t["sz"]))
        after = int(page[-1]["tradeId"])
    return out


def _ct_val(port: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/api/v5/public/instruments?instType=SWAP"
    with urllib.request.urlopen(url, timeout=10) as r:
        return {e["instId"]: float(e["ctVal"]) for e in json.loads(r.read())["data"]}


def _journaled_trades(journal: Path) -> dict[str, set[int]]:
    """The trade ids (OKX ``tradeId``) of every trade frame a journal holds, by symbol."""
    out: dict[str, set[int]] = {}
    for rec in fmt.iter_segments(journal.glob(f"seg-*{fmt.SUFFIX}")):
        if rec.type != fmt.FRAME:
            continue
        doc = json.loads(rec.payload)
        if doc.get("arg", {}).get("channel") == "trades" and "data" in doc:
            for t in doc["data"]:
                out.setdefault(t["instId"], set()).add(int(t["tradeId"]))
    return out


def _state_keys(data: Path) -> set[tuple[object, ...]]:
    if not list(data.glob("venue=*/date=*/symbol=*/kind=derivatives/*.parquet")):
        return set()
    rows = scan(data, "derivatives", venue="okx-swap").collect()
    return set(rows.select("symbol", "source", "ts_ms").iter_rows())


def test_a_killed_okx_run_replays_its_journal_once_in_base_sizes(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "harvester.log"
    sim, port = start_sim(",".join(SYMBOLS), 200.0, 4, "", "okx-swap")
    try:
        cmd = [PY, "-m", "trio_harvest", "run", "--venue", "okx-swap", "--symbols",
               ",".join(SYMBOLS), "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url",
               f"http://127.0.0.1:{port}", "--data-dir", str(data), "--log-level", "INFO",
               "--no-backfill", "--journal-fsync-ms", "50"]

        def start() -> subprocess.Popen[bytes]:
            with open(log, "ab") as fh:
                fh.write(b"--- start\n")
                return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh)

        proc = start()
        assert wait_line(proc, log, "harvesting 2 symbols", 60.0), log.read_text()[-2000:]
        time.sleep(3.0)
        kill_ms = kill(proc)
        # what the killed run left journaled: the restart must write every trade of it
        shutil.copytree(data / "_journal", tmp_path / "journal-at-kill")
        journaled = _journaled_trades(tmp_path / "journal-at-kill")
        assert set(journaled) == set(SYMBOLS), journaled.keys()
        before = set(scan(data, "prices", venue="okx-swap").collect()["agg_id"].to_list()) \
            if list(data.glob("venue=*/date=*/symbol=*/kind=prices/*.parquet")) else set()
        state_before = _state_keys(data)
        cmd += ["--duration", "3"]
        proc = start()
        try:
            assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
        finally:
            stop(proc)
        assert "journal: replayed" in log.read_text().rsplit("--- start\n", 1)[-1]
        rows = scan(data, "prices", venue="okx-swap").collect()
        gaps = scan(data, "gaps", venue="okx-swap").collect()
        ct_val = _ct_val(port)
        replayed = 0
        for symbol in SYMBOLS:
            mine = rows.filter(pl.col("symbol") == symbol)
            ids = mine["agg_id"].to_list()
            assert len(set(ids)) == len(ids), f"{symbol}: a trade written twice"
            tape = _tape(port, symbol, min(ids), max(ids))
            for agg_id, first_id, qty in mine.select("agg_id", "first_id", "qty").iter_rows():
                assert agg_id in tape and tape[agg_id][0] == first_id, agg_id
                assert abs(qty - tape[agg_id][1] * ct_val[symbol]) < 1e-9  # base currency
            holes = [(p[0], p[1]) for d in gaps.filter(pl.col("symbol") == symbol)["detail"]
                     if (p := parse_agg_detail(d)) is not None and not p[2]]
            lost = [i for i, (f, _) in tape.items() if i not in set(ids) and min(ids) <= i
                    and not any(a <= f and i <= b for a, b in holes)]
            assert not lost, f"{symbol}: trades lost without a gap row: {lost[:5]}"
            unwritten = sorted(journaled.get(symbol, set()) - set(ids))
            assert not unwritten, f"{symbol}: journaled at the kill, never written: {unwritten[:5]}"
            old = mine.filter(pl.col("ts").dt.epoch("ms") < kill_ms - 1000)
            replayed += sum(1 for i in old["agg_id"].to_list() if i not in before)
        assert replayed > 0, "nothing of the killed run came back from its journal"
        # the contract state too (one row a second per channel): what came before the kill is
        # on disk once, some of it from the journal
        derivs = scan(data, "derivatives", venue="okx-swap").collect()
        keys = derivs.select("symbol", "source", "ts_ms")
        assert keys.n_unique() == keys.height, "a derivatives row written twice"
        old = derivs.filter(pl.col("ts_ms").dt.epoch("ms") < kill_ms - 1000)
        assert set(old["source"]) >= {"mark-price", "index-tickers"}
        assert set(old.select("symbol", "source", "ts_ms").iter_rows()) - state_before, \
            "no derivatives row of the killed run came back from its journal"
        if list(data.glob("venue=*/date=*/symbol=*/kind=liquidations/*.parquet")):
            liqs = scan(data, "liquidations", venue="okx-swap").collect().select(
                "symbol", "ts_ms", "side", "price", "qty")
            assert liqs.n_unique() == liqs.height, "a liquidation written twice"
    finally:
        stop_sim(sim)
