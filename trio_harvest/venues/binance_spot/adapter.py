"""Binance Spot as a ``venues.base.Venue``: USD-M's adapter with Spot's facts and decode.

Spot's diff depth has no ``pu``; its rule is ``U == previous u + 1``. The adapter's decode gives
each diff event the ``pu`` that rule implies (``U - 1``), so USD-M's ``pu`` local book applies
unchanged: ``pu == previous u`` is then exactly ``U == previous u + 1``, and a snapshot ``L`` is
bridged by ``U <= L + 1 <= u`` (``pu == L`` or ``U <= L <= u``). Partial depth and bookTicker
carry no time: their rows are stamped with the receive time. Registered in
``venues/__init__.py``. Pure: no trio, no I/O.
"""

from __future__ import annotations

import msgspec

from ...kinds import Row
from ..base import BookLevels
from ..binance_common.adapter import BinanceFamily
from ..binance_usdm.decode import DepthUpdate
from . import wire


def decode_envelope(frame: str | bytes) -> wire.Envelope:
    """The hot path's decode (raises ``msgspec.DecodeError``); a diff event gets ``pu = U - 1``."""
    raw = wire.decode_raw(frame)
    msg = wire.decode_payload(raw.stream, raw.data)
    if type(msg) is DepthUpdate:
        msg.prev_update_id = msg.first_update_id - 1
    return wire.Envelope(raw.stream, msg)


class BinanceSpot(BinanceFamily):
    """The adapter (one instance, ``VENUE``)."""

    facts = wire.FACTS
    parse_listing = staticmethod(wire.parse_listing)
    is_symbol = staticmethod(wire.is_symbol)
    ticker_weight = 80
    listing_dates = False  # exchangeInfo has no onboardDate on spot
    decode_envelope = staticmethod(decode_envelope)  # type: ignore[assignment]  # spot's records
    bad_frame = msgspec.DecodeError

    def decode(self, frame: str | bytes) -> wire.Envelope:
        env = wire.decode_frame(frame)
        if type(env.data) is DepthUpdate:
            env.data.prev_update_id = env.data.first_update_id - 1
        return env

    def levels_row(self, d: BookLevels, recv_ms: int, levels: int, source: str) -> Row:
        if not d.event_ms and isinstance(d, wire.PartialDepth):  # no time on spot's partial
            d.event_ms = recv_ms
        return super().levels_row(d, recv_ms, levels, source)


VENUE = BinanceSpot()
