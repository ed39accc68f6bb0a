"""The core follows the venue's rules, not Binance's: a venue that wants the client's pings gets
them from the connection (paced, on the open session only), and a venue whose trade ids prove
nothing has every trade admitted by the repair gate (no continuity, no backfill)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import Connection, MessageSource
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.repair.coordinator import Repair
from trio_harvest.venues.base import NO_CONTINUITY, Keepalive
from trio_harvest.venues.binance_usdm.adapter import BinanceUsdm
from trio_harvest.venues.binance_usdm.decode import decode_frame
from trio_harvest.venues.binance_usdm.streams import MARKET, ConnectionPlan, StreamSpec

from ..conftest import make_config


class PingingVenue(BinanceUsdm):
    keepalive = Keepalive(server_pings=False, ping_text="ping", interval=20.0)


class IdlessVenue(BinanceUsdm):
    trade_continuity = NO_CONTINUITY


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_the_venues_app_level_ping_is_sent_at_its_interval(
        autojump_clock: trio.testing.MockClock) -> None:
    sent: list[tuple[float, str]] = []
    sessions = 0

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        nonlocal sessions
        sessions += 1

        class Source:
            async def get_message(self) -> str:
                await trio.sleep(1.0)
                return "frame"

            async def send(self, text: str) -> None:
                sent.append((trio.current_time(), text))

        yield Source()

    got: list[str | bytes] = []

    def handle(frame: str | bytes) -> None:
        got.append(frame)

    plan = ConnectionPlan(MARKET, (StreamSpec("BTCUSDT", "aggTrade", "btcusdt@aggTrade"),))
    conn = Connection(plan, "ws://x", connect, handle, stall_timeout=30,
                      backoff=Backoff(1.0, 4.0, random.Random(1)), venue=PingingVenue())
    with trio.move_on_after(65):
        await conn.run()
    assert sessions == 1 and len(got) >= 60  # the pings never disturbed the session
    assert [text for _, text in sent] == ["ping", "ping", "ping"]
    assert [round(t) for t, _ in sent] == [20, 40, 60]


async def test_a_server_pinging_venue_gets_no_client_ping(
        autojump_clock: trio.testing.MockClock) -> None:
    sent: list[str] = []

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        class Source:
            async def get_message(self) -> str:
                await trio.sleep(1.0)
                return "frame"

            async def send(self, text: str) -> None:
                sent.append(text)

        yield Source()

    plan = ConnectionPlan(MARKET, (StreamSpec("BTCUSDT", "aggTrade", "btcusdt@aggTrade"),))
    conn = Connection(plan, "ws://x", connect, lambda frame: None, stall_timeout=30,
                      backoff=Backoff(1.0, 4.0, random.Random(1)))
    with trio.move_on_after(65):
        await conn.run()
    assert sent == []


def _trade(agg_id: int) -> object:
    return decode_frame(
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1700000000000,"s":"BTCUSDT",'
        f'"a":{agg_id},"p":"1.0","q":"1.0","f":1,"l":1,"T":1700000000000,"m":true}}}}').data


async def _repair(tmp_path: Path, venue: BinanceUsdm | None) -> Repair:
    config = make_config(tmp_path, symbols=("BTCUSDT",))
    lanes = Lanes(dict(config.watermarks), wake=lambda lane: None)

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        raise AssertionError("not connected")
        yield  # pragma: no cover

    return Repair(config, lanes, connect, wall_ms=lambda: 1_700_000_000_000,
                  use_http=False, venue=venue)


async def test_a_venue_without_continuity_has_every_trade_admitted(tmp_path: Path) -> None:
    contiguous = await _repair(tmp_path, None)
    idless = await _repair(tmp_path, IdlessVenue())
    for agg_id in (5, 6, 6, 5, 9):  # a duplicate, an old id, a jump
        contiguous.trade(_trade(agg_id), 1_700_000_000_000)  # type: ignore[arg-type]
        assert idless.trade(_trade(agg_id), 1_700_000_000_000)  # type: ignore[arg-type]
    assert contiguous.stats.trade_duplicates == 2
    assert idless.stats.trade_duplicates == 0 and not idless.backfill.pending
    assert contiguous.trackers["BTCUSDT"].last_id == 6  # the jump to 9 is held, unconfirmed
    assert idless.trackers["BTCUSDT"].last_id is None  # nothing tracked: ids prove nothing
