"""Agg-id continuity and deduplication (pure), book-id deduplication, and gap row details."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_harvest.gaps import (
    AGG_ID_BREAK,
    STALL,
    agg_detail,
    disconnect_reason,
    gap_row,
    parse_agg_detail,
)
from trio_harvest.repair.continuity import (
    ACCEPT,
    BREAK,
    DUPLICATE,
    MAX_OPEN_RANGES,
    AggIdTracker,
    BookTracker,
)


def test_in_order_duplicates_and_a_break() -> None:
    t = AggIdTracker()
    assert [t.admit(i, i) for i in (10, 11, 11, 12)] == [ACCEPT, ACCEPT, DUPLICATE, ACCEPT]
    assert t.admit(16, 160) == BREAK
    assert t.last_break is not None
    assert (t.last_break.first_id, t.last_break.last_id) == (13, 15)
    assert (t.last_break.start_ms, t.last_break.end_ms) == (12, 160)
    assert t.missing_in(0, 100) == [(13, 15)]
    # a late frame closes part of the break; a second copy of it is a duplicate
    assert t.admit(14, 140) == ACCEPT
    assert t.admit(14, 140) == DUPLICATE
    assert t.missing_in(0, 100) == [(13, 13), (15, 15)]
    # backfill: only what is missing is taken, once
    assert t.fill(13) and not t.fill(13) and not t.fill(12) and not t.fill(17)
    assert t.close(13, 15) == [(15, 15)]
    assert t.missing_ids == 0
    assert t.admit(15, 150) == DUPLICATE  # given up: never a second source of truth
    assert t.duplicates == 3


def test_close_keeps_ranges_outside() -> None:
    t = AggIdTracker()
    t.admit(1, 0)
    t.admit(10, 0)  # missing 2..9
    assert t.close(4, 6) == [(4, 6)]
    assert t.missing_in(0, 100) == [(2, 3), (7, 9)]


def test_open_ranges_are_bounded() -> None:
    t = AggIdTracker()
    t.admit(0, 0)
    for k in range(MAX_OPEN_RANGES + 5):
        t.admit(2 * k + 2, 0)  # every other id missing
    assert len(t.missing) == MAX_OPEN_RANGES
    assert len(t.abandoned) == 5 and t.abandoned[0] == (1, 1)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=300),
    drops=st.sets(st.integers(min_value=0, max_value=299)),
    dups=st.lists(st.integers(min_value=0, max_value=299), max_size=50),
    swaps=st.lists(st.integers(min_value=0, max_value=298), max_size=30),
)
def test_stream_plus_backfill_gives_every_id_exactly_once(
    n: int, drops: set[int], dups: list[int], swaps: list[int]
) -> None:
    """Whatever the stream does (drop, duplicate, reorder neighbours), admitting it and then
    backfilling every id of the exchange yields each id exactly once."""
    stream = [i for i in range(n) if i not in drops or i == 0]
    for d in dups:
        if d < len(stream):
            stream.insert(d, stream[d])
    for s in swaps:
        if s + 1 < len(stream):
            stream[s], stream[s + 1] = stream[s + 1], stream[s]
    t = AggIdTracker()
    kept: list[int] = []
    first = stream[0]
    for i in stream:
        if i < first:
            continue  # before the first harvested id: not our business
        if t.admit(i, i) != DUPLICATE:
            kept.append(i)
    last = t.last_id
    assert last is not None
    for i in range(first, last + 1):  # backfill everything between first and last
        if t.fill(i):
            kept.append(i)
    assert sorted(kept) == list(range(first, last + 1))
    assert t.missing_ids == 0


def test_book_tracker_drops_what_is_not_newer() -> None:
    b = BookTracker()
    assert [b.admit(u) for u in (5, 6, 6, 4, 9)] == [True, True, False, False, True]
    assert b.duplicates == 2


def test_gap_rows_and_details() -> None:
    d = agg_detail(101, 105, "filled")
    assert d == "agg_id 101..105 (5 ids): filled"
    assert parse_agg_detail(d) == (101, 105, True)
    u = agg_detail(7, 7, "unfilled", "not on the exchange's tape")
    assert u == "agg_id 7..7 (1 id): unfilled (not on the exchange's tape)"
    assert parse_agg_detail(u) == (7, 7, False)
    assert parse_agg_detail("ConnectionClosed: 1006") is None
    row = gap_row("BTCUSDT", "btcusdt@aggTrade", 1000, 900, AGG_ID_BREAK, d)
    assert row == (1000, "BTCUSDT", "btcusdt@aggTrade", 1000, 1000, AGG_ID_BREAK, d)
    assert disconnect_reason("stalled: no frame for 30s") == STALL
    assert disconnect_reason("OSError: reset") == "disconnect"
