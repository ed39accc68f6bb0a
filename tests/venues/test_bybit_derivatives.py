"""Bybit linear's derivatives side: ``tickers.{symbol}`` (a snapshot, then partial deltas)
merged into the full state with one ``derivatives`` row of what changed, ``allLiquidation``
into ``liquidations`` rows, the topics each channel subscribes, and spot offering neither.

The frames are the examples of Bybit's v5 documentation ("Ticker" and "All Liquidation"):
the linear BTCUSDT ticker snapshot, a delta of the shape the docs describe (only the fields that
changed), a USDT delivery future's ticker, and the ROSEUSDT liquidation."""

from __future__ import annotations

import json

import pytest

from trio_harvest import venues
from trio_harvest.channels import resolve, stream_plan
from trio_harvest.errors import ConfigError
from trio_harvest.kinds import DERIVATIVES_SCHEMA, LIQUIDATIONS_SCHEMA
from trio_harvest.venues.base import (
    BATCH,
    DERIVATIVE,
    DERIVATIVES,
    LIQUIDATION,
    LIQUIDATIONS,
    FrameError,
    derivatives_of,
)
from trio_harvest.venues.bybit.adapter import Bybit
from trio_harvest.venues.bybit.derivatives import TickerData, TickerMerge
from trio_harvest.venues.bybit.facts import LINEAR as LINEAR_CATEGORY
from trio_harvest.venues.rows import derivative_row, liquidation_row

LINEAR, SPOT = venues.get("bybit-linear"), venues.get("bybit-spot")

SNAPSHOT = {"topic": "tickers.BTCUSDT", "type": "snapshot", "data": {
    "symbol": "BTCUSDT", "tickDirection": "PlusTick", "price24hPcnt": "0.017103",
    "lastPrice": "17216.00", "prevPrice24h": "16926.50", "highPrice24h": "17281.50",
    "lowPrice24h": "16915.00", "prevPrice1h": "17238.00", "markPrice": "17217.33",
    "indexPrice": "17227.36", "openInterest": "68744.761",
    "openInterestValue": "1183601235.91", "turnover24h": "1570383121.943499",
    "volume24h": "91705.276", "nextFundingTime": "1673280000000", "fundingRate": "-0.000212",
    "bid1Price": "17215.50", "bid1Size": "84.489", "ask1Price": "17216.00",
    "ask1Size": "83.020"}, "cs": 24987956059, "ts": 1673272861686}
# a delta: only what changed (here the mark price, the open interest and the last price)
DELTA = {"topic": "tickers.BTCUSDT", "type": "delta", "data": {
    "symbol": "BTCUSDT", "lastPrice": "17218.50", "markPrice": "17218.01",
    "openInterest": "68751.002", "openInterestValue": "1183728170.68"},
    "cs": 24987956070, "ts": 1673272861786}
# a delta that repeats a value the state has and changes nothing a row carries
QUIET = {"topic": "tickers.BTCUSDT", "type": "delta", "data": {
    "symbol": "BTCUSDT", "fundingRate": "-0.000212", "volume24h": "91705.300"},
    "cs": 24987956071, "ts": 1673272861886}
# a USDT delivery future: no funding (""), a predicted delivery price
FUTURE = {"topic": "tickers.BTCUSDT-21FEB25", "type": "snapshot", "data": {
    "symbol": "BTCUSDT-21FEB25", "lastPrice": "98210.50", "markPrice": "98205.12",
    "indexPrice": "97180.33", "openInterest": "512.377", "nextFundingTime": "",
    "fundingRate": "", "deliveryTime": "2025-02-21T08:00:00Z", "basisRate": "0.0105",
    "deliveryFeeRate": "0", "predictedDeliveryPrice": "97190.01"},
    "cs": 1200331, "ts": 1739502303204}
LIQUIDATION_FRAME = {"topic": "allLiquidation.ROSEUSDT", "type": "snapshot",
                     "ts": 1739502303204, "data": [
                         {"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000",
                          "p": "0.04499"}]}


