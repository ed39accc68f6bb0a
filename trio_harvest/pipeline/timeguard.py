"""Event times that do not fit the stream: one stream's frames judged against its own recent times.

Owns the decision, per frame, whether its event time is plausible. Compared is the frame's
*receipt lag* (``recv_ms - E``: latency plus the offset between the exchange's clock and ours),
never the event time against the local clock, so a host whose clock is off harvests normally and
a long disconnect (both times move on together) is no jump. A frame whose lag differs from the
stream's reference by more than ``tolerance_ms`` is a *suspect*: held, not routed. Evidence
decides what happens to suspects:

- the next frame fits the reference: the suspects were outliers and are quarantined;
- ``confirm`` suspects agree with each other (within the tolerance): the clock really moved (a
  stepped host clock, say); the reference moves to them and they are released, in order;
- before any reference exists (a stream's first frames), two frames that agree make it, so a
  lone outlier as the very first frame never becomes the reference.

A frame that fits is released at once: the hot path costs a subtraction and two comparisons
(``fits``); the held list is short and bounded (the oldest suspect goes first). Pure: no trio,
no I/O, no clock.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

TOLERANCE_MS = 600_000  # 10 min: far beyond latency spikes and clock corrections, far below a day
CONFIRM = 3  # agreeing suspects that move an existing reference
FIRST = 2  # agreeing frames that make the first reference
MAX_HELD = 8


class TimeGuard(Generic[T]):
    """One stream's reference lag and its held suspects (``T``: whatever the caller routes)."""

    __slots__ = ("held", "quarantined", "reanchored", "ref", "tolerance")

    def __init__(self, tolerance_ms: int = TOLERANCE_MS) -> None:
        self.ref: int | None = None
        self.tolerance = tolerance_ms
        self.held: list[tuple[int, T]] = []
        self.quarantined: list[tuple[int, T]] = []  # the caller drains (counts, logs) them
        self.reanchored = 0

    def fits(self, lag: int) -> bool:
        """The hot path: True (and the reference follows) when ``lag`` fits and nothing is held."""
        ref = self.ref
        if ref is not None and not self.held and -self.tolerance <= lag - ref <= self.tolerance:
            self.ref = lag
            return True
        return False

    def judge(self, lag: int, item: T) -> list[T]:
        """The slow path, after ``fits`` said no: what to route now (possibly nothing)."""
        tol = self.tolerance
        ref = self.ref
        if ref is not None and -tol <= lag - ref <= tol:
            # the stream goes on as before: whatever was held did not fit it
            self.quarantined.extend(self.held)
            self.held = []
            self.ref = lag
            return [item]
        self.held.append((lag, item))
        need = FIRST if ref is None else CONFIRM
        agree = [held for held in self.held if -tol <= held[0] - lag <= tol]
        if len(agree) >= need:
            if ref is not None:
                self.reanchored += 1
            self.quarantined.extend(h for h in self.held if all(h is not a for a in agree))
            self.held = []
            self.ref = lag
            return [h for _, h in agree]
        if len(self.held) > MAX_HELD:
            self.quarantined.append(self.held.pop(0))
        return []

    def release(self) -> list[T]:
        """At a stop: with no reference yet, the largest group of held frames that agree with
        each other is released (a lone frame has nothing against it) and the rest quarantined;
        suspects that disagree with an existing reference are quarantined."""
        held, self.held = self.held, []
        if self.ref is not None or not held:
            self.quarantined.extend(held)
            return []
        tol = self.tolerance
        best = max(held, key=lambda c: sum(-tol <= h[0] - c[0] <= tol for h in held))
        keep = [h for h in held if -tol <= h[0] - best[0] <= tol]
        self.quarantined.extend(h for h in held if all(h is not k for k in keep))
        return [h for _, h in keep]
