"""A lane's batch becomes the very file its row tuples make: the frame a file is encoded from is
built with its final types (UTC timestamps) on the way, and the bytes, the footer's metadata and
the rows read back are those of the tuples' own path (real Binance frames from
../shared/fixtures, the simulator's depth20, generic rows with nulls)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from trio_harvest.kinds import (
    DERIVATIVES_SCHEMA,
    OFI_SCHEMA,
    PRICES_SCHEMA,
    QUOTES_SCHEMA,
    TIMESTAMP,
    Schema,
    orderbook_schema,
)
from trio_harvest.pipeline.chunks import Batch, GenericBuilder
from trio_harvest.pipeline.shapes import DepthBuilder, OfiBuilder, QuoteBuilder, TradeBuilder
from trio_harvest.storage.encoding import write_parquet
from trio_harvest.venues.binance_usdm.decode import AggTrade, BookTicker, DepthUpdate

from ..pipeline.test_chunks import _fixture_messages, _sim_depth20

META = {"trio_harvest.version": "test", "trio_harvest.kind": "k"}


def _bytes(schema: Schema, rows: Any) -> bytes:
    buf = io.BytesIO()
    write_parquet(buf, schema, rows, META)
    return buf.getvalue()


def _same_file(batch: Batch) -> None:
    tuples = list(batch)
    got, want = _bytes(batch.schema, batch), _bytes(batch.schema, tuples)
    assert got == want
    back = pl.read_parquet(io.BytesIO(got))
    assert back.height == len(tuples)
    assert all(back.schema[n] == TIMESTAMP for n in ("ts_ms", "recv_ms") if n in back.schema)
    footer = pl.read_parquet_metadata(io.BytesIO(got))
    assert {k: v for k, v in footer.items() if k in META} == META
    assert_frame_equal(back, pl.read_parquet(io.BytesIO(want)))


def test_market_batches_write_the_bytes_their_row_tuples_write(fixtures_dir: Path) -> None:
    msgs = _fixture_messages(fixtures_dir)
    trades = [m for m in msgs if isinstance(m, AggTrade) and m.symbol == "SUSHIUSDT"]
    tickers = [m for m in msgs if isinstance(m, BookTicker) and m.symbol == "SUSHIUSDT"]
    short = [m for m in msgs if isinstance(m, DepthUpdate) and m.symbol == "SUSHIUSDT"]
    assert trades and tickers and short

    tb = TradeBuilder()
    for i, t in enumerate(trades):
        tb.add(t, 1000 + i)
    _same_file(Batch([tb], PRICES_SCHEMA, "SUSHIUSDT"))

    kb = QuoteBuilder()
    for i, b in enumerate(tickers):
        kb.add(b, 5 + i)
    _same_file(Batch([kb], QUOTES_SCHEMA, "SUSHIUSDT"))

    for depths in (_sim_depth20(), short + _sim_depth20()):  # full books; then padded ones too
        chunks = []
        for i in range(0, len(depths), 16):
            db = DepthBuilder(20)
            for j, d in enumerate(depths[i:i + 16]):
                db.add(d, 7 + i + j, "depth20")
            chunks.append(db)
        _same_file(Batch(chunks, orderbook_schema(20), "SUSHIUSDT"))


def test_generic_rows_with_nulls_write_the_bytes_their_tuples_write() -> None:
    gb = GenericBuilder(DERIVATIVES_SCHEMA)
    for i in range(40):
        ts = 1_700_000_000_000 + 1000 * i
        gb.append((ts, ts, ts + 3, "BTCUSDT", "markPrice", 100.0 + i, None if i % 3 else 99.5,
                   None, 0.0001, None if i % 2 else ts + 8 * 3_600_000, None))
    _same_file(Batch([gb], DERIVATIVES_SCHEMA, "BTCUSDT"))


def test_a_batch_of_two_shapes_writes_the_bytes_its_tuples_write() -> None:
    """Rows of two shapes (packed OFI rows and generic tuples) are put in time order, ties in
    arrival order, whether or not the shapes interleave."""
    for gap in (0, 7):  # generic rows before all packed ones; then interleaved
        ob, gb = OfiBuilder(), GenericBuilder(OFI_SCHEMA)
        for i in range(30):
            ob.add(1_700_000_000_000 + 10 * i, "depth20", 0.5 * i, None, 100.0 + i, 101.0 + i,
                   None if i % 4 else 2.0, 3.0)
        for i in range(5):
            gb.append((1_700_000_000_000 - 50 + gap * 10 * i, "BTCUSDT", "bookTicker", None,
                       None, 99.0, 100.0, 1.0, None))
        _same_file(Batch([gb, ob], OFI_SCHEMA, "BTCUSDT"))
