"""Restart replay: before connecting, the segments an earlier run left behind go through the same
decode/route path (``Router.handle``) into the lanes, and so into Parquet, exactly once with
respect to what is already on disk.

Owns the replay gate (continuity as live, then a check against the keys on disk: ``prices`` by
agg id, ``orderbook`` by (source, update id), ``gaps`` by key), the receive clock of replayed
frames (their journaled time, so rows are the ones the live run made), the replay's hold on the
checkpoint (its position), the agg-id ranges still missing after it (backfilled unless on disk)
and the restart gap of every stream that was delivering (from its last journaled frame to its
first new one, reason ``restart``). A crash during replay is harmless: the segments stay until
their rows are durable, and a second replay skips what the first one wrote.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import msgspec
import trio

from ..binance.decode import AggTrade
from ..kinds import GAPS, PRICES, Row
from ..repair.continuity import DUPLICATE, IMPLAUSIBLE, Break
from ..storage.partitions import utc_date
from . import format as fmt
from .diskkeys import DiskKeys, read_keys

if TYPE_CHECKING:
    from ..pipeline.lanes import Lanes
    from ..pipeline.router import Router
    from ..repair.coordinator import Repair
    from ..storage.backends import Store

log = logging.getLogger("trio_harvest.journal.replay")

RESTART = "restart"
WINDOW_MARGIN_S = 120.0  # files written this long before the window's first frame are read too

_row = msgspec.json.Decoder(dict[str, Any])


@dataclass(slots=True)
class ReplayStats:
    segments: int = 0
    records: int = 0
    frames: int = 0
    rows: int = 0  # off-stream rows (gaps, backfilled trades) put back
    skipped: int = 0  # already on disk
    first_ms: int = 0  # recv_ms of the first replayed frame
    last_ms: dict[str, int] = field(default_factory=dict)  # stream -> last journaled recv_ms


class ReplayGate:
    """The router's gate during replay: continuity as live, and nothing that is on disk."""

    def __init__(self, repair: Repair, keys: DiskKeys, depth_source: str,
                 stats: ReplayStats) -> None:
        self.repair = repair
        self.keys = keys
        self.depth_source = depth_source
        self.stats = stats
        self.recv_ms = 0
        self.resuming: dict[str, Any] = {}

    def trade(self, t: AggTrade, recv_ms: int) -> bool:
        self.stats.last_ms[f"{t.symbol.lower()}@aggTrade"] = recv_ms
        verdict = self.repair.trackers[t.symbol].admit(t.agg_id, t.trade_ms)
        if verdict in (DUPLICATE, IMPLAUSIBLE):
            return False
        if (t.symbol, t.agg_id) in self.keys.prices:
            self.stats.skipped += 1
            return False
        return True

    @property
    def released(self) -> list[Row]:
        """Rows the repair gate held and has just confirmed (the router writes them first),
        less those already on disk: a stream's first message is held until the next confirms
        it, so a replay's first rows come this way too."""
        rows = self.repair.released
        if not rows:
            return rows
        keep: list[Row] = []
        for r in rows:
            on_disk = ((r[3], r[4]) in self.keys.prices if len(r) == 10
                       else (r[3], r[4], r[5]) in self.keys.orderbook)
            if on_disk:
                self.stats.skipped += 1
            else:
                keep.append(r)
        self.repair.released = keep  # judged once: asking again skips nothing twice
        return keep

    @released.setter
    def released(self, rows: list[Row]) -> None:
        self.repair.released = rows

    def book_fast(self, stream: str, update_id: int) -> bool | None:
        """Never the live hot path: every replayed book message is checked against the disk."""
        return None

    def book(self, stream: str, update_id: int, row: Row | None = None) -> bool:
        self.stats.last_ms[stream] = self.recv_ms
        if not self.repair.book(stream, update_id, row):
            return False
        symbol = stream.split("@", 1)[0].upper()
        source = "bookTicker" if stream.endswith("@bookTicker") else self.depth_source
        if (symbol, source, update_id) in self.keys.orderbook:
            self.stats.skipped += 1
            return False
        return True

    def resumed(self, stream: str, recv_ms: int) -> None:  # pragma: no cover - resuming is empty
        pass


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
                                             self.symbols, since)
        router = self.router
        gate = ReplayGate(self.repair, keys, router.depth_source, self.stats)
        saved_gate, saved_clock = router.gate, router.wall_ms
        router.gate = cast("Repair", gate)
        router.wall_ms = lambda: gate.recv_ms
        started = time.monotonic()
        try:
            for first, path, _last in segs:
                try:
                    records = await trio.to_thread.run_sync(fmt.read_segment, path)
                except OSError as exc:  # kept (not deleted) for a person to look at
                    log.error("journal: cannot read segment %s (%s); skipped", path, exc)
                    continue
                self.stats.segments += 1
                for rec in records:
                    await self._one(rec, gate, keys)
                self.position = max(self.position, first)
        finally:
            router.gate, router.wall_ms = saved_gate, saved_clock
        self._after(keys)
        self.position = -1
        st = self.stats
        log.info("journal: replayed %d segments (%d frames, %d off-stream rows; %d rows already "
                 "on disk skipped) in %.1fs", st.segments, st.frames, st.rows, st.skipped,
                 time.monotonic() - started)
        return st

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
            if not self._admit_row(kind, row, keys):
                self.stats.skipped += 1
                return
            self.stats.rows += 1
            await self.lanes.get(kind, symbol).put(row)

    def _admit_row(self, kind: str, row: Row, keys: DiskKeys) -> bool:
        if kind == GAPS:
            key = (row[1], row[2], row[3], row[5])
            if key in keys.gaps:
                return False
            keys.gaps.add(key)  # the same gap row twice in the journal: once
            return True
        if kind == PRICES:
            symbol, agg_id = row[3], row[4]
            if (symbol, agg_id) in keys.prices:
                return False
            tracker = self.repair.trackers.get(str(symbol))
            if tracker is not None:
                tracker.fill(int(agg_id))
            keys.prices.add((symbol, agg_id))
            return True
        return False  # no other kind is journaled as a row

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
        symbol = stream.split("@", 1)[0].upper()
        if symbol in repair.trackers and stream not in repair.resuming:
            repair.resuming[stream] = Interruption(symbol, ms, RESTART,
                                                   "harvester restarted (journal replayed)")
            n += 1
    return n
