"""``--book diff`` end to end: the real app, the simulator's diff depth and REST depth snapshot
over loopback (no MockClock); the rebuilt books agree with the simulator's bookTicker."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import trio

from trio_harvest.app import Harvester

from ..conftest import make_config


async def test_diff_books_from_the_simulator_match_its_book_ticker(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, sim=True, sim_rate=400.0, book="diff", rotate_sec=1.0,
                      symbols=("BTCUSDT", "ETHUSDT"), shutdown_grace=10.0)
    harvester = Harvester(cfg)
    assert harvester.diff_books is not None
    async with trio.open_nursery() as nursery:
        await nursery.start(harvester.run)
        with trio.fail_after(20):
            while harvester.diff_books.status()["live"] < 2 or harvester.diff_books.stats.rows < 40:
                await trio.sleep(0.1)
        await trio.sleep(1.0)
        harvester.request_stop("test over")
    status = harvester.diff_books.status()
    assert status["breaks"] == 0 and status["failures"] == 0 and status["gaps"] == 0
    assert status["requests"] == 2  # one snapshot per symbol
    assert harvester.simulator.rest.stats.requests.get("depth") == 2  # over HTTP, via httpx
    assert harvester.router.stats.unexpected == 0 and harvester.router.stats.malformed == 0
    def read(kind: str) -> pl.DataFrame:
        return pl.scan_parquet(str(tmp_path / "data" / "venue=*" / "date=*" / "symbol=*" /
                                   f"kind={kind}" / "*.parquet"), hive_partitioning=True).collect()

    book, quotes = read("orderbook"), read("quotes")
    assert set(book["source"].unique()) == {"depth"}  # the best bid/ask rows are quotes now
    compared = 0
    for symbol in ("BTCUSDT", "ETHUSDT"):
        rows = book.filter(pl.col("symbol") == symbol)
        depth = rows.filter(pl.col("source") == "depth").sort("update_id")
        ticks = quotes.filter(pl.col("symbol") == symbol).sort("update_id")
        assert depth.height >= 10
        assert (depth["ask_px_1"] > depth["bid_px_1"]).all()
        assert depth["bid_px_20"].null_count() == 0 and depth["ask_px_20"].null_count() == 0
        # the pu chain is unbroken in what was written
        assert (depth["prev_update_id"][1:] == depth["update_id"][:-1]).all()
        # a bookTicker with update id t shows the book after depth event k when
        # u_k <= t < U_(k+1): nothing changed on this symbol in between
        d = depth.select(
            "update_id", "bid_px_1", "bid_sz_1", "ask_px_1", "ask_sz_1",
            pl.col("first_update_id").shift(-1).alias("next_first"),
        ).drop_nulls("next_first")
        joined = ticks.select(
            pl.col("update_id").alias("t"), pl.col("bid").alias("tb"),
            pl.col("bid_qty").alias("tbs"), pl.col("ask").alias("ta"),
            pl.col("ask_qty").alias("tas"),
        ).join_asof(d, left_on="t", right_on="update_id", strategy="backward").filter(
            pl.col("update_id").is_not_null() & (pl.col("t") < pl.col("next_first")))
        assert joined.height >= 5, symbol
        mismatched = joined.filter((pl.col("tb") != pl.col("bid_px_1")) |
                                   (pl.col("tbs") != pl.col("bid_sz_1")) |
                                   (pl.col("ta") != pl.col("ask_px_1")) |
                                   (pl.col("tas") != pl.col("ask_sz_1")))
        assert mismatched.height == 0, mismatched.head()
        compared += joined.height
    print(f"\ncompared {compared} bookTicker rows with the rebuilt book")
    assert compared >= 10
