"""Restart replay: before connecting, the segments an earlier run left behind go through the same
decode/route path (``Router.handle``) into the lanes, and so into Parquet, exactly once with
respect to what is already on disk.

Owns the replay gate (continuity as live, then a check against the keys on disk and the keys the
replay itself has admitted: ``prices`` by agg id, whether from a frame or a backfilled REST row,
``orderbook`` by (source, update id), ``quotes`` by update id, ``book_updates`` by (update id,
snapshot or not, side, price), ``gaps`` by all but their partition time; the rows of diff books
are asked about one by one, ``ReplayGate.fresh``), the symbols in the journal that today's
configuration no longer names (written all the same, their streams closed with a ``restart`` gap),
the receive clock of replayed frames (their journaled time, so rows are the ones the live run
made), the replay's hold on the checkpoint (its position), the agg-id ranges still missing after
it (backfilled unless on disk) and the restart gap of every stream that was delivering (from its
last journaled frame to its first new one, reason ``restart``). Diff books (``--book diff``) get
their journaled REST snapshots and states back at the same points of the frame sequence, so the
same book code writes the same ``book_updates`` and ``orderbook`` rows as live. A crash during
replay is harmless: the segments stay until their rows are durable, and a second replay skips what
the first one wrote.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import msgspec
import trio

from ..gaps import AGG_ID_BREAK, RESTART, UNFILLED, agg_detail, gap_row
from ..kinds import (
    BOOK_UPDATES,
    DERIVATIVES,
    GAPS,
    LIQUIDATIONS,
    ORDERBOOK,
    PRICES,
    PRICES_SCHEMA,
    QUOTES_SCHEMA,
    Row,
)
from ..repair.continuity import DUPLICATE, IMPLAUSIBLE, AggIdTracker, BookTracker, Break
from ..storage.partitions import utc_date
from ..venues.base import Trade
from . import format as fmt
from .diskkeys import DiskKeys, read_keys

TRADE_WIDTH = len(PRICES_SCHEMA.columns)  # held rows are told apart by their width
QUOTE_WIDTH = len(QUOTES_SCHEMA.columns)

if TYPE_CHECKING:
    from ..pipeline.lanes import Lanes
    from ..pipeline.router import Router
    from ..repair.coordinator import Repair
    from ..storage.backends import Store

log = logging.getLogger("trio_harvest.journal.replay")

WINDOW_MARGIN_S = 120.0  # files written this long before the window's first frame are read too

NOT_HARVESTED = "symbol not in today's configuration"

_row = msgspec.json.Decoder(dict[str, Any])


class _Stream(msgspec.Struct):
    stream: str = ""


_stream = msgspec.json.Decoder(_Stream)


def state_key(kind: str, row: Row) -> tuple[object, ...]:
    """A ``derivatives`` row's identity (symbol, source, time) or a ``liquidations`` row's
    (symbol, time, side, price, qty): the columns ``diskkeys.COLUMNS`` reads from disk."""
    if kind == DERIVATIVES:
        return (row[3], row[4], row[0])
    return (row[3], row[0], row[4], row[5], row[6])


def gap_key(row: Row) -> tuple[object, ...]:
    """A gap row's identity: all but its partition time (two id breaks may share a start)."""
    return (row[1], row[2], row[3], row[4], row[5], row[6])


def read_with_symbols(path: Path, stream_symbol: Callable[[str], str]
                      ) -> tuple[list[fmt.Record], set[str]]:
    """A segment's records and the symbols they carry (blocking: run it in a thread);
    ``stream_symbol`` is the venue's reading of a stream name."""
    records = fmt.read_segment(path)
    symbols: set[str] = set()
    for rec in records:
        try:
            if rec.type == fmt.FRAME:
                symbol = stream_symbol(_stream.decode(rec.payload).stream)
                if symbol:
                    symbols.add(symbol)
            elif rec.type == fmt.ROW:
                doc = _row.decode(rec.payload)
                row = doc["row"]
                symbols.add(str(row[1] if doc["kind"] == GAPS else row[3]))
        except (msgspec.DecodeError, KeyError, IndexError, TypeError):
            continue  # routing reports it (a bad frame is never admitted)
    return records, symbols


