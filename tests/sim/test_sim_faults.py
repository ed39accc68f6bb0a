"""The misbehaving simulator: fault plans, the injector, connection faults, and the REST API
(pure, and over the same port as the websocket streams)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from trio_harvest.cli.commands import main
from trio_harvest.ingest.connection import websocket_connector
from trio_harvest.sim.events import AggTrade, BookDepth
from trio_harvest.sim.faultinject import FaultInjector
from trio_harvest.sim.faultplan import FaultPlan, FaultSpecError, parse_faults
from trio_harvest.sim.front import is_rest
from trio_harvest.sim.market import Market
from trio_harvest.sim.rest import RestApi, depth_weight
from trio_harvest.sim.server import SimConfig, Simulator, sim_main

T0 = 1_700_000_000_000


def decode(body: bytes | str) -> Any:
    return msgspec.json.decode(body)


# -- plans ---------------------------------------------------------------------------------------


def test_parse_and_describe_round_trip() -> None:
    plan = parse_faults("disconnect=5, garbage=0.01,skip=0.002,skew=-300,weight=600,lifetime=2.5")
    assert plan == FaultPlan(disconnect=5.0, garbage=0.01, skip=0.002, skew=-300, weight=600,
                             lifetime=2.5)
    assert parse_faults(plan.describe()) == plan
    assert plan.active and plan.connection_faults and plan.frame_faults and plan.event_faults
    assert not FaultPlan().active and FaultPlan().describe() == ""


@pytest.mark.parametrize("spec, message", [
    ("explode=1", "unknown fault 'explode'"),
    ("garbage=2", "garbage: a probability between 0 and 1"),
    ("disconnect=0", "disconnect: a positive number of seconds"),
    ("skip", "skip: expected skip=VALUE"),
    ("weight=lots", "weight: 'lots' is not a number"),
])
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=re.escape(message)):
        parse_faults(spec)


def test_cli_rejects_a_bad_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--faults", "explode=1", "--duration", "0.1"]) == 2
    assert "--faults: unknown fault 'explode'" in capsys.readouterr().err
    assert main(["run", "--sim", "--sim-faults", "garbage=7", "--duration", "1"]) == 2
    assert "sim_faults: garbage" in capsys.readouterr().err


# -- the injector (pure) ---------------------------------------------------------------------------


def market_events(seconds: float = 5.0) -> tuple[Market, list[Any]]:
    market = Market(("BTCUSDT",), rate=500.0, seed=2)
    market.step(T0)
    events: list[Any] = []
    for k in range(1, int(seconds * 100) + 1):
        events += market.step(T0 + 10 * k)
    return market, events


def test_event_faults_keep_the_tape_whole_and_are_seeded() -> None:
    market, events = market_events()
    trades = [e for e in events if type(e) is AggTrade]
    diffs = [e for e in events if type(e) is BookDepth and e.diff]
    plan = FaultPlan(skip=0.1, dup_id=0.1, drop_diff=0.2, seed=7)
    out = FaultInjector(plan, now=lambda: 0.0).on_events(events)
    again = FaultInjector(plan, now=lambda: 0.0).on_events(events)
    assert out == again  # seeded: the same faults every time
    sent = [e.agg_id for e in out if type(e) is AggTrade]
    skipped = {t.agg_id for t in trades} - set(sent)
    assert 0 < len(skipped) < len(trades) / 4
    assert len(sent) - len(set(sent)) > 0  # duplicated ids
    assert sum(1 for e in out if type(e) is BookDepth and e.diff) < len(diffs)
    tape = market["BTCUSDT"].tape
    assert [t.agg_id for t in tape.since(trades[0].agg_id, len(trades))] == \
        [t.agg_id for t in trades]  # REST still has every trade


def test_frame_faults() -> None:
    now = [0.0]
    plan = FaultPlan(garbage=0.2, truncate=0.2, dup_frame=0.2, oversize=0.05, oversize_bytes=5000)
    inj = FaultInjector(plan, now=lambda: now[0])
    frame = '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade"}}'
    out = [f for _ in range(500) for f in inj.on_frame(1, "btcusdt@aggTrade", frame)]
    counts = inj.stats.counts
    assert {"garbage_frames", "truncated_frames", "duplicated_frames",
            "oversize_frames"} <= set(counts)
    assert sum(1 for f in out if len(f) == 5000) == counts["oversize_frames"]
    assert out.count(frame) == 500 - counts["truncated_frames"] + counts["duplicated_frames"]
    inj.stall(1, 2.0)
    assert inj.on_frame(1, "x", frame) == () and inj.on_frame(2, "x", frame)
    now[0] = 2.5
    assert inj.on_frame(1, "x", frame)


# -- REST (pure) ---------------------------------------------------------------------------------


def test_rest_endpoints_weights_and_429() -> None:
    market, events = market_events(2.0)
    clock = [T0 + 2000]
    api = RestApi(market, lambda: clock[0], weight_limit=50)
    first = next(e for e in events if type(e) is AggTrade).agg_id
    r = api.handle("GET", f"/fapi/v1/aggTrades?symbol=BTCUSDT&fromId={first}&limit=3")
    assert r.status == 200 and dict(r.headers)["X-MBX-USED-WEIGHT-1M"] == "20"
    trades = decode(r.body)
    assert [t["a"] for t in trades] == [first, first + 1, first + 2]
    assert set(trades[0]) == {"a", "p", "q", "f", "l", "T", "m"}
    assert isinstance(trades[0]["p"], str) and isinstance(trades[0]["T"], int)
    r = api.handle("GET", "/fapi/v1/depth?symbol=btcusdt&limit=5")
    book = decode(r.body)
    assert r.status == 200 and len(book["bids"]) == 5 and book["lastUpdateId"] > 0
    assert float(book["bids"][0][0]) < float(book["asks"][0][0])
    assert depth_weight(5) == 2 and depth_weight(100) == 5 and depth_weight(1000) == 20
    assert api.used_weight() == 22
    assert api.handle("GET", "/fapi/v1/exchangeInfo").status == 200
    r = api.handle("GET", "/fapi/v1/aggTrades?symbol=BTCUSDT")  # 23 + 20 > 50
    assert r.status == 200
    r = api.handle("GET", "/fapi/v1/aggTrades?symbol=BTCUSDT")
    assert r.status == 429 and decode(r.body)["code"] == -1003
    assert 1 <= int(dict(r.headers)["Retry-After"]) <= 60
    clock[0] += 60_000  # the next minute: allowed again
    assert api.handle("GET", "/fapi/v1/aggTrades?symbol=BTCUSDT").status == 200
    assert api.handle("GET", "/fapi/v1/aggTrades?symbol=NOPE").status == 400
    assert api.handle("GET", "/fapi/v1/depth?symbol=BTCUSDT&limit=7").status == 400
    assert api.handle("GET", "/fapi/v1/aggTrades?symbol=BTCUSDT&fromId=x").status == 400
    assert api.handle("GET", "/fapi/v2/elsewhere").status == 404
    assert api.stats.rejected_429 == 1


def test_is_rest() -> None:
    assert is_rest(b"GET /fapi/v1/depth?symbol=X HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not is_rest(b"GET /market/stream?streams=a HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not is_rest(b"GET /fapi/x HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")


# -- over loopback ---------------------------------------------------------------------------------


@pytest.fixture
async def sim(nursery: trio.Nursery) -> AsyncIterator[Simulator]:
    simulator = Simulator(SimConfig(symbols=("BTCUSDT",), rate=1000.0, seed=4,
                                    faults=FaultPlan(skip=0.2, weight=100)))
    await nursery.start(simulator.serve)
    yield simulator


async def test_rest_and_websocket_share_the_port(sim: Simulator) -> None:
    assert sim.rest_url == "http" + sim.url[2:]
    url = f"{sim.url}/market/stream?streams=btcusdt@aggTrade"
    async with open_websocket_url(url) as ws:
        with trio.fail_after(5):
            streamed = [decode(await ws.get_message())["data"]["a"] for _ in range(30)]
    assert streamed != list(range(streamed[0], streamed[0] + 30))  # skip=0.2: ids are missing
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        span = streamed[-1] - streamed[0] + 1
        r = await client.get("/fapi/v1/aggTrades",
                             params={"symbol": "BTCUSDT", "fromId": streamed[0], "limit": span})
        assert r.status_code == 200 and r.headers["x-mbx-used-weight-1m"] == "20"
        ids = [t["a"] for t in r.json()]
        assert ids == list(range(streamed[0], streamed[-1] + 1))  # the tape has every one
        codes = [(await client.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT"})).status_code
                 for _ in range(6)]
    assert codes.count(429) >= 1 and codes[0] == 200  # weight 100/min
    assert sim.rest.stats.rejected_429 >= 1


async def test_connection_faults(nursery: trio.Nursery) -> None:
    # it closes its socket after a server-side close (trio-websocket: its ConnectionClosed below)
    connect = websocket_connector(1 << 20, transport="trio-websocket")
    sim = Simulator(SimConfig(symbols=("BTCUSDT",), rate=1000.0, seed=4,
                              faults=FaultPlan(disconnect=0.4, stall=0.2, stall_for=10.0)))
    await nursery.start(sim.serve)
    url = f"{sim.url}/public/stream?streams=btcusdt@bookTicker"
    with trio.fail_after(5):
        async with connect(url) as ws:
            with pytest.raises(ConnectionClosed):  # stalled at 0.2 s, then closed at 0.4 s
                while True:
                    await ws.get_message()
    assert sim.injector is not None
    assert sim.injector.stats.counts["stalls"] >= 1
    assert sim.injector.stats.counts["disconnects"] >= 1
    lifetime = Simulator(SimConfig(symbols=("BTCUSDT",), rate=500.0,
                                   faults=FaultPlan(lifetime=0.3)))
    await nursery.start(lifetime.serve)
    started = trio.current_time()
    with trio.fail_after(5):
        async with connect(f"{lifetime.url}/public/stream?streams=btcusdt@bookTicker") as ws:
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.get_message()
    assert 0.3 <= trio.current_time() - started < 2.0


def test_sim_main_reports_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(SimConfig(rate=3000.0, faults=FaultPlan(garbage=0.1, skip=0.1)), 0.5) == 0
    out = capsys.readouterr().out
    assert "faults: garbage=0.1,skip=0.1" in out
    assert re.search(r"faults injected: .*skipped_trades \d+", out)
