"""Backfill of a hole in a symbol's aggregate trades: the REST requests, their paging and weight.

Owns the request for a missing id range (``GET <prefix>/aggTrades?symbol=&fromId=&limit=``,
``fromId`` inclusive, at most one page), the next request after a page came back (from the page's
last id + 1, until the range is covered or the venue has nothing more), and the weight each
request costs against the venue's per-minute budget. Pure: the caller sends the requests, spends
the weight and reads ``X-MBX-USED-WEIGHT-1M`` (``facts.used_weight``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .facts import WireFacts


@dataclass(frozen=True, slots=True)
class Request:
    """One REST request: path, query parameters and the weight it costs."""

    path: str
    params: tuple[tuple[str, str | int], ...]
    weight: int

    @property
    def query(self) -> dict[str, str | int]:
        return dict(self.params)


def snapshot_request(facts: WireFacts, symbol: str, limit: int | None = None) -> Request:
    """``GET <prefix>/depth?symbol=&limit=`` (default: the venue's resync depth) and its weight."""
    n = facts.snapshot_limit if limit is None else limit
    return Request(facts.depth_path, (("symbol", symbol), ("limit", n)), facts.depth_weight(n))


def first_request(facts: WireFacts, symbol: str, first_id: int, last_id: int) -> Request:
    """The first page of the missing ids ``first_id..last_id`` (inclusive)."""
    limit = max(1, min(facts.agg_trades_page, last_id - first_id + 1))
    return Request(facts.agg_trades_path,
                   (("symbol", symbol), ("fromId", first_id), ("limit", limit)),
                   facts.agg_trades_weight)


def next_request(facts: WireFacts, symbol: str, page_ids: Sequence[int],
                 last_id: int) -> Request | None:
    """The request after a page whose trades had ``page_ids`` (ascending): None when the range
    is covered, or when the page was empty or did not move on (the venue has no more)."""
    if not page_ids or page_ids[-1] >= last_id:
        return None
    return first_request(facts, symbol, page_ids[-1] + 1, last_id)


def pages_needed(facts: WireFacts, first_id: int, last_id: int) -> int:
    """How many requests a hole of ``first_id..last_id`` costs at the least."""
    n = last_id - first_id + 1
    return max(0, -(-n // facts.agg_trades_page))


def weight_needed(facts: WireFacts, first_id: int, last_id: int) -> int:
    """The request weight a hole costs at the least (``pages_needed`` x the aggTrades weight)."""
    return pages_needed(facts, first_id, last_id) * facts.agg_trades_weight


def fits(facts: WireFacts, used: int, weight: int, limit: int | None = None) -> bool:
    """Whether ``weight`` more fits this minute after ``used`` (the header's count) under
    ``limit`` (default: the venue's documented limit)."""
    return used + weight <= (facts.weight_limit if limit is None else limit)
