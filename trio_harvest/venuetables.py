"""The ``[venues.<name>]`` tables of a TOML config file: several venues harvested by one run.

Owns parsing a table (``symbols`` and optional ``ws_url``, ``rest_url``, ``book``,
``channels``) into a
``VenueTable``, with one readable ``ConfigError`` line for an unknown venue name, an unknown
key or a value of the wrong type. Pure: never reads files, never checks a symbol against a
venue (``config.venue_configs`` does, through each venue's own validated ``Config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import venues
from .errors import ConfigError
from .hints import did_you_mean

KEYS = ("symbols", "ws_url", "rest_url", "book", "channels")
# settings a venue table owns: giving them at the top level beside the tables is ambiguous
PER_VENUE = ("venue", "symbols", "ws_url", "rest_url", "universe")


@dataclass(frozen=True, slots=True)
class VenueTable:
    """One configured venue: its name and what to harvest there ("" / () = the default)."""

    name: str
    symbols: tuple[str, ...] = ()  # (): the venue's ``default_symbols``
    ws_url: str = ""
    rest_url: str = ""
    book: str = ""  # "": the run's ``book``
    channels: str = ""  # "": the run's ``channels`` (comma-separated, channels.py)


def parse_tables(raw: object, where: str = "") -> tuple[VenueTable, ...]:
    """``[venues.<name>]`` tables, in the file's order."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where}venues: expected [venues.<name>] tables (known venues: "
                          f"{', '.join(venues.VENUES)})")
    return tuple(_table(str(name), body, where) for name, body in raw.items())


def _table(name: str, body: object, where: str) -> VenueTable:
    at = f"{where}[venues.{name}]"
    if name not in venues.VENUES:
        raise ConfigError(f"{at}: unknown venue {name!r} (known: {', '.join(venues.VENUES)})")
    if not isinstance(body, Mapping):
        raise ConfigError(f"{at}: expected a table with symbols (and optional ws_url, rest_url)")
    values: dict[str, Any] = {}
    for key, value in body.items():
        k = str(key).replace("-", "_")
        if k not in KEYS:
            raise ConfigError(f"{at}: unknown key {key!r}{did_you_mean(k, KEYS)} "
                              f"(a venue table holds {', '.join(KEYS)})")
        values[k] = value
    symbols = values.pop("symbols", ())
    if isinstance(symbols, str):
        symbols = [s for s in symbols.split(",") if s.strip()]
    if not isinstance(symbols, list | tuple) or not all(isinstance(s, str) for s in symbols):
        raise ConfigError(f"{at}: symbols: expected a list of names, e.g. [\"BTCUSDT\"]")
    channels = values.get("channels")
    if isinstance(channels, list) and all(isinstance(c, str) for c in channels):
        values["channels"] = ",".join(channels)  # channels = ["trades", "derivatives"]
    for k, v in values.items():
        if not isinstance(v, str):
            raise ConfigError(f"{at}: {k}: expected a string, got {v!r}")
    return VenueTable(name, tuple(s.strip().upper() for s in symbols), **values)
