"""The seam's extension points, driven by a venue that uses them (OKX): a socket that opens bare
and subscribes what its URL names, live subscription changes in batches, several records in one
frame, trades that cover a span of ids (gate and backfill), a snapshot on the stream written as
one, a gap reason that names the venue's rule. The Binance venues keep their defaults."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio.testing

from trio_harvest import venues
from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import Connection, MessageSource
from trio_harvest.ingest.subscribe import subscribing
from trio_harvest.kinds import BOOK_UPDATES, DEFAULT_WATERMARKS, GAPS_SCHEMA, ORDERBOOK, PRICES, Row
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.pipeline.router import Router
from trio_harvest.repair.booksync import DiffBooks
from trio_harvest.repair.coordinator import Repair
from trio_harvest.venues.okx.adapter import OkxSpot

from ..conftest import make_config

NOW = 1_700_000_000_000
SPOT = venues.get("okx-spot")


def _trade(trade_id: int, count: int, ts: int = NOW) -> dict[str, object]:
    return {"instId": "BTC-USDT", "tradeId": str(trade_id), "px": "100.5", "sz": "0.1",
            "side": "buy", "ts": str(ts), "count": str(count)}


def _push(channel: str, data: list[dict[str, object]], action: str = "") -> str:
    doc: dict[str, object] = {"arg": {"channel": channel, "instId": "BTC-USDT"}, "data": data}
    if action:
        doc["action"] = action
    return json.dumps(doc)


def _books(symbol: str, prev: int, seq: int, action: str, venue: Any) -> Any:
    """A ``books`` message of ``symbol`` (one ask level), decoded by ``venue``."""
    return venue.decode(json.dumps({"arg": {"channel": "books", "instId": symbol},
                                    "action": action, "data": [{
                                        "asks": [["101", "2", "0", "1"]], "bids": [],
                                        "ts": str(NOW), "checksum": 0, "prevSeqId": prev,
                                        "seqId": seq}]})).data


class _Source:
    def __init__(self, sent: list[str]) -> None:
        self.sent = sent

    async def get_message(self) -> str:
        await trio.sleep(1.0)
        return "pong"

    async def send(self, text: str) -> None:
        self.sent.append(text)


async def test_a_socket_opens_bare_and_subscribes_what_its_url_names() -> None:
    opened: list[str] = []
    sent: list[str] = []

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        opened.append(url)
        yield _Source(sent)

    specs = SPOT.streams_for(tuple(f"C{i}-USDT" for i in range(30)), depth_levels=5,
                             depth_speed="100ms", book="diff", book_ticker=True)
    [plan, *_] = SPOT.plan_connections(specs, 90)
    url = plan.url("ws://sim")
    async with subscribing(connect, SPOT)(url):
        pass
    assert opened == ["ws://sim/ws/v5/public"]
    args = [a for m in sent for a in json.loads(m)["args"]]
    assert len(sent) == 2 and len(args) == 90  # 50 args a request at most
    binance = venues.get("binance-usdm")
    assert subscribing(connect, binance) is connect  # its URLs carry the streams


class _Small(OkxSpot):
    subscribe_batch = 2


async def test_a_live_change_goes_out_in_batches(autojump_clock: trio.testing.MockClock) -> None:
    sent: list[str] = []

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        yield _Source(sent)

    venue = _Small()
    specs = venue.streams_for(("A-USDT", "B-USDT"), depth_levels=5, depth_speed="100ms",
                              book="diff", book_ticker=False)
    [plan] = venue.plan_connections(specs[:1], 10)
    conn = Connection(plan, "ws://sim", connect, lambda frame: None, stall_timeout=30,
                      backoff=Backoff(1.0, 4.0, random.Random(1)), venue=venue)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        await trio.sleep(1.0)
        sent.clear()
        conn.retarget(tuple(specs[1:]))
        await conn.tell()
        nursery.cancel_scope.cancel()
    requests = [json.loads(m) for m in sent if m != "ping"]
    assert [len(r["args"]) for r in requests] == [2, 1] and \
        {r["op"] for r in requests} == {"subscribe"}


async def test_a_frame_of_several_trades_is_routed_one_by_one(tmp_path: Path) -> None:
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    config = make_config(tmp_path, symbols=("BTC-USDT",), venue="okx-spot")
    repair = await _repair(config, lanes)
    router = Router(lanes, ("BTC-USDT",), depth_levels=5, wall_ms=lambda: NOW, venue=SPOT,
                    streams={"trades:BTC-USDT": "BTC-USDT"})
    router.gate = repair
    await router.handle(_push("trades", [_trade(10, 1), _trade(13, 3), _trade(14, 1)]))
    await router.handle(_push("trades", [_trade(13, 3)]))  # a repeat: dropped
    await router.handle("pong")
    rows = lanes.get(PRICES, "BTC-USDT").drain()
    assert [(r[4], r[7], r[8]) for r in rows] == [(10, 10, 10), (13, 11, 13), (14, 14, 14)]
    assert repair.stats.trade_duplicates == 1 and router.stats.replies == 1
    assert not repair.backfill.pending  # the spans follow each other: nothing missing


async def _repair(config: Any, lanes: Lanes) -> Repair:
    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        raise AssertionError("not connected")
        yield  # pragma: no cover

    return Repair(config, lanes, connect, wall_ms=lambda: NOW, use_http=False,
                  venue=config_venue(config))


def config_venue(config: Any) -> Any:
    return venues.get(config.venue)


async def test_spans_open_a_break_for_the_ids_between_trades_only(tmp_path: Path) -> None:
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    repair = await _repair(make_config(tmp_path, symbols=("BTC-USDT",), venue="okx-spot"),
                           lanes)
    trade = SPOT.decode
    assert repair.trade(trade(_push("trades", [_trade(100, 5)])).data, NOW)
    assert repair.trade(trade(_push("trades", [_trade(110, 4)])).data, NOW)  # 101..106 lost
    tracker = repair.trackers["BTC-USDT"]
    assert tracker.missing == [[101, 106]] and tracker.last_id == 110
    # a late trade (103..104) fills part of it; what it covers is not missing any more
    assert repair.trade(trade(_push("trades", [_trade(104, 2)])).data, NOW)
    assert tracker.missing == [[101, 102], [105, 106]]
    assert not repair.trade(trade(_push("trades", [_trade(104, 2)])).data, NOW)  # seen


async def test_a_snapshot_on_the_stream_is_written_as_one_and_a_break_names_the_rule() -> None:
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    gaps: list[Row] = []

    async def put_gap(row: Row) -> None:
        gaps.append(row)

    books = DiffBooks(("BTC-USDT",), levels=5, put_gap=put_gap, venue=SPOT,
                      fetch_depth=lambda s, n: None,  # type: ignore[arg-type,return-value]
                      updates_of=lambda s: lanes.get(BOOK_UPDATES, s))
    lane = lanes.get(ORDERBOOK, "BTC-USDT")

    def book(prev: int, seq: int, action: str = "update", **sides: list[list[str]]) -> Any:
        return SPOT.decode(_push("books", [{"asks": sides.get("asks", []),
                                            "bids": sides.get("bids", []), "ts": str(NOW),
                                            "checksum": 0, "prevSeqId": prev, "seqId": seq}],
                                 action)).data

    async with trio.open_nursery():
        await books.on_depth(book(-1, 10, "snapshot", bids=[["100", "1", "0", "1"]],
                                  asks=[["101", "2", "0", "1"]]), NOW, lane, None)
        await books.on_depth(book(10, 12, bids=[["100", "3", "0", "1"]]), NOW, lane, None)
        await books.on_depth(book(13, 14), NOW, lane, None)  # 12 -> 13 lost
    updates = lanes.get(BOOK_UPDATES, "BTC-USDT").drain()
    assert [(r[5], r[6], r[7], r[10]) for r in updates] == [
        (10, -1, "bid", True), (10, -1, "ask", True), (12, 10, "bid", False)]
    assert [r[5] for r in lane.drain()] == [10, 12]
    assert books.stats.requests == 0  # the stream gave the snapshot: no REST
    reason = GAPS_SCHEMA.index("reason")
    assert [g[reason] for g in gaps] == ["book sequence break (okx seqId)"]


async def test_200_books_breaking_at_once_stay_within_the_venues_limits(
        autojump_clock: trio.testing.MockClock) -> None:
    """No resubscribe at all (a broken book resyncs from REST books aligned by seqId), and the
    snapshot requests of 200 books breaking together stay under OKX's 40 per 2 s."""
    symbols = tuple(f"C{i}-USDT" for i in range(200))
    asked: list[float] = []

    async def fetch_depth(symbol: str, limit: int) -> dict[str, object]:
        asked.append(trio.current_time())
        return {"code": "0", "msg": "", "data": [{"asks": [["101", "1", "0", "1"]],
                                                  "bids": [["100", "1", "0", "1"]],
                                                  "ts": str(NOW), "seqId": 50}]}

    async def put_gap(row: Row) -> None:
        pass

    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    books = DiffBooks(symbols, levels=5, put_gap=put_gap, venue=SPOT, fetch_depth=fetch_depth)

    def book(symbol: str, prev: int, seq: int, action: str = "update") -> Any:
        return _books(symbol, prev, seq, action, SPOT)

    async with trio.open_nursery() as nursery:
        await nursery.start(books.run)
        for s in symbols:
            lane = lanes.get(ORDERBOOK, s)
            await books.on_depth(book(s, -1, 10, "snapshot"), NOW, lane, None)
            await books.on_depth(book(s, 11, 12), NOW, lane, None)  # 10 -> 11 lost: a break
        await trio.sleep(120)
        for s in symbols:  # the next update bridges the REST snapshot (prevSeqId <= 50 < 55)
            await books.on_depth(book(s, 48, 55), NOW, lanes.get(ORDERBOOK, s), None)
        nursery.cancel_scope.cancel()
    assert len(asked) == 200 and all(b.live for b in books.books.values())
    worst = max(sum(1 for t in asked if start <= t < start + 2.0) for start in asked)
    assert worst <= 40, worst  # OKX: 40 books requests per 2 s


