"""The trade rule of Bybit: ids prove no continuity, so trades are deduplicated by id only.

Linear ids are UUIDs; spot ids are numeric strings whose contiguity Bybit does not document.
Neither is a gap detector (``trade_continuity`` is "none"): a hole shows only as a disconnect or
a stall. What this module owns instead:

- ``RecentIds``: the ids of the last ``capacity`` trades of one symbol, so a duplicated frame,
  a replayed message or a recent-trade answer overlapping the stream never yields a second row
  (the capacity exceeds the largest recent-trade answer, 1000);
- ``IdSteps``: a measurement, never a rule: how often a numeric id is the previous one + 1.
  Spot contiguity stays unclaimed until data says so.

Pure: no trio, no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

CAPACITY = 4096


@dataclass(slots=True)
class RecentIds:
    capacity: int = CAPACITY
    duplicates: int = 0
    _order: deque[str] = field(default_factory=deque)
    _seen: set[str] = field(default_factory=set)

    def admit(self, trade_id: str) -> bool:
        """True for an id not among the last ``capacity`` admitted (then remembered)."""
        seen = self._seen
        if trade_id in seen:
            self.duplicates += 1
            return False
        seen.add(trade_id)
        order = self._order
        order.append(trade_id)
        if len(order) > self.capacity:
            seen.discard(order.popleft())
        return True

    def __contains__(self, trade_id: str) -> bool:
        return trade_id in self._seen

    def __len__(self) -> int:
        return len(self._order)


@dataclass(slots=True)
class IdSteps:
    """Consecutive numeric ids: how many stepped by exactly +1, how many did not."""

    last: int | None = None
    plus_one: int = 0
    other: int = 0

    def observe(self, trade_id: int) -> None:
        if self.last is not None:
            if trade_id == self.last + 1:
                self.plus_one += 1
            else:
                self.other += 1
        self.last = trade_id

    @property
    def contiguous_so_far(self) -> bool:
        """Every step seen was +1 (an observation, not a guarantee)."""
        return self.plus_one > 0 and self.other == 0
