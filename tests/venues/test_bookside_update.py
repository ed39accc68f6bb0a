"""``BookSide.update``: a diff event's side in one call stores what ``set`` of each level
stores, in order: new levels, size changes, deletes (of held levels and of others), and the
bound (a new level past the farthest kept one is not kept, the levels after it still are).
The top as columns, and the ``orderbook`` row made of them, are the top's levels and their
row."""

from __future__ import annotations

import random

from trio_harvest.venues.bookside import BookSide
from trio_harvest.venues.rows import book_row, book_row_of_columns


def _reference(ref: dict[float, float], bid: bool, price: float, size: float) -> None:
    """One level into a plain dict, at most 8 levels, the farthest dropped first."""
    if size <= 0:
        ref.pop(price, None)
        return
    if price not in ref and len(ref) == 8:
        far = min(ref) if bid else max(ref)
        if (price < far) if bid else (price > far):
            return  # past the farthest kept level: not kept
        del ref[far]
    ref[price] = size


def test_update_stores_what_each_level_in_turn_would() -> None:
    rnd = random.Random(7)
    for bid in (True, False):
        side, each = BookSide(bid, max_levels=8), BookSide(bid, max_levels=8)
        ref: dict[float, float] = {}
        for _ in range(400):
            levels = [(float(rnd.randint(90, 110)), rnd.choice((0.0, 0.0, 1.5, 2.0, 3.25)))
                      for _ in range(rnd.randint(0, 12))]
            side.update(levels)
            for price, size in levels:
                each.set(price, size)
                _reference(ref, bid, price, size)
            best = sorted(ref.items(), reverse=bid)
            assert side.top(20) == each.top(20) == best
            assert side.sizes == ref and len(side) == len(ref)


def test_a_new_level_past_the_bound_is_dropped_and_the_rest_of_the_side_still_applies() -> None:
    side = BookSide(True, max_levels=2)
    side.update([(100.0, 1.0), (99.0, 1.0)])
    side.update([(98.0, 5.0), (101.0, 2.0), (99.0, 0.0)])  # 98 is past the bound: not kept
    assert side.top(5) == [(101.0, 2.0), (100.0, 1.0)]
    asks = BookSide(False, max_levels=2)
    asks.update([(100.0, 1.0), (101.0, 1.0), (102.0, 4.0), (99.5, 3.0)])
    assert asks.top(5) == [(99.5, 3.0), (100.0, 1.0)]


def test_top_columns_are_the_top_as_columns() -> None:
    for bid in (True, False):
        for held in (0, 3, 25):
            side = BookSide(bid)
            side.update([(100.0 + i * 0.5, 1.0 + i) for i in range(held)])
            for n in (1, 5, 20):
                prices, sizes = side.top_columns(n)
                assert list(zip(prices, sizes, strict=True)) == side.top(n)


def test_an_orderbook_row_of_columns_is_the_row_of_levels() -> None:
    """Full sides, short ones (None past the levels held), empty ones."""
    for nb, na in ((20, 20), (3, 20), (20, 7), (0, 0), (0, 5), (1, 1)):
        bids = [(100.0 - i, 1.0 + i) for i in range(nb)]
        asks = [(101.0 + i, 2.0 + i) for i in range(na)]
        head = ("BTCUSDT", 5, 4, 6, "depth", 9, 8, 7)
        cols = ([p for p, _ in bids], [q for _, q in bids], [p for p, _ in asks],
                [q for _, q in asks])
        assert book_row_of_columns(*head, *cols, 20) == book_row(*head, bids, asks, 20)
