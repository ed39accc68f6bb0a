"""One ingest task per websocket connection: connect, receive, hand frames to the router,
reconnect with capped exponential backoff and full jitter.

Owns a connection's life: stall detection (no frame for ``stall_timeout`` → reconnect), handshake
errors, ``ConnectionClosed`` and ``OSError`` are all survivable and logged; a failing connection
never takes down another connection or the app. The socket is injected (``connect``), so the same
code runs against Binance, the simulator or a fake. Never writes files, never checks rotation.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import trio
import trio_websocket

from .backoff import Backoff
from .binance.streams import ConnectionPlan
from .ratelimit import RateLimitedLog

log = logging.getLogger("trio_harvest.ingest")


class MessageSource(Protocol):
    async def get_message(self) -> str | bytes: ...


ConnectFn = Callable[[str], AbstractAsyncContextManager[MessageSource]]
FrameHandler = Callable[[str | bytes], Awaitable[None]]
DisconnectHook = Callable[[ConnectionPlan, str], Awaitable[None]]


def websocket_connector(
    max_message_bytes: int, connect_timeout: float = 10.0
) -> ConnectFn:
    """The real ``connect``: trio-websocket with a large receive buffer for throughput."""

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[MessageSource]:
        opened: trio_websocket.WebSocketConnection | None = None
        try:
            async with trio_websocket.open_websocket_url(
                url,
                max_message_size=max_message_bytes,
                message_queue_size=64,
                receive_buffer_size=65536,
                connect_timeout=connect_timeout,
                disconnect_timeout=2.0,
            ) as ws:
                opened = ws
                yield ws
        finally:
            # trio-websocket 0.12 never closes a client's socket when the *server* closed the
            # connection (its close reason is set, so aclose() returns early): close it here.
            stream = getattr(opened, "_stream", None)
            if isinstance(stream, trio.abc.AsyncResource):
                await stream.aclose()

    return connect


RECOVERABLE: tuple[type[BaseException], ...] = (
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    trio_websocket.ConnectionRejected,
    trio_websocket.ConnectionTimeout,
    trio_websocket.DisconnectionTimeout,
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)


@dataclass(slots=True)
class ConnectionStats:
    label: str
    url: str
    connects: int = 0
    reconnects: int = 0
    failures: int = 0
    frames: int = 0
    connected: bool = False
    connected_at: float | None = None  # trio time
    last_frame_at: float | None = None
    last_error: str = ""


class Connection:
    """Supervises one planned connection forever (until cancelled)."""

    def __init__(
        self,
        plan: ConnectionPlan,
        base_url: str,
        connect: ConnectFn,
        handle: FrameHandler,
        *,
        stall_timeout: float,
        backoff: Backoff,
        on_disconnect: DisconnectHook | None = None,
    ) -> None:
        self.plan = plan
        self.url = plan.url(base_url)
        self.connect = connect
        self.handle = handle
        self.stall_timeout = stall_timeout
        self.backoff = backoff
        self.on_disconnect = on_disconnect
        self.stats = ConnectionStats(plan.label, self.url)
        self._session: trio.CancelScope | None = None
        self._reconnect_asked = False
        # the same error over and over (a flapping link) is logged once a minute, with a count
        self._ratelog = RateLimitedLog(log, interval=60.0, clock=trio.current_time)

    def request_reconnect(self, reason: str) -> None:
        """Health may ask a stale connection to start over."""
        if self._session is not None:
            log.warning("%s: reconnecting on request (%s)", self.stats.label, reason)
            self._reconnect_asked = True
            self._session.cancel()

    async def run(self) -> None:
        while True:
            error = await self._session_once()
            st = self.stats
            st.connected = False
            st.failures += 1
            st.last_error = error
            if self.on_disconnect is not None:
                await self.on_disconnect(self.plan, error)
            delay = self.backoff.next_delay()
            self._ratelog.log(logging.WARNING, error, "%s: %s; reconnecting in %.2fs",
                              st.label, error, delay)
            await trio.sleep(delay)
            st.reconnects += 1

    async def _session_once(self) -> str:
        """One connection attempt and its receive loop. Returns why it ended."""
        st = self.stats
        stall = self.stall_timeout
        try:
            with trio.CancelScope() as session:
                self._session = session
                session.deadline = trio.current_time() + stall + 10.0  # handshake allowance
                async with self.connect(self.url) as ws:
                    st.connects += 1
                    st.connected = True
                    st.connected_at = trio.current_time()
                    if st.connects == 1:
                        log.info("%s: connected", st.label)
                    else:
                        log.info("%s: reconnected", st.label)
                    first = True
                    get = ws.get_message
                    handle = self.handle
                    session.deadline = trio.current_time() + stall
                    while True:
                        frame = await get()
                        now = trio.current_time()
                        session.deadline = now + stall
                        st.last_frame_at = now
                        st.frames += 1
                        if first:
                            first = False
                            self.backoff.reset()
                        await handle(frame)
            if self._reconnect_asked:
                self._reconnect_asked = False
                return "reconnect requested"
            return f"stalled: no frame for {stall:g}s"
        except RECOVERABLE as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Exception as exc:  # a bug must not end the harvest: log it whole, start over
            log.exception("%s: unexpected error in the receive loop", st.label)
            return f"unexpected {type(exc).__name__}: {exc}"
        finally:
            self._session = None


def make_connections(
    plans: list[ConnectionPlan],
    base_url: str,
    connect: ConnectFn,
    handle: FrameHandler,
    *,
    stall_timeout: float,
    backoff_initial: float,
    backoff_max: float,
    seed: int | None = None,
    on_disconnect: DisconnectHook | None = None,
) -> list[Connection]:
    rng = random.Random(seed)
    return [
        Connection(
            plan, base_url, connect, handle,
            stall_timeout=stall_timeout,
            backoff=Backoff(backoff_initial, backoff_max, random.Random(rng.random())),
            on_disconnect=on_disconnect,
        )
        for plan in plans
    ]


async def run_ingest(connections: list[Connection]) -> None:
    """Run every connection in its own task; each one survives its own failures."""
    async with trio.open_nursery() as nursery:
        for conn in connections:
            nursery.start_soon(conn.run)
