"""okx-swap's derivatives channels, decoded from OKX's documented examples: each push into a
``Derivative`` carrying only its value (the rest null), open interest and liquidation sizes in
contracts times ``ctVal``, a push of several instIds naming each record's stream; the
subscribe args (an index by its name, liquidations by instType, once); the plan, health's
cadence and the channel rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trio_harvest import channels
from trio_harvest.errors import ConfigError
from trio_harvest.kinds import DERIVATIVES, LIQUIDATIONS
from trio_harvest.ops.health import stale_after
from trio_harvest.venues.base import BATCH, DERIVATIVE, LIQUIDATION, FrameError, derivatives_of
from trio_harvest.venues.okx.adapter import Okx, OkxSpot, OkxSwap
from trio_harvest.venues.rows import derivative_row, liquidation_row

# OKX's documented examples (docs-v5, WebSocket public channels), instIds as in the docs
MARK = ('{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP",'
        '"instId":"BTC-USDT-SWAP","markPx":"42310.6","ts":"1630049139746"}]}')
INDEX = ('{"arg":{"channel":"index-tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
         '"idxPx":"0.1","high24h":"0.5","low24h":"0.1","open24h":"0.1","sodUtc0":"0.1",'
         '"sodUtc8":"0.1","ts":"1597026383085"}]}')
FUNDING = ('{"arg":{"channel":"funding-rate","instId":"BTC-USD-SWAP"},"data":[{"formulaType":'
           '"noRate","fundingRate":"0.0001875391284828","fundingTime":"1700726400000",'
           '"impactValue":"","instId":"BTC-USD-SWAP","instType":"SWAP","interestRate":"",'
           '"maxFundingRate":"0.00375","method":"current_period","minFundingRate":"-0.00375",'
           '"nextFundingRate":"","nextFundingTime":"1700755200000","premium":'
           '"0.0001233824646391","settFundingRate":"0.0001699799259033","settState":"settled",'
           '"sign":"","ts":"1700724675402"}]}')
OPEN_INTEREST = ('{"arg":{"channel":"open-interest","instId":"LTC-USD-SWAP"},"data":[{'
                 '"instId":"LTC-USD-SWAP","instType":"SWAP","oi":"5000","oiCcy":"555.55",'
                 '"oiUsd":"50000","ts":"1597026383085"}]}')
LIQ = ('{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{'
       '"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13",'
       '"ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP",'
       '"instType":"SWAP","uly":"IOST-USDT"}]}')


def swap(scales: dict[str, float] | None = None) -> OkxSwap:
    v = OkxSwap()
    v.scales.update(scales or {})
    return v


def values(d: Any) -> dict[str, Any]:
    return {k: getattr(d, k) for k in ("mark_price", "index_price", "settle_price",
                                       "funding_rate", "next_funding_ms", "open_interest")}


def test_mark_price_carries_the_mark_only() -> None:
    env = swap().decode_envelope(MARK)
    d = env.data
    assert env.stream == "mark-price:BTC-USDT-SWAP" and d.kind == DERIVATIVE
    assert (d.symbol, d.source, d.event_ms, d.trade_ms) == ("BTC-USDT-SWAP", "mark-price",
                                                             1630049139746, 0)
    assert values(d) == {"mark_price": 42310.6, "index_price": None, "settle_price": None,
                         "funding_rate": None, "next_funding_ms": None, "open_interest": None}
    row = derivative_row(d, 5)
    assert row[:5] == (1630049139746, 1630049139746, 5, "BTC-USDT-SWAP", "mark-price")


def test_an_index_is_its_swaps() -> None:
    env = swap().decode_envelope(INDEX)
    assert env.stream == "index-tickers:BTC-USDT-SWAP"
    assert env.data.symbol == "BTC-USDT-SWAP" and env.data.index_price == 0.1
    assert env.data.mark_price is None and env.data.event_ms == 1597026383085


def test_funding_rate_and_when_it_settles() -> None:
    d = swap().decode_envelope(FUNDING).data
    assert d.symbol == "BTC-USD-SWAP" and d.source == "funding-rate"
    assert d.funding_rate == pytest.approx(0.0001875391284828)
    assert d.next_funding_ms == 1700726400000  # fundingTime: when this rate settles (08:00)
    assert d.next_funding_ms % (8 * 3_600_000) == 0 and d.event_ms == 1700724675402
    assert d.mark_price is None and d.open_interest is None and d.settle_price is None


def test_open_interest_is_contracts_times_ct_val() -> None:
    assert swap().decode_envelope(OPEN_INTEREST).data.open_interest == 5000.0  # no ctVal
    d = swap(scales={"LTC-USD-SWAP": 10.0}).decode_envelope(OPEN_INTEREST).data
    assert d.open_interest == 50_000.0 and d.funding_rate is None  # inverse: USD, as sizes


def test_a_liquidation_of_a_harvested_instrument() -> None:
    env = swap(scales={"IOST-USDT-SWAP": 1000.0}).decode_envelope(LIQ)
    q = env.data
    assert env.stream == "liquidation-orders:IOST-USDT-SWAP" and q.kind == LIQUIDATION
    assert (q.symbol, q.side, q.price, q.qty) == ("IOST-USDT-SWAP", "buy", 0.007831, 13_000.0)
    assert q.trade_ms == q.event_ms == 1692266434010
    assert liquidation_row(q, 9) == (1692266434010, 1692266434010, 9, "IOST-USDT-SWAP", "buy",
                                     0.007831, 13_000.0, None, None, "", "", "")


def test_a_push_of_several_instruments_names_each_records_stream() -> None:
    doc = json.loads(LIQ)
    other = json.loads(json.dumps(doc["data"][0]))
    other["instId"] = "BTC-USDT-SWAP"
    other["details"] = [dict(other["details"][0], side="sell", bkPx="30000", sz="2"),
                        dict(other["details"][0], side="buy", bkPx="30100", sz="1")]
    doc["data"].append(other)
    env = swap().decode_envelope(json.dumps(doc))
    batch = env.data
    assert batch.kind == BATCH
    assert [(r.symbol, r.side, r.price) for r in batch.records] == [
        ("IOST-USDT-SWAP", "buy", 0.007831), ("BTC-USDT-SWAP", "sell", 30000.0),
        ("BTC-USDT-SWAP", "buy", 30100.0)]
    assert batch.streams == ["liquidation-orders:IOST-USDT-SWAP",
                             "liquidation-orders:BTC-USDT-SWAP",
                             "liquidation-orders:BTC-USDT-SWAP"]


@pytest.mark.parametrize("frame", [
    MARK.replace('"42310.6"', '"abc"'),
    OPEN_INTEREST.replace('"5000"', '"-1"'),
    LIQ.replace('"side":"buy"', '"side":"up"'),
    LIQ.replace('"details":[{', '"details":[],"x":[{'),
    FUNDING.replace('"0.0001875391284828"', '"inf"'),
])
def test_a_bad_value_is_rejected(frame: str) -> None:
    with pytest.raises(FrameError) as info:
        swap().decode(frame)
    assert info.value.category == "rejected"


def test_subscribe_args_index_by_name_liquidations_once_by_inst_type() -> None:
    v = swap()
    names = ["mark-price:BTC-USDT-SWAP", "index-tickers:BTC-USDT-SWAP",
             "liquidation-orders:BTC-USDT-SWAP", "liquidation-orders:ETH-USDT-SWAP"]
    doc = json.loads(v.subscription("SUBSCRIBE", names, 3))
    assert doc["args"] == [{"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
                           {"channel": "index-tickers", "instId": "BTC-USDT"},
                           {"channel": "liquidation-orders", "instType": "SWAP"}]
    assert v.liquidated == {"BTC-USDT-SWAP", "ETH-USDT-SWAP"}
    # a later symbol joins the filter; the one subscription already carries it
    doc = json.loads(v.subscription("subscribe", ["trades:SOL-USDT-SWAP",
                                                  "liquidation-orders:SOL-USDT-SWAP"], 4))
    assert doc["args"] == [{"channel": "trades", "instId": "SOL-USDT-SWAP"}]
    assert "SOL-USDT-SWAP" in v.liquidated
    # unsubscribing one symbol never unsubscribes the others' liquidations
    doc = json.loads(v.subscription("unsubscribe", ["trades:ETH-USDT-SWAP",
                                                    "liquidation-orders:ETH-USDT-SWAP"], 5))
    assert doc["args"] == [{"channel": "trades", "instId": "ETH-USDT-SWAP"}]
    assert v.liquidated == {"BTC-USDT-SWAP", "SOL-USDT-SWAP"}
    # what a replacement connection subscribes: the index stream comes back by its swap
    url = v.url_after("wss://x/ws/v5/public#", [v.subscription("subscribe", names[:2], 6)])
    assert url.endswith("#mark-price:BTC-USDT-SWAP/index-tickers:BTC-USDT-SWAP")


def plan(v: Okx, chans: str = "", per_connection: int = 90) -> list[Any]:
    ch = channels.resolve(chans, v, "partial")
    symbols = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP")
    specs = channels.stream_plan(v, symbols, ch, depth_levels=5, depth_speed="100ms",
                                 book="partial", book_ticker=True)
    return v.plan_connections(specs, per_connection)


def test_the_plan_puts_every_liquidation_stream_on_the_first_connection() -> None:
    v = swap()
    plans = plan(v, per_connection=4)
    liq = [[s.name for s in p.streams if s.kind == "liquidation-orders"] for p in plans]
    assert liq[0] == [f"liquidation-orders:{s}-USDT-SWAP" for s in ("BTC", "ETH", "SOL")]
    assert not any(liq[1:])
    names = [s.name for p in plans for s in p.streams]
    for sym in ("BTC", "ETH", "SOL"):
        for ch in ("mark-price", "index-tickers", "funding-rate", "open-interest"):
            assert f"{ch}:{sym}-USDT-SWAP" in names
    messages = [m for p in plans for m in v.open_messages(p.url("wss://x"))]
    args = [a for m in messages for a in json.loads(m)["args"]]
    assert args.count({"channel": "liquidation-orders", "instType": "SWAP"}) == 1
    only = plan(swap(), "trades,derivatives")
    assert not [s for p in only for s in p.streams if s.kind == "liquidation-orders"]


def test_kinds_cadence_and_health() -> None:
    v = swap()
    assert v.stream_kind("funding-rate:BTC-USDT-SWAP") == DERIVATIVES
    assert v.stream_kind("liquidation-orders:BTC-USDT-SWAP") == LIQUIDATIONS
    # a quiet liquidation stream is never stale; funding (every 30-90 s) not within minutes
    assert stale_after("liquidation-orders", venue=v) >= 86_400
    assert stale_after("funding-rate", venue=v) >= 30 * 60
    assert stale_after("mark-price", venue=v) >= 60


def test_open_interest_is_a_channel_never_polled_and_spot_has_none() -> None:
    side = derivatives_of(OkxSwap())
    assert side is not None and side.polls_open_interest is False
    assert derivatives_of(OkxSpot()) is None
    assert DERIVATIVES not in channels.resolve("", OkxSpot(), "partial")
    with pytest.raises(ConfigError, match="okx-spot offers no derivatives"):
        channels.resolve("trades,derivatives", OkxSpot(), "partial")
