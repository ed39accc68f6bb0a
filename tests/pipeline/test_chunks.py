"""Columnar builders and batches: the frame a batch becomes is exactly the frame the old row
tuples made (real Binance frames from ../shared/fixtures and the simulator's depth20), a value no
column can hold is refused whole, and a lane never holds more rows than its capacity."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from trio_harvest.kinds import (
    CVD,
    CVD_SCHEMA,
    GAPS_SCHEMA,
    OFI,
    OFI_SCHEMA,
    PRICES,
    PRICES_SCHEMA,
    QUOTES,
    QUOTES_SCHEMA,
    orderbook_schema,
)
from trio_harvest.pipeline.chunks import BadValue, Batch, GenericBuilder, chunk_rows_for
from trio_harvest.pipeline.lanes import Lane
from trio_harvest.pipeline.shapes import DepthBuilder, QuoteBuilder, TradeBuilder, quote_row
from trio_harvest.storage.partitions import DAY_MS, rows_to_frame, split_by_date
from trio_harvest.venues.binance_usdm.decode import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    decode_frame,
    depth_row,
    trade_row,
)

LEVELS = 20


def _fixture_messages(fixtures_dir: Path) -> list[Any]:
    out = []
    for line in (fixtures_dir / "binance_usdm_ws_2021-07-22.txt").read_text().splitlines():
        _, sep, payload = line.partition(": ")
        if not sep or not payload.startswith("{"):
            continue
        try:
            out.append(decode_frame(payload).data)
        except ValueError:
            continue  # kline and other streams this harvester does not decode
    return out


def _sim_depth20() -> list[DepthUpdate]:
    from trio_harvest.sim.market import Market
    from trio_harvest.sim.wire import SymbolWire, combined

    market = Market(("BTCUSDT",), rate=2000, seed=3)
    wire = SymbolWire(market.symbols["BTCUSDT"].spec)
    out: list[DepthUpdate] = []
    now = 1_700_000_000_000
    market.step(now)
    while len(out) < 50:
        now += 10
        for ev in market.step(now):
            for name, levels, _ in wire.targets(ev):
                if name.endswith("@depth20@100ms"):
                    msg = decode_frame(combined(name, wire.encode(ev, levels))).data
                    assert isinstance(msg, DepthUpdate)
                    out.append(msg)
    return out


def test_trade_and_book_builders_make_the_frames_the_row_tuples_made(fixtures_dir: Path) -> None:
    msgs = _fixture_messages(fixtures_dir)
    trades = [m for m in msgs if isinstance(m, AggTrade) and m.symbol == "SUSHIUSDT"]
    tickers = [m for m in msgs if isinstance(m, BookTicker) and m.symbol == "SUSHIUSDT"]
    depths = [m for m in msgs if isinstance(m, DepthUpdate) and m.symbol == "SUSHIUSDT"]
    depths += [d for d in _sim_depth20()]  # full 20-level books as well as short diff ones
    assert trades and tickers and depths

    tb = TradeBuilder()
    for i, t in enumerate(trades):
        tb.add(t, 1000 + i)
    expected = rows_to_frame(PRICES_SCHEMA, [trade_row(t, 1000 + i) for i, t in enumerate(trades)])
    got = Batch([tb], PRICES_SCHEMA, "SUSHIUSDT").to_frame()
    assert_frame_equal(got, expected)

    kb = QuoteBuilder()
    for i, b in enumerate(tickers):
        kb.add(b, 5 + i)
    expected = rows_to_frame(QUOTES_SCHEMA, [quote_row(b, 5 + i) for i, b in enumerate(tickers)])
    got = Batch([kb], QUOTES_SCHEMA, "SUSHIUSDT").to_frame()
    assert_frame_equal(got, expected)
    assert got.columns == QUOTES_SCHEMA.names and got["bid"].null_count() == 0

    schema = orderbook_schema(LEVELS)
    db = DepthBuilder(LEVELS)
    rows = []
    for i, d in enumerate(depths):
        db.add(d, 7 + i, "depth20")
        rows.append(depth_row(d, 7 + i, LEVELS, "depth20"))
    expected = rows_to_frame(schema, rows).sort("ts_ms", maintain_order=True)
    # symbol: depth rows of the simulator are BTCUSDT; the lane's symbol is what the file says
    expected = expected.with_columns(pl.lit("SUSHIUSDT").alias("symbol"))
    got = Batch([db], schema, "SUSHIUSDT").to_frame()
    assert_frame_equal(got, expected)


def test_many_interleaved_chunks_make_the_frame_the_row_tuples_made(fixtures_dir: Path) -> None:
    """A lane's batch holds many chunks of several shapes in arrival order (quotes, each in
    their own kind; short diff books padded with NaN, full depth20 books, rows given as tuples):
    joined per shape, the frame is still the row tuples' frame, time-ordered with ties in
    arrival order."""
    msgs = _fixture_messages(fixtures_dir)
    tickers = [m for m in msgs if isinstance(m, BookTicker) and m.symbol == "SUSHIUSDT"]
    depths = [m for m in msgs if isinstance(m, DepthUpdate) and m.symbol == "SUSHIUSDT"]
    depths += _sim_depth20()
    schema = orderbook_schema(LEVELS)
    chunks: list[Any] = []
    quote_chunks: list[Any] = []
    rows = []
    quotes = []
    ti = di = 0
    while ti < len(tickers) or di < len(depths):
        kb, db = QuoteBuilder(), DepthBuilder(LEVELS)
        for b in tickers[ti:ti + 3]:
            if ti % 4 == 0:  # a row given as a tuple, as the repair gate releases it
                kb.add_row(quote_row(b, 5 + ti))
            else:
                kb.add(b, 5 + ti)
            quotes.append(quote_row(b, 5 + ti))
            ti += 1
        for d in depths[di:di + 4]:
            if di % 5 == 0:  # a row given as a tuple, as a local book makes it
                row = depth_row(d, 7 + di, LEVELS, "diff")
                db.add_row(row)
            else:
                db.add(d, 7 + di, "depth20")
                row = depth_row(d, 7 + di, LEVELS, "depth20")
            rows.append(row)
            di += 1
        chunks.append(db)
        quote_chunks.append(kb)
    ts = [r[0] for r in quotes]
    assert len(set(ts)) < len(ts)  # ties exist: their arrival order must hold
    expected = rows_to_frame(schema, rows).sort("ts_ms", maintain_order=True)
    expected = expected.with_columns(pl.lit("SUSHIUSDT").alias("symbol"))
    got = Batch(chunks, schema, "SUSHIUSDT").to_frame()
    assert_frame_equal(got, expected)
    file = Batch(chunks, schema, "SUSHIUSDT").to_frame(for_file=True)
    assert_frame_equal(file, expected.drop("symbol"))
    want = rows_to_frame(QUOTES_SCHEMA, quotes).sort("ts_ms", maintain_order=True)
    got_quotes = Batch(quote_chunks, QUOTES_SCHEMA, "SUSHIUSDT").to_frame()
    assert_frame_equal(got_quotes, want.with_columns(pl.lit("SUSHIUSDT").alias("symbol")))


def test_a_value_no_column_can_hold_is_refused_whole_and_the_chunk_stays_aligned() -> None:
    tb = TradeBuilder()
    good = AggTrade(agg_id=1, price=1.0, qty=2.0, first_id=1, last_id=1, trade_ms=10,
                    buyer_maker=True, event_ms=11, symbol="X")
    huge = AggTrade(agg_id=2, price=1.0, qty=2.0, first_id=2**70, last_id=2, trade_ms=10,
                    buyer_maker=True, event_ms=11, symbol="X")
    tb.add(good, 1)
    with pytest.raises(BadValue):
        tb.add(huge, 2)
    tb.add(good, 3)
    assert tb.n == 2 and all(len(c) == 2 for c in tb._cols())
    gb = GenericBuilder(GAPS_SCHEMA)
    gb.append((1, "X", "x@aggTrade", 1, 2, "disconnect", ""))
    with pytest.raises(BadValue):
        gb.append((2, "X", "x@aggTrade", 2**64, 3, "disconnect", ""))
    assert gb.n == 1 and all(len(c) == 1 for c in gb.cols)


def test_trade_ids_as_text_where_a_venue_has_them_and_rows_from_before_the_column() -> None:
    """A record's ``text_id`` goes to ``trade_id`` (None: Binance); a tuple row with it, one
    without it (a journal written before the column) and a refused text all keep the chunk
    aligned; a lane takes both widths on the trade shape."""
    lane = Lane(PRICES, "X", high=50, capacity=100, wake=lambda lane: None,
                schema=PRICES_SCHEMA)
    lane.add_trade(AggTrade(agg_id=1, price=1.0, qty=2.0, first_id=1, last_id=1, trade_ms=10,
                            buyer_maker=True, event_ms=11, symbol="X"), 12)
    row = (20, 21, 22, "X", 2, 1.0, 2.0, 2, 2, False, "9b1c-uuid")
    assert lane.put_nowait(row) and lane.put_nowait((30, 31, 32, "X", 3, 1.0, 2.0, 3, 3, False))
    assert lane._trade is not None and lane._generic is None
    with pytest.raises(BadValue):
        lane._trade.add_row((*row[:10], 5))  # not a string: refused whole
    assert all(len(c) == 3 for c in lane._trade._cols())
    df = lane.drain().to_frame()
    assert df["trade_id"].to_list() == [None, "9b1c-uuid", None]
    assert df.schema["trade_id"] == pl.String and df.columns == PRICES_SCHEMA.names


def test_generic_rows_keep_nulls_in_float_and_int_columns() -> None:
    gb = GenericBuilder(OFI_SCHEMA)
    gb.append((1, "X", "bookTicker", None, None, 1.0, 2.0, 3.0, 4.0))
    gb.append((2, "X", "depth20", 0.5, math.inf, None, 2.0, 3.0, 4.0))
    df = Batch([gb], OFI_SCHEMA, "X").to_frame()
    assert df["ofi_l1"].to_list() == [None, 0.5]
    assert df["ofi_ml"].to_list() == [None, math.inf]
    assert df["bid"].to_list() == [1.0, None]
    cb = GenericBuilder(CVD_SCHEMA)
    cb.append((1, "X", None, -1.0, -1.0, False))  # None in an int column: the column widens
    cb.append((2, "X", 7, 1.0, 0.0, True))
    df = Batch([cb], CVD_SCHEMA, "X").to_frame()
    assert df["agg_id"].to_list() == [None, 7] and df.schema["agg_id"] == pl.Int64


def test_a_column_widened_mid_chunk_keeps_every_later_value_and_refusals_stay_whole() -> None:
    cb = GenericBuilder(CVD_SCHEMA)
    cb.append((1, "X", 7, 1.0, 1.0, False))
    cb.append((2, "X", None, None, 1.0, True))  # agg_id widens after a typed value
    cb.append((3, "X", 8, 2.0, 3.0, False))  # goes into the widened column
    assert cb.n == 3 and all(len(c) == 3 for c in cb.cols)
    df = Batch([cb], CVD_SCHEMA, "X").to_frame()
    assert df["agg_id"].to_list() == [7, None, 8]
    assert df["delta"].to_list() == [1.0, None, 2.0]
    gb = GenericBuilder(GAPS_SCHEMA)
    gb.append((1, "X", "x@aggTrade", 1, 2, "disconnect", ""))
    gb.append((2, "X", "x@aggTrade", None, 3, "stall", ""))  # start widens
    with pytest.raises(BadValue):  # refused after four columns took a value
        gb.append((3, "X", "x@aggTrade", 5, 2**64, "disconnect", ""))
    gb.append((4, "X", "x@aggTrade", 6, 7, "disconnect", "d"))
    assert gb.n == 3 and all(len(c) == 3 for c in gb.cols)
    assert gb.cols[3] == [1, None, 6] and list(gb.cols[4]) == [2, 3, 7]


def test_chunk_rows_divide_the_capacity_so_whole_chunks_fill_the_lane_exactly() -> None:
    for capacity in (1, 2, 3, 7, 10, 16, 100, 10_000, 16_000, 24_000, 40_000):
        rows = chunk_rows_for(capacity)
        assert capacity % rows == 0 and 1 <= rows <= max(1, capacity // 4)


def test_a_typed_lane_admits_exactly_capacity_rows_and_drains_them_in_order() -> None:
    lane = Lane(PRICES, "X", high=50, capacity=100, wake=lambda lane: None,
                schema=PRICES_SCHEMA)
    t = AggTrade(agg_id=0, price=1.0, qty=1.0, first_id=0, last_id=0, trade_ms=5,
                 buyer_maker=False, event_ms=5, symbol="X")
    accepted = 0
    for i in range(150):
        if lane.add_trade(AggTrade(**{**{f: getattr(t, f) for f in t.__struct_fields__},
                                      "agg_id": i}), i):
            accepted += 1
    assert accepted == 100 and lane.level == 100 and lane.buffered == 100
    batch = lane.drain()
    assert batch.n == 100 and lane.level == 0
    assert batch.to_frame()["agg_id"].to_list() == list(range(100))
    assert len(batch.chunks) == 100 // lane.chunk_rows


def test_preview_fast_paths_spill_when_the_lane_is_full() -> None:
    lane = Lane(OFI, "X", high=2, capacity=4, wake=lambda lane: None, schema=OFI_SCHEMA)
    for i in range(6):
        lane.offer_ofi(i, "bookTicker", None, None, 1.0, 2.0, 3.0, 4.0)
    assert lane.level == 4 and lane.pending_spill == 2
    assert [r[0] for r in lane.take_spill()] == [4, 5]
    cvd = Lane(CVD, "X", high=2, capacity=2, wake=lambda lane: None, schema=CVD_SCHEMA)
    for i in range(3):
        cvd.offer_cvd(i, i, 1.0, float(i), False)
    assert [r[2] for r in cvd.drain()] == [0, 1] and [r[2] for r in cvd.take_spill()] == [2]


def test_a_batch_across_midnight_splits_into_one_partition_per_date() -> None:
    midnight = 19_700 * DAY_MS
    lane = Lane(QUOTES, "X", high=10, capacity=20, wake=lambda lane: None,
                schema=QUOTES_SCHEMA)
    for i, ts in enumerate((midnight - 2, midnight - 1, midnight, midnight + 1)):
        lane.add_quote(BookTicker(update_id=i, symbol="X", bid=1.0, bid_qty=1.0, ask=2.0,
                                  ask_qty=1.0, event_ms=ts, trade_ms=ts), ts)
    parts = split_by_date(QUOTES, "X", lane.drain())
    assert [p.n for p in parts] == [2, 2] and parts[0].date < parts[1].date
    assert parts[1].first_ts == midnight and parts[0].last_ts == midnight - 1
    assert [r[4] for r in parts[1].rows] == [2, 3]


def test_book_rows_as_tuples_full_short_and_bad_make_the_frame_the_tuples_make() -> None:
    """``DepthBuilder.add_row``: a full row is copied whole, a row with missing levels (None)
    is padded, a row with a value no float column holds is refused whole (nothing appended)."""
    levels = 3
    schema = orderbook_schema(levels)
    full = (10, 11, 12, "X", "depth", 5, 4, 3, 1.0, 2.0, 3.0, 4.0, 0.9, 2.1, 3.1, 4.1,
            0.8, 2.2, 3.2, 4.2)
    short = (20, 21, 22, "X", "depth", 6, 5, 4, 1.0, 2.0, 3.0, 4.0, 0.9, 2.1, None, None,
             None, None, None, None)
    bad = (30, 31, 32, "X", "depth", 7, 6, 5, 1.0, 2.0, "x", 4.0, 0.9, 2.1, 3.1, 4.1,
           0.8, 2.2, 3.2, 4.2)
    db = DepthBuilder(levels)
    db.add_row(full)
    with pytest.raises(BadValue):
        db.add_row(bad)
    db.add_row(short)
    assert db.n == 2 and len(db.lv) == 2 * 4 * levels and db.nan_columns()
    got = Batch([db], schema, "X").to_frame()
    assert_frame_equal(got, rows_to_frame(schema, [full, short]))
