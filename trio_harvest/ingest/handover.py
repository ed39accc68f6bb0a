"""The 24 h handover: replace a websocket before the exchange closes it, without a gap or a
duplicate.

Binance closes every connection after 24 h. ``HandoverConnector`` wraps a ``connect`` so that a
session looks like one endless connection to ingest: ``lead`` seconds before the current socket
reaches ``lifetime``, it opens a replacement (retrying every ``retry`` seconds while the old one
lives) and peeks at the replacement's first frame *without consuming the rest*. The switch
happens at that frame: everything before it comes from the old socket, everything from it on
from the new one. If the old socket delivered it already (it is read on meanwhile, and what it
delivered since the replacement began to open is kept, bounded), the new socket's repeats of
what followed it are skipped; else the old socket is read until it delivers it. If the frames do
not line up (faults, or an exchange that orders streams differently per connection), the switch
happens after ``overlap`` seconds and the router's id-based deduplication drops what both
sockets delivered (a hole, had the old socket lagged, is a break that backfill repairs). Then the
old socket is closed.
If the old socket dies while a replacement is ready, reading switches at once; if it dies before,
the error reaches ingest as any disconnect would. Whatever goes wrong with a replacement (even an
unexpected exception while opening it or reading its first frame) costs only that attempt: it is
counted, logged and retried while the old socket lives; it never reaches the app.

``send`` goes to the current socket (and to a replacement already open). What was sent on the
session (subscriptions changed while running) must hold for a replacement too: given the venue's
``url_after(url, messages)``, a replacement opens the URL that already carries those streams (so
its first frame, the switch point, is from the whole set); without it the messages are sent to
the replacement again, in order, before its first frame is peeked at (a stream added so may
start after the switch: a trade hole that continuity and backfill repair).

Each socket is opened, held and closed by its own task in the connector's nursery (trio-websocket
needs its context entered and exited in one task), so ingest's session task only ever calls
``get_message``. Reading enters no cancel scope (a scope per message cost ~4 µs): a read blocked
on a quiet old socket at the overlap deadline is ended by closing that socket. Between handovers
``poll`` passes on the current socket's (a message already received, no checkpoint); during one
it answers None, so every frame of a handover goes through ``get_message``. Never decodes
frames, never touches lanes.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import trio

from .connection import RECOVERABLE, ConnectFn, MessageSource
from .transport import Poll, poller

log = logging.getLogger("trio_harvest.handover")

HISTORY = 20_000  # frames of the old socket kept during a handover, to find the switch frame
REPLAY_SPACING = 0.25  # between messages resent to a replacement (Binance: 10 per second at most)

Frame = str | bytes
UrlAfter = Callable[[str, list[str]], str]  # the URL a session's sent messages lead to


@dataclass
class HandoverStats:
    handovers: int = 0
    matched: int = 0  # switched exactly at the replacement's first frame
    timed_out: int = 0  # switched after ``overlap`` (deduplication did the rest)
    old_closed_first: int = 0  # the old socket ended during the overlap
    failures: int = 0  # replacement attempts that failed (retried while the old one lived)

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(eq=False)
class _Held:
    ws: MessageSource
    opened_at: float
    close: trio.Event = field(default_factory=trio.Event)
    interrupted: bool = False  # closed by the supervisor to end a read (not by the exchange)


async def _hold(connect: ConnectFn, url: str, *,
                task_status: trio.TaskStatus[_Held] = trio.TASK_STATUS_IGNORED) -> None:
    """Open a socket, hand it over, keep it open until asked to close it. An error while
    opening reaches the caller of ``nursery.start``; one while closing is only logged."""
    started = False
    try:
        async with connect(url) as ws:
            held = _Held(ws, trio.current_time())
            task_status.started(held)
            started = True
            await held.close.wait()
    except Exception as exc:
        if not started:
            raise
        log.debug("closing a replaced socket: %s", exc)


def _nothing() -> Frame | None:
    return None


class HandoverConnector:
    def __init__(self, connect: ConnectFn, *, lifetime: float, lead: float, overlap: float,
                 retry: float = 5.0, url_after: UrlAfter | None = None) -> None:
        if not 0 < lead < lifetime:
            raise ValueError("need 0 < lead < lifetime")
        self.inner = connect
        self.lifetime = lifetime
        self.lead = lead
        self.overlap = overlap
        self.retry = retry
        self.url_after = url_after
        self.stats = HandoverStats()
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The nursery that holds the sockets; start it before the first ``connect``."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def connect(self, url: str) -> AbstractAsyncContextManager[MessageSource]:
        return self._session(url)

    @asynccontextmanager
    async def _session(self, url: str) -> AsyncIterator[MessageSource]:
        nursery = self._nursery
        if nursery is None:  # not running: a plain connection
            async with self.inner(url) as ws:
                yield ws
            return
        held: _Held = await nursery.start(_hold, self.inner, url)
        source = HandoverSource(self, url, held)
        nursery.start_soon(source.supervise)
        try:
            yield source
        finally:
            source.close()


class HandoverSource:
    """What ingest reads from: the current socket, and during a handover, the switch.

    Between handovers (``_steady``) a message costs one flag test around the socket's own
    ``get_message``, and ``poll`` is the socket's own: no cancel scope, no clock read. A handover
    never interrupts a read with a scope: frames go on arriving on a live old socket (each one
    is checked, then, against the replacement's first frame and the overlap deadline), and if
    the old socket is quiet past the deadline the supervisor closes it, which ends the blocked
    read with a recoverable error."""

    def __init__(self, connector: HandoverConnector, url: str, held: _Held) -> None:
        self._c = connector
        self._url = url
        self._cur = held
        self._read = held.ws.get_message
        self._poll: Poll = poller(held.ws) or _nothing
        self._steady = True  # no handover under way, nothing pending or to skip
        # the current socket's next message if it has one whole already and no handover is
        # under way (then exactly what ``get_message`` would return), else None: the socket's
        # own ``poll`` while steady (no extra call per frame), ``_nothing`` otherwise; rebound
        # only by ``_steady_is`` (a reader re-reads it after each of its awaits)
        self.poll: Poll = self._poll
        self._next: _Held | None = None
        self._switch_at = math.inf
        self._first: Frame | None = None  # the replacement's first frame, once peeked
        self._pending: deque[Frame] = deque()
        self._switched = trio.Event()
        self._scope = trio.CancelScope()  # supervisor and peeking
        self._peek_scope: trio.CancelScope | None = None
        self._closed = False
        # frames read from the old socket since the replacement began to open (bounded), and
        # frames of the new socket to skip because the old one delivered them already
        self._history: deque[Frame] | None = None
        self._look_back = False
        self._skip: deque[Frame] = deque()
        self._sent: list[str] = []  # every message sent on the session: replayed to replacements

    # -- MessageSource ---------------------------------------------------------------------------

    async def send(self, message: str) -> None:
        self._sent.append(message)
        nxt = self._next
        await self._cur.ws.send(message)
        if nxt is not None and self._next is nxt:
            try:
                await nxt.ws.send(message)
            except RECOVERABLE:  # the replacement failing is that attempt's business
                pass

    # -- reading ---------------------------------------------------------------------------

    async def get_message(self) -> Frame:
        if self._steady:
            try:
                frame = await self._read()
            except RECOVERABLE:
                if self._next is None:
                    raise
                self._old_ended()
                return await self._get_during_handover()
            if self._steady:
                return frame
            got = self._took(frame)  # a handover began while this read waited
            if got is not None:
                return got
        return await self._get_during_handover()

    async def _get_during_handover(self) -> Frame:
        while True:
            if self._pending:
                frame = self._pending.popleft()
                self._settle()
                return frame
            if self._next is not None:
                if self._look_back:
                    self._look_back = False
                    if self._switch_if_seen():
                        continue
                if trio.current_time() >= self._switch_at:
                    self._switch(matched=False)
                    continue
            try:
                frame = await self._read()
            except RECOVERABLE:
                if self._next is None:
                    raise
                self._old_ended()
                continue
            got = self._took(frame)
            if got is not None:
                return got

    def _took(self, frame: Frame) -> Frame | None:
        """A frame just read during a handover: the one to deliver, or None to read on."""
        skip = self._skip
        if skip:  # the new socket repeats what the old one delivered after the switch frame
            if frame == skip[0]:
                skip.popleft()
                self._settle()
                return None
            skip.clear()  # not the same sequence: the router's deduplication takes over
        if self._history is not None:
            self._history.append(frame)
            if frame == self._first:
                self._switch(matched=True)
        self._settle()
        return frame

    def _settle(self) -> None:
        self._steady_is(self._next is None and self._history is None and not self._pending
                        and not self._skip)

    def _steady_is(self, steady: bool) -> None:
        self._steady = steady
        self.poll = self._poll if steady else _nothing

    def _old_ended(self) -> None:
        """The old socket ended while a replacement is ready: closed by the exchange, or by the
        supervisor at the overlap deadline. Switch now (at the common frame if it was seen)."""
        if self._look_back:
            self._look_back = False
            if self._switch_if_seen():
                return
        if not self._cur.interrupted:
            self._c.stats.old_closed_first += 1
        self._switch(matched=False)

    # -- switching -------------------------------------------------------------------------------

    def _switch_if_seen(self) -> bool:
        """The replacement's first frame arrived: if the old socket already delivered it, switch
        now, and skip what the new socket will repeat of what followed it on the old one."""
        history, first = self._history, self._first
        if history is None or first is None:
            return False
        for i in range(len(history) - 1, -1, -1):
            if history[i] == first:
                after = list(history)[i + 1:]
                self._switch(matched=True)
                self._skip.extend(after)
                self._settle()
                return True
        return False

    def _switch(self, *, matched: bool) -> None:
        nxt = self._next
        assert nxt is not None
        old, self._cur, self._next = self._cur, nxt, None
        self._read = nxt.ws.get_message
        self._poll = poller(nxt.ws) or _nothing
        old.close.set()
        if self._peek_scope is not None:
            self._peek_scope.cancel()  # a cancelled receive loses nothing
            self._peek_scope = None
        if not matched and self._first is not None:
            self._pending.append(self._first)  # the old socket never delivered it
        self._first = None
        self._history = None
        self._switch_at = math.inf
        self._settle()
        st = self._c.stats
        st.handovers += 1
        if matched:
            st.matched += 1
        else:
            st.timed_out += 1
        log.info("handover: replaced a connection %.0fs old (%s)",
                 trio.current_time() - old.opened_at,
                 "switched at the first common frame" if matched else "after the overlap")
        self._switched.set()

    async def supervise(self) -> None:
        with self._scope:
            c = self._c
            while True:
                await trio.sleep_until(self._cur.opened_at + c.lifetime - c.lead)
                nursery = c._nursery
                assert nursery is not None
                self._history = deque(maxlen=HISTORY)
                self._steady_is(False)
                if c.url_after is not None and self._sent:  # open what the session carries now
                    self._url, self._sent = c.url_after(self._url, self._sent), []
                try:
                    held: _Held = await nursery.start(_hold, c.inner, self._url)
                except Exception as exc:  # any failure of a replacement is that attempt's only
                    self._history = None
                    self._settle()
                    c.stats.failures += 1
                    log.warning("handover: could not open the replacement (%s: %s); retrying in "
                                "%gs", type(exc).__name__, exc, c.retry,
                                exc_info=not isinstance(exc, RECOVERABLE))
                    await trio.sleep(c.retry)
                    continue
                if self._closed:
                    held.close.set()
                    return
                if not await self._replay(held):
                    continue
                self._switched = trio.Event()
                self._next = held
                self._switch_at = trio.current_time() + c.overlap
                nursery.start_soon(self._peek, held)
                with trio.move_on_at(self._switch_at):
                    await self._switched.wait()
                if self._next is held:  # the old socket was quiet all along: end its read
                    self._cur.interrupted = True
                    self._cur.close.set()
                await self._switched.wait()
                if self._cur is not held:  # the replacement failed before the switch
                    await trio.sleep(c.retry)

    async def _replay(self, held: _Held) -> bool:
        """Send a replacement what the session was sent (paced: exchanges limit the messages a
        client may send per second). False (the attempt failed, retried later) on an error."""
        try:
            for i, message in enumerate(list(self._sent)):
                if i:
                    await trio.sleep(REPLAY_SPACING)
                await held.ws.send(message)
        except Exception as exc:
            held.close.set()
            self._history = None
            self._settle()
            self._c.stats.failures += 1
            log.warning("handover: could not resend the subscriptions to the replacement (%s: %s);"
                        " retrying in %gs", type(exc).__name__, exc, self._c.retry,
                        exc_info=not isinstance(exc, RECOVERABLE))
            await trio.sleep(self._c.retry)
            return False
        return True

    async def _peek(self, held: _Held) -> None:
        with trio.CancelScope() as scope:
            self._peek_scope = scope
            try:
                frame = await held.ws.get_message()
            except Exception as exc:  # the replacement died (or failed) before its first frame
                if self._next is held:
                    log.warning("handover: the replacement closed early (%s: %s)",
                                type(exc).__name__, exc, exc_info=not isinstance(exc, RECOVERABLE))
                    self._c.stats.failures += 1
                    self._next = None
                    self._history = None
                    self._switch_at = math.inf
                    self._settle()
                    held.close.set()
                    self._switched.set()  # the supervisor tries again
                return
            if self._next is held:
                self._first = frame
                self._look_back = True  # checked at the old socket's next frame, or its end
            elif self._cur is held:  # switched while this frame was on its way to us
                self._pending.append(frame)
                self._steady_is(False)
            self._peek_scope = None

    def close(self) -> None:
        self._closed = True
        self._scope.cancel()
        if self._peek_scope is not None:
            self._peek_scope.cancel()
        self._cur.close.set()
        if self._next is not None:
            self._next.close.set()

    def __repr__(self) -> str:
        return f"<HandoverSource {self._url}>"
