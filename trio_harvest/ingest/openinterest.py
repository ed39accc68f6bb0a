"""The open-interest poll: each symbol's open interest over REST, every ``interval`` seconds,
into the ``derivatives`` lane (Binance pushes no open-interest stream).

Owns the polling loop: one request per symbol per round (the venue's ``openInterest``, weight
1 on Binance), paced by the shared REST weight budget (so polling 500 symbols a minute takes
500 of it and never starves backfill of the rest), the answer journaled as an off-stream row
before it is routed (so a crash replays it), and its failures counted, never raised: a symbol
whose poll failed simply has no row that round. Never speaks a venue's wire (the venue's
``DerivativesSide`` builds the request and decodes the answer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from ..kinds import DERIVATIVES, Row
from ..ratelimit import RateLimitedLog
from ..venues.base import DerivativesSide
from ..venues.rows import derivative_row
from .restclient import FetchFn, RestError, WeightBudget, retry_after

log = logging.getLogger("trio_harvest.openinterest")

PutFn = Callable[[str, Row], "Coroutine[Any, Any, None] | None"]  # Router.put_state


class RowJournal(Protocol):
    def row(self, kind: str, row: tuple[object, ...]) -> None: ...


@dataclass(slots=True)
class PollStats:
    rounds: int = 0
    requests: int = 0
    rows: int = 0
    errors: int = 0
    rate_limited: int = 0


class OpenInterestPoller:
    def __init__(self, side: DerivativesSide, symbols: Callable[[], Collection[str]],
                 put: PutFn, budget: WeightBudget, wall_ms: Callable[[], int], *,
                 interval: float = 60.0, journal: RowJournal | None = None) -> None:
        self.side = side
        self.symbols = symbols  # the symbols harvested now (they change with the listing)
        self.put = put
        self.budget = budget
        self.wall_ms = wall_ms
        self.interval = interval
        self.journal = journal
        self.stats = PollStats()
        self._ratelog = RateLimitedLog(log, interval=60.0)

    async def run(self, fetch: FetchFn) -> None:
        """Poll forever: a round over every symbol, then the rest of ``interval``."""
        while True:
            started = trio.current_time()
            self.stats.rounds += 1
            for symbol in sorted(self.symbols()):
                await self.poll(fetch, symbol)
            await trio.sleep_until(started + self.interval)

    async def poll(self, fetch: FetchFn, symbol: str) -> None:
        """One symbol's open interest into its lane (nothing on a failure, which is counted)."""
        req = self.side.open_interest_request(symbol)
        await self.budget.acquire(req.weight)
        self.stats.requests += 1
        try:
            resp = await fetch(req.path, req.params)
        except RestError as exc:
            self._failed(symbol, str(exc))
            return
        self.budget.observe_used(resp.headers)
        if resp.status in (418, 429):
            self.stats.rate_limited += 1
            self.budget.pause(retry_after(resp, 60.0))
            return
        if resp.status != 200:
            self._failed(symbol, f"HTTP {resp.status}: {resp.body[:120]!r}")
            return
        try:
            row = derivative_row(self.side.decode_open_interest(resp.body, symbol),
                                 self.wall_ms())
        except ValueError as exc:
            self._failed(symbol, str(exc))
            return
        if self.journal is not None:
            self.journal.row(DERIVATIVES, row)
        waiting = self.put(DERIVATIVES, row)
        if waiting is not None:
            await waiting
        self.stats.rows += 1

    def _failed(self, symbol: str, error: str) -> None:
        self.stats.errors += 1
        self._ratelog.log(logging.WARNING, "open interest", "%s: open interest poll failed "
                          "(%s); its next round tries again", symbol, error)
