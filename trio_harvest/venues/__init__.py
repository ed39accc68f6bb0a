"""The venues: one pure (sans-I/O) adapter per venue, and the registry that names them.

Owns the registry ``venue name -> adapter`` and the default venue. Everything a venue's wire
says (stream names, routes, message fields, REST paths and limits, the listing's format) lives
in its own subpackage; the rest of the package asks the adapter (``base.Venue``). Never does
I/O.
"""

from __future__ import annotations

from ..kinds import DEFAULT_VENUE, SPAN_ID_VENUES, UNCHAINED_ID_VENUES
from .base import NO_CONTINUITY, SPANS
from .base import Venue as Venue
from .binance_coinm.adapter import VENUE as BINANCE_COINM
from .binance_spot.adapter import VENUE as BINANCE_SPOT
from .binance_usdm.adapter import VENUE as BINANCE_USDM
from .bybit.adapter import LINEAR as BYBIT_LINEAR
from .bybit.adapter import SPOT as BYBIT_SPOT
from .okx.adapter import SPOT_VENUE as OKX_SPOT
from .okx.adapter import SWAP_VENUE as OKX_SWAP

_ADAPTERS: tuple[Venue, ...] = (BINANCE_USDM, BINANCE_SPOT, BINANCE_COINM, OKX_SWAP, OKX_SPOT,
                                BYBIT_LINEAR, BYBIT_SPOT)
VENUES: dict[str, Venue] = {v.name: v for v in _ADAPTERS}
# the default venue's name lives in ``kinds`` (storage and readers, below the venues, need it too)
DEFAULT = DEFAULT_VENUE
if DEFAULT not in VENUES:
    raise ImportError(f"the default venue {DEFAULT!r} has no adapter")
if {v.name for v in _ADAPTERS if v.trade_continuity == SPANS} != SPAN_ID_VENUES:
    raise ImportError("kinds.SPAN_ID_VENUES does not name the venues whose trades cover spans")
if {v.name for v in _ADAPTERS if v.trade_continuity == NO_CONTINUITY} != UNCHAINED_ID_VENUES:
    raise ImportError("kinds.UNCHAINED_ID_VENUES does not name the venues whose trade ids prove "
                      "no continuity")


class UnknownVenue(KeyError):
    """A venue name that is not registered; ``str()`` is one line naming the known ones."""

    def __str__(self) -> str:
        return f"unknown venue {self.args[0]!r} (known: {', '.join(VENUES)})"


def get(name: str = DEFAULT) -> Venue:
    """The adapter of venue ``name``; ``UnknownVenue`` (a ``KeyError``) for one not registered."""
    try:
        return VENUES[name]
    except KeyError:
        raise UnknownVenue(name) from None


def default() -> Venue:
    """The venue of every command that names none."""
    return VENUES[DEFAULT]

# ``orderbook.source`` / ``ofi.source`` of a row from a best bid/ask stream: today's data model
# names it after the first venue's stream, whatever the venue
QUOTE_SOURCE = BINANCE_USDM.quote_source
