"""Binance COIN-M as a ``venues.base.Venue``: USD-M's adapter with COIN-M's facts (``wire.FACTS``).

The frames, the ``pu`` book rule, the local book and the trade rule are USD-M's, so this adapter
inherits them (``binance_common.adapter``); what it changes is what ``wire.py`` says differs:
hosts, no route split (every stream on ``/stream``), 10 client messages a second, REST under
``/dapi/v1`` with its weights, the listing's ``contractStatus``, and the symbol syntax. Not
registered in ``venues/__init__.py`` yet (the integrator adds it). Pure: no trio, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Listed
from ..binance_common.adapter import BinanceFamily
from . import wire


class BinanceCoinm(BinanceFamily):
    """The adapter (one instance, ``VENUE``)."""

    facts = wire.FACTS

    def listing(self, doc: Mapping[str, Any]) -> dict[str, Listed]:
        """``symbol -> Listed`` (status ``contractStatus``; a quarterly's delivery date)."""
        return {s: Listed(i.status, i.onboard_ms, i.delivery_ms)
                for s, i in wire.parse_listing(doc).items()}

    def valid_symbol(self, symbol: str) -> bool:
        return wire.is_symbol(symbol)


VENUE = BinanceCoinm()
