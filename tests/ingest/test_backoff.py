from __future__ import annotations

import random

from trio_harvest.ingest.backoff import Backoff


def test_full_jitter_is_capped_exponential() -> None:
    b = Backoff(initial=0.5, maximum=8.0, rng=random.Random(3))
    ceilings = [0.5, 1, 2, 4, 8, 8, 8]
    delays = [b.next_delay() for _ in ceilings]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered


def test_reset_starts_over() -> None:
    b = Backoff(initial=1.0, maximum=100.0, rng=random.Random(1))
    for _ in range(10):
        b.next_delay()
    b.reset()
    assert b.next_delay() <= 1.0


def test_huge_attempt_counts_do_not_overflow() -> None:
    b = Backoff(initial=1.0, maximum=30.0, attempt=10_000)
    assert 0 <= b.next_delay() <= 30.0
