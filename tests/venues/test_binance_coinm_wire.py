"""Binance COIN-M's wire module against the real COIN-M capture and the documented examples."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trio_harvest.venues.base import FrameError
from trio_harvest.venues.binance_coinm import wire
from trio_harvest.venues.binance_coinm.wire import (
    FACTS,
    CoinmAggTrade,
    CoinmBookTicker,
    CoinmDepthUpdate,
)
from trio_harvest.venues.binance_common import sequence
from trio_harvest.venues.binance_common.listing import PERPETUAL_DELIVERY_MS

from .capture import agrees_with_tickers, frames, replay, snapshots

CAPTURE = "binance_coinm_ws_2021-07-22.txt"
DOC_AGG = ('{"stream":"bchusd_perp@aggTrade","data":{"e":"aggTrade","E":1626916404006,'
           '"a":11285749,"s":"BCHUSD_PERP","p":"427.91","q":"3","f":16034449,"l":16034449,'
           '"T":1626916403852,"m":true}}')


def _ms(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp()) * 1000


def test_documented_trade_decodes_in_contracts() -> None:
    t = wire.decode_frame(DOC_AGG).data
    assert isinstance(t, CoinmAggTrade)
    assert (t.agg_id, t.symbol, t.price, t.qty, t.first_id, t.last_id, t.trade_ms, t.event_ms,
            t.buyer_maker) == (11285749, "BCHUSD_PERP", 427.91, 3.0, 16034449, 16034449,
                               1626916403852, 1626916404006, True)
    # 3 contracts of 10 USD: 30 USD, 30 / 427.91 BCH
    assert wire.notional_usd(t.qty, 10) == 30.0
    assert wire.base_qty(t.qty, 10, t.price) == pytest.approx(30 / 427.91)
    assert wire.notional_usd(2, 100) == 200.0  # BTC contracts are 100 USD


def _capture(fixtures_dir: Path) -> tuple[Counter[str], list[tuple[float, CoinmDepthUpdate]],
                                          dict[str, list[CoinmBookTicker]],
                                          list[CoinmAggTrade]]:
    kinds: Counter[str] = Counter()
    deltas: list[tuple[float, CoinmDepthUpdate]] = []
    tickers: dict[str, list[CoinmBookTicker]] = {}
    trades: list[CoinmAggTrade] = []
    for recv, frame in frames(fixtures_dir / CAPTURE):
        try:
            msg = wire.decode_frame(frame).data
        except FrameError as exc:
            assert "@kline_1m" in json.loads(frame)["stream"] and exc.category == "unexpected"
            kinds["kline"] += 1
            continue
        kinds[type(msg).__name__] += 1
        if isinstance(msg, CoinmDepthUpdate):
            deltas.append((recv, msg))
        elif isinstance(msg, CoinmBookTicker):
            assert msg.event_ms > 0 and msg.trade_ms > 0  # unlike spot, with times
            tickers.setdefault(msg.symbol, []).append(msg)
        else:
            trades.append(msg)
    return kinds, deltas, tickers, trades


def test_real_capture_decodes_chains_and_bridges(fixtures_dir: Path) -> None:
    kinds, deltas, tickers, trades = _capture(fixtures_dir)
    assert kinds == {"BookTicker": 973, "DepthUpdate": 465, "AggTrade": 28, "kline": 14}
    last: dict[str, int] = {}
    for _, d in deltas:  # pu == previous u: 0 breaks in 465 events
        if d.symbol in last:
            assert wire.check_delta(last[d.symbol], d) == sequence.OK, d
        last[d.symbol] = d.update_id
    snaps = snapshots(fixtures_dir / "binance_coinm_rest_2021-07-22.txt")
    assert len(snaps) == 10
    done = replay(deltas, snaps, wire.check_delta, wire.align_snapshot)
    assert {s for s in done if wire.delivery_ms(s) != PERPETUAL_DELIVERY_MS} == {
        "BTCUSD_211231", "LINKUSD_211231", "BCHUSD_210924", "ETHUSD_210924"}
    compared = matched = 0
    for symbol, rp in done.items():
        first = rp.first_applied  # every snapshot is bridged inside the capture
        assert first is not None, symbol
        assert first.first_update_id <= rp.snapshot_id <= first.update_id, symbol
        assert sequence.GAP not in rp.outcomes and sequence.TOO_OLD not in rp.outcomes, symbol
        c, m = agrees_with_tickers(rp, tickers[symbol])
        compared, matched = compared + c, matched + m
    assert compared >= 20 and matched == compared  # 23 line up
    prev: dict[str, CoinmAggTrade] = {}
    for t in trades:  # a +1 throughout (f == previous l + 1 happens to hold too)
        if t.symbol in prev:
            assert wire.check_trade(prev[t.symbol].agg_id, t.agg_id) == sequence.OK
        prev[t.symbol] = t
    assert len(prev) == 7


def test_sequence_rules_are_usdm_pu_rules() -> None:
    d = CoinmDepthUpdate(event_ms=1, symbol="BTCUSD_PERP", first_update_id=11, update_id=14,
                         bids=[], asks=[], trade_ms=1, prev_update_id=9)
    assert wire.check_delta(9, d) == sequence.OK  # pu chains, whatever U is
    assert wire.check_delta(8, d) == sequence.GAP
    assert wire.check_delta(14, d) == sequence.STALE
    assert wire.align_snapshot(15, d) == sequence.DROP
    assert wire.align_snapshot(12, d) == sequence.BRIDGE  # U <= L <= u
    assert wire.align_snapshot(14, d) == sequence.BRIDGE
    assert wire.align_snapshot(9, d) == sequence.BRIDGE  # pu == L: taken on a boundary
    assert wire.align_snapshot(5, d) == sequence.TOO_OLD
    assert wire.check_trade(10, 12) == sequence.GAP


def test_facts_and_rest() -> None:
    assert FACTS.ws_url == "wss://dstream.binance.com" and FACTS.rest_prefix == "/dapi/v1"
    assert FACTS.streams_per_connection == 1024 and FACTS.messages_per_second == 10
    assert FACTS.server_ping_seconds == 180 and FACTS.pong_timeout_seconds == 600
    assert FACTS.combined_url(["btcusd_perp@aggTrade"]) == \
        "wss://dstream.binance.com/stream?streams=btcusd_perp@aggTrade"
    req = wire.backfill_request("BTCUSD_PERP", 7, 9)
    assert (req.path, req.query, req.weight) == (
        "/dapi/v1/aggTrades", {"symbol": "BTCUSD_PERP", "fromId": 7, "limit": 3}, 20)
    snap = wire.snapshot_request("BTCUSD_PERP")
    assert snap.path == "/dapi/v1/depth" and snap.query["limit"] == 1000 and snap.weight == 20
    assert [FACTS.depth_weight(n) for n in (5, 50, 100, 500, 1000)] == [2, 2, 5, 10, 20]
    now = _ms(2026, 12, 7)
    assert wire.within_history(now - 364 * 86_400_000, now)
    assert not wire.within_history(now - 366 * 86_400_000, now)


def test_symbols_and_quarterlies() -> None:
    assert wire.is_symbol("BTCUSD_PERP") and wire.is_symbol("BTCUSD_251226")
    assert not wire.is_symbol("BTCUSDT") and not wire.is_symbol("btcusd_perp")
    assert wire.pair_of("ETHUSD_260327") == "ETHUSD"
    assert wire.delivery_ms("BTCUSD_251226") == _ms(2025, 12, 26, 8)
    assert wire.delivery_ms("BTCUSD_PERP") == PERPETUAL_DELIVERY_MS
    assert wire.delivery_ms("BTCUSD_251399") == PERPETUAL_DELIVERY_MS  # no such date
    # last Fridays of the quarter months, 08:00 UTC
    assert wire.quarterly_symbol("BTCUSD", _ms(2026, 12, 7)) == "BTCUSD_261225"
    assert wire.quarterly_symbol("BTCUSD", _ms(2026, 12, 7), ahead=1) == "BTCUSD_270326"
    assert wire.quarterly_symbol("BTCUSD", _ms(2026, 12, 25, 8)) == "BTCUSD_270326"  # delivered
    assert wire.quarterly_symbol("BTCUSD", _ms(2021, 7, 22)) == "BTCUSD_210924"  # the capture's


def test_listing_with_contract_size_and_delivery() -> None:
    info = {"symbols": [
        {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL",
         "deliveryDate": PERPETUAL_DELIVERY_MS, "onboardDate": 1597042800000,
         "contractStatus": "TRADING", "contractSize": 100},
        {"symbol": "BTCUSD_211231", "pair": "BTCUSD", "contractType": "CURRENT_QUARTER",
         "deliveryDate": _ms(2021, 12, 31, 8), "onboardDate": 1625126400000,
         "contractStatus": "TRADING", "contractSize": 100},
        {"symbol": "ETHUSD_210924", "pair": "ETHUSD", "contractType": "NEXT_QUARTER",
         "deliveryDate": _ms(2021, 9, 24, 8), "contractStatus": "DELIVERING",
         "contractSize": "10"},
        {"symbol": "BAD_PERP", "contractStatus": "TRADING", "contractSize": -3},
    ]}
    listed = wire.parse_listing(info)
    btc, q, eth = listed["BTCUSD_PERP"], listed["BTCUSD_211231"], listed["ETHUSD_210924"]
    assert btc.trading and btc.contract_size == 100 and btc.contract_type == wire.PERPETUAL
    assert q.delivery_ms == wire.delivery_ms("BTCUSD_211231") and q.pair == "BTCUSD"
    assert q.expired(_ms(2022, 1, 1)) and not q.expired(_ms(2021, 12, 1))
    assert not eth.trading and eth.contract_size == 10.0
    assert listed["BAD_PERP"].contract_size == 1.0  # nonsense reads as the default
