"""The websocket client owns its socket: no leak when a handshake is rejected or cancelled
(warnings are errors here, so an unclosed socket fails the test)."""

from __future__ import annotations

import gc

import pytest
import trio
import trio_websocket

from trio_harvest.ingest.wsclient import open_websocket, split_ws_url
from trio_harvest.sim.server import SimConfig, Simulator


def test_split_ws_url() -> None:
    assert split_ws_url("wss://fstream.binance.com/market/stream?streams=a/b") == (
        "fstream.binance.com", 443, "/market/stream?streams=a/b", True)
    assert split_ws_url("ws://127.0.0.1:9443") == ("127.0.0.1", 9443, "/", False)
    with pytest.raises(ValueError, match="not a websocket URL"):
        split_ws_url("http://x")


async def test_no_socket_is_left_open_by_a_rejected_or_cancelled_handshake() -> None:
    sim = Simulator(SimConfig(symbols=("BTCUSDT",), rate=100.0))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.serve)
        with pytest.raises(trio_websocket.ConnectionRejected):
            async with open_websocket(f"ws://127.0.0.1:{port}/nowhere", max_message_size=1 << 20):
                pass
        with trio.move_on_after(0):  # cancelled mid-connect
            async with open_websocket(f"ws://127.0.0.1:{port}/market/stream?streams="
                                      "btcusdt@aggTrade", max_message_size=1 << 20):
                pass
        async with open_websocket(f"ws://127.0.0.1:{port}/market/stream?streams="
                                  "btcusdt@aggTrade", max_message_size=1 << 20) as ws:
            assert '"aggTrade"' in await ws.get_message()
        nursery.cancel_scope.cancel()
    gc.collect()
