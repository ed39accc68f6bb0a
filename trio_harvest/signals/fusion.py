"""Per-second fusion of OFI and ΔCVD: rolling z-scores, clipped, blended.

Owns ``RollingStats`` (mean and sample standard deviation of the last W one-second values) and
``Fusion``: F_t = w_ofi·clip(z(OFI_N)) + w_cvd·clip(z(ΔCVD_N)), where OFI_N and ΔCVD_N are sums
over the last N seconds and z compares the current value with the W values before it. Pure: fed
one feature row per second; never does I/O, never imports trio.
"""

from __future__ import annotations

import math
from collections import deque

from ..kinds import Row
from .params import SignalParams


class RollingStats:
    """Mean and sample standard deviation of the last ``window`` values pushed.

    Running sums, re-summed exactly every ``window`` pushes so rounding cannot drift, and at
    once when a value that dwarfed the others leaves the window.
    """

    __slots__ = ("_pushes", "_sum", "_sumsq", "_values", "min_periods", "window")

    def __init__(self, window: int, min_periods: int) -> None:
        self.window = window
        self.min_periods = min_periods
        self._values: deque[float] = deque()
        self._sum = 0.0
        self._sumsq = 0.0
        self._pushes = 0

    def __len__(self) -> int:
        return len(self._values)

    def push(self, x: float) -> None:
        values = self._values
        values.append(x)
        self._sum += x
        self._sumsq += x * x
        resum = False
        if len(values) > self.window:
            old = values.popleft()
            self._sum -= old
            self._sumsq -= old * old
            # a value that dwarfed the rest leaves its rounding error behind (catastrophic
            # cancellation): re-sum exactly rather than carry it
            resum = old * old > 1e6 * abs(self._sumsq)
        self._pushes += 1
        if resum or self._pushes >= self.window:
            self._pushes = 0
            self._sum = math.fsum(values)
            self._sumsq = math.fsum(v * v for v in values)

    def mean_std(self) -> tuple[float, float] | None:
        """(mean, sample std) or None with fewer than ``min_periods`` values or no spread."""
        n = len(self._values)
        if n < self.min_periods or n < 2:
            return None
        mean = self._sum / n
        var = (self._sumsq - self._sum * mean) / (n - 1)
        if var <= 1e-12 * (self._sumsq / n):  # constant window (up to rounding)
            return None
        return mean, math.sqrt(var)

    def zscore(self, x: float) -> float | None:
        """z of ``x`` against the values pushed so far (``x`` itself not included)."""
        ms = self.mean_std()
        if ms is None:
            return None
        return (x - ms[0]) / ms[1]


def clip(x: float, limit: float) -> float:
    return -limit if x < -limit else limit if x > limit else x


class Fusion:
    """One fusion row per second from that second's OFI and ΔCVD (see the module docstring)."""

    __slots__ = ("_cvd_n", "_ofi_n", "_z_cvd", "_z_ofi", "params", "symbol")

    def __init__(self, symbol: str, params: SignalParams) -> None:
        self.symbol = symbol
        self.params = params
        self._ofi_n: deque[float] = deque(maxlen=params.fusion_window_s)
        self._cvd_n: deque[float] = deque(maxlen=params.fusion_window_s)
        self._z_ofi = RollingStats(params.z_window_s, params.z_min_periods)
        self._z_cvd = RollingStats(params.z_window_s, params.z_min_periods)

    def update(self, ts_ms: int, ofi_1s: float, delta_1s: float) -> Row:
        """Row of ``kinds.FUSION_SCHEMA``: ts_ms, symbol, ofi_n, dcvd_n, z_ofi, z_dcvd, score.
        z values are clipped at ±z_clip; z and score are null until the window has
        ``z_min_periods`` values."""
        p = self.params
        self._ofi_n.append(ofi_1s)
        self._cvd_n.append(delta_1s)
        ofi_n = math.fsum(self._ofi_n)
        dcvd_n = math.fsum(self._cvd_n)
        z_o = self._z_ofi.zscore(ofi_n)
        z_c = self._z_cvd.zscore(dcvd_n)
        self._z_ofi.push(ofi_n)
        self._z_cvd.push(dcvd_n)
        zo = None if z_o is None else clip(z_o, p.z_clip)
        zc = None if z_c is None else clip(z_c, p.z_clip)
        score = None if zo is None or zc is None else p.w_ofi * zo + p.w_cvd * zc
        return (ts_ms, self.symbol, ofi_n, dcvd_n, zo, zc, score)
