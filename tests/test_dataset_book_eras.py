"""``dataset_book``'s reading rule on venues whose update ids restart: an OKX ``seqId`` reset
(a change below its ``prevSeqId``, no snapshot) and a Bybit ``u == 1`` restart (a snapshot),
plus a REST resync whose buffered diffs carry times before the snapshot's row. Rows in any
order rebuild the book the venue's write order gives."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_harvest.dataset_book import best_by_update, rebuild
from trio_harvest.kinds import BOOK_UPDATES_SCHEMA
from trio_harvest.venues.rows import level_rows

Row = tuple[Any, ...]


def _ev(ts: int, uid: int, prev: int, bids: list[tuple[float, float]],
        asks: list[tuple[float, float]], snap: bool = False, recv: int | None = None) -> list[Row]:
    first = uid if snap else prev + 1
    return level_rows("X", ts, ts, ts + 5 if recv is None else recv, first, uid,
                      -1 if snap else prev, bids, asks, snap)


def okx_rows() -> list[Row]:
    """Snapshot 1000, a chain, a reset to 500 (chained on 1005), a chain on, a break and a REST
    snapshot of 520 whose buffered diffs (ids above it) were received before its row's time."""
    rows = _ev(1, 1000, -1, [(99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)], True)
    rows += _ev(2, 1003, 1000, [(99.5, 2.0)], [])
    rows += _ev(3, 1005, 1003, [(99.0, 0.0)], [(100.5, 1.0)])
    rows += _ev(4, 500, 1005, [(99.7, 3.0)], [])  # the reset: seqId < prevSeqId
    rows += _ev(5, 502, 500, [], [(100.5, 0.0)])
    rows += _ev(6, 1004, 502, [(99.8, 1.0)], [])  # ids of the old epoch again, later
    rows += _ev(7, 1006, 1004, [], [(100.9, 4.0)])
    # a break; the REST snapshot of 1010 is written with the time of the event after the
    # buffered ones (diffs 1008..1012: the one at or below 1010 is dropped, 1012 replays)
    rows += _ev(10, 1010, -1, [(97.0, 1.0)], [(103.0, 1.0)], True)
    rows += _ev(9, 1012, 1010, [(97.5, 1.0)], [])  # buffered: received before the snapshot
    rows += _ev(10, 1013, 1012, [], [(102.5, 2.0)])
    return rows


def bybit_rows() -> list[Row]:
    """Snapshot u=1, deltas, a service restart (snapshot u=1 again), deltas with the same ids."""
    rows = _ev(1, 1, -1, [(10.0, 1.0)], [(11.0, 1.0)], True)
    rows += _ev(2, 2, 1, [(10.5, 1.0)], [])
    rows += _ev(3, 3, 2, [], [(10.8, 2.0)])
    rows += _ev(4, 4, 3, [(10.5, 0.0)], [])
    rows += _ev(5, 1, -1, [(20.0, 1.0)], [(21.0, 1.0)], True)  # the restart
    rows += _ev(6, 2, 1, [(20.5, 1.0)], [])
    rows += _ev(7, 3, 2, [(19.0, 1.0)], [(20.8, 3.0)])
    return rows


def twin_snapshot_rows() -> list[Row]:
    """Growing ids, a resync that writes two snapshots at the same ts and receive time (a REST
    book and the socket's own, both taken in while routing one frame), the later one's id
    higher; the chain goes on from that one, then a seqId reset."""
    rows = _ev(1, 1000, -1, [(99.0, 1.0)], [(101.0, 1.0)], True)
    rows += _ev(2, 1003, 1000, [(99.5, 2.0)], [])
    rows += _ev(5, 1010, -1, [(98.0, 1.0)], [(102.0, 1.0)], True, recv=9)
    rows += _ev(5, 1020, -1, [(97.0, 1.0)], [(103.0, 1.0)], True, recv=9)
    rows += _ev(6, 1022, 1020, [(97.5, 1.0)], [])
    rows += _ev(7, 1025, 1022, [], [(102.5, 2.0)])
    rows += _ev(8, 511, 1025, [(97.6, 1.0)], [])  # the reset: seqId < prevSeqId
    rows += _ev(9, 513, 511, [(97.5, 0.0)], [])
    return rows


def binance_rows() -> list[Row]:
    """Growing ids: a REST snapshot whose buffered diffs carry earlier times (one era)."""
    rows = _ev(1, 100, -1, [(5.0, 1.0)], [(6.0, 1.0)], True)
    rows += _ev(2, 104, 100, [(5.5, 1.0)], [])
    rows += _ev(9, 120, -1, [(4.0, 1.0)], [(7.0, 1.0)], True)  # after a break
    rows += _ev(8, 122, 120, [(4.5, 1.0)], [])  # buffered: earlier than the snapshot's row
    rows += _ev(9, 125, 122, [], [(6.5, 2.0)])
    return rows


