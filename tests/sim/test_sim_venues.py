"""The simulator in each venue's wire format: what it serves decodes with that venue's wire module,
its book sequence checks pass against a REST snapshot, and faults show as detectable breaks."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from trio_harvest.sim.faultplan import FaultPlan
from trio_harvest.sim.server import SimConfig, Simulator
from trio_harvest.sim.venue import COINM, SPOT, USDM, default_symbols, profile
from trio_harvest.venues.binance_coinm import wire as coinm
from trio_harvest.venues.binance_common import sequence
from trio_harvest.venues.binance_common.facts import stream_name
from trio_harvest.venues.binance_spot import wire as spot
from trio_harvest.venues.binance_usdm import decode as usdm

from .handshake import handshake_answer


@dataclass(frozen=True)
class Wire:
    decode: Callable[[str | bytes], Any]  # frame -> envelope (.stream, .data)
    check: Callable[[int, Any], str]  # the book rule
    align: Callable[[int, Any], str]  # the snapshot rule
    path: str  # the combined-stream path
    rest: str  # REST prefix


WIRES = {
    USDM: Wire(usdm.decode_frame, sequence.check_pu, sequence.align_pu, "/public/stream",
               "/fapi/v1"),
    SPOT: Wire(spot.decode_frame, spot.check_delta, spot.align_snapshot, "/stream", "/api/v3"),
    COINM: Wire(coinm.decode_frame, coinm.check_delta, coinm.align_snapshot, "/stream",
                "/dapi/v1"),
}
NOW_MS = 1_796_000_000_000  # 2026-11-30


def symbols(venue: str) -> tuple[str, ...]:
    return default_symbols(venue, NOW_MS)[:2]


async def collect(sim: Simulator, venue: str, seconds: float,
                  kinds: tuple[str, ...] = ("aggTrade", "depth", "bookTicker")) -> list[Any]:
    w = WIRES[venue]
    names = [stream_name(s, k) for s in symbols(venue) for k in kinds]
    if venue == USDM:  # aggTrade is on /market there
        names = [n for n in names if "@aggTrade" not in n]
    out = []
    async with open_websocket_url(f"{sim.url}{w.path}?streams={'/'.join(names)}") as ws:
        with trio.move_on_after(seconds):
            while True:
                out.append(w.decode(await ws.get_message()))
    return out


def start(nursery: trio.Nursery, venue: str, **kw: Any) -> Simulator:
    return Simulator(SimConfig(symbols=default_symbols(venue, NOW_MS), rate=3000.0, seed=5,
                               venue=venue, **kw))


@pytest.mark.parametrize("venue", [SPOT, COINM, USDM])
async def test_each_venue_serves_frames_its_wire_module_decodes_and_chains(
        nursery: trio.Nursery, venue: str) -> None:
    sim = start(nursery, venue)
    await nursery.start(sim.serve)
    got = await collect(sim, venue, 1.0)
    w = WIRES[venue]
    kinds = {type(e.data).__name__ for e in got}
    assert {"DepthUpdate", "AggTrade"} <= kinds or venue == USDM
    last: dict[str, int] = {}
    checked = 0
    for env in got:
        d = env.data
        assert d.symbol == env.stream.partition("@")[0].upper()
        if env.stream.endswith("@bookTicker"):
            assert (d.event_ms > 0) == (venue != SPOT)  # spot's bookTicker has no times
        if not isinstance(d, usdm.DepthUpdate):
            continue
        assert (d.prev_update_id == -1) == (venue == SPOT)  # no pu on spot
        if d.symbol in last:
            assert w.check(last[d.symbol], d) == sequence.OK
            checked += 1
        last[d.symbol] = d.update_id
    assert checked >= 10
    # a REST snapshot taken while the stream runs is bridged by a delta under the venue's rule
    sym = symbols(venue)[0]
    later: list[Any] = []
    async with open_websocket_url(f"{sim.url}{w.path}?streams={stream_name(sym, 'depth')}") as ws:
        with trio.fail_after(5):
            later.append(w.decode(await ws.get_message()).data)  # buffered, as a harvester does
        reply = sim.rest.handle("GET", f"{w.rest}/depth?symbol={sym}&limit=1000")
        with trio.move_on_after(0.6):
            while True:
                later.append(w.decode(await ws.get_message()).data)
    assert reply.status == 200
    snap_id = json.loads(reply.body)["lastUpdateId"]
    outcomes = [w.align(snap_id, d) for d in later]
    kept = [o for o in outcomes if o != sequence.DROP]  # after the bridge, the chain rule holds
    assert kept and kept[0] == sequence.BRIDGE


@pytest.mark.parametrize("venue", [SPOT, COINM])
async def test_faults_show_as_breaks_in_each_venue(nursery: trio.Nursery, venue: str) -> None:
    # drop_diff acts on every cadence's diff events: 0.5 leaves a handful of breaks on @100ms
    sim = start(nursery, venue, faults=FaultPlan(skip=0.1, dup_id=0.1, drop_diff=0.5))
    await nursery.start(sim.serve)
    got = await collect(sim, venue, 1.5, ("aggTrade", "depth"))
    w = WIRES[venue]
    books: dict[str, int] = {}
    trades: dict[str, int] = {}
    seen: list[str] = []
    for env in got:
        d = env.data
        if isinstance(d, usdm.DepthUpdate):
            if d.symbol in books:
                seen.append("book " + w.check(books[d.symbol], d))
            books[d.symbol] = d.update_id
        else:
            prev = trades.get(d.symbol)
            seen.append("trade " + sequence.check_agg_id(prev, d.agg_id))
            trades[d.symbol] = max(prev or 0, d.agg_id)
    assert "book gap" in seen and "book ok" in seen  # drop_diff
    assert "trade gap" in seen and "trade stale" in seen  # skip, dup_id


async def test_rest_paths_weights_and_listing_per_venue(nursery: trio.Nursery) -> None:
    s = start(nursery, SPOT)
    c = start(nursery, COINM)
    await nursery.start(s.serve)
    await nursery.start(c.serve)
    async with httpx.AsyncClient(base_url=s.rest_url) as client:
        r = await client.get("/api/v3/aggTrades", params={"symbol": "BTCUSDT", "limit": 5})
        assert r.status_code == 200 and r.headers["x-mbx-used-weight-1m"] == "4"
        r = await client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000})
        assert r.status_code == 200 and r.headers["x-mbx-used-weight-1m"] == str(4 + 250)
        assert set(r.json()) == {"lastUpdateId", "bids", "asks"}  # no E/T on spot
        r = await client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 7})
        assert r.status_code == 200 and len(r.json()["bids"]) == 7  # any limit up to 5000
        r = await client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5001})
        assert r.status_code == 400
        info = (await client.get("/api/v3/exchangeInfo")).json()
        assert (await client.get("/fapi/v1/exchangeInfo")).status_code != 200  # not spot's
    listed = spot.parse_listing(info)
    assert set(listed) == {"BTCUSDT", "ETHUSDT"} and all(i.trading for i in listed.values())
    assert info["rateLimits"][0]["limit"] == 6000
    async with httpx.AsyncClient(base_url=c.rest_url) as client:
        r = await client.get("/dapi/v1/aggTrades", params={"symbol": "BTCUSD_PERP", "limit": 5})
        assert r.status_code == 200 and r.headers["x-mbx-used-weight-1m"] == "20"
        trade = r.json()[0]
        assert float(trade["q"]) == int(trade["q"])  # whole contracts
        info = (await client.get("/dapi/v1/exchangeInfo")).json()
    listed = coinm.parse_listing(info)
    quarterly = coinm.quarterly_symbol("BTCUSD", NOW_MS)
    assert set(listed) == {"BTCUSD_PERP", "ETHUSD_PERP", quarterly}
    assert listed["BTCUSD_PERP"].contract_size == 100 and listed["ETHUSD_PERP"].contract_size == 10
    q = listed[quarterly]
    assert q.delivery_ms == coinm.delivery_ms(quarterly) and q.contract_type == "CURRENT_QUARTER"
    assert q.trading and q.pair == "BTCUSD"


async def test_routes_per_venue(nursery: trio.Nursery) -> None:
    sim = start(nursery, SPOT)
    await nursery.start(sim.serve)
    # spot has no /market route
    answer = await handshake_answer(sim.port, "/market/stream?streams=btcusdt@aggTrade")
    assert answer.startswith(b"HTTP/1.1 404 ")
    async with open_websocket_url(f"{sim.url}/ws/btcusdt@bookTicker") as ws:  # raw payloads
        with trio.fail_after(5):
            msg = spot.decode_payload("btcusdt@bookTicker", await ws.get_message())
    assert isinstance(msg, spot.SpotBookTicker) and msg.symbol == "BTCUSDT"
    async with open_websocket_url(f"{sim.url}/stream?streams=btcusdt@depth5@100ms") as ws:
        with trio.fail_after(5):
            part = spot.decode_frame(await ws.get_message()).data
    assert isinstance(part, spot.PartialDepth) and part.symbol == "BTCUSDT"
    assert len(part.bids) == 5 and part.bids[0][0] < part.asks[0][0]


async def test_the_server_pings_and_a_ponging_client_stays(nursery: trio.Nursery) -> None:
    assert profile(SPOT).ping_seconds == 20 and profile(COINM).ping_seconds == 180
    assert profile(USDM).ping_seconds is None
    sim = start(nursery, SPOT, ping_seconds=0.1)
    await nursery.start(sim.serve)
    got = await collect(sim, SPOT, 0.8, ("aggTrade",))
    assert sim.stats.pings >= 3 and sim.stats.ping_timeouts == 0 and len(got) > 10


def test_sim_cli_speaks_the_venue(capsys: pytest.CaptureFixture[str]) -> None:
    from trio_harvest.cli.commands import main

    assert main(["sim", "--venue", "binance-coinm", "--port", "0", "--duration", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "3 symbols" in out and "venue binance-coinm" in out and "/dapi/v1/" in out
    assert "/stream?streams=btcusd_perp@aggTrade" in out
    assert main(["sim", "--venue", "kraken", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--venue" in err and "binance-spot" in err and "Traceback" not in err


async def test_listing_and_disconnect_faults_in_each_venue(nursery: trio.Nursery) -> None:
    from trio_websocket import ConnectionClosed

    from trio_harvest.ingest.connection import websocket_connector

    # it closes its socket after a server-side close (trio-websocket: its ConnectionClosed below)
    connect = websocket_connector(1 << 20, transport="trio-websocket")
    sim = start(nursery, COINM, faults=FaultPlan(listing=0.2, disconnect=0.4))
    await nursery.start(sim.serve)
    with trio.fail_after(5):
        async with connect(f"{sim.url}/stream?streams=btcusd_perp@aggTrade") as ws:
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.get_message()
    assert sim.stats.listed[0] == "SUIUSD_PERP"  # the venue's names
    info = json.loads(sim.rest.handle("GET", "/dapi/v1/exchangeInfo").body)
    listed = coinm.parse_listing(info)
    assert all(listed[s].status == "SETTLING" for s in sim.stats.delisted)
    assert all(listed[s].trading or s in sim.stats.delisted for s in sim.stats.listed)
    assert listed["SUIUSD_PERP"].contract_size == 10
    s = start(nursery, SPOT)
    s.change_listing("SUIUSDT", "ETHUSDT")
    spot_listed = spot.parse_listing(json.loads(s.rest.handle("GET", "/api/v3/exchangeInfo").body))
    assert spot_listed["ETHUSDT"].status == "BREAK" and spot_listed["SUIUSDT"].trading


def test_a_quarterly_past_its_delivery_reads_as_delivering() -> None:
    sim = Simulator(SimConfig(symbols=("BTCUSD_PERP", "BTCUSD_251226"), venue=COINM),
                    clock_ms=lambda: NOW_MS)  # a year after that quarterly's date
    listed = coinm.parse_listing(json.loads(sim.rest.handle("GET", "/dapi/v1/exchangeInfo").body))
    assert listed["BTCUSD_251226"].status == "DELIVERING"
    assert listed["BTCUSD_251226"].expired(NOW_MS) and listed["BTCUSD_PERP"].trading


def test_message_rate_window() -> None:
    from trio_harvest.sim.control import MessageRate

    rate = MessageRate(5)
    assert all(rate.allow(0.1 * i) for i in range(5))
    assert not rate.allow(0.5)  # a sixth within one second
    assert rate.allow(1.45)  # the first ones have left the window


async def _close_code_after(port: int, messages: list[str]) -> int | None:
    """Send ``messages`` at once over a plain wsproto client; the server's close code, None
    when it answered every message without closing, -1 when it hung up without a close frame."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

    ws = WSConnection(ConnectionType.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(ws.send(Request(host="localhost",
                                              target="/stream?streams=btcusdt@aggTrade")))
        accepted = False
        while not accepted:
            ws.receive_data(await stream.receive_some(65536))
            accepted = any(isinstance(e, AcceptConnection) for e in ws.events())
        await stream.send_all(b"".join(ws.send(TextMessage(m)) for m in messages))
        replies = 0
        with trio.move_on_after(5.0):
            while replies < len(messages):
                data = await stream.receive_some(65536)
                if not data:
                    return -1  # closed without a close frame
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, CloseConnection):
                        return event.code
                    replies += isinstance(event, TextMessage) and '"id"' in event.data
            return None
    return -2  # neither answered nor closed in time


async def test_a_client_over_the_message_rate_is_disconnected(nursery: trio.Nursery) -> None:
    from trio_harvest.venues.binance_common.facts import subscription

    assert profile(SPOT).messages_per_second == 5 and profile(COINM).messages_per_second == 10
    assert profile(USDM).messages_per_second is None  # not enforced: as before
    sim = start(nursery, SPOT)
    await nursery.start(sim.serve)
    five = [subscription("LIST_SUBSCRIPTIONS", [], i) for i in range(5)]
    with trio.fail_after(10):
        assert await _close_code_after(sim.port, five) is None  # 5 in a second: answered
        assert sim.stats.rate_closes == 0
        # one too many: closed, with 1008 "Too many requests" (under load the close frame does
        # not always reach the client before the hang-up)
        assert await _close_code_after(sim.port, [*five, five[0]]) in (1008, -1)
    assert sim.stats.rate_closes == 1
