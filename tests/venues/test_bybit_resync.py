"""Bybit books that break resync by resubscribing their topic (the seam's
``resync_by_resubscribe``), never in a storm: 200 books break at once, each topic is
resubscribed once, a few at a time, and one connection sends the requests within Bybit's limits
(one topic a request, far under 10 args on spot; under the category's client message pace)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise
from typing import Any

import pytest
import trio
import trio.testing

from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import Connection, MessageSource
from trio_harvest.kinds import DEFAULT_WATERMARKS, ORDERBOOK, Row
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.repair.booksync import DiffBooks
from trio_harvest.venues.bybit.adapter import LINEAR, SPOT

NOW = 1_700_000_000_000


def _book(venue: Any, symbol: str, kind: str, u: int) -> Any:
    return venue.decode(json.dumps({
        "topic": f"orderbook.50.{symbol}", "type": kind, "ts": NOW, "cts": NOW,
        "data": {"s": symbol, "b": [["100", "1"]], "a": [["101", "1"]], "u": u, "seq": u}})).data


class _Source:
    def __init__(self, sent: list[tuple[float, str]]) -> None:
        self.sent = sent

    async def get_message(self) -> str:
        await trio.sleep(1.0)
        return '{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}'

    async def send(self, text: str) -> None:
        self.sent.append((trio.current_time(), text))


@pytest.mark.parametrize("venue", [LINEAR, SPOT], ids=lambda v: v.name)
async def test_200_broken_books_are_resubscribed_once_each_within_the_limits(
        autojump_clock: trio.testing.MockClock, venue: Any) -> None:
    """Book sync asks the connection that carries the topics (as the app does); every request
    it sends is counted: each broken topic is unsubscribed and subscribed once, one topic a
    request, never faster than the category's client message pace."""
    assert venue.resync_by_resubscribe
    symbols = tuple(f"C{i}USDT" for i in range(200))
    sent: list[tuple[float, str]] = []
    gaps: list[Row] = []

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        yield _Source(sent)

    async def put_gap(row: Row) -> None:
        gaps.append(row)

    specs = venue.streams_for(symbols, depth_levels=50, depth_speed="", book="diff",
                              book_ticker=False)
    [plan] = venue.plan_connections(specs, 500)
    conn = Connection(plan, "ws://sim", connect, lambda frame: None, stall_timeout=600,
                      backoff=Backoff(1.0, 4.0, random.Random(1)), venue=venue)
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    books = DiffBooks(symbols, levels=5, put_gap=put_gap, venue=venue,
                      fetch_depth=lambda s, n: None)  # type: ignore[arg-type,return-value]

    async def resubscribe(stream: str) -> bool:
        return await conn.resubscribe([stream])

    books.resubscribe = resubscribe
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        await trio.sleep(0.5)
        sent.clear()
        await nursery.start(books.run)
        for s in symbols:
            lane = lanes.get(ORDERBOOK, s)
            await books.on_depth(_book(venue, s, "snapshot", 10), NOW, lane, None)
            await books.on_depth(_book(venue, s, "delta", 12), NOW, lane, None)  # 11 lost
            await books.on_depth(_book(venue, s, "delta", 13), NOW, lane, None)  # still broken
        await trio.sleep(2.0)
        first = sum(1 for _, m in sent if '"op":"ping"' not in m)
        await trio.sleep(200)
        for s in symbols:  # the snapshots the resubscriptions brought
            await books.on_depth(_book(venue, s, "snapshot", 500), NOW, lanes.get(ORDERBOOK, s),
                                 None)
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    requests = [(t, json.loads(m)) for t, m in sent if '"op":"ping"' not in m]
    topics = sorted(f"orderbook.50.{s}" for s in symbols)
    for op in ("unsubscribe", "subscribe"):  # each broken topic once, one topic a request
        assert sorted(a for _, d in requests if d["op"] == op for a in d["args"]) == topics
    assert all(len(d["args"]) == 1 for _, d in requests)
    times = [t for t, _ in requests]
    assert all(b - a >= 1.0 / venue.messages_per_second - 1e-9 for a, b in pairwise(times))
    assert first <= 2 * venue.messages_per_second  # 2 s of it: never all 200 at once
    assert all(b.live for b in books.books.values()) and books.stats.resubscribes == 200
    assert {g[5] for g in gaps} == {"book sequence break (bybit u)"} and len(gaps) == 200


