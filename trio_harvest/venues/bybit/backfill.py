"""Backfill from ``/v5/market/recent-trade``, the only trade history Bybit's API serves.

It returns the last 1000 (linear) or 60 (spot) trades, newest first, with no cursor, id or time
parameter. So a hole is filled only when the answer reaches back to the last trade seen before
it; when the hole is older, the part the answer does not reach is ``unfillable`` and the gap row
says so and why. ``fill`` makes that decision from one answer. Pure: no trio, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..base import RestRequest
from .facts import RECENT_TRADE_PATH, Category
from .wire import RestTrade

UNFILLABLE = "unfillable"  # the gap reason of trades the venue can no longer serve


def recent_trades_request(cat: Category, symbol: str) -> RestRequest:
    """The one request there is: the last ``cat.recent_trades`` trades of ``symbol``."""
    return RestRequest(RECENT_TRADE_PATH, {"category": cat.category, "symbol": symbol,
                                           "limit": cat.recent_trades}, 1)


@dataclass(frozen=True, slots=True)
class Fill:
    """What one recent-trade answer does for a hole: ``rows`` to admit (oldest first: every
    trade after the last one seen; the caller's id window drops those it has), and, when the
    answer does not reach back that far, the ``unfillable`` span and why."""

    rows: list[RestTrade]
    unfillable: tuple[int, int] | None = None
    detail: str = ""

    @property
    def complete(self) -> bool:
        return self.unfillable is None


def fill(cat: Category, answer: Sequence[RestTrade], *, last_id: str | None, start_ms: int,
         end_ms: int) -> Fill:
    """The hole after trade ``last_id`` (at ``start_ms``; None: no trade seen yet), noticed at
    ``end_ms``, against one recent-trade ``answer`` (newest first)."""
    rows = sorted(answer, key=lambda t: (t.trade_ms, t.seq))
    if last_id is not None:
        for i, t in enumerate(rows):
            if t.trade_id == last_id:
                return Fill(rows[i + 1:])
    newer = [t for t in rows if t.trade_ms >= start_ms]
    if len(answer) < cat.recent_trades:  # the venue gave all it has: nothing older exists
        return Fill(newer)
    oldest = rows[0].trade_ms if rows else end_ms
    if oldest < start_ms:  # reaches back past the hole's start
        return Fill(newer)
    detail = (f"recent-trade serves only the last {cat.recent_trades} {cat.category} trades "
              f"and has no cursor; its oldest (T={oldest}) is newer than the hole's start "
              f"(T={start_ms}): the trades between cannot be fetched from the API")
    return Fill(newer, (start_ms, oldest), detail)
