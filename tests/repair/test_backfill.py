"""REST backfill against a fake exchange (MockClock): fills exactly once, records what it could
not fill, paces itself by request weight, honours 429, stops on time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec
import pytest
import trio
import trio.testing

from trio_harvest.gaps import parse_agg_detail
from trio_harvest.ingest.restclient import Params, RestError, RestResponse, WeightBudget
from trio_harvest.kinds import Row
from trio_harvest.repair.backfill import NOT_ON_TAPE, STOPPED, Backfill
from trio_harvest.repair.continuity import BREAK, AggIdTracker
from trio_harvest.venues.binance_usdm.adapter import AGG_TRADES_WEIGHT

SYMBOL = "BTCUSDT"


@dataclass
class FakeRest:
    first: int = 0  # oldest id the exchange still serves
    last: int = 10_000
    script: list[object] = field(default_factory=list)  # per call: a status, an error, or None
    delay: float = 0.0
    calls: list[tuple[float, int, int]] = field(default_factory=list)  # (time, fromId, limit)

    async def fetch(self, path: str, params: Params) -> RestResponse:
        assert path == "/fapi/v1/aggTrades" and params["symbol"] == SYMBOL
        from_id, limit = int(params["fromId"]), int(params["limit"])
        self.calls.append((trio.current_time(), from_id, limit))
        await trio.sleep(self.delay)
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if isinstance(step, int):
            return RestResponse(step, {"retry-after": "7"}, b'{"code":-1003,"msg":"slow down"}')
        start = max(from_id, self.first)
        ids = range(start, min(self.last, start + limit - 1) + 1)
        body = [{"a": i, "p": "100.5", "q": "0.001", "f": i * 2, "l": i * 2 + 1, "T": 1000 + i,
                 "m": i % 2 == 0} for i in ids]
        return RestResponse(200, {"x-mbx-used-weight-1m": "20"}, msgspec.json.encode(body))


class Harness:
    def __init__(self, rest: FakeRest | None, budget: int = 2400) -> None:
        self.tracker = AggIdTracker()
        self.trades: list[Row] = []
        self.gaps: list[Row] = []
        self.rest = rest
        self.backfill = Backfill(
            {SYMBOL: self.tracker}, self._put_trade, self._put_gap,
            rest.fetch if rest is not None else None, WeightBudget(budget),
            wall_ms=lambda: 5, delay=1.0, retry_delay=0.5,
        )

    async def _put_trade(self, row: Row) -> None:
        self.trades.append(row)

    async def _put_gap(self, row: Row) -> None:
        self.gaps.append(row)

    def stream(self, *ids: int) -> None:
        """Trades from the websocket: breaks are queued for backfill."""
        for i in ids:
            if self.tracker.admit(i, 1000 + i) == BREAK:
                assert self.tracker.last_break is not None
                self.backfill.request(SYMBOL, self.tracker.last_break)

    @property
    def calls(self) -> list[tuple[float, int, int]]:
        assert self.rest is not None
        return self.rest.calls

    def written(self) -> list[int]:
        return sorted(int(r[4]) for r in self.trades)

    def details(self) -> list[tuple[int, int, bool]]:
        out = []
        for g in self.gaps:
            parsed = parse_agg_detail(g[6])
            assert parsed is not None
            out.append(parsed)
        return out


async def run_until_idle(h: Harness, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(h.backfill.run)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


async def test_a_break_is_filled_exactly_once(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(FakeRest())
    h.stream(1, 2, 3, 10, 11, 20)
    await run_until_idle(h, 5)
    assert h.written() == [4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19]
    assert len(h.calls) == 1  # both breaks in one request (coalesced)
    assert h.details() == [(4, 9, True), (12, 19, True)]
    row = h.trades[0]
    assert row == (1004, 1004, 5, SYMBOL, 4, 100.5, 0.001, 8, 9, True, None)
    g = h.gaps[0]
    assert (g[3], g[4], g[5]) == (1003, 1010, "agg-id break")
    assert h.backfill.stats.filled == 2 and h.backfill.stats.rows == 14


async def test_late_frames_heal_a_break_without_rest(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(FakeRest())
    h.stream(1, 2, 4, 3)  # a reorder, not a loss
    await run_until_idle(h, 5)
    assert h.calls == [] and h.gaps == [] and h.trades == []
    assert h.backfill.stats.healed == 1


async def test_websocket_and_rest_racing_still_write_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    h = Harness(FakeRest(delay=2.0))
    h.stream(1, 10)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.backfill.run)
        await trio.sleep(1.5)  # the request is in flight now
        h.stream(5, 6)  # ... and the websocket delivers two of the ids late
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert h.written() == [2, 3, 4, 7, 8, 9]  # 5 and 6 came from the stream
    assert h.details() == [(2, 9, True)]


async def test_what_the_tape_lacks_stays_a_gap(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(FakeRest(first=15))
    h.stream(10, 20)
    await run_until_idle(h, 5)
    assert h.written() == [15, 16, 17, 18, 19]
    assert h.details() == [(11, 14, False)]
    assert NOT_ON_TAPE in h.gaps[0][6]
    assert h.backfill.stats.unfilled_ids == 4


async def test_large_gaps_are_paged(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(FakeRest())
    h.stream(1, 2502)
    await run_until_idle(h, 10)
    assert h.written() == list(range(2, 2502))
    assert [(f, n) for _, f, n in h.calls] == [(2, 1000), (1002, 1000), (2002, 500)]


async def test_429_pauses_for_retry_after(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(FakeRest(script=[429, 418]))
    h.stream(1, 5)
    await run_until_idle(h, 30)
    times = [t for t, _, _ in h.calls]
    assert len(times) == 3
    assert times[1] - times[0] >= 7 and times[2] - times[1] >= 7  # Retry-After: 7
    assert h.written() == [2, 3, 4]
    assert h.backfill.stats.rate_limited == 2


async def test_the_weight_budget_spaces_requests(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(FakeRest(), budget=2 * AGG_TRADES_WEIGHT)
    h.stream(*range(0, 6000, 1500))  # three breaks far apart: three requests
    await run_until_idle(h, 200)
    times = [t for t, _, _ in h.calls]
    assert len(times) >= 3
    assert times[2] - times[0] >= 60  # the third had to wait for the next window


async def test_rest_failures_give_up_and_record(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(FakeRest(script=[RestError("refused")] * 4))
    h.stream(1, 5)
    await run_until_idle(h, 30)
    assert h.details() == [(2, 4, False)]
    assert "REST failed: refused" in h.gaps[0][6]


async def test_without_rest_every_break_is_unfilled(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(None)
    h.stream(1, 5)
    await run_until_idle(h, 5)
    assert h.details() == [(2, 4, False)] and "backfill off" in h.gaps[0][6]


async def test_finish_stops_on_time(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(FakeRest(delay=100.0))  # an exchange that never answers in time
    h.stream(1, 5)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.backfill.run)
        started = trio.current_time()
        await h.backfill.finish(started + 3.0)
        assert trio.current_time() - started < 10.0
        nursery.cancel_scope.cancel()
    assert h.details() == [(2, 4, False)] and STOPPED in h.gaps[0][6]


@pytest.mark.parametrize("headers, used", [({"x-mbx-used-weight-1m": "900"}, 900), ({}, 0)])
async def test_budget_adopts_the_servers_count(
    autojump_clock: trio.testing.MockClock, headers: Mapping[str, str], used: int
) -> None:
    budget = WeightBudget(1000)
    budget.observe_used(headers)
    assert budget.used == used


async def test_finish_cuts_short_a_job_waiting_on_the_rate_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    h = Harness(FakeRest(script=[429]))  # then Retry-After: 7 s
    h.stream(1, 5)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.backfill.run)
        await trio.sleep(1.5)  # the job has been told to wait 7 s
        started = trio.current_time()
        await h.backfill.finish(started + 2.0)
        assert trio.current_time() - started <= 2.5
        nursery.cancel_scope.cancel()
    assert h.details() == [(2, 4, False)] and STOPPED in h.gaps[0][6]
