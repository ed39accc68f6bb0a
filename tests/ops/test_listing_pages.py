"""A venue that pages its listing (Bybit's instruments-info with ``nextPageCursor``): the fetch
follows every page, so a listing of more than one page is read whole."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from trio_harvest.ingest.restclient import FetchFn, Params, RestResponse
from trio_harvest.ops.listing import fetch_listing
from trio_harvest.venues.bybit.adapter import LINEAR


async def test_a_paged_listing_is_followed_to_its_last_page() -> None:
    names = [f"C{i}USDT" for i in range(1200)]
    asked: list[str] = []

    @asynccontextmanager
    async def open_fetch(url: str) -> AsyncIterator[FetchFn]:
        async def fetch(path: str, params: Params) -> RestResponse:
            cursor = str(params.get("cursor", "0"))
            asked.append(cursor)
            start = int(cursor)
            page = names[start : start + 500]  # the venue's own page size, whatever is asked
            nxt = str(start + 500) if start + 500 < len(names) else ""
            body = {"retCode": 0, "result": {"category": "linear", "nextPageCursor": nxt,
                                             "list": [{"symbol": s, "status": "Trading"}
                                                      for s in page]}}
            return RestResponse(200, {}, json.dumps(body).encode())
        yield fetch

    listed = await fetch_listing("http://x", open_fetch, LINEAR)
    assert list(listed) == names and asked == ["0", "500", "1000"]
