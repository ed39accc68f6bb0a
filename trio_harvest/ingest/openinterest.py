"""The open-interest poll: each symbol's open interest over REST, every ``interval`` seconds,
into the ``derivatives`` lane (Binance pushes no open-interest stream).

Owns the polling loop: one request per symbol per round (the venue's ``openInterest``, weight
1 on Binance), paced by the shared REST weight budget (so polling 500 symbols a minute takes
500 of it and never starves backfill of the rest), the answer journaled as an off-stream row
before it is routed (so a crash replays it), and its failures counted, never raised, and
recorded: a symbol whose polls fail (no answer, a timeout, an HTTP error, a rate limit, an answer
that does not decode) is in an *outage* from its last good answer on (so is a symbol whose poll a
rate limit's pause holds over half an interval past its due time), and the outage becomes one
``gaps`` row (reason ``poll failed (<cause of its first failure>)``, the detail counting every
failed request by cause) when a poll succeeds again, the symbol stops being harvested, or
``finish`` runs at the stop. Never speaks a venue's wire (the venue's ``DerivativesSide`` builds
the request and decodes the answer).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from ..gaps import POLL_FAILED, RESTART, gap_row
from ..kinds import DERIVATIVES, Row
from ..ratelimit import RateLimitedLog
from ..venues.base import DerivativesSide
from ..venues.rows import derivative_row
from .restclient import FetchFn, RestError, WeightBudget, retry_after

log = logging.getLogger("trio_harvest.openinterest")

PutFn = Callable[[str, Row], "Coroutine[Any, Any, None] | None"]  # Router.put_state
PutGapFn = Callable[[Row], Awaitable[None]]  # Harvester.put_gap
STOPPED = "; not resumed when the harvester stopped"
NOT_HARVESTED = "; the symbol is no longer harvested"
HELD = "held by a rate limit"  # not asked in time: a 429 paused every poll of the round


class RowJournal(Protocol):
    def row(self, kind: str, row: tuple[object, ...]) -> None: ...


@dataclass(slots=True)
class PollStats:
    rounds: int = 0
    requests: int = 0
    rows: int = 0
    errors: int = 0
    rate_limited: int = 0
    gaps: int = 0  # outages written as gap rows


@dataclass(slots=True)
class _Outage:
    """A symbol's polls failing since ``start_ms`` (its last good answer, or its first failed
    request when none came before)."""

    start_ms: int
    cause: str  # of the first failure: the row's reason names it
    first_error: str
    last_error: str = ""
    causes: dict[str, int] = field(default_factory=dict)  # cause -> failed requests

    def detail(self, extra: str = "") -> str:
        n = sum(self.causes.values())
        counts = ", ".join(f"{c} x{k}" for c, k in self.causes.items())
        text = f"open interest: {n} failed poll{'s' * (n != 1)} ({counts}); first: " \
               f"{self.first_error}"
        if n > 1 and self.last_error != self.first_error:
            text += f"; last: {self.last_error}"
        return text + extra


def failure_cause(error: str) -> str:
    """The short cause of a failed request's ``RestError`` text (``ReadTimeout: ...``)."""
    head = error.split(":", 1)[0]
    return "timeout" if "Timeout" in head else "no answer"


