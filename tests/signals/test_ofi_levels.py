"""Multi-level OFI on decoded level lists (the loop, and the function with the loop written
out per depth): the sum is exactly (bit for bit) the per-level definition's, in the same order
of additions, whatever the levels do (prices up, down, equal, a side shorter than the other,
more levels than counted, NaN)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from trio_harvest.signals.ofi import level_sums, level_sums_fn, ofi_levels_fn, ofi_multi_levels

Levels = Sequence[tuple[float, float]]


def reference(prev_bids: Levels, prev_asks: Levels, bids: Levels, asks: Levels,
              levels: int) -> float:
    """e_n per level, bids then asks, each indicator applied on its own (the definition)."""
    total = 0.0
    for (p0, q0), (p1, q1) in zip(prev_bids[:levels], bids[:levels], strict=False):
        if p1 >= p0:
            total += q1
        if p1 <= p0:
            total -= q0
    for (p0, q0), (p1, q1) in zip(prev_asks[:levels], asks[:levels], strict=False):
        if p1 <= p0:
            total -= q1
        if p1 >= p0:
            total += q0
    return total


def _side(rng: random.Random, base: list[float]) -> list[tuple[float, float]]:
    out = []
    deep = rng.random() < 0.7  # mostly every level there (the written-out path), else short
    for p in base[:len(base) if deep else rng.randint(0, len(base))]:
        move = rng.random()
        px = p if move < 0.6 else p + rng.choice((-0.1, 0.1, 1e-9))
        if move > 0.98:
            px = float("nan")
        out.append((px, rng.random() * 10 ** rng.randint(-3, 6)))
    return out


def test_the_multi_level_sum_is_the_definitions_bit_for_bit() -> None:
    rng = random.Random(7)
    base = [100.0 + 0.1 * i for i in range(25)]
    for _ in range(3000):
        books = [(_side(rng, base), _side(rng, base)) for _ in range(2)]
        levels = rng.choice((1, 5, 10, 20, 30))
        (pb, pa), (b, a) = books
        want = reference(pb, pa, b, a, levels)
        for got in (ofi_multi_levels(pb, pa, b, a, levels), ofi_levels_fn(levels)(pb, pa, b, a)):
            assert got == want or (got != got and want != want)


def test_the_level_sums_written_out_are_the_loops_bit_for_bit() -> None:
    rng = random.Random(11)
    base = [100.0 + 0.1 * i for i in range(8)]
    for _ in range(2000):
        bids, asks = _side(rng, base), _side(rng, base)
        levels = rng.choice((1, 3, 5, 8, 10))
        got = level_sums_fn(levels)(bids, asks)
        want = level_sums(bids, asks, levels)
        assert got == want and [type(v) for v in got] == [type(v) for v in want]
