"""Lone outlier ids: a trade's ``agg_id`` or a book message's update id that jumps away from the
stream is held until the next frames say whether it is real.

Owns that decision for one symbol's trades (in front of ``continuity.AggIdTracker``) and one book
stream (in front of ``continuity.BookTracker``). Without it, one corrupt id far ahead — as the
first frame of a run, right after a resume, or mid-stream within the trackers' jump bounds —
would become the reference, and every real id after it would look duplicate (dropped) or the ids
before it missing (a false gap, a useless backfill). The rule, O(1) per frame:

- an id the tracker can judge by itself (the next one, or not newer) passes straight through;
- a jump (or a stream's very first id, when nothing is known yet) is *held*, not admitted (for
  book ids, whose steps vary: a step far beyond the stream's usual one);
- a later id that *follows* a held one (a little after it: the stream went on from there)
  before the stream goes on from the reference confirms it: it is released, with held ids
  between the reference and it, in id order; held ids that do not fit are quarantined;
- the stream going on from the reference instead (the next id after it) quarantines held ids
  it reaches and held ids far ahead of it: those were outliers (a real jump is confirmed by its
  successor first), or, during a handover's overlap, copies of what the stream delivers.

A real id quarantined by mistake is not lost: it lies below an id admitted later, so it is in
that break's missing range, and backfill fetches it. Held ids are few (``MAX_HELD``; the oldest
is quarantined first). Pure: no trio, no I/O, no clock; the caller keeps the held rows.
"""

from __future__ import annotations

from .continuity import MAX_AGG_ID_JUMP, AggIdTracker, BookTracker

PASS = 0  # the tracker decides (accept, late, duplicate, implausible)
HOLD = 1  # held: nothing to admit now
HELD_DUPLICATE = 2  # a second copy of a held id: drop it
RELEASE = 3  # ``released`` holds ids to admit now, in order, before this one (which passes)

TRADE_FOLLOW = 16  # a trade id within this many after a held one confirms it
TRADE_BEHIND = 10_000  # with no reference yet: held ids this far below a confirmed one go too
TRADE_AHEAD = 100_000  # held ids this far ahead of the stream may be real (a handover's overlap)
BOOK_JUMP = 10**9  # book update ids: held beyond this before a stream has a usual step
BOOK_STEP_FACTOR = 64.0  # ... and then beyond this many usual steps
BOOK_MIN_LIMIT = 1000.0
MAX_HELD = 8  # per symbol or book stream (a handover's overlap holds a few more than outliers)


class TradeIdGuard:
    """One symbol's trades: see the module docstring."""

    __slots__ = ("contested", "held", "quarantined", "released", "tracker")

    def __init__(self, tracker: AggIdTracker) -> None:
        self.tracker = tracker
        self.held: list[int] = []
        # held ids the reference stream went on past without confirming them: never released
        # (only a jump confirmed *before* the stream goes on is real), quarantined when the
        # stream reaches them, when it is far past them, or at a stop
        self.contested: set[int] = set()
        self.released: list[int] = []  # the caller drains it after RELEASE
        self.quarantined: list[int] = []  # the caller drains (counts, logs) it

    def offer(self, agg_id: int) -> int:
        tracker = self.tracker
        last = tracker.last_id
        held = self.held
        if not held:
            if last is not None and (agg_id <= last + 1 or (
                    agg_id > last + MAX_AGG_ID_JUMP and not tracker.resuming)):
                return PASS
            held.append(agg_id)
            return HOLD
        if last is not None and agg_id <= last + 1:
            if agg_id == last + 1:  # the stream goes on from the reference
                self._went_on(agg_id)
            return PASS
        if agg_id in held:
            return HELD_DUPLICATE
        best = -1
        for h in held:
            if 0 < agg_id - h <= TRADE_FOLLOW and h > best and h not in self.contested:
                best = h
        if best >= 0:
            self._confirm(best, last)
            return RELEASE
        if last is not None and agg_id > last + MAX_AGG_ID_JUMP and not tracker.resuming:
            return PASS
        held.append(agg_id)
        if len(held) > MAX_HELD:
            self._drop(held[0])
        return HOLD

    def _went_on(self, agg_id: int) -> None:
        """Held ids the stream has reached are its own (a handover's other socket) or outliers;
        held ids far ahead of it are outliers; the rest stay held, contested."""
        for h in list(self.held):
            if not 0 < h - agg_id <= TRADE_AHEAD:
                self._drop(h)
        self.contested.update(self.held)

    def _drop(self, h: int) -> None:
        self.held.remove(h)
        self.contested.discard(h)
        self.quarantined.append(h)

    def _confirm(self, c: int, last: int | None) -> None:
        for h in sorted(self.held):
            if h == c:
                continue
            if h < c and h not in self.contested and (
                    c - h <= TRADE_BEHIND if last is None else h > last):
                self.released.append(h)
            else:
                self.quarantined.append(h)
        self.released.append(c)
        self.held.clear()
        self.contested.clear()

    def give_up(self) -> None:
        """At a stop: nothing confirmed what is held. Quarantined, it is not lost for good: a
        restart resumes below it and backfills it."""
        self.quarantined.extend(self.held)
        self.held.clear()
        self.contested.clear()


class BookIdGuard:
    """One book stream's update ids. Their steps vary (the counter is the exchange's, not the
    stream's), so a step is suspect when it is far beyond the stream's usual one (an EWMA):
    ``BOOK_STEP_FACTOR`` times it, at least ``BOOK_MIN_LIMIT``; before there is one, beyond
    ``BOOK_JUMP``. Any later id up to ``BOOK_JUMP`` after a held one confirms it. These are
    whole states: a real one quarantined by mistake is superseded by the next message."""

    __slots__ = ("held", "limit", "quarantined", "released", "step", "tracker")

    def __init__(self, tracker: BookTracker) -> None:
        self.tracker = tracker
        self.held: list[int] = []
        self.released: list[int] = []
        self.quarantined: list[int] = []
        self.step = 0.0  # EWMA of the steps between admitted ids
        self.limit = float(BOOK_JUMP)  # a step beyond it is held

    def _stepped(self, d: int) -> None:
        step = self.step
        self.step = step = float(d) if step == 0.0 else step + (d - step) * 0.0625
        limit = step * BOOK_STEP_FACTOR
        self.limit = limit if limit > BOOK_MIN_LIMIT else BOOK_MIN_LIMIT

    def offer(self, update_id: int) -> int:
        last = self.tracker.last_u
        held = self.held
        if not held:
            if last >= 0:
                d = update_id - last
                if d <= self.limit:
                    if d > 0:
                        self._stepped(d)
                    return PASS
            held.append(update_id)
            return HOLD
        if update_id in held:
            return HELD_DUPLICATE
        best = -1
        for h in held:
            if 0 < update_id - h <= BOOK_JUMP and h > best:
                best = h
        if best >= 0:
            for h in sorted(held):
                if h != best:
                    (self.released if last < h < best else self.quarantined).append(h)
            self.released.append(best)
            held.clear()
            self._stepped(update_id - best)
            return RELEASE
        if last >= 0 and update_id - last <= self.limit:
            if update_id > last:  # the stream goes on from the reference
                self.quarantined.extend(held)
                held.clear()
                self._stepped(update_id - last)
            return PASS
        held.append(update_id)
        if len(held) > MAX_HELD:
            self.quarantined.append(held.pop(0))
        return HOLD

    def give_up(self) -> None:
        self.quarantined.extend(self.held)
        self.held.clear()
