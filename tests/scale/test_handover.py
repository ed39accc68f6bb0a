"""The ownership timeline (scale/handover.py): shards that poll at their own times, from the same
listing and the same day's weights, hand every symbol over at the same grid boundary, so at
every instant exactly one shard keeps each symbol's rows; also across a UTC midnight whose new
snapshot moves symbols, without a restart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trio_harvest.scale.handover import Move, Timeline, day_of, grid_ceil
from trio_harvest.scale.shards import Shard, assignment
from trio_harvest.venues.binance_usdm.listing import TRADING, Listed

STEP = 2_000  # the listing interval, ms
MIDNIGHT = 1_796_601_600_000  # 2026-12-07T00:00:00Z
CLOCK = [0]  # the time of the poll under way (what a weights source is asked at)
NAMES = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "BNBUSDT", "LTCUSDT")


@dataclass
class FakeShard:
    """What the follower does with the timeline's moves (ops/universe.py), without I/O: a join
    keeps rows from its boundary on, a leave keeps rows before it and unsubscribes after it."""

    shard: Shard
    dated: bool = True  # the venue's listing gives listing dates (Venue.listing_dates)
    harvested: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    leaving: dict[str, int] = field(default_factory=dict)
    joining: dict[str, int] = field(default_factory=dict)
    log: list[Move] = field(default_factory=list)

    def poll(self, listed: Mapping[str, Listed], weights: object, now: int) -> None:
        tl = Timeline(listed, ("ALL",), self.shard, weights, STEP,  # type: ignore[arg-type]
                      day_of(now), trading=TRADING, dated=self.dated)
        for s in [s for s in self.harvested if listed[s].status != TRADING]:  # delisted
            del self.harvested[s]
        for m in tl.moves(self.harvested, self.leaving, self.joining, now):
            self.log.append(m)
            start, _ = self.harvested.get(m.symbol, (None, None))
            if m.join and m.symbol in self.leaving:
                del self.leaving[m.symbol]
                self.harvested[m.symbol] = (start, None)
            elif m.join:
                self.harvested[m.symbol] = (m.boundary_ms, None)
                if m.boundary_ms is not None:
                    self.joining[m.symbol] = m.boundary_ms
            else:
                assert m.boundary_ms is not None
                self.leaving[m.symbol] = m.boundary_ms
                self.harvested[m.symbol] = (start, m.boundary_ms)

    def tick(self, now: int) -> None:
        for s, b in list(self.leaving.items()):
            if now >= b + 3_000:
                del self.leaving[s], self.harvested[s]
                self.joining.pop(s, None)

    def keeps(self, symbol: str, t: int) -> bool:
        if symbol not in self.harvested:
            return False
        start, end = self.harvested[symbol]
        return (start is None or start <= t) and (end is None or t < end)


def start(shards: list[FakeShard], listed: Mapping[str, Listed], weights: object,
          now: int) -> None:
    """Each shard's start-up share (cli/scale.py: the timeline's owners now)."""
    CLOCK[0] = now
    for sh in shards:
        tl = Timeline(listed, ("ALL",), sh.shard, weights, STEP,  # type: ignore[arg-type]
                      day_of(now), trading=TRADING, dated=sh.dated)
        sh.harvested = {s: (None, None) for s in listed if tl.mine(s, now)}


def run(shards: list[FakeShard], listing_at: object, weights: object, t0: int, t1: int,
        offsets: list[int]) -> dict[int, list[str]]:
    """Poll each shard every STEP at its own offset, tick every 100 ms, and record at every
    100 ms which shards keep each trading symbol's rows."""
    keepers: dict[int, list[str]] = {}
    for t in range(t0, t1, 100):
        CLOCK[0] = t
        listed = listing_at(t)  # type: ignore[operator]
        for sh, off in zip(shards, offsets, strict=True):
            if (t - t0) % STEP == off:
                sh.poll(listed, weights, t)
            sh.tick(t)
        for s, e in listed.items():
            if e.status == TRADING and e.onboard_ms <= t - 3 * STEP:  # seen by every shard
                n = sum(sh.keeps(s, t) for sh in shards)
                if n != 1:
                    keepers.setdefault(t, []).append(f"{s}:{n}")
    return keepers


