"""Error counts that fade: a burst an hour ago is not a failure now.

Owns the arithmetic of exponentially decaying counts (each event adds to the count, the count
halves every ``half_life`` seconds) and the conversion of the app's ever-growing counters into
them. Pure: time is passed in, so it is tested without a clock. Never resets anyone's counters.
"""

from __future__ import annotations

import math


class DecayingCount:
    """A count of events whose weight halves every ``half_life`` seconds. With a ``cap`` the count
    never exceeds it, so however long an outage lasted, it is forgotten within
    ``half_life * log2(cap / threshold)`` of its end."""

    __slots__ = ("_at", "_value", "cap", "half_life")

    def __init__(self, half_life: float, cap: float = math.inf) -> None:
        if not half_life > 0:
            raise ValueError(f"half_life must be positive, got {half_life!r}")
        self.half_life = half_life
        self.cap = cap
        self._value = 0.0
        self._at: float | None = None

    def value(self, now: float) -> float:
        if self._at is None or self._value == 0.0:
            return 0.0
        return self._value * math.exp2(-max(0.0, now - self._at) / self.half_life)

    def add(self, n: float, now: float) -> None:
        self._value = min(self.cap, self.value(now) + n)
        self._at = now


class DecayingCounter(DecayingCount):
    """Feeds the growth of a cumulative counter (e.g. ``ConnectionStats.failures``) into a
    decaying count. A counter that went *down* (it was replaced) counts from its new value."""

    __slots__ = ("_last",)

    def __init__(self, half_life: float, cap: float = math.inf, baseline: float = 0.0) -> None:
        super().__init__(half_life, cap)
        self._last = baseline

    def update(self, cumulative: float, now: float) -> float:
        """Take the counter's current value; return the decayed count after it."""
        grown = cumulative - self._last if cumulative >= self._last else cumulative
        self._last = cumulative
        if grown:
            self.add(grown, now)
        return self.value(now)
