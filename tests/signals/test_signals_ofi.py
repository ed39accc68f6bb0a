"""OFI: every branch by hand, multi-level with missing levels, and the engine against a
straightforward reference on random books."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_harvest.kinds import OFI_SCHEMA, orderbook_schema
from trio_harvest.signals import SignalEngine, SignalParams
from trio_harvest.signals.ofi import level_sums, ofi_level, ofi_multi, ofi_term

LEVELS = 5
SCHEMA = orderbook_schema(LEVELS)


def book(ts: int, levels: list[tuple[Any, Any, Any, Any]], source: str = "depth5") -> tuple[Any, ...]:
    flat: list[Any] = []
    for i in range(LEVELS):
        flat += list(levels[i]) if i < len(levels) else [None, None, None, None]
    row = (ts, ts, ts, "BTCUSDT", source, ts, None, None, *flat)
    assert len(row) == len(SCHEMA.names)
    return row


def ticker(ts: int, bid: float, bid_sz: float, ask: float, ask_sz: float) -> tuple[Any, ...]:
    return book(ts, [(bid, bid_sz, ask, ask_sz)], source="bookTicker")


# previous state: bid 100 x 5, ask 101 x 7
PREV = (100.0, 5.0, 101.0, 7.0)


@pytest.mark.parametrize(
    ("case", "cur", "expected"),
    [
        # bid side (ask unchanged: its two terms cancel, +7 - 7)
        ("bid up", (100.5, 3.0, 101.0, 7.0), 3.0),  # new best bid: + its size
        ("bid same", (100.0, 8.0, 101.0, 7.0), 3.0),  # same price: size change 8 - 5
        ("bid down", (99.5, 4.0, 101.0, 7.0), -5.0),  # best bid removed: - old size
        # ask side (bid unchanged: +5 - 5)
        ("ask up", (100.0, 5.0, 101.5, 2.0), 7.0),  # best ask removed: + old size
        ("ask same", (100.0, 5.0, 101.0, 10.0), -3.0),  # same price: -(10 - 7)
        ("ask down", (100.0, 5.0, 100.5, 6.0), -6.0),  # new best ask: - its size
    ],
)
def test_every_branch_by_hand(case: str, cur: tuple[float, float, float, float],
                              expected: float) -> None:
    assert ofi_term(*PREV, *cur) == expected, case
    # and through the engine, from bookTicker rows
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = SignalEngine("BTCUSDT", SignalParams(), LEVELS, lambda k, r: out.append((k, r)),
                       book_ticker=True)
    eng.on_book(ticker(1_000, *PREV))
    eng.on_book(ticker(1_100, *cur))
    rows = [r for k, r in out if k == "ofi"]
    i = OFI_SCHEMA.index("ofi_l1")
    assert rows[0][i] is None  # no previous state: no OFI
    assert rows[1][i] == expected
    assert rows[1][OFI_SCHEMA.index("ofi_ml")] is None  # bookTicker has one level


def test_both_sides_move_together() -> None:
    # bid up to 100.5 x 2 (+2), ask down to 100.8 x 4 (-4)
    assert ofi_term(*PREV, 100.5, 2.0, 100.8, 4.0) == -2.0


def test_multi_level_by_hand_with_missing_levels() -> None:
    prev = book(0, [(100.0, 5.0, 101.0, 7.0), (99.0, 2.0, 102.0, 3.0), (98.0, 1.0, None, None)])
    cur = book(1, [(100.0, 6.0, 101.0, 7.0), (99.5, 4.0, 102.0, 1.0), (None, None, 103.0, 2.0)])
    assert ofi_level(prev, cur, 1) == 1.0  # bid same +1, ask same 0
    assert ofi_level(prev, cur, 2) == 4.0 + 2.0  # bid up +4, ask same -(1 - 3) = +2
    assert ofi_level(prev, cur, 3) == 0.0  # each side missing in one of the two states
    assert ofi_level(prev, cur, 4) == 0.0
    assert ofi_multi(prev, cur, 3) == 7.0
    assert ofi_multi(prev, cur, 1) == 1.0


def test_depth_without_book_ticker_feeds_both_l1_and_multi_level() -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = SignalEngine("BTCUSDT", SignalParams(ofi_levels=2), LEVELS,
                       lambda k, r: out.append((k, r)), book_ticker=False)
    eng.on_book(book(0, [(100.0, 5.0, 101.0, 7.0), (99.0, 2.0, 102.0, 3.0)]))
    eng.on_book(book(100, [(100.0, 6.0, 101.0, 7.0), (99.5, 4.0, 102.0, 1.0)]))
    row = [r for k, r in out if k == "ofi"][-1]
    assert row[OFI_SCHEMA.index("ofi_l1")] == 1.0
    assert row[OFI_SCHEMA.index("ofi_ml")] == 7.0
    assert row[OFI_SCHEMA.index("source")] == "depth5"


def test_a_gap_means_no_ofi_across_it() -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = SignalEngine("BTCUSDT", SignalParams(), LEVELS, lambda k, r: out.append((k, r)),
                       book_ticker=True)
    eng.on_book(ticker(0, *PREV))
    eng.on_gap(50, "disconnect")
    eng.on_book(ticker(100, 100.5, 3.0, 101.0, 7.0))
    assert [r for k, r in out if k == "ofi"][-1][OFI_SCHEMA.index("ofi_l1")] is None


# -- against an independent reference ---------------------------------------------------------


def ref_bid(p0: float, q0: float, p1: float, q1: float) -> float:
    if p1 > p0:
        return q1
    if p1 == p0:
        return q1 - q0
    return -q0


def ref_ask(p0: float, q0: float, p1: float, q1: float) -> float:
    if p1 < p0:
        return -q1
    if p1 == p0:
        return q0 - q1
    return q0


def ref_ofi(prev: list[Any], cur: list[Any], levels: int) -> float:
    total = 0.0
    for m in range(levels):
        b0, a0, b1, a1 = prev[m][:2], prev[m][2:], cur[m][:2], cur[m][2:]
        if None not in b0 and None not in b1:
            total += ref_bid(b0[0], b0[1], b1[0], b1[1])
        if None not in a0 and None not in a1:
            total += ref_ask(a0[0], a0[1], a1[0], a1[1])
    return total


price = st.sampled_from([99.0, 99.5, 100.0, 100.5, 101.0])
size = st.sampled_from([0.5, 1.0, 2.0, 3.5])
level = st.one_of(
    st.tuples(price, size, price, size),
    st.tuples(price, size, st.none(), st.none()),
    st.tuples(st.none(), st.none(), price, size),
)
books = st.lists(st.lists(level, min_size=LEVELS, max_size=LEVELS), min_size=2, max_size=25)


@settings(max_examples=60, deadline=None)
@given(books=books, ofi_levels=st.integers(1, LEVELS), book_ticker=st.booleans())
def test_engine_matches_reference_on_random_books(
    books: list[list[tuple[Any, ...]]], ofi_levels: int, book_ticker: bool
) -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = SignalEngine("BTCUSDT", SignalParams(ofi_levels=ofi_levels), LEVELS,
                       lambda k, r: out.append((k, r)), book_ticker=book_ticker)
    for i, levels in enumerate(books):
        eng.on_book(book(1_000 + 100 * i, levels))
    rows = [r for k, r in out if k == "ofi"]
    assert len(rows) == len(books)
    i_l1, i_ml = OFI_SCHEMA.index("ofi_l1"), OFI_SCHEMA.index("ofi_ml")
    assert rows[0][i_ml] is None
    for n in range(1, len(books)):
        assert rows[n][i_ml] == pytest.approx(ref_ofi(books[n - 1], books[n], ofi_levels))
    if book_ticker:  # depth rows do not feed the best level
        assert all(r[i_l1] is None for r in rows)
        return
    prev = None  # the best level skips states with a side missing
    for levels, row in zip(books, rows, strict=True):
        if None in levels[0]:
            assert row[i_l1] is None
            continue
        expected = None if prev is None else ref_ofi([prev], [levels[0]], 1)
        assert row[i_l1] == (None if expected is None else pytest.approx(expected))
        prev = levels[0]


@settings(max_examples=60, deadline=None)
@given(states=st.lists(st.tuples(price, size, price, size), min_size=2, max_size=40))
def test_book_ticker_ofi_matches_reference(states: list[tuple[float, float, float, float]],
                                           ) -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = SignalEngine("BTCUSDT", SignalParams(), LEVELS, lambda k, r: out.append((k, r)),
                       book_ticker=True)
    for i, s in enumerate(states):
        eng.on_book(ticker(1_000 + 10 * i, *s))
    got = [r[OFI_SCHEMA.index("ofi_l1")] for k, r in out if k == "ofi"]
    want = [None] + [ref_ofi([a], [b], 1) for a, b in pairwise(states)]
    assert got == want


_level = st.tuples(st.floats(1.0, 1e6), st.floats(0.0, 1e6))


@settings(max_examples=200, deadline=None)
@given(bids=st.lists(_level, max_size=25), asks=st.lists(_level, max_size=25),
       levels=st.integers(1, 25))
def test_level_sums_are_bit_identical_to_summing_in_order(
        bids: list[tuple[float, float]], asks: list[tuple[float, float]], levels: int) -> None:
    got = level_sums(bids, asks, levels)
    want = (sum(q for _, q in bids[:levels]), sum(q for _, q in asks[:levels]))
    assert got == want
    assert [type(v) for v in got] == [type(v) for v in want]
