"""The tap: where a symbol's signal engine reads the rows of one shape its lane took since it
last looked (trades of a ``prices`` lane, quotes of a ``quotes`` lane, depth rows of an
``orderbook`` lane).

Owns a cursor over a lane's builders of one shape: the builders opened since the last read, in
order, and the row of the first one where unread rows begin. The lane tells it when it opens a
builder of that shape and asks it to ``flush`` (the engine reads what is unread) before rotation
drains the lane, so every row is read while its builder is still the lane's. Reading takes the
unread rows as (builder, first, stop) segments and moves the cursor to the end. Rows the
engine never sees (trades backfilled over REST, rows restored from the journal) are marked
``unseen`` when appended and left out of every segment. Never copies or changes a row, never
does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chunks import Builder

Segment = tuple[Any, int, int]  # a builder, its first unread row, its row count


class Tap:
    __slots__ = ("builders", "flush", "shape", "start", "unseen_rows")

    def __init__(self, shape: str, flush: Callable[[], None]) -> None:
        self.shape = shape  # the lane's builder attribute: ``_depth``, ``_quote``, ``_trade``
        self.flush = flush  # the engine's read (called by the lane before a drain)
        self.builders: list[Builder] = []
        self.start = 0  # first unread row of ``builders[0]``
        self.unseen_rows: dict[int, list[int]] = {}  # id(builder) -> its rows to leave out

    def opened(self, builder: Builder) -> None:
        """The lane opened ``builder`` for its next rows of the tap's shape."""
        self.builders.append(builder)

    def unseen(self, builder: Builder, row: int) -> None:
        """Row ``row`` of ``builder`` is not the engine's: leave it out."""
        self.unseen_rows.setdefault(id(builder), []).append(row)

    def unread(self) -> bool:
        """Whether ``take`` could return a row (False: it would return nothing and change
        nothing, so a reader with nothing waiting skips it)."""
        builders = self.builders
        return len(builders) > 1 or bool(self.unseen_rows) or (
            bool(builders) and builders[0].n > self.start)

    def take(self, keep_last: int = 0) -> list[Segment]:
        """The unread rows but the last ``keep_last`` (those stay unread), as segments in order;
        the cursor moves past what is returned."""
        builders = self.builders
        if not builders:
            return []
        if len(builders) == 1 and not self.unseen_rows:  # the usual case: one open builder
            b = builders[0]
            start, stop = self.start, b.n - keep_last
            if stop <= start:
                return []
            self.start = stop
            return [(b, start, stop)]
        segments: list[Segment] = []
        start = self.start
        last = len(builders) - 1
        unseen = self.unseen_rows
        for i, b in enumerate(builders):
            stop = b.n
            if i == last:
                stop -= keep_last
            skip = unseen.pop(id(b), None) if unseen else None
            if skip:
                for row in skip:  # in order: the rows between them are the engine's
                    if row >= stop:  # kept unread (``keep_last``): marked again below
                        unseen.setdefault(id(b), []).append(row)
                    elif row >= start:
                        if row > start:
                            segments.append((b, start, row))
                        start = row + 1
            if stop > start:
                segments.append((b, start, stop))
            start = 0
        end = builders[-1]
        self.builders = [end]
        self.start = end.n - keep_last
        return segments

    def skip(self) -> None:
        """Everything unread is handled elsewhere (rows the engine took one by one)."""
        if self.builders:
            end = self.builders[-1]
            self.builders = [end]
            self.start = end.n
        self.unseen_rows.clear()
