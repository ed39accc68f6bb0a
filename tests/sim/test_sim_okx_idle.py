"""OKX's idle cut in the simulator, and the harvester's keepalive against it: a socket that has
no subscription, or is pushed nothing, for the idle time (OKX: 30 s; 1.5 s here) is closed; the
harvester's ``ping`` (every 25 s on OKX, under the idle time) gets a ``pong`` pushed back, so
a quiet socket stays open. A connection subscribed to ``funding-rate`` alone is quiet: the
simulator pushes it every 5 s."""

from __future__ import annotations

import dataclasses

import pytest
import trio

from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import RECOVERABLE, Connection, websocket_connector
from trio_harvest.ingest.subscribe import subscribing
from trio_harvest.sim.server import SimConfig, Simulator
from trio_harvest.venues.okx.adapter import OkxSwap, Stream

IDLE_S = 1.5


@pytest.fixture
async def sim(nursery: trio.Nursery) -> Simulator:
    simulator = Simulator(SimConfig(symbols=("BTC-USDT-SWAP",), rate=20.0, seed=3,
                                    venue="okx-swap", idle_seconds=IDLE_S))
    await nursery.start(simulator.serve)
    return simulator


def test_okx_cuts_idle_sockets_after_30_seconds_by_default() -> None:
    assert Simulator(SimConfig(symbols=("BTC-USDT-SWAP",), venue="okx-swap")).idle_cut == 30.0
    assert Simulator(SimConfig(symbols=("BTCUSDT",))).idle_cut is None  # Binance: no such rule


async def test_a_socket_that_subscribes_nothing_is_closed(sim: Simulator) -> None:
    pongs = 0
    async with websocket_connector(1 << 20)(f"{sim.url}/ws/v5/public") as ws:
        with trio.fail_after(4 * IDLE_S), pytest.raises(RECOVERABLE):
            while True:
                await ws.send("ping")  # a ping alone does not make it a subscription
                assert await ws.get_message() in ("pong", b"pong")
                pongs += 1
                await trio.sleep(IDLE_S / 4)
    assert sim.stats.idle_closes == 1 and pongs >= 3


def quiet_connection(sim: Simulator, ping_every: float) -> Connection:
    """The harvester's connection to ``funding-rate`` alone, pinging every ``ping_every`` s."""
    venue = OkxSwap()
    venue.keepalive = dataclasses.replace(venue.keepalive, interval=ping_every)
    plan = venue.plan_connections([Stream("BTC-USDT-SWAP", "funding-rate",
                                          "funding-rate:BTC-USDT-SWAP")], 90)[0]
    return Connection(plan, sim.url, subscribing(websocket_connector(1 << 20), venue),
                      lambda frame: None, stall_timeout=60, backoff=Backoff(0.1, 0.2),
                      venue=venue)


async def test_the_harvesters_ping_keeps_a_quiet_socket_open(sim: Simulator) -> None:
    conn = quiet_connection(sim, ping_every=IDLE_S / 6)
    with trio.move_on_after(4 * IDLE_S):
        await conn.run()
    assert conn.stats.connects == 1 and conn.stats.failures == 0
    assert sim.stats.idle_closes == 0 and sim.stats.connections_total == 1


async def test_without_pings_the_quiet_socket_is_cut(sim: Simulator) -> None:
    conn = quiet_connection(sim, ping_every=60.0)
    with trio.move_on_after(4 * IDLE_S):
        await conn.run()
    assert sim.stats.idle_closes >= 1 and conn.stats.connects >= 2
