"""What is Spot's own in its adapter: its listing without dates, the book rule ``U == previous u
+ 1`` through the derived ``pu``, partial depth stamped on receipt. The conformance suite
(``test_conformance.py``) runs for it from the registry."""

from __future__ import annotations

from trio_harvest.venues.binance_spot.adapter import VENUE

LISTING = {"symbols": [{"symbol": "BTCUSDT", "status": "TRADING"},
                       {"symbol": "LUNAUSDT", "status": "BREAK"}]}


def test_spot_listing() -> None:
    listed = VENUE.listing(LISTING)
    assert listed["BTCUSDT"].status == VENUE.trading and listed["LUNAUSDT"].status == "BREAK"
    assert VENUE.listing({}) == {} and VENUE.listing_request().path == "/api/v3/exchangeInfo"
    assert VENUE.listing_request().weight == 20
    assert not VENUE.listing_dates and listed["LUNAUSDT"].onboard_ms == 0  # spot lists no dates


def test_spot_specifics() -> None:
    assert VENUE.name == "binance-spot" and VENUE.messages_per_second == 5
    assert VENUE.weight_limit == 6000 and VENUE.trades_weight == 4
    req = VENUE.depth_request("BTCUSDT", 5000)
    assert (req.path, req.weight) == ("/api/v3/depth", 250)
    frame = ('{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512568,'
             '"s":"NKNUSDT","U":499869753,"u":499869754,"b":[["0.35170000","4265.0"]],"a":[]}}')
    d = VENUE.decode_envelope(frame).data
    assert d.prev_update_id == 499869752 == VENUE.decode(frame).data.prev_update_id
    assert VENUE.bridges(499869752, d) and VENUE.follows(499869752, d)  # U == L + 1
    assert not VENUE.follows(499869751, d)
    partial = VENUE.decode('{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":9,'
                           '"bids":[["1.0","2.0"]],"asks":[["1.1","3.0"]]}}').data
    row = VENUE.levels_row(partial, 1_700_000_000_000, 5, "depth")
    assert row[0] == 1_700_000_000_000 and row[3] == "BTCUSDT"  # stamped with receive time
