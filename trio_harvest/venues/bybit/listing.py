"""``/v5/market/instruments-info``: the listing, page by page with ``cursor``.

Linear lists more than 500 symbols and pages them (``limit`` up to 1000, ``nextPageCursor``
names the next page; "" on the last); spot answers in one page. A page's rows give ``symbol``,
``status`` (``Trading`` harvests) and, on linear, ``launchTime`` and ``deliveryTime`` (ms as
strings, "0" for a perpetual). Symbol syntax: ``BTCUSDT`` (perp and spot alike: the venue name
keeps the categories apart), ``BTCUSDT-21FEB25``, ``BTCPERP``, ``BTC-24MAR23``. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..base import NEVER_MS, Listed, RestRequest
from .facts import INSTRUMENTS_PATH, Category

SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,39}$")


def is_symbol(symbol: str) -> bool:
    return bool(SYMBOL.match(symbol))


def request(cat: Category, cursor: str = "") -> RestRequest:
    """One page (the first without ``cursor``)."""
    params: dict[str, str | int] = {"category": cat.category, "limit": cat.instruments_page}
    if cursor:
        params["cursor"] = cursor
    return RestRequest(INSTRUMENTS_PATH, params, 1)


def _ms(value: Any, default: int) -> int:
    try:
        ms = int(value)
    except (TypeError, ValueError):
        return default
    return ms if ms > 0 else default


def page(doc: Mapping[str, Any]) -> tuple[dict[str, Listed], str]:
    """``(symbol -> Listed, next cursor)`` of one page; ``({}, "")`` for anything else."""
    result = doc.get("result") if doc.get("retCode", 0) == 0 else None
    if not isinstance(result, Mapping):
        return {}, ""
    rows = result.get("list")
    out: dict[str, Listed] = {}
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, Mapping):
            continue
        symbol, status = row.get("symbol"), row.get("status")
        if isinstance(symbol, str) and isinstance(status, str):
            out[symbol] = Listed(status, _ms(row.get("launchTime"), 0),
                                 _ms(row.get("deliveryTime"), NEVER_MS))
    cursor = result.get("nextPageCursor")
    return out, cursor if isinstance(cursor, str) and out else ""


def next_request(cat: Category, doc: Mapping[str, Any]) -> RestRequest | None:
    """The request of the page after ``doc``, None after the last one."""
    _, cursor = page(doc)
    return request(cat, cursor) if cursor else None
