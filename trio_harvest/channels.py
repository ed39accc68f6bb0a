"""What a run harvests: the channels (``trades``, ``book``, ``quotes``, ``book_updates``,
``derivatives``, ``liquidations``) and the stream plan that follows from them.

Owns parsing and checking ``--channels`` / ``channels`` (one ``ConfigError`` line for a name
that is not a channel, or one the venue does not have), the default (every channel the venue
and the book mode offer: ``book_updates`` only with ``--book diff``, ``derivatives`` and
``liquidations`` only on a futures venue), and the streams of a set of symbols for a set of
channels (the venue's trade, book and quote streams, then its derivatives streams). Pure: no
trio, no I/O.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .hints import did_you_mean
from .kinds import BOOK_UPDATES, DERIVATIVES, LIQUIDATIONS, QUOTES
from .venues.base import DEPTH, TRADES, Venue, derivatives_of

BOOK = "book"
CHANNELS = (TRADES, BOOK, QUOTES, BOOK_UPDATES, DERIVATIVES, LIQUIDATIONS)
FUTURES_ONLY = (DERIVATIVES, LIQUIDATIONS)
DEFAULT_TEXT = "trades,book,quotes,derivatives,liquidations"  # + book_updates with --book diff


def parse(text: str) -> tuple[str, ...]:
    """``"trades, quotes"`` -> ``("trades", "quotes")``; ``ConfigError`` for a name that is
    not a channel or for none at all."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"channels: name at least one of {', '.join(CHANNELS)}")
    for name in names:
        if name not in CHANNELS:
            raise ConfigError(f"channels: {name!r} is not one of {', '.join(CHANNELS)}"
                              + did_you_mean(name, CHANNELS))
    return tuple(dict.fromkeys(names))


def resolve(text: str, venue: Venue, book: str) -> frozenset[str]:
    """The channels a run of ``venue`` harvests: ``text`` ("" = the default) checked against
    what the venue and the book mode offer."""
    futures = derivatives_of(venue) is not None
    if not text:
        out = {TRADES, BOOK, QUOTES} | ({BOOK_UPDATES} if book == "diff" else set())
        return frozenset(out | (set(FUTURES_ONLY) if futures else set()))
    names = parse(text)
    for name in names:
        if name in FUTURES_ONLY and not futures:
            raise ConfigError(f"channels: {venue.name} offers no {name}; its channels: "
                              f"{TRADES}, {BOOK}, {QUOTES}, {BOOK_UPDATES}")
    if BOOK_UPDATES in names and book != "diff":
        raise ConfigError("channels: book_updates needs --book diff (book = \"diff\")")
    return frozenset(names)


def stream_plan(venue: Venue, symbols: tuple[str, ...], channels: frozenset[str], *,
                depth_levels: int, depth_speed: str, book: str, book_ticker: bool) -> list[Any]:
    """The streams of ``symbols`` for ``channels``: the venue's trade, depth and quote streams
    (depth for ``book`` or ``book_updates``; quotes unless ``book_ticker`` is off), then its
    mark price and liquidation streams."""
    specs = venue.streams_for(symbols, depth_levels=depth_levels, depth_speed=depth_speed,
                              book=book, book_ticker=book_ticker and QUOTES in channels)
    keep_trades = TRADES in channels
    keep_depth = BOOK in channels or BOOK_UPDATES in channels
    kind_of = venue.stream_kind
    specs = [s for s in specs
             if (kind_of(s.name) != TRADES or keep_trades)
             and (kind_of(s.name) != DEPTH or keep_depth)]
    side = derivatives_of(venue)
    if side is not None and channels & set(FUTURES_ONLY):
        specs += side.streams(symbols, channels)
    return specs
