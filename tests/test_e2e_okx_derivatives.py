"""okx-swap's derivatives end to end, a real process: ``run --sim --venue okx-swap`` with a
disconnect writes ``derivatives`` (mark within 1 % of the last trade, funding settling on OKX's
8 h schedule, open interest > 0 in base currency, each row carrying only its channel's value)
and ``liquidations`` (side, price, quantity), and the streams of both get ``gaps`` rows when
the connection drops. (okx-spot's one-line error is tested with Binance spot's.)"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tests.test_e2e_derivatives import assert_funding_on_schedule, assert_marks_near_trades, harvest
from trio_harvest import venues
from trio_harvest.dataset import scan

VALUE = {"mark-price": "mark_price", "index-tickers": "index_price",
         "funding-rate": "funding_rate", "open-interest": "open_interest"}


def test_okx_swap_writes_derivatives_and_liquidations_with_gaps(tmp_path: Path) -> None:
    proc = harvest(tmp_path, "--venue", "okx-swap", "--duration", "13", "--sim-faults",
                   "disconnect=6")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = tmp_path / "data"
    symbols = set(venues.get("okx-swap").default_symbols)
    derivs = scan(data, "derivatives", venue="okx-swap").collect()
    trades = scan(data, "prices", venue="okx-swap").collect()
    assert set(derivs["symbol"]) == symbols
    for source, column in VALUE.items():  # each row carries its channel's value, nulls else
        rows = derivs.filter(pl.col("source") == source)
        assert set(rows["symbol"]) == symbols, source
        assert rows[column].is_not_null().all(), source
        others = [c for c in VALUE.values() if c != column] + ["settle_price"]
        assert rows.select(pl.all_horizontal(pl.col(others).is_null())).to_series().all()

    marks = derivs.filter(pl.col("source") == "mark-price").sort("ts_ms")
    assert marks.height >= 2 * 6  # about one a second per symbol
    assert_marks_near_trades(marks, trades)
    assert_funding_on_schedule(derivs.filter(pl.col("source") == "funding-rate"))

    oi = derivs.filter(pl.col("source") == "open-interest")
    assert (oi["open_interest"] > 0).all()
    # contracts times ctVal: BTC's open interest in BTC, far below a count of 0.001 contracts
    btc = oi.filter(pl.col("symbol") == "BTC-USDT-SWAP")["open_interest"]
    assert (btc < 100_000).all()

    liqs = scan(data, "liquidations", venue="okx-swap").collect()
    assert liqs.height > 0
    assert set(liqs["side"]) <= {"buy", "sell"}
    assert ((liqs["price"] > 0) & (liqs["qty"] > 0)).all()
    assert set(liqs["symbol"]) <= symbols

    gaps = scan(data, "gaps", venue="okx-swap").collect().filter(
        pl.col("reason") == "disconnect")
    streams = set(gaps["stream"])
    for channel in VALUE:  # every state stream that had delivered was interrupted
        assert {f"{channel}:{s}" for s in symbols} <= streams, channel
    liq_streams = {f"liquidation-orders:{s}" for s in liqs["symbol"].unique()}
    assert liq_streams & streams  # a liquidation stream that had delivered too

    features = scan(data, "features", venue="okx-swap").collect()
    assert features["mark_price"].is_not_null().any()
    assert features["funding_rate"].is_not_null().any()
    assert features["open_interest"].is_not_null().any()
    assert "openInterest" not in proc.stderr  # open interest is a channel: nothing polled