def merge_keys(keys: DiskKeys, more: DiskKeys) -> None:
    keys.prices |= more.prices
    keys.orderbook |= more.orderbook
    keys.quotes |= more.quotes
    keys.gaps |= more.gaps
    keys.book_updates |= more.book_updates
    keys.loaded |= more.loaded
    for symbol, (agg_id, ts_ms) in more.last_trade.items():
        keys.note_trade(symbol, agg_id, ts_ms)


@dataclass(slots=True)
class ReplayStats:
    segments: int = 0
    records: int = 0
    frames: int = 0
    rows: int = 0  # off-stream rows (gaps, backfilled trades) put back
    skipped: int = 0  # already on disk
    book_records: int = 0  # diff books' snapshots and states handed back
    book_states: int = 0  # of which states a book was rebuilt from (its snapshot was gone)
    first_ms: int = 0  # recv_ms of the first replayed frame
    last_ms: dict[str, int] = field(default_factory=dict)  # stream -> last journaled recv_ms
    # symbol -> recv_ms of its last journaled ``derivatives`` row made off the stream (a polled
    # open interest): where the poll's hole across the crash starts
    polled_ms: dict[str, int] = field(default_factory=dict)


class ReplayGate:
    """The router's gate during replay: continuity as live, and nothing that is on disk."""

    def __init__(self, repair: Repair, keys: DiskKeys, depth_source: str,
                 stats: ReplayStats) -> None:
        self.repair = repair
        self.venue = repair.venue
        self.keys = keys
        self.depth_source = depth_source
        self.stats = stats
        self.recv_ms = 0
        self.resuming: dict[str, Any] = {}
        self.released_at = -1  # the replay's position holds the checkpoint
        self._judged = 0  # rows at the head of ``released`` already checked against the disk
        # symbols outside today's configuration: their own continuity, no outlier hold
        self.foreign: dict[str, AggIdTracker] = {}
        self.foreign_books: dict[str, BookTracker] = {}
        self.depth_streams: dict[str, str] = {}  # symbol -> its diff stream (restart gaps)

    def tracker(self, symbol: str) -> AggIdTracker | None:
        return self.repair.trackers.get(symbol) or self.foreign.get(symbol)

    def trade(self, t: Trade, recv_ms: int) -> bool:
        self.stats.last_ms[self.venue.trade_stream(t.symbol)] = recv_ms
        tracker = self.tracker(t.symbol)
        if tracker is None:
            return False
        verdict = tracker.admit(t.agg_id, t.trade_ms)
        if verdict in (DUPLICATE, IMPLAUSIBLE):
            return False
        key = (t.symbol, t.agg_id)
        if key in self.keys.prices:
            self.stats.skipped += 1
            return False
        self.keys.prices.add(key)  # a replayed REST row of the same trade is skipped
        return True

    @property
    def released(self) -> list[Row]:
        """Rows the repair gate held and has just confirmed (the router writes them first),
        less those already on disk: a stream's first message is held until the next confirms
        it, so a replay's first rows come this way too."""
        rows = self.repair.released
        if len(rows) <= self._judged:
            return rows
        keep: list[Row] = rows[:self._judged]
        for r in rows[self._judged:]:
            width = len(r)
            key = (r[3], r[4]) if width in (TRADE_WIDTH, QUOTE_WIDTH) else (r[3], r[4], r[5])
            seen = (self.keys.prices if width == TRADE_WIDTH else self.keys.quotes
                    if width == QUOTE_WIDTH else self.keys.orderbook)
            if key in seen:
                self.stats.skipped += 1
            else:
                seen.add(key)
                keep.append(r)
        rows[:] = keep  # judged once: asking again judges only rows released since
        self._judged = len(rows)
        return rows

    @released.setter
    def released(self, rows: list[Row]) -> None:
        self.repair.released = rows
        self._judged = 0

    def book_fast(self, stream: str, update_id: int) -> bool | None:
        """Never the live hot path: every replayed book message is checked against the disk."""
        return None

    def book(self, stream: str, update_id: int, row: Row | None = None) -> bool:
        self.stats.last_ms[stream] = self.recv_ms
        venue = self.venue
        symbol = venue.stream_symbol(stream)
        if symbol in self.foreign:
            books = self.foreign_books.get(stream)
            if books is None:
                books = self.foreign_books[stream] = BookTracker()
            if not books.admit(update_id):
                return False
        elif not self.repair.book(stream, update_id, row):
            return False
        key: tuple[object, ...]
        if venue.is_quote_stream(stream):
            seen, key = self.keys.quotes, (symbol, update_id)
        else:
            seen, key = self.keys.orderbook, (symbol, self.depth_source, update_id)
        if key in seen:
            self.stats.skipped += 1
            return False
        seen.add(key)
        return True

    def admit_row(self, kind: str, row: Row) -> bool:
        """A replayed ``derivatives`` or ``liquidations`` row: once, whatever is on disk."""
        if (utc_date(int(row[0])), str(row[3]), kind) not in self.keys.loaded:
            self.keys.cover(utc_date(int(row[0])), str(row[3]), kind)  # blocking: rare
        key = state_key(kind, row)
        seen = self.keys.of(kind)
        if key in seen:
            self.stats.skipped += 1
            return False
        seen.add(key)
        return True

    def resumed(self, stream: str, recv_ms: int) -> None:  # pragma: no cover - resuming is empty
        pass

    def fresh(self, kind: str, row: Row) -> bool:
        """A diff book's row (``orderbook``, ``book_updates`` or a ``gaps`` row of a sequence
        break): True to write it, False if it is on disk or the replay wrote it already."""
        key: tuple[object, ...]
        if kind == ORDERBOOK:
            symbol = str(row[3])
            self.stats.last_ms[self.depth_streams.get(symbol, symbol)] = int(row[2])
            seen, key = self.keys.orderbook, (row[3], row[4], row[5])
        elif kind == BOOK_UPDATES:
            seen, key = self.keys.book_updates, (row[3], row[5], row[10], row[7], row[8])
        else:
            seen, key = self.keys.gaps, gap_key(row)
        if key in seen:
            self.stats.skipped += 1
            return False
        seen.add(key)
        return True


