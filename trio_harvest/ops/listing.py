"""The venue's listing over REST (the venue's ``listing_request``): the start-up check of the
configured symbols, and one fetch of ``symbol -> status`` for resolving and following a universe.

Owns the request (one, weight 1, bounded in time; a venue that pages its listing, Bybit,
names each next page: ``next_listing_request``) and the start-up warning: a symbol the venue
does not list gets one warning, because a venue may answer a stream of an unknown symbol with
silence, not an error. The check is best effort (an exchange that cannot be reached is logged at
DEBUG: the connections report that loudly enough) and never refuses a symbol; ``fetch_statuses``
raises ``ListingError`` with one readable line, for its caller to decide.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import trio

from .. import venues
from ..hints import plural
from ..ingest.restclient import FetchFn, RestError, http_fetch
from ..symbols import unlisted
from ..venues.base import Listed, RestRequest, Venue

log = logging.getLogger("trio_harvest.symbols")

TIMEOUT = 15.0
MAX_PAGES = 50  # of a paged listing (Bybit's linear: 2 pages of 500 today)

FetchFactory = Callable[[str], AbstractAsyncContextManager[FetchFn]]


class ListingError(Exception):
    """The listing could not be had (unreachable, an error status, not a listing)."""


async def fetch_statuses(rest_url: str, open_fetch: FetchFactory = http_fetch,
                         venue: Venue | None = None) -> dict[str, str]:
    """``symbol -> status`` as ``rest_url`` lists them; ``ListingError`` saying why not (also
    when no answer comes within TIMEOUT)."""
    listed = await fetch_listing(rest_url, open_fetch, venue)
    return {s: entry.status for s, entry in listed.items()}


async def fetch_listing(rest_url: str, open_fetch: FetchFactory = http_fetch,
                        venue: Venue | None = None) -> dict[str, Listed]:
    """``symbol -> Listed`` (status, listing and delivery times) as ``rest_url`` lists them;
    ``ListingError`` as ``fetch_statuses``."""
    venue = venue or venues.default()
    req: RestRequest | None = venue.listing_request()
    assert req is not None
    PATH = req.path
    # a venue that pages its listing names the next page's request (a cursor), None after the last
    next_page = getattr(venue, "next_listing_request", None)
    listed: dict[str, Listed] = {}
    with trio.move_on_after(TIMEOUT):
        try:
            async with open_fetch(rest_url) as fetch:
                for _ in range(MAX_PAGES):
                    if req is None:
                        break
                    resp = await fetch(PATH, req.params)
                    if resp.status != 200:
                        raise ListingError(f"{rest_url}{PATH} answered HTTP {resp.status}")
                    try:
                        doc = json.loads(resp.body)
                        listed.update(venue.listing(doc))
                    except (ValueError, AttributeError):
                        raise ListingError(f"{rest_url}{PATH} did not answer with a listing") \
                            from None
                    req = next_page(doc) if next_page is not None else None
        except (RestError, OSError) as exc:
            raise ListingError(f"{rest_url}{PATH} cannot be reached: {exc}") from None
        if not listed:
            raise ListingError(f"{rest_url}{PATH} listed no symbol")
        return listed
    raise ListingError(f"{rest_url}{PATH} did not answer within {TIMEOUT:g}s")


async def check_listing(rest_url: str, symbols: Sequence[str],
                        open_fetch: FetchFactory = http_fetch,
                        venue: Venue | None = None) -> list[str]:
    """The configured symbols ``rest_url`` does not list (warned about); [] when unknown."""
    venue = venue or venues.default()
    try:
        listed = set(await fetch_statuses(rest_url, open_fetch, venue))
    except ListingError as exc:
        log.debug("cannot check the symbols: %s", exc)
        return []
    missing = unlisted(symbols, listed)
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more"
                                           if len(missing) > 10 else "")
        log.warning("%s not listed by %s%s: %s (a typo, or a delisted contract?); their "
                    "streams will stay silent", plural(len(missing), "symbol"), rest_url,
                    venue.listing_request().path, shown)
    return missing
