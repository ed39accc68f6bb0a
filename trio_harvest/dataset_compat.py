"""Best bid/ask rows of datasets written before ``quotes`` existed, read as ``quotes``.

Those versions kept the best bid/ask stream (Binance bookTicker) as rows of ``orderbook`` with
``source == "bookTicker"`` and level 1 filled. ``scan`` reads them as ``quotes`` and leaves
them out of ``orderbook`` (top-N snapshots only), in folders of the layout before venues only:
a venue's folders hold each kind where its writer put it. Builds lazy frames; never reads or
writes anything itself.
"""

from __future__ import annotations

import polars as pl

from .kinds import QUOTES_SCHEMA

TICKER_SOURCE = "bookTicker"
_FROM_BOOK = {"bid": "bid_px_1", "bid_qty": "bid_sz_1", "ask": "ask_px_1", "ask_qty": "ask_sz_1"}
BOOK_DEPTH = 1  # the levels a ticker row fills


def snapshots_only(book: pl.LazyFrame) -> pl.LazyFrame:
    """An old folder's ``orderbook`` rows without its bookTicker rows."""
    return book.filter(pl.col("source").ne_missing(TICKER_SOURCE))


def quotes_of(book: pl.LazyFrame) -> pl.LazyFrame:
    """An old folder's bookTicker rows (read with ``orderbook``'s columns) as ``quotes`` rows
    (without ``symbol``, which the path gives)."""
    return book.filter(pl.col("source") == TICKER_SOURCE).select(
        pl.col(_FROM_BOOK[n]).alias(n) if n in _FROM_BOOK else pl.col(n)
        for n in QUOTES_SCHEMA.names if n != "symbol")