class Replayer:
    """Replays ``segments`` (paths, oldest first) into ``router``; ``position`` is its hold on
    the journal checkpoint while it runs (-1 when done)."""

    def __init__(self, router: Router, lanes: Lanes, repair: Repair, cursor: list[int], *,
                 store: Store, deadletter_dir: Path, symbols: tuple[str, ...]) -> None:
        self.router = router
        self.lanes = lanes
        self.repair = repair
        self.cursor = cursor
        self.store = store  # the dataset, local or a bucket: what is already written
        self.deadletter_dir = deadletter_dir
        self.symbols = symbols
        self.position = -1
        self.stats = ReplayStats()

    async def run(self, segments: Iterable[tuple[int, Path, int]], first_ns: int) -> ReplayStats:
        """``segments``: (first seq, path, last seq). Returns what was replayed."""
        segs = sorted(segments)
        if not segs:
            return self.stats
        self.position = segs[0][0]
        log.info("journal: replaying %d segments left by an earlier run", len(segs))
        since = first_ns / 1e9 - WINDOW_MARGIN_S if first_ns else 0.0
        keys = await trio.to_thread.run_sync(read_keys, self.store, self.deadletter_dir,
                                             self.symbols, since, None, self.lanes.venue)
        router = self.router
        gate = ReplayGate(self.repair, keys, router.depth_source, self.stats)
        saved_gate, saved_clock = router.gate, router.wall_ms
        router.gate = cast("Repair", gate)
        router.wall_ms = lambda: gate.recv_ms
        books = router.diff_books
        if books is not None:
            gate.depth_streams = dict(books.streams)
            books.admit = gate.fresh
        started = time.monotonic()
        try:
            for first, path, _last in segs:
                try:
                    records, symbols = await trio.to_thread.run_sync(
                        read_with_symbols, path, self.repair.venue.stream_symbol)
                except OSError as exc:  # kept (not deleted) for a person to look at
                    log.error("journal: cannot read segment %s (%s); skipped", path, exc)
                    continue
                await self._adopt(symbols, gate, since)
                self.stats.segments += 1
                for rec in records:
                    await self._one(rec, gate, keys)
                self.position = max(self.position, first)
            if gate.foreign:  # their streams end here: frames the time guard holds go now
                await router.release_held(gate.foreign)
                if books is not None:  # their books were the replay's only
                    for symbol in gate.foreign:
                        books.remove_symbol(symbol)
        finally:
            router.gate, router.wall_ms = saved_gate, saved_clock
            if books is not None:
                books.admit = None
        self._after(keys)
        await self._close_foreign(gate)
        self.position = -1
        st = self.stats
        log.info("journal: replayed %d segments (%d frames, %d off-stream rows, %d book "
                 "snapshots and states of which %d states; %d rows already on disk skipped) in "
                 "%.1fs", st.segments, st.frames, st.rows, st.book_records, st.book_states,
                 st.skipped, time.monotonic() - started)
        return st

    async def _adopt(self, symbols: set[str], gate: ReplayGate, since: float) -> None:
        """Symbols in the journal that today's configuration does not name (a restart with
        fewer symbols, a new shard split): their rows are still written, once. The keys of
        what is on disk are read for them too."""
        new = sorted(s for s in symbols if s not in self.repair.trackers and s not in gate.foreign)
        if not new:
            return
        log.warning("journal: replaying rows of %s, not in today's symbols: written all the "
                    "same (they were received)", ", ".join(new))
        more = await trio.to_thread.run_sync(read_keys, self.store, self.deadletter_dir,
                                             tuple(new), since, None, self.lanes.venue)
        merge_keys(gate.keys, more)
        books = self.router.diff_books
        for symbol in new:
            gate.foreign[symbol] = AggIdTracker()
            self.router.adopt(symbol)
            if books is not None:  # its local book too, for the replay only
                books.add_symbol(symbol)
                gate.depth_streams[symbol] = books.streams[symbol]

    async def _close_foreign(self, gate: ReplayGate) -> None:
        """A symbol no longer harvested: agg ids the journal misses and the disk lacks are
        recorded as unfilled (no backfill runs for it), and each of its streams gets a gap row
        from its last journaled frame on (reason ``restart``): it is not followed any more."""
        for symbol, tracker in gate.foreign.items():
            stream = self.repair.venue.trade_stream(symbol)
            for lo, hi in tracker.missing:
                if hi - lo < 1_000_000 and all((symbol, i) in gate.keys.prices
                                               for i in range(lo, hi + 1)):
                    continue
                detail = agg_detail(lo, hi, UNFILLED, NOT_HARVESTED)
                await self._put_gap(gate, gap_row(symbol, stream, tracker.last_ms,
                                                  tracker.last_ms, AGG_ID_BREAK, detail))
            tracker.missing.clear()
            for name, ms in self.stats.last_ms.items():
                if self.repair.venue.stream_symbol(name) == symbol:
                    await self._put_gap(gate, gap_row(symbol, name, ms, ms, RESTART,
                                                      f"harvester restarted; {NOT_HARVESTED}"))

    async def _put_gap(self, gate: ReplayGate, row: Row) -> None:
        key = gap_key(row)
        if key not in gate.keys.gaps:  # a second replay (after a crash) writes it once
            gate.keys.gaps.add(key)
            self.stats.rows += 1
            await self.lanes.get(GAPS, str(row[1])).put(row)

    async def _one(self, rec: fmt.Record, gate: ReplayGate, keys: DiskKeys) -> None:
        self.stats.records += 1
        self.position = rec.seq
        if rec.type == fmt.FRAME:
            self.cursor[0] = rec.seq
            gate.recv_ms = rec.recv_ns // 1_000_000
            if not self.stats.frames:
                self.stats.first_ms = gate.recv_ms
            self.stats.frames += 1
            await self.router.handle(rec.payload)
        elif rec.type == fmt.ROW:
            doc = _row.decode(rec.payload)
            kind, row = str(doc["kind"]), tuple(doc["row"])
            self.cursor[0] = rec.seq
            symbol = str(row[1] if kind == GAPS else row[3])
            if (utc_date(int(row[0])), symbol, kind) not in keys.loaded:  # e.g. backfilled
                await trio.to_thread.run_sync(keys.cover, utc_date(int(row[0])), symbol, kind)
            if kind in (DERIVATIVES, LIQUIDATIONS):  # polled over REST: as live, features too
                self.stats.rows += 1
                if kind == DERIVATIVES:
                    polled = self.stats.polled_ms
                    polled[symbol] = max(polled.get(symbol, 0), int(row[2]))
                waiting = self.router.put_state(kind, row)  # the gate skips what is on disk
                if waiting is not None:
                    await waiting
                return
            if not self._admit_row(kind, row, gate):
                self.stats.skipped += 1
                return
            self.stats.rows += 1
            await self.lanes.get(kind, symbol).put(row, unseen=True)  # as when it was written
        elif rec.type in (fmt.SNAPSHOT, fmt.BOOK_STATE):
            self.cursor[0] = rec.seq  # rows of events a state lets through come from here
            if await book_record(self.router, self.lanes.venue, rec):
                self.stats.book_records += 1
                self.stats.book_states += rec.type == fmt.BOOK_STATE

    def _admit_row(self, kind: str, row: Row, gate: ReplayGate) -> bool:
        keys = gate.keys
        if kind == GAPS:
            key = gap_key(row)
            if key in keys.gaps:
                return False
            keys.gaps.add(key)  # the same gap row twice in the journal: once
            return True
        if kind == PRICES:
            symbol, agg_id = row[3], row[4]
            if (symbol, agg_id) in keys.prices:
                return False
            tracker = gate.tracker(str(symbol))
            if tracker is not None:
                tracker.fill(int(agg_id))
            keys.prices.add((symbol, agg_id))
            return True
        return False  # no other kind is journaled as a row (derivatives: ``_one``)

    def _after(self, keys: DiskKeys) -> None:
        """Missing agg-id ranges: forget the ids already on disk, backfill the rest. A later run
        may have written trades past the replayed ones (it crashed after the journal's window):
        continuity goes on from the last of them, as after any restart."""
        for symbol, tracker in self.repair.trackers.items():
            last = keys.last_trade.get(symbol)
            if last is not None and tracker.last_id is not None and last[0] > tracker.last_id:
                tracker.last_id, tracker.last_ms = last
                tracker.resuming = True
            for lo, hi in list(tracker.missing):
                if hi - lo < 1_000_000 and all((symbol, i) in keys.prices
                                               for i in range(lo, hi + 1)):
                    tracker.close(lo, hi)
                    continue
                self.repair.backfill.request(symbol, Break(lo, hi, tracker.last_ms,
                                                           tracker.last_ms))