def in_write_order(rows: list[Row]) -> tuple[list[Row], dict[float, float], dict[float, float]]:
    """Apply rows as written: each event's (update id, best bid, best ask) and the last book."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    tops: list[Row] = []
    key = None
    for ts, _e, _r, _s, _first, uid, _prev, side, price, qty, snap in rows:
        if (ts, uid, snap) != key:
            if key is not None:
                tops.append((key[1], max(bids), min(asks)))
            key = (ts, uid, snap)
            if snap:
                bids, asks = {}, {}
        sizes = bids if side == "bid" else asks
        if qty > 0:
            sizes[price] = qty
        else:
            sizes.pop(price, None)
    tops.append((key[1], max(bids), min(asks)))  # type: ignore[index]
    return tops, bids, asks


def frame(rows: list[Row]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=BOOK_UPDATES_SCHEMA.polars, orient="row")


CASES = {"okx": okx_rows(), "bybit": bybit_rows(), "binance": binance_rows(),
         "twin-snapshots": twin_snapshot_rows()}


def test_each_venue_in_write_order_rebuilds_the_written_book() -> None:
    for name, rows in CASES.items():
        tops, bids, asks = in_write_order(rows)
        book = rebuild(frame(rows))
        assert (book.bids, book.asks) == (bids, asks), name
        got = best_by_update(frame(rows)).select("update_id", "bid", "ask").rows()
        assert got == tops, name


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(CASES)), st.randoms(use_true_random=False))
def test_any_row_order_rebuilds_the_same_book(name: str, rnd: Any) -> None:
    rows = list(CASES[name])
    tops, bids, asks = in_write_order(rows)
    rnd.shuffle(rows)
    book = rebuild(frame(rows))
    assert (book.bids, book.asks) == (bids, asks)
    assert best_by_update(frame(rows)).select("update_id", "bid", "ask").rows() == tops


def test_a_restart_carries_the_book_on_and_a_snapshot_restart_replaces_it() -> None:
    okx = rebuild(frame(okx_rows()).reverse())
    assert okx.bids == {97.0: 1.0, 97.5: 1.0} and okx.asks == {103.0: 1.0, 102.5: 2.0}
    assert okx.update_id == 1013 and okx.snapshot_id == 1010
    # before the REST snapshot: the reset epoch's book, built on the first epoch's
    tops = best_by_update(frame(okx_rows()).sample(fraction=1.0, shuffle=True, seed=3))
    at_1006 = tops.filter(pl.col("ts_ms") == 7).row(0, named=True)
    assert (at_1006["bid"], at_1006["ask"]) == (99.8, 100.9)
    bybit = rebuild(frame(bybit_rows()).reverse())
    assert bybit.bids == {20.0: 1.0, 20.5: 1.0, 19.0: 1.0} and bybit.asks == {21.0: 1.0, 20.8: 3.0}
    assert bybit.update_id == 3 and bybit.snapshot_id == 1


def test_rows_at_the_very_time_of_a_reset_join_the_side_whose_ids_they_continue() -> None:
    rows = _ev(1, 1000, -1, [(99.0, 1.0)], [(101.0, 1.0)], True)
    rows += _ev(2, 1002, 1000, [(99.2, 1.0)], [])
    rows += _ev(4, 1004, 1002, [(99.4, 1.0)], [], recv=9)  # the same ts and recv as the reset
    rows += _ev(4, 500, 1004, [(99.5, 1.0)], [], recv=9)
    rows += _ev(4, 502, 500, [(99.4, 0.0)], [(100.8, 1.0)], recv=9)
    rows += _ev(5, 503, 502, [], [(100.9, 2.0)])
    tops, bids, asks = in_write_order(rows)
    for seed in range(5):
        df = frame(rows).sample(fraction=1.0, shuffle=True, seed=seed)
        book = rebuild(df)
        assert (book.bids, book.asks) == (bids, asks)
        assert best_by_update(df).select("update_id", "bid", "ask").rows() == tops


def test_two_snapshots_at_the_same_instant_read_alike_in_either_order() -> None:
    rows = twin_snapshot_rows()
    _tops, bids, asks = in_write_order(rows)
    for df in (frame(rows), frame(rows).reverse()):
        book = rebuild(df)
        assert (book.bids, book.asks) == (bids, asks)
        assert book.snapshot_id == 511  # the reset era, carried on from snapshot 1020's chain
