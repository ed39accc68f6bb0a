"""Binance USD-M's instrument listing: ``GET /fapi/v1/exchangeInfo`` and how to read it.

Owns the path, its weight and the parse of the answer into ``symbol -> status`` (``TRADING``,
``SETTLING``, ``PENDING_TRADING``, ``DELIVERING``, ``CLOSE`` …); only ``TRADING`` is harvested.
Delivery contracts (``BTCUSDT_260327``) leave ``TRADING`` when they settle, perpetuals when
they are delisted. Pure: never fetches anything itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import NEVER_MS
from ..base import Listed as Listed

PATH = "/fapi/v1/exchangeInfo"
WEIGHT = 1
TRADING = "TRADING"
PERPETUAL_DELIVERY_MS = NEVER_MS  # what Binance gives a perpetual as deliveryDate (2100)


def listing(exchange_info: Mapping[str, Any]) -> dict[str, Listed]:
    """``symbol -> Listed`` of an exchangeInfo answer; entries without a name are skipped, a
    missing or malformed date reads as none."""
    out: dict[str, Listed] = {}
    for entry in exchange_info.get("symbols", ()) or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("symbol"), str):
            status = entry.get("status")
            out[entry["symbol"]] = Listed(status if isinstance(status, str) else "",
                                          _ms(entry.get("onboardDate"), 0),
                                          _ms(entry.get("deliveryDate"), PERPETUAL_DELIVERY_MS))
    return out


def _ms(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else default


def statuses(exchange_info: Mapping[str, Any]) -> dict[str, str]:
    """``symbol -> status`` of an exchangeInfo answer; entries without a name are skipped."""
    return {s: entry.status for s, entry in listing(exchange_info).items()}


def trading(exchange_info: Mapping[str, Any]) -> set[str]:
    """The symbols an exchangeInfo answer lists as ``TRADING``."""
    return {s for s, status in statuses(exchange_info).items() if status == TRADING}
