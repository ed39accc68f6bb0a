"""One ingest task per websocket connection: connect, receive, hand frames to the router,
reconnect with capped exponential backoff and full jitter.

Owns a connection's life: stall detection (no frame for ``stall_timeout`` → reconnect), handshake
errors, ``ConnectionClosed`` and ``OSError`` are all survivable and logged; a failing connection
never takes down another connection or the app. The socket is injected (``connect``: a transport
of ``transport.py``, or a fake), so the same code runs against Binance, the simulator or a fake.
Per frame it only counts and hands over (no scope, no clock read); the frames a
transport has already received whole (its ``poll``) are handed over in the same scheduling
round, up to ``BURST``, so a burst costs one checkpoint, not one per frame. Its streams may change
while it runs (``change``: a listing change): the plan is updated, so a reconnect opens the new
set, and an open session is sent the venue's subscribe / unsubscribe request, paced under the
venue's client message rate (in requests of at most the venue's ``subscribe_batch`` names);
the other streams never notice. Never writes files, never checks rotation.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from .. import venues
from ..ratelimit import RateLimitedLog
from ..venues.base import Plan, Stream, Venue
from .backoff import Backoff
from .transport import (
    DEFAULT_TRANSPORT,
    ConnectFn,
    MessageSource,
    connector,
    poller,
    recoverable_errors,
)

__all__ = ["RECOVERABLE", "ConnectFn", "Connection", "MessageSource", "websocket_connector"]

log = logging.getLogger("trio_harvest.ingest")


class JournalSink(Protocol):
    """The write-ahead journal as a connection sees it (``journal/journal.py``)."""

    def append(self, conn: int, frame: str | bytes) -> int: ...
    def event(self, conn: int, opened: bool, text: str) -> None: ...


# an async handler, or a synchronous one that returns what to await only when it must wait
FrameHandler = Callable[[str | bytes], "Awaitable[None] | None"]
DisconnectHook = Callable[[Plan, str], Awaitable[None]]


def websocket_connector(max_message_bytes: int, connect_timeout: float = 10.0,
                        transport: str = DEFAULT_TRANSPORT) -> ConnectFn:
    """The real ``connect`` (see ``transport.py``): a socket per session that it closes."""
    return connector(transport, max_message_bytes, connect_timeout)


BURST = 256  # frames handled per scheduling round at most (then other tasks run)

# both transports' errors, whichever runs (a handover or a test may mix them)
RECOVERABLE: tuple[type[BaseException], ...] = recoverable_errors()


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
    last_frame_at: float | None = None  # to the stall watchdog's tick (not stamped per frame)
    last_error: str = ""


class Connection:
    """Supervises one planned connection forever (until cancelled)."""

    def __init__(
        self,
        plan: Plan,
        base_url: str,
        connect: ConnectFn,
        handle: FrameHandler,
        *,
        stall_timeout: float,
        backoff: Backoff,
        on_disconnect: DisconnectHook | None = None,
        venue: Venue | None = None,
    ) -> None:
        self.venue = venue or venues.default()
        self.plan = plan
        self.base_url = base_url
        self.connect = connect
        self.handle = handle
        self.stall_timeout = stall_timeout
        self.backoff = backoff
        self.on_disconnect = on_disconnect
        self.stats = ConnectionStats(plan.label, self.url)
        self._session: trio.CancelScope | None = None
        self._ended_by = ""
        self._handling = False  # inside handle(): possibly waiting on a full lane
        self._progress_at = 0.0
        # the same error over and over (a flapping link) is logged once a minute, with a count
        self._ratelog = RateLimitedLog(log, interval=60.0, clock=trio.current_time)
        # the app sets the journal; while ``_handling``, ``journal_seq`` is held
        self.journal: JournalSink | None = None
        self.index = 0
        self.journal_seq = -1
        # live subscription changes (a listing change): the open socket, what it was opened
        # with or told since, the pacing of requests and their ids
        self._ws: MessageSource | None = None
        self._told: set[str] = set()
        self._send_lock = trio.Lock()
        self._next_send_at = 0.0
        self._request_id = 0
        self._run_scope = trio.CancelScope()

    @property
    def url(self) -> str:
        return self.plan.url(self.base_url)

    def room(self, limit: int) -> int:
        """How many more streams this connection may carry under ``limit``."""
        return max(0, limit - len(self.plan.streams))

    def retarget(self, add: tuple[Stream, ...] = (),
                 remove: frozenset[str] = frozenset()) -> None:
        """Carry ``add`` too and drop the streams named in ``remove``: the plan changes at once
        (disconnect gaps, health and a reconnect see the new set); ``tell`` tells an open
        session."""
        self.plan = self.plan.with_streams(add, remove)

    async def tell(self) -> None:
        """Bring the open session's subscriptions to the plan without disturbing its other
        streams: one UNSUBSCRIBE and one SUBSCRIBE at most, paced under the venue's client
        message rate (more requests where the venue caps the names of one). A failed send ends
        nothing here: the session's end is noticed by its
        reader, and the reconnect opens the plan."""
        await self._tell()

    async def resubscribe(self, names: list[str]) -> bool:
        """Unsubscribe and subscribe ``names`` again on the open session (a stream that broke
        resyncs from the snapshot its venue sends on subscribing), paced under the venue's
        client message rate. False when no session is open or the send failed (the reconnect
        subscribes everything anyway)."""
        async with self._send_lock:
            ws = self._ws
            if ws is None:
                return False
            for method in ("UNSUBSCRIBE", "SUBSCRIBE"):
                await trio.sleep_until(self._next_send_at)
                if self._ws is not ws:
                    return False
                self._request_id += 1
                self._next_send_at = trio.current_time() + 2.0 / self.venue.messages_per_second
                try:
                    await ws.send(self.venue.subscription(method, names, self._request_id))
                except RECOVERABLE:
                    return False
            return True

    def stop(self) -> None:
        """End this connection for good (it has no stream left)."""
        self._run_scope.cancel()

    async def _tell(self) -> None:
        """Bring the open session's subscriptions to the plan (one request per direction)."""
        async with self._send_lock:
            ws = self._ws
            if ws is None:
                return
            want = {s.name for s in self.plan.streams}
            batch = self.venue.subscribe_batch  # names per request at most (0: any number)
            for method, names in _batches((("UNSUBSCRIBE", sorted(self._told - want)),
                                           ("SUBSCRIBE", sorted(want - self._told))), batch):
                await trio.sleep_until(self._next_send_at)
                if self._ws is not ws:
                    return  # the session ended meanwhile: the reconnect opens the plan
                self._request_id += 1
                self._next_send_at = trio.current_time() + 2.0 / self.venue.messages_per_second
                message = self.venue.subscription(method, names, self._request_id)
                try:
                    if message:  # "": another subscription of the session carries these names
                        await ws.send(message)
                except RECOVERABLE as exc:
                    log.info("%s: %s not sent (%s); the reconnect carries it", self.stats.label,
                             method, _describe(exc))
                    return
                self._told = (self._told | set(names)) if method == "SUBSCRIBE" else \
                    (self._told - set(names))
                log.info("%s: %s %d stream%s (%s)", self.stats.label, method.lower(), len(names),
                         "" if len(names) == 1 else "s", ", ".join(names[:4]) +
                         (" …" if len(names) > 4 else ""))

    @property
    def handling(self) -> bool:
        return self._handling

    def request_reconnect(self, reason: str) -> None:
        """Health may ask a stale connection to start over; not while it is only waiting for
        room in a full lane (that silence is our backpressure, not the exchange's)."""
        if self._session is None:
            return
        if self._handling:
            log.info("%s: not reconnecting (%s): ingest is waiting for the disk", self.stats.label,
                     reason)
            return
        log.warning("%s: reconnecting on request (%s)", self.stats.label, reason)
        self._ended_by = "reconnect requested"
        self._session.cancel()

    async def run(self) -> None:
        with self._run_scope:
            await self._run()

    async def _run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watchdog)
            while True:
                error = await self._session_once()
                st = self.stats
                st.connected = False
                st.failures += 1
                st.last_error = error
                if self.on_disconnect is not None:
                    try:
                        await self.on_disconnect(self.plan, error)
                    except Exception:  # recording the gap failed: the connection goes on
                        log.exception("%s: the disconnect hook failed", st.label)
                delay = self.backoff.next_delay()
                self._ratelog.log(logging.WARNING, error, "%s: %s; reconnecting in %.2fs",
                                  st.label, error, delay)
                await trio.sleep(delay)
                st.reconnects += 1

    async def _watchdog(self) -> None:
        """Stall detection without a deadline or a clock read per frame: every tick it looks at
        the frame count; a session whose count has not moved for ``stall_timeout`` (or with no
        handshake within ``stall_timeout + 10`` s) is cancelled; time spent waiting on a full
        lane does not count."""
        stall = self.stall_timeout
        st = self.stats
        seen = st.frames
        while True:
            await trio.sleep(min(1.0, stall / 10))
            session = self._session
            if session is None:
                continue
            now = trio.current_time()
            if self._handling or st.frames != seen:
                seen = st.frames
                self._progress_at = now
                if not self._handling:
                    st.last_frame_at = now
                continue
            allowance = stall if st.connected else stall + 10.0
            if now - self._progress_at > allowance:
                self._ended_by = f"stalled: no frame for {stall:g}s"
                session.cancel()

    async def _session_once(self) -> str:
        """One connection attempt and its receive loop. Returns why it ended."""
        st = self.stats
        self._ended_by = "session cancelled"
        try:
            with trio.CancelScope() as session:
                self._session = session
                self._progress_at = trio.current_time()
                opened_with = {spec.name for spec in self.plan.streams}
                async with self.connect(self.url) as ws:
                    st.connects += 1
                    st.connected = True
                    st.connected_at = self._progress_at = trio.current_time()
                    if st.connects == 1:
                        log.info("%s: connected", st.label)
                    else:
                        log.info("%s: reconnected", st.label)
                    if self.journal is not None:
                        self.journal.event(self.index, True, self.url)
                    self._ws, self._told = ws, opened_with
                    if opened_with != {spec.name for spec in self.plan.streams}:
                        await self._tell()  # the plan changed while this session opened
                    keepalive = self.venue.keepalive
                    if keepalive.ping_text is None:  # the server pings; the transport answers
                        await self._receive(ws)
                    else:  # the venue wants the client's pings: a task of the session's own
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(self._keepalive, ws, keepalive.ping_text,
                                               keepalive.interval)
                            await self._receive(ws)
            return self._ended_by
        except RECOVERABLE as exc:
            return _describe(exc)
        except BaseExceptionGroup as group:  # a library's nursery: recoverable if all leaves are
            fatal = not_ours(group)
            if fatal is not None:  # Cancelled or KeyboardInterrupt inside: not ours to swallow
                raise fatal from None  # (without the errors beside it, which the stop ends)
            leaves = group.exceptions
            if not all(isinstance(e, RECOVERABLE) for e in leaves):
                log.error("%s: unexpected errors in the receive loop", st.label, exc_info=group)
            return _describe(leaves[0])
        except Exception as exc:  # a bug must not end the harvest: log it whole, start over
            log.exception("%s: unexpected error in the receive loop", st.label)
            return f"unexpected {type(exc).__name__}: {exc}"
        finally:
            self._session = None
            self._ws = None
            self._handling = False
            if self.journal is not None and st.connected:
                self.journal.event(self.index, False, self._ended_by)

    async def _receive(self, ws: MessageSource) -> None:
        """An open session's receive loop; it ends only by an error or a cancel."""
        st = self.stats
        get = ws.get_message
        handle = self.handle
        journal = self.journal
        index = self.index
        frame = await get()
        self.backoff.reset()
        while True:  # one burst per scheduling round
            # ``_handling`` for the whole burst: other tasks only look at it while this one
            # waits, and between the frames of a burst it never does but for a full lane
            # (``waiting``), which is what the flag stands for
            self._handling = True
            budget = BURST
            poll = poller(ws)  # read again after each await: a source may rebind it meanwhile
            while True:  # per frame: no clock read, no scope, no allocation of ours
                if journal is not None:  # write-ahead: journal first, then route
                    self.journal_seq = journal.append(index, frame)
                st.frames += 1
                waiting = handle(frame)  # a coroutine, or None when nothing waits
                if waiting is not None:
                    await waiting
                    poll = poller(ws)
                budget -= 1
                if not budget or poll is None:
                    break
                polled = poll()  # received whole already: no checkpoint
                if polled is None:
                    break
                frame = polled
            self._handling = False
            frame = await get()

    async def _keepalive(self, ws: MessageSource, text: str, interval: float) -> None:
        """The venue's app-level ping, every ``interval`` seconds, paced with the session's
        other client messages (a failed send ends the session: the reader notices)."""
        while True:
            await trio.sleep(interval)
            async with self._send_lock:
                await trio.sleep_until(self._next_send_at)
                self._next_send_at = trio.current_time() + 1.0 / self.venue.messages_per_second
                await ws.send(text)


