"""Best bid/ask rows of datasets written before ``quotes`` existed, read as ``quotes``.

Those versions (Binance USD-M only) kept the best bid/ask stream as rows of ``orderbook`` whose
``source`` is the venue's quote source and whose level 1 alone is filled. ``scan`` reads them as
``quotes`` and leaves them out of ``orderbook`` (top-N snapshots only), in folders of the layout
before venues only: a venue's folders hold each kind where its writer put it. Builds lazy
frames; never reads or writes anything itself.
"""

from __future__ import annotations

import polars as pl

from .kinds import QUOTES_SCHEMA
from .venues import QUOTE_SOURCE

TICKER_SOURCE = QUOTE_SOURCE  # the only venue those versions harvested
_FROM_BOOK = {"bid": "bid_px_1", "bid_qty": "bid_sz_1", "ask": "ask_px_1", "ask_qty": "ask_sz_1"}
BOOK_DEPTH = 1  # the levels a ticker row fills


def snapshots_only(book: pl.LazyFrame) -> pl.LazyFrame:
    """An old folder's ``orderbook`` rows without its best bid/ask rows."""
    return book.filter(pl.col("source").ne_missing(TICKER_SOURCE))


def quotes_of(book: pl.LazyFrame) -> pl.LazyFrame:
    """An old folder's best bid/ask rows (read with ``orderbook``'s columns) as ``quotes`` rows
    (without ``symbol``, which the path gives)."""
    return book.filter(pl.col("source") == TICKER_SOURCE).select(
        pl.col(_FROM_BOOK[n]).alias(n) if n in _FROM_BOOK else pl.col(n)
        for n in QUOTES_SCHEMA.names if n != "symbol")
