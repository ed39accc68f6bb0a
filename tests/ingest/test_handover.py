"""The 24 h handover against a fake exchange (MockClock), then against the simulator enforcing a
connection lifetime (real clock, loopback)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
import trio
import trio.testing

from trio_harvest.app import Harvester
from trio_harvest.ingest.backoff import Backoff
from trio_harvest.ingest.connection import Connection, MessageSource
from trio_harvest.ingest.handover import HandoverConnector
from trio_harvest.venues.binance_usdm.streams import MARKET, ConnectionPlan, StreamSpec

from ..conftest import make_config


@dataclass(eq=False)
class FakeSocket:
    send: trio.MemorySendChannel[str]
    recv: trio.MemoryReceiveChannel[str]
    opened_at: float
    reorder: bool = False
    dead: bool = False

    async def get_message(self) -> str:
        try:
            return await self.recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise OSError(104, "Connection reset by peer") from None


@dataclass(eq=False)
class PollingSocket(FakeSocket):
    """A socket that also hands on, with no checkpoint, what it has received already."""

    polls: int = 0

    def poll(self) -> str | None:
        try:
            frame = self.recv.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            return None
        self.polls += 1
        return frame


@dataclass
class FakeExchange:
    """Publishes frames ``a<n>`` and ``b<n>`` (two streams) every 10 ms to every open socket;
    closes sockets older than ``lifetime``; may refuse the next ``refuse`` opens."""

    lifetime: float = math.inf
    refuse: int = 0
    reorder_new: bool = False  # new sockets get the two streams in the other order
    newest_only: bool = False  # only the last socket opened gets frames
    polling: bool = False  # sockets offer ``poll`` (``PollingSocket``)
    burst: int = 1  # frames of each stream every 10 ms
    sockets: list[FakeSocket] = field(default_factory=list)
    opened_sockets: list[FakeSocket] = field(default_factory=list)  # every one, closed or not
    opened: int = 0
    closed_by_lifetime: int = 0
    n: int = 0

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[MessageSource]:
        if self.refuse:
            self.refuse -= 1
            raise OSError(111, "Connection refused")
        send, recv = trio.open_memory_channel[str](math.inf)
        kind = PollingSocket if self.polling else FakeSocket
        sock = kind(send, recv, trio.current_time(), reorder=self.reorder_new and self.opened > 0)
        self.opened += 1
        self.sockets.append(sock)
        self.opened_sockets.append(sock)
        try:
            yield sock
        finally:
            self.sockets.remove(sock)
            send.close()

    async def run(self) -> None:
        while True:
            await trio.sleep(0.01)
            now = trio.current_time()
            first = self.n + 1
            self.n += self.burst
            for sock in list(self.sockets):
                if now - sock.opened_at >= self.lifetime:
                    self.closed_by_lifetime += 1
                    sock.send.close()
                    self.sockets.remove(sock)
                    continue
                if self.newest_only and sock is not self.sockets[-1]:
                    continue
                for n in range(first, self.n + 1):
                    pair = [f"a{n}", f"b{n}"]
                    for frame in reversed(pair) if sock.reorder else pair:
                        sock.send.send_nowait(frame)


async def read_for(connector: HandoverConnector, seconds: float) -> list[str]:
    got: list[str] = []
    with trio.move_on_after(seconds):
        async with connector.connect("ws://x/market/stream?streams=a/b") as ws:
            while True:
                got.append(str(await ws.get_message()))
    return got


def assert_contiguous(frames: list[str]) -> None:
    """Every frame of the exchange between the first and the last read, exactly once."""
    n = [int(f[1:]) for f in frames if f[0] == "a"]
    assert n == list(range(n[0], n[-1] + 1))
    assert len(frames) == 2 * len(n) or abs(len(frames) - 2 * len(n)) == 1


async def test_no_cancel_scope_is_entered_per_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Between handovers a read is the socket's own: every read runs under the same cancel
    status (a scope entered per message would give each read a new one)."""
    statuses: list[object] = []  # kept alive, so identities are not reused

    class Socket:
        n = 0

        async def get_message(self) -> str:
            statuses.append(trio.lowlevel.current_task()._cancel_status)  # type: ignore[attr-defined]
            await trio.sleep(0.01)
            self.n += 1
            return f"a{self.n}"

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        yield Socket()

    connector = HandoverConnector(connect, lifetime=100.0, lead=10.0, overlap=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(connector.run)
        frames = await read_for(connector, 1.0)
        nursery.cancel_scope.cancel()
    assert len(frames) > 50
    assert len({id(s) for s in statuses}) == 1


async def test_bursts_polled_by_the_connection_lose_and_repeat_nothing_across_handovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The connection loop drains each burst with ``poll`` (between handovers the socket's own,
    during one nothing: every frame then goes through the switch), over many handovers: every
    frame exactly once, in order, and most of them polled."""
    ex = FakeExchange(lifetime=1.0, polling=True, burst=8)
    connector = HandoverConnector(ex.connect, lifetime=1.0, lead=0.3, overlap=0.5)
    got: list[str | bytes] = []

    def handle(frame: str | bytes) -> Awaitable[None] | None:
        got.append(frame)  # now and then a full lane: the handover may begin while it waits
        return full_lane() if len(got) % 5 == 0 else None

    async def full_lane() -> None:
        await trio.sleep(0.003)

    conn = Connection(ConnectionPlan(MARKET, (StreamSpec("BTCUSDT", "aggTrade", "a"),)),
                      "ws://x", connector.connect, handle, stall_timeout=100.0,
                      backoff=Backoff(0.1, 1.0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ex.run)
        await nursery.start(connector.run)
        nursery.start_soon(conn.run)
        await trio.sleep(5.0)
        nursery.cancel_scope.cancel()
    frames = [str(f) for f in got]
    assert_contiguous(frames)
    assert [f for f in frames if f[0] == "a"] == sorted({f for f in frames if f[0] == "a"},
                                                        key=lambda f: int(f[1:]))
    st = connector.stats
    assert st.handovers >= 6 and st.matched == st.handovers and st.failures == 0
    assert conn.stats.reconnects == 0
    polls = sum(s.polls for s in ex.opened_sockets if isinstance(s, PollingSocket))
    assert polls > len(frames) // 2


async def test_a_quiet_old_socket_is_switched_after_the_overlap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Only the newest socket gets frames: the old one is silent from the moment its replacement
    opens, so the read blocked on it must be ended (by closing it) at the overlap deadline."""
    ex = FakeExchange(lifetime=1.0, newest_only=True)
    connector = HandoverConnector(ex.connect, lifetime=1.0, lead=0.3, overlap=0.2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ex.run)
        await nursery.start(connector.run)
        frames = await read_for(connector, 3.0)
        nursery.cancel_scope.cancel()
    st = connector.stats
    assert st.handovers >= 3 and st.timed_out == st.handovers and st.old_closed_first == 0
    assert_contiguous(frames)
    assert ex.closed_by_lifetime == 0


async def test_handover_switches_at_the_common_frame(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ex = FakeExchange(lifetime=1.0)
    connector = HandoverConnector(ex.connect, lifetime=1.0, lead=0.3, overlap=0.5)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ex.run)
        await nursery.start(connector.run)
        frames = await read_for(connector, 5.0)
        nursery.cancel_scope.cancel()
    assert_contiguous(frames)
    st = connector.stats
    assert st.handovers >= 6 and st.matched == st.handovers and st.failures == 0
    assert ex.closed_by_lifetime == 0  # always replaced before the exchange closed it


async def test_unaligned_streams_switch_after_the_overlap_without_losing_frames(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ex = FakeExchange(lifetime=1.0, reorder_new=True)
    connector = HandoverConnector(ex.connect, lifetime=1.0, lead=0.3, overlap=0.1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ex.run)
        await nursery.start(connector.run)
        frames = await read_for(connector, 3.0)
        nursery.cancel_scope.cancel()
    assert connector.stats.handovers >= 2
    for stream in "ab":  # nothing missing; duplicates are the router's to drop (by id)
        n = sorted({int(f[1:]) for f in frames if f[0] == stream})
        assert n == list(range(n[0], n[-1] + 1))


async def test_failed_replacements_are_retried(autojump_clock: trio.testing.MockClock) -> None:
    ex = FakeExchange(lifetime=2.0)
    connector = HandoverConnector(ex.connect, lifetime=2.0, lead=1.5, overlap=0.2, retry=0.2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ex.run)
        await nursery.start(connector.run)
        async with connector.connect("ws://x") as ws:
            await ws.get_message()
            ex.refuse = 3
            frames = []
            with trio.move_on_after(1.9):
                while True:
                    frames.append(str(await ws.get_message()))
        nursery.cancel_scope.cancel()
    assert connector.stats.failures == 3 and connector.stats.handovers >= 1
    assert ex.closed_by_lifetime == 0
    assert_contiguous(frames)


async def test_old_socket_dying_without_a_replacement_is_a_disconnect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ex = FakeExchange(lifetime=1.0)
    connector = HandoverConnector(ex.connect, lifetime=100.0, lead=10.0, overlap=1.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ex.run)
        await nursery.start(connector.run)
        with pytest.raises(OSError):
            async with connector.connect("ws://x") as ws:
                while True:
                    await ws.get_message()
        nursery.cancel_scope.cancel()


async def test_connect_errors_reach_the_caller(autojump_clock: trio.testing.MockClock) -> None:
    ex = FakeExchange(refuse=1)
    connector = HandoverConnector(ex.connect, lifetime=10.0, lead=1.0, overlap=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(connector.run)
        with pytest.raises(OSError, match="refused"):
            async with connector.connect("ws://x"):
                pass  # pragma: no cover
        nursery.cancel_scope.cancel()


async def test_harvester_hands_over_before_the_simulator_closes(tmp_path: Path) -> None:
    """The simulator closes connections after 2 s (Binance: 24 h); the harvester replaces them
    after 1 s: no reconnect, no gap, no duplicate, and (control) the simulator never had to
    close one."""
    cfg = make_config(tmp_path, sim=True, sim_rate=600.0, sim_faults="lifetime=2",
                      ws_lifetime=2.0, handover_lead=1.0, handover_overlap=0.5)
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(4.5)
        _, report = h.ops.health_now()
        h.request_stop("test over")
    assert h.repair.connector.stats.handovers >= 4
    assert any(n.code == "handover" for n in report.notes)
    assert sum(c.stats.reconnects for c in h.connections) == 0
    sim_stats = h.simulator.injector.stats.counts
    assert sim_stats.get("lifetime_closes", 0) == 0
    assert h.repair.stats.gaps == {}
    data = tmp_path / "data"
    prices = pl.read_parquet(str(data / "venue=*/date=*/symbol=*/kind=prices/*.parquet"),
                             hive_partitioning=True)
    for symbol in cfg.symbols:
        ids = prices.filter(pl.col("symbol") == symbol)["agg_id"].sort()
        assert ids.n_unique() == len(ids) and ids[-1] - ids[0] + 1 == len(ids) > 100
    book = pl.read_parquet(str(data / "venue=*/date=*/symbol=*/kind=orderbook/*.parquet"),
                           hive_partitioning=True)
    assert book.select("symbol", "source", "update_id").n_unique() == book.height


async def test_an_unexpected_error_opening_a_replacement_stays_in_the_handover(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A per-connection failure: it used to crash the whole harvester."""
    ex = FakeExchange(lifetime=2.0)
    real = ex.connect
    broken = {"open": 2, "peek": 1}

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        if ex.opened and broken["open"]:
            broken["open"] -= 1
            raise RuntimeError("a bug in the transport")
        async with real(url) as ws:
            if ex.opened > 1 and broken["peek"]:
                broken["peek"] -= 1

                class Faulty:
                    async def get_message(self) -> str:
                        raise KeyError("unexpected")

                yield Faulty()
                return
            yield ws

    connector = HandoverConnector(connect, lifetime=2.0, lead=1.5, overlap=0.2, retry=0.1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ex.run)
        await nursery.start(connector.run)
        async with connector.connect("ws://x") as ws:
            frames = []
            with trio.move_on_after(1.95):
                while True:
                    frames.append(str(await ws.get_message()))
        nursery.cancel_scope.cancel()
    assert connector.stats.failures == 3 and connector.stats.handovers >= 1
    assert ex.closed_by_lifetime == 0
    assert_contiguous(frames)
