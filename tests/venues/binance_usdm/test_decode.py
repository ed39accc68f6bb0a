from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from trio_harvest.kinds import PRICES_SCHEMA, orderbook_schema
from trio_harvest.venues.binance_usdm.decode import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    FrameError,
    decode_frame,
    depth_row,
    ticker_row,
    trade_row,
)

AGG = ('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1714867234000,"s":"BTCUSDT",'
       '"a":5933014,"p":"100012.50","q":"0.025","nq":"0.025","f":100928146,"l":100928150,'
       '"T":1714867234123,"m":true,"x":"extra field"}}')


def test_agg_trade_to_row() -> None:
    env = decode_frame(AGG)
    assert isinstance(env.data, AggTrade)
    row = trade_row(env.data, recv_ms=1714867234200)
    assert dict(zip(PRICES_SCHEMA.names, row, strict=True)) == {
        "ts_ms": 1714867234123, "event_ms": 1714867234000, "recv_ms": 1714867234200,
        "symbol": "BTCUSDT", "agg_id": 5933014, "price": 100012.5, "qty": 0.025,
        "first_id": 100928146, "last_id": 100928150, "is_buyer_maker": True,
        "trade_id": None,
    }


def test_depth_rows_pad_missing_levels() -> None:
    frame = ('{"stream":"btcusdt@depth5@100ms","data":{"e":"depthUpdate","E":2,"T":1,'
             '"s":"BTCUSDT","U":10,"u":12,"pu":9,"b":[["100.0","1.5"]],'
             '"a":[["100.1","2"],["100.2","3"]]}}')
    env = decode_frame(frame)
    assert isinstance(env.data, DepthUpdate)
    row = depth_row(env.data, 3, 5, "depth5")
    rec = dict(zip(orderbook_schema(5).names, row, strict=True))
    assert rec["ts_ms"] == 1 and rec["update_id"] == 12 and rec["prev_update_id"] == 9
    assert (rec["bid_px_1"], rec["bid_sz_1"], rec["ask_px_2"], rec["ask_sz_2"]) == (100.0, 1.5,
                                                                                      100.2, 3.0)
    assert rec["bid_px_2"] is None and rec["ask_px_5"] is None


def test_book_ticker_row() -> None:
    frame = ('{"stream":"bnbusdt@bookTicker","data":{"e":"bookTicker","u":400900217,'
             '"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000",'
             '"B":"31.21000000","a":"25.36520000","A":"40.66000000"}}')
    env = decode_frame(frame)
    assert isinstance(env.data, BookTicker)
    rec = dict(zip(orderbook_schema(10).names, ticker_row(env.data, 5, 10), strict=True))
    assert rec["source"] == "bookTicker" and rec["bid_px_1"] == 25.3519
    assert rec["ask_sz_1"] == 40.66 and rec["bid_px_2"] is None


@pytest.mark.parametrize(
    ("frame", "category"),
    [
        ('{"stream":"x","data":{"e":"aggTrade"', "malformed"),  # truncated
        ("not json at all", "malformed"),
        ("", "malformed"),
        ('{"result":null,"id":1}', "unexpected"),  # a control reply
        ('{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT"}}', "unexpected"),
        ('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT"}}', "unexpected"),
        ('{"stream":"b@aggTrade","data":{"e":"aggTrade","E":1,"s":"B","a":1,"p":"x","q":"1",'
         '"f":1,"l":1,"T":1,"m":false}}', "unexpected"),  # price not a number
        ('[1,2,3]', "unexpected"),
    ],
)
def test_bad_frames_raise_frame_error_with_a_category(frame: str, category: str) -> None:
    with pytest.raises(FrameError) as info:
        decode_frame(frame)
    assert info.value.category == category


def test_real_usdm_frames_decode(fixtures_dir: Path) -> None:
    counts: Counter[str] = Counter()
    lines = (fixtures_dir / "binance_usdm_ws_2021-07-22.txt").read_text().splitlines()[1:]
    for line in lines:
        frame = line.split(": ", 1)[1]
        try:
            env = decode_frame(frame)
        except FrameError as exc:
            counts[exc.category] += 1
            assert '"e":"kline"' in frame  # the only stream we do not decode
            continue
        counts[type(env.data).__name__] += 1
        if isinstance(env.data, AggTrade):
            row = trade_row(env.data, 0)
            assert row[5] > 0 and row[6] > 0 and row[7] <= row[8]
        elif isinstance(env.data, BookTicker):
            assert env.data.bid < env.data.ask
    assert counts["AggTrade"] > 50 and counts["DepthUpdate"] > 500 and counts["BookTicker"] > 500
    assert counts["malformed"] == 0
