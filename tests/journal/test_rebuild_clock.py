"""``replay`` of a raw archive ends and closes seconds as the live run did: a stream's lone
first frame, which the time guard holds until a second frame agrees or the run stops, is
routed at the stop (a symbol's only liquidation), and an archive that carries the live features
clock (TICK records) is replayed on that clock alone even when its first segment holds none."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import zstandard

from tests.journal.test_replay import scan
from trio_harvest.cli.commands import main
from trio_harvest.journal import format as fmt

T0 = 1_796_000_000_000  # a whole second
LAG_MS = 1300  # each trade is received this long after it happened (the exchange's clock lags)
STOP_MS = T0 + 4610  # the live run stopped here (receive clock)
URL = ("ws://127.0.0.1:9/market/stream?streams="
       "btcusdt@aggTrade/btcusdt@markPrice@1s/btcusdt@forceOrder")


def trade(agg_id: int, recv_ms: int) -> str:
    t = recv_ms - LAG_MS
    return json.dumps({"stream": "btcusdt@aggTrade", "data": {
        "e": "aggTrade", "E": recv_ms - 5, "s": "BTCUSDT", "a": agg_id, "p": "100000.0",
        "q": "0.010", "f": agg_id, "l": agg_id, "T": t, "m": agg_id % 2 == 0}})


def liquidation(recv_ms: int) -> str:
    return json.dumps({"stream": "btcusdt@forceOrder", "data": {
        "e": "forceOrder", "E": recv_ms - 10, "o": {
            "s": "BTCUSDT", "S": "BUY", "o": "LIMIT", "f": "IOC", "q": "0.500", "p": "100001.0",
            "ap": "100000.5", "X": "FILLED", "l": "0.500", "z": "0.500", "T": recv_ms - 11}}})


def write_archive(raw: Path, segments: list[list[tuple[int, int, str]]]) -> None:
    """Segments of (type, recv_ms, payload) records, seqs counted through, as the raw archive
    keeps them (one connection)."""
    folder = raw / f"date={dt.datetime.fromtimestamp(T0 / 1000, dt.UTC).date().isoformat()}"
    folder.mkdir(parents=True)
    seq = 1
    for records in segments:
        encoded = [(seq + i, ms * 1_000_000, 0, rtype, payload)
                   for i, (rtype, ms, payload) in enumerate(records)]
        name = fmt.segment_name(seq)[: -len(fmt.SUFFIX)] + fmt.ARCHIVE_SUFFIX
        (folder / name).write_bytes(
            zstandard.ZstdCompressor().compress(fmt.MAGIC + fmt.encode(encoded)))
        seq += len(records)


def replay_archive(tmp_path: Path) -> Path:
    """An archive of one symbol's trades and its only liquidation, replayed: the dataset."""
    opened = (fmt.OPEN, T0, json.dumps({"url": URL, "venue": "binance-usdm"}))
    trades = [(fmt.FRAME, T0 + 1400 + 100 * i, trade(1000 + i, T0 + 1400 + 100 * i))
              for i in range(33)]  # received T0+1.4 s .. T0+4.6 s, traded 1.3 s before
    # The first segment ends before the features clock first ticked (a short segment, a slow
    # start): it holds frames but no TICK; the second one holds the clock.
    first = [opened, *trades[:12], (fmt.FRAME, T0 + 2550, liquidation(T0 + 2550))]
    second = [*trades[12:],  # the stop: its last tick closes every complete second (no grace)
              (fmt.TICK, STOP_MS, json.dumps({"now_ms": STOP_MS - LAG_MS, "grace": False}))]
    raw, out = tmp_path / "raw", tmp_path / "rebuilt"
    write_archive(raw, [first, second])
    assert main(["replay", "--raw-dir", str(raw), "--data-dir", str(out)]) == 0
    assert scan(out, "prices").height == len(trades)
    return out


def test_a_streams_lone_first_frame_is_routed_at_the_archives_end_as_at_the_live_stop(
        tmp_path: Path) -> None:
    out = replay_archive(tmp_path)
    # the only frame of its stream (the time guard holds it for a second that never comes):
    # the live stop routed it, so does the end of the archive
    liqs = scan(out, "liquidations")
    assert liqs.height == 1
    assert liqs.select("ts_ms", "side", "price", "qty").rows() == [
        (T0 + 2550 - 11, "buy", 100001.0, 0.5)]


def test_seconds_close_on_the_journaled_clock_even_when_the_first_segment_has_no_tick(
        tmp_path: Path) -> None:
    out = replay_archive(tmp_path)
    prices = scan(out, "prices")
    # every second the stop's clock completed holds all of its trades, also those received
    # after its end plus the grace by the receive clock (the live clock is the exchange's)
    complete = (STOP_MS - LAG_MS) // 1000 * 1000
    per_second = (prices.group_by((pl.col("ts_ms") // 1000 * 1000).alias("ts_ms"))
                  .agg(pl.len().alias("trades")).filter(pl.col("ts_ms") < complete)
                  .sort("ts_ms"))
    assert per_second.height == 3
    features = scan(out, "features").sort("ts_ms")
    got = features.filter(pl.col("n_trades") > 0).select("ts_ms", "n_trades")
    assert got.rows() == per_second.rows()
