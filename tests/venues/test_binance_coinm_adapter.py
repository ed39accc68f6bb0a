"""What is COIN-M's own in its adapter: message rate, plan URL, the trades request, its listing.
The conformance suite (``test_conformance.py``) runs for it from the registry."""

from __future__ import annotations

from typing import Any

from trio_harvest.venues.binance_coinm.adapter import VENUE
from trio_harvest.venues.binance_coinm.wire import PERPETUAL

LISTING = {"symbols": [
    {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": PERPETUAL,
     "contractStatus": "TRADING", "onboardDate": 1597042800000,
     "deliveryDate": 4133404800000, "contractSize": 100},
    {"symbol": "BTCUSD_210625", "pair": "BTCUSD", "contractType": "CURRENT_QUARTER",
     "contractStatus": "DELIVERING", "onboardDate": 1616112000000,
     "deliveryDate": 1624608000000, "contractSize": 100}]}


def test_coinm_specifics() -> None:
    assert VENUE.name == "binance-coinm" and VENUE.messages_per_second == 10
    plan = VENUE.plan_connections(VENUE.streams_for(
        ("BTCUSD_PERP", "BTCUSD_261225"), depth_levels=20, depth_speed="100ms", book="diff",
        book_ticker=True), 1024)
    assert len(plan) == 1 and plan[0].url("wss://dstream.binance.com").startswith(
        "wss://dstream.binance.com/stream?streams=btcusd_perp@aggTrade/")
    req = VENUE.trades_request("BTCUSD_PERP", 7, 5000)
    assert (req.path, dict(req.params), req.weight) == (
        "/dapi/v1/aggTrades", {"symbol": "BTCUSD_PERP", "fromId": 7, "limit": 1000}, 20)
    listed: dict[str, Any] = VENUE.listing(LISTING)
    assert listed["BTCUSD_PERP"].status == "TRADING"
    assert listed["BTCUSD_210625"].delivery_ms == 1624608000000
    assert VENUE.valid_symbol("BTCUSD_261225") and not VENUE.valid_symbol("BTCUSDT")
