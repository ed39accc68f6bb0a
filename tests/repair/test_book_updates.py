"""``book_updates`` (``--book diff``): every snapshot's levels and every applied diff's level
changes are written, so the whole book can be rebuilt from the dataset alone
(``dataset_book.py``). On the real USD-M capture (diff depth, REST snapshots, bookTicker) the
rebuilt book gives the best bid/ask the capture's bookTicker frames give."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from trio_harvest.dataset_book import best_by_update, rebuild
from trio_harvest.kinds import BOOK_UPDATES, BOOK_UPDATES_SCHEMA, ORDERBOOK, Row
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.repair.booksync import DiffBooks
from trio_harvest.venues.binance_usdm.decode import BookTicker, DepthUpdate
from trio_harvest.venues.rows import level_rows

from . import capture

SYMBOLS = ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")
BIG = {BOOK_UPDATES: (10**6, 2 * 10**6), ORDERBOOK: (10**6, 2 * 10**6)}


async def _harvest(fixtures_dir: Path) -> tuple[Lanes, dict[str, list[BookTicker]]]:
    """The capture through ``DiffBooks`` as the router hands it diff events; each symbol's REST
    snapshot is handed over when the capture received it (as the fetcher would)."""
    lanes = Lanes(BIG, wake=lambda lane: None, depth_levels=5)
    gaps: list[Row] = []

    async def put_gap(row: Row) -> None:
        gaps.append(row)

    books = DiffBooks(SYMBOLS, levels=5, put_gap=put_gap,
                      updates_of=lambda s: lanes.get(BOOK_UPDATES, s))
    tickers: dict[str, list[BookTicker]] = {s: [] for s in SYMBOLS}
    for recv_ms, msg in capture.messages(fixtures_dir, books):
        if isinstance(msg, DepthUpdate):
            await books.on_depth(msg, recv_ms, lanes.get(ORDERBOOK, msg.symbol), None)
        elif isinstance(msg, BookTicker):
            tickers[msg.symbol].append(msg)
    assert not gaps and books.stats.update_rows > 0
    return lanes, tickers


async def test_book_updates_of_the_capture_rebuild_the_book_its_book_tickers_show(
        fixtures_dir: Path) -> None:
    lanes, tickers = await _harvest(fixtures_dir)
    total = 0
    for symbol in SYMBOLS:
        ups = lanes.get(BOOK_UPDATES, symbol).drain().to_frame()
        assert ups.columns == BOOK_UPDATES_SCHEMA.names
        snap = ups.filter(pl.col("is_snapshot"))
        assert snap.height > 100 and snap["update_id"].n_unique() == 1  # one snapshot, whole
        tops = best_by_update(ups)
        events = tops.filter(~pl.col("is_snapshot"))
        assert events.height >= 100
        # the book after each event is the one the harvester's own local book had
        book = lanes.get(ORDERBOOK, symbol).drain().to_frame()
        assert book.height == events.height
        assert events["update_id"].to_list() == book["update_id"].to_list()
        assert events["bid"].to_list() == book["bid_px_1"].to_list()
        assert events["ask_qty"].to_list() == book["ask_sz_1"].to_list()
        # a bookTicker with update id t shows the book after event k when u_k <= t < U_(k+1)
        first, last = events["first_update_id"].to_list(), events["update_id"].to_list()
        state = events.select("bid", "bid_qty", "ask", "ask_qty").rows()
        compared = 0
        for t in tickers[symbol]:
            for k in range(len(last) - 1):
                if last[k] <= t.update_id < first[k + 1]:
                    assert state[k] == (t.bid, t.bid_qty, t.ask, t.ask_qty), (symbol, t)
                    compared += 1
                    break
        assert compared >= 5, (symbol, compared)
        total += compared
        # the whole book at the end: every level, not only the top N the orderbook kind holds
        full = rebuild(ups)
        assert len(full.bids) > 20 and full.update_id == last[-1]
        assert full.top(1) == ([state[-1][:2]], [state[-1][2:]])
    assert total >= 45  # 50 of the capture's bookTickers line up with an event boundary


def test_rebuild_restarts_at_a_snapshot_and_skips_changes_it_already_holds() -> None:
    rows = (level_rows("X", 1, 1, 1, 10, 10, -1, [(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.0)], True)
            + level_rows("X", 2, 2, 2, 8, 9, 7, [(99.0, 5.0)], [], False)  # older: in it
            + level_rows("X", 3, 3, 3, 9, 12, 9, [(99.0, 0.0)], [(100.5, 3.0)], False)
            + level_rows("X", 4, 4, 4, 20, 20, -1, [(90.0, 1.0)], [(91.0, 1.0)], True)
            + level_rows("X", 5, 5, 5, 21, 22, 20, [(90.5, 2.0)], [], False))
    df = pl.DataFrame(rows, schema=BOOK_UPDATES_SCHEMA.polars, orient="row")
    assert rebuild(df, until=12).bids == {98.0: 2.0}
    assert rebuild(df, until=12).asks == {101.0: 1.0, 100.5: 3.0}
    book = rebuild(df.reverse())  # the reading order is the update ids', not the file's
    assert book.bids == {90.0: 1.0, 90.5: 2.0} and book.asks == {91.0: 1.0}
    tops = best_by_update(df)
    assert tops["update_id"].to_list() == [10, 12, 20, 22]
    assert tops["bid"].to_list() == [99.0, 98.0, 90.0, 90.5]
    with pytest.raises(ValueError, match="one symbol"):
        rebuild(pl.concat([df, df.with_columns(pl.lit("Y").alias("symbol"))]))