def fresh() -> Bybit:
    """An adapter of its own: the tickers state of one test never leaks into another's."""
    return Bybit(LINEAR_CATEGORY)


def dump(doc: object) -> str:
    return json.dumps(doc)


def named(schema: list[str], row: tuple[object, ...]) -> dict[str, object]:
    return dict(zip(schema, row, strict=True))


def test_a_snapshot_writes_every_value_it_carries() -> None:
    env = fresh().decode(dump(SNAPSHOT))
    assert env.stream == "tickers.BTCUSDT" and env.data.kind == DERIVATIVE
    row = named(DERIVATIVES_SCHEMA.names, derivative_row(env.data, 1673272861700))
    assert row == {"ts_ms": 1673272861686, "event_ms": 1673272861686, "recv_ms": 1673272861700,
                   "symbol": "BTCUSDT", "source": "tickers", "mark_price": 17217.33,
                   "index_price": 17227.36, "settle_price": None, "funding_rate": -0.000212,
                   "next_funding_ms": 1673280000000, "open_interest": 68744.761}


def test_a_delta_writes_only_what_changed_and_the_state_is_merged() -> None:
    venue = fresh()
    venue.decode(dump(SNAPSHOT))
    d = venue.decode(dump(DELTA)).data
    row = named(DERIVATIVES_SCHEMA.names, derivative_row(d, 1))
    assert (row["mark_price"], row["open_interest"]) == (17218.01, 68751.002)
    # what the delta did not change is null, never a stale copy of the snapshot's
    assert row["index_price"] is None and row["funding_rate"] is None
    assert row["next_funding_ms"] is None and row["ts_ms"] == 1673272861786
    assert venue.tickers is not None
    assert venue.tickers.state["BTCUSDT"] == {
        "markPrice": "17218.01", "indexPrice": "17227.36", "fundingRate": "-0.000212",
        "nextFundingTime": "1673280000000", "openInterest": "68751.002"}
    # a delta that changes nothing a row carries routes no record (an empty batch)
    quiet = venue.decode(dump(QUIET)).data
    assert quiet.kind == BATCH and list(quiet.records) == []


def test_a_new_snapshot_replaces_the_state_and_a_delta_first_writes_what_it_says() -> None:
    merge = TickerMerge()
    first = merge.apply(TickerData("ETHUSDT", markPrice="1200.5"), False, 5)
    assert first is not None and first.mark_price == 1200.5 and first.index_price is None
    merge.apply(TickerData("ETHUSDT", markPrice="1200.5", indexPrice="1201"), True, 6)
    again = merge.apply(TickerData("ETHUSDT", markPrice="1200.5", indexPrice="1201"), True, 7)
    assert again is not None and (again.mark_price, again.index_price) == (1200.5, 1201.0)
    assert merge.apply(TickerData("ETHUSDT", markPrice="1200.5"), False, 8) is None


def test_a_delivery_future_has_no_funding_and_a_predicted_delivery_price() -> None:
    d = fresh().decode(dump(FUTURE)).data
    assert d.funding_rate is None and d.next_funding_ms is None
    assert d.settle_price == 97190.01 and d.open_interest == 512.377


@pytest.mark.parametrize("field, text", [("markPrice", "-1"), ("openInterest", "nan"),
                                         ("fundingRate", "abc"), ("nextFundingTime", "-5")])
def test_a_value_no_column_can_hold_is_rejected_and_leaves_the_state(field: str,
                                                                      text: str) -> None:
    venue = fresh()
    venue.decode(dump(SNAPSHOT))
    bad = {**DELTA, "data": {"symbol": "BTCUSDT", "indexPrice": "17230.00", field: text}}
    with pytest.raises(FrameError) as err:
        venue.decode(dump(bad))
    assert err.value.category == "rejected"
    assert venue.tickers is not None
    assert venue.tickers.state["BTCUSDT"]["indexPrice"] == "17227.36"


