"""What a symbol is: the forms the venue lists, and the checks of a configured symbol list.

Owns the symbol syntax (perpetuals ``BTCUSDT``, ``1000PEPEUSDT``; delivery contracts
``BTCUSDT_260327``; symbols in other scripts, as Binance USD-M lists them), the universe syntax
(``ALL``, shell-style patterns such as ``*USDT`` or ``BTC*``, mixed with names) and its
resolution against a venue's listing (symbol -> trading or not; the venue module parses its own
listing answer), and the comparison of the configured symbols with that listing. Pure: never
fetches anything itself.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence

from .errors import ConfigError

# Word characters, no lower case, not starting with "_", 2..40 long (flags are upper-cased first).
SYMBOL_RE = re.compile(r"^(?=\w{2,40}$)[^\W_a-z][^\Wa-z]*$")


ALL = "ALL"
# a pattern: symbol characters and at least one of * ? [ ] (shell-style, fnmatch)
PATTERN_RE = re.compile(r"^(?=.*[*?\[])(?:[^\Wa-z]|-)*(?:[*?\[\]!](?:[^\Wa-z]|-)*)*$")


def is_pattern(entry: str) -> bool:
    """``ALL`` or a shell-style pattern (``*USDT``, ``BTC*``): resolved from the listing."""
    return entry == ALL or bool(PATTERN_RE.match(entry))


def is_universe(entries: Sequence[str]) -> bool:
    """A symbol list with ``ALL`` or a pattern in it: resolved from, and following, the venue's
    listing (a list of plain names is fixed)."""
    return any(is_pattern(e) for e in entries)


def check_symbols(symbols: Sequence[str], where: str = "symbols",
                  venue_syntax: Callable[[str], bool] | None = None) -> None:
    """``ConfigError`` naming the first symbol that is not one, or every symbol listed twice.
    ``ALL`` and patterns pass (they are resolved from the listing at start-up); a name of the
    venue's own syntax (``venue_syntax``: OKX's ``BTC-USDT-SWAP``) passes too."""
    if not symbols:
        raise ConfigError(f"{where}: at least one symbol is needed")
    for s in symbols:
        if not SYMBOL_RE.match(s) and not is_pattern(s) and \
                not (venue_syntax is not None and venue_syntax(s)):
            raise ConfigError(f"{where}: {s!r} is not a symbol (expected e.g. BTCUSDT, "
                              "BTCUSDT_260327, a pattern such as '*USDT', or all)")
    twice = sorted({s for s in symbols if list(symbols).count(s) > 1})
    if twice:
        raise ConfigError(f"{where}: listed twice: {', '.join(twice)}")


def unlisted(symbols: Iterable[str], listed: set[str]) -> list[str]:
    """Configured symbols the venue does not list (their streams will stay silent)."""
    return [s for s in symbols if s not in listed] if listed else []


def matches(symbol: str, entries: Sequence[str]) -> bool:
    """Whether ``symbol`` is one of ``entries`` (names, patterns, ``ALL``)."""
    for e in entries:
        if e == ALL or e == symbol or (is_pattern(e) and fnmatch.fnmatchcase(symbol, e)):
            return True
    return False


def resolve(entries: Sequence[str], trading: Iterable[str], where: str = "symbols") -> tuple[str, ...]:
    """The trading symbols ``entries`` select, sorted (a name the venue does not trade is left
    out: ``not_trading`` names them). ``ConfigError`` for a pattern that matches nothing."""
    listed = sorted(set(trading))
    for e in entries:
        if is_pattern(e) and not any(matches(s, (e,)) for s in listed):
            what = "the venue lists no trading symbol" if e == ALL else \
                f"pattern {e!r} matches no trading symbol"
            raise ConfigError(f"{where}: {what} ({len(listed)} trading); check the pattern "
                              "(patterns are case-insensitive, e.g. '*USDT' or 'BTC*')")
    return tuple(s for s in listed if matches(s, entries))


def not_trading(entries: Sequence[str], trading: Iterable[str]) -> list[str]:
    """The plain names among ``entries`` that are not trading."""
    have = set(trading)
    return [e for e in entries if not is_pattern(e) and e not in have]


def follow(current: Iterable[str], entries: Sequence[str], trading: Iterable[str],
           mine: Callable[[Sequence[str]], Iterable[str]] | None = None
           ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A listing change for a running harvester: ``(added, removed)``. Added: trading symbols
    ``entries`` select (and, with shards, ``mine`` keeps) that are not harvested yet. Removed:
    harvested symbols the venue no longer trades (delisted, settled) or no longer ``mine``.
    An empty listing (a bad answer) changes nothing."""
    trading_set = set(trading)
    if not trading_set:
        return (), ()
    wanted = {s for s in trading_set if matches(s, entries)}
    if mine is not None:
        wanted = set(mine(sorted(wanted)))
    have = set(current)
    return tuple(sorted(wanted - have)), tuple(sorted(have - wanted))
