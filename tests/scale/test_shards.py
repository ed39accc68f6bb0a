"""Rendezvous hashing of symbols into shards, and the I/N notation (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_harvest.config import ConfigError
from trio_harvest.scale.shards import Shard, assign, owner, parse_shard, symbols_of

SYMBOLS = [f"S{i:03d}USDT" for i in range(400)]


def test_every_symbol_has_exactly_one_shard_and_the_split_is_even_enough() -> None:
    groups = assign(SYMBOLS, 4)
    assert sorted(s for g in groups for s in g) == sorted(SYMBOLS)
    assert all(60 <= len(g) <= 140 for g in groups), [len(g) for g in groups]


def test_adding_a_shard_moves_only_the_symbols_the_new_shard_takes() -> None:
    before, after = assign(SYMBOLS, 4), assign(SYMBOLS, 5)
    moved = [s for s in SYMBOLS if owner(s, 4) != owner(s, 5)]
    assert all(owner(s, 5) == 4 for s in moved)  # nothing moves between the old shards
    assert len(moved) < len(SYMBOLS) * 0.35  # about 1/5
    assert set(after[4]) == set(moved) and sum(map(len, before)) == sum(map(len, after))


def test_the_hash_is_stable_across_runs() -> None:
    # fixed values: a change here reshuffles every deployment's shards
    assert [owner(s, 2) for s in ("BTCUSDT", "ETHUSDT", "LINKUSDT")] == [0, 0, 1]


@given(st.integers(1, 16))
def test_shards_partition_the_symbols(n: int) -> None:
    parts = [symbols_of(SYMBOLS[:50], Shard(i, n)) for i in range(n)]
    assert sorted(s for p in parts for s in p) == sorted(SYMBOLS[:50])


def test_parse_shard() -> None:
    assert parse_shard("1/3") == Shard(1, 3) and str(Shard(1, 3)) == "1/3"
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0", ""):
        with pytest.raises(ConfigError, match="is not I/N"):
            parse_shard(bad)
