"""The simulator over real loopback websockets: routes, wire format, fan-out, reconnects."""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from trio_harvest.sim.control import handle_control
from trio_harvest.sim.events import AggTrade
from trio_harvest.sim.fanout import Hub, Subscriber
from trio_harvest.sim.routes import LEGACY, MARKET, PUBLIC, Route, parse_target, serves
from trio_harvest.sim.server import SimConfig, Simulator, sim_main
from trio_harvest.sim.specs import spec_for
from trio_harvest.sim.stats import SimStats

AGG_KEYS = ["e", "E", "s", "a", "p", "q", "nq", "f", "l", "T", "m"]
TICKER_KEYS = ["e", "u", "s", "b", "B", "a", "A", "T", "E"]
DEPTH_KEYS = ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]
BTC_PRICE = re.compile(r"^\d+\.\d{2}$")
BTC_QTY = re.compile(r"^\d+\.\d{3}$")
SILENCE_S = 0.3


def decode(message: str | bytes) -> Any:
    return msgspec.json.decode(message)


@pytest.fixture
async def sim(nursery: trio.Nursery) -> AsyncIterator[Simulator]:
    simulator = Simulator(SimConfig(rate=3000.0, seed=3))
    port = await nursery.start(simulator.serve)
    assert simulator.url == f"ws://127.0.0.1:{port}"
    yield simulator


async def frames(ws: WebSocketConnection, n: int) -> list[Any]:
    out: list[Any] = []
    with trio.fail_after(5):
        while len(out) < n:
            out.append(decode(await ws.get_message()))
    return out


async def silent(ws: WebSocketConnection, seconds: float = SILENCE_S) -> bool:
    with trio.move_on_after(seconds):
        await ws.get_message()
        return False
    return True


async def test_market_route_serves_agg_trades_in_binance_format(sim: Simulator) -> None:
    url = f"{sim.url}/market/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade"
    async with open_websocket_url(url) as ws:
        got = await frames(ws, 60)
    streams = {f["stream"] for f in got}
    assert streams == {"btcusdt@aggTrade", "ethusdt@aggTrade"}
    for f in got:
        assert list(f) == ["stream", "data"]
        d = f["data"]
        assert list(d) == AGG_KEYS
        assert d["e"] == "aggTrade" and d["s"] == f["stream"].split("@")[0].upper()
        assert all(type(d[k]) is int for k in ("E", "a", "f", "l", "T"))
        assert type(d["m"]) is bool and d["T"] <= d["E"]
        assert d["q"] == d["nq"]
        if d["s"] == "BTCUSDT":
            assert BTC_PRICE.match(d["p"]) and BTC_QTY.match(d["q"])
    btc = [f["data"] for f in got if f["data"]["s"] == "BTCUSDT"]
    assert [d["a"] for d in btc] == list(range(btc[0]["a"], btc[0]["a"] + len(btc)))


async def test_public_route_serves_depth_and_book_ticker(sim: Simulator) -> None:
    url = f"{sim.url}/public/stream?streams=btcusdt@depth20@100ms/btcusdt@bookTicker"
    async with open_websocket_url(url) as ws:
        depth: list[Any] = []
        tickers: list[Any] = []
        with trio.fail_after(5):
            while len(depth) < 3 or len(tickers) < 3:
                f = decode(await ws.get_message())
                (depth if f["stream"] == "btcusdt@depth20@100ms" else tickers).append(f["data"])
    for d in depth:
        assert list(d) == DEPTH_KEYS and d["e"] == "depthUpdate" and d["s"] == "BTCUSDT"
        assert len(d["b"]) == 20 and len(d["a"]) == 20
        assert all(BTC_PRICE.match(p) and BTC_QTY.match(q) for p, q in d["b"] + d["a"])
        assert float(d["b"][0][0]) < float(d["a"][0][0])
    for prev, d in itertools.pairwise(depth):
        assert d["pu"] == prev["u"]
    for t in tickers:
        assert list(t) == TICKER_KEYS and t["e"] == "bookTicker"
        assert all(type(t[k]) is str for k in "bBaA") and float(t["b"]) < float(t["a"])


