"""A lane's ``accepted`` counts every row it admitted, buffered or drained, through every way
in (decoded records, preview offers, tuple rows, whole chunks); spilled rows are not."""

from __future__ import annotations

from trio_harvest.kinds import OFI, OFI_SCHEMA
from trio_harvest.pipeline.lanes import Lane
from trio_harvest.pipeline.shapes import OfiBuilder


def test_accepted_counts_admitted_rows_across_drains_and_not_spills() -> None:
    lane = Lane(OFI, "X", high=3, capacity=4, wake=lambda lane: None, schema=OFI_SCHEMA)
    for i in range(3):
        lane.offer_ofi(i, "bookTicker", None, None, 1.0, 2.0, 3.0, 4.0)
    assert lane.stats.accepted == 3
    lane.offer((3, "X", "depth20", 0.5, None, 1.0, 2.0, 3.0, 4.0))
    lane.offer((4, "X", "depth20", 0.5, None, 1.0, 2.0, 3.0, 4.0))  # full: spills
    assert lane.stats.accepted == 4 and lane.stats.spilled == 1
    assert lane.drain().n == 4 and lane.stats.accepted == 4
    chunk = OfiBuilder()
    chunk.add(5, "bookTicker", 1.0, None, 1.0, 2.0, 3.0, 4.0)
    chunk.add(6, "bookTicker", 1.0, None, 1.0, 2.0, 3.0, 4.0)
    assert lane.put_chunk(chunk) and lane.stats.accepted == 6
    lane.drain()
    lane.offer_ofi(7, "bookTicker", None, None, 1.0, 2.0, 3.0, 4.0)
    assert lane.stats.accepted == 7 and lane.level == 1 and lane.stats.peak == 4
