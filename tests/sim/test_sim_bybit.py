"""The simulator speaking Bybit v5 (``bybit-linear``, ``bybit-spot``): its path, subscribe acks
and refusals, ping/pong, a snapshot first and then deltas whose ``u`` steps by 1 (decoded and
kept by the venue's own adapter), a dropped diff event as a ``u`` gap, ``reset=P`` as venue-side
snapshots and restarts, resubscribe accounting, and the REST paths with their limits."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from trio_harvest import venues
from trio_harvest.sim.bybit_wire import trade_id
from trio_harvest.sim.faultplan import FaultPlan, parse_faults
from trio_harvest.sim.server import SimConfig, Simulator
from trio_harvest.venues.base import APPLIED, BATCH, BREAK, QUOTE, SNAPSHOT, TRADE
from trio_harvest.venues.bybit.book import LocalBook

from .handshake import handshake_answer

LINEAR, SPOT = "bybit-linear", "bybit-spot"


def start(venue: str, **kw: Any) -> Simulator:
    return Simulator(SimConfig(symbols=("BTCUSDT", "ETHUSDT"), rate=3000.0, seed=5,
                               venue=venue, **kw))


def path(venue: str) -> str:
    return "/v5/public/" + venue.removeprefix("bybit-")


async def session(sim: Simulator, venue: str, messages: list[dict[str, Any]],
                  seconds: float) -> list[str]:
    out: list[str] = []
    async with open_websocket_url(sim.url + path(venue)) as ws:
        for m in messages:
            await ws.send_message(json.dumps(m))
        with trio.move_on_after(seconds):
            while True:
                out.append(str(await ws.get_message()))
    return out


def sub(*topics: str, req: str = "1") -> dict[str, Any]:
    return {"req_id": req, "op": "subscribe", "args": list(topics)}


@pytest.mark.parametrize("venue", [LINEAR, SPOT])
async def test_topics_decode_and_each_book_chains_from_its_snapshot(
        nursery: trio.Nursery, venue: str) -> None:
    sim = start(venue)
    await nursery.start(sim.serve)
    adapter = venues.get(venue)
    frames = await session(sim, venue, [
        sub("publicTrade.BTCUSDT", "orderbook.50.BTCUSDT", "orderbook.1.BTCUSDT"),
        {"req_id": "p1", "op": "ping"}], 1.5)
    replies = [adapter.reply_to(f) for f in frames if '"topic"' not in f]
    assert (1, "") in replies and (-1, "") in replies  # the ack, the pong
    book = LocalBook("BTCUSDT")
    outcomes: list[str] = []
    kinds: set[int] = set()
    for f in frames:
        if '"topic"' not in f:
            continue
        rec = adapter.decode(f).data
        kinds.add(rec.kind)
        records = rec.records if rec.kind == BATCH else [rec]
        for r in records:
            if r.kind == TRADE:
                assert r.trade_id == trade_id(venue.removeprefix("bybit-"), "BTCUSDT", r.seq)
            elif r.kind != QUOTE:
                outcomes.append(book.on_event(r))
    assert kinds >= {TRADE, QUOTE, 3}
    assert outcomes[0] == SNAPSHOT and outcomes.count(SNAPSHOT) == 1
    assert outcomes.count(APPLIED) >= 5 and BREAK not in outcomes


async def test_refusals_the_path_and_spot_args(nursery: trio.Nursery) -> None:
    sim = start(SPOT)
    await nursery.start(sim.serve)
    eleven = [f"publicTrade.S{i}USDT" for i in range(11)]
    frames = await session(sim, SPOT, [sub(*eleven, req="1"), sub("orderbook.500.BTCUSDT",
                                                                   req="2"),
                                       sub("publicTrade.BTCUSDT", req="3"),
                                       sub("publicTrade.BTCUSDT", req="4")], 0.3)
    replies = {r[0]: r[1] for r in map(venues.get(SPOT).reply_to, frames) if r}
    assert "args size >10" in replies[1]
    assert "handler not found" in replies[2]
    assert replies[3] == "" and "already subscribed" in replies[4]
    # the other category's path: 404
    assert (await handshake_answer(sim.port, path(LINEAR))).startswith(b"HTTP/1.1 404 ")


async def test_a_dropped_diff_breaks_u_and_reset_sends_snapshots(nursery: trio.Nursery) -> None:
    sim = start(LINEAR, faults=FaultPlan(drop_diff=0.3, reset=0.1))
    await nursery.start(sim.serve)
    adapter = venues.get(LINEAR)
    frames = await session(sim, LINEAR, [sub("orderbook.50.BTCUSDT", "orderbook.50.ETHUSDT")],
                           2.5)
    books = {s: LocalBook(s) for s in ("BTCUSDT", "ETHUSDT")}
    seen: list[str] = []
    us: list[int] = []
    for f in frames:
        if '"topic"' in f:
            rec = adapter.decode(f).data
            us.append(rec.update_id)
            seen.append(books[rec.symbol].on_event(rec))
    assert BREAK in seen and seen.count(SNAPSHOT) > 2  # u gaps; the first snapshots and resets
    assert 1 in us  # a service restart
    assert sim.bybit is not None and sim.bybit.hub is not None
    assert sim.bybit.hub.bybit.resets > 0 and sim.bybit.hub.bybit.restarts > 0
    assert parse_faults("reset=0.2").reset == 0.2


async def test_a_resubscribed_topic_is_counted_and_starts_with_a_snapshot(
        nursery: trio.Nursery) -> None:
    sim = start(LINEAR)
    await nursery.start(sim.serve)
    topic = "orderbook.200.BTCUSDT"
    frames = await session(sim, LINEAR, [
        sub(topic), {"req_id": "2", "op": "unsubscribe", "args": [topic]},
        sub(topic, req="3")], 1.5)
    kinds = [json.loads(f).get("type") for f in frames if '"topic"' in f]
    assert kinds and kinds[0] == "snapshot"
    assert sim.bybit is not None and sim.bybit.hub is not None
    stats = sim.bybit.hub.bybit
    assert stats.subscribe_requests == 2 and stats.resubscribes == 1


async def test_rest_recent_trades_instruments_pages_and_the_ip_limit(
        nursery: trio.Nursery) -> None:
    sim = Simulator(SimConfig(symbols=tuple(f"C{i}USDT" for i in range(7)), rate=3000.0,
                              seed=5, venue=SPOT, faults=FaultPlan(weight=12)))
    await nursery.start(sim.serve)
    await trio.sleep(0.5)
    adapter: Any = venues.get(SPOT)
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        req = adapter.trades_request("C0USDT", 0, 0)
        r = await client.get(req.path, params=dict(req.params))
        rows = adapter.decode_trades(r.content)
        assert r.status_code == 200 and 0 < len(rows) <= 60
        assert [t.trade_ms for t in rows] == sorted((t.trade_ms for t in rows), reverse=True)
        listed: dict[str, Any] = {}
        next_req: Any = adapter.listing_request()
        pages = 0
        while next_req is not None:
            params = {**next_req.params, "limit": 3}
            doc = (await client.get(next_req.path, params=params)).json()
            listed.update(adapter.listing(doc))
            next_req = adapter.next_listing_request(doc)
            pages += 1
        assert pages == 3 and len(listed) == 7
        wrong = (await client.get(req.path, params={**req.params, "category": "linear"})).json()
        assert wrong["retCode"] == 10001
        statuses = [(await client.get(req.path, params=dict(req.params))).status_code
                    for _ in range(30)]
        assert 403 in statuses  # 12 requests per 5 s window, then "access too frequent"
