"""The ownership timeline of a venue whose listing gives no listing dates (Binance Spot): its
symbols in force are pinned to the day's weight snapshot, so shards that poll at their own times
agree on every owner through a listing change (a new listing is owned by its name, a delisting
moves nobody), where taking the listing as it is would hand symbols over late."""

from __future__ import annotations

from trio_harvest.scale.shards import Shard, assignment
from trio_harvest.venues.binance_usdm.listing import TRADING, Listed

from .test_handover import MIDNIGHT, NAMES, STEP, FakeShard, run, start


def test_an_undated_listing_change_moves_no_symbol_and_every_instant_has_one_keeper() -> None:
    # the day's snapshot: it names SUIUSDT, to be listed today (as the simulator's model does)
    weights = {s: 16 * (i + 1) ** 2 for i, s in enumerate(NAMES)} | {"SUIUSDT": 900}
    t0 = MIDNIGHT + 3_600_000
    change = t0 + 5_300  # SUIUSDT listed, LTCUSDT delisted; the listing says neither when

    def listing_at(t: int) -> dict[str, Listed]:
        out = {s: Listed(TRADING) for s in NAMES}
        if t >= change:
            out["SUIUSDT"] = Listed(TRADING)
            out["LTCUSDT"] = Listed("BREAK")
        return out

    def keepers(dated: bool) -> tuple[list[FakeShard], dict[int, list[str]]]:
        shards = [FakeShard(Shard(0, 2), dated=dated), FakeShard(Shard(1, 2), dated=dated)]
        start(shards, listing_at(t0), lambda day: weights, t0)
        wrong = run(shards, listing_at, lambda day: weights, t0, t0 + 30_000, [300, 1_700])
        # a new listing has no keeper until its owner's next poll: nobody knew of it before
        return shards, {t: bad for t, got in wrong.items()
                        if (bad := [x for x in got
                                    if not (x == "SUIUSDT:0" and t < change + STEP + 100)])}

    # the premise: taking the listing as it is (every symbol "listed" at 0, so in force at once,
    # even at grid points already past) hands other symbols over with no lead time: a late
    # hand-over, whose rows between its boundary and the poll only backfill could bring
    after = assignment([*NAMES, "SUIUSDT"], weights, 2)  # (a delisted one stays in force)
    assert any(after[s] != o for s, o in assignment(NAMES, weights, 2).items())
    old_way, _ = keepers(dated=True)
    assert any(m for sh in old_way for m in sh.log if m.symbol not in ("SUIUSDT", "LTCUSDT"))

    shards, wrong = keepers(dated=False)
    assert wrong == {}
    assert not any(m for sh in shards for m in sh.log if m.symbol != "SUIUSDT")  # none moved
    assert {s for sh in shards for s in sh.harvested} == set(NAMES) - {"LTCUSDT"} | {"SUIUSDT"}
