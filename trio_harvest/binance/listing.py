"""Binance USD-M's instrument listing: ``GET /fapi/v1/exchangeInfo`` and how to read it.

Owns the path, its weight and the parse of the answer into ``symbol -> status`` (``TRADING``,
``SETTLING``, ``PENDING_TRADING``, ``DELIVERING``, ``CLOSE`` …); only ``TRADING`` is harvested.
Delivery contracts (``BTCUSDT_260327``) leave ``TRADING`` when they settle, perpetuals when
they are delisted. Pure: never fetches anything itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PATH = "/fapi/v1/exchangeInfo"
WEIGHT = 1
TRADING = "TRADING"


def statuses(exchange_info: Mapping[str, Any]) -> dict[str, str]:
    """``symbol -> status`` of an exchangeInfo answer; entries without a name are skipped."""
    out: dict[str, str] = {}
    for entry in exchange_info.get("symbols", ()) or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("symbol"), str):
            status = entry.get("status")
            out[entry["symbol"]] = status if isinstance(status, str) else ""
    return out


def trading(exchange_info: Mapping[str, Any]) -> set[str]:
    """The symbols an exchangeInfo answer lists as ``TRADING``."""
    return {s for s, status in statuses(exchange_info).items() if status == TRADING}
