"""End to end, a real process: ``run --sim --book diff --duration 10`` writes ``book_updates``
whose rebuilt book (``dataset_book.py``, from the dataset alone) gives the best bid/ask the
``quotes`` rows of the same run give at the same update ids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from trio_harvest.dataset import scan
from trio_harvest.dataset_book import best_by_update

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def test_a_diff_book_run_writes_book_updates_that_rebuild_its_quotes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(
        [sys.executable, "-m", "trio_harvest", "run", "--sim", "--book", "diff", "--duration",
         "10", "--symbols", ",".join(SYMBOLS), "--data-dir", str(data),
         "--deadletter-dir", str(tmp_path / "dl"),
         "--rotate-sec", "1", "--min-file-rows", "1", "--log-level", "WARNING"],
        env=env, capture_output=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    compared = 0
    for symbol in SYMBOLS:
        ups = scan(data, "book_updates", symbols=[symbol]).collect()
        assert ups.filter(pl.col("is_snapshot")).height > 0  # the book starts from a snapshot
        tops = best_by_update(ups).filter(~pl.col("is_snapshot"))
        quotes = scan(data, "quotes", symbols=[symbol]).collect().sort("update_id")
        assert tops.height >= 20 and quotes.height >= 20
        # a quote with update id t shows the book after event k when u_k <= t < U_(k+1)
        events = tops.select(
            "update_id", "bid", "bid_qty", "ask", "ask_qty",
            pl.col("first_update_id").shift(-1).alias("next_first")).drop_nulls("next_first")
        joined = quotes.select(
            pl.col("update_id").alias("t"), pl.col("bid").alias("qb"),
            pl.col("bid_qty").alias("qbs"), pl.col("ask").alias("qa"),
            pl.col("ask_qty").alias("qas"), pl.col("ts_ms").alias("qts"),
        ).join_asof(events, left_on="t", right_on="update_id", strategy="backward").filter(
            pl.col("update_id").is_not_null() & (pl.col("t") < pl.col("next_first")))
        assert joined.height >= 10, symbol
        wrong = joined.filter((pl.col("qb") != pl.col("bid")) | (pl.col("qbs") != pl.col("bid_qty"))
                              | (pl.col("qa") != pl.col("ask")) | (pl.col("qas") != pl.col("ask_qty")))
        assert wrong.height == 0, wrong.head()
        compared += joined.height
    assert compared >= 20
