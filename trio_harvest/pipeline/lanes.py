"""Lanes: one bounded trio memory channel per (kind, symbol), whose capacity is the emergency
watermark.

Owns the watermark policy at the producer side: crossing the high watermark wakes rotation for
that lane; at capacity, authoritative kinds wait (backpressure, and rotation is woken to flush)
while preview kinds spill to a bounded spill list that rotation sends to the dead letter (as does
an authoritative row whose waiting producer was cancelled). Never does I/O and never holds more
than ``capacity`` rows (plus ``capacity`` spilled preview rows, plus one per cancelled producer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import trio

from ..kinds import Row, is_authoritative

WakeFn = Callable[["Lane"], None]


@dataclass(slots=True)
class LaneStats:
    accepted: int = 0
    spilled: int = 0
    dropped: int = 0  # preview rows lost because both the lane and its spill list were full
    blocked: int = 0  # times an authoritative producer had to wait
    peak: int = 0


@dataclass(eq=False, slots=True)
class Lane:
    kind: str
    symbol: str
    high: int
    capacity: int
    wake: WakeFn
    authoritative: bool = False
    level: int = 0
    spill: list[Row] = field(default_factory=list)
    stats: LaneStats = field(default_factory=LaneStats)
    # journal checkpoint (issue 9): ``cursor[0]`` is the journal seq of the frame being routed
    # (shared by all lanes); ``first_seq`` that seq when the oldest pending row arrived (-1: none)
    cursor: list[int] = field(default_factory=lambda: [0])
    first_seq: int = -1
    _send: trio.MemorySendChannel[Row] = field(init=False)
    _recv: trio.MemoryReceiveChannel[Row] = field(init=False)

    def __post_init__(self) -> None:
        self._send, self._recv = trio.open_memory_channel[Row](self.capacity)
        self.authoritative = is_authoritative(self.kind)

    def put_nowait(self, row: Row) -> bool:
        """Buffer ``row`` if there is room; True on success. Wakes rotation on the high mark."""
        try:
            self._send.send_nowait(row)
        except trio.WouldBlock:
            return False
        self.level += 1
        self.stats.accepted += 1
        if self.first_seq < 0:  # journal checkpoint (issue 9)
            self.first_seq = self.cursor[0]
        if self.level == self.high:
            self.wake(self)
        return True

    async def put(self, row: Row) -> None:
        """Authoritative path: never drops. At capacity, wake rotation and wait for room."""
        if self.put_nowait(row):
            return
        self.stats.blocked += 1
        self.wake(self)
        seq = self.cursor[0]  # journal checkpoint (issue 9): the frame's seq, before we wait
        try:
            await self._send.send(row)
        except BaseException:
            # Cancelled while waiting (a stop, a reconnect): the row was already accepted
            # upstream (e.g. its agg_id counted as seen), so it must not vanish. The spill list
            # goes to the dead letter with the next flush, or with the final one.
            self.spill.append(row)
            self.stats.spilled += 1
            self.hold(seq)
            self.wake(self)
            raise
        self.level += 1
        self.stats.accepted += 1
        self.hold(seq)

    def offer(self, row: Row) -> None:
        """Preview path: never blocks. At capacity the row spills (to the dead letter, via
        rotation); if the spill list is full too, it is counted as dropped."""
        if self.put_nowait(row):
            return
        if len(self.spill) < self.capacity:
            self.spill.append(row)
            self.stats.spilled += 1
            if len(self.spill) == 1:
                self.wake(self)
        else:
            self.stats.dropped += 1

    def drain(self) -> list[Row]:
        """Take what is buffered now (not what blocked producers add while we take it)."""
        n = self.level
        rows: list[Row] = []
        append = self._recv.receive_nowait
        for _ in range(n):
            try:
                rows.append(append())
            except trio.WouldBlock:  # pragma: no cover - level and channel agree by construction
                break
        self.level -= len(rows)
        if n > self.stats.peak:
            self.stats.peak = n
        return rows

    def hold(self, seq: int) -> None:
        """Journal checkpoint (issue 9): a row from the frame with journal seq ``seq`` is pending."""
        if self.first_seq < 0 or seq < self.first_seq:
            self.first_seq = seq

    def drained(self) -> None:
        """Journal checkpoint (issue 9), after a drain (whose batch now holds ``first_seq`` in
        rotation): nothing pending -> the lane holds nothing; else it keeps it (conservative)."""
        if not self.pending:
            self.first_seq = -1

    def take_spill(self) -> list[Row]:
        spilled, self.spill = self.spill, []
        return spilled

    @property
    def pending(self) -> int:
        return self.level + len(self.spill)

    @property
    def buffered(self) -> int:
        """Rows in the channel right now, as trio counts them (for tests and health)."""
        return self._send.statistics().current_buffer_used


class Lanes:
    """All lanes of the app, created on first use per (kind, symbol)."""

    def __init__(self, watermarks: dict[str, tuple[int, int]], wake: WakeFn) -> None:
        self._watermarks = watermarks
        self._wake = wake
        self._lanes: dict[tuple[str, str], Lane] = {}
        self.cursor = [0]  # journal checkpoint (issue 9): the journal writes the seq here

    def set_wake(self, wake: WakeFn) -> None:
        self._wake = wake
        for lane in self._lanes.values():
            lane.wake = wake

    def get(self, kind: str, symbol: str) -> Lane:
        lane = self._lanes.get((kind, symbol))
        if lane is None:
            high, emergency = self._watermarks[kind]
            lane = Lane(kind, symbol, high, emergency, self._wake, cursor=self.cursor)
            self._lanes[(kind, symbol)] = lane
        return lane

    def offer(self, kind: str, row: Row) -> None:
        """Preview emit: ``row[1]`` is the symbol for every preview schema."""
        self.get(kind, row[1]).offer(row)

    def __iter__(self) -> Iterator[Lane]:
        return iter(list(self._lanes.values()))

    def __len__(self) -> int:
        return len(self._lanes)

    def held_seqs(self) -> list[int]:
        """Journal checkpoint (issue 9): the seq each authoritative lane holds (-1: none)."""
        return [lane.first_seq for lane in self._lanes.values() if lane.authoritative]

    def total_pending(self) -> int:
        return sum(lane.pending for lane in self._lanes.values())
