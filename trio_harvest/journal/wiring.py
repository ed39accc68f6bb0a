"""How the journal plugs into a harvester: building it from the config, the checkpoint over the
lanes, batches in flight, connections mid-frame and replay, the gap rows of an unprotected
interval, and flushing the lanes that hold the checkpoint back when the journal grows.

Owns those few functions, so ``app.py`` only calls them. Never routes, writes Parquet or reads
segments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..gaps import gap_row
from ..kinds import Row
from . import format as fmt
from .checkpoint import oldest_not_durable
from .journal import Journal
from .settings import journal_path

if TYPE_CHECKING:
    from ..config import Config
    from ..ingest.connection import Connection
    from ..pipeline.lanes import Lanes
    from ..pipeline.rotation import Rotation
    from ..pipeline.router import Router
    from ..repair.coordinator import Repair
    from ..storage.backends import Store
    from .probe import DiskProbe
    from .replay import Replayer, ReplayStats

JOURNAL = "journal"  # the gap reason of an interval the journal did not protect
# A row the time guard or the repair gate holds (a stream's first frame, an outlier id) keeps
# its frame's segment this long at most: usually the next frame decides within milliseconds;
# a stream that stays silent must not pin the journal until it fills (a held trade lost to a
# crash after that is below the next one, so backfill fetches it; a book row is superseded).
GATE_HOLD_MAX_MS = 120_000


def attach(config: Config, lanes: Lanes, rotation: Rotation, router: Router, repair: Repair,
           connections: Callable[[], Iterable[Connection]],
           clock_ns: Callable[[], int] | None, *,
           probe_data_dir: bool, store: Store) -> tuple[Journal | None, Replayer, DiskProbe]:
    """The journal (None when ``journal`` is off), the restart replayer and the disk probe of
    one harvester, wired to its lanes, rotation, router and repair gate; ``store`` is its
    dataset (local or a bucket), where the replayer looks up what is already written."""
    from .probe import DiskProbe
    from .replay import Replayer

    replayer = Replayer(router, lanes, repair, lanes.cursor, store=store,
                        deadletter_dir=config.deadletter_path, symbols=config.symbols)
    journal: Journal | None = None
    if config.journal:
        j = journal = build_journal(config, lanes, clock_ns)
        def held() -> list[int]:
            since = j.clock_ns() // 1_000_000 - GATE_HOLD_MAX_MS
            return [*router.held_seqs(since), *repair.held_seqs(since)]

        from ..repair.booksync import DiffBooks

        books = router.diff_books
        holds: Callable[[int], list[int]] | None = None
        if isinstance(books, DiffBooks):
            books.bases.journal = BookRecords(j, lanes.venue)  # its snapshots and states
            books.bases.cursor = lanes.cursor
            holds = books.journal_holds
        j.checkpoint = lambda: checkpoint(j, lanes, rotation, connections(), replayer.position,
                                          held(), holds)

        def unprotected(start_ms: int, end_ms: int, why: str) -> None:
            for row in unprotected_rows(config.symbols, start_ms, end_ms, why):
                repair.gap_now(row)

        j.on_unprotected = unprotected
        j.pressure = lambda cp: relieve(lanes, rotation, j, cp)
        router.wall_ms = j.recv_ms  # recv_ms is the journaled receive time
        repair.journal_row = j.row
    # probe the disks we write: not the data dir when storage is injected (a fake disk)
    probe_dirs = (*((config.data_dir,) if probe_data_dir else ()),
                  *((journal_path(config),) if config.journal else ()))
    return journal, replayer, DiskProbe(probe_dirs, interval=config.health_interval)


def build_journal(config: Config, lanes: Lanes, clock_ns: Callable[[], int] | None) -> Journal:
    journal = Journal(
        journal_path(config), fsync_ms=config.journal_fsync_ms,
        segment_bytes=config.journal_segment_bytes, segment_s=config.journal_segment_s,
        max_bytes=config.journal_max_bytes, raw_dir=config.raw_dir,
        clock_ns=clock_ns or time.time_ns,
        compress_level=fmt.ZSTD_LEVEL if config.journal_compress else None,
        venue=lanes.venue,
    )
    journal.cursor = lanes.cursor  # one list: the journal writes the seq, lanes read it
    return journal


@dataclass(frozen=True, slots=True)
class BookRecords:
    """A diff book's view of the journal (``booksync.BookJournal``): its venue's records."""

    journal: Journal
    venue: str

    def snapshot(self, symbol: str, body: Mapping[str, Any]) -> int:
        return self.journal.book_snapshot(self.venue, symbol, body)

    def state(self, symbol: str, state: Mapping[str, Any]) -> int:
        return self.journal.book_state(self.venue, symbol, state)


def checkpoint(journal: Journal, lanes: Lanes, rotation: Rotation,
               connections: Iterable[Connection], replay_position: int,
               gates: Iterable[int] = (),
               book_holds: Callable[[int], list[int]] | None = None) -> int:
    """``gates``: seqs of frames whose rows the router's time guards or the repair gate hold
    (in no lane yet); ``book_holds``: given the checkpoint by all else, what the diff books
    need kept to be rebuilt (not once the journal closes: nothing follows to replay)."""
    cp = oldest_not_durable(
        journal.seq + 1,
        lanes.held_seqs(),
        [seq for lane, seq in rotation.held.items() if lane.authoritative],
        (rotation.lost_seq,),
        [c.journal_seq for c in connections if c.handling],
        (replay_position,),
        gates,
    )
    if book_holds is not None and not journal.closing:
        cp = oldest_not_durable(cp, book_holds(cp))
    return cp


def relieve(lanes: Lanes, rotation: Rotation, journal: Journal, cp: int) -> None:
    """The journal is past half its ``journal_max_bytes``: flush the authoritative lanes that
    hold the oldest half of it (small files beat an unprotected interval)."""
    below = cp + (journal.seq - cp) // 2 + 1
    for lane in lanes:
        if lane.authoritative and 0 <= lane.first_seq < below and lane.pending:
            rotation.wake(lane)


def unprotected_rows(symbols: Iterable[str], start_ms: int, end_ms: int, why: str) -> list[Row]:
    """One ``gaps`` row per symbol (stream ``*``) for an interval the journal did not protect."""
    return [gap_row(s, "*", start_ms, end_ms, JOURNAL, f"not journaled: {why}") for s in symbols]


async def restart(journal: Journal, replayer: Replayer, repair: Repair,
                  config: Config) -> ReplayStats | None:
    """Before connecting: replay the segments an earlier run left, then mark every stream that
    was delivering as interrupted until its first new frame (reason ``restart``). The replay's
    stats (None when there was nothing to replay): the polls' holes start from them."""
    from .replay import mark_restart, reset_continuity

    if not journal.old:
        return None
    segs = [(s.first_seq, s.path, s.last_seq) for s in journal.old]
    first_ns = min((s.first_ns for s in journal.old if s.first_ns), default=0)
    stats = await replayer.run(segs, first_ns)
    journal.replayed()  # read: the checkpoint decides when they go (a crash above keeps them)
    last_ms = dict(stats.last_ms)  # diff streams: their last replayed row
    books = replayer.router.diff_books
    if books is not None:
        if stats.frames:  # a book replay could not rebuild (a journal written before books
            # journaled their snapshots): its replayed window is a restart gap from its start
            for stream in books.streams.values():
                last_ms.setdefault(stream, stats.first_ms)
        books.restart()  # the downtime's diffs are gone: each book resyncs
    if config.sim:  # the in-process simulator is a new exchange each run
        reset_continuity(repair)
        return None
    mark_restart(repair, last_ms)
    return stats
