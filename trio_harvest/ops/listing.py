"""A start-up check of the configured symbols against the venue's own list
(``GET /fapi/v1/exchangeInfo``): a symbol it does not list gets one warning, because Binance
answers a stream of an unknown symbol with silence, not an error.

Owns the request (one, weight 1, bounded in time) and the warning. Best effort: an exchange that
cannot be reached is logged at DEBUG (the connections report that loudly enough). Never refuses
a symbol and never stops anything.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import trio

from ..hints import plural
from ..ingest.restclient import FetchFn, RestError, http_fetch
from ..symbols import listed_symbols, unlisted

log = logging.getLogger("trio_harvest.symbols")

PATH = "/fapi/v1/exchangeInfo"
TIMEOUT = 15.0

FetchFactory = Callable[[str], AbstractAsyncContextManager[FetchFn]]


async def check_listing(rest_url: str, symbols: Sequence[str],
                        open_fetch: FetchFactory = http_fetch) -> list[str]:
    """The configured symbols ``rest_url`` does not list (warned about); [] when unknown."""
    with trio.move_on_after(TIMEOUT):
        try:
            async with open_fetch(rest_url) as fetch:
                resp = await fetch(PATH, {})
        except (RestError, OSError) as exc:
            log.debug("cannot check the symbols against %s%s: %s", rest_url, PATH, exc)
            return []
        if resp.status != 200:
            log.debug("cannot check the symbols: %s%s answered %d", rest_url, PATH, resp.status)
            return []
        try:
            listed = listed_symbols(json.loads(resp.body))
        except (ValueError, AttributeError):
            return []
        missing = unlisted(symbols, listed)
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more"
                                               if len(missing) > 10 else "")
            log.warning("%s not listed by %s%s: %s (a typo, or a delisted contract?); their "
                        "streams will stay silent", plural(len(missing), "symbol"), rest_url,
                        PATH, shown)
        return missing
    log.debug("cannot check the symbols: %s%s did not answer within %gs", rest_url, PATH, TIMEOUT)
    return []


