"""Losses that leave a record: authoritative rows that neither their write nor the dead letter
took (a full disk) become ``gaps`` rows, and lost trades go back to REST backfill.

Owns the bounded memory of such losses between the failure and the next write that succeeds:
one entry per (symbol, kind) with its time span, row count and the lost ``agg_id`` ranges, plus
lost ``gaps`` rows themselves (up to ``MAX_LOST_GAPS``). Writing the record while the disk is
still full would only lose it too, so ``emit`` waits until ``due`` (a write succeeded since the
last loss). Pure: no trio, no I/O; ``reopen`` (make ids missing again and queue a backfill) is
injected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..gaps import WRITE_LOST, gap_row
from ..kinds import GAPS, ORDERBOOK, PRICES, Row
from .continuity import MAX_OPEN_RANGES

MAX_LOST_GAPS = 10_000  # lost gaps rows kept to be written again once writes succeed
_AGG_ID = 4  # kinds.PRICES_SCHEMA

Reopen = Callable[[str, int, int, int, int], None]  # symbol, lo, hi, start_ms, end_ms


@dataclass(slots=True)
class Loss:
    start: int
    end: int
    rows: int
    error: str
    ranges: list[list[int]] = field(default_factory=list)  # lost agg ids, [lo, hi] inclusive
    unrecoverable: int = 0  # lost trades beyond the bound on ranges


class Losses:
    def __init__(self, reopen: Reopen) -> None:
        self._reopen = reopen
        self._losses: dict[tuple[str, str], Loss] = {}
        self._lost_gaps: list[Row] = []
        self.writes_done: Callable[[], int] = lambda: 0  # files written so far (the app sets it)
        self._writes_at_loss = 0
        self.recorded = 0  # gaps rows written for losses

    @property
    def pending(self) -> bool:
        return bool(self._losses or self._lost_gaps)

    def due(self) -> bool:
        return self.pending and self.writes_done() > self._writes_at_loss

    def on_lost(self, kind: str, symbol: str, rows: list[Row], error: str) -> None:
        if not rows:
            return
        if kind == GAPS:  # the record of an earlier gap or loss: kept to be written again
            room = MAX_LOST_GAPS - len(self._lost_gaps)
            self._lost_gaps.extend(rows[:max(0, room)])
        elif kind in (PRICES, ORDERBOOK):  # derived kinds are recomputed, not recorded
            ts = [r[0] for r in rows]
            loss = self._losses.get((symbol, kind))
            if loss is None:
                loss = self._losses[(symbol, kind)] = Loss(min(ts), max(ts), 0, error)
            loss.start, loss.end = min(loss.start, *ts), max(loss.end, *ts)
            loss.rows += len(rows)
            if kind == PRICES:
                self._add_ids(loss, sorted(r[_AGG_ID] for r in rows))
        else:
            return
        self._writes_at_loss = self.writes_done()

    @staticmethod
    def _add_ids(loss: Loss, ids: list[int]) -> None:
        ranges = loss.ranges
        for agg_id in ids:
            if ranges and ranges[-1][0] - 1 <= agg_id <= ranges[-1][1] + 1:
                ranges[-1][0] = min(ranges[-1][0], agg_id)
                ranges[-1][1] = max(ranges[-1][1], agg_id)
            elif len(ranges) < MAX_OPEN_RANGES:
                ranges.append([agg_id, agg_id])
            else:
                loss.unrecoverable += 1

    def emit(self) -> list[Row]:
        """The gaps rows to write now (lost ones again, and one per loss); lost trade ids are
        reopened for backfill."""
        losses, self._losses = self._losses, {}
        out, self._lost_gaps = self._lost_gaps, []
        for (symbol, kind), loss in losses.items():
            detail = (f"{loss.rows} {kind} rows lost: their write and dead letter failed "
                      f"({loss.error[:160]})")
            if kind == PRICES:
                for lo, hi in sorted(loss.ranges):
                    self._reopen(symbol, lo, hi, loss.start, loss.end)
                detail += "; their agg ids go to backfill"
                if loss.unrecoverable:
                    detail += f" (except {loss.unrecoverable} beyond {MAX_OPEN_RANGES} ranges)"
            out.append(gap_row(symbol, f"{symbol.lower()}@{kind}", loss.start, loss.end,
                               WRITE_LOST, detail))
            self.recorded += 1
        return out
