"""A symbol changing shards: the router keeps only its messages timed inside the window (the
other symbols' lanes stay the plain ones), and derived signals see only what was kept."""

from __future__ import annotations

import json
from typing import Any

from trio_harvest.kinds import BOOK_UPDATES, DEFAULT_WATERMARKS, ORDERBOOK, PRICES, QUOTES
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.pipeline.router import Router
from trio_harvest.pipeline.window import Window, WindowLane

NOW = 1_700_000_000_000


def agg(symbol: str, i: int, t: int) -> str:
    return json.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": {
        "e": "aggTrade", "E": t, "s": symbol, "a": i, "p": "100.5", "q": "0.1", "f": i,
        "l": i, "T": t, "m": False}})


class Hook:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_trade_record(self, t: Any) -> None:
        self.seen.append(t.agg_id)

    def on_quote(self, b: Any, recv_ms: int) -> None: ...
    def on_book_levels(self, d: Any, source: str) -> None: ...
    def on_trade(self, row: Any) -> None: ...
    def on_book(self, row: Any) -> None: ...


async def test_a_windowed_symbol_keeps_its_side_of_the_boundary_only() -> None:
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    btc, eth = Hook(), Hook()
    router = Router(lanes, ("BTCUSDT", "ETHUSDT"), depth_levels=5, wall_ms=lambda: NOW,
                    hooks={"BTCUSDT": btc, "ETHUSDT": eth})
    boundary = NOW + 5
    window = router.window("BTCUSDT", None, boundary)  # the old owner: rows before it
    assert router._prices["ETHUSDT"] is lanes.get(PRICES, "ETHUSDT")  # others: untouched
    assert router._books["ETHUSDT"] is lanes.get(ORDERBOOK, "ETHUSDT")
    assert router._quotes["ETHUSDT"] is lanes.get(QUOTES, "ETHUSDT")
    for i in range(10):
        await router.handle(agg("BTCUSDT", i, NOW + i))
        await router.handle(agg("ETHUSDT", i, NOW + i))
    assert [r[4] for r in lanes.get(PRICES, "BTCUSDT").drain()] == [0, 1, 2, 3, 4]
    assert [r[4] for r in lanes.get(PRICES, "ETHUSDT").drain()] == list(range(10))
    assert btc.seen == [0, 1, 2, 3, 4] and eth.seen == list(range(10)) and window.dropped == 5
    router.window("BTCUSDT", boundary, None)  # the new owner: rows from it on
    for i in range(10, 20):
        await router.handle(agg("BTCUSDT", i, NOW - 10 + i))
    assert [r[4] for r in lanes.get(PRICES, "BTCUSDT").drain()] == list(range(15, 20))
    router.unwindow("BTCUSDT")
    assert router._prices["BTCUSDT"] is lanes.get(PRICES, "BTCUSDT")
    assert router.hooks["BTCUSDT"] is btc


async def test_a_window_lane_filters_rows_put_by_a_backfill_too() -> None:
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    lane = lanes.get(PRICES, "BTCUSDT")
    sink = WindowLane(lane, Window(NOW, NOW + 2))
    for t in range(NOW - 2, NOW + 4):
        row = (t, "BTCUSDT", t, "BTCUSDT", t - NOW, 1.0, 1.0, False, t)
        await sink.put(row)
    assert [r[0] - NOW for r in lane.drain()] == [0, 1]


def test_book_updates_of_a_windowed_symbol_keep_its_side_of_the_boundary_only() -> None:
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    router = Router(lanes, ("BTCUSDT", "ETHUSDT"), depth_levels=5, wall_ms=lambda: NOW)
    assert router.book_updates_lane("BTCUSDT") is lanes.get(BOOK_UPDATES, "BTCUSDT")
    router.window("BTCUSDT", None, NOW + 5)
    for i in range(10):
        row = (NOW + i, NOW + i, NOW + i, "BTCUSDT", i, i, i - 1, "bid", 1.0, 1.0, False)
        assert router.book_updates_lane("BTCUSDT").put_nowait(row)
    assert [r[5] for r in lanes.get(BOOK_UPDATES, "BTCUSDT").drain()] == [0, 1, 2, 3, 4]
    router.unwindow("BTCUSDT")
    assert router.book_updates_lane("BTCUSDT") is lanes.get(BOOK_UPDATES, "BTCUSDT")
