"""The simulator's listing changes (``listing=S``): a new symbol trades and streams at once, a
delisted one stops streaming, and exchangeInfo says so."""

from __future__ import annotations

import json

import trio
from trio_websocket import open_websocket_url

from trio_harvest.sim.faultplan import parse_faults
from trio_harvest.sim.server import SimConfig, Simulator


def listed(sim: Simulator) -> dict[str, str]:
    reply = sim.rest.handle("GET", "/fapi/v1/exchangeInfo")
    return {s["symbol"]: s["status"] for s in json.loads(reply.body)["symbols"]}


async def test_a_listing_change_starts_and_stops_streams() -> None:
    sim = Simulator(SimConfig(symbols=("BTCUSDT", "ETHUSDT"), rate=400.0))
    got: dict[str, int] = {}
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.serve)
        url = (f"ws://127.0.0.1:{port}/market/stream?streams=btcusdt@aggTrade/"
               "ethusdt@aggTrade/suiusdt@aggTrade")

        async def read() -> None:
            async with open_websocket_url(url) as ws:
                while True:
                    stream = json.loads(await ws.get_message())["stream"]
                    got[stream] = got.get(stream, 0) + 1

        nursery.start_soon(read)
        await trio.sleep(0.5)
        assert got.get("btcusdt@aggTrade") and "suiusdt@aggTrade" not in got
        sim.change_listing("SUIUSDT", "BTCUSDT")
        await trio.sleep(0.2)  # frames already queued
        btc = got["btcusdt@aggTrade"]
        await trio.sleep(0.8)
        nursery.cancel_scope.cancel()
    assert got["btcusdt@aggTrade"] == btc  # delisted: silent
    assert got.get("suiusdt@aggTrade", 0) > 0 and got["ethusdt@aggTrade"] > 0
    assert listed(sim) == {"ETHUSDT": "TRADING", "SUIUSDT": "TRADING", "BTCUSDT": "SETTLING"}
    assert sim.stats.listed == ["SUIUSDT"] and sim.stats.delisted == ["BTCUSDT"]
    # the delisted symbol's trades stay on REST (backfill of what came before)
    assert sim.rest.handle("GET", "/fapi/v1/aggTrades?symbol=BTCUSDT").status == 200


async def test_the_listing_fault_changes_the_listing_every_s_seconds() -> None:
    plan = parse_faults("listing=0.3")
    assert plan.listing == 0.3 and not plan.active  # no frame or connection fault with it
    sim = Simulator(SimConfig(symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"), rate=300.0,
                              faults=plan))
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.serve)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    statuses = listed(sim)
    assert len(sim.stats.listed) == len(sim.stats.delisted) >= 2
    assert all(statuses[s] == "TRADING" or s in sim.stats.delisted for s in sim.stats.listed)
    assert sum(v == "SETTLING" for v in statuses.values()) == len(sim.stats.delisted)
