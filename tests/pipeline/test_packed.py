"""Packed shapes (one record per row): the frame their chunks make is the frame the generic
per-column builder makes from the same row tuples (dtypes, NaN as null, flags, text), joined
over several chunks; a value no field holds is refused whole; the time range reads the packed
times. Full books of any depth pack their levels as the book rows hold them."""

from __future__ import annotations

import math
from typing import Any

import pytest
from polars.testing import assert_frame_equal

from trio_harvest.kinds import (
    CVD_SCHEMA,
    OFI_SCHEMA,
    PRICES_SCHEMA,
    QUOTES_SCHEMA,
    Schema,
    orderbook_schema,
)
from trio_harvest.pipeline.chunks import BadValue, Batch, Builder, GenericBuilder
from trio_harvest.pipeline.shapes import (
    CvdBuilder,
    DepthBuilder,
    OfiBuilder,
    QuoteBuilder,
    TradeBuilder,
)
from trio_harvest.storage.partitions import rows_to_frame
from trio_harvest.venues.binance_usdm.decode import DepthUpdate, depth_row


def _generic(schema: Schema, rows: list[tuple[Any, ...]]) -> Any:
    gb = GenericBuilder(schema)
    for row in rows:
        gb.append(row)
    return Batch([gb], schema, "X").to_frame()


def _chunks(make: Any, rows: list[tuple[Any, ...]], add: Any, size: int) -> list[Builder]:
    out: list[Builder] = []
    for i in range(0, len(rows), size):
        b = make()
        for row in rows[i:i + size]:
            add(b, row)
        out.append(b)
    return out


def test_packed_chunks_make_the_generic_builders_frame() -> None:
    ofi = [(10 + i, "X", "bookTicker" if i % 3 else "depth20",
            None if i == 0 else 0.25 * i - 1.0, None if i % 3 else -1.5 * i,
            None if i == 4 else 100.0 + i, 101.0 + i, 2.0 * i, None if i == 4 else 0.5)
           for i in range(11)]
    for chunks in (1, 4):
        got = Batch(_chunks(OfiBuilder, ofi, lambda b, r: b.add(r[0], *r[2:]), chunks),
                    OFI_SCHEMA, "X").to_frame()
        assert_frame_equal(got, _generic(OFI_SCHEMA, ofi))
    assert got["bid"].null_count() == 1 and got["ofi_l1"].null_count() == 1

    cvd = [(5 + i, "X", 100 + i, (-1.0) ** i * i, 0.5 * i, i > 6) for i in range(9)]
    got = Batch(_chunks(CvdBuilder, cvd, lambda b, r: b.add(r[0], *r[2:]), 4),
                CVD_SCHEMA, "X").to_frame()
    assert_frame_equal(got, _generic(CVD_SCHEMA, cvd))

    quotes = [(7 + i, 8 + i, 9 + i, "X", 2**62 + i, 1.5 + i, math.inf if i == 2 else 2.0,
               3.0, 0.0) for i in range(9)]
    got = Batch(_chunks(QuoteBuilder, quotes, QuoteBuilder.add_row, 2),
                QUOTES_SCHEMA, "X").to_frame()
    assert_frame_equal(got, _generic(QUOTES_SCHEMA, quotes))

    trades = [(1 + i, 2 + i, 3 + i, "X", 40 + i, 1.25, 0.5 * i, 40 + i, 40 + i, i % 2 == 0,
               None if i % 2 else f"id-{i}") for i in range(7)]
    got = Batch(_chunks(TradeBuilder, trades, TradeBuilder.add_row, 3),
                PRICES_SCHEMA, "X").to_frame()
    assert_frame_equal(got, _generic(PRICES_SCHEMA, trades))


def test_a_value_no_field_holds_is_refused_whole() -> None:
    qb = QuoteBuilder()
    qb.add_row((1, 2, 3, "X", 4, 1.0, 2.0, 3.0, 4.0))
    for bad in ((1, 2, 3, "X", 2**63, 1.0, 2.0, 3.0, 4.0), (1, 2, 3, "X", 4, "x", 2.0, 3.0, 4.0),
                (None, 2, 3, "X", 4, 1.0, 2.0, 3.0, 4.0)):
        with pytest.raises(BadValue):
            qb.add_row(bad)
    qb.add_row((5, 6, 7, "X", 8, 1.0, 2.0, 3.0, 4.0))
    assert qb.n == 2 and all(len(c) == 2 for c in qb._cols())
    ob = OfiBuilder()
    with pytest.raises(BadValue):
        ob.add(2**64, "bookTicker", None, None, None, 1.0, 1.0, 1.0)
    assert ob.n == 0 and not ob.nulls and not ob.source
    cb = CvdBuilder()
    with pytest.raises(BadValue):
        cb.add(1, -(2**63) - 1, 1.0, 1.0, False)
    assert cb.n == 0 and cb.nbytes() == 0


def test_the_time_range_of_packed_chunks() -> None:
    chunks = _chunks(CvdBuilder, [(t, "X", 1, 1.0, 1.0, False) for t in (50, 20, 90, 30)],
                     lambda b, r: b.add(r[0], *r[2:]), 3)
    assert Batch(chunks, CVD_SCHEMA, "X").ts_range() == (20, 90)
    assert Batch(chunks[1:], CVD_SCHEMA, "X").ts_range() == (30, 30)


def test_full_books_of_any_depth_pack_into_the_levels_the_rows_hold() -> None:
    for levels in (1, 5, 10):
        books = [DepthUpdate(event_ms=100 + i, symbol="X", first_update_id=i, update_id=i,
                             bids=[(50.0 - j - i / 7, 1.0 + j + i) for j in range(levels)],
                             asks=[(51.0 + j + i / 3, 2.0 + j * i) for j in range(levels)],
                             trade_ms=99 + i, prev_update_id=i - 1) for i in range(6)]
        db = DepthBuilder(levels)
        for i, d in enumerate(books):
            db.add(d, 200 + i, f"depth{levels}")
        assert not db.nan_columns()
        schema = orderbook_schema(levels)
        want = rows_to_frame(schema, [depth_row(d, 200 + i, levels, f"depth{levels}")
                                      for i, d in enumerate(books)])
        assert_frame_equal(Batch([db], schema, "X").to_frame(), want)


def test_a_full_book_with_a_level_that_is_not_a_pair_is_refused_whole() -> None:
    db = DepthBuilder(2)
    good = DepthUpdate(event_ms=5, symbol="X", first_update_id=1, update_id=1,
                       bids=[(2.0, 1.0), (1.0, 1.0)], asks=[(3.0, 1.0), (4.0, 1.0)])
    bad = DepthUpdate(event_ms=6, symbol="X", first_update_id=2, update_id=2,
                      bids=[(2.0, 1.0, 7.0), (1.0, 1.0)],  # type: ignore[list-item]
                      asks=[(3.0, 1.0), (4.0, 1.0)])
    db.add(good, 1, "depth2")
    with pytest.raises(BadValue):
        db.add(bad, 2, "depth2")
    db.add(good, 3, "depth2")
    assert db.n == 2 and len(db.lv) == 2 * 8 and all(len(c) == 2 for c in db._cols()[:-1])
