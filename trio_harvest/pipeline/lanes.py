"""Lanes: one bounded buffer per (kind, symbol), columnar, whose capacity is the emergency
watermark in rows.

Owns the watermark policy at the producer side. Rows are appended to column builders
(``chunks.py``), never kept as tuples; a full builder is sealed into a chunk and sent through the
lane's trio memory channel, which rotation drains. The channel's capacity is the emergency
watermark counted in chunks (``capacity // chunk_rows``, plus one per open builder shape), and
the lane admits at most ``capacity`` rows in all, so memory per lane is bounded in rows exactly as
before. Crossing the high watermark wakes rotation; at capacity, authoritative kinds wait
(backpressure, and rotation is woken to flush) while preview kinds spill to a bounded spill
buffer that rotation sends to the dead letter (as does an authoritative row whose waiting
producer was cancelled). Never does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import trio

from ..kinds import DEFAULT_VENUE, ORDERBOOK, PRICES, QUOTES, Row, Schema, is_authoritative
from .chunks import (
    Batch,
    Builder,
    GenericBuilder,
    UntypedBuilder,
    chunk_rows_for,
    default_schema,
)
from .shapes import (
    TRADE_WIDTHS,
    CvdBuilder,
    DepthBuilder,
    OfiBuilder,
    QuoteBuilder,
    TradeBuilder,
)

if TYPE_CHECKING:
    from ..venues.base import BookLevels, Quote, Trade
    from .tap import Tap

WakeFn = Callable[["Lane"], None]
_OPEN = ("_trade", "_quote", "_depth", "_ofi", "_cvd", "_generic")
SHAPES = len(_OPEN)  # open builders a lane may have at once
_SHAPED_KINDS = (PRICES, ORDERBOOK, QUOTES)  # kinds whose tuple rows may join a typed shape


class Sink(Protocol):
    """What ingest puts a symbol's messages into: its ``Lane``, or a ``WindowLane`` around it
    while the symbol changes shards."""

    def add_trade(self, t: Trade, recv_ms: int) -> bool: ...
    def add_quote(self, t: Quote, recv_ms: int) -> bool: ...
    def add_depth(self, d: BookLevels, recv_ms: int, source: str) -> bool: ...
    def put_nowait(self, row: Row, *, unseen: bool = False) -> bool: ...
    def put_columns_nowait(self, columns: Sequence[list[Any]], n: int) -> bool: ...
    async def put(self, row: Row, *, unseen: bool = False) -> None: ...
    def keep(self, row: Row) -> None: ...
    def hold(self, seq: int) -> None: ...
    @property
    def pending(self) -> int: ...


@dataclass(slots=True)
class LaneStats:
    accepted: int = 0
    spilled: int = 0
    dropped: int = 0  # preview rows lost because both the lane and its spill buffer were full
    blocked: int = 0  # times an authoritative producer had to wait
    peak: int = 0
    rejected: int = 0  # rows whose values no column can hold (counted, never buffered)


@dataclass(eq=False, slots=True)
class Lane:
    kind: str
    symbol: str
    high: int
    capacity: int
    wake: WakeFn
    schema: Schema | None = None
    depth_levels: int = 20
    authoritative: bool = False
    level: int = 0
    _stats: LaneStats = field(default_factory=LaneStats)
    _drained: int = 0  # rows taken by ``drain`` so far (``stats.accepted`` = this + ``level``)
    chunk_rows: int = 0
    # journal checkpoint: ``cursor[0]`` is the journal seq of the frame being routed
    # (shared by all lanes); ``first_seq`` that seq when the oldest pending row arrived (-1: none)
    cursor: list[int] = field(default_factory=lambda: [0])
    first_seq: int = -1
    venue: str = DEFAULT_VENUE  # the ``venue=`` its partitions and dead-letter files go to
    _spills: list[GenericBuilder | UntypedBuilder] = field(default_factory=list)
    _spilled: int = 0
    _trade: TradeBuilder | None = None
    _quote: QuoteBuilder | None = None
    _depth: DepthBuilder | None = None
    _ofi: OfiBuilder | None = None
    _cvd: CvdBuilder | None = None
    _generic: GenericBuilder | UntypedBuilder | None = None
    # a lane whose depth rows (or quotes) its symbol's signal engine reads in batches
    tap: Tap | None = None
    frame_schema: Schema = field(init=False)
    _room: trio.Event = field(default_factory=trio.Event)
    _send: trio.MemorySendChannel[Builder] = field(init=False)
    _recv: trio.MemoryReceiveChannel[Builder] = field(init=False)

    def __post_init__(self) -> None:
        self.chunk_rows = chunk_rows_for(self.capacity)
        self._send, self._recv = trio.open_memory_channel[Builder](
            self.capacity // self.chunk_rows + SHAPES)
        self.authoritative = is_authoritative(self.kind)
        self.frame_schema = self.schema if self.schema is not None else default_schema(
            self.kind, self.depth_levels)
        self._room.set()

    @property
    def stats(self) -> LaneStats:
        """The lane's counters; ``accepted`` is every row admitted so far (drained or
        buffered), counted from the level rather than per row."""
        stats = self._stats
        stats.accepted = self._drained + self.level
        return stats

    # -- appends (hot path) ----------------------------------------------------------------------

    def _admitted(self) -> None:
        self.level += 1
        if self.first_seq < 0:  # journal checkpoint
            self.first_seq = self.cursor[0]
        if self.level == self.high:
            self.wake(self)

    def _roll(self, name: str, builder: Builder) -> Any:
        """Seal the full open builder ``name`` (if any) and open ``builder`` in its place."""
        old = getattr(self, name)
        if old is not None and old.n:
            self._send.send_nowait(old)  # never full: the level bounds the rows (__post_init__)
        setattr(self, name, builder)
        if self.tap is not None and name == self.tap.shape:
            self.tap.opened(builder)
        return builder

    # Each ``add_*`` / ``offer_*`` appends one row from a decoded message, or returns False
    # when full; ``chunks.BadValue`` (nothing appended) for a value no column can hold.

    def add_trade(self, t: Trade, recv_ms: int) -> bool:
        level = self.level
        if level >= self.capacity:
            return False
        b = self._trade
        if b is None or b.n >= self.chunk_rows:
            b = self._roll("_trade", TradeBuilder())
        b.add(t, recv_ms)
        self.level = level = level + 1
        if self.first_seq < 0:  # journal checkpoint
            self.first_seq = self.cursor[0]
        if level == self.high:
            self.wake(self)
        return True

    def add_quote(self, t: Quote, recv_ms: int) -> bool:
        level = self.level
        if level >= self.capacity:
            return False
        b = self._quote
        if b is None or b.n >= self.chunk_rows:
            b = self._roll("_quote", QuoteBuilder())
        b.add(t, recv_ms)
        self.level = level = level + 1
        if self.first_seq < 0:  # journal checkpoint
            self.first_seq = self.cursor[0]
        if level == self.high:
            self.wake(self)
        return True

    def add_depth(self, d: BookLevels, recv_ms: int, source: str) -> bool:
        level = self.level
        if level >= self.capacity:
            return False
        b = self._depth
        if b is None or b.n >= self.chunk_rows:
            b = self._roll("_depth", DepthBuilder(self.depth_levels))
        b.add(d, recv_ms, source)
        self.level = level = level + 1
        if self.first_seq < 0:  # journal checkpoint
            self.first_seq = self.cursor[0]
        if level == self.high:
            self.wake(self)
        return True

    def offer_ofi(self, ts: int, source: str, ofi1: float | None, ofim: float | None,
                  bid: float | None, ask: float | None, bid_sz: float | None,
                  ask_sz: float | None) -> None:
        """Preview: an ``ofi`` row (the bookkeeping is inlined: per message); spills if full."""
        b = self._ofi
        if self.level >= self.capacity:
            self.offer((ts, self.symbol, source, ofi1, ofim, bid, ask, bid_sz, ask_sz))
            return
        if b is None or b.n >= self.chunk_rows:
            b = self._roll("_ofi", OfiBuilder())
        b.add(ts, source, ofi1, ofim, bid, ask, bid_sz, ask_sz)
        self.level += 1
        if self.level == self.high:
            self.wake(self)

    @staticmethod
    def pack_ofi(ts: Any, ofi1: Any, ofim: Any, bid: Any, ask: Any, bid_sz: Any,
                 ask_sz: Any) -> tuple[bytes, int]:
        """``ofi`` rows from NumPy columns (NaN for an absent OFI; every best level present) as
        the records an ``ofi`` lane holds, and the bytes per record."""
        recs = np.empty(len(ts), OfiBuilder.DTYPE)
        recs["ts_ms"], recs["ofi_l1"], recs["ofi_ml"] = ts, ofi1, ofim
        recs["bid"], recs["ask"], recs["bid_sz"], recs["ask_sz"] = bid, ask, bid_sz, ask_sz
        return recs.tobytes(), OfiBuilder.SIZE

    def offer_ofi_records(self, records: bytes, n: int, sources: list[str]) -> bool:
        """Preview: ``n`` ``ofi`` rows at once (``pack_ofi``'s records), if the lane has room for
        all of them; False (nothing taken) if not."""
        return self._offer_records("_ofi", OfiBuilder, records, n, sources)

    def _offer_records(self, name: str, shape: type[OfiBuilder] | type[CvdBuilder],
                       records: bytes, n: int, sources: list[str] | None) -> bool:
        """``n`` packed records of ``shape`` (and their sources, for ``ofi``) appended to the
        open builder ``name``, opening new ones as they fill; nothing if they do not all fit."""
        level = self.level
        if level + n > self.capacity:
            return False
        size = shape.SIZE
        done = 0
        while done < n:
            b = getattr(self, name)
            if b is None or b.n >= self.chunk_rows:
                b = self._roll(name, shape())
            k = min(n - done, self.chunk_rows - b.n)
            b.rec += records[done * size:(done + k) * size] if k < n else records
            if sources is not None:
                b.source += sources[done:done + k] if k < n else sources
            b.n += k
            done += k
        self.level = level + n
        if level < self.high <= level + n:
            self.wake(self)
        return True

    def read_rows(self, tap: Tap) -> None:
        """From now on ``tap`` follows the rows of its shape this lane takes (rows already here
        are not its)."""
        self.tap = tap
        open_builder: Builder | None = getattr(self, tap.shape)
        if open_builder is not None:
            tap.opened(open_builder)
            tap.start = open_builder.n

    @staticmethod
    def pack_cvd(ts: Any, agg_id: Any, delta: Any, cvd: Any, gap: Any) -> tuple[bytes, int]:
        """``cvd`` rows from NumPy columns as the records a ``cvd`` lane holds, and the bytes
        per record."""
        recs = np.empty(len(ts), CvdBuilder.DTYPE)
        recs["ts_ms"], recs["agg_id"], recs["delta"], recs["cvd"] = ts, agg_id, delta, cvd
        recs["gap"] = gap
        return recs.tobytes(), CvdBuilder.SIZE

    def offer_cvd_records(self, records: bytes, n: int) -> bool:
        """Preview: ``n`` ``cvd`` rows at once (``pack_cvd``'s records), if the lane has room
        for all of them; False (nothing taken) if not."""
        return self._offer_records("_cvd", CvdBuilder, records, n, None)

    def offer_cvd(self, ts: int, agg_id: int, delta: float, cvd: float, gap: bool) -> None:
        """Preview: a ``cvd`` row; a full lane spills it (see ``offer``)."""
        b = self._cvd
        if self.level >= self.capacity:
            self.offer((ts, self.symbol, agg_id, delta, cvd, gap))
            return
        if b is None or b.n >= self.chunk_rows:
            b = self._roll("_cvd", CvdBuilder())
        b.add(ts, agg_id, delta, cvd, gap)
        self.level += 1
        if self.level == self.high:
            self.wake(self)

    def put_chunk(self, chunk: Builder) -> bool:
        """Admit a whole chunk built elsewhere (benchmarks) if its rows fit, as it is."""
        if not chunk.n:
            return True
        if self.level + chunk.n > self.capacity:
            return False
        self._send.send_nowait(chunk)
        self.hold(self.cursor[0])  # journal checkpoint
        crossed = self.level < self.high <= self.level + chunk.n
        self.level += chunk.n
        if crossed:
            self.wake(self)
        return True

    def _new_generic(self) -> GenericBuilder | UntypedBuilder:
        return GenericBuilder(self.schema) if self.schema is not None else UntypedBuilder()

    def put_nowait(self, row: Row, *, unseen: bool = False) -> bool:
        """Buffer a row given as a tuple in the kind's column order, if there is room; True on
        success. Wakes rotation on the high mark. ``unseen``: a row the symbol's signal engine
        is not given (a backfilled trade, a row restored from the journal)."""
        if self.level >= self.capacity:
            return False
        shape = self._shape_of(row)
        if shape == "_trade":
            tb = self._trade
            if tb is None or tb.n >= self.chunk_rows:
                tb = self._roll("_trade", TradeBuilder())
            tb.add_row(row)
            if unseen and self.tap is not None:
                self.tap.unseen(tb, tb.n - 1)
        elif shape == "_quote":
            kb = self._quote
            if kb is None or kb.n >= self.chunk_rows:
                kb = self._roll("_quote", QuoteBuilder())
            kb.add_row(row)
        elif shape == "_depth":
            db = self._depth
            if db is None or db.n >= self.chunk_rows:
                db = self._roll("_depth", DepthBuilder(self.depth_levels))
            db.add_row(row)
        else:
            b = self._generic
            if b is None or b.n >= self.chunk_rows:
                b = self._roll("_generic", self._new_generic())
            b.append(row)
        self._admitted()
        return True

    def put_columns_nowait(self, columns: Sequence[list[Any]], n: int) -> bool:
        """Buffer ``n`` rows given as columns (lists, in the kind's column order) at once, if
        the lane has room for all of them and they are rows of the generic shape whose every
        value its column takes as it is (``GenericBuilder.add_columns``), all in the open chunk:
        True. Else False, nothing taken: ``put_nowait`` (or ``put``) them one by one instead.
        The rows and chunks are those ``put_nowait`` of each row would make."""
        if not n:
            return True
        level = self.level
        if level + n > self.capacity or self.kind in _SHAPED_KINDS:
            return False
        b = self._generic
        if b is None or b.n >= self.chunk_rows:
            b = self._roll("_generic", self._new_generic())
        if n > self.chunk_rows - b.n or not b.add_columns(columns, n):
            return False  # rows that end a chunk (rare), or that its columns refuse
        self.level = level + n
        if self.first_seq < 0:  # journal checkpoint
            self.first_seq = self.cursor[0]
        if level < self.high <= level + n:
            self.wake(self)
        return True

    def _shape_of(self, row: Row) -> str:
        """Which builder a tuple row joins: the same columns as the hot path's for ``prices``
        and ``orderbook`` (so a file keeps arrival order within a shape, and a book row costs
        its levels, not a generic column each), else the generic one."""
        if self.kind == PRICES and len(row) in TRADE_WIDTHS:
            return "_trade"
        if self.kind == ORDERBOOK and len(row) == 8 + 4 * self.depth_levels:
            return "_depth"
        if self.kind == QUOTES and len(row) == 9:
            return "_quote"
        return "_generic"

    async def wait_for_room(self) -> None:
        """Authoritative path: the lane is full; wake rotation and wait until it has room."""
        self.stats.blocked += 1
        self.wake(self)
        while self.level >= self.capacity:
            if self._room.is_set():
                self._room = trio.Event()
            await self._room.wait()

    async def put(self, row: Row, *, unseen: bool = False) -> None:
        """Authoritative path: never drops. At capacity, wake rotation and wait for room."""
        if self.put_nowait(row, unseen=unseen):
            return
        seq = self.cursor[0]  # journal checkpoint: the frame's seq, before we wait
        try:
            await self.wait_for_room()
        except BaseException:
            # Cancelled while waiting (a stop, a reconnect): the row was already accepted
            # upstream (e.g. its agg_id counted as seen), so it must not vanish. The spill buffer
            # goes to the dead letter with the next flush, or with the final one.
            self._spill_row(row)
            self.hold(seq)
            self.wake(self)
            raise
        if not self.put_nowait(row, unseen=unseen):  # pragma: no cover - room was just made
            self._spill_row(row)
        self.hold(seq)

    def keep(self, row: Row) -> None:
        """Authoritative, when waiting is no longer possible (the rest of a message whose
        ``put`` was cancelled): buffered if there is room, else spilled (to the dead letter
        with the next flush, or the final one), as ``put`` keeps its row when cancelled."""
        if not self.put_nowait(row):
            self._spill_row(row)
            self.wake(self)

    def offer(self, row: Row) -> None:
        """Preview path: never blocks. At capacity the row spills (to the dead letter, via
        rotation); if the spill buffer is full too, it is counted as dropped."""
        if self.put_nowait(row):
            return
        if self._spilled < self.capacity:
            first = not self._spilled
            self._spill_row(row)
            if first:
                self.wake(self)
        else:
            self.stats.dropped += 1

    def _spill_row(self, row: Row) -> None:
        spills = self._spills
        if not spills or spills[-1].n >= self.chunk_rows:
            spills.append(self._new_generic())
        spills[-1].append(row)
        self._spilled += 1
        self.stats.spilled += 1

    @property
    def spill(self) -> Batch:
        """The rows spilled so far (a view; ``take_spill`` takes them)."""
        return self.batch(list(self._spills))

    # -- rotation's side -------------------------------------------------------------------------

    def drain(self) -> Batch:
        """Take what is buffered now: every sealed chunk, then the open builders. A signal
        engine reading this lane's depth rows reads them first."""
        if self.tap is not None:
            self.tap.flush()
        n = self.level
        chunks: list[Builder] = []
        receive = self._recv.receive_nowait
        while True:
            try:
                chunks.append(receive())
            except trio.WouldBlock:
                break
        for name in _OPEN:
            b = getattr(self, name)
            if b is not None and b.n:
                chunks.append(b)
                setattr(self, name, None)
        batch = self.batch(chunks)
        self.level -= batch.n
        self._drained += batch.n
        if n > self.stats.peak:
            self.stats.peak = n
        self._room.set()
        return batch

    def hold(self, seq: int) -> None:
        """Journal checkpoint: a row from the frame with journal seq ``seq`` is pending."""
        if self.first_seq < 0 or seq < self.first_seq:
            self.first_seq = seq

    def drained(self) -> None:
        """Journal checkpoint, after a drain (whose batch now holds ``first_seq`` in
        rotation): nothing pending -> the lane holds nothing; else it keeps it (conservative)."""
        if not self.pending:
            self.first_seq = -1

    def take_spill(self) -> Batch:
        spilled = self.batch(self._spills)
        self._spills = []
        self._spilled = 0
        return spilled

    @property
    def pending_spill(self) -> int:
        return self._spilled

    @property
    def pending(self) -> int:
        return self.level + self.pending_spill

    @property
    def buffered(self) -> int:
        """Rows buffered right now (sealed chunks plus open builders)."""
        return self.level

    def batch(self, chunks: Sequence[Builder]) -> Batch:
        return Batch(chunks, self.frame_schema, self.symbol)


class Lanes:
    """All lanes of one venue, created on first use per (kind, symbol). A process harvesting
    several venues holds one ``Lanes`` per venue (rotation drains each lane into its venue)."""

    def __init__(self, watermarks: dict[str, tuple[int, int]], wake: WakeFn,
                 schema_of: Callable[[str], Schema] | None = None, depth_levels: int = 20,
                 venue: str = DEFAULT_VENUE) -> None:
        self.venue = venue
        self._watermarks = watermarks
        self._wake = wake
        self._schema_of = schema_of
        self._depth_levels = depth_levels
        self._lanes: dict[tuple[str, str], Lane] = {}
        # the authoritative lanes, in creation order: the journal's checkpoint reads them
        # several times a second, and at 500 symbols most lanes are derived ones
        self._authoritative: list[Lane] = []
        self.cursor = [0]  # journal checkpoint: the journal writes the seq here

    def set_wake(self, wake: WakeFn) -> None:
        self._wake = wake
        for lane in self._lanes.values():
            lane.wake = wake

    def get(self, kind: str, symbol: str) -> Lane:
        lane = self._lanes.get((kind, symbol))
        if lane is None:
            high, emergency = self._watermarks[kind]
            schema = self._schema_of(kind) if self._schema_of is not None else None
            lane = Lane(kind, symbol, high, emergency, self._wake, schema, self._depth_levels,
                        cursor=self.cursor, venue=self.venue)
            self._lanes[(kind, symbol)] = lane
            if lane.authoritative:
                self._authoritative.append(lane)
        return lane

    def offer(self, kind: str, row: Row) -> None:
        """Preview emit: ``row[1]`` is the symbol for every preview schema."""
        self.get(kind, row[1]).offer(row)

    def __iter__(self) -> Iterator[Lane]:
        return iter(list(self._lanes.values()))

    def __len__(self) -> int:
        return len(self._lanes)

    def held_seqs(self) -> list[int]:
        """Journal checkpoint: the seq each authoritative lane holds (-1: none)."""
        return [lane.first_seq for lane in self._authoritative]

    def total_pending(self) -> int:
        return sum(lane.pending for lane in self._lanes.values())

