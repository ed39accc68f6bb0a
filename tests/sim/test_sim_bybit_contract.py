"""The simulator's contract model on Bybit linear: ``tickers.S`` starts with a snapshot of the
whole state and continues with deltas of what changed (the adapter's merge of them gives the
simulator's state), a late subscriber gets its own snapshot, ``allLiquidation.S`` decodes into
liquidations, and spot serves neither topic."""

from __future__ import annotations

import json

import trio
from trio_websocket import open_websocket_url

from trio_harvest.sim.bybit_contract import BybitContractWire
from trio_harvest.sim.events import MarkPrice
from trio_harvest.sim.server import SimConfig, Simulator
from trio_harvest.sim.specs import spec_for
from trio_harvest.venues.base import BATCH, DERIVATIVE, LIQUIDATION
from trio_harvest.venues.bybit.adapter import Bybit
from trio_harvest.venues.bybit.facts import LINEAR

EIGHT_HOURS_MS = 8 * 3_600_000


def test_a_delta_carries_only_what_changed_and_a_snapshot_everything() -> None:
    wire = BybitContractWire(spec_for("BTCUSDT"))
    assert wire.snapshot(1) is None
    first = json.loads(wire.update(MarkPrice("BTCUSDT", 1000, 100.5, 100.4, 100.4, 0.0001,
                                             EIGHT_HOURS_MS), 2000, 1005) or "")
    assert first["type"] == "delta" and first["data"]["markPrice"] == "100.50"
    same = wire.update(MarkPrice("BTCUSDT", 2000, 100.5, 100.4, 100.4, 0.0001, EIGHT_HOURS_MS),
                       2000, 1005)
    assert same is None  # nothing changed: Bybit sends nothing
    moved = json.loads(wire.update(MarkPrice("BTCUSDT", 3000, 100.7, 100.4, 100.4, 0.0001,
                                             EIGHT_HOURS_MS), 2000, 1005) or "")
    assert set(moved["data"]) == {"symbol", "markPrice"}
    snap = json.loads(wire.snapshot(3000) or "")
    assert snap["type"] == "snapshot" and snap["data"]["nextFundingTime"] == str(EIGHT_HOURS_MS)
    assert {"markPrice", "indexPrice", "fundingRate", "openInterest"} <= set(snap["data"])


async def _frames(url: str, topics: list[str], seconds: float) -> list[str]:
    out: list[str] = []
    async with open_websocket_url(url) as ws:
        await ws.send_message(json.dumps({"req_id": "1", "op": "subscribe", "args": topics}))
        with trio.move_on_after(seconds):
            while True:
                out.append(str(await ws.get_message()))
    return out


async def test_linear_serves_tickers_and_liquidations_spot_neither(
        nursery: trio.Nursery) -> None:
    sim = Simulator(SimConfig(symbols=("BTCUSDT",), rate=3000.0, seed=5, venue="bybit-linear"))
    await nursery.start(sim.serve)
    url = sim.url + "/v5/public/linear"
    frames = await _frames(url, ["tickers.BTCUSDT", "allLiquidation.BTCUSDT",
                                 "publicTrade.BTCUSDT"], 5.5)
    tickers = [json.loads(f) for f in frames if '"tickers.' in f]
    assert tickers[0]["type"] == "snapshot" and all(t["type"] == "delta" for t in tickers[1:])
    assert len(tickers) >= 4  # about one a second
    adapter = Bybit(LINEAR)
    rows = [adapter.decode(f).data for f in frames if '"topic"' in f]
    marks = [r for r in rows if r.kind == DERIVATIVE]
    assert marks[0].open_interest is not None and marks[0].open_interest > 0
    nxt = marks[0].next_funding_ms
    assert nxt is not None and nxt % EIGHT_HOURS_MS == 0
    assert all(r.next_funding_ms in (None, nxt) for r in marks[1:])  # unchanged: null
    assert adapter.tickers is not None
    merged = adapter.tickers.state["BTCUSDT"]
    assert float(merged["markPrice"]) > 0 and merged["nextFundingTime"] == str(nxt)
    liqs = [r for r in rows if r.kind == LIQUIDATION]
    liqs += [x for r in rows if r.kind == BATCH for x in r.records if x.kind == LIQUIDATION]
    assert liqs and all(q.side in ("buy", "sell") and q.price > 0 and q.qty > 0 for q in liqs)
    # a late subscriber starts with its own snapshot
    late = await _frames(url, ["tickers.BTCUSDT"], 1.5)
    assert json.loads(next(f for f in late if '"tickers.' in f))["type"] == "snapshot"

    spot = Simulator(SimConfig(symbols=("BTCUSDT",), rate=300.0, seed=5, venue="bybit-spot"))
    await nursery.start(spot.serve)
    refused = await _frames(spot.url + "/v5/public/spot", ["allLiquidation.BTCUSDT"], 0.5)
    assert '"success":false' in refused[0] and "handler not found" in refused[0]
