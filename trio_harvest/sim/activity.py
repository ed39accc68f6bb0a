"""Each simulated symbol's 24 h activity, as ``/fapi/v1/ticker/24hr`` reports it: trade count and
quote volume, skewed like the real venue (BTC and ETH far ahead, then SOL, XRP, DOGE, BNB, ADA…,
then a long tail).

Pure and deterministic: a symbol's figures depend on its name only (never the seed, the clock or
the run), so every simulator, worker and host sees the same numbers. Never decides anything
about sharding; it only reports activity.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

# Trades per 24 h on Binance USD-M, rounded (late 2025 order of magnitude); by base asset.
MAJORS: dict[str, int] = {
    "BTC": 4_500_000, "ETH": 3_600_000, "SOL": 1_600_000, "XRP": 1_200_000,
    "DOGE": 1_100_000, "BNB": 650_000, "ADA": 520_000, "SUI": 480_000, "LINK": 330_000,
    "AVAX": 300_000, "LTC": 260_000, "TRX": 200_000,
}
TAIL_MIN, TAIL_MAX = 15_000, 250_000  # the long tail, log-uniform by name
QUOTE_PER_TRADE = 2_500.0  # USDT per trade, on average


@dataclass(frozen=True, slots=True)
class Activity:
    symbol: str
    count: int  # trades in 24 h
    quote_volume: float  # USDT in 24 h


def activity(symbol: str) -> Activity:
    base = symbol.removesuffix("USDT").removesuffix("USDC")
    count = MAJORS.get(base)
    if count is None:
        u = int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "big") / 2**64
        count = int(math.exp(math.log(TAIL_MIN) + u * (math.log(TAIL_MAX) - math.log(TAIL_MIN))))
    return Activity(symbol, count, round(count * QUOTE_PER_TRADE, 2))
