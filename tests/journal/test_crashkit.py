"""How the crash test counts a kill's loss (``crashkit.count``), on a hand-made dataset: a kill
while the simulator's disconnect had the book connection down loses nothing the journal held
only when the first missing frame was sent after that close."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tests.journal.crashkit import book_down_at, count

KILL = 2_600
LAST_KEPT = 2_000  # event time of the last book frame on disk before the kill (received +5 ms)


def dataset(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    events = [*range(1_000, LAST_KEPT + 1, 100), *range(3_500, 4_001, 100)]  # the restart's hole
    ids = list(range(1, len(events) + 1))
    prev = [0, *ids[:-1]]
    prev[events.index(3_500)] = 999  # the chain breaks across the hole
    book = data / "venue=binance-usdm" / "date=2024-01-01" / "symbol=BTCUSDT" / "kind=orderbook"
    book.mkdir(parents=True)
    pl.DataFrame({"source": ["depth20@100ms"] * len(ids), "update_id": ids,
                  "prev_update_id": prev, "event_ms": events,
                  "recv_ms": [e + 5 for e in events]}).write_parquet(book / "part-0.parquet")
    prices = data / "venue=binance-usdm" / "date=2024-01-01" / "symbol=BTCUSDT" / "kind=prices"
    prices.mkdir(parents=True)  # none: their count against the simulator's tape is not this test's
    pl.DataFrame({"agg_id": []}, schema={"agg_id": pl.Int64}).write_parquet(prices / "part-0.parquet")
    gaps = data / "venue=binance-usdm" / "date=2024-01-01" / "symbol=BTCUSDT" / "kind=gaps"
    gaps.mkdir(parents=True)
    pl.DataFrame({"stream": ["btcusdt@depth20@100ms"], "start_ms": [LAST_KEPT + 5],
                  "end_ms": [3_505], "reason": ["restart"], "detail": ["harvester restarted"]},
                 ).write_parquet(gaps / "part-0.parquet")
    return data


def loss(data: Path, down_since: int | None) -> int:
    r = count(data, 0, ["BTCUSDT"], [KILL], 200, [down_since])
    assert r["unrecorded_loss"] == 0 and r["duplicates"] == 0, r
    assert r["loss_ms_per_kill"] == [KILL - LAST_KEPT - 100]  # the raw figure never changes
    return int(r["max_loss_ms_received"])


def test_a_kill_with_the_connection_up_counts_from_the_first_missing_frame(tmp_path: Path) -> None:
    assert loss(dataset(tmp_path), None) == KILL - (LAST_KEPT + 100) - 5  # less the receive lag


def test_a_kill_after_the_simulator_closed_the_connection_counts_only_what_reached_it(
        tmp_path: Path) -> None:
    data = dataset(tmp_path)
    # closed before the next frame was sent: every missing frame was sent to no one
    assert loss(data, LAST_KEPT + 50) == 0
    # closed after it was sent: it reached the harvester and the journal lost it
    assert loss(data, LAST_KEPT + 150) == KILL - (LAST_KEPT + 100) - 5


def test_the_book_connection_state_at_each_kill_comes_from_the_harvesters_log(
        tmp_path: Path) -> None:
    log = tmp_path / "harvester.log"
    log.write_text(
        "--- start\n"
        "2024-01-01T00:00:01.000Z INFO    ingest: public[4:btcusdt@depth20@100ms…]: connected\n"
        "2024-01-01T00:00:02.000Z WARNING ingest: public[4:btcusdt@depth20@100ms…]: "
        "ConnectionClosedOK: received 1000 (OK); then sent 1000 (OK); reconnecting in 0.40s\n"
        "2024-01-01T00:00:02.000Z WARNING ingest: market[2:btcusdt@aggTrade…]: "
        "ConnectionClosedOK: received 1000 (OK); then sent 1000 (OK); reconnecting in 0.10s\n"
        "2024-01-01T00:00:02.400Z INFO    ingest: public[4:btcusdt@depth20@100ms…]: reconnected\n")
    t0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
    kills = [t0 + 1_500, t0 + 2_200, t0 + 2_500]
    assert book_down_at(log, kills) == [None, t0 + 2_000, None]
