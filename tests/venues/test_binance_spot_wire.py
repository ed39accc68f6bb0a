"""Binance Spot's wire module against the real spot capture and the documented examples."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from trio_harvest.venues.base import FrameError
from trio_harvest.venues.binance_common import backfill, sequence
from trio_harvest.venues.binance_common.facts import reply_to, stream_name, used_weight
from trio_harvest.venues.binance_spot import wire
from trio_harvest.venues.binance_spot.wire import (
    FACTS,
    PartialDepth,
    SpotAggTrade,
    SpotBookTicker,
    SpotDepthUpdate,
)

from .capture import agrees_with_tickers, frames, replay, snapshots

DOC_AGG = ('{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT",'
           '"a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,'
           '"T":1633998523963,"m":false,"M":true}}')
DOC_TICKER = ('{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT",'
              '"b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}')
DOC_PARTIAL = ('{"stream":"bnbbtc@depth5@100ms","data":{"lastUpdateId":160,'
               '"bids":[["0.0024","10"]],"asks":[["0.0026","100"],["0.0027","3"]]}}')


def test_documented_frames_decode_with_usdm_attribute_names() -> None:
    t = wire.decode_frame(DOC_AGG).data
    assert isinstance(t, SpotAggTrade)
    assert (t.agg_id, t.price, t.qty, t.first_id, t.last_id, t.trade_ms, t.event_ms, t.symbol,
            t.buyer_maker) == (15683430, 0.3528, 58.0, 19862790, 19862790, 1633998523963,
                               1633998523963, "NKNUSDT", False)
    b = wire.decode_frame(DOC_TICKER).data
    assert isinstance(b, SpotBookTicker)
    assert (b.update_id, b.symbol, b.bid, b.bid_qty, b.ask, b.ask_qty) == (
        400900217, "BNBUSDT", 25.3519, 31.21, 25.3652, 40.66)
    assert b.event_ms == 0 and b.trade_ms == 0  # no E/T on spot: stamp with receive time
    p = wire.decode_frame(DOC_PARTIAL).data
    assert isinstance(p, PartialDepth)
    assert (p.symbol, p.update_id, p.first_update_id, p.prev_update_id) == ("BNBBTC", 160, 160, -1)
    assert p.bids == [(0.0024, 10.0)] and p.asks == [(0.0026, 100.0), (0.0027, 3.0)]


def test_bad_frames_raise_frame_error_by_category() -> None:
    with pytest.raises(FrameError) as bad:
        wire.decode_frame("not json")
    assert bad.value.category == "malformed"
    with pytest.raises(FrameError) as odd:
        wire.decode_frame('{"stream":"x@kline_1m","data":{"e":"kline","E":1}}')
    assert odd.value.category == "unexpected"
    with pytest.raises(FrameError) as neg:
        wire.decode_frame(DOC_TICKER.replace('"25.35190000"', '"-1"'))
    assert neg.value.category == "rejected"


def test_real_spot_capture_decodes(fixtures_dir: Path) -> None:
    kinds: Counter[str] = Counter()
    for _, frame in frames(fixtures_dir / "binance_spot_ws_2021-10-12.txt"):
        stream = json.loads(frame)["stream"]
        try:
            msg = wire.decode_frame(frame).data
        except FrameError as exc:
            assert "@kline_1m" in stream and exc.category == "unexpected"
            continue
        kinds[type(msg).__name__] += 1
        assert msg.symbol == stream.partition("@")[0].upper()
        if isinstance(msg, SpotDepthUpdate):
            assert msg.prev_update_id == -1 and msg.trade_ms == 0  # no pu, no T on spot
    assert kinds["DepthUpdate"] == 177 and kinds["SpotBookTicker"] == 84
    assert kinds["AggTrade"] == 2


def _spot_capture(fixtures_dir: Path) -> tuple[list[tuple[float, SpotDepthUpdate]],
                                               dict[str, list[SpotBookTicker]]]:
    deltas: list[tuple[float, SpotDepthUpdate]] = []
    tickers: dict[str, list[SpotBookTicker]] = {}
    for recv, frame in frames(fixtures_dir / "binance_spot_ws_2021-10-12.txt"):
        try:
            msg = wire.decode_frame(frame).data
        except FrameError:
            continue
        if isinstance(msg, SpotDepthUpdate):
            deltas.append((recv, msg))
        elif isinstance(msg, SpotBookTicker):
            tickers.setdefault(msg.symbol, []).append(msg)
    return deltas, tickers


def test_capture_chains_on_u_plus_one_and_bridges_the_edge_case(fixtures_dir: Path) -> None:
    deltas, tickers = _spot_capture(fixtures_dir)
    last: dict[str, int] = {}
    for _, d in deltas:  # U == previous u + 1 throughout, no pu needed
        if d.symbol in last:
            assert wire.check_delta(last[d.symbol], d) == sequence.OK, d
        last[d.symbol] = d.update_id
    snaps = snapshots(fixtures_dir / "binance_spot_rest_2021-10-12.txt")
    done = replay(deltas, snaps, wire.check_delta, wire.align_snapshot)
    nkn = done["NKNUSDT"]
    assert nkn.snapshot_id == 499869752
    # the first delta (U=...750 u=...752) is dropped, the second starts at lastUpdateId + 1
    assert nkn.outcomes[:2] == [sequence.DROP, sequence.BRIDGE]
    assert nkn.first_applied is not None and nkn.first_applied.first_update_id == 499869753
    for symbol, rp in done.items():
        assert sequence.GAP not in rp.outcomes and sequence.TOO_OLD not in rp.outcomes, symbol
    compared, matched = agrees_with_tickers(nkn, tickers["NKNUSDT"])
    assert compared >= 10 and matched == compared


def test_sequence_rules() -> None:
    d = SpotDepthUpdate(event_ms=1, symbol="X", first_update_id=11, update_id=14, bids=[],
                        asks=[])
    assert wire.check_delta(10, d) == sequence.OK
    assert wire.check_delta(9, d) == sequence.GAP  # 10 missed
    assert wire.check_delta(12, d) == sequence.GAP  # overlaps: its start is not proven
    assert wire.check_delta(14, d) == sequence.STALE and wire.check_delta(20, d) == sequence.STALE
    assert wire.align_snapshot(14, d) == sequence.DROP  # u <= L
    assert wire.align_snapshot(10, d) == sequence.BRIDGE  # U == L + 1
    assert wire.align_snapshot(13, d) == sequence.BRIDGE  # U <= L + 1 <= u
    assert wire.align_snapshot(8, d) == sequence.TOO_OLD  # the snapshot predates U - 1
    assert wire.check_trade(None, 5) == sequence.OK and wire.check_trade(4, 5) == sequence.OK
    assert wire.check_trade(4, 7) == sequence.GAP and wire.check_trade(7, 7) == sequence.STALE
    assert sequence.missing_ids(4, 7) == (5, 6) and sequence.missing_ids(4, 5) is None
    assert wire.raw_ids_continue(19862789, 19862790)


def test_connection_facts() -> None:
    assert FACTS.streams_per_connection == 1024 and FACTS.messages_per_second == 5
    assert FACTS.server_ping_seconds == 20 and FACTS.pong_timeout_seconds == 60
    assert FACTS.control_interval() >= 1 / 5
    names = [stream_name("BTCUSDT", "aggTrade"), stream_name("BTCUSDT", "depth"),
             stream_name("BTCUSDT", "bookTicker"), stream_name("ETHUSDT", "depth", levels=20)]
    assert names == ["btcusdt@aggTrade", "btcusdt@depth@100ms", "btcusdt@bookTicker",
                     "ethusdt@depth20@100ms"]
    assert FACTS.combined_url(names[:2]) == \
        "wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/btcusdt@depth@100ms"
    assert FACTS.raw_url("btcusdt@aggTrade", "ws://127.0.0.1:9") == \
        "ws://127.0.0.1:9/ws/btcusdt@aggTrade"
    plans = FACTS.plan([f"s{i}@aggTrade" for i in range(2050)])
    assert [len(p) for p in plans] == [1024, 1024, 2]
    assert reply_to('{"result":null,"id":1}') == (1, "")
    assert wire.is_symbol("BTCUSDT") and not wire.is_symbol("btcusdt")


def test_rest_requests_weights_and_paging() -> None:
    assert FACTS.depth_path == "/api/v3/depth" and FACTS.agg_trades_path == "/api/v3/aggTrades"
    assert FACTS.exchange_info_path == "/api/v3/exchangeInfo" and FACTS.weight_limit == 6000
    assert [FACTS.depth_weight(n) for n in (5, 100, 500, 1000, 5000)] == [5, 5, 25, 50, 250]
    snap = wire.snapshot_request("BTCUSDT")
    assert snap.query == {"symbol": "BTCUSDT", "limit": 5000} and snap.weight == 250
    first = wire.backfill_request("BTCUSDT", 100, 2599)
    assert (first.path, first.query, first.weight) == (
        "/api/v3/aggTrades", {"symbol": "BTCUSDT", "fromId": 100, "limit": 1000}, 4)
    page = list(range(100, 1100))
    second = wire.next_backfill_request("BTCUSDT", page, 2599)
    assert second is not None and second.query["fromId"] == 1100
    last = wire.next_backfill_request("BTCUSDT", list(range(2100, 2600)), 2599)
    assert last is None  # covered
    assert wire.next_backfill_request("BTCUSDT", [], 2599) is None  # nothing more there
    assert backfill.pages_needed(FACTS, 100, 2599) == 3
    assert backfill.weight_needed(FACTS, 100, 2599) == 12
    assert backfill.fits(FACTS, 5996, 4) and not backfill.fits(FACTS, 5997, 4)
    assert used_weight({"x-mbx-used-weight-1m": "17"}) == 17 and used_weight({}) is None


def test_listing() -> None:
    info = {"rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": 6000}],
            "symbols": [{"symbol": "BTCUSDT", "status": "TRADING"},
                        {"symbol": "LUNAUSDT", "status": "BREAK"},
                        {"status": "TRADING"}]}
    listed = wire.parse_listing(info)
    assert set(listed) == {"BTCUSDT", "LUNAUSDT"}
    assert listed["BTCUSDT"].trading and not listed["LUNAUSDT"].trading
    assert listed["BTCUSDT"].contract_size == 1.0 and listed["BTCUSDT"].pair == "BTCUSDT"
    from trio_harvest.venues.binance_common.listing import weight_limit
    assert weight_limit(info, 1) == 6000 and weight_limit({}, 6000) == 6000
