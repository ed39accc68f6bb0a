"""The simulator's listing: which symbols it lists at start, and the ``listing=S`` fault that
lists one new symbol and delists one existing symbol every S seconds.

Owns the catalogue a universe (``run --sim --symbols all`` or patterns) starts from, the names
new listings take, and the choice of what to delist (seeded, never the last trading symbol).
Pure: the simulator carries a change out (``Market.list_symbol`` / ``Market.delist``), and its
exchangeInfo reports it (``TRADING``, ``SETTLING``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence

# what `--sim --symbols all` lists at start (a named symbol is listed too)
CATALOGUE = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "BNBUSDT",
             "LTCUSDT")
# the names new listings take, in order (then NEW<n>USDT)
NEW_LISTINGS = ("SUIUSDT", "APTUSDT", "ARBUSDT", "OPUSDT", "TIAUSDT", "INJUSDT", "SEIUSDT",
                "WIFUSDT", "JUPUSDT", "PYTHUSDT", "ENAUSDT", "WLDUSDT")


def initial_listing(universe: Sequence[str],
                    catalogue: tuple[str, ...] = CATALOGUE) -> tuple[str, ...]:
    """What the simulator lists for a universe: the (venue's) catalogue, plus the names it gives
    (a pattern or ``ALL`` adds nothing of its own)."""
    from ..symbols import is_pattern

    named = [e for e in universe if not is_pattern(e) and e not in catalogue]
    return catalogue + tuple(named)


def usdm_name(n: int) -> str:
    """The name of the ``n``-th new listing on USD-M."""
    return NEW_LISTINGS[n] if n < len(NEW_LISTINGS) else f"NEW{n}USDT"


class ListingChanges:
    """Each ``next`` gives ``(listed, delisted)``: a name never listed before, and a trading
    symbol chosen by the seeded generator (None while only one trades)."""

    def __init__(self, seed: int, name: Callable[[int], str] = usdm_name) -> None:
        self._rng = random.Random(f"trio_harvest.sim.listing/{seed}")
        self._name = name  # the venue's n-th new listing
        self._n = 0

    def next(self, trading: Sequence[str], known: Collection[str]) -> tuple[str, str | None]:
        delisted = self._rng.choice(sorted(trading)) if len(trading) > 1 else None
        while True:
            name = self._name(self._n)
            self._n += 1
            if name not in known:
                return name, delisted
