"""Fusion (rolling z-scores, clip, blend) and events (OFI spike, divergence, large trade)."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trio_harvest.kinds import EVENTS, EVENTS_SCHEMA, FUSION_SCHEMA
from trio_harvest.signals import SignalEngine, SignalParams
from trio_harvest.signals.events import (
    DIVERGENCE_BEARISH,
    DIVERGENCE_BULLISH,
    LARGE_TRADE,
    OFI_SPIKE,
    EventDetector,
    LargeTrades,
)
from trio_harvest.signals.fusion import Fusion, RollingStats
from trio_harvest.signals.tail import TailWindow

SYM = "BTCUSDT"
values = st.floats(-1e4, 1e4, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(xs=st.lists(values, min_size=1, max_size=80), window=st.integers(2, 12),
       min_periods=st.integers(2, 12))
@example(xs=[1449.0, 0.0, 0.01, 0.0], window=2, min_periods=2)  # found by hypothesis: cancellation
def test_rolling_stats_match_statistics(xs: list[float], window: int, min_periods: int) -> None:
    min_periods = min(min_periods, window)
    rs = RollingStats(window, min_periods)
    for i, x in enumerate(xs):
        past = xs[max(0, i - window):i]
        got = rs.zscore(x)
        rs.push(x)
        if len(past) < min_periods:
            assert got is None
            continue
        spread = statistics.stdev(past)
        if spread <= 1e-6 * max(1.0, *(abs(v) for v in past)):
            continue  # (nearly) constant window: rounding decides; the next test covers it
        assert got is not None
        assert got == pytest.approx((x - statistics.mean(past)) / spread, rel=1e-6, abs=1e-6)


def test_a_constant_window_has_no_z() -> None:
    rs = RollingStats(5, 2)
    for _ in range(7):
        rs.push(0.1)
    assert rs.zscore(3.0) is None


def ref_fusion(ofis: list[float], deltas: list[float], p: SignalParams) -> list[tuple[Any, ...]]:
    out = []
    ofi_n_hist: list[float] = []
    cvd_n_hist: list[float] = []
    for t in range(len(ofis)):
        lo = max(0, t - p.fusion_window_s + 1)
        ofi_n = sum(ofis[lo:t + 1])
        dcvd_n = sum(deltas[lo:t + 1])

        def z(hist: list[float], x: float) -> float | None:
            past = hist[-p.z_window_s:]
            if len(past) < p.z_min_periods or statistics.pstdev(past) == 0:
                return None
            return max(-p.z_clip, min(p.z_clip,
                                      (x - statistics.mean(past)) / statistics.stdev(past)))

        zo, zc = z(ofi_n_hist, ofi_n), z(cvd_n_hist, dcvd_n)
        score = None if zo is None or zc is None else p.w_ofi * zo + p.w_cvd * zc
        out.append((ofi_n, dcvd_n, zo, zc, score))
        ofi_n_hist.append(ofi_n)
        cvd_n_hist.append(dcvd_n)
    return out


@settings(max_examples=50, deadline=None)
@given(series=st.lists(st.tuples(st.integers(-50, 50), st.integers(-50, 50)), min_size=1,
                       max_size=60))
def test_fusion_matches_a_plain_reference(series: list[tuple[int, int]]) -> None:
    p = SignalParams(fusion_window_s=3, z_window_s=8, z_min_periods=4, z_clip=2.0, w_ofi=0.7,
                     w_cvd=0.3)
    f = Fusion(SYM, p)
    ofis = [float(a) for a, _ in series]
    deltas = [float(b) for _, b in series]
    got = [f.update(1000 * i, o, d) for i, (o, d) in enumerate(zip(ofis, deltas, strict=True))]
    want = ref_fusion(ofis, deltas, p)
    names = FUSION_SCHEMA.names
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g[:2] == (1000 * i, SYM)
        for name, a, b in zip(names[2:], g[2:], w, strict=True):
            if b is None:
                assert a is None, name
            else:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9), name
        assert g[names.index("z_ofi")] is None or abs(g[names.index("z_ofi")]) <= 2.0


def spike_detector(**kw: Any) -> EventDetector:
    return EventDetector(SYM, SignalParams(z_window_s=20, z_min_periods=10, spike_z=3.0,
                                           spike_cooldown_s=5, **kw))


def test_ofi_spike_fires_then_cools_down() -> None:
    det = spike_detector()
    calm = [1.0, -1.0] * 10
    events = []
    for i, x in enumerate([*calm, 50.0, 60.0, 1.0, -1.0, 1.0, -1.0, -80.0]):
        events += det.on_second(i * 1000, x, None, None)
    spikes = [e for e in events if e[2] == OFI_SPIKE]
    # 50 fires at t=20 s; 60 at t=21 s is inside the 5 s cooldown; -80 at t=26 s fires again
    assert [e[0] for e in spikes] == [20_000, 26_000]
    assert spikes[0][3] > 3.0 and spikes[1][3] < -3.0
    assert "side=buy" in spikes[0][4] and "side=sell" in spikes[1][4]
    assert len(spikes[0]) == len(EVENTS_SCHEMA.names)


def test_divergence_bearish_and_bullish() -> None:
    det = EventDetector(SYM, SignalParams(divergence_window_s=60, divergence_cooldown_s=60))
    events: list[tuple[Any, ...]] = []
    t = 0
    # a rally with strong buying: price and CVD both make highs (no divergence)
    for i in range(60):
        events += det.on_second(t, 0.0, 100.0 + i * 0.1, 10.0 * i)
        t += 1000
    assert events == []
    # price makes a new high while CVD is below its high: bearish
    events += det.on_second(t, 0.0, 120.0, 100.0)
    assert [e[2] for e in events] == [DIVERGENCE_BEARISH]
    assert events[0][3] == pytest.approx(100.0 - 590.0)
    t += 1000
    # inside the cooldown nothing more, whatever happens
    for _ in range(59):
        events += det.on_second(t, 0.0, 130.0, 0.0)
        t += 1000
    assert len(events) == 1
    # price makes a new low while CVD stays above its low: bullish
    events += det.on_second(t, 0.0, 90.0, 50.0)
    assert [e[2] for e in events] == [DIVERGENCE_BEARISH, DIVERGENCE_BULLISH]
    assert events[1][3] > 0


def test_no_divergence_until_the_window_is_full() -> None:
    det = EventDetector(SYM, SignalParams(divergence_window_s=60))
    assert det.on_second(0, 0.0, 100.0, 0.0) == []
    assert det.on_second(1000, 0.0, 200.0, -5.0) == []


def ref_quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@settings(max_examples=50, deadline=None)
@given(trades=st.lists(st.tuples(st.integers(0, 19_999), st.floats(1.0, 1e6)), max_size=120),
       quantile=st.sampled_from([0.5, 0.9, 0.999]), floor=st.sampled_from([0.0, 5e5]))
def test_large_trades_match_a_rolling_reference(trades: list[tuple[int, float]],
                                                quantile: float, floor: float) -> None:
    p = SignalParams(large_trade_window_s=5, large_trade_quantile=quantile,
                     large_trade_floor=floor)
    det = LargeTrades(SYM, p)
    tail = TailWindow()
    trades.sort()
    for ts, notional in trades:
        tail.add_trade(ts, notional, 1.0, 1.0, notional, 0.0)
    got = []
    for sec in range(20):
        i, j = tail.trades.span(sec * 1000, sec * 1000 + 1000)
        got += [(e[0], e[3]) for e in det.on_second(sec, tail.trades, i, j)]
    want = []
    for ts, notional in trades:
        sec = ts // 1000
        window = [n for t, n in trades if sec * 1000 - 5000 <= t < sec * 1000]
        thr = max(floor, ref_quantile(window, quantile)) if window else floor
        if notional >= thr:
            want.append((ts, notional))
    assert got == want


def test_a_large_trade_comes_out_of_the_engine_as_an_event() -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = SignalEngine(SYM, SignalParams(large_trade_floor=10_000.0), 5,
                       lambda k, r: out.append((k, r)), book_ticker=True)
    t0 = 1_700_000_000_000
    agg = 0
    for s in range(10):
        for k in range(20):
            agg += 1
            eng.on_trade((t0 + s * 1000 + k * 50, 0, 0, SYM, agg, 100.0, 1.0, 0, 0, False))
    agg += 1
    eng.on_trade((t0 + 10_500, 0, 0, SYM, agg, 100.0, 150.0, 0, 0, True))  # 15 000 notional
    out.extend(eng.close_seconds(1_700_000_000 + 11))
    large = [r for k, r in out if k == EVENTS and r[2] == LARGE_TRADE]
    assert len(large) == 1
    ts, sym, _, value, detail = large[0]
    assert (ts, sym, value) == (t0 + 10_500, SYM, 15_000.0)
    assert "side=sell" in detail and "threshold=10000" in detail