class OpenInterestPoller:
    def __init__(self, side: DerivativesSide, symbols: Callable[[], Collection[str]],
                 put: PutFn, budget: WeightBudget, wall_ms: Callable[[], int], *,
                 interval: float = 60.0, journal: RowJournal | None = None,
                 put_gap: PutGapFn | None = None) -> None:
        self.side = side
        self.symbols = symbols  # the symbols harvested now (they change with the listing)
        self.put = put
        self.budget = budget
        self.wall_ms = wall_ms
        self.interval = interval
        self.journal = journal
        self.put_gap = put_gap  # None: outages are counted and logged only
        self.stats = PollStats()
        self._ratelog = RateLimitedLog(log, interval=60.0)
        self._last_ok_ms: dict[str, int] = {}  # symbol -> wall time of its last good answer
        self._outages: dict[str, _Outage] = {}
        self._resumed: dict[str, int] = {}  # after a crash: symbol -> where its hole starts

    def resume(self, polled_ms: Mapping[str, int], since_ms: int) -> None:
        """After a crash (the journal replayed, before the first round): each symbol's poll has
        a hole from its last journaled answer (``polled_ms``; with none, at least from
        ``since_ms``, where the replayed journal starts) until its first answer now. A hole
        longer than one and a half intervals (a round was missed: an outage open at the kill,
        or the time the process was down) becomes a ``gaps`` row, reason ``restart``, when that
        answer comes; if the polls fail, the outage they open starts there instead."""
        for symbol in self.symbols():
            start = polled_ms.get(symbol, since_ms)
            if start > 0:
                self._last_ok_ms[symbol] = start
                self._resumed[symbol] = start

    async def run(self, fetch: FetchFn) -> None:
        """Poll forever: a round over every symbol, then the rest of ``interval``."""
        while True:
            started = trio.current_time()
            self.stats.rounds += 1
            symbols = sorted(self.symbols())
            await self._close_outages(set(self._outages) - set(symbols), NOT_HARVESTED)
            for gone in set(self._last_ok_ms).difference(symbols):
                del self._last_ok_ms[gone]
            for symbol in symbols:
                if symbol not in self._outages and self._held_late(symbol):
                    self._failed(symbol, HELD, "not asked in time: a rate limit (HTTP 429) "
                                 "paused every poll", counted=False)
                await self.poll(fetch, symbol)
            await trio.sleep_until(started + self.interval)

    async def finish(self) -> None:
        """The stop (the loop has ended): every outage still open becomes its gap row."""
        await self._close_outages(set(self._outages), STOPPED)

    async def poll(self, fetch: FetchFn, symbol: str) -> None:
        """One symbol's open interest into its lane (on a failure nothing: it is counted and
        opens or extends the symbol's outage)."""
        req = self.side.open_interest_request(symbol)
        await self.budget.acquire(req.weight)
        self.stats.requests += 1
        try:
            resp = await fetch(req.path, req.params)
        except RestError as exc:
            self._failed(symbol, failure_cause(str(exc)), str(exc))
            return
        self.budget.observe_used(resp.headers)
        if resp.status in (418, 429):
            self.stats.rate_limited += 1
            self.budget.pause(retry_after(resp, 60.0))
            self._failed(symbol, f"HTTP {resp.status} rate limit", f"HTTP {resp.status}",
                         counted=False)
            return
        if resp.status != 200:
            self._failed(symbol, f"HTTP {resp.status}",
                         f"HTTP {resp.status}: {resp.body[:120]!r}")
            return
        now_ms = self.wall_ms()
        try:
            row = derivative_row(self.side.decode_open_interest(resp.body, symbol), now_ms)
        except ValueError as exc:
            self._failed(symbol, "bad answer", str(exc))
            return
        self._last_ok_ms[symbol] = now_ms
        if symbol in self._outages:  # the outage ends with this answer
            await self._close(symbol, now_ms, "")
        resumed = self._resumed.pop(symbol, None)
        if resumed is not None and now_ms - resumed > self.interval * 1500:
            await self._gap(gap_row(
                symbol, self.side.open_interest_stream(symbol), resumed, now_ms, RESTART,
                "open interest: no answer journaled from here until the first poll after the "
                "restart (the harvester was killed or crashed; an outage open then included)"))
        if self.journal is not None:
            self.journal.row(DERIVATIVES, row)
        waiting = self.put(DERIVATIVES, row)
        if waiting is not None:
            await waiting
        self.stats.rows += 1

    def _held_late(self, symbol: str) -> bool:
        """A rate limit's pause holds every poll, and this symbol's answer comes late: more
        than half an ``interval`` after it was due (one ``interval`` after its last good
        answer), or at all when it never had one."""
        pause = self.budget.paused_until - trio.current_time()
        if pause <= 0:
            return False
        last = self._last_ok_ms.get(symbol)
        return last is None or self.wall_ms() + pause * 1000 > last + self.interval * 1500

    def _failed(self, symbol: str, cause: str, error: str, *, counted: bool = True) -> None:
        if counted:  # a rate limit is counted as such, not as an error
            self.stats.errors += 1
            self._ratelog.log(logging.WARNING, "open interest", "%s: open interest poll failed "
                              "(%s); its next round tries again", symbol, error)
        self._resumed.pop(symbol, None)  # the outage starts where the hole does
        outage = self._outages.get(symbol)
        if outage is None:
            now_ms = self.wall_ms()
            outage = self._outages[symbol] = _Outage(
                self._last_ok_ms.get(symbol, now_ms), cause, error)
        outage.causes[cause] = outage.causes.get(cause, 0) + 1
        outage.last_error = error

    async def _close_outages(self, symbols: Collection[str], extra: str) -> None:
        if symbols:
            now_ms = self.wall_ms()
            for symbol in sorted(symbols):
                await self._close(symbol, now_ms, extra)

    async def _close(self, symbol: str, end_ms: int, extra: str) -> None:
        """The outage of ``symbol`` as one gap row, from its last good answer to ``end_ms``."""
        outage = self._outages[symbol]
        await self._gap(gap_row(symbol, self.side.open_interest_stream(symbol), outage.start_ms,
                                end_ms, f"{POLL_FAILED} ({outage.cause})", outage.detail(extra)))
        del self._outages[symbol]

    async def _gap(self, row: Row) -> None:
        if self.put_gap is not None:  # a cancel before it is in its lane leaves it open
            await self.put_gap(row)
        self.stats.gaps += 1
