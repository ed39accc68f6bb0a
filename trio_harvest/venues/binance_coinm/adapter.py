"""Binance COIN-M as a ``venues.base.Venue``: USD-M's adapter with COIN-M's facts (``wire.FACTS``).

The frames, the ``pu`` book rule, the local book and the trade rule are USD-M's, so this adapter
inherits them (``binance_common.adapter``); what it changes is what ``wire.py`` says differs:
hosts, no route split (every stream on ``/stream``), 10 client messages a second, REST under
``/dapi/v1`` with its weights, the listing's ``contractStatus``, and the symbol syntax. Not
registered in ``venues/__init__.py``. Pure: no trio, no I/O.
"""

from __future__ import annotations

from ..binance_common.adapter import BinanceFamily
from . import wire


class BinanceCoinm(BinanceFamily):
    """The adapter (one instance, ``VENUE``)."""

    facts = wire.FACTS
    futures = True  # markPrice@1s, forceOrder and openInterest, as on USD-M
    parse_listing = staticmethod(wire.parse_listing)
    is_symbol = staticmethod(wire.is_symbol)
    default_symbols: tuple[str, ...] = ("BTCUSD_PERP", "ETHUSD_PERP")


VENUE = BinanceCoinm()
