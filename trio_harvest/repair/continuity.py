"""Continuity and deduplication of one symbol's trade ids and one stream's book ids: the core's
implementation of a venue's ``CONTIGUOUS`` trade rule (``venues.base``: each trade id is the
previous one + 1, so a jump proves a loss).

Owns the decision, per record, between *new*, *duplicate* and *new after a break*, in O(1) and
bounded memory. A trade tracker keeps the highest ``agg_id`` seen and the short list of id ranges
known to be missing below it (opened by a break, closed by late frames or REST backfill): an id
at or below the highest is new only if it is inside a missing range, so a duplicated frame, a
duplicated id or the overlap of a connection handover never yields a second row, and no set of
seen ids is needed. Ids that were admitted but lost on the way to disk can be made missing
again (``reopen``) for backfill. A book tracker keeps the last update id (``u``) of a stream.
Lone outlier ids are kept away from both by ``outliers.py``. Pure: no trio, no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCEPT = 0  # new, in order (or a late id that closes part of a missing range)
DUPLICATE = 1  # seen before: drop it
BREAK = 2  # new, after a jump: the ids in between are missing (see ``last_break``)
IMPLAUSIBLE = 3  # a jump no exchange makes (a corrupt frame): not admitted, not remembered

# Busiest symbols see a few million aggregates a day; a jump beyond these bounds is a bad frame,
# and admitting it would make every later (real) id look like a duplicate.
MAX_AGG_ID_JUMP = 50_000_000
MAX_BOOK_ID_JUMP = 10**13

MAX_OPEN_RANGES = 256  # missing ranges kept per symbol; beyond it the oldest is given up


@dataclass(frozen=True, slots=True)
class Break:
    first_id: int  # first missing id
    last_id: int  # last missing id
    start_ms: int  # trade time of the trade before the gap
    end_ms: int  # trade time of the trade after the gap

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


class AggIdTracker:
    """One symbol's ``agg_id`` continuity. Ids increase by one per aggregate on the exchange."""

    __slots__ = ("abandoned", "duplicates", "last_break", "last_id", "last_ms", "late", "missing",
                 "resuming")

    def __init__(self) -> None:
        self.last_id: int | None = None
        self.last_ms = 0
        self.missing: list[list[int]] = []  # [lo, hi] inclusive, ascending, disjoint
        self.last_break: Break | None = None
        self.duplicates = 0
        self.late = 0  # ids that arrived after a break was opened and closed part of it
        self.abandoned: list[tuple[int, int]] = []  # ranges dropped by the bound (caller drains)
        self.resuming = False  # last_id comes from disk (a restart), not from this stream

    def admit(self, agg_id: int, ts_ms: int) -> int:
        """Classify one trade from the stream (``ACCEPT``, ``DUPLICATE`` or ``BREAK``)."""
        last = self.last_id
        if last is None or agg_id == last + 1:
            self.last_id = agg_id
            self.last_ms = ts_ms
            return ACCEPT
        if (agg_id > last + MAX_AGG_ID_JUMP and not self.resuming) or agg_id < 0:
            return IMPLAUSIBLE
        self.resuming = False
        if agg_id > last:
            self.last_break = Break(last + 1, agg_id - 1, self.last_ms, ts_ms)
            self._open(last + 1, agg_id - 1)
            self.last_id = agg_id
            self.last_ms = ts_ms
            return BREAK
        if self.missing and self._take(agg_id):
            self.late += 1
            return ACCEPT
        self.duplicates += 1
        return DUPLICATE

    def resume(self, last_id: int, last_ms: int) -> None:
        """Continue from the last id already written (a restart): the first live trade after it
        opens a break for everything the harvester missed while it was down, however long."""
        if self.last_id is None:
            self.last_id, self.last_ms, self.resuming = last_id, last_ms, True

    def fill(self, agg_id: int) -> bool:
        """A trade from REST backfill: True if it was missing (it is not any more)."""
        return bool(self.missing) and self._take(agg_id)

    def missing_in(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The missing ranges within ``lo..hi`` (clipped), ascending."""
        return [(max(a, lo), min(b, hi)) for a, b in self.missing if a <= hi and b >= lo]

    def close(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Give up on whatever is still missing within ``lo..hi``: return it and forget it (a
        late copy of one of those ids will count as a duplicate)."""
        out: list[tuple[int, int]] = []
        keep: list[list[int]] = []
        for a, b in self.missing:
            if b < lo or a > hi:
                keep.append([a, b])
                continue
            out.append((max(a, lo), min(b, hi)))
            if a < lo:
                keep.append([a, lo - 1])
            if b > hi:
                keep.append([hi + 1, b])
        self.missing = keep
        return out

    def reopen(self, lo: int, hi: int) -> None:
        """Ids ``lo..hi`` were admitted but never reached the disk (their write and its dead
        letter failed): missing again, so backfill may fetch them (once)."""
        if self.last_id is None or lo > self.last_id:
            return
        hi = min(hi, self.last_id)
        for a, b in self.missing:
            if a <= hi and b >= lo:
                return  # overlaps what is already missing: leave it (never a second copy)
        i = 0
        while i < len(self.missing) and self.missing[i][0] < lo:
            i += 1
        self.missing.insert(i, [lo, hi])
        if len(self.missing) > MAX_OPEN_RANGES:
            a, b = self.missing.pop(0)
            self.abandoned.append((a, b))

    @property
    def missing_ids(self) -> int:
        return sum(b - a + 1 for a, b in self.missing)

    def _open(self, lo: int, hi: int) -> None:
        self.missing.append([lo, hi])
        if len(self.missing) > MAX_OPEN_RANGES:
            a, b = self.missing.pop(0)
            self.abandoned.append((a, b))

    def _take(self, agg_id: int) -> bool:
        ranges = self.missing
        for i, r in enumerate(ranges):
            lo, hi = r
            if agg_id < lo:
                return False
            if agg_id > hi:
                continue
            if lo == hi:
                del ranges[i]
            elif agg_id == lo:
                r[0] = lo + 1
            elif agg_id == hi:
                r[1] = hi - 1
            else:
                r[1] = agg_id - 1
                ranges.insert(i + 1, [agg_id + 1, hi])
            return True
        return False


class BookTracker:
    """One book stream's update ids (``u``): a message that is not newer than the last one is a
    duplicate (a duplicated frame, or the overlap of a handover). Partial depth and quote rows
    are whole states, so an id jump loses nothing that a later row does not carry; the chain of
    diff events is checked where the local book is kept (the venue's book rule)."""

    __slots__ = ("duplicates", "last_u")

    def __init__(self) -> None:
        self.last_u = -1
        self.duplicates = 0

    def admit(self, update_id: int) -> bool:
        """True when the message is newer than every one before it (and plausibly so)."""
        if self.last_u >= 0 and update_id > self.last_u + MAX_BOOK_ID_JUMP:
            self.duplicates += 1
            return False
        if update_id <= self.last_u:
            self.duplicates += 1
            return False
        self.last_u = update_id
        return True
