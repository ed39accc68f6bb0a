"""Cumulative volume delta (CVD) over aggregated trades, with agg-id continuity.

Owns the sign rule (``m`` = is_buyer_maker true ⇒ the aggressor sold ⇒ negative) and the gap
rule (a break in ``agg_id`` continuity makes CVD unreliable from that trade on: a sticky flag).
Pure state; never does I/O.
"""

from __future__ import annotations

from typing import Literal

TradeStatus = Literal["ok", "gap", "duplicate"]


class CvdState:
    """CVD since harvester start (anchor 0). ``update`` returns what happened to one trade."""

    __slots__ = ("cvd", "duplicates", "gap", "gaps", "last_agg_id")

    def __init__(self, start: float = 0.0) -> None:
        self.cvd = start
        self.gap = False  # sticky: set by the first agg-id break, never cleared
        self.last_agg_id: int | None = None
        self.gaps = 0
        self.duplicates = 0

    def update(self, agg_id: int, qty: float, is_buyer_maker: bool) -> TradeStatus:
        """Apply one trade. A trade whose ``agg_id`` is not after the last one is a duplicate and
        is ignored (returns ``"duplicate"``); one that skips ids sets the gap flag (``"gap"``)."""
        last = self.last_agg_id
        status: TradeStatus = "ok"
        if last is not None:
            if agg_id <= last:
                self.duplicates += 1
                return "duplicate"
            if agg_id != last + 1:
                self.gap = True
                self.gaps += 1
                status = "gap"
        self.last_agg_id = agg_id
        self.cvd += -qty if is_buyer_maker else qty
        return status


def signed_qty(qty: float, is_buyer_maker: bool) -> float:
    """s·q with s = -1 when the buyer was the maker (aggressor sold), +1 otherwise."""
    return -qty if is_buyer_maker else qty
