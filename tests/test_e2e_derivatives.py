"""Derivatives end to end, a real process per futures venue: ``run --sim --venue NAME`` with
disconnects writes ``derivatives`` (mark within 1 % of the last trade, next funding time on the
8 h schedule, open interest > 0) and ``liquidations`` (side, price, quantity; at most one per
symbol per second, as Binance sends them), their streams get ``gaps`` rows when the connection
drops, and the feature table carries the contract state. Rows are read through
``dataset.scan``; ``--channels`` a venue does not offer is a one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from trio_harvest import venues
from trio_harvest.dataset import scan

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
EIGHT_HOURS_MS = 8 * 3_600_000


def harvest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trio_harvest", "run", "--sim",
                           "--data-dir", str(tmp_path / "data"), *args],
                          capture_output=True, text=True, env=ENV, timeout=120)


def ms(df: pl.DataFrame, col: str) -> pl.Series:
    return df[col].dt.epoch("ms")


def assert_marks_near_trades(marks: pl.DataFrame, trades: pl.DataFrame) -> None:
    """Each mark price (most have a trade before them) within 1 % of its symbol's last trade."""
    near = marks.join_asof(trades.select("ts_ms", "symbol", pl.col("price").alias("last"))
                           .sort("ts_ms"), on="ts_ms", by="symbol", strategy="backward"
                           ).drop_nulls("last")
    assert near.height > 0.8 * marks.height
    assert ((near["mark_price"] / near["last"] - 1).abs() < 0.01).all()


def assert_funding_on_schedule(rows: pl.DataFrame) -> None:
    """Each next funding time at 00:00, 08:00 or 16:00 UTC, within 8 h after the row."""
    nxt, ts = ms(rows, "next_funding_ms"), ms(rows, "ts_ms")
    assert (nxt % EIGHT_HOURS_MS == 0).all()
    assert ((nxt > ts) & (nxt <= ts + EIGHT_HOURS_MS)).all()


@pytest.mark.parametrize("venue", ["binance-usdm", "binance-coinm"])
def test_a_futures_venue_writes_derivatives_and_liquidations(tmp_path: Path, venue: str) -> None:
    proc = harvest(tmp_path, "--venue", venue, "--duration", "14", "--sim-faults",
                   "disconnect=6", "--open-interest-interval", "4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = tmp_path / "data"
    symbols = set(venues.get(venue).default_symbols)
    derivs = scan(data, "derivatives", venue=venue).collect()
    trades = scan(data, "prices", venue=venue).collect()
    assert set(derivs["symbol"]) == symbols

    marks = derivs.filter(pl.col("source") == "markPrice").sort("ts_ms")
    assert marks.height >= 2 * 8  # about one a second per symbol
    assert_marks_near_trades(marks, trades)
    assert_funding_on_schedule(marks)
    assert marks["funding_rate"].is_not_null().all()
    assert marks["open_interest"].is_null().all()  # never a stale copy of another source

    oi = derivs.filter(pl.col("source") == "openInterest")
    assert set(oi["symbol"]) == symbols
    assert (oi["open_interest"] > 0).all() and oi["mark_price"].is_null().all()

    liqs = scan(data, "liquidations", venue=venue).collect()
    assert liqs.height > 0
    assert set(liqs["side"]) <= {"buy", "sell"}
    assert ((liqs["price"] > 0) & (liqs["qty"] > 0)).all()
    per_second = liqs.select("symbol", (ms(liqs, "event_ms") // 1000).alias("s"))
    assert per_second.n_unique() == liqs.height  # at most one per symbol per second

    gaps = scan(data, "gaps", venue=venue).collect().filter(pl.col("reason") == "disconnect")
    mark_gaps = gaps.filter(pl.col("stream").str.ends_with("@markPrice@1s"))
    assert set(mark_gaps["symbol"]) == symbols  # every mark price stream was interrupted
    liq_streams = {f"{s.lower()}@forceOrder" for s in liqs["symbol"].unique()}
    assert liq_streams & set(gaps["stream"])  # a liquidation stream that had delivered too

    features = scan(data, "features", venue=venue).collect()
    assert features["mark_price"].is_not_null().any()
    assert features["funding_rate"].is_not_null().any()
    assert features["open_interest"].is_not_null().any()


@pytest.mark.parametrize(("venue", "channel"), [("binance-spot", "derivatives"),
                                                ("okx-spot", "liquidations")])
def test_spot_has_no_derivatives_and_asking_is_a_one_line_error(tmp_path: Path, venue: str,
                                                                channel: str) -> None:
    proc = harvest(tmp_path, "--venue", venue, "--channels", f"trades,{channel}",
                   "--duration", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert f"{venue} offers no {channel}" in proc.stderr and "Traceback" not in proc.stderr


def test_channels_and_the_open_interest_interval_are_in_help() -> None:
    out = subprocess.run([sys.executable, "-m", "trio_harvest", "run", "--help"],
                         capture_output=True, text=True, env=ENV, timeout=60).stdout
    assert "--channels" in out and "--open-interest-interval" in out
    assert "liquidations" in out


@pytest.mark.parametrize(("venue", "state", "liquidations"), [
    ("binance-usdm", {"btcusdt@markPrice@1s", "ethusdt@markPrice@1s"},
     {"btcusdt@forceOrder", "ethusdt@forceOrder"}),
    ("okx-swap", {"mark-price:BTC-USDT-SWAP", "index-tickers:ETH-USDT-SWAP"},
     {"liquidation-orders:BTC-USDT-SWAP", "liquidation-orders:ETH-USDT-SWAP"}),
])
def test_a_stall_writes_gap_rows_for_the_mark_price_and_liquidation_streams(
        tmp_path: Path, venue: str, state: set[str], liquidations: set[str]) -> None:
    """Every connection goes silent with its socket open: the stall detector reconnects (an
    OKX socket subscribes again on open), and each stream that had delivered gets a ``stall``
    gap row, the contract state and liquidations too."""
    proc = harvest(tmp_path, "--venue", venue, "--duration", "12", "--sim-faults",
                   "stall=5,stall_for=4", "--stall-timeout", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    gaps = scan(tmp_path / "data", "gaps", venue=venue).collect().filter(
        pl.col("reason") == "stall")
    streams = set(gaps["stream"])
    assert state <= streams
    assert liquidations & streams
