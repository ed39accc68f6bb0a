"""The router: one decoded frame in, rows into lanes and calls into the signal hooks out.

Owns the per-message hot path after the socket: decode, check, append the decoded message to
its lane's columns (trades to ``prices``, quotes to ``quotes``, top-N snapshots to
``orderbook``; no row tuple is built; a futures contract's mark price, funding and open interest
go to ``derivatives`` and liquidation orders to ``liquidations``, as tuple rows: about one a
second per symbol; authoritative rows wait when the lane is full; that
wait is the backpressure), feed the signal hooks the same message, count what was malformed,
unexpected or rejected (logged at a limited rate). Never does
I/O, never checks rotation (old fault 7), never raises for a bad frame.

Per-stream state exists only for subscribed streams (``streams``): a frame naming any other
stream is unexpected, so a peer cannot grow it or bypass book deduplication with new names.
Symbols come and go while it runs (a listing change: ``add_symbol``, ``remove_symbol``); frames
of a removed symbol still in flight, and the venue's replies to subscription requests, are
counted, not warned about (both checks sit on the path of frames that failed, never per frame).
A frame may hold several records of one stream (a venue's batch): each is routed as if it had
come alone, in order. Event times are judged against the stream's own recent times
(``timeguard.py``): a frame that does not fit is held until evidence decides, then routed or
quarantined (``rejected``). A failure inside one symbol's diff book stays there: that book
starts over, other symbols never notice; one in a symbol's signal hooks costs only that
symbol's derived rows.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol

from .. import venues
from ..kinds import BOOK_UPDATES, ORDERBOOK, PRICES, QUOTES, QUOTES_SCHEMA, Row
from ..ratelimit import RateLimitedLog
from ..venues.base import (
    BATCH,
    BOOK,
    LIQUIDATION,
    QUOTE,
    TRADE,
    BookLevels,
    Frame,
    FrameError,
    Quote,
    Trade,
    Venue,
)
from .chunks import BadValue
from .done import DONE
from .lanes import Lanes, Sink
from .shapes import RowQuote, quote_row
from .staterouting import StateRouting
from .timeguard import TOLERANCE_MS, TimeGuard
from .window import Window, WindowHook, WindowLane

if TYPE_CHECKING:
    from ..repair.coordinator import Repair

log = logging.getLogger("trio_harvest.router")

MIN_EVENT_MS = 1_420_070_400_000  # 2015-01-01: before any market this harvests
MAX_EVENT_MS = 4_102_444_800_000  # 2100-01-01
QUOTE_WIDTH = len(QUOTES_SCHEMA.columns)  # a ``quotes`` row's values (no book row is as short)
MAX_STREAMS_PER_SYMBOL = 8  # without a subscription list: stream names learned per symbol

Held = tuple[Frame, int, "str | bytes", int]  # a frame (and its journal seq) waiting for
# the time guard's verdict


class SignalHooks(Protocol):
    """What ingest calls for every record of a symbol (the signal engine implements it): the
    decoded record on the hot path, a row for books built locally from diffs and for rows the
    repair gate held and then released."""

    def on_trade_record(self, t: Trade) -> None: ...
    def on_quote(self, q: Quote, recv_ms: int) -> None: ...
    def on_book_levels(self, d: BookLevels, source: str) -> None: ...
    def on_trade(self, row: Row) -> None: ...
    def on_book(self, row: Row) -> None: ...
    def on_state(self, kind: str, row: Row) -> None: ...  # a derivatives or liquidations row


class DiffBooks(Protocol):
    """Local books built from diff events (``--book diff``): the venue's book sync."""

    @property
    def books(self) -> Mapping[str, Any]: ...  # symbol -> its book (``reset()`` starts it over)
    @property
    def streams(self) -> Mapping[str, str]: ...  # symbol -> its diff stream

    def on_depth(self, ev: Any, recv_ms: int, lane: Sink,
                 hook: Any) -> Awaitable[None]: ...  # DONE when nothing is left to await
    def add_symbol(self, symbol: str) -> None: ...
    def remove_symbol(self, symbol: str) -> None: ...
    # restart replay (journal/replay.py): journaled snapshots and states, rows already written
    admit: Callable[[str, Row], bool] | None

    def offer_snapshot(self, symbol: str, body: Mapping[str, Any]) -> bool: ...
    async def restore(self, symbol: str, state: Mapping[str, Any], lane: Sink,
                      hook: Any) -> bool: ...
    def restart(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _One:
    """One record of a frame that held several (``venues.base.Batch``), with its stream."""

    stream: str
    data: Any


@dataclass(slots=True)
class RouterStats:
    frames: int = 0
    malformed: int = 0
    unexpected: int = 0
    rejected: int = 0  # values no column holds or that are not market data; time outliers
    quarantined: int = 0  # of ``rejected``: held frames that evidence showed did not fit
    book_errors: int = 0  # failures inside one symbol's diff book (that book starts over)
    hook_errors: int = 0  # failures of a symbol's signal hooks (its rows are written anyway)
    replies: int = 0  # answers to subscription requests
    retired: int = 0  # frames of a symbol removed from the universe, still in flight
    # liquidations of symbols not harvested: a venue's liquidation stream may carry every
    # symbol of the venue (OKX's ``liquidation-orders``), so they are dropped, not an error
    other_liquidations: int = 0
    last_seen: dict[str, float] = field(default_factory=dict)  # stream name -> trio/mono time


class Router(StateRouting):
    def __init__(
        self,
        lanes: Lanes,
        symbols: tuple[str, ...],
        *,
        depth_levels: int,
        book: str = "partial",
        hooks: dict[str, SignalHooks] | None = None,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        now: Callable[[], float] = time.monotonic,
        streams: Mapping[str, str] | None = None,
        venue: Venue | None = None,
    ) -> None:
        self.venue = venue = venue or venues.default()
        self._decode = venue.decode_envelope
        self._bad_frame = venue.bad_frame
        # what the gate deduplicates quotes and book snapshots by (the update id, or an id of
        # the venue's that only grows where its update ids may restart)
        self._gate_id = attrgetter(venue.gate_id)
        self.lanes = lanes
        self.symbols = frozenset(symbols)
        self.depth_levels = depth_levels
        self.depth_source = f"depth{depth_levels}"
        self.book = book
        self.hooks = hooks or {}
        self.wall_ms = wall_ms
        self.now = now
        self.stats = RouterStats()
        self._last_seen = self.stats.last_seen  # per frame: the stream's last frame (trio time)
        self._ratelog = RateLimitedLog(log)
        self._prices: dict[str, Sink] = {s: lanes.get(PRICES, s) for s in symbols}
        self._books: dict[str, Sink] = {s: lanes.get(ORDERBOOK, s) for s in symbols}
        self._quotes: dict[str, Sink] = {s: lanes.get(QUOTES, s) for s in symbols}
        self.windows: dict[str, Window] = {}  # symbols changing shards: rows kept by time
        self.diff_books: DiffBooks | None = None  # book == "diff": local books (the app sets it)
        self.gate: Repair | None = None  # dedup, agg-id continuity, resumed streams (the app sets it)
        # stream name -> symbol of every subscribed stream (the app sets it); without one, up to
        # MAX_STREAMS_PER_SYMBOL names per symbol that start with its lower-case name are learned
        self.streams: dict[str, str] | None = dict(streams) if streams is not None else None
        self._learned: dict[str, int] = {}  # symbol -> stream names learned
        self._known: set[str] = set()  # the names learned
        self.time_guards: dict[str, TimeGuard[Held]] = {}  # per stream (subscribed or learned)
        self.retired: set[str] = set()  # stream names of removed symbols (late frames: counted)

    def add_symbol(self, symbol: str, streams: Mapping[str, str], hook: SignalHooks | None) -> None:
        """A symbol joins while running: its lanes, its ``streams`` (name -> symbol), its hook."""
        self.symbols = self.symbols | {symbol}
        self._prices[symbol] = self.lanes.get(PRICES, symbol)
        self._books[symbol] = self.lanes.get(ORDERBOOK, symbol)
        self._quotes[symbol] = self.lanes.get(QUOTES, symbol)
        if self.streams is not None:
            self.streams.update(streams)
        self.retired.difference_update(streams)
        if hook is not None:
            self.hooks[symbol] = hook

    def remove_symbol(self, symbol: str) -> list[str]:
        """A symbol leaves (delisted, or another shard's now): its frames are no longer routed.
        Returns its stream names."""
        names = [n for n, s in (self.streams or {}).items() if s == symbol]
        for name in names:
            del self.streams[name]  # type: ignore[union-attr]
            self.time_guards.pop(name, None)
            self.stats.last_seen.pop(name, None)
        self.retired.update(names)
        self.symbols = self.symbols - {symbol}
        self.windows.pop(symbol, None)
        self._prices.pop(symbol, None)
        self._books.pop(symbol, None)
        self._quotes.pop(symbol, None)
        self.hooks.pop(symbol, None)
        return names

    def window(self, symbol: str, start_ms: int | None, end_ms: int | None) -> Window:
        """From now on only ``symbol``'s messages (and derived signals) timed in
        ``[start_ms, end_ms)`` are kept: a symbol changing shards. Its own lanes and hook are
        wrapped; every other symbol's path is unchanged."""
        self.unwindow(symbol)
        w = self.windows[symbol] = Window(start_ms, end_ms)
        self._prices[symbol] = WindowLane(self.lanes.get(PRICES, symbol), w)
        self._books[symbol] = WindowLane(self.lanes.get(ORDERBOOK, symbol), w)
        self._quotes[symbol] = WindowLane(self.lanes.get(QUOTES, symbol), w)
        hook = self.hooks.get(symbol)
        if hook is not None:
            self.hooks[symbol] = WindowHook(hook, w)
        return w

    def book_updates_lane(self, symbol: str) -> Sink:
        """Where a diff book writes ``symbol``'s ``book_updates`` rows."""
        return self.lane_of(BOOK_UPDATES, symbol)

    def lane_of(self, kind: str, symbol: str) -> Sink:
        """``symbol``'s lane of ``kind``, or only the rows of its window while it changes shards
        (as every other kind of it)."""
        lane = self.lanes.get(kind, symbol)
        window = self.windows.get(symbol)
        return lane if window is None else WindowLane(lane, window)

    def unwindow(self, symbol: str) -> None:
        """``symbol`` keeps everything again (its own lanes and hook)."""
        if self.windows.pop(symbol, None) is None:
            return
        self._prices[symbol] = self.lanes.get(PRICES, symbol)
        self._books[symbol] = self.lanes.get(ORDERBOOK, symbol)
        self._quotes[symbol] = self.lanes.get(QUOTES, symbol)
        hook = self.hooks.get(symbol)
        if isinstance(hook, WindowHook):
            self.hooks[symbol] = hook.hook

    async def handle(self, frame: str | bytes) -> None:
        """Route one combined-stream frame. Awaits only when an authoritative lane is full."""
        waiting = self.feed(frame)
        if waiting is not None:
            await waiting

    def feed(self, frame: str | bytes, env: Frame | None = None,
             recv_ms: int | None = None) -> Coroutine[Any, Any, None] | None:
        """``handle`` without a coroutine per frame: routes the frame and returns None, or the
        coroutine to await when it must wait (a full lane, the time guard's verdict, rows the
        repair gate released, a diff book). The connection loop calls this one, with the frame
        alone. Inside the router, ``env`` is one record of a frame decoded already (a batch's):
        checked and routed; with its ``recv_ms`` too, a frame the time guard held and then
        released: only routed. Decode, checks and routing are one function: on this path a
        Python call costs as much as several checks."""
        if env is None:
            stats = self.stats
            stats.frames += 1
            try:
                env = self._decode(frame)
            except self._bad_frame:
                self._not_data(frame)
                return None
            if env.data.kind == BATCH:  # several records in one frame: each as if alone
                data = env.data
                streams = getattr(data, "streams", None)  # a batch of several symbols' records
                if streams is not None:
                    return self._batch(streams, data.records, frame)
                return self._batch(itertools.repeat(env.stream), data.records, frame)
        data = env.data
        stream = env.stream
        symbol = data.symbol
        if recv_ms is None:
            streams = self.streams
            if streams is not None:  # only subscribed symbols are in it
                if streams.get(stream) != symbol:
                    if stream in self.retired:
                        self.stats.retired += 1
                        return None
                    if data.kind == LIQUIDATION and symbol not in self.symbols:
                        self.stats.other_liquidations += 1
                        return None
                    self._bad("unexpected", f"frame of {symbol[:20]!r} on a stream not "
                              f"subscribed for it ({env.stream[:60]!r})", frame)
                    return None
            elif symbol not in self.symbols:
                if data.kind == LIQUIDATION:
                    self.stats.other_liquidations += 1
                    return None
                self._bad("unexpected", f"frame for unsubscribed symbol {symbol[:20]!r}", frame)
                return None
            elif env.stream not in self._known and not self._learn(env.stream, symbol):
                self._bad("unexpected", f"frame of {symbol} on an unknown stream "
                          f"({env.stream[:60]!r})", frame)
                return None
            recv_ms = self.wall_ms()
            trade_ms = data.trade_ms
            event_ms = data.event_ms
            ts = trade_ms or event_ms
            if ts:
                if not MIN_EVENT_MS <= ts < MAX_EVENT_MS:
                    # a corrupt frame: no date partition can sensibly hold it; never admit
                    # it. (Deliberately not compared with the local clock: a host whose clock
                    # is off must still harvest.)
                    self._bad("rejected", f"implausible event time {ts}", frame)
                    return None
                if (event_ms and trade_ms
                        and not -TOLERANCE_MS <= event_ms - trade_ms <= TOLERANCE_MS):
                    self._bad("rejected", f"trade time T={trade_ms} far from event time "
                              f"E={event_ms}", frame)
                    return None
                # the time guard's hot path, inlined: the lag fits the reference, nothing is
                # held
                guard = self.time_guards.get(stream)
                if guard is None:  # a subscribed (or learned, bounded) stream's first frame
                    guard = self.time_guards[stream] = TimeGuard()
                lag = recv_ms - (event_ms or ts)
                ref = guard.ref
                if ref is None or guard.held or not -TOLERANCE_MS <= lag - ref <= TOLERANCE_MS:
                    return self._judged(guard, guard.judge(lag, (env, recv_ms, frame,
                                                                    self.lanes.cursor[0])))
                guard.ref = lag
            elif data.kind == BOOK:  # book levels a venue sends without a time (Spot's partial
                data.event_ms = recv_ms  # depth): received now, as its rows and signals read it
        self._last_seen[stream] = self.now()
        gate = self.gate
        if gate is not None and gate.resuming and stream in gate.resuming:
            gate.resumed(stream, recv_ms)
        kind = data.kind
        if kind > BOOK:  # a derivatives update or a liquidation
            return self._state(stream, data, recv_ms, frame)
        hook = self.hooks.get(symbol)
        try:
            if kind == QUOTE:  # the most frequent first
                lane = self._quotes[symbol]
                if gate is not None:
                    gid = self._gate_id(data)
                    fast = gate.book_fast(stream, gid)
                    if fast is None:  # not a usual step: the gate may hold it (as a row)
                        fast = gate.book(stream, gid, quote_row(data, recv_ms))
                        if gate.released:  # held messages the stream has just confirmed
                            return self._slow(gate, lane, hook, data, recv_ms, fast, frame)
                    if not fast:
                        return None
                if not lane.add_quote(data, recv_ms):
                    return self._slow(None, lane, hook, data, recv_ms, True, frame)
                if hook is not None:
                    try:
                        hook.on_quote(data, recv_ms)
                    except Exception as exc:
                        self._hook_failed(symbol, exc)
                return None
            if kind == TRADE:
                lane = self._prices[symbol]
                if gate is not None:
                    admitted = gate.trade(data, recv_ms)
                    if gate.released:  # held trades the stream has just confirmed: first
                        return self._slow(gate, lane, hook, data, recv_ms, admitted, frame)
                    if not admitted:
                        return None  # already in prices (a duplicated frame or id, an overlap)
                if not lane.add_trade(data, recv_ms):
                    return self._slow(None, lane, hook, data, recv_ms, True, frame)
                if hook is not None:
                    try:
                        hook.on_trade_record(data)
                    except Exception as exc:  # a preview signal's bug is its symbol's alone
                        self._hook_failed(symbol, exc)
                return None
            lane = self._books[symbol]
            if self.book == "partial":  # a book message (BOOK) from here on
                if gate is not None:
                    gid = self._gate_id(data)
                    fast = gate.book_fast(stream, gid)
                    if fast is None:
                        fast = gate.book(stream, gid, self.venue.levels_row(
                            data, recv_ms, self.depth_levels, self.depth_source))
                        if gate.released:
                            return self._slow(gate, lane, hook, data, recv_ms, fast, frame)
                    if not fast:
                        return None
                if not lane.add_depth(data, recv_ms, self.depth_source):
                    return self._slow(None, lane, hook, data, recv_ms, True, frame)
                if hook is not None:
                    try:
                        hook.on_book_levels(data, self.depth_source)
                    except Exception as exc:
                        self._hook_failed(symbol, exc)
                return None
        except BadValue as exc:  # a value no column can hold: never admitted anywhere
            self._bad("rejected", f"{env.stream}: {exc}", frame)
            return None
        if self.diff_books is not None and symbol in self.diff_books.books:
            return self._diff(data, recv_ms, lane, hook)
        # diff depth is applied to a local book by a later stage
        self._bad("unexpected", "diff depth without a local book", frame)
        return None

    def _batch(self, streams: Iterable[str], records: Sequence[Any],
               frame: str | bytes) -> Coroutine[Any, Any, None] | None:
        """Route a frame's records in order, each on its stream; the coroutine that finishes
        them when one must wait (the ones after it wait too, so their order holds)."""
        names = iter(streams)
        for i, record in enumerate(records):
            waiting = self.feed(frame, _One(next(names), record))
            if waiting is not None:
                return self._batch_rest(waiting, names, records[i + 1:], frame)
        return None

    async def _batch_rest(self, waiting: Coroutine[Any, Any, None], names: Iterator[str],
                          records: Sequence[Any], frame: str | bytes) -> None:
        await waiting
        for record in records:
            more = self.feed(frame, _One(next(names), record))
            if more is not None:
                await more

    async def _judged(self, guard: TimeGuard[Held], release: list[Held]) -> None:
        """Route what the time guard released; count and log what it quarantined."""
        while guard.quarantined:
            _, (env, _, frame, _) = guard.quarantined.pop(0)
            self.stats.quarantined += 1
            data = env.data
            self._bad("rejected", f"quarantined a frame of {data.symbol} whose event time "
                      f"{data.event_ms or data.trade_ms} does not fit the stream's recent "
                      "times", frame)
        cursor = self.lanes.cursor
        for env, recv_ms, frame, seq in release:
            # journal checkpoint: its row came from frame ``seq``, not the one being routed
            now, cursor[0] = cursor[0], seq
            try:
                waiting = self.feed(frame, env, recv_ms)
            finally:
                cursor[0] = now
            if waiting is not None:
                await waiting
            data = env.data
            kind = data.kind
            lane = (self._prices if kind == TRADE else self._quotes if kind == QUOTE
                    else self._books).get(data.symbol)
            if lane is not None and lane.pending:
                lane.hold(seq)

    async def release_held(self, symbols: Collection[str] | None = None) -> None:
        """At a stop: frames still waiting for the time guard are routed or quarantined (only
        those of streams of ``symbols`` when given: the end of a restart replay)."""
        for stream, guard in list(self.time_guards.items()):
            if symbols is None or self.venue.stream_symbol(stream) in symbols:
                await self._judged(guard, guard.release())

    def held_seqs(self, since_ms: int) -> list[int]:
        """Journal checkpoint: the seqs of frames the time guards hold (routed later, or not)
        that were received at ``since_ms`` or later."""
        return [item[3] for guard in self.time_guards.values() if guard.held
                for _, item in guard.held if item[1] >= since_ms]

    def adopt(self, symbol: str) -> None:
        """Restart replay only (``streams`` is not set yet): route the journaled frames of a
        symbol outside today's configuration into its own lanes, so what an earlier run
        received is written whatever the symbols are now."""
        if symbol in self.symbols:
            return
        self.symbols = self.symbols | {symbol}
        self._prices[symbol] = self.lanes.get(PRICES, symbol)
        self._books[symbol] = self.lanes.get(ORDERBOOK, symbol)
        self._quotes[symbol] = self.lanes.get(QUOTES, symbol)

    def _learn(self, stream: str, symbol: str) -> bool:
        if not stream.startswith(self.venue.stream_prefix(symbol)):
            return False
        n = self._learned.get(symbol, 0)
        if n >= MAX_STREAMS_PER_SYMBOL:
            return False
        self._learned[symbol] = n + 1
        self._known.add(stream)
        return True

    async def _slow(self, gate: Repair | None, lane: Sink, hook: SignalHooks | None,
                    data: Any, recv_ms: int, admitted: bool, frame: str | bytes) -> None:
        """The rest of ``feed`` when it must wait: first the rows the gate released, then
        (if admitted) this message, waiting for room in a full lane."""
        kind = data.kind
        venue = self.venue
        if gate is not None and gate.released:
            await self._put_released(gate, lane, hook, trade=kind == TRADE)
        if not admitted:
            return
        try:
            if kind == TRADE:
                if not lane.add_trade(data, recv_ms):
                    await lane.put(venue.trade_row(data, recv_ms))  # full: wait (backpressure)
            elif kind == QUOTE:
                if not lane.add_quote(data, recv_ms):
                    await lane.put(quote_row(data, recv_ms))
            elif kind == BOOK and not lane.add_depth(data, recv_ms, self.depth_source):
                await lane.put(venue.levels_row(data, recv_ms, self.depth_levels,
                                                self.depth_source))
        except BadValue as exc:
            self._bad("rejected", f"{data.symbol}: {exc}", frame)
            return
        if hook is None:
            return
        try:
            if kind == TRADE:
                hook.on_trade_record(data)
            elif kind == QUOTE:
                hook.on_quote(data, recv_ms)
            elif kind == BOOK:
                hook.on_book_levels(data, self.depth_source)
        except Exception as exc:
            self._hook_failed(data.symbol, exc)

    def _diff(self, data: BookLevels, recv_ms: int, lane: Sink,
              hook: SignalHooks | None) -> Coroutine[Any, Any, None] | None:
        """Apply a diff event to the symbol's local book: synchronously when nothing waits,
        else the coroutine that finishes it."""
        assert self.diff_books is not None
        try:
            rest = self.diff_books.on_depth(data, recv_ms, lane, hook)  # rows, gaps, resync
        except Exception as exc:
            self._book_failed(data.symbol, exc)
            return None
        return None if rest is DONE else self._diff_rest(data.symbol, rest)

    async def _diff_rest(self, symbol: str, rest: Awaitable[None]) -> None:
        try:
            await rest
        except Exception as exc:
            self._book_failed(symbol, exc)

    async def restore_book(self, symbol: str, state: Mapping[str, Any]) -> bool:
        """Restart replay: a journaled state of ``symbol``'s diff book (``DiffBooks.restore``),
        its rows into the symbol's lanes as a diff event's. True if the book took it."""
        books = self.diff_books
        if books is None or symbol not in books.books:
            return False
        try:
            return await books.restore(symbol, state, self._books[symbol], self.hooks.get(symbol))
        except Exception as exc:
            self._book_failed(symbol, exc)
            return False

    def _book_failed(self, symbol: str, exc: Exception) -> None:
        """One symbol's failure is that symbol's: its book restarts."""
        assert self.diff_books is not None
        self.stats.book_errors += 1
        self.diff_books.books[symbol].reset()
        self._ratelog.log(logging.ERROR, f"book:{symbol}",
                          "%s: diff book failed (%s: %s); it resyncs from a snapshot",
                          symbol, type(exc).__name__, exc)

    def _hook_failed(self, symbol: str, exc: Exception) -> None:
        """The row is in its lane already; only the symbol's derived signals miss it."""
        self.stats.hook_errors += 1
        self._ratelog.log(logging.ERROR, f"hook:{symbol}", "%s: signals failed on a row (%s: %s)",
                          symbol, type(exc).__name__, exc)

    async def _put_released(self, gate: Repair, lane: Sink, hook: SignalHooks | None, *,
                            trade: bool) -> None:
        rows, gate.released = gate.released, []
        at, gate.released_at = gate.released_at, -1
        for row in rows:
            if not lane.put_nowait(row):
                await lane.put(row)
            if hook is not None:
                try:
                    if trade:
                        hook.on_trade(row)
                    elif len(row) == QUOTE_WIDTH:  # a quote: the hooks read it as one
                        hook.on_quote(RowQuote(row), row[2])
                    else:
                        hook.on_book(row)
                except Exception as exc:
                    self._hook_failed(row[3], exc)
        if at >= 0:  # journal checkpoint: the held rows' own frames, not this one
            lane.hold(at)

    def _not_data(self, frame: str | bytes) -> None:
        """A frame that is not stream data: a reply to a subscription request is counted (an
        error reply is logged), anything else is bad."""
        try:
            self.venue.decode(frame)  # decoded again, off the hot path: what is wrong with it
        except FrameError as error:
            exc = error
        else:  # pragma: no cover (decode decodes as decode_envelope does)
            raise AssertionError("a frame decode_envelope refused was decoded")
        reply = self.venue.reply_to(frame) if exc.category == "unexpected" else None
        if reply is None:
            self._bad(exc.category, str(exc), frame)
            return
        self.stats.replies += 1
        if reply[1]:
            self._ratelog.log(logging.WARNING, "reply", "subscription request %d refused: %s",
                              reply[0], reply[1])

    def _bad(self, category: str, message: str, frame: str | bytes) -> None:
        if category == "malformed":
            self.stats.malformed += 1
        elif category == "rejected":
            self.stats.rejected += 1
        else:
            self.stats.unexpected += 1
        sample = frame[:160] if isinstance(frame, str) else frame[:160].decode("utf-8", "replace")
        self._ratelog.log(logging.WARNING, category, "%s (frame starts %r)", message, sample)
