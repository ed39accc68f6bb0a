"""A failed open-interest poll ends in a ``gaps`` row, end to end: a harvester on the simulated
USD-M whose REST allows 1 weight a minute (``--sim-faults weight=1``) has its polls answered
429 (Retry-After pauses every REST caller); each symbol's outage is one row (stream
``<symbol>@openInterest``, reason ``poll failed (HTTP 429 rate limit)``, or ``(held by a rate
limit)`` for a symbol the pause held), written at the stop, in the dataset."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import trio

from tests.conftest import make_config
from trio_harvest.app import Harvester
from trio_harvest.dataset import scan


async def test_an_outage_of_the_open_interest_poll_is_a_gap_row_in_the_dataset(
        tmp_path: Path) -> None:
    cfg = make_config(tmp_path, sim=True, venue="binance-usdm", sim_rate=50.0,
                      sim_faults="weight=1", open_interest_interval=0.5,
                      channels="trades,derivatives", shutdown_grace=6.0)
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(3.0)
        h.request_stop("enough")
    poller = h.open_interest
    assert poller is not None and poller.stats.rate_limited >= 1
    gaps = scan(cfg.data_dir, "gaps", venue="binance-usdm").collect().filter(
        pl.col("reason").str.starts_with("poll failed"))
    symbols = set(cfg.symbols)
    # every symbol's open interest has a hole: the one refused and the ones the pause held
    assert set(gaps["symbol"]) == symbols
    assert gaps.height == poller.stats.gaps  # each outage once, however many polls it held
    assert "poll failed (HTTP 429 rate limit)" in set(gaps["reason"])
    assert set(gaps["reason"]) <= {"poll failed (HTTP 429 rate limit)",
                                   "poll failed (held by a rate limit)"}
    for row in gaps.iter_rows(named=True):
        assert row["stream"] == f"{row['symbol'].lower()}@openInterest"
        assert row["detail"].startswith("open interest: ")
        assert row["end_ms"] >= row["start_ms"]