def _batches(changes: tuple[tuple[str, list[str]], ...],
             batch: int) -> list[tuple[str, list[str]]]:
    """Each non-empty ``(method, names)`` as requests of at most ``batch`` names (0: one)."""
    out: list[tuple[str, list[str]]] = []
    for method, names in changes:
        n = batch if batch > 0 else max(1, len(names))
        out += [(method, names[i : i + n]) for i in range(0, len(names), n)]
    return out


def _describe(exc: BaseException) -> str:
    """``Type: message``, followed by the underlying cause when the library wraps it (trio-
    websocket's HandshakeError hides a DNS failure or a refused connection in ``__cause__``)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and not isinstance(exc, OSError):
        text += f" ({type(cause).__name__}: {cause})"
    return text


def make_connections(
    plans: Sequence[Plan],
    base_url: str,
    connect: ConnectFn,
    handle: FrameHandler,
    *,
    stall_timeout: float,
    backoff_initial: float,
    backoff_max: float,
    seed: int | None = None,
    on_disconnect: DisconnectHook | None = None,
    venue: Venue | None = None,
) -> list[Connection]:
    rng = random.Random(seed)
    return [
        Connection(
            plan, base_url, connect, handle,
            stall_timeout=stall_timeout,
            backoff=Backoff(backoff_initial, backoff_max, random.Random(rng.random())),
            on_disconnect=on_disconnect, venue=venue,
        )
        for plan in plans
    ]


async def run_ingest(connections: list[Connection]) -> None:
    """Run every connection in its own task; each one survives its own failures."""
    async with trio.open_nursery() as nursery:
        for conn in connections:
            nursery.start_soon(conn.run)


def _leaf_not_ours(e: BaseException) -> bool:
    return not isinstance(e, (Exception, BaseExceptionGroup))


def not_ours(group: BaseExceptionGroup[Any]) -> BaseExceptionGroup[Any] | None:
    """The leaves of ``group`` that are not errors (a ``Cancelled``, a ``KeyboardInterrupt``),
    as a group, or None. Decided per leaf: a session's error and the stop's ``Cancelled`` can
    arrive together (the server closes as the harvest stops), and the cancel scope that owns
    the ``Cancelled`` must not be handed the error with it, which would end the harvest."""
    return group.subgroup(_leaf_not_ours)
