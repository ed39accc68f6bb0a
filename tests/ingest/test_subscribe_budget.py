"""OKX's 480 subscribe, unsubscribe and login requests an hour per connection: each socket of a
venue that says so is budgeted (``TokenBucket.hourly``), on open and for every later request of
its session (a listing change adding and removing symbols); the keepalive ping never waits, and
a new socket (a reconnect) has a budget of its own. Under MockClock."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import Connection
from trio_harvest.ingest.subscribe import subscribing
from trio_harvest.ingest.tokenbucket import TokenBucket
from trio_harvest.ingest.transport import MessageSource
from trio_harvest.venues.okx.adapter import OkxSwap, Stream

HOUR = 3600.0


def most_in_an_hour(times: list[float]) -> int:
    """The most of ``times`` (sorted) in any window of one hour."""
    return max((bisect.bisect_left(times, t + HOUR) - i for i, t in enumerate(times)), default=0)


async def test_an_hourly_bucket_never_spends_more_than_its_hour(
        autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket.hourly(480, 48)
    times = []
    for _ in range(1500):
        await bucket.acquire(1)
        times.append(trio.current_time())
    assert times.count(0.0) == 48  # a tenth at once, then evenly
    assert most_in_an_hour(times) <= 480
    assert times[-1] < (1500 - 48) * HOUR / 432 + 1  # and no slower: 432 an hour from then on


class Socket:
    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []

    async def get_message(self) -> str:
        await trio.sleep_forever()
        raise AssertionError

    async def send(self, message: str) -> None:
        self.sent.append((trio.current_time(), message))


class Exchange:
    def __init__(self) -> None:
        self.sockets: list[Socket] = []

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[MessageSource]:
        assert "#" not in url  # the bare path: the streams are subscribed by message
        sock = Socket()
        self.sockets.append(sock)
        yield sock


def requests(sock: Socket) -> list[float]:
    return [t for t, m in sock.sent if m != "ping"]


async def test_listing_changes_on_one_socket_stay_within_480_requests_an_hour(
        autojump_clock: trio.testing.MockClock) -> None:
    venue = OkxSwap()
    exchange = Exchange()
    first = (Stream("BTC-USDT-SWAP", "trades", "trades:BTC-USDT-SWAP"),)
    conn = Connection(venue.plan_connections(list(first), 90)[0], "wss://x",
                      subscribing(exchange.connect, venue), lambda frame: None,
                      stall_timeout=10 * HOUR, backoff=Backoff(1, 2), venue=venue)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        await trio.sleep(1)
        # a flapping listing: a symbol added and removed again, 800 times, as fast as the
        # connection's own pacing lets it (one request per 0.5 s: 7,200 an hour unbudgeted)
        for i in range(800):
            new = Stream(f"X{i}-USDT-SWAP", "trades", f"trades:X{i}-USDT-SWAP")
            conn.retarget(add=(new,))
            await conn.tell()
            conn.retarget(remove=frozenset({new.name}))
            await conn.tell()
        nursery.cancel_scope.cancel()
    [sock] = exchange.sockets
    sent = requests(sock)
    assert len(sent) == 1 + 1600  # the open subscribe, then every change: none left out
    assert most_in_an_hour(sent) <= 480
    # the keepalive never went 30 s without a message, budget waits or not
    times = [t for t, _ in sock.sent]
    assert sum(m == "ping" for _, m in sock.sent) > 100
    assert max(b - a for a, b in itertools.pairwise(times)) < 26


async def test_a_new_socket_has_its_own_budget_and_pings_never_wait(
        autojump_clock: trio.testing.MockClock) -> None:
    venue = OkxSwap()
    exchange = Exchange()
    connect = subscribing(exchange.connect, venue)
    names = "/".join(f"trades:S{i}-USDT-SWAP" for i in range(40))
    async with connect(f"wss://x/ws/v5/public#{names}") as ws:
        for _ in range(100):
            await ws.send('{"op":"subscribe","args":[]}')
        await ws.send("ping")
    assert len(requests(exchange.sockets[0])) == 101
    assert exchange.sockets[0].sent[-1][1] == "ping"
    used_up = trio.current_time()
    assert exchange.sockets[0].sent[-1][0] == used_up  # the ping went at once
    async with connect(f"wss://x/ws/v5/public#{names}"):  # a reconnect: a fresh socket
        pass
    assert [t for t in requests(exchange.sockets[1])] == [used_up]  # subscribed at once
