"""The REST side of diff books: the depth snapshot request over ``restclient`` and what its
answers mean (``RateLimited`` for 429/418, ``ValueError`` for other failures), and the shared
weight budget it spends. No book logic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import msgspec

from .. import venues
from ..ingest.restclient import FetchFn, retry_after
from ..venues.base import Venue

FetchDepth = Callable[[str, int], Awaitable[Mapping[str, Any]]]


class SharedBudget(Protocol):
    """The exchange-wide weight budget every REST caller shares (``restclient.WeightBudget``)."""

    async def acquire(self, weight: int) -> None: ...
    def pause(self, seconds: float) -> None: ...
    def observe_used(self, headers: Mapping[str, str]) -> None: ...


class RateLimited(Exception):
    """The REST server said "too many requests" (429) or "banned" (418)."""

    def __init__(self, status: int, retry_after: float) -> None:
        super().__init__(f"HTTP {status}, retry after {retry_after:g} s")
        self.status = status
        self.retry_after = retry_after



def depth_fetcher(fetch: FetchFn, budget: SharedBudget | None = None,
                  venue: Venue | None = None) -> FetchDepth:
    """``fetch_depth`` over ``restclient``'s ``fetch``: 429/418 raise ``RateLimited``, other
    non-200 answers and non-JSON bodies raise ``ValueError``; the server's weight count
    (the used-weight header) is reported to the shared budget."""

    depth_request = (venue or venues.default()).depth_request

    async def fetch_depth(symbol: str, limit: int) -> Mapping[str, Any]:
        req = depth_request(symbol, limit)
        resp = await fetch(req.path, req.params)
        if budget is not None:
            budget.observe_used(resp.headers)
        if resp.status in (418, 429):
            raise RateLimited(resp.status, max(1.0, retry_after(resp, 60.0)))
        if resp.status != 200:
            raise ValueError(f"HTTP {resp.status}: {resp.body[:200]!r}")
        body = msgspec.json.decode(resp.body)
        if not isinstance(body, dict):
            raise ValueError("depth response is not a JSON object")
        return body

    return fetch_depth
