"""What a symbol is: the forms the venue lists, and the checks of a configured symbol list.

Owns the symbol syntax (perpetuals ``BTCUSDT``, ``1000PEPEUSDT``; delivery contracts
``BTCUSDT_260327``; symbols in other scripts, as Binance USD-M lists them) and the comparison of
the configured symbols with the venue's ``exchangeInfo``. Pure: never fetches anything itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import ConfigError

# Word characters, no lower case, not starting with "_", 2..40 long (flags are upper-cased first).
SYMBOL_RE = re.compile(r"^(?=\w{2,40}$)[^\W_a-z][^\Wa-z]*$")


def check_symbols(symbols: Sequence[str], where: str = "symbols") -> None:
    """``ConfigError`` naming the first symbol that is not one, or every symbol listed twice."""
    if not symbols:
        raise ConfigError(f"{where}: at least one symbol is needed")
    for s in symbols:
        if not SYMBOL_RE.match(s):
            raise ConfigError(f"{where}: {s!r} is not a symbol (expected e.g. BTCUSDT or "
                              "BTCUSDT_260327)")
    twice = sorted({s for s in symbols if list(symbols).count(s) > 1})
    if twice:
        raise ConfigError(f"{where}: listed twice: {', '.join(twice)}")


def listed_symbols(exchange_info: Mapping[str, Any]) -> set[str]:
    """The symbols of a ``GET /fapi/v1/exchangeInfo`` answer (any status)."""
    out: set[str] = set()
    for entry in exchange_info.get("symbols", ()) or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("symbol"), str):
            out.add(entry["symbol"])
    return out


def unlisted(symbols: Iterable[str], listed: set[str]) -> list[str]:
    """Configured symbols the venue does not list (their streams will stay silent)."""
    return [s for s in symbols if s not in listed] if listed else []
