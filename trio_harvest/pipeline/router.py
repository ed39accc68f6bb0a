"""The router: one decoded frame in, rows into lanes and calls into the signal hooks out.

Owns the per-message hot path after the socket: decode, build the row, put it into its lane
(authoritative rows wait when the lane is full; that wait is the backpressure), feed the signal
hooks, count what was malformed or unexpected (logged at a limited rate). Never does I/O, never
checks rotation (old fault 7), never raises for a bad frame.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..binance.decode import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    FrameError,
    decode_frame,
    depth_row,
    ticker_row,
    trade_row,
)
from ..kinds import ORDERBOOK, PRICES, Row
from ..ratelimit import RateLimitedLog
from .chunks import BadValue
from .lanes import Lane, Lanes

if TYPE_CHECKING:
    from ..binance.booksync import DiffBooks
    from ..repair.coordinator import Repair

log = logging.getLogger("trio_harvest.router")

MIN_EVENT_MS = 1_420_070_400_000  # 2015-01-01: before any market this harvests
MAX_EVENT_MS = 4_102_444_800_000  # 2100-01-01


class SignalHooks(Protocol):
    """What ingest calls for every record of a symbol (the signal engine implements it): the
    decoded message on the hot path, a row for books built locally from diffs."""

    def on_agg_trade(self, t: AggTrade) -> None: ...
    def on_ticker(self, b: BookTicker, recv_ms: int) -> None: ...
    def on_depth(self, d: DepthUpdate, source: str) -> None: ...
    def on_trade(self, row: Row) -> None: ...
    def on_book(self, row: Row) -> None: ...


@dataclass(slots=True)
class RouterStats:
    frames: int = 0
    malformed: int = 0
    unexpected: int = 0
    last_seen: dict[str, float] = field(default_factory=dict)  # stream name -> trio/mono time


class Router:
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
    ) -> None:
        self.lanes = lanes
        self.symbols = frozenset(symbols)
        self.depth_levels = depth_levels
        self.depth_source = f"depth{depth_levels}"
        self.book = book
        self.hooks = hooks or {}
        self.wall_ms = wall_ms
        self.now = now
        self.stats = RouterStats()
        self._ratelog = RateLimitedLog(log)
        self._prices: dict[str, Lane] = {s: lanes.get(PRICES, s) for s in symbols}
        self._books: dict[str, Lane] = {s: lanes.get(ORDERBOOK, s) for s in symbols}
        self.diff_books: DiffBooks | None = None  # book == "diff": local books (the app sets it)
        self.gate: Repair | None = None  # dedup, agg-id continuity, resumed streams (the app sets it)

    async def handle(self, frame: str | bytes) -> None:
        """Route one combined-stream frame. Awaits only when an authoritative lane is full."""
        stats = self.stats
        stats.frames += 1
        try:
            env = decode_frame(frame)
        except FrameError as exc:
            self._bad(exc.category, str(exc), frame)
            return
        data = env.data
        symbol = data.symbol
        lanes = self._prices if type(data) is AggTrade else self._books
        lane = lanes.get(symbol)
        if lane is None:
            self._bad("unexpected", f"frame for unsubscribed symbol {symbol!r}", frame)
            return
        recv_ms = self.wall_ms()
        ts = data.trade_ms or data.event_ms
        if ts and not MIN_EVENT_MS <= ts < MAX_EVENT_MS:
            # a corrupt frame: no date partition can sensibly hold it; never admit it anywhere.
            # (Deliberately not compared with the local clock: a host whose clock is off must
            # still harvest.)
            self._bad("unexpected", f"implausible event time {ts}", frame)
            return
        stats.last_seen[env.stream] = self.now()
        gate = self.gate
        if gate is not None and gate.resuming and env.stream in gate.resuming:
            gate.resumed(env.stream, recv_ms)
        hook = self.hooks.get(symbol)
        try:
            if type(data) is AggTrade:
                if gate is not None and not gate.trade(data, recv_ms):
                    return  # already in prices (a duplicated frame or id, or a handover overlap)
                if not lane.add_trade(data, recv_ms):
                    await lane.put(trade_row(data, recv_ms))  # full: wait (backpressure)
                if hook is not None:
                    hook.on_agg_trade(data)
                return
            if type(data) is BookTicker:
                if gate is not None and not gate.book(env.stream, data.update_id):
                    return
                if not lane.add_ticker(data, recv_ms):
                    await lane.put(ticker_row(data, recv_ms, self.depth_levels))
                if hook is not None:
                    hook.on_ticker(data, recv_ms)
                return
            if type(data) is DepthUpdate and self.book == "partial":
                if gate is not None and not gate.book(env.stream, data.update_id):
                    return
                if not lane.add_depth(data, recv_ms, self.depth_source):
                    await lane.put(depth_row(data, recv_ms, self.depth_levels, self.depth_source))
                if hook is not None:
                    hook.on_depth(data, self.depth_source)
                return
        except BadValue as exc:  # a value no column can hold: never admitted anywhere
            self._bad("malformed", f"{env.stream}: {exc}", frame)
            return
        if type(data) is DepthUpdate and self.diff_books is not None:
            await self.diff_books.on_depth(data, recv_ms, lane, hook)  # rows, gaps, resync
            return
        # diff depth is applied to a local book by a later stage
        self._bad("unexpected", "diff depth without a local book", frame)

    def _bad(self, category: str, message: str, frame: str | bytes) -> None:
        if category == "malformed":
            self.stats.malformed += 1
        else:
            self.stats.unexpected += 1
        sample = frame[:160] if isinstance(frame, str) else frame[:160].decode("utf-8", "replace")
        self._ratelog.log(logging.WARNING, category, "%s (frame starts %r)", message, sample)