@pytest.mark.parametrize(
    "path",
    [
        "/public/stream?streams=btcusdt@aggTrade",  # wrong route
        "/market/stream?streams=btcusdt@bookTicker/btcusdt@depth20@100ms",  # wrong route
        "/market/stream?streams=foousdt@aggTrade",  # unknown symbol
        "/stream?streams=btcusdt@aggTrade",  # the old unrouted URL
        "/public/stream?streams=btcusdt@depth20@250ms",  # 250 ms has no suffix
    ],
)
async def test_streams_that_are_not_served_get_silence(sim: Simulator, path: str) -> None:
    async with open_websocket_url(sim.url + path) as ws:
        assert await silent(ws)


async def test_raw_stream_route_sends_bare_payloads(sim: Simulator) -> None:
    async with open_websocket_url(f"{sim.url}/public/ws/ethusdt@bookTicker") as ws:
        (payload,) = await frames(ws, 1)
    assert list(payload) == TICKER_KEYS and payload["s"] == "ETHUSDT"


async def test_subscribe_on_an_open_connection(sim: Simulator) -> None:
    async with open_websocket_url(f"{sim.url}/market/stream") as ws:
        assert await silent(ws, 0.1)
        await ws.send_message('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}')
        reply, *data = await frames(ws, 3)
        assert reply == {"result": None, "id": 1}
        assert all(f["stream"] == "btcusdt@aggTrade" for f in data)
        await ws.send_message('{"method":"SUBSCRIBE","params":["BTC"],"id":2}')
        with trio.fail_after(5):
            while "id" not in (f := decode(await ws.get_message())):
                pass
        assert f == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 2}


async def test_two_connections_see_the_same_agg_trades(sim: Simulator) -> None:
    url = f"{sim.url}/market/stream?streams=btcusdt@aggTrade"
    async with open_websocket_url(url) as a, open_websocket_url(url) as b:
        got_a = {f["data"]["a"]: f for f in await frames(a, 80)}
        got_b = {f["data"]["a"]: f for f in await frames(b, 80)}
    common = got_a.keys() & got_b.keys()
    assert len(common) > 40
    assert all(got_a[i] == got_b[i] for i in common)


async def test_reconnecting_client_sees_ids_continue(sim: Simulator) -> None:
    url = f"{sim.url}/market/stream?streams=btcusdt@aggTrade"
    async with open_websocket_url(url) as ws:
        first = [f["data"]["a"] for f in await frames(ws, 20)]
    await trio.sleep(0.2)  # the market runs on while nobody listens
    async with open_websocket_url(url) as ws:
        second = [f["data"]["a"] for f in await frames(ws, 20)]
    assert second == list(range(second[0], second[0] + 20))
    assert second[0] > first[-1] + 1  # a hole of ids: the trades printed while away
    tape = sim.tape("BTCUSDT")
    assert tape.first_id is not None and tape.first_id <= first[0]
    held = [t.agg_id for t in tape.since(first[0], 10_000)]
    assert held == list(range(first[0], first[0] + len(held)))
    assert second[-1] in held


