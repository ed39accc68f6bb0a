"""CVD: the sign rule, agg-id gaps, duplicates, a reference on random trades, and real frames."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_harvest.kinds import CVD_SCHEMA, OFI_SCHEMA, PRICES_SCHEMA, orderbook_schema
from trio_harvest.signals import SignalEngine, SignalParams
from trio_harvest.signals.cvd import CvdState

from ..conftest import FIXTURES

CAPTURE = FIXTURES / "binance_usdm_ws_2021-07-22.txt"

I_DELTA, I_CVD, I_GAP = (CVD_SCHEMA.index(c) for c in ("delta", "cvd", "gap"))


def trade(ts: int, agg_id: int, price: float, qty: float, m: bool) -> tuple[Any, ...]:
    row = (ts, ts, ts, "BTCUSDT", agg_id, price, qty, agg_id, agg_id, m, None)
    assert len(row) == len(PRICES_SCHEMA.names)
    return row


def collector(out: list[tuple[str, tuple[Any, ...]]]) -> Callable[[str, tuple[Any, ...]], None]:
    def emit(kind: str, row: tuple[Any, ...]) -> None:
        out.append((kind, row))

    return emit


def engine(out: list[tuple[str, tuple[Any, ...]]], depth_levels: int = 5) -> SignalEngine:
    return SignalEngine("BTCUSDT", SignalParams(), depth_levels, lambda k, r: out.append((k, r)),
                        book_ticker=True)


def cvd_rows(out: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    return [r for k, r in out if k == "cvd"]


def test_buyer_maker_means_the_aggressor_sold() -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = engine(out)
    eng.on_trade(trade(1, 10, 100.0, 2.0, False))  # aggressive buy
    eng.on_trade(trade(2, 11, 100.0, 0.5, True))  # aggressive sell
    rows = cvd_rows(out)
    assert [(r[I_DELTA], r[I_CVD]) for r in rows] == [(2.0, 2.0), (-0.5, 1.5)]
    assert rows[0][:3] == (1, "BTCUSDT", 10)


def test_an_agg_id_break_flags_cvd_from_that_trade_on() -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = engine(out)
    for ts, agg in [(1, 10), (2, 11), (3, 13), (4, 14), (5, 15)]:
        eng.on_trade(trade(ts, agg, 100.0, 1.0, False))
    assert [r[I_GAP] for r in cvd_rows(out)] == [False, False, True, True, True]
    assert eng.cvd.gaps == 1
    assert eng.tail.flags_between(0, 10_000) == [(3, "gap")]


def test_duplicates_are_not_counted_twice() -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = engine(out)
    for agg in (10, 11, 11, 10, 12):
        eng.on_trade(trade(agg, agg, 100.0, 1.0, False))
    assert [r[I_CVD] for r in cvd_rows(out)] == [1.0, 2.0, 3.0]
    assert eng.cvd.duplicates == 2 and not eng.cvd.gap


trades_st = st.lists(
    st.tuples(st.sampled_from([1, 1, 1, 1, 2, 0, -1, 5]),  # agg-id step
              st.floats(0.001, 100.0), st.booleans()),
    min_size=1, max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(trades=trades_st)
def test_cvd_matches_a_plain_reference(trades: list[tuple[int, float, bool]]) -> None:
    out: list[tuple[str, tuple[Any, ...]]] = []
    eng = engine(out)
    agg = 1000
    expected: list[tuple[float, float, bool]] = []
    total, gap, last = 0.0, False, None
    for i, (step, qty, m) in enumerate(trades):
        agg += step
        eng.on_trade(trade(i, agg, 50.0, qty, m))
        # reference: skip anything not after the last accepted id; a skip sets the flag for good
        if last is not None and agg <= last:
            continue
        if last is not None and agg != last + 1:
            gap = True
        last = agg
        signed = -qty if m else qty
        total += signed
        expected.append((signed, total, gap))
    got = [(r[I_DELTA], r[I_CVD], r[I_GAP]) for r in cvd_rows(out)]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g[0] == e[0] and g[2] == e[2]
        assert g[1] == pytest.approx(e[1], rel=1e-12, abs=1e-9)


def test_cvd_state_alone() -> None:
    s = CvdState()
    assert s.update(5, 1.0, False) == "ok"
    assert s.update(7, 2.0, True) == "gap"
    assert s.update(7, 2.0, True) == "duplicate"
    assert (s.cvd, s.gap, s.last_agg_id) == (-1.0, True, 7)


# -- real frames -------------------------------------------------------------------------------


def load_capture() -> list[dict[str, Any]]:
    if not CAPTURE.is_file():
        pytest.skip("../shared/fixtures is not present")
    frames = []
    with CAPTURE.open() as fh:
        next(fh)  # the connection line
        for line in fh:
            _, _, raw = line.partition(": ")
            frames.append(json.loads(raw)["data"])
    return frames


def test_real_trades_give_plausible_cvd() -> None:
    frames = load_capture()
    outs: dict[str, list[tuple[str, tuple[Any, ...]]]] = defaultdict(list)
    engines: dict[str, SignalEngine] = {}
    trades: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in frames:
        if d["e"] != "aggTrade":
            continue
        sym = d["s"]
        if sym not in engines:
            engines[sym] = SignalEngine(sym, SignalParams(), 5,
                                        collector(outs[sym]),
                                        book_ticker=True)
        trades[sym].append(d)
        engines[sym].on_trade((d["T"], d["E"], d["T"], sym, d["a"], float(d["p"]),
                               float(d["q"]), d["f"], d["l"], d["m"]))
    assert trades, "the capture has aggTrade frames"
    longest_buy_run = longest_sell_run = 0
    for sym, ts in trades.items():
        rows = cvd_rows(outs[sym])
        assert len(rows) == len(ts)
        assert not any(r[I_GAP] for r in rows)  # the capture's agg ids are continuous
        for d, r in zip(ts, rows, strict=True):
            assert (r[I_DELTA] > 0) == (not d["m"])  # m=false: an aggressive buy adds
        # a run of aggressive buys raises CVD at every step; a run of sells lowers it
        run_start = 0
        for i in range(1, len(ts) + 1):
            if i == len(ts) or ts[i]["m"] != ts[run_start]["m"]:
                seg = [rows[k][I_CVD] for k in range(run_start, i)]
                before = rows[run_start - 1][I_CVD] if run_start else 0.0
                steps = [b - a for a, b in zip([before, *seg], seg, strict=False)]
                if ts[run_start]["m"]:
                    assert all(s < 0 for s in steps)
                    longest_sell_run = max(longest_sell_run, len(seg))
                else:
                    assert all(s > 0 for s in steps)
                    longest_buy_run = max(longest_buy_run, len(seg))
                run_start = i
        buys = sum(float(d["q"]) for d in ts if not d["m"])
        sells = sum(float(d["q"]) for d in ts if d["m"])
        assert rows[-1][I_CVD] == pytest.approx(buys - sells)
    assert longest_buy_run >= 3 and longest_sell_run >= 3  # the checks above had runs to check


def test_real_book_ticker_gives_plausible_ofi() -> None:
    frames = load_capture()
    schema = orderbook_schema(5)
    outs: dict[str, list[tuple[str, tuple[Any, ...]]]] = defaultdict(list)
    engines: dict[str, SignalEngine] = {}
    states: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for d in frames:
        if d["e"] != "bookTicker":
            continue
        sym = d["s"]
        if sym not in engines:
            engines[sym] = SignalEngine(sym, SignalParams(), 5,
                                        collector(outs[sym]),
                                        book_ticker=True)
        state = (float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"]))
        states[sym].append(state)
        row = (d["T"], d["E"], d["T"], sym, "bookTicker", d["u"], None, None, *state,
               *([None] * 16))
        assert len(row) == len(schema.names)
        engines[sym].on_book(row)
    signs = {"+": 0, "-": 0}
    moves = {"up": 0, "down": 0}
    i = OFI_SCHEMA.index("ofi_l1")
    for sym, ss in states.items():
        got = [r[i] for k, r in outs[sym] if k == "ofi"]
        for (pb0, qb0, pa0, qa0), (pb1, qb1, pa1, qa1), e in zip(ss, ss[1:], got[1:],
                                                                  strict=False):
            if pb1 == pb0 and pa1 == pa0:  # only sizes moved: bid grew or ask shrank => buy side
                assert e == pytest.approx((qb1 - qb0) - (qa1 - qa0))
            if pb1 > pb0 and pa1 > pa0:  # the whole quote moved up: buying pressure
                assert e > 0
                moves["up"] += 1
            if pb1 < pb0 and pa1 < pa0:  # the whole quote moved down: selling pressure
                assert e < 0
                moves["down"] += 1
            if e:
                signs["+" if e > 0 else "-"] += 1
    assert signs["+"] > 0 and signs["-"] > 0
    assert moves["up"] + moves["down"] > 0, moves
