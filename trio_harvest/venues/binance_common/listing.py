"""The instrument listing of a Binance venue: an ``exchangeInfo`` answer read into instruments.

Owns the parse of every symbol's status, listing and delivery times, contract type and size,
whatever the venue calls the fields (Spot ``status``, COIN-M ``contractStatus``), and the rule
that only ``TRADING`` is harvested. Entries without a name are skipped, a missing or malformed
value reads as its default. Pure: never fetches anything itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

TRADING = "TRADING"
PERPETUAL_DELIVERY_MS = 4_133_404_800_000  # what Binance gives a perpetual as deliveryDate (2100)
SPOT = "SPOT"


class Instrument(NamedTuple):
    """One symbol of a listing. The first three fields read like USD-M's ``Listed``."""

    status: str
    onboard_ms: int = 0
    delivery_ms: int = PERPETUAL_DELIVERY_MS
    contract_size: float = 1.0  # quote units per contract (COIN-M: USD); 1 where sizes are base
    contract_type: str = SPOT  # PERPETUAL, CURRENT_QUARTER, NEXT_QUARTER … (SPOT on spot)
    pair: str = ""  # the underlying pair (``BTCUSD`` of ``BTCUSD_PERP``; the symbol on spot)

    @property
    def trading(self) -> bool:
        return self.status == TRADING

    def expired(self, now_ms: int) -> bool:
        """Delivered by ``now_ms`` (a quarterly past its delivery date)."""
        return self.delivery_ms <= now_ms


def parse(exchange_info: Mapping[str, Any], status_field: str) -> dict[str, Instrument]:
    """``symbol -> Instrument`` of an exchangeInfo answer."""
    out: dict[str, Instrument] = {}
    for entry in exchange_info.get("symbols", ()) or ():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("symbol"), str):
            continue
        symbol = entry["symbol"]
        status = entry.get(status_field)
        out[symbol] = Instrument(
            status if isinstance(status, str) else "",
            _int(entry.get("onboardDate"), 0),
            _int(entry.get("deliveryDate"), PERPETUAL_DELIVERY_MS),
            _size(entry.get("contractSize")),
            _str(entry.get("contractType"), SPOT),
            _str(entry.get("pair"), symbol),
        )
    return out


def trading(instruments: Mapping[str, Instrument]) -> set[str]:
    return {s for s, i in instruments.items() if i.trading}


def weight_limit(exchange_info: Mapping[str, Any], default: int) -> int:
    """The ``REQUEST_WEIGHT`` per minute of ``rateLimits`` (``default`` when absent)."""
    for limit in exchange_info.get("rateLimits", ()) or ():
        if isinstance(limit, Mapping) and limit.get("rateLimitType") == "REQUEST_WEIGHT" and \
                limit.get("interval") == "MINUTE":
            value, per = limit.get("limit"), limit.get("intervalNum", 1)
            if isinstance(value, int) and isinstance(per, int) and value > 0 and per > 0:
                return value // per
    return default


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else default


def _str(value: object, default: str) -> str:
    return value if isinstance(value, str) and value else default


def _size(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 1.0
    try:
        size = float(value)
    except ValueError:
        return 1.0
    return size if size > 0 and size == size and size != float("inf") else 1.0
