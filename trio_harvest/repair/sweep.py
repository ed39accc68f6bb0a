"""Recent-trade sweeps: the backfill of a venue whose trade ids prove nothing.

Where ids are not contiguous (``trade_continuity`` "none"), a trade lost on the socket leaves no
trace in the ids: only a disconnect or a stall shows a hole. The venue's REST still serves its
latest trades (the adapter's ``trades_request``, e.g. Bybit's last 1000 linear or 60 spot), so
each symbol is swept now and then: every trade of the answer not among the symbol's recent ids
(the gate's window) goes into ``prices``, so a trade the socket lost, or that a disconnect or a
stall hid, is written after all. An answer that does not reach back to the newest trade of the
symbol's previous sweep (the adapter's ``fill`` decides) leaves a span nobody can check or
fetch any more: a ``gaps`` row, reason ``unfillable``, says which and why. A symbol whose sweep
did not reach back is swept twice as often (down to ``min_interval``), one with a wide overlap
half as often again (up to ``max_interval``). Requests go through the exchange-wide budget the
other REST callers share; a 403/418/429 pauses it. At the stop, ``finish`` sweeps every
symbol once more, before the final flush. Never decides what a trade is (the gate
does), never reads a venue's wire (the adapter does).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from ..gaps import gap_row
from ..ingest.restclient import FetchFn, retry_after
from ..kinds import Row
from ..ratelimit import RateLimitedLog

log = logging.getLogger("trio_harvest.sweep")

UNFILLABLE = "unfillable"
PUT_SECONDS = 10.0  # an answer's rows reach their lanes within this (backpressure), cancel or not


class Budget(Protocol):
    async def acquire(self, weight: int) -> None: ...
    def pause(self, seconds: float) -> None: ...


@dataclass(slots=True)
class _State:
    due: float = 0.0
    interval: float = 0.0
    last_id: str | None = None  # the newest trade of the previous answer
    last_ms: int = 0
    swept_ms: int = 0  # that trade's time: every trade up to it is written or in a gap


@dataclass(slots=True)
class SweepStats:
    requests: int = 0
    rows: int = 0  # trades written from REST (the socket had not delivered them)
    unfillable: int = 0  # gap rows written
    failures: int = 0
    rate_limited: int = 0
    swept_ms: dict[str, int] = field(default_factory=dict)  # symbol -> checked up to


class Sweeper:
    def __init__(self, symbols: Iterable[str], venue: Any, *, admit: Callable[[str, str], bool],
                 put_trade: Callable[[Row], Awaitable[None]],
                 put_gap: Callable[[Row], Awaitable[None]], budget: Budget,
                 wall_ms: Callable[[], int], interval: float = 5.0, min_interval: float = 1.0,
                 max_interval: float = 60.0) -> None:
        self.venue = venue
        self.admit = admit
        self.put_trade = put_trade
        self.put_gap = put_gap
        self.budget = budget
        self.wall_ms = wall_ms
        self.interval = interval
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.fetch: FetchFn | None = None
        self.stats = SweepStats()
        self._started_ms = 0
        self._scope = trio.CancelScope()
        self._states: dict[str, _State] = {}
        self._ratelog = RateLimitedLog(log)
        for symbol in symbols:
            self.add_symbol(symbol)

    def set_interval(self, seconds: float) -> None:
        """Sweep every symbol every ``seconds`` from now on (it still adapts, as above)."""
        self.interval = seconds
        for state in self._states.values():
            state.interval = seconds

    def add_symbol(self, symbol: str) -> None:
        self._states.setdefault(symbol, _State(interval=self.interval))

    def remove_symbol(self, symbol: str) -> None:
        self._states.pop(symbol, None)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sweep every symbol when it is due, until cancelled (``fetch`` set by the caller)."""
        self._started_ms = self.wall_ms()
        start = trio.current_time()
        for i, state in enumerate(self._states.values()):  # spread the first sweeps out
            state.due = start + state.interval * (1 + i / max(1, len(self._states)))
        task_status.started()
        with self._scope:
            while True:
                if not self._states:
                    await trio.sleep(self.interval)
                    continue
                symbol, state = min(self._states.items(), key=lambda kv: kv[1].due)
                await trio.sleep_until(state.due)
                if self._states.get(symbol) is not state:
                    continue  # removed meanwhile
                await self.sweep(symbol, state)
                state.due = trio.current_time() + state.interval
        await trio.sleep_forever()  # stopped by ``finish``: the nursery's cancel ends it

    async def finish(self, deadline: float) -> None:
        """Ingest has stopped: the loop ends and every symbol is swept once more (within
        ``deadline``), so the last seconds before the stop are reconciled too."""
        self._scope.cancel()
        if self.fetch is None:
            return
        with trio.move_on_at(deadline):
            for symbol, state in list(self._states.items()):
                await self.sweep(symbol, state)

    async def sweep(self, symbol: str, state: _State | None = None) -> None:
        """One recent-trade request for ``symbol`` and what follows from its answer."""
        state = state or self._states.setdefault(symbol, _State(interval=self.interval))
        fetch, venue = self.fetch, self.venue
        assert fetch is not None
        req = venue.trades_request(symbol, 0, 0)
        await self.budget.acquire(req.weight)
        self.stats.requests += 1
        try:
            resp = await fetch(req.path, req.params)
            if resp.status in (403, 418, 429):
                self.stats.rate_limited += 1
                self.budget.pause(max(1.0, retry_after(resp, 60.0)))
                return
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            answer = venue.decode_trades(resp.body)
        except Exception as exc:  # network, refusal, bad body: the next sweep tries again
            self.stats.failures += 1
            self._ratelog.log(logging.WARNING, f"sweep:{symbol}", "recent trades of %s: %s: %s",
                              symbol, type(exc).__name__, exc)
            return
        now_ms = self.wall_ms()
        start_ms = state.last_ms if state.last_id is not None else self._started_ms
        fill = venue.fill(answer, last_id=state.last_id, start_ms=start_ms, end_ms=now_ms)
        # an id once admitted must reach its lane: a cancel (the stop) waits for the puts
        with trio.CancelScope(shield=True) as puts:
            puts.deadline = trio.current_time() + PUT_SECONDS
            for t in fill.rows:
                if self.admit(symbol, t.trade_id):
                    self.stats.rows += 1
                    await self.put_trade(venue.rest_trade_row(symbol, t, now_ms))
        if fill.unfillable is not None:
            lo, hi = fill.unfillable
            self.stats.unfillable += 1
            await self.put_gap(gap_row(symbol, venue.trade_stream(symbol), lo, hi, UNFILLABLE,
                                       fill.detail))
            state.interval = max(self.min_interval, state.interval / 2)
        elif len(fill.rows) < venue.trades_page / 4:  # a wide overlap: sweep less often
            state.interval = min(self.max_interval, state.interval * 1.5)
        if answer:
            newest = max(answer, key=lambda t: (t.trade_ms, t.seq))
            state.last_id, state.last_ms = newest.trade_id, newest.trade_ms
        state.swept_ms = self.stats.swept_ms[symbol] = max(state.swept_ms, state.last_ms)
