"""A symbol's time window: the rows of a symbol that changes shards, kept on one side of the
hand-over boundary only.

Owns ``WindowLane`` and ``WindowHook``: a lane and a signal hook that pass on only what falls in
``[start_ms, end_ms)`` (by the message's trade time, else its event time: the same field on
either shard, so every trade id and book update lands on exactly one side). The router puts them
in place of a symbol's own lane and hook for the few seconds around a hand-over, so no other
symbol's frames pay for the check. Never decides the boundary (scale/handover.py does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..kinds import Row

if TYPE_CHECKING:
    from ..venues.base import BookLevels, Quote, Trade
    from .lanes import Lane
    from .router import SignalHooks

NEVER = 1 << 62  # an end that is never reached


class Window:
    """``[start_ms, end_ms)``; ``dropped`` counts what fell outside."""

    def __init__(self, start_ms: int | None, end_ms: int | None) -> None:
        self.start = start_ms if start_ms is not None else -NEVER
        self.end = end_ms if end_ms is not None else NEVER
        self.dropped = 0

    def keeps(self, ts: int) -> bool:
        if self.start <= ts < self.end:
            return True
        self.dropped += 1
        return False


class WindowLane:
    """A lane that passes on only the rows of its window (the rest count as taken)."""

    def __init__(self, lane: Lane, window: Window) -> None:
        self.lane, self.window = lane, window

    def add_trade(self, t: Trade, recv_ms: int) -> bool:
        return not self.window.keeps(t.trade_ms or t.event_ms) or self.lane.add_trade(t, recv_ms)

    def add_quote(self, t: Quote, recv_ms: int) -> bool:
        return (not self.window.keeps(t.trade_ms or t.event_ms or recv_ms)
                or self.lane.add_quote(t, recv_ms))

    def add_depth(self, d: BookLevels, recv_ms: int, source: str) -> bool:
        return (not self.window.keeps(d.trade_ms or d.event_ms or recv_ms)
                or self.lane.add_depth(d, recv_ms, source))

    def put_nowait(self, row: Row, *, unseen: bool = False) -> bool:
        return not self.window.keeps(row[0]) or self.lane.put_nowait(row, unseen=unseen)

    def put_columns_nowait(self, columns: Sequence[list[Any]], n: int) -> bool:
        return False  # only the rows of the window: one by one (``put_nowait``)

    async def put(self, row: Row, *, unseen: bool = False) -> None:
        if self.window.keeps(row[0]):
            await self.lane.put(row, unseen=unseen)

    def keep(self, row: Row) -> None:
        if self.window.keeps(row[0]):
            self.lane.keep(row)

    def hold(self, seq: int) -> None:  # the journal checkpoint: the lane's own, window or not
        self.lane.hold(seq)

    @property
    def pending(self) -> int:
        return self.lane.pending


class WindowHook:
    """A signal hook that sees only the messages of its window (a derived second is computed
    on the side that keeps its rows)."""

    def __init__(self, hook: SignalHooks, window: Window) -> None:
        self.hook, self.window = hook, window

    def _keeps(self, ts: int) -> bool:
        return self.window.start <= ts < self.window.end

    def on_trade_record(self, t: Trade) -> None:
        if self._keeps(t.trade_ms or t.event_ms):
            self.hook.on_trade_record(t)

    def on_quote(self, b: Quote, recv_ms: int) -> None:
        if self._keeps(b.trade_ms or b.event_ms or recv_ms):
            self.hook.on_quote(b, recv_ms)

    def on_book_levels(self, d: BookLevels, source: str) -> None:
        if self._keeps(d.trade_ms or d.event_ms):
            self.hook.on_book_levels(d, source)

    def on_trade(self, row: Row) -> None:
        if self._keeps(row[0]):
            self.hook.on_trade(row)

    def on_book(self, row: Row) -> None:
        if self._keeps(row[0]):
            self.hook.on_book(row)

    def on_state(self, kind: str, row: Row) -> None:
        if self._keeps(row[0]):
            self.hook.on_state(kind, row)
