"""The per-second feature table against a plain-Python reference, carry-forward, grace and
emit-once rules."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_harvest.kinds import FEATURES, FEATURES_SCHEMA, FUSION, orderbook_schema
from trio_harvest.signals import SignalEngine, SignalParams
from trio_harvest.signals.engine import flag_for
from trio_harvest.signals.task import emit_closed, flush_all

LEVELS = 5
SYM = "BTCUSDT"
BASE = 1_700_000_000  # seconds
COLS = FEATURES_SCHEMA.names
Out = list[tuple[str, tuple[Any, ...]]]


def trade_row(ts: int, agg: int, price: float, qty: float, m: bool) -> tuple[Any, ...]:
    return (ts, ts, ts, SYM, agg, price, qty, agg, agg, m)


def book_row(ts: int, source: str, levels: list[tuple[Any, Any, Any, Any]]) -> tuple[Any, ...]:
    flat: list[Any] = []
    for i in range(LEVELS):
        flat += list(levels[i]) if i < len(levels) else [None] * 4
    row = (ts, ts, ts, SYM, source, ts, None, None, *flat)
    assert len(row) == len(orderbook_schema(LEVELS).names)
    return row


def make_engine(out: Out, *, book_ticker: bool = True, **params: Any) -> SignalEngine:
    return SignalEngine(SYM, SignalParams(**params), LEVELS, lambda k, r: out.append((k, r)),
                        book_ticker=book_ticker)


def features_of(out: Out) -> list[dict[str, Any]]:
    return [dict(zip(COLS, r, strict=True)) for k, r in out if k == FEATURES]


# -- the reference ----------------------------------------------------------------------------


def ref_side(p0: Any, q0: Any, p1: Any, q1: Any, bid: bool) -> float:
    if None in (p0, q0, p1, q1):
        return 0.0
    if p1 == p0:
        return float((q1 - q0) if bid else (q0 - q1))
    better = p1 > p0 if bid else p1 < p0
    if better:
        return float(q1 if bid else -q1)
    return float(-q0 if bid else q0)


def ref_ofi(prev: tuple[Any, ...], cur: tuple[Any, ...], levels: int) -> float:
    total = 0.0
    for m in range(levels):
        i = 8 + 4 * m
        total += ref_side(prev[i], prev[i + 1], cur[i], cur[i + 1], True)
        total += ref_side(prev[i + 2], prev[i + 3], cur[i + 2], cur[i + 3], False)
    return total


def reference(records: list[tuple[str, Any]], *, book_ticker: bool, ofi_levels: int,
              end_sec: int) -> list[dict[str, Any]]:
    """Feature rows computed the plain way: every record in arrival order, then each second by
    filtering all records."""
    trades, l1, ml, flags = [], [], [], []
    last_agg, cvd, prev_l1, prev_depth = None, 0.0, None, None
    for n, (kind, rec) in enumerate(records):
        if kind == "trade":
            ts, agg, price, qty, m = rec[0], rec[4], rec[5], rec[6], rec[9]
            if last_agg is not None and agg <= last_agg:
                continue
            if last_agg is not None and agg != last_agg + 1:
                flags.append((ts, "gap"))
            last_agg = agg
            cvd += -qty if m else qty
            trades.append({"ts": ts, "n": n, "p": price, "q": qty, "m": m, "cvd": cvd})
        elif kind == "gap":
            ts, reason = rec
            flags.append((ts, flag_for(reason)))
            prev_l1 = prev_depth = None
        else:
            ts, source = rec[0], rec[4]
            if source == "bookTicker" or not book_ticker:
                top = rec[8:12]
                if None not in top:
                    ofi = 0.0 if prev_l1 is None else ref_ofi(prev_l1, rec, 1)
                    l1.append({"ts": ts, "n": n, "ofi": ofi, "top": top})
                    prev_l1 = rec
            if source != "bookTicker":
                ofi = 0.0 if prev_depth is None else ref_ofi(prev_depth, rec, ofi_levels)
                q_bid = sum(rec[9 + 4 * m] or 0.0 for m in range(5))
                q_ask = sum(rec[11 + 4 * m] or 0.0 for m in range(5))
                ml.append({"ts": ts, "n": n, "ofi": ofi, "q": (q_bid, q_ask)})
                prev_depth = rec
    admitted = [r["ts"] for r in trades + l1 + ml]
    if not admitted:
        return []
    rows = []
    for sec in range(min(admitted) // 1000, end_sec):
        lo, hi = sec * 1000, sec * 1000 + 1000

        def upto(rs: list[dict[str, Any]], hi: int = hi) -> list[dict[str, Any]]:
            return sorted((r for r in rs if r["ts"] < hi), key=lambda r: (r["ts"], r["n"]))

        here = [t for t in trades if lo <= t["ts"] < hi]
        buy = sum(t["q"] for t in here if not t["m"])
        sell = sum(t["q"] for t in here if t["m"])
        volume = sum(t["q"] for t in here)
        notional = sum(t["p"] * t["q"] for t in here)
        last_trade = upto(trades)[-1] if upto(trades) else None
        last_l1 = upto(l1)[-1] if upto(l1) else None
        last_ml = upto(ml)[-1] if upto(ml) else None
        bid: Any = None
        ask: Any = None
        qb: Any = None
        qa: Any = None
        if last_l1:
            bid, qb, ask, qa = last_l1["top"]
        n_l1 = sum(1 for r in l1 if lo <= r["ts"] < hi)
        n_ml = sum(1 for r in ml if lo <= r["ts"] < hi)
        q5 = last_ml["q"] if last_ml else None
        f = sorted({name for ts, name in flags if lo <= ts < hi})
        rows.append({
            "ts_ms": lo, "symbol": SYM,
            "last": last_trade["p"] if last_trade else None,
            "vwap": notional / volume if here else None,
            "volume": volume, "notional": notional, "n_trades": len(here),
            "buy_vol": buy, "sell_vol": sell, "delta": buy - sell,
            "cvd": last_trade["cvd"] if last_trade else None,
            "ofi_l1": sum(r["ofi"] for r in l1 if lo <= r["ts"] < hi),
            "ofi_ml": sum(r["ofi"] for r in ml if lo <= r["ts"] < hi),
            "bid": bid, "ask": ask,
            "spread": None if bid is None else ask - bid,
            "mid": None if bid is None else (ask + bid) / 2,
            "wmid": None if bid is None else (ask * qb + bid * qa) / (qb + qa),
            "imb_l1": None if bid is None else (qb - qa) / (qb + qa),
            "imb_l5": None if q5 is None else (q5[0] - q5[1]) / (q5[0] + q5[1]),
            "book_updates": n_l1 + n_ml if book_ticker else n_ml,
            "flags": ",".join(f),
            # no derivatives or liquidations are fed here: the contract state is empty
            "mark_price": None, "funding_rate": None, "open_interest": None,
            "liq_count": 0, "liq_notional": 0.0,
        })
    return rows


def assert_rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [r["ts_ms"] for r in got] == [r["ts_ms"] for r in want]
    for g, w in zip(got, want, strict=True):
        for col in COLS:
            a, b = g[col], w[col]
            if isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9), (col, g, w)
            else:
                assert a == b, (col, g, w)


# -- random data against the reference -------------------------------------------------------

prices = st.sampled_from([99.0, 99.5, 100.0, 100.5])
sizes = st.sampled_from([0.25, 1.0, 2.0, 3.5])
level = st.one_of(st.tuples(prices, sizes, prices, sizes),
                  st.tuples(st.none(), st.none(), prices, sizes))


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[str, Any]], bool, int, list[int]]:
    book_ticker = draw(st.booleans())
    span = draw(st.integers(1, 6)) * 1000
    offset = st.integers(0, span - 1)
    trades = sorted(draw(st.lists(
        st.tuples(offset, st.sampled_from([1, 1, 1, 1, 2, 0]), sizes, st.booleans(),
                  st.sampled_from([100.0, 100.5, 101.0, 99.5])), max_size=40)))
    tickers = sorted(draw(st.lists(st.tuples(offset, prices, sizes, sizes), max_size=30))
                     ) if book_ticker else []
    depths = sorted(draw(st.lists(st.tuples(offset, st.lists(level, min_size=1, max_size=5)),
                                  max_size=20)), key=lambda d: d[0])
    gaps = draw(st.lists(st.tuples(offset, st.sampled_from(["disconnect", "stall",
                                                            "book sequence break"])),
                         max_size=2))
    agg = 500
    per_stream: dict[str, list[tuple[str, Any]]] = {"t": [], "k": [], "d": []}
    for off, step, qty, m, price in trades:
        agg += step
        per_stream["t"].append(("trade", trade_row(BASE * 1000 + off, agg, price, qty, m)))
    for off, bid, qb, qa in tickers:
        per_stream["k"].append(("book", book_row(BASE * 1000 + off, "bookTicker",
                                                 [(bid, qb, bid + 0.5, qa)])))
    for off, levels in depths:
        per_stream["d"].append(("book", book_row(BASE * 1000 + off, "depth5", levels)))
    # interleave the streams arbitrarily, each in its own order (as one connection delivers them)
    labels = draw(st.permutations([k for k, v in per_stream.items() for _ in v]))
    iters = {k: iter(v) for k, v in per_stream.items()}
    records = [next(iters[k]) for k in labels]
    for off, reason in gaps:
        at = draw(st.integers(0, len(records)))
        records.insert(at, ("gap", (BASE * 1000 + off, reason)))
    ticks = draw(st.lists(st.integers(1, 3), min_size=1, max_size=8))
    return records, book_ticker, span // 1000, ticks


@settings(max_examples=60, deadline=None)
@given(data=streams(), ofi_levels=st.integers(1, LEVELS))
def test_feature_rows_match_the_plain_reference(
    data: tuple[list[tuple[str, Any]], bool, int, list[int]], ofi_levels: int
) -> None:
    records, book_ticker, span_s, ticks = data
    out: Out = []
    eng = make_engine(out, book_ticker=book_ticker, ofi_levels=ofi_levels)
    for kind, rec in records:
        if kind == "trade":
            eng.on_trade(rec)
        elif kind == "book":
            eng.on_book(rec)
        else:
            eng.on_gap(*rec)
    end_sec = BASE + span_s
    upto = BASE
    for step in ticks:  # close in uneven steps: one second, several, none
        upto = min(end_sec, upto + step - 1)
        eng_out = eng.close_seconds(upto)
        out.extend(eng_out)
    out.extend(eng.close_seconds(end_sec))
    got = features_of(out)
    want = reference(records, book_ticker=book_ticker, ofi_levels=ofi_levels, end_sec=end_sec)
    assert_rows_equal(got, want)
    assert sum(1 for k, _ in out if k == FUSION) == len(got)  # one fusion row per second
    assert eng.tail.late == 0


# -- hand-made cases ----------------------------------------------------------------------------


def test_empty_seconds_carry_state_and_sum_to_zero() -> None:
    out: Out = []
    eng = make_engine(out)
    t0 = BASE * 1000
    eng.on_trade(trade_row(t0 + 100, 1, 100.0, 2.0, False))
    eng.on_trade(trade_row(t0 + 900, 2, 101.0, 1.0, True))
    eng.on_book(book_row(t0 + 500, "bookTicker", [(100.0, 3.0, 101.0, 1.0)]))
    eng.on_book(book_row(t0 + 600, "depth5", [(100.0, 3.0, 101.0, 1.0),
                                              (99.0, 2.0, 102.0, 4.0)]))
    eng.on_trade(trade_row(t0 + 3_200, 3, 102.0, 1.0, False))
    out.extend(eng.close_seconds(BASE + 4))
    rows = features_of(out)
    assert [r["ts_ms"] for r in rows] == [t0, t0 + 1000, t0 + 2000, t0 + 3000]
    first, empty = rows[0], rows[1]
    assert first["n_trades"] == 2 and first["volume"] == 3.0 and first["notional"] == 301.0
    assert first["vwap"] == pytest.approx(301.0 / 3.0)
    assert (first["buy_vol"], first["sell_vol"], first["delta"], first["cvd"]) == (
        2.0, 1.0, 1.0, 1.0)
    assert (first["bid"], first["ask"], first["spread"], first["mid"]) == (
        100.0, 101.0, 1.0, 100.5)
    assert first["wmid"] == pytest.approx((101.0 * 3.0 + 100.0 * 1.0) / 4.0)
    assert first["imb_l1"] == 0.5 and first["imb_l5"] == pytest.approx((5.0 - 5.0) / 10.0)
    assert first["book_updates"] == 2 and first["flags"] == ""
    assert first["ofi_l1"] == 0.0 and first["ofi_ml"] == 0.0  # first states: nothing to compare
    # an empty second: sums 0, last/cvd/book carried, vwap null
    assert empty["n_trades"] == 0 and empty["volume"] == 0.0 and empty["delta"] == 0.0
    assert empty["vwap"] is None and empty["book_updates"] == 0
    for col in ("last", "cvd", "bid", "ask", "spread", "mid", "wmid", "imb_l1", "imb_l5"):
        assert empty[col] == first[col], col
    assert rows[3]["last"] == 102.0 and rows[3]["cvd"] == 2.0


def test_before_any_trade_or_book_the_fields_are_null() -> None:
    out: Out = []
    eng = make_engine(out)
    eng.on_book(book_row(BASE * 1000 + 10, "depth5", [(100.0, 1.0, 101.0, 3.0)]))
    out.extend(eng.close_seconds(BASE + 1))
    (row,) = features_of(out)
    assert row["last"] is None and row["cvd"] is None and row["bid"] is None
    assert row["imb_l5"] == pytest.approx(-0.5)  # depth gives the 5-level imbalance
    assert row["book_updates"] == 1


def test_grace_lets_late_records_count_then_closes_the_second_once() -> None:
    out: Out = []
    eng = make_engine(out)
    engines = {SYM: eng}
    t0 = BASE * 1000

    def emit(kind: str, row: tuple[Any, ...]) -> None:
        out.append((kind, row))

    eng.on_trade(trade_row(t0 + 200, 1, 100.0, 1.0, False))
    assert emit_closed(engines, emit, t0 + 1_400) == 0  # 1.4 s: second 0 not closed yet
    eng.on_trade(trade_row(t0 + 900, 2, 100.5, 2.0, False))  # late, within the grace
    emit_closed(engines, emit, t0 + 1_500)  # end + grace: second 0 closes
    assert emit_closed(engines, emit, t0 + 1_999) == 0  # nothing twice
    eng.on_trade(trade_row(t0 + 950, 3, 99.0, 5.0, True))  # too late: its second is out
    assert eng.tail.late == 1
    emit_closed(engines, emit, t0 + 2_600)
    emit_closed(engines, emit, t0 + 1_000)  # a clock step back changes nothing
    rows = features_of(out)
    assert [r["ts_ms"] for r in rows] == [t0, t0 + 1000]
    assert rows[0]["n_trades"] == 2 and rows[0]["volume"] == 3.0 and rows[0]["last"] == 100.5
    assert rows[1]["n_trades"] == 0 and rows[1]["last"] == 100.5
    assert rows[1]["cvd"] == 3.0  # the too-late trade is in CVD from the next trade on
    # shutdown: everything up to the last complete second, no grace
    eng.on_trade(trade_row(t0 + 2_100, 4, 99.0, 1.0, True))
    flush_all(engines, emit, t0 + 3_000)
    rows = features_of(out)
    assert [r["ts_ms"] for r in rows] == [t0, t0 + 1000, t0 + 2000]
    assert rows[2]["cvd"] == pytest.approx(-3.0)


def test_flags_mark_gaps_resyncs_and_stalls_in_their_second() -> None:
    out: Out = []
    eng = make_engine(out)
    t0 = BASE * 1000
    eng.on_trade(trade_row(t0 + 10, 1, 100.0, 1.0, False))
    eng.on_trade(trade_row(t0 + 20, 5, 100.0, 1.0, False))  # agg-id break
    eng.on_gap(t0 + 1_500, "disconnect")
    eng.on_gap(t0 + 1_600, "book sequence break")
    eng.on_gap(t0 + 2_500, "stall")
    out.extend(eng.close_seconds(BASE + 3))
    assert [r["flags"] for r in features_of(out)] == ["gap", "gap,resync", "stale"]


def test_a_clock_jump_stays_bounded() -> None:
    out: Out = []
    eng = make_engine(out, max_lag_s=30)
    eng.on_trade(trade_row(BASE * 1000, 1, 100.0, 1.0, False))
    out.extend(eng.close_seconds(BASE + 10_000))
    rows = features_of(out)
    assert len(rows) == 30
    assert rows[0]["flags"] == "stale" and rows[-1]["ts_ms"] == (BASE + 9_999) * 1000
    assert eng.tail.skipped_s == 10_000 - 30


def test_vwap_is_finite_and_between_the_extreme_prices() -> None:
    out: Out = []
    eng = make_engine(out)
    for i, p in enumerate([100.0, 103.0, 101.0]):
        eng.on_trade(trade_row(BASE * 1000 + i, i + 1, p, 1.0 + i, i % 2 == 0))
    out.extend(eng.close_seconds(BASE + 1))
    (row,) = features_of(out)
    assert math.isfinite(row["vwap"]) and 100.0 <= row["vwap"] <= 103.0


def test_one_query_for_every_symbol_gives_each_symbol_its_own_sums() -> None:
    """The features task aggregates all symbols of a tick at once; the sums per symbol and
    second must be exactly those of the per-symbol query."""
    from trio_harvest.signals.features import aggregate, aggregate_many
    from trio_harvest.signals.tail import TailWindow

    tails = []
    for k in range(4):
        tail = TailWindow()
        for i in range(30 * (k + 1)):
            ts = BASE + 10 * i * (k + 1)
            tail.add_trade(ts, 100.0 + i, 1.0 + k, (-1) ** i * (1.0 + k), 100.0, float(i))
            tail.add_l1(ts + 1, 0.5 * i, 99.0, 101.0, 1.0, 2.0)
            if i % 3 == 0:
                tail.add_ml(ts + 2, -0.25 * i, 5.0, 6.0)
        tails.append(tail)
    empty = TailWindow()
    spans = [(t, BASE // 1000, BASE // 1000 + 3) for t in tails] + [(empty, BASE // 1000, BASE // 1000 + 1)]
    many = aggregate_many(spans)
    assert many[-1] == {}
    for (tail, lo, hi), got in zip(spans[:-1], many[:-1], strict=True):
        assert got == aggregate(tail, lo, hi) and got