def test_all_liquidation_decodes_with_the_order_side() -> None:
    env = fresh().decode(dump(LIQUIDATION_FRAME))
    assert env.stream == "allLiquidation.ROSEUSDT" and env.data.kind == LIQUIDATION
    row = named(LIQUIDATIONS_SCHEMA.names, liquidation_row(env.data, 1739502303300))
    # "S":"Sell" is a short position liquidated: the liquidation order buys
    assert row == {"ts_ms": 1739502302929, "event_ms": 1739502303204, "recv_ms": 1739502303300,
                   "symbol": "ROSEUSDT", "side": "buy", "price": 0.04499, "qty": 20000.0,
                   "avg_price": None, "filled_qty": None, "status": "", "order_type": "",
                   "time_in_force": ""}
    two = {**LIQUIDATION_FRAME, "data": [
        {"T": 1739502302929, "s": "ROSEUSDT", "S": "Buy", "v": "100", "p": "0.045"},
        {"T": 1739502302990, "s": "ROSEUSDT", "S": "Sell", "v": "50", "p": "0.046"}]}
    batch = fresh().decode(dump(two)).data
    assert batch.kind == BATCH and [r.side for r in batch.records] == ["sell", "buy"]
    with pytest.raises(FrameError):
        fresh().decode(dump({**LIQUIDATION_FRAME, "data": [
            {"T": 1739502302929, "s": "ROSEUSDT", "S": "Long", "v": "1", "p": "1"}]}))


def test_topics_are_derivatives_and_liquidations_streams() -> None:
    assert LINEAR.stream_kind("tickers.BTCUSDT") == DERIVATIVES
    assert LINEAR.stream_kind("allLiquidation.BTCUSDT") == LIQUIDATIONS
    assert LINEAR.stream_symbol("allLiquidation.BTCUSDT-21FEB25") == "BTCUSDT-21FEB25"
    assert LINEAR.stream_kind("tickers") == DERIVATIVES  # a stream kind, as health asks
    assert LINEAR.cadence["allLiquidation"] >= 86_400  # silent liquidations are never stale


def test_channels_choose_the_topics_and_spot_offers_none() -> None:
    def names(text: str, venue: venues.Venue = LINEAR) -> set[str]:
        return {s.name for s in stream_plan(venue, ("BTCUSDT",), resolve(text, venue, "diff"),
                                            depth_levels=50, depth_speed="100ms", book="diff",
                                            book_ticker=True)}

    assert names("") == {"publicTrade.BTCUSDT", "orderbook.50.BTCUSDT", "orderbook.1.BTCUSDT",
                         "tickers.BTCUSDT", "allLiquidation.BTCUSDT"}
    assert names("derivatives") == {"tickers.BTCUSDT"}
    assert names("trades,liquidations") == {"publicTrade.BTCUSDT", "allLiquidation.BTCUSDT"}
    assert "derivatives" not in names("", SPOT) and derivatives_of(SPOT) is None
    assert not any(n.startswith(("tickers", "allLiquidation")) for n in names("", SPOT))
    with pytest.raises(ConfigError, match="bybit-spot offers no liquidations") as err:
        resolve("trades,liquidations", SPOT, "diff")
    assert "\n" not in str(err.value)


def test_open_interest_is_not_polled_and_its_rest_answer_decodes() -> None:
    side = derivatives_of(LINEAR)
    assert side is not None and getattr(side, "polls_open_interest", True) is False
    req = side.open_interest_request("BTCUSDT")
    assert req.path == "/v5/market/open-interest" and req.params["category"] == "linear"
    body = (b'{"retCode":0,"retMsg":"OK","result":{"symbol":"BTCUSDT","category":"linear",'
            b'"list":[{"openInterest":"461134384.00000000","timestamp":"1669571400000"}],'
            b'"nextPageCursor":""},"retExtInfo":{},"time":1672053548579}')
    oi = side.decode_open_interest(body, "BTCUSDT")
    assert (oi.open_interest, oi.event_ms, oi.symbol) == (461134384.0, 1669571400000, "BTCUSDT")
    with pytest.raises(ValueError, match="asked for ETHUSDT"):
        side.decode_open_interest(body, "ETHUSDT")
