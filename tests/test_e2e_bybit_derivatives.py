"""Bybit linear's derivatives end to end, a real process: ``run --sim --venue bybit-linear``
with disconnects writes ``derivatives`` from the merged tickers (mark within 1 % of the last
trade, next funding time on the 8 h schedule, open interest > 0, every value null where the
delta did not change it) and ``liquidations`` (side, price, quantity); the tickers and
liquidation topics get ``gaps`` rows when the connection drops (and the subscription after it
starts with a snapshot again); bybit-spot offers neither (one line). Health's cadence of these
topics is tested in ``tests/ops/test_health.py``."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from trio_harvest import venues
from trio_harvest.dataset import scan

from .test_e2e_derivatives import EIGHT_HOURS_MS, harvest, ms

VENUE = "bybit-linear"


def test_bybit_linear_writes_derivatives_and_liquidations(tmp_path: Path) -> None:
    proc = harvest(tmp_path, "--venue", VENUE, "--duration", "14", "--sim-faults",
                   "disconnect=6")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = tmp_path / "data"
    symbols = set(venues.get(VENUE).default_symbols)
    derivs = scan(data, "derivatives", venue=VENUE).collect().sort("ts_ms")
    trades = scan(data, "prices", venue=VENUE).collect()
    assert set(derivs["symbol"]) == symbols and set(derivs["source"]) == {"tickers"}
    assert derivs.height >= 2 * 8  # about one a second per symbol

    near = derivs.drop_nulls("mark_price").join_asof(
        trades.select("ts_ms", "symbol", pl.col("price").alias("last")).sort("ts_ms"),
        on="ts_ms", by="symbol", strategy="backward").drop_nulls("last")
    assert near.height > 0.8 * derivs.drop_nulls("mark_price").height
    assert ((near["mark_price"] / near["last"] - 1).abs() < 0.01).all()

    funding = derivs.drop_nulls("next_funding_ms")
    nxt, ts = ms(funding, "next_funding_ms"), ms(funding, "ts_ms")
    assert (nxt % EIGHT_HOURS_MS == 0).all()  # 00:00, 08:00, 16:00 UTC
    assert ((nxt > ts) & (nxt <= ts + EIGHT_HOURS_MS)).all()
    # each (re)subscription starts with a snapshot: the next funding time of every session,
    # then null while it does not change (never a stale copy)
    per_symbol = funding.group_by("symbol").len()
    assert (per_symbol["len"] >= 2).all()  # the first session's and the one after the drop
    assert derivs["next_funding_ms"].null_count() > derivs.height / 2
    oi = derivs.drop_nulls("open_interest")
    assert oi.height > 0 and (oi["open_interest"] > 0).all()

    liqs = scan(data, "liquidations", venue=VENUE).collect()
    assert liqs.height > 0
    assert set(liqs["side"]) <= {"buy", "sell"}
    assert ((liqs["price"] > 0) & (liqs["qty"] > 0)).all()

    gaps = scan(data, "gaps", venue=VENUE).collect().filter(pl.col("reason") == "disconnect")
    ticker_gaps = gaps.filter(pl.col("stream").str.starts_with("tickers."))
    assert set(ticker_gaps["symbol"]) == symbols  # every tickers topic was interrupted
    liq_streams = {f"allLiquidation.{s}" for s in liqs["symbol"].unique()}
    assert liq_streams & set(gaps["stream"])  # a liquidation topic that had delivered too

    features = scan(data, "features", venue=VENUE).collect()
    assert features["mark_price"].is_not_null().any()
    assert features["open_interest"].is_not_null().any()


def test_bybit_spot_offers_no_liquidations(tmp_path: Path) -> None:
    proc = harvest(tmp_path, "--venue", "bybit-spot", "--channels", "trades,liquidations",
                   "--duration", "2")
    assert proc.returncode == 2
    assert "bybit-spot offers no liquidations" in proc.stderr and "Traceback" not in proc.stderr
