"""The open-interest poll: one weight-1 request per symbol per round, the answer journaled as
an off-stream row and then routed; a rate limit pauses the shared budget, a bad answer or a
failed request is counted, never raised, and the next round tries again."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import trio
import trio.testing

from trio_harvest import venues
from trio_harvest.ingest.openinterest import OpenInterestPoller
from trio_harvest.ingest.restclient import Params, RestError, RestResponse, WeightBudget
from trio_harvest.kinds import DERIVATIVES, Row
from trio_harvest.venues.base import derivatives_of

SIDE = derivatives_of(venues.get("binance-usdm"))
assert SIDE is not None


class Sink:
    def __init__(self) -> None:
        self.rows: list[tuple[str, Row]] = []
        self.journaled: list[tuple[str, tuple[object, ...]]] = []

    def put(self, kind: str, row: Row) -> Coroutine[Any, Any, None] | None:
        self.rows.append((kind, row))
        return None

    def row(self, kind: str, row: tuple[object, ...]) -> None:
        self.journaled.append((kind, row))


def answer(status: int = 200, body: bytes = b"") -> Any:
    async def fetch(path: str, params: Params) -> RestResponse:
        assert path == "/fapi/v1/openInterest"
        sym = str(params["symbol"])
        return RestResponse(status, {"retry-after": "30"}, body or (
            b'{"openInterest":"12.5","symbol":"%s","time":1700000000000}' % sym.encode()))
    return fetch


def poller(sink: Sink, symbols: tuple[str, ...] = ("BTCUSDT",)) -> OpenInterestPoller:
    return OpenInterestPoller(SIDE, lambda: symbols, sink.put, WeightBudget(100),  # type: ignore[arg-type]
                              lambda: 1_700_000_000_050, interval=60.0, journal=sink)


async def test_an_answer_is_journaled_then_routed() -> None:
    sink = Sink()
    p = poller(sink)
    await p.poll(answer(), "BTCUSDT")
    row = (1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_050, "BTCUSDT", "openInterest",
           None, None, None, None, None, 12.5)
    assert sink.journaled == [(DERIVATIVES, row)] and sink.rows == [(DERIVATIVES, row)]
    assert p.budget.spent == 1 and p.stats.rows == 1


async def test_failures_are_counted_never_raised() -> None:
    sink = Sink()
    p = poller(sink)
    await p.poll(answer(body=b'{"code":-1121}'), "BTCUSDT")  # no openInterest in it
    await p.poll(answer(500), "BTCUSDT")

    async def refused(path: str, params: Params) -> RestResponse:
        raise RestError("connection refused")

    await p.poll(refused, "BTCUSDT")
    assert p.stats.errors == 3 and not sink.rows and not sink.journaled


async def test_a_rate_limit_pauses_the_shared_budget(autojump_clock: trio.testing.MockClock
                                                     ) -> None:
    sink = Sink()
    p = poller(sink)
    await p.poll(answer(429), "BTCUSDT")
    assert p.stats.rate_limited == 1 and not sink.rows
    before = trio.current_time()
    await p.budget.acquire(1)  # the next request of anyone waits out Retry-After
    assert trio.current_time() - before >= 30


async def test_every_symbol_is_polled_every_interval(autojump_clock: trio.testing.MockClock
                                                     ) -> None:
    sink = Sink()
    p = poller(sink, ("BTCUSDT", "ETHUSDT"))
    with trio.move_on_after(150):
        await p.run(answer())
    assert p.stats.rounds == 3  # at 0, 60 and 120 s
    assert [r[3] for _, r in sink.rows] == ["BTCUSDT", "ETHUSDT"] * 3
