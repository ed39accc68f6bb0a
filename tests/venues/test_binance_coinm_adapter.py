"""The COIN-M adapter passes the venue conformance suite on the real COIN-M capture, before it is
registered: each conformance test is run here with it (registering it in ``venues/__init__.py``
then runs them there too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trio_harvest.venues.base import Venue
from trio_harvest.venues.binance_coinm.adapter import VENUE
from trio_harvest.venues.binance_coinm.wire import PERPETUAL

from . import test_conformance as conformance

CAPTURE = ("binance_coinm_ws_2021-07-22.txt", "binance_coinm_rest_2021-07-22.txt")
LISTING = {"symbols": [
    {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": PERPETUAL,
     "contractStatus": "TRADING", "onboardDate": 1597042800000,
     "deliveryDate": 4133404800000, "contractSize": 100},
    {"symbol": "BTCUSD_210625", "pair": "BTCUSD", "contractType": "CURRENT_QUARTER",
     "contractStatus": "DELIVERING", "onboardDate": 1616112000000,
     "deliveryDate": 1624608000000, "contractSize": 100}]}

WITH_CAPTURE: list[Callable[[Venue, Path], None]] = [
    conformance.test_decode_gives_records_of_the_streams_they_came_on,
    conformance.test_records_carry_the_fields_the_core_reads,
    conformance.test_the_book_rule_holds_on_the_capture_and_catches_a_lost_update,
    conformance.test_a_book_kept_by_the_venues_rule_agrees_with_its_quote_stream,
    conformance.test_the_trade_continuity_rule_holds_on_the_capture,
    conformance.test_the_connection_plan_subscribes_within_the_limits,
]
WITHOUT: list[Callable[[Venue], None]] = [
    conformance.test_backfill_pages_within_the_venue_limits,
    conformance.test_keepalive_is_the_servers_or_the_clients,
    conformance.test_the_listing_parse,
]


@pytest.fixture(autouse=True)
def _samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(conformance.CAPTURES, VENUE.name, CAPTURE)
    monkeypatch.setitem(conformance.LISTINGS, VENUE.name, LISTING)


@pytest.mark.parametrize("check", WITH_CAPTURE, ids=lambda f: f.__name__)
def test_coinm_conforms_on_its_capture(check: Callable[[Venue, Path], None],
                                       fixtures_dir: Path) -> None:
    check(VENUE, fixtures_dir)


@pytest.mark.parametrize("check", WITHOUT, ids=lambda f: f.__name__)
def test_coinm_conforms(check: Callable[[Venue], None]) -> None:
    check(VENUE)


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
