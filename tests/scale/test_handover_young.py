"""A young listing (owned by its name until it is in force) that moves to its weighted owner one
grid point after a shard joined it: the join must plan that leave at once. Left to the shard's
next poll, one listing interval later, the leave comes after the boundary, and the rows the
shard took from it on are the new owner's too (the duplicated trades of the venue hand-over
end-to-end test, on a symbol the simulator had just listed)."""

from __future__ import annotations

from trio_harvest.scale.handover import Move, Timeline, grid_ceil
from trio_harvest.scale.shards import Shard, owner
from trio_harvest.venues.binance_usdm.listing import TRADING, Listed

from .test_handover import NAMES, STEP, FakeShard

WEIGHTS = {s: 16 for s in NAMES}  # ARBUSDT unweighted: owned by its name, then moves
YOUNG = "ARBUSDT"
LISTED_AT = 10_500
IN_FORCE = grid_ceil(LISTED_AT + 2 * STEP, STEP)  # 16 000: from here its weighted owner's


def listing_at(t: int) -> dict[str, Listed]:
    out = {s: Listed(TRADING, 1_000) for s in NAMES}
    if t >= LISTED_AT:
        out[YOUNG] = Listed(TRADING, LISTED_AT)
    return out


def timeline(index: int) -> Timeline:
    return Timeline(listing_at(LISTED_AT), ("ALL",), Shard(index, 2), lambda day: WEIGHTS,
                    STEP, trading=TRADING)


def test_a_join_of_a_young_listing_plans_its_leave_when_it_comes_in_force() -> None:
    by_name = owner(YOUNG, 2)
    old, new = timeline(by_name), timeline(1 - by_name)
    assert old.mine(YOUNG, IN_FORCE - 1) and new.mine(YOUNG, IN_FORCE)  # the premise: it moves
    now = IN_FORCE - 1_300  # a poll in the last grid step before it comes in force
    share = [s for s in NAMES if old.mine(s, now)]
    young = [m for m in old.moves(share, {}, {}, now) if m.symbol == YOUNG]
    # joined now (nobody had it before) and left where it comes in force, at one poll
    assert young == [Move(YOUNG, True, None), Move(YOUNG, False, IN_FORCE)]
    share = [s for s in NAMES if new.mine(s, now)]
    assert [m for m in new.moves(share, {}, {}, now) if m.symbol == YOUNG] == [
        Move(YOUNG, True, IN_FORCE)]


def test_every_instant_after_both_polls_saw_a_young_listing_has_one_keeper() -> None:
    shards = [FakeShard(Shard(0, 2)), FakeShard(Shard(1, 2))]
    t0 = 8_000
    for sh in shards:  # the start-up share: the listing then (ARBUSDT not listed yet)
        tl = Timeline(listing_at(t0), ("ALL",), sh.shard, lambda day: WEIGHTS, STEP,
                      trading=TRADING)
        sh.harvested = {s: (None, None) for s in NAMES if tl.mine(s, t0)}
    # the shard that owns it by name: its first poll after the listing fails (a listing that
    # cannot be had is asked again at the next poll), its next one joins it in the last step
    # before it comes in force; the other one polls just after the listing
    by_name = owner(YOUNG, 2)
    offsets, failed = {by_name: 300, 1 - by_name: 1_000}, 12_300
    seen: set[int] = set()
    wrong = []
    for t in range(t0, t0 + 20_000, 100):
        listed = listing_at(t)
        for i, sh in enumerate(shards):
            if (t - t0) % STEP == offsets[i] and not (i == by_name and t == failed):
                sh.poll(listed, lambda day: WEIGHTS, t)
                if YOUNG in listed:
                    seen.add(i)
            sh.tick(t)
        if len(seen) == 2 and (n := sum(sh.keeps(YOUNG, t) for sh in shards)) != 1:
            wrong.append((t, n))
    assert wrong == []
    assert YOUNG in shards[1 - by_name].harvested
    assert YOUNG not in shards[by_name].harvested  # left after the grace