async def book_record(router: Router, venue: str, rec: fmt.Record) -> bool:
    """A journaled snapshot or state of a diff book, handed back to it (restart replay and
    the archive's ``replay`` alike); False when there is no such book of ``venue``."""
    books = router.diff_books
    if books is None:
        return False
    try:
        doc = _row.decode(rec.payload)
        symbol = str(doc["symbol"])
        if doc.get("venue", venue) != venue:
            return False
        if rec.type == fmt.SNAPSHOT:
            return books.offer_snapshot(symbol, doc["body"])
        return await router.restore_book(symbol, doc["state"])
    except (msgspec.DecodeError, KeyError, TypeError) as exc:
        log.warning("journal: a book record that cannot be read (%s); skipped", exc)
        return False


def reset_continuity(repair: Repair) -> None:
    """``--sim`` after a replay: the in-process simulator is a new exchange each run."""
    from ..repair.continuity import AggIdTracker

    for symbol in repair.trackers:
        repair.trackers[symbol] = AggIdTracker()
    repair.books.clear()


def mark_restart(repair: Repair, last_ms: Mapping[str, int]) -> int:
    """Every stream that was delivering before the crash is interrupted from its last journaled
    frame until its first new one: a ``gaps`` row (reason ``restart``) when it resumes."""
    from ..repair.coordinator import Interruption

    n = 0
    for stream, ms in last_ms.items():
        symbol = repair.venue.stream_symbol(stream)
        if symbol in repair.trackers and stream not in repair.resuming:
            repair.resuming[stream] = Interruption(symbol, ms, RESTART,
                                                   "harvester restarted (journal replayed)")
            n += 1
    return n