class _Resubscribing(OkxSpot):
    resync_by_resubscribe = True


async def test_books_that_resync_by_resubscribing_are_paced_not_stormed(
        autojump_clock: trio.testing.MockClock) -> None:
    """A venue whose broken books resync from the snapshot the stream sends on subscribing:
    200 books breaking at once are resubscribed one stream at a time, through the same pacer
    and cooldown as REST snapshots, each once; a book whole again is not asked for again."""
    venue = _Resubscribing()
    symbols = tuple(f"C{i}-USDT" for i in range(200))
    asked: list[tuple[float, str]] = []

    async def resubscribe(stream: str) -> bool:
        asked.append((trio.current_time(), stream))
        return True

    async def put_gap(row: Row) -> None:
        pass

    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    books = DiffBooks(symbols, levels=5, put_gap=put_gap, venue=venue,
                      fetch_depth=lambda s, n: None)  # type: ignore[arg-type,return-value]
    books.resubscribe = resubscribe

    def book(symbol: str, prev: int, seq: int, action: str = "update") -> Any:
        return _books(symbol, prev, seq, action, venue)

    async with trio.open_nursery() as nursery:
        await nursery.start(books.run)
        for s in symbols:
            lane = lanes.get(ORDERBOOK, s)
            await books.on_depth(book(s, -1, 10, "snapshot"), NOW, lane, None)
            await books.on_depth(book(s, 11, 12), NOW, lane, None)  # a break
        await trio.sleep(2.0)
        first = len(asked)
        await trio.sleep(120)
        for s in symbols:  # the snapshots the resubscriptions brought
            await books.on_depth(book(s, -1, 90, "snapshot"), NOW, lanes.get(ORDERBOOK, s), None)
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert sorted(s for _, s in asked) == sorted(f"books:{s}" for s in symbols)  # each once
    assert first <= 40  # paced: never all 200 at once
    assert all(b.live for b in books.books.values()) and books.stats.resubscribes == 200


async def test_a_connection_resubscribes_one_stream() -> None:
    sent: list[str] = []

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        yield _Source(sent)

    specs = SPOT.streams_for(("A-USDT",), depth_levels=5, depth_speed="100ms", book="diff",
                             book_ticker=False)
    [plan] = SPOT.plan_connections(specs, 10)
    conn = Connection(plan, "ws://sim", connect, lambda frame: None, stall_timeout=30,
                      backoff=Backoff(1.0, 4.0, random.Random(1)), venue=SPOT)
    assert not await conn.resubscribe(["books:A-USDT"])  # no session: nothing sent
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        await trio.sleep(0.5)
        sent.clear()
        assert await conn.resubscribe(["books:A-USDT"])
        nursery.cancel_scope.cancel()
    assert [json.loads(m)["op"] for m in sent] == ["unsubscribe", "subscribe"]
    assert all(json.loads(m)["args"] == [{"channel": "books", "instId": "A-USDT"}]
               for m in sent)
