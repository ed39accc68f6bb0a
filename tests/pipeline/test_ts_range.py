"""A batch's time range without a frame: the same as the frame's, whatever its chunks."""

from __future__ import annotations

from trio_harvest.kinds import PRICES_SCHEMA
from trio_harvest.pipeline.chunks import Batch, GenericBuilder, UntypedBuilder


def _chunk(ts: list[int]) -> GenericBuilder:
    b = GenericBuilder(PRICES_SCHEMA)
    for i, t in enumerate(ts):
        b.append((t, t, t, "BTCUSDT", i, 1.0, 1.0, i, i, False, None))
    return b


def test_range_over_many_chunks_out_of_order_matches_the_frame() -> None:
    chunks = [_chunk([50, 40, 60]), _chunk([]), _chunk([7, 900]), _chunk([300])]
    batch = Batch(chunks, PRICES_SCHEMA, "BTCUSDT")
    ts = batch.to_frame().get_column("ts_ms")
    assert batch.ts_range() == (ts.min(), ts.max()) == (7, 900)


def test_range_of_list_columns_and_of_one_chunk() -> None:
    u = UntypedBuilder()
    for t in (5, 3, 9):
        u.append((t, "x"))
    assert Batch([u], PRICES_SCHEMA, "BTCUSDT").ts_range() == (3, 9)
    assert Batch([_chunk([11, 2])], PRICES_SCHEMA, "BTCUSDT").ts_range() == (2, 11)
    mixed = Batch([u, _chunk([1, 100])], PRICES_SCHEMA, "BTCUSDT")
    assert mixed.ts_range() == (1, 100)
