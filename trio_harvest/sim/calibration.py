"""The simulator's numbers: book shape, trade sizes, arrival clustering, the message mix, and
how busy each symbol is by default.

Owns every calibrated constant of the market model (``market.py`` owns the mechanics) and the
per-symbol cadence: ``default_rate`` gives each symbol a realistic message rate whatever the
number of symbols, so that at 500 symbols a depth stream still updates several times a second
(a total rate shared by all symbols made depth streams look silent and health cry wolf). Pure
numbers: no I/O, no clock, no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

DEPTH_PER_S = 10.0  # one @100ms depth stream per symbol, counted in the message budget
# Quotes behind the best change all the time on a listed contract, however quiet its trading:
# at least this many deep-book changes per second, so depth@100ms updates nearly every window
# (they add depth content only, no aggTrade or bookTicker messages).
DEEP_FLOOR_PER_S = 10.0
# Default simulator rate: this many messages per second per symbol (aggTrade + bookTicker +
# depth@100ms of a quiet USD-M perpetual), and never less than DEFAULT_TOTAL_MIN in all.
SYMBOL_RATE = 20.0
DEFAULT_TOTAL_MIN = 300.0
MAX_RATE = 100_000.0  # the simulator cannot go faster (config.MAX_SIM_RATE)


def default_rate(symbols: int) -> float:
    """Total messages per second for ``symbols`` symbols when no rate is given."""
    return min(MAX_RATE, max(DEFAULT_TOTAL_MIN, SYMBOL_RATE * max(1, symbols)))


def sim_rate(given: float | None, symbols: int) -> float:
    """The total rate to run: the one given, else ``default_rate``."""
    return default_rate(symbols) if given is None else given


# Book shape (sizes in BTC-equivalent notional, converted to the symbol's lots).
INITIAL_LEVELS = 60
MIN_LEVELS = 40
MAX_LEVELS = 120
LEVEL_MEDIAN_BTC = 8.0
LEVEL_SIGMA = 1.0
TOP_ADD_MEDIAN_BTC = 1.7
REFILL_MEDIAN_BTC = 3.0
REFILL_MEAN_MS = 3.0  # a spread wider than one tick is closed after this long on average
FOLLOW_P = 0.5  # a refill moves the price (the other side follows) rather than restoring it
DEEP_MEAN_TICKS = 6.0
DEEP_PER_TOP = 0.5  # changes behind the best per change at the best

# Trade sizes: lognormal body plus a Pareto tail above 0.5 BTC.
TRADE_MEDIAN_BTC = 0.01
TRADE_SIGMA = 1.3
TAIL_P = 0.03
TAIL_MIN_BTC = 0.5
TAIL_ALPHA = 1.7
MAX_TRADE_BTC = 100.0

# Arrivals: a Hawkes process with an exponential kernel drives every book event.
BRANCHING = 0.8
DECAY_MS = 300.0

# Calibration of the message mix (checked by tests/test_sim_market.py::test_message_rate...).
AGG_SHARE = 2 / 7  # aggTrade : bookTicker ≈ 40 : 100, as on BTCUSDT
TICKERS_PER_TRADE = 1.0
REFILLS_PER_TOP_EVENT = 0.07


@dataclass(frozen=True, slots=True)
class Rates:
    """Per-second rates of the model's three kinds of book events for one symbol."""

    trades: float  # market orders (each one or more aggTrades)
    top: float  # adds and cancels at the best levels (each one bookTicker)
    deep: float  # adds and cancels behind the best (depth content only)

    @property
    def total(self) -> float:
        return self.trades + self.top + self.deep


def rates_for(messages_per_s: float) -> Rates:
    """Event rates giving about ``messages_per_s`` messages of aggTrade + bookTicker + one @100ms
    depth stream for one symbol."""
    if not messages_per_s > 0:
        raise ValueError("rate must be positive")
    streaming = max(messages_per_s - DEPTH_PER_S, messages_per_s / 2)
    trades = streaming * AGG_SHARE
    tickers = streaming - trades
    top = max(tickers - trades * TICKERS_PER_TRADE, 0.0) / (1 + REFILLS_PER_TOP_EVENT)
    return Rates(trades=trades, top=top, deep=max(top * DEEP_PER_TOP, DEEP_FLOOR_PER_S))


