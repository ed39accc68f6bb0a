"""Carrying out a ``FaultPlan`` on the simulator's events and frames (the ``faults.Faults`` seam).

Owns the per-event faults (aggTrades skipped or sent twice, diff-depth events dropped) and the
per-frame faults (junk frames, truncated frames, oversize frames, duplicated frames, and silence
for a stalled connection), decided by one seeded ``random.Random``, and counts what it did.
The trade tape is written by the model before this runs, so a skipped trade is still served by
REST. Pure: no trio, no I/O; time for stalls comes from an injected clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .events import AggTrade, BookDepth, Event
from .faultplan import FaultPlan

JUNK = (
    "\x00\x01 not json at all",
    '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":',
    "[1,2,3]",
    '{"stream":7,"data":null}',
    '{"result":"unexpected","id":"x"}',
    "\ufffd\ufffd garbled",
)


@dataclass
class FaultStats:
    """What the injector did, by fault (for ``sim_main``'s report and for tests)."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped_ids: dict[str, list[int]] = field(default_factory=dict)  # symbol -> agg ids (bounded)

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def render(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"


class FaultInjector:
    """Implements ``faults.Faults`` for one ``FaultPlan``."""

    def __init__(self, plan: FaultPlan, *, now: Callable[[], float], seed: int = 1) -> None:
        self.plan = plan
        self._rng = random.Random(f"trio_harvest.sim.faults/{seed if plan.seed is None else plan.seed}")
        self._now = now
        self.stats = FaultStats()
        self._stalled: dict[int, float] = {}  # connection id -> silent until (clock time)
        self._oversize: str | None = None

    # -- connection faults (driven by disrupt.py) -------------------------------------------

    def stall(self, conn_id: int, seconds: float) -> None:
        """Send nothing to ``conn_id`` for ``seconds`` (its frames are lost, the socket stays)."""
        self._stalled[conn_id] = self._now() + seconds
        self.stats.add("stalls")

    def stalled(self, conn_id: int) -> bool:
        until = self._stalled.get(conn_id)
        if until is None:
            return False
        if self._now() < until:
            return True
        del self._stalled[conn_id]
        return False

    # -- faults.Faults ----------------------------------------------------------------------

    def on_events(self, events: list[Event]) -> list[Event]:
        plan = self.plan
        if not plan.event_faults:
            return events
        rnd = self._rng.random
        out: list[Event] = []
        for ev in events:
            if type(ev) is AggTrade:
                if plan.skip and rnd() < plan.skip:
                    self.stats.add("skipped_trades")
                    ids = self.stats.skipped_ids.setdefault(ev.symbol, [])
                    if len(ids) < 100_000:
                        ids.append(ev.agg_id)
                    continue
                out.append(ev)
                if plan.dup_id and rnd() < plan.dup_id:
                    self.stats.add("duplicated_trades")
                    out.append(ev)
                continue
            if type(ev) is BookDepth and ev.diff and plan.drop_diff and rnd() < plan.drop_diff:
                self.stats.add("dropped_diff_events")
                continue
            out.append(ev)
        return out

    def on_frame(self, conn_id: int, stream: str, frame: str) -> Sequence[str]:
        if self._stalled and self.stalled(conn_id):
            return ()
        plan = self.plan
        if not plan.frame_faults:
            return (frame,)
        rnd = self._rng.random
        out: list[str] = []
        if plan.garbage and rnd() < plan.garbage:
            self.stats.add("garbage_frames")
            out.append(self._rng.choice(JUNK))
        if plan.oversize and rnd() < plan.oversize:
            self.stats.add("oversize_frames")
            out.append(self._oversize_frame(stream))
        if plan.truncate and rnd() < plan.truncate:
            self.stats.add("truncated_frames")
            out.append(frame[: max(1, len(frame) // 2)])
            return out
        out.append(frame)
        if plan.dup_frame and rnd() < plan.dup_frame:
            self.stats.add("duplicated_frames")
            out.append(frame)
        return out

    def _oversize_frame(self, stream: str) -> str:
        if self._oversize is None:
            head = f'{{"stream":"{stream}","data":{{"e":"padding","x":"'
            pad = max(0, self.plan.oversize_bytes - len(head) - 3)
            self._oversize = head + "x" * pad + '"}}'
        return self._oversize
