"""Where restart replay can rebuild each diff book from: the journal seqs of its bases.

Owns, per symbol, the seq of the event a sync began at (``since``: the snapshot follows it in
the journal), the bases of a live book (that seq, then states of its own journaled through
``BookJournal.state``) and when its state was journaled last, and from these the seqs the
journal's checkpoint must keep (``holds``): a live book whose newest base is below the
checkpoint of every other hold journals its state (at most every ``REBASE_MIN_S``), which
becomes its base once the checkpoint passes it; the checkpoint keeps the newest base it has
reached. A syncing book keeps its first event (``HOLD_MAX_S`` at most: one that cannot sync
writes no rows). No trio, no I/O: the time is handed in, records go through the journal given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..venues.base import LocalBook

HOLD_MAX_S = 120.0  # a book that cannot sync keeps the journal from its first event this long
REBASE_MIN_S = 10.0  # a live book's state is journaled at most this often


class BookJournal(Protocol):
    """Where a diff book's records go in the journal (the venue is the journal's)."""

    def snapshot(self, symbol: str, body: Mapping[str, Any]) -> int: ...  # returns its seq
    def state(self, symbol: str, state: Mapping[str, Any]) -> int: ...


class BookBases:
    def __init__(self) -> None:
        self.journal: BookJournal | None = None
        self.cursor: list[int] = [-1]  # seq of the frame being routed (the lanes' cursor)
        self.since: dict[str, tuple[int, float]] = {}  # syncing since (seq, time)
        self.bases: dict[str, list[int]] = {}  # live: seqs replay can rebuild it from
        self.rebased: dict[str, float] = {}  # when its state was last journaled
        self.busy: set[str] = set()  # applying a snapshot and the events it replays

    def syncing(self, symbol: str, now: float) -> None:
        """A sync begins at the frame being routed (kept if one had begun already)."""
        self.since.setdefault(symbol, (self.cursor[0], now))

    def went_live(self, symbol: str) -> None:
        since = self.since.pop(symbol, None)
        if since is not None:
            self.bases[symbol] = [since[0]]

    def forget(self, symbol: str) -> None:
        for held in (self.since, self.bases, self.rebased):
            held.pop(symbol, None)

    def clear(self) -> None:
        for held in (self.since, self.bases, self.rebased):
            held.clear()
        self.busy.clear()

    def holds(self, books: Mapping[str, LocalBook], before: int, now: float) -> list[int]:
        """The seqs to keep so that replay rebuilds every book of ``books``, given ``before``,
        the checkpoint by every other hold (journaling states where needed)."""
        journal = self.journal
        if journal is None:
            return []
        out: list[int] = []
        for symbol, book in books.items():
            since = self.since.get(symbol)
            if since is not None:
                if now - since[1] < HOLD_MAX_S:
                    out.append(since[0])
                continue
            if not book.live:
                continue
            bases = self.bases.setdefault(symbol, [])
            if ((not bases or bases[-1] < before) and symbol not in self.busy
                    and now - self.rebased.get(symbol, -REBASE_MIN_S) >= REBASE_MIN_S):
                self.rebased[symbol] = now
                bases.append(journal.state(symbol, book.as_state()))
            below = sum(1 for b in bases if b <= before)
            if below:
                del bases[:below - 1]  # the newest base the checkpoint has reached is enough
                out.append(bases[0])
        return out
