"""The router's path for a futures contract's state: a markPrice frame becomes one
``derivatives`` row (values it does not carry null), a forceOrder frame one ``liquidations``
row, the symbol's hook sees both, a value no column holds is rejected, and a full lane makes
the producer wait (authoritative) rather than drop."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from trio_harvest.kinds import DEFAULT_WATERMARKS, DERIVATIVES, LIQUIDATIONS, Row
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.pipeline.router import Router
from trio_harvest.venues.okx.adapter import OkxSwap

NOW = 1_700_000_000_000


def mark(t: int = NOW, rate: str = "0.0001") -> str:
    return json.dumps({"stream": "btcusdt@markPrice@1s", "data": {
        "e": "markPriceUpdate", "E": t, "s": "BTCUSDT", "p": "100.5", "i": "100.4",
        "P": "100.45", "r": rate, "T": 1_700_006_400_000}})


def force(t: int = NOW) -> str:
    return json.dumps({"stream": "btcusdt@forceOrder", "data": {
        "e": "forceOrder", "E": t, "o": {"s": "BTCUSDT", "S": "BUY", "o": "LIMIT", "f": "IOC",
                                          "q": "0.5", "p": "101", "ap": "100.9", "X": "FILLED",
                                          "l": "0.5", "z": "0.5", "T": t - 1}}})


class Hook:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Row]] = []

    def on_state(self, kind: str, row: Row) -> None:
        self.seen.append((kind, row))


def router(watermarks: dict[str, tuple[int, int]] | None = None) -> tuple[Router, Lanes, Hook]:
    lanes = Lanes({**DEFAULT_WATERMARKS, **(watermarks or {})}, wake=lambda lane: None)
    r = Router(lanes, ("BTCUSDT",), depth_levels=5, wall_ms=lambda: NOW + 3,
               streams={"btcusdt@markPrice@1s": "BTCUSDT", "btcusdt@forceOrder": "BTCUSDT"})
    hook = Hook()
    r.hooks = {"BTCUSDT": hook}  # type: ignore[dict-item]
    return r, lanes, hook


async def test_mark_price_and_force_order_go_to_their_lanes_and_the_hook() -> None:
    r, lanes, hook = router()
    await r.handle(mark())
    await r.handle(force(NOW + 1000))
    await r.release_held()  # a stream's first frame waits for the time guard's verdict
    derivs = list(lanes.get(DERIVATIVES, "BTCUSDT").drain())
    liqs = list(lanes.get(LIQUIDATIONS, "BTCUSDT").drain())
    assert derivs == [(NOW, NOW, NOW + 3, "BTCUSDT", "markPrice", 100.5, 100.4, 100.45, 0.0001,
                       1_700_006_400_000, None)]
    assert liqs == [(NOW + 999, NOW + 1000, NOW + 3, "BTCUSDT", "buy", 101.0, 0.5, 100.9, 0.5,
                     "FILLED", "LIMIT", "IOC")]
    assert [k for k, _ in hook.seen] == [DERIVATIVES, LIQUIDATIONS]
    assert r.stats.last_seen.keys() == {"btcusdt@markPrice@1s", "btcusdt@forceOrder"}


async def test_a_funding_rate_that_is_not_a_number_is_rejected() -> None:
    r, lanes, hook = router()
    await r.handle(mark(rate="abc"))
    await r.handle(mark(NOW + 1000))
    assert r.stats.rejected == 1
    assert [row[0] for row in lanes.get(DERIVATIVES, "BTCUSDT").drain()] == [NOW + 1000]
    assert len(hook.seen) == 1


async def test_a_full_derivatives_lane_makes_the_producer_wait() -> None:
    r, lanes, _ = router({DERIVATIVES: (2, 4)})
    for i in range(4):
        await r.handle(mark(NOW + 1000 * i))
    lane = lanes.get(DERIVATIVES, "BTCUSDT")
    assert lane.level == 4
    waiting = r.feed(mark(NOW + 4000))
    assert waiting is not None  # full: the coroutine to await (backpressure)

    async def wait() -> None:
        await waiting

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        assert lane.level == 4 and lane.stats.blocked == 1
        assert len(lane.drain()) == 4
    assert [row[0] for row in lane.drain()] == [NOW + 4000]  # nothing lost



@pytest.mark.parametrize("subscribed", [True, False])
async def test_an_okx_liquidation_push_of_two_instruments_goes_to_each_ones_lane(
        subscribed: bool) -> None:
    """OKX's ``liquidation-orders`` carries every instId of the instType: the records of the
    harvested ones reach their own symbol's lane (each on its stream), the rest is dropped
    and counted, never as a bad frame (live, and in a restart replay before any subscription)."""
    symbols = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    live = {f"liquidation-orders:{s}": s for s in symbols}
    r = Router(lanes, symbols, depth_levels=5, wall_ms=lambda: NOW + 3, venue=OkxSwap(),
               streams=live if subscribed else None)

    def entry(inst: str, side: str, px: str, t: int) -> dict[str, object]:
        return {"details": [{"bkLoss": "0", "bkPx": px, "ccy": "", "posSide": "long",
                             "side": side, "sz": "2", "ts": str(t)}],
                "instFamily": inst[:-5], "instId": inst, "instType": "SWAP", "uly": inst[:-5]}

    push = {"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
            "data": [entry("BTC-USDT-SWAP", "sell", "30000", NOW),
                     entry("XRP-USDT-SWAP", "sell", "0.5", NOW),
                     entry("ETH-USDT-SWAP", "buy", "2000", NOW + 1)]}
    await r.handle(json.dumps(push))
    await r.release_held()
    btc = list(lanes.get(LIQUIDATIONS, "BTC-USDT-SWAP").drain())
    eth = list(lanes.get(LIQUIDATIONS, "ETH-USDT-SWAP").drain())
    assert [(row[3], row[4], row[5]) for row in btc] == [("BTC-USDT-SWAP", "sell", 30000.0)]
    assert [(row[3], row[4], row[5]) for row in eth] == [("ETH-USDT-SWAP", "buy", 2000.0)]
    assert r.stats.unexpected == r.stats.rejected == r.stats.malformed == 0
    assert r.stats.other_liquidations == 1  # XRP's
    assert r.stats.last_seen.keys() == {f"liquidation-orders:{s}" for s in symbols}
