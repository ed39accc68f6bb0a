"""When a symbol changes shards: the owner of every symbol at every point of a fixed time grid,
and the hand-overs a shard must make, derived only from inputs every shard sees identically.

Owns the ownership timeline. The grid is every ``step_ms`` since the epoch (the follower's
``listing_interval``). At a grid point ``G`` the symbols *in force* are the listed ones whose
listing (exchangeInfo's ``onboardDate``) is at least ``lag_ms`` before ``G``, minus those whose
delisting (``deliveryDate``, once the status left ``TRADING``) is; the weights in force are the
published snapshot of the UTC day of ``G - lag_ms``. The owners at ``G`` are the pure assignment
(shards.py) of those symbols by those weights, and they hold until the next grid point. A
listing too young to be in force is owned by plain rendezvous hashing of its name. So every
shard, polling at its own times, computes the same owner for every symbol at every point, and a
symbol that moves does so exactly at a grid point ``B``: the old owner keeps its rows before
``B``, the new one those from ``B`` on. ``lag_ms`` (two grid steps) is what lets every shard,
polling once per step, learn of a change before the boundary it causes. A venue whose listing
gives no listing dates (Binance Spot) cannot say when a symbol came, so its symbols in force are
pinned to the day's weight snapshot instead (its names that match the entries; none without
weights): a listing change during the day moves no other symbol, and a new listing is owned by
its name until a later day's snapshot holds it.

Pure: no I/O, no trio; the weights arrive through an injected callable (by day).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..symbols import matches
from ..venues.base import Listed
from .shards import Shard, assignment, owner

# the weights of a UTC day ("YYYY-MM-DD"), None for unweighted; the same for every shard
DayWeights = Callable[[str], Mapping[str, int] | None]
LOOKBACK = 3  # grid points looked back for where a late-learned ownership began


def grid_floor(ms: int, step_ms: int) -> int:
    return ms - ms % step_ms


def grid_ceil(ms: int, step_ms: int) -> int:
    return -(-ms // step_ms) * step_ms


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class Move:
    """A change of this shard's share: ``join`` (subscribe now, keep rows from ``boundary_ms``
    on; None keeps everything: nobody owned it before) or ``leave`` (keep rows before
    ``boundary_ms``, then unsubscribe)."""

    symbol: str
    join: bool
    boundary_ms: int | None


class Timeline:
    """The owners of ``entries``' symbols over time, from one listing; ``trading`` is the
    venue's listing status of a symbol that trades (``Venue.trading``); ``namespace`` the
    venue of a run of several venues, whose (venue, symbol) pairs are the units (pairs.py)."""

    def __init__(self, listed: Mapping[str, Listed], entries: Sequence[str], shard: Shard,
                 weights: DayWeights, step_ms: int, today: str | None = None, *,
                 trading: str, namespace: str = "", dated: bool = True) -> None:
        self.trading = trading
        self.namespace = namespace
        self.dated = dated  # the listing gives each symbol's listing date (Venue.listing_dates)
        self.entries = tuple(entries)
        self.listed = {s: e for s, e in listed.items() if matches(s, entries)}
        self.shard = shard
        self.weights = weights
        self.today = today  # a later day's snapshot is not published yet: today's stands in
        self.step = step_ms
        self.lag = 2 * step_ms
        self._owners: dict[int, dict[str, int]] = {}

    def in_force(self, g: int) -> list[str]:
        step, lag = self.step, self.lag
        return sorted(s for s, e in self.listed.items()
                      if grid_ceil(e.onboard_ms + lag, step) <= g
                      and (e.status == self.trading or grid_ceil(e.delivery_ms + lag, step) > g))

    def pinned(self, weights: Mapping[str, int] | None) -> list[str]:
        """An undated venue's symbols in force: the day's snapshot's, whatever the listing."""
        return [] if weights is None else sorted(s for s in weights if matches(s, self.entries))

    def owners(self, g: int) -> dict[str, int]:
        """Every listed symbol's owner at grid point ``g`` (young listings by their name)."""
        got = self._owners.get(g)
        if got is None:
            count = self.shard.count
            day = day_of(g - self.lag)
            if self.today is not None and day > self.today:
                day = self.today
            ns = self.namespace
            weights = self.weights(day)
            members = self.in_force(g) if self.dated else self.pinned(weights)
            got = assignment(members, weights, count, ns)
            for s in self.listed:
                if s not in got:
                    got[s] = owner(s, count, ns)
            self._owners[g] = got
        return got

    def mine(self, symbol: str, ms: int) -> bool:
        """Whether this shard owns ``symbol`` (a trading one, listed by ``ms``) at ``ms``."""
        e = self.listed.get(symbol)
        if e is None or e.status != self.trading or e.onboard_ms > ms:
            return False
        return self.owners(grid_floor(ms, self.step)).get(symbol) == self.shard.index

    def moves(self, harvested: Iterable[str], leaving: Mapping[str, int],
              joining: Mapping[str, int], now_ms: int, horizon: int = 3) -> list[Move]:
        """What to change now, for a shard that harvests ``harvested`` (``leaving`` /
        ``joining``: those of them told to leave / that join at a boundary still to come): a
        join or leave per symbol whose ownership differs now or at one of the next ``horizon``
        grid points. A join comes with the leave that ends it within those points (the same
        symbol's join first); a leave already planned at the same boundary is not repeated; one
        the timeline no longer shows is cancelled (a join with that boundary); a join still to
        come that the timeline no longer shows becomes a leave at its own boundary (nothing
        kept)."""
        step = self.step
        g0 = grid_floor(now_ms, step)
        ahead = [g0 + i * step for i in range(1, horizon + 1)]
        have = set(harvested)
        out: list[Move] = []
        for s in sorted(self.listed):
            e = self.listed[s]
            if e.status != self.trading:
                continue  # delisted: the follower removes it (a `delisted` gap)
            if s in have and (start := joining.get(s)) is not None and start > now_ms:
                if not self.mine(s, start):
                    out.append(Move(s, False, start))
                continue
            if s in have:
                planned = leaving.get(s)
                if not self.mine(s, now_ms):
                    if planned is None or planned > now_ms:  # late: the boundary has passed
                        out.append(Move(s, False, self._run_start(s, g0, False)))
                    continue
                leave = next((g for g in ahead if not self.mine(s, g)), None)
                if leave != planned:
                    out.append(Move(s, leave is None, leave if leave is not None else planned))
            elif self.mine(s, now_ms):
                out.append(Move(s, True, self._run_start(s, g0, True)))
                out += self._leave_after(s, now_ms, ahead)
            elif (join := next((g for g in ahead if self.mine(s, g)), None)) is not None:
                out.append(Move(s, True, join))
                out += self._leave_after(s, join, ahead)
        return out

    def _leave_after(self, symbol: str, start_ms: int, ahead: Sequence[int]) -> list[Move]:
        """The leave a join must plan with it: the first grid point after ``start_ms`` (within
        the horizon) where ``symbol`` is no longer this shard's. A young listing, owned by its
        name, moves to its weighted owner when it comes in force, often one grid point after
        the shard joined it: left to the next poll, that leave would come late (after the
        boundary), and the rows taken past it meanwhile are the new owner's too."""
        leave = next((g for g in ahead if g > start_ms and not self.mine(symbol, g)), None)
        return [] if leave is None else [Move(symbol, False, leave)]

    def _run_start(self, symbol: str, g0: int, mine: bool) -> int | None:
        """The grid point where the current run of ``mine`` (as of ``g0``) began, looking back at
        most LOOKBACK points; None if it began before (or at the listing: nobody had it)."""
        e = self.listed[symbol]
        g = g0
        for _ in range(LOOKBACK):
            prev = g - self.step
            if e.onboard_ms > prev:  # not listed yet at prev: the run began with the listing
                return None if mine else g
            if self.mine(symbol, prev) != mine:
                return g
            g = prev
        return None if mine else g0