async def test_unknown_path_is_rejected(sim: Simulator) -> None:
    # a raw handshake: trio-websocket's client leaks its socket on ConnectionRejected
    request = (
        "GET /fapi/v1/nothing HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
    async with stream:
        await stream.send_all(request.encode())
        with trio.fail_after(5):
            response = await stream.receive_some(4096)
    assert response.startswith(b"HTTP/1.1 404 ")
    assert sim.stats.rejected == 1


async def test_injected_clock_stamps_events(nursery: trio.Nursery) -> None:
    base = 1_600_000_000_000

    def fake_ms() -> int:
        return base + int(trio.current_time() * 1000) % 10**9

    simulator = Simulator(SimConfig(rate=3000.0), clock_ms=fake_ms)
    await nursery.start(simulator.serve)
    async with open_websocket_url(f"{simulator.url}/market/ws/btcusdt@aggTrade") as ws:
        (d,) = await frames(ws, 1)
    assert abs(d["E"] - fake_ms()) < 5_000
    assert simulator.stats.frames["aggTrade"] >= 1
    assert simulator.stats.connections_total == 1


@pytest.mark.parametrize(
    ("target", "route"),
    [
        ("/market/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade",
         Route(MARKET, True, ("btcusdt@aggTrade", "ethusdt@aggTrade"))),
        ("/public/stream?streams=btcusdt%40depth20%40100ms",
         Route(PUBLIC, True, ("btcusdt@depth20@100ms",))),
        ("/public/stream", Route(PUBLIC, True, ())),
        ("/market/ws/btcusdt@aggTrade", Route(MARKET, False, ("btcusdt@aggTrade",))),
        ("/stream?streams=btcusdt@aggTrade", Route(LEGACY, True, ("btcusdt@aggTrade",))),
        ("/ws", Route(LEGACY, False, ())),
        ("/", None),
        ("/market", None),
        ("/fapi/v1/depth?symbol=BTCUSDT", None),
        ("/public/stream/x", None),
    ],
)
def test_parse_target(target: str, route: Route | None) -> None:
    assert parse_target(target) == route


def test_route_rule() -> None:
    assert serves(MARKET, "btcusdt@aggTrade") and not serves(PUBLIC, "btcusdt@aggTrade")
    for name in ("btcusdt@bookTicker", "btcusdt@depth5", "btcusdt@depth10@500ms",
                 "btcusdt@depth20@100ms", "btcusdt@depth", "btcusdt@depth@100ms"):
        assert serves(PUBLIC, name) and not serves(MARKET, name) and not serves(LEGACY, name)
    assert not serves(PUBLIC, "btcusdt@depth20@250ms")
    assert not serves(MARKET, "btcusdt@markPrice")  # a /market stream the simulator lacks


def test_control_messages() -> None:
    sub = handle_control('{"method":"SUBSCRIBE","params":["a@aggTrade","a@aggTrade"],"id":7}', [])
    assert (sub.reply, sub.subscribe) == ('{"result":null,"id":7}', ("a@aggTrade",))
    unsub = handle_control('{"method":"UNSUBSCRIBE","params":["a@aggTrade"],"id":8}', [])
    assert unsub.unsubscribe == ("a@aggTrade",)
    listed = handle_control('{"method":"LIST_SUBSCRIPTIONS","id":9}', ["a@aggTrade"])
    assert listed.reply == '{"result":["a@aggTrade"],"id":9}'
    assert '"code":3' in handle_control("{nope", []).reply
    assert '"code":2' in handle_control('{"method":"PING","id":1}', []).reply
    assert '"code":2' in handle_control('{"method":"SUBSCRIBE","params":"x","id":1}', []).reply
    assert '"code":2' in handle_control('{"method":"SUBSCRIBE","params":[],"id":-1}', []).reply


async def test_slow_consumer_is_dropped_and_counted() -> None:
    stats = SimStats()
    hub = Hub([spec_for("BTCUSDT")], stats)
    slow = Subscriber(1, MARKET, True, queue_size=3)
    ok = Subscriber(2, MARKET, True, queue_size=100)
    wrong_route = Subscriber(3, PUBLIC, True, queue_size=100)
    for sub in (slow, ok, wrong_route):
        hub.attach(sub, ["btcusdt@aggTrade"])
    trades = [AggTrade("BTCUSDT", i, 1_000_000, 5, i, i, 1, 2, False) for i in range(10)]
    hub.publish(trades)
    assert slow.overflowed and slow.cancel_scope.cancel_called and slow.closed
    assert stats.slow_consumer_closes == 1
    assert 1 not in hub.connections
    assert len(await ok.take(1000)) == 10
    assert wrong_route.queued == 0  # subscribed, acknowledged, never served
    assert stats.frames["aggTrade"] == 10 + 3


async def test_slow_consumer_is_disconnected(nursery: trio.Nursery) -> None:
    simulator = Simulator(SimConfig(rate=5000.0), queue_size=100)
    await nursery.start(simulator.serve)
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read: a slow client
    await sock.connect(("127.0.0.1", simulator.port))
    async with trio.SocketStream(sock) as stream:
        await stream.send_all(
            b"GET /public/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker HTTP/1.1\r\n"
            b"Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        with trio.fail_after(5):
            while simulator.stats.slow_consumer_closes == 0:
                await trio.sleep(0.05)
            while await stream.receive_some(65536):  # what was in flight, then end of stream
                pass
    assert simulator.stats.connections_open == 0
    assert simulator.connections == {}


def test_sim_main_runs_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(SimConfig(rate=100.0), 0.3) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.match(r"^simulator listening on ws://127\.0\.0\.1:\d+ \(2 symbols, 100 msg/s, "
                    r"seed 1\)", out[0])
    assert out[-1].startswith("simulator stopped after")


def test_sim_main_port_in_use_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert sim_main(SimConfig(port=port), 1.0) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0]
