"""Diff-depth books for every symbol (``--book diff``): events in, orderbook, book_updates and
gaps rows out, and the REST snapshot fetcher that (re)synchronises them.

Owns, per symbol, the venue's ``LocalBook`` (its book rule) and the traffic around it:

- Hot path (``on_depth``, called by the router for each diff event of a book stream; the
  usual event is done synchronously, a coroutine only when something must wait): apply a
  snapshot that has arrived, then the event; every applied event becomes an ``orderbook`` row
  (``source="depth"``, top N) in the symbol's lane and an ``on_book`` call to its signal hook;
  with ``updates_of`` (the symbol's ``book_updates`` lane) it also writes the event's level
  changes there, and every snapshot the book starts from as its levels (``is_snapshot``), so
  the whole book can be rebuilt from the dataset (``dataset_book.py``). Both kinds wait for
  room (backpressure), the ``book_updates`` rows of an event before its ``orderbook`` row;
  rows that waited hold the journal seq of the event's own frame, and a wait a stop cancels
  keeps the rest of the event's rows (spilled if need be), never half an event.
  A venue that sends full snapshots on the stream has its book answer ``SNAPSHOT`` for one: its
  levels are written as a snapshot and its top as a row, no REST request. A break of the update
  chain writes a ``gaps`` row (reason "book sequence break", followed by the venue's rule in
  parentheses where its break names one) and calls the hook's
  ``on_gap``; while a symbol resyncs it buffers (bounded) and writes no orderbook rows. Other
  symbols are never affected. Only the router's task applies events and snapshots, so a
  symbol's rows stay in update-id order.
- The fetcher task (``run``): snapshot requests (or, for a venue whose books resync on the
  stream, ``resync_by_resubscribe``, requests to resubscribe the book's stream, through the
  app's ``resubscribe`` hook) go through a per-symbol cooldown (doubling on
  consecutive failures or stale snapshots, reset when the book goes live), a ``TokenBucket``
  pacer (default 1000 weight/min, burst 100; limit=1000 costs 20), the exchange-wide
  ``restclient.WeightBudget`` shared with backfill (the app passes ``Repair.budget``), and a
  small concurrency limit, so 200 symbols breaking at once are resynced in arrival order over
  minutes instead of tripping the exchange's rate limit. A fetched snapshot is handed to the hot
  path, which applies it before the symbol's next event. An HTTP 429/418 pauses both for its
  ``Retry-After``.

Restart replay (with a ``journal``): a fetched snapshot is journaled (``snapshot``) when it is
handed to the hot path, so a replay hands it over at the same point of the frame sequence
(``offer_snapshot``) and the same pure book code writes the same rows. What the journal must
keep to rebuild a book, and the states books journal for it, are ``bookbases.py``'s;
``restore`` takes a state back into a book replay could not rebuild. During replay, ``admit``
says which rows are already written (they are not written again). The REST request and its
answers are ``bookfetch.py``'s.

The venue's book rule (``Venue.local_book``, ``parse_snapshot``) and depth request are asked of
its adapter. The REST call is injected (``fetch_depth(symbol, limit) -> dict``); without one,
``run`` opens ``restclient.http_fetch`` against ``rest_url`` (the venue's ``depth_request``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from .. import venues
from ..gaps import BOOK_SEQUENCE_BREAK, gap_row
from ..ingest.restclient import http_fetch
from ..ingest.tokenbucket import TokenBucket
from ..kinds import BOOK_UPDATES, GAPS, ORDERBOOK, Row
from ..pipeline.done import DONE as DONE  # what ``on_depth`` returns when done already
from ..pipeline.lanes import Sink
from ..ratelimit import RateLimitedLog
from ..venues.base import (
    APPLIED,
    BREAK,
    SNAPSHOT,
    STALE_SNAPSHOT,
    BookLevels,
    BookSnapshot,
    LocalBook,
    Venue,
)
from ..venues.rows import book_row_of_columns, level_rows, level_update_columns
from .bookbases import BookBases
from .bookfetch import FetchDepth, RateLimited, SharedBudget
from .bookfetch import depth_fetcher as depth_fetcher

log = logging.getLogger("trio_harvest.booksync")

SOURCE = "depth"  # orderbook.source of a diff-built book
BUFFER_LIMIT = 200  # events kept per symbol while waiting for a snapshot (20 s of 100 ms)


Resubscribe = Callable[[str], Awaitable[bool]]  # a stream name -> sent (False: not carried now)
PutGap = Callable[[Row], Awaitable[None]]
UpdatesOf = Callable[[str], Sink]  # a symbol's ``book_updates`` lane
Admit = Callable[[str, Row], bool]  # (kind, row): write it (False: written already)


class BookHook(Protocol):
    def on_book(self, row: Row) -> None: ...


@dataclass(slots=True)
class SyncStats:
    requests: int = 0  # snapshot requests sent
    failures: int = 0  # failed or timed-out requests (and unusable bodies)
    rate_limited: int = 0
    gaps: int = 0  # gaps rows written
    rows: int = 0  # orderbook rows written
    update_rows: int = 0  # book_updates rows written (level changes and snapshot levels)
    max_queue: int = 0  # most symbols waiting for a request at once
    resubscribes: int = 0  # book streams subscribed again to resync (venues that resync so)


class DiffBooks:
    def __init__(
        self,
        symbols: Iterable[str],
        *,
        levels: int,
        put_gap: PutGap,
        depth_speed: str = "100ms",
        fetch_depth: FetchDepth | None = None,
        rest_url: str | None = None,
        pacer: TokenBucket | None = None,
        shared_budget: SharedBudget | None = None,
        limit: int = 1000,
        cooldown: float = 5.0,
        max_cooldown: float = 120.0,
        concurrency: int = 4,
        fetch_timeout: float = 10.0,
        buffer_limit: int = BUFFER_LIMIT,
        max_levels: int | None = None,
        venue: Venue | None = None,
        updates_of: UpdatesOf | None = None,
    ) -> None:
        self.venue = venue = venue or venues.default()
        self.updates_of = updates_of  # None: no ``book_updates`` rows
        # a venue whose books resync on the stream: the app's way to resubscribe one stream
        self.resubscribe: Resubscribe | None = None
        self.levels = levels
        self.put_gap = put_gap
        self.fetch_depth = fetch_depth
        self.rest_url = rest_url or venue.default_rest_url
        self.pacer = pacer if pacer is not None else TokenBucket()
        self.shared_budget = shared_budget  # set by the app when other REST callers exist
        self.limit = limit
        self.weight = venue.depth_request("", limit).weight
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.fetch_timeout = fetch_timeout
        max_levels = venue.max_book_levels if max_levels is None else max_levels
        self._book_args = (max(max_levels, levels), buffer_limit, depth_speed)
        self.books: dict[str, LocalBook] = {}
        self.streams: dict[str, str] = {}
        for s in symbols:
            self.add_symbol(s)
        self.stats = SyncStats()
        self._slots = trio.Semaphore(concurrency)  # requests in flight
        self._ready: dict[str, BookSnapshot] = {}  # fetched, to be applied by the hot path
        self._pending: set[str] = set()  # queued, in flight or ready
        self._queue: list[tuple[float, int, str]] = []  # (due at, seq, symbol)
        self._seq = itertools.count()
        self._last_request: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._wake = trio.Event()
        self._ratelog = RateLimitedLog(log)
        self.bases = BookBases()  # restart replay: the journal and what it must keep
        self._since = self.bases.since  # the hot path looks at it (syncs in progress)
        self._admit: Admit | None = None

    @property
    def admit(self) -> Admit | None:
        return self._admit

    @admit.setter
    def admit(self, fn: Admit | None) -> None:
        """Restart replay: each row is written only if ``fn(kind, row)`` (None: every row)."""
        self._admit = fn

    def add_symbol(self, symbol: str) -> None:
        """A symbol's local book (at start, or when a listing change adds it while running)."""
        max_levels, buffer_limit, depth_speed = self._book_args
        self.books.setdefault(symbol, self.venue.local_book(symbol, max_levels, buffer_limit))
        self.streams[symbol] = self.venue.depth_stream(symbol, self.levels, depth_speed, "diff")

    def remove_symbol(self, symbol: str) -> None:
        """A symbol leaves: its book goes (a snapshot fetched for it later is dropped)."""
        self.books.pop(symbol, None)
        self.streams.pop(symbol, None)
        self._ready.pop(symbol, None)
        self.bases.forget(symbol)

    # -- hot path (the router's task) -----------------------------------------------------------

    def on_depth(self, ev: BookLevels, recv_ms: int, lane: Sink,
                 hook: BookHook | None) -> Awaitable[None]:
        """Apply one diff event of ``ev.symbol`` (and a snapshot that has arrived before it);
        returns what to await. The usual event (no snapshot to apply first; applied with room
        in the lanes, buffered or dropped) is done before this returns and ``DONE`` is returned:
        awaiting it costs nothing (no coroutine, no checkpoint); else the coroutine that
        finishes the job. An applied event's ``book_updates`` rows go in as columns, in one
        put (``put_columns_nowait``); a lane that cannot take them so (full, at the end of a
        chunk, a shard's window) gets them one by one in that coroutine, as replay does."""
        if ev.symbol in self._ready:  # a snapshot first (and the events it replays)
            return self._with_snapshot(ev, recv_ms, lane, hook, self.bases.cursor[0])
        book = self.books[ev.symbol]
        outcome = book.on_event(ev, recv_ms)
        if outcome == APPLIED:
            if self._admit is not None:  # replaying: each row is looked at
                return self._step_rest(book, ev, recv_ms, lane, hook, self.bases.cursor[0])
            if self.updates_of is not None:  # the level changes first, all in one put
                n = len(ev.bids) + len(ev.asks)
                if not self.updates_of(book.symbol).put_columns_nowait(level_update_columns(
                        book.symbol, ev.trade_ms or ev.event_ms, ev.event_ms, recv_ms,
                        ev.first_update_id, ev.update_id, ev.prev_update_id, ev.bids, ev.asks,
                        False), n):
                    return self._step_rest(book, ev, recv_ms, lane, hook,  # one by one
                                           self.bases.cursor[0])
                self.stats.update_rows += n
            row = self._row(book, ev, recv_ms)
            if not lane.put_nowait(row):
                return self._finish(book, row, lane, hook,  # the lane is full: wait for room
                                    self.bases.cursor[0])
            self._applied(row, hook)
        elif outcome == BREAK:
            return self._finish(book, None, lane, hook, self.bases.cursor[0])
        elif outcome == STALE_SNAPSHOT:
            self._stale(book, ev)
        elif outcome == SNAPSHOT:
            return self._step_rest(book, ev, recv_ms, lane, hook, self.bases.cursor[0], True)
        self._settled(book)
        return DONE

    async def _with_snapshot(self, ev: BookLevels, recv_ms: int, lane: Sink,
                             hook: BookHook | None, seq: int) -> None:
        symbol = ev.symbol
        book = self.books[symbol]
        snap = self._ready.pop(symbol, None)
        self.bases.busy.add(symbol)  # its state is no base until every event here is applied
        steps: list[tuple[Any, int]] = [(ev, recv_ms)]
        done = 0
        try:
            if snap is not None:
                self._pending.discard(symbol)
                replay = book.apply_snapshot(snap)
                if replay:
                    steps[:0] = replay
                if replay is not None and self.updates_of is not None:
                    ts = ev.trade_ms or ev.event_ms  # the stream's time the book starts over at
                    uid = snap.last_update_id
                    await self._put_rows(self._updates(symbol, level_rows(
                        symbol, ts, ts, recv_ms, uid, uid, -1, snap.bids, snap.asks, True)), seq)
            for old, old_recv in steps:
                done += 1
                await self._step(book, old, old_recv, lane, hook, seq)
        except trio.Cancelled:  # a stop cancelled a wait: the events not stepped yet are kept
            self._keep_events(book, steps[done:], lane, seq)
            raise
        finally:
            self.bases.busy.discard(symbol)
        self._settled(book)

    async def _finish(self, book: LocalBook, row: Row | None, lane: Sink,
                      hook: BookHook | None, seq: int) -> None:
        """The rest of ``on_depth`` when it must wait: the applied event's ``row`` into a
        full lane, or (None) the gap of a sequence break."""
        if row is not None:
            await self._put_rows([(lane, row)], seq)
            self._applied(row, hook)
        else:
            await self._gap(book, hook)
        self._settled(book)

    def _settled(self, book: LocalBook) -> None:
        """After an event: a book that needs a snapshot asks for one; one in sync again starts
        its cooldown over."""
        if book.needs_snapshot:
            if book.symbol not in self._pending:
                # a sync begins: replay rebuilds the book from this event on
                self.bases.syncing(book.symbol, trio.current_time())
                self._request(book.symbol)
        elif (self._failures or self._since) and book.live:
            self._failures.pop(book.symbol, None)  # in sync again: the cooldown starts over
            self.bases.went_live(book.symbol)

    async def _step(self, book: LocalBook, ev: BookLevels, recv_ms: int, lane: Sink,
                    hook: BookHook | None, seq: int) -> None:
        outcome = book.on_event(ev, recv_ms)
        if outcome == APPLIED or outcome == SNAPSHOT:
            await self._applied_event(book, ev, recv_ms, lane, hook, seq, outcome == SNAPSHOT)
        elif outcome == BREAK:
            await self._gap(book, hook)
        elif outcome == STALE_SNAPSHOT:
            self._stale(book, ev)

    async def _step_rest(self, book: LocalBook, ev: BookLevels, recv_ms: int, lane: Sink,
                         hook: BookHook | None, seq: int, snapshot: bool = False) -> None:
        """An applied event when ``book_updates`` rows are written too (or a snapshot the
        stream sent: the book restarted from it)."""
        await self._applied_event(book, ev, recv_ms, lane, hook, seq, snapshot)
        self._settled(book)

    async def _applied_event(self, book: LocalBook, ev: BookLevels, recv_ms: int, lane: Sink,
                             hook: BookHook | None, seq: int, snapshot: bool = False) -> None:
        """An applied event's rows: its level changes (``book_updates``; a snapshot's levels
        with ``is_snapshot``), then the book's top (``orderbook``); each waits for room in a
        full lane."""
        puts, row = self._event_rows(book, ev, recv_ms, lane, snapshot)
        await self._put_rows(puts, seq)
        if row is not None:
            self._applied(row, hook)

    def _event_rows(self, book: LocalBook, ev: BookLevels, recv_ms: int, lane: Sink,
                    snapshot: bool) -> tuple[list[tuple[Sink, Row]], Row | None]:
        """An applied event's rows with their lanes, and its ``orderbook`` row (None: written
        before the restart). Made before any wait: only this task changes the book."""
        puts = [] if self.updates_of is None else self._updates(
            book.symbol, self._update_rows(book, ev, recv_ms, snapshot))
        row = self._row(book, ev, recv_ms)
        if self._admit is not None and not self._admit(ORDERBOOK, row):
            return puts, None
        puts.append((lane, row))
        return puts, row

    def _keep_events(self, book: LocalBook, steps: list[tuple[Any, int]], lane: Sink,
                     seq: int) -> None:
        """The events a snapshot replays that a stop cut short: applied all the same, their
        rows kept without waiting (``keep``); a break among them leaves its gap to the
        restart, which marks the stream's downtime anyway."""
        for ev, recv_ms in steps:
            outcome = book.on_event(ev, recv_ms)
            if outcome == APPLIED or outcome == SNAPSHOT:
                self._keep_rows(self._event_rows(book, ev, recv_ms, lane, outcome == SNAPSHOT)[0],
                                seq)

    def _updates(self, symbol: str, rows: list[Row]) -> list[tuple[Sink, Row]]:
        """``book_updates`` rows with their lane (during replay, those not written yet)."""
        assert self.updates_of is not None
        if self._admit is not None:
            admit = self._admit
            rows = [r for r in rows if admit(BOOK_UPDATES, r)]
        self.stats.update_rows += len(rows)
        sink = self.updates_of(symbol)
        return [(sink, row) for row in rows]

    @staticmethod
    async def _put_rows(puts: list[tuple[Sink, Row]], seq: int) -> None:
        """An event's rows, in order, each waiting for room in a full lane; ``seq`` is the
        journal seq of the frame they come from (-1: no journal), which each lane holds: the
        journal's cursor moves on while this waits (other connections journal their frames),
        so the seq current when a row goes in may be a later frame's. Cancelled while waiting
        (a stop), the rows not in yet go in all the same (``keep``: spilled when there is no
        room, to the dead letter), so no event is ever left half written."""
        for i, (sink, row) in enumerate(puts):
            if not sink.put_nowait(row):
                try:
                    await sink.put(row)  # cancelled: ``put`` keeps this row itself
                except BaseException:
                    if seq >= 0:
                        sink.hold(seq)
                    DiffBooks._keep_rows(puts[i + 1:], seq)
                    raise
            if seq >= 0 and sink.pending:  # (a lane that holds no row must hold no seq)
                sink.hold(seq)

    @staticmethod
    def _keep_rows(puts: list[tuple[Sink, Row]], seq: int) -> None:
        """Rows that can no longer wait for room: each kept by its lane (``keep``: spilled when
        there is none), which holds ``seq`` (-1: no journal) for it."""
        for sink, row in puts:
            sink.keep(row)
            if seq >= 0:
                sink.hold(seq)

    @staticmethod
    def _update_rows(book: LocalBook, ev: BookLevels, recv_ms: int, snapshot: bool) -> list[Row]:
        """The ``book_updates`` rows of an applied event (or of a snapshot the stream sent)."""
        return level_rows(book.symbol, ev.trade_ms or ev.event_ms, ev.event_ms, recv_ms,
                          ev.first_update_id, ev.update_id,
                          -1 if snapshot else ev.prev_update_id, ev.bids, ev.asks, snapshot)

    def _row(self, book: LocalBook, ev: BookLevels, recv_ms: int) -> Row:
        """The ``orderbook`` row of the book's top after an applied event."""
        return book_row_of_columns(book.symbol, ev.trade_ms or ev.event_ms, ev.event_ms, recv_ms,
                                   SOURCE, ev.update_id, ev.first_update_id, ev.prev_update_id,
                                   *book.top_columns(self.levels), self.levels)

    def _applied(self, row: Row, hook: BookHook | None) -> None:
        self.stats.rows += 1
        if hook is not None:
            hook.on_book(row)

    def _stale(self, book: LocalBook, ev: BookLevels) -> None:
        self._failures[book.symbol] = self._failures.get(book.symbol, 0) + 1
        self._ratelog.log(logging.INFO, f"stale:{book.symbol}",
                          "%s: the snapshot is older than the depth stream can bridge "
                          "(first id %d, previous id %d); fetching another", book.symbol,
                          ev.first_update_id, ev.prev_update_id)

    async def _gap(self, book: LocalBook, hook: BookHook | None) -> None:
        brk = book.last_break
        assert brk is not None
        rule = getattr(brk, "rule", "")  # the venue's rule that broke, where it names one
        reason = f"{BOOK_SEQUENCE_BREAK} ({rule})" if rule else BOOK_SEQUENCE_BREAK
        row = gap_row(book.symbol, self.streams[book.symbol], brk.start_ms, brk.end_ms,
                      reason, brk.detail)
        self.stats.gaps += 1
        self._ratelog.log(logging.WARNING, f"break:{book.symbol}", "%s: book sequence break: %s",
                          book.symbol, brk.detail)
        if self._admit is None or self._admit(GAPS, row):
            await self.put_gap(row)
        on_gap = getattr(hook, "on_gap", None)
        if on_gap is not None:
            on_gap(brk.end_ms, BOOK_SEQUENCE_BREAK)

    # -- scheduling ----------------------------------------------------------------------------

    def _request(self, symbol: str) -> None:
        """Queue a snapshot request for ``symbol``, due after its cooldown."""
        now = trio.current_time()
        due = now
        last = self._last_request.get(symbol)
        if last is not None:
            fails = self._failures.get(symbol, 0)
            due = max(now, last + min(self.cooldown * 2.0**fails, self.max_cooldown))
        self._pending.add(symbol)
        heapq.heappush(self._queue, (due, next(self._seq), symbol))
        self.stats.max_queue = max(self.stats.max_queue, len(self._queue))
        self._wake.set()

    def _retry(self, symbol: str) -> None:
        self._failures[symbol] = self._failures.get(symbol, 0) + 1
        self._pending.discard(symbol)
        book = self.books.get(symbol)
        if book is not None and book.needs_snapshot:
            self._request(symbol)

    async def _next_due(self) -> str:
        while True:
            if self._queue and self._queue[0][0] <= trio.current_time():
                return heapq.heappop(self._queue)[2]
            deadline = self._queue[0][0] if self._queue else float("inf")
            with trio.move_on_at(deadline):
                await self._wake.wait()
            self._wake = trio.Event()

    # -- the fetcher task ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve snapshot requests until cancelled."""
        if self.fetch_depth is None:
            async with http_fetch(self.rest_url, request_seconds=self.fetch_timeout) as fetch:
                self.fetch_depth = depth_fetcher(fetch, self.shared_budget, self.venue)
                await self._serve(task_status)
        else:
            await self._serve(task_status)

    async def _serve(self, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                symbol = await self._next_due()
                await self._slots.acquire()
                await self.pacer.acquire(self.weight)
                if self.shared_budget is not None:
                    await self.shared_budget.acquire(self.weight)
                self._last_request[symbol] = trio.current_time()
                self.stats.requests += 1
                if self.venue.resync_by_resubscribe:
                    nursery.start_soon(self._resubscribe, symbol)
                else:
                    nursery.start_soon(self._fetch, symbol)

    async def _fetch(self, symbol: str) -> None:
        fetch = self.fetch_depth
        assert fetch is not None
        try:
            with trio.fail_after(self.fetch_timeout):
                body = await fetch(symbol, self.limit)
            snap = self.venue.parse_snapshot(body, symbol)
        except RateLimited as exc:
            self.stats.rate_limited += 1
            self.pacer.pause_until(trio.current_time() + exc.retry_after)
            if self.shared_budget is not None:
                self.shared_budget.pause(exc.retry_after)
            log.warning("snapshot of %s: %s; pausing REST requests", symbol, exc)
            self._retry(symbol)
            return
        except Exception as exc:  # timeout, network, HTTP error, bad body: retry later
            self.stats.failures += 1
            self._ratelog.log(logging.WARNING, f"fetch:{symbol}", "snapshot of %s failed: %s: %s",
                              symbol, exc.__class__.__name__, exc)
            self._retry(symbol)
            return
        finally:
            self._slots.release()
        book = self.books.get(symbol)
        if book is not None and book.needs_snapshot:
            self._ready[symbol] = snap
            if self.bases.journal is not None:  # where replay hands it over too
                self.bases.journal.snapshot(symbol, body)
        else:
            self._pending.discard(symbol)

    async def _resubscribe(self, symbol: str) -> None:
        """Ask for the book's stream again (its snapshot comes on the stream); not sent (no
        connection carries it now, a send failed): retried after the cooldown."""
        book = self.books.get(symbol)
        if book is None or not book.needs_snapshot:  # whole again meanwhile (or gone)
            self._slots.release()
            self._pending.discard(symbol)
            return
        try:
            sent = self.resubscribe is not None and await self.resubscribe(self.streams[symbol])
        except Exception as exc:  # a failed send: the connection's reader notices
            self._ratelog.log(logging.WARNING, f"resub:{symbol}", "resubscribing %s failed: %s",
                              symbol, exc)
            sent = False
        finally:
            self._slots.release()
        self.stats.resubscribes += sent
        if not sent:
            self._retry(symbol)
        else:
            self._pending.discard(symbol)  # the snapshot comes on the stream (or, else, the
            # next event asks again after the cooldown)

    # -- restart replay ------------------------------------------------------------------------

    def offer_snapshot(self, symbol: str, body: Mapping[str, Any]) -> bool:
        """Replay: a journaled snapshot, handed to the hot path as the fetcher did live."""
        if symbol not in self.books:
            return False
        try:
            snap = self.venue.parse_snapshot(body, symbol)
        except Exception as exc:
            log.warning("journal: a snapshot of %s that cannot be read (%s); skipped", symbol, exc)
            return False
        self._ready[symbol] = snap
        self._pending.add(symbol)
        return True

    async def restore(self, symbol: str, state: Mapping[str, Any], lane: Sink,
                      hook: BookHook | None) -> bool:
        """Replay: a journaled state of the book, taken back only if replay could not rebuild
        the book (it started after the book's sync); the events buffered meanwhile are stepped
        on it as live stepped them. True if taken."""
        book = self.books.get(symbol)
        if book is None or book.live:
            return False  # rebuilt from the same frames: the same book
        replay = book.restore(state)
        self._ready.pop(symbol, None)
        self._pending.discard(symbol)
        self._since.pop(symbol, None)  # live again
        seq = self.bases.cursor[0]
        for old, old_recv in replay:
            await self._step(book, old, old_recv, lane, hook, seq)
        self._settled(book)
        return True

    def restart(self) -> None:
        """After a restart replay: every book starts over from a new snapshot (the frames of
        the downtime are gone), and nothing asked for during the replay is asked for."""
        for book in self.books.values():
            book.reset()
        self._ready.clear()
        self.bases.clear()
        self._pending.clear()
        self._queue.clear()

    def journal_holds(self, before: int) -> list[int]:
        """The journal seqs the checkpoint must keep so that replay rebuilds every book, given
        ``before``, the checkpoint by every other hold (``BookBases.holds``)."""
        if self._admit is not None:
            return []  # replaying: the books are the old run's until ``restart``
        return self.bases.holds(self.books, before, trio.current_time())

    # -- status ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        live = sum(b.live for b in self.books.values())
        return {
            "live": live,
            "syncing": len(self.books) - live,
            "queued": len(self._queue),
            "requests": self.stats.requests,
            "failures": self.stats.failures,
            "rate_limited": self.stats.rate_limited,
            "gaps": self.stats.gaps,
            "rows": self.stats.rows,
            "weight_spent": self.pacer.spent,
            "breaks": sum(b.stats.breaks for b in self.books.values()),
            "stale_snapshots": sum(b.stats.stale_snapshots for b in self.books.values()),
        }
