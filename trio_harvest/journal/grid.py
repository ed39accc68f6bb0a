"""How long after a group commit the next one is due: the journal's commit period, from how the
last commits and wake-ups went.

A frame appended just after a commit took its batch waits for the next commit: one period, or a
fifth more when no frame comes to wake the commit task once it is due (``Journal.run``), then
the commit itself (and a loop stall, which delays the commit task as much as the frame).
``fsync_ms`` is the promise, so the period leaves the rest of it for the commit. Half of it (0.6
of it with the fifth) is enough while commits take at most an eighth of it and the commit task
wakes on time; a commit here takes a few hundred microseconds. Once one commit is slower, or
one wake-up later, than that, the period falls back to a quarter for ``hold_s``, which leaves
0.7 of the promise for a slow fsync or a busy loop. Each commit costs the same fixed work (a
thread hand-over, an fsync, the loop's bookkeeping, each on a cold cache), so the half period
halves what the journal costs at a low message rate.

Pure: times are handed in (seconds; any monotonic clock); no trio, no I/O.
"""

from __future__ import annotations

HOLD_S = 30.0  # the quarter grid stays this long after the last slow commit or late wake-up


class CommitGrid:
    """The commit period for a ``fsync_s`` promise: half of it, or a quarter after trouble."""

    __slots__ = ("_fast", "_safe", "_slow_until", "hold_s", "limit")

    def __init__(self, fsync_s: float, hold_s: float = HOLD_S) -> None:
        self._fast = fsync_s / 2
        self._safe = fsync_s / 4
        self.limit = fsync_s / 8  # a commit or a late wake-up beyond this is trouble
        self.hold_s = hold_s
        self._slow_until = float("-inf")

    def committed(self, took_s: float, now: float) -> None:
        """A commit ended; it took ``took_s`` from its hand-over to durable."""
        if took_s > self.limit:
            self._slow_until = now + self.hold_s

    def woke(self, late_s: float, now: float) -> None:
        """The commit task woke ``late_s`` after its grid point (negative: woken early)."""
        if late_s > self.limit:
            self._slow_until = now + self.hold_s

    def period(self, now: float) -> float:
        """The period to the next grid point."""
        return self._safe if now < self._slow_until else self._fast
