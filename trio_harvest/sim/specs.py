"""Symbol specifications for the simulator: tick and lot grids, decimals, a starting price.

Owns the integer grids every other simulator module works on (prices in ticks, sizes in lots)
and their decimal rendering. Pure and deterministic: the spec of a symbol depends on its name
only. Never reads the clock, the network or a random generator shared with anything else.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

REFERENCE_BTC_PRICE = 100_000.0


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One symbol's grids. A price of ``t`` ticks is ``t * tick_units`` in units of
    ``10**-price_decimals``; a size of ``n`` lots is ``n * lot_units`` in ``10**-qty_decimals``."""

    symbol: str
    price_decimals: int
    tick_units: int
    qty_decimals: int
    lot_units: int
    start_ticks: int
    contract_usd: int = 0  # a lot is one contract of this many USD (COIN-M); 0: sizes are base

    @property
    def tick(self) -> float:
        return self.tick_units / 10.0**self.price_decimals

    @property
    def lot(self) -> float:
        return self.lot_units / 10.0**self.qty_decimals

    @property
    def start_price(self) -> float:
        return self.start_ticks * self.tick

    @property
    def lots_per_btc(self) -> float:
        """Lots worth one BTC of notional at the starting price (sizes are modelled in BTC)."""
        if self.contract_usd:
            return REFERENCE_BTC_PRICE / self.contract_usd
        return REFERENCE_BTC_PRICE / self.start_price / self.lot

    def price_str(self, ticks: int) -> str:
        return fixed(ticks * self.tick_units, self.price_decimals)

    def qty_str(self, lots: int) -> str:
        return fixed(lots * self.lot_units, self.qty_decimals)


def fixed(value: int, decimals: int) -> str:
    """``fixed(1000125, 2) == "10001.25"``: a non-negative scaled integer as a decimal string."""
    if decimals == 0:
        return str(value)
    s = str(value).rjust(decimals + 1, "0")
    return f"{s[:-decimals]}.{s[-decimals:]}"


_KNOWN: dict[str, SymbolSpec] = {
    "BTCUSDT": SymbolSpec("BTCUSDT", 2, 10, 3, 1, 1_000_000),  # tick 0.10, lot 0.001, 100000
    "ETHUSDT": SymbolSpec("ETHUSDT", 2, 1, 3, 1, 350_000),  # tick 0.01, lot 0.001, 3500
}


def spec_for(symbol: str) -> SymbolSpec:
    """The spec of ``symbol`` (upper case). Unknown names get a plausible spec derived from a
    hash of the name: a price between 0.001 and 9999, about five significant digits of tick,
    and a lot worth a few dollars at most."""
    known = _KNOWN.get(symbol)
    if known is not None:
        return known
    digest = hashlib.sha256(symbol.encode()).digest()
    mantissa = 1.0 + 9.0 * int.from_bytes(digest[:4], "big") / 2**32
    exponent = digest[4] % 7 - 3  # -3..3
    price = mantissa * 10.0**exponent
    tick_exp = math.floor(math.log10(price)) - 4  # five significant digits
    price_decimals = max(0, -tick_exp)
    tick_units = 10 ** max(0, tick_exp)
    if price >= 1000:
        qty_decimals = 3
    elif price >= 100:
        qty_decimals = 2
    elif price >= 10:
        qty_decimals = 1
    else:
        qty_decimals = 0
    start_ticks = max(1000, round(price / (tick_units / 10**price_decimals)))
    return SymbolSpec(symbol, price_decimals, tick_units, qty_decimals, 1, start_ticks)
