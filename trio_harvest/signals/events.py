"""Event detection: OFI spikes, price/CVD divergence, large trades.

Owns the rules and the event rows (``kinds.EVENTS_SCHEMA``: ts_ms, symbol, type, value, detail):

- ``ofi_spike``: |z(OFI_1s)| >= spike_z against the previous W seconds, then a cooldown;
  value = z.
- ``divergence_bearish``: the price (last trade of the second) makes a new high above the previous
  ``divergence_window_s`` seconds while CVD stays below its high of that window;
  ``divergence_bullish`` is the mirror (new price low, CVD above its low). A cooldown applies;
  value = CVD minus the CVD extreme of the window.
- ``large_trade``: notional >= max(floor, q-quantile of the notional of the trades in the
  ``large_trade_window_s`` seconds before the trade's second); value = notional.

Pure: fed per-second feature values and trades; never does I/O, never imports trio.
"""

from __future__ import annotations

import math
from collections import deque
from functools import partial
from operator import le

from ..kinds import Row
from .fusion import RollingStats
from .params import SignalParams
from .tail import T_NOTIONAL, T_PRICE, T_QTY, T_SQTY, Table

OFI_SPIKE = "ofi_spike"
DIVERGENCE_BEARISH = "divergence_bearish"
DIVERGENCE_BULLISH = "divergence_bullish"
LARGE_TRADE = "large_trade"
EVENT_TYPES = (OFI_SPIKE, DIVERGENCE_BEARISH, DIVERGENCE_BULLISH, LARGE_TRADE)


class EventDetector:
    """Per-second event rules of one symbol."""

    __slots__ = ("_cvd", "_last_div_ms", "_last_spike_ms", "_price", "_z", "params", "symbol")

    def __init__(self, symbol: str, params: SignalParams) -> None:
        self.symbol = symbol
        self.params = params
        self._z = RollingStats(params.z_window_s, params.z_min_periods)
        self._last_spike_ms: int | None = None
        self._price: deque[float] = deque(maxlen=params.divergence_window_s)
        self._cvd: deque[float] = deque(maxlen=params.divergence_window_s)
        self._last_div_ms: int | None = None

    def on_second(self, ts_ms: int, ofi_1s: float, last: float | None,
                  cvd: float | None) -> list[Row]:
        """Events of the second starting at ``ts_ms`` (call once per second, in order)."""
        p = self.params
        out: list[Row] = []
        ms = self._z.mean_std()
        self._z.push(ofi_1s)
        if ms is not None:
            mean, std = ms
            z = (ofi_1s - mean) / std
            if abs(z) >= p.spike_z and (
                self._last_spike_ms is None
                or ts_ms - self._last_spike_ms >= p.spike_cooldown_s * 1000
            ):
                self._last_spike_ms = ts_ms
                side = "buy" if z > 0 else "sell"
                out.append((ts_ms, self.symbol, OFI_SPIKE, z,
                            f"side={side} ofi_1s={ofi_1s:.10g} mean={mean:.10g} std={std:.10g}"))
        if last is None or cvd is None:
            return out
        prices, cvds = self._price, self._cvd
        if len(prices) == prices.maxlen and (
            self._last_div_ms is None
            or ts_ms - self._last_div_ms >= p.divergence_cooldown_s * 1000
        ):
            hi_p, lo_p = max(prices), min(prices)
            hi_c, lo_c = max(cvds), min(cvds)
            window = f"window={p.divergence_window_s}s"
            if last > hi_p and cvd < hi_c:
                self._last_div_ms = ts_ms
                out.append((ts_ms, self.symbol, DIVERGENCE_BEARISH, cvd - hi_c,
                            f"price {last:.10g} > prior high {hi_p:.10g} while cvd {cvd:.10g} "
                            f"< prior high {hi_c:.10g}; {window}"))
            elif last < lo_p and cvd > lo_c:
                self._last_div_ms = ts_ms
                out.append((ts_ms, self.symbol, DIVERGENCE_BULLISH, cvd - lo_c,
                            f"price {last:.10g} < prior low {lo_p:.10g} while cvd {cvd:.10g} "
                            f"> prior low {lo_c:.10g}; {window}"))
        prices.append(last)
        cvds.append(cvd)
        return out


class LargeTrades:
    """Rolling quantile of trade notional over the whole seconds of a window, exact.

    Each second's notionals are kept as one sorted batch; a quantile near the top only needs the
    top few values of each batch, so a second costs O(its trades · log) plus O(seconds in the
    window · values needed), independent of how many trades the window holds.
    """

    __slots__ = ("_batches", "_n", "floor", "quantile", "symbol", "window_s")

    def __init__(self, symbol: str, params: SignalParams) -> None:
        self.symbol = symbol
        self.window_s = params.large_trade_window_s
        self.quantile = params.large_trade_quantile
        self.floor = params.large_trade_floor
        self._batches: deque[tuple[int, list[float]]] = deque()
        self._n = 0

    def threshold(self) -> float:
        """max(floor, the quantile (linear interpolation) of the notionals in the window)."""
        n = self._n
        if n == 0:
            return self.floor
        pos = self.quantile * (n - 1)
        lo = math.floor(pos)
        need = n - lo  # sorted ranks lo..n-1 are the ``need`` largest values
        if need == 1:
            return max(self.floor, max([b[-1] for _, b in self._batches]))
        values: list[float] = []
        for _, b in self._batches:
            values += b[-need:]
        # the batches are sorted runs: one C sort merges them (a heap of the ``need`` largest
        # would step through every value in Python)
        values.sort()
        q = values[-need]  # rank lo
        q += (values[1 - need] - q) * (pos - lo)  # towards rank lo + 1
        return max(self.floor, q)

    def on_second(self, sec: int, trades: Table, i: int, j: int) -> list[Row]:
        """Events for the trades ``trades[i:j]`` (a tail table: ts, price, qty, signed qty,
        notional, ...) of second ``sec``, judged against the ``window_s`` seconds before it;
        then the window takes them in. Call once per second, in order."""
        batches = self._batches
        while batches and batches[0][0] < sec - self.window_s:
            self._n -= len(batches.popleft()[1])
        out: list[Row] = []
        if j <= i:
            return out
        notional = trades.cols[T_NOTIONAL]
        batch = sorted(notional[i:j])
        floor = self.floor
        # The threshold is never below the floor: a second whose trades all stay below it
        # has no event, and the window's quantile need not be taken (most seconds).
        if any(map(partial(le, floor), batch)):  # some v >= floor, compared in C
            thr = self.threshold()
            price, qty, sqty = (trades.cols[k] for k in (T_PRICE, T_QTY, T_SQTY))
            for k in range(i, j):
                if notional[k] >= thr:
                    out.append(large_trade_row(self.symbol, trades.ts[k], price[k], qty[k],
                                               sqty[k], notional[k], thr))
        batches.append((sec, batch))
        self._n += len(batch)
        return out


def large_trade_row(symbol: str, ts_ms: int, price: float, qty: float, sqty: float,
                    notional: float, threshold: float) -> Row:
    side = "sell" if sqty < 0 else "buy"
    return (ts_ms, symbol, LARGE_TRADE, notional,
            f"side={side} price={price:.10g} qty={qty:.10g} threshold={threshold:.10g}")