def test_a_listing_change_hands_every_moved_symbol_over_at_one_boundary() -> None:
    weights = {s: 16 * (i + 1) ** 2 for i, s in enumerate(NAMES)}
    t0 = MIDNIGHT + 3_600_000
    change = t0 + 5_300  # SUIUSDT listed, LTCUSDT delisted (the venue's own times)

    def listing_at(t: int) -> dict[str, Listed]:
        out = {s: Listed(TRADING, 1_000) for s in NAMES}
        if t >= change:
            out["SUIUSDT"] = Listed(TRADING, change)
            out["LTCUSDT"] = Listed("SETTLING", 1_000, change)
        return out

    before = assignment(NAMES, weights, 2)
    after = assignment([*[s for s in NAMES if s != "LTCUSDT"], "SUIUSDT"], weights, 2)
    moved = sorted(s for s in before if s in after and before[s] != after[s])
    assert moved  # the premise: this change moves some symbol between the two shards

    shards = [FakeShard(Shard(0, 2)), FakeShard(Shard(1, 2))]
    start(shards, listing_at(t0), lambda day: weights, t0)
    assert run(shards, listing_at, lambda day: weights, t0, t0 + 30_000, [300, 1_700]) == {}
    boundary = grid_ceil(change + 2 * STEP, STEP)
    for s in moved:  # one leave and one join, at the same boundary
        leaves = [m for sh in shards for m in sh.log if m.symbol == s and not m.join]
        joins = [m for sh in shards for m in sh.log if m.symbol == s and m.join]
        assert [m.boundary_ms for m in leaves] == [boundary] == [m.boundary_ms for m in joins]
    assert {s for sh in shards for s in sh.harvested} == set(after)


def test_across_a_utc_midnight_the_new_days_snapshot_moves_symbols_without_a_restart() -> None:
    old = {s: 16 * (i + 1) ** 2 for i, s in enumerate(NAMES)}
    new = {s: 16 * (len(NAMES) - i) ** 2 for i, s in enumerate(NAMES)}  # activity turned over
    asked: list[tuple[str, int]] = []

    def weights(day: str) -> dict[str, int]:
        asked.append((day, CLOCK[0]))
        return new if day >= day_of(MIDNIGHT) else old

    before, after = assignment(NAMES, old, 2), assignment(NAMES, new, 2)
    moved = sorted(s for s in NAMES if before[s] != after[s])
    assert moved

    def listing_at(t: int) -> dict[str, Listed]:
        return {s: Listed(TRADING, 1_000) for s in NAMES}

    shards = [FakeShard(Shard(0, 2)), FakeShard(Shard(1, 2))]
    t0 = MIDNIGHT - 20_000
    start(shards, listing_at(t0), weights, t0)
    assert {s for s, (a, b) in shards[0].harvested.items()} == {
        s for s in NAMES if before[s] == 0}
    assert run(shards, listing_at, weights, t0, MIDNIGHT + 40_000, [900, 100]) == {}
    # the new day's owners hold from one grid point after midnight (its snapshot published by
    # then), on both shards, with no restart
    boundary = MIDNIGHT + 2 * STEP
    for s in moved:
        got = sorted((m.join, m.boundary_ms) for sh in shards for m in sh.log if m.symbol == s)
        assert got == [(False, boundary), (True, boundary)], (s, got)
    for i, sh in enumerate(shards):
        assert set(sh.harvested) == {s for s in NAMES if after[s] == i}
    # the new day's snapshot is asked for only once the day has begun (its first shard
    # publishes it then); before, the old day's stood in
    assert {d for d, _ in asked} == {day_of(MIDNIGHT), day_of(MIDNIGHT - 1)}
    assert all(t >= MIDNIGHT for d, t in asked if d == day_of(MIDNIGHT))


def test_a_young_listing_is_owned_by_its_name_until_it_is_in_force() -> None:
    from trio_harvest.scale.shards import owner

    listed = {s: Listed(TRADING, 1_000) for s in NAMES} | {"SUIUSDT": Listed(TRADING, 10_500)}
    weights = {s: 16 for s in NAMES}
    tl = [Timeline(listed, ("ALL",), Shard(i, 2), lambda day: weights, STEP, trading=TRADING)
          for i in range(2)]
    young = owner("SUIUSDT", 2)
    assert tl[young].mine("SUIUSDT", 12_000) and not tl[1 - young].mine("SUIUSDT", 12_000)
    assert not any(t.mine("SUIUSDT", 10_000) for t in tl)  # not listed yet
    assert sum(t.mine("SUIUSDT", 16_000) for t in tl) == 1  # in force: weighted, one owner
    assert tl[0].in_force(14_000) == sorted(NAMES)  # in force from grid_ceil(10.5 s + 4 s)
    assert "SUIUSDT" in tl[0].in_force(16_000)
