"""Shards of a run of several venues (pure): the (venue, symbol) pair is the unit. Every pair has
one owner, the same whoever computes it and in whatever order; each venue is balanced across
the shards by its own weights; a listing change on one venue moves no pair of another and few of
its own; a venue's listing follower (its hand-over timeline) agrees with the supervisor."""

from __future__ import annotations

import random

import pytest

from trio_harvest.scale.handover import Timeline
from trio_harvest.scale.pairs import (
    assign_pairs,
    pair_assignment,
    pair_key,
    pair_names,
    pair_snapshot,
    venue_weights,
)
from trio_harvest.scale.shards import SLACK_PERCENT, Shard, assignment, owner, symbols_of
from trio_harvest.scale.weights import UNIT, decode, encode, quantize
from trio_harvest.sim.activity import activity
from trio_harvest.venues.base import Listed

USDM = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT",
        *(f"T{i:03d}USDT" for i in range(294))]
SPOT = ["BTCUSDT", "ETHUSDT", "BNBUSDT", *(f"S{i:03d}USDT" for i in range(197))]
VENUES = {"binance-usdm": USDM, "binance-spot": SPOT}


def weights_of(symbols: list[str], scale: int = 1) -> dict[str, int]:
    return {s: quantize(scale * activity(s).count) for s in symbols}


# each venue's own 24 h figures: the same name weighs differently on each
WEIGHTS = {"binance-usdm": weights_of(USDM), "binance-spot": weights_of(SPOT, 3)}


def test_every_pair_has_exactly_one_owner_and_every_shard_computes_the_same() -> None:
    owners = pair_assignment(VENUES, WEIGHTS, 4)
    assert sorted(owners) == sorted((v, s) for v, ss in VENUES.items() for s in ss)
    # another shard lists the venues and their symbols in another order, same owners
    shuffled = {v: random.Random(1).sample(ss, len(ss)) for v, ss in reversed(VENUES.items())}
    reweighted = {v: dict(reversed(w.items())) for v, w in reversed(WEIGHTS.items())}
    assert pair_assignment(shuffled, reweighted, 4) == owners
    # what a worker computes for itself (cli: one venue at a time) is the supervisor's split
    groups = assign_pairs(VENUES, 4, WEIGHTS)
    for i in range(4):
        for venue, symbols in VENUES.items():
            mine = symbols_of(symbols, Shard(i, 4), WEIGHTS[venue], venue)
            assert groups[i].get(venue, ()) == mine, (i, venue)


def test_the_hash_of_a_pair_is_stable_and_one_venue_hashes_as_before() -> None:
    # fixed values: a change here reshuffles every deployment of several venues
    assert [owner(s, 4, "binance-spot") for s in ("BTCUSDT", "ETHUSDT", "LINKUSDT")] == \
        PAIR_OWNERS
    assert [owner(s, 2) for s in ("BTCUSDT", "ETHUSDT", "LINKUSDT")] == [0, 0, 1]  # unchanged
    assert assignment(USDM, WEIGHTS["binance-usdm"], 3, "") == \
        assignment(USDM, WEIGHTS["binance-usdm"], 3)


PAIR_OWNERS = [3, 2, 3]  # recorded once; see the test above


def test_the_same_name_on_two_venues_is_two_independent_units() -> None:
    names = [f"X{i:03d}USDT" for i in range(400)]
    owners = pair_assignment({"binance-usdm": names, "binance-spot": names}, None, 2)
    together = sum(owners[("binance-usdm", s)] == owners[("binance-spot", s)] for s in names)
    assert 120 <= together <= 280, together  # about half, as for two unrelated names


@pytest.mark.parametrize("n", [2, 3, 4])
def test_every_worker_carries_its_share_of_every_venue(n: int) -> None:
    groups = assign_pairs(VENUES, n, WEIGHTS)
    for venue, symbols in VENUES.items():
        load = [sum(WEIGHTS[venue][s] for s in g.get(venue, ())) for g in groups]
        mean = sum(load) / n
        assert max(load) <= mean * (1 + SLACK_PERCENT / 100), (venue, load)
        assert sorted(s for g in groups for s in g.get(venue, ())) == sorted(symbols)


def test_two_venues_of_two_symbols_each_split_across_two_workers() -> None:
    two = {"binance-usdm": ["BTCUSDT", "ETHUSDT"], "binance-spot": ["BTCUSDT", "ETHUSDT"]}
    weights = {v: weights_of(ss) for v, ss in two.items()}
    groups = assign_pairs(two, 2, weights)
    assert all(len(g[v]) == 1 for g in groups for v in two), groups
    assert sorted(pair_names(groups[0]) + pair_names(groups[1])) == sorted(
        pair_key(v, s) for v, ss in two.items() for s in ss)


@pytest.mark.parametrize("n", [2, 4])
def test_a_listing_change_on_one_venue_moves_no_pair_of_another_and_few_of_its_own(n: int) -> None:
    before = pair_assignment(VENUES, WEIGHTS, n)
    rnd = random.Random(n)
    moved: list[int] = []
    for trial in range(30):
        usdm, w = list(USDM), dict(WEIGHTS["binance-usdm"])
        if trial % 2:  # a new listing on USD-M
            new = f"NEW{trial}USDT"
            usdm.append(new)
            w[new] = rnd.choice([UNIT, quantize(300_000), quantize(3_000_000)])
        else:  # a delisting on USD-M
            gone = rnd.choice(USDM)
            usdm.remove(gone)
            w.pop(gone)
        after = pair_assignment({**VENUES, "binance-usdm": usdm},
                                {**WEIGHTS, "binance-usdm": w}, n)
        assert all(after[("binance-spot", s)] == before[("binance-spot", s)] for s in SPOT)
        moved.append(sum(1 for p, i in after.items() if p in before and before[p] != i))
    assert max(moved) <= 8 and sum(moved) / len(moved) <= 2.0, moved


def test_a_snapshot_of_several_venues_gives_each_venue_its_own_weights() -> None:
    snap = decode(encode(pair_snapshot({**WEIGHTS, "binance-coinm": None})))
    assert venue_weights(snap, "binance-usdm") == WEIGHTS["binance-usdm"]
    assert venue_weights(snap, "binance-spot") == WEIGHTS["binance-spot"]
    assert venue_weights(snap, "binance-coinm") == {}
    # a hand-written file may give a bare SYMBOL for every venue; a pair key wins over it
    mixed = {"BTCUSDT": 64, "binance-spot:BTCUSDT": 90, "ETHUSDT": 32}
    assert venue_weights(mixed, "binance-spot") == {"BTCUSDT": 90, "ETHUSDT": 32}
    assert venue_weights(mixed, "binance-usdm") == {"BTCUSDT": 64, "ETHUSDT": 32}


def test_a_venues_timeline_keeps_to_the_pair_owners() -> None:
    """A universe shard of several venues: each venue's follower, from its own listing and
    weights, finds the owners the supervisor assigned to that venue's pairs."""
    listed = {s: Listed("TRADING") for s in SPOT}
    step = 2_000
    now = 1_796_601_600_000 + 10 * step
    spot = WEIGHTS["binance-spot"]
    for i in range(3):
        tl = Timeline(listed, ("ALL",), Shard(i, 3), lambda day: spot, step,
                      trading="TRADING", namespace="binance-spot")
        mine = tuple(s for s in SPOT if tl.mine(s, now))
        assert mine == assign_pairs(VENUES, 3, WEIGHTS)[i]["binance-spot"]
