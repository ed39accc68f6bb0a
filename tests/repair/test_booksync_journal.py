"""What diff books tell the journal (MockClock, no disk): the snapshot is journaled where it is
handed to the hot path, so feeding the same frames and snapshots in journal order to fresh books
makes the same rows; a book journals its own state, which a fresh book restores and continues
from alike; and the seqs the checkpoint must keep (``journal_holds``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio

from tests.repair.test_booksync import LEVELS, Hook, Rig
from trio_harvest.repair import bookbases
from trio_harvest.repair.booksync import DiffBooks
from trio_harvest.venues.binance_usdm.decode import DepthUpdate
from trio_harvest.venues.binance_usdm.diffbook import LocalBook, Snapshot

Entry = tuple[int, str, Any]  # (seq, what, payload) in journal order


class Lane:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def put_nowait(self, row: tuple[Any, ...]) -> bool:
        self.rows.append(row)
        return True

    async def put(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)

    @property
    def pending(self) -> int:
        return len(self.rows)

    def hold(self, seq: int) -> None:  # the journal checkpoint: not what these tests count
        pass


class Journal:
    """Seqs as the journal hands them out: frames (``frame``) and book records alike."""

    def __init__(self, cursor: list[int]) -> None:
        self.cursor = cursor
        self.entries: list[Entry] = []

    def _next(self) -> int:
        return (self.entries[-1][0] + 1) if self.entries else 1

    def frame(self, ev: DepthUpdate, recv_ms: int) -> None:
        seq = self._next()
        self.cursor[0] = seq
        self.entries.append((seq, "frame", (ev, recv_ms)))

    def snapshot(self, symbol: str, body: Mapping[str, Any]) -> int:
        seq = self._next()
        self.entries.append((seq, "snapshot", (symbol, dict(body))))
        return seq

    def state(self, symbol: str, state: Mapping[str, Any]) -> int:
        seq = self._next()
        self.entries.append((seq, "state", (symbol, dict(state))))
        return seq


class Live:
    """A ``Rig`` whose frames and book records go to a ``Journal``; every row is kept."""

    def __init__(self, symbols: list[str]) -> None:
        self.rig = Rig(symbols)
        self.books = self.rig.books
        self.journal = Journal(self.books.bases.cursor)
        self.books.bases.journal = self.journal
        self.rig.lanes = {s: Lane() for s in symbols}  # type: ignore[misc]

    async def tick(self, skip: frozenset[str] = frozenset()) -> None:
        rig = self.rig
        rig.ex.tick += 1
        now_ms = int(trio.current_time() * 1000)
        for s in rig.symbols:
            if s in skip:
                rig.ex.lose(s)
            ev = rig.ex.event(s, now_ms)
            self.journal.frame(ev, now_ms)
            await self.books.on_depth(ev, now_ms, rig.lanes[s], rig.hooks[s])  # type: ignore[arg-type]


async def replay(entries: list[Entry], symbols: list[str]) -> tuple[dict[str, Lane], list[Any]]:
    """Fresh books fed ``entries`` as restart replay feeds them: their rows and gaps."""
    gaps: list[Any] = []

    async def put_gap(row: tuple[Any, ...]) -> None:
        gaps.append(row)

    books = DiffBooks(symbols, levels=LEVELS, put_gap=put_gap)
    lanes = {s: Lane() for s in symbols}
    hooks = {s: Hook() for s in symbols}
    for _seq, what, payload in entries:
        if what == "frame":
            ev, recv = payload
            await books.on_depth(ev, recv, lanes[ev.symbol], hooks[ev.symbol])  # type: ignore[arg-type]
        elif what == "snapshot":
            assert books.offer_snapshot(*payload)
        else:
            symbol, state = payload
            await books.restore(symbol, state, lanes[symbol], hooks[symbol])  # type: ignore[arg-type]
    return lanes, gaps


def test_a_restored_state_is_the_book_and_the_events_buffered_before_it_are_stepped_on_it(
) -> None:
    def ev(u: int, price: float, size: float) -> DepthUpdate:
        return DepthUpdate(event_ms=u, symbol="X", first_update_id=u - 9, update_id=u,
                           bids=[(price, size)], asks=[(110.0, 1.0)], trade_ms=u,
                           prev_update_id=u - 10)

    live = LocalBook("X")
    live.apply_snapshot(Snapshot(1_005, [(100.0, 1.0), (99.0, 2.0)], [(110.0, 1.0)]))
    for u, p in ((1_010, 98.0), (1_020, 101.0)):
        assert live.on_event(ev(u, p, 3.0)) == "applied"
    state = live.as_state()
    fresh = LocalBook("X")
    for u, p in ((1_010, 98.0), (1_020, 101.0), (1_030, 97.0)):  # the last one follows it
        fresh.on_event(ev(u, p, 3.0), u)
    replay = fresh.restore(state)
    assert fresh.live and fresh.top(5) == live.top(5)
    outcomes = [fresh.on_event(e, r) for e, r in replay]
    assert outcomes == ["dropped", "dropped", "applied"]
    live.on_event(ev(1_030, 97.0, 3.0))
    assert fresh.top(10) == live.top(10) and fresh.last_update_id == live.last_update_id


async def test_frames_and_journaled_snapshots_in_journal_order_make_the_same_rows(
        autojump_clock: trio.abc.Clock) -> None:
    symbols = ["AAA", "BBB"]
    live = Live(symbols)
    async with trio.open_nursery() as nursery:
        await nursery.start(live.books.run)
        for i in range(120):
            await live.tick(frozenset({"AAA"}) if i == 20 else frozenset())  # a break and resync
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    entries = live.journal.entries
    assert [e[2][0] for e in entries if e[1] == "snapshot"].count("AAA") == 2
    lanes, gaps = await replay(entries, symbols)
    for s in symbols:
        assert lanes[s].rows == live.rig.lanes[s].rows and lanes[s].rows, s
    assert gaps == live.rig.gaps and len(gaps) == 1


async def test_a_book_journals_its_state_and_the_checkpoint_keeps_its_newest_reached_base(
        autojump_clock: trio.abc.Clock) -> None:
    live = Live(["AAA"])
    books = live.books
    async with trio.open_nursery() as nursery:
        await nursery.start(books.run)
        await live.tick()
        first = live.journal.entries[-1][0]
        assert books.journal_holds(10**9) == [first]  # syncing: from its first event on
        while not books.books["AAA"].live:
            await trio.sleep(0.1)
            await live.tick()
        snap = next(e[0] for e in live.journal.entries if e[1] == "snapshot")
        assert first < snap
        top = live.journal.entries[-1][0]
        assert books.journal_holds(top) == [first]  # the sync's first event is its base
        states = [e for e in live.journal.entries if e[1] == "state"]
        assert len(states) == 1 and states[0][0] > top  # a newer base, for when it is passed
        assert books.journal_holds(states[0][0] + 1) == [states[0][0]]
        assert len([e for e in live.journal.entries if e[1] == "state"]) == 1  # not yet again
        await trio.sleep(bookbases.REBASE_MIN_S)
        await live.tick()
        assert books.journal_holds(live.journal.entries[-1][0]) == [states[0][0]]
        states = [e for e in live.journal.entries if e[1] == "state"]
        assert len(states) == 2

        # replay from the newest state: a fresh book restores it and continues as live did
        for _ in range(5):
            await live.tick()
        since = [e for e in live.journal.entries if e[0] >= states[1][0]]
        rows_after = [r for r in live.rig.lanes["AAA"].rows if r[5] > states[1][2][1][
            "last_update_id"]]
        lanes, gaps = await replay(since, ["AAA"])
        assert lanes["AAA"].rows == rows_after and len(rows_after) == 5 and not gaps

        # a break: the book syncs again, held from the breaking event on
        await live.tick(frozenset({"AAA"}))
        breaking = live.journal.entries[-1][0]
        assert books.journal_holds(breaking + 1) == [breaking]
        await trio.sleep(bookbases.HOLD_MAX_S)  # a book that cannot sync lets the journal go
        books.bases.since["AAA"] = (breaking, trio.current_time() - bookbases.HOLD_MAX_S)
        assert books.journal_holds(breaking + 1) == []
        nursery.cancel_scope.cancel()
