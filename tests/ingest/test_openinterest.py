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


class Gaps:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    async def put(self, row: Row) -> None:
        self.rows.append(row)


def gapped(sink: Sink, gaps: Gaps, now: list[int],
           symbols: tuple[str, ...] = ("BTCUSDT",)) -> OpenInterestPoller:
    return OpenInterestPoller(SIDE, lambda: symbols, sink.put, WeightBudget(100),  # type: ignore[arg-type]
                              lambda: now[0], interval=60.0, journal=sink, put_gap=gaps.put)


def two_on_the_clock(sink: Sink, gaps: Gaps) -> OpenInterestPoller:
    """BTCUSDT and ETHUSDT polled every 60 s on trio's (mock) clock."""
    return OpenInterestPoller(SIDE, lambda: ("BTCUSDT", "ETHUSDT"), sink.put, WeightBudget(100),  # type: ignore[arg-type]
                              lambda: int(trio.current_time() * 1000), interval=60.0,
                              put_gap=gaps.put)


async def timed_out(path: str, params: Params) -> RestResponse:
    raise RestError("ReadTimeout: timed out")


async def test_an_outage_is_one_gap_row_from_the_last_good_answer_to_the_next(
        autojump_clock: trio.testing.MockClock) -> None:
    sink, gaps, now = Sink(), Gaps(), [1_000]
    p = gapped(sink, gaps, now)
    await p.poll(answer(), "BTCUSDT")  # good at 1 000
    for ms, fetch in ((61_000, answer(500)), (121_000, timed_out), (181_000, answer(429)),
                      (241_000, timed_out)):
        now[0] = ms
        await p.poll(fetch, "BTCUSDT")
    assert not gaps.rows  # the outage is still going on: one row, once it ends
    now[0] = 301_000
    await p.poll(answer(), "BTCUSDT")
    assert len(gaps.rows) == 1
    _, symbol, stream, start, end, reason, detail = gaps.rows[0]
    assert (symbol, stream, start, end) == ("BTCUSDT", "btcusdt@openInterest", 1_000, 301_000)
    assert reason == "poll failed (HTTP 500)"
    assert detail.startswith("open interest: 4 failed polls (HTTP 500 x1, timeout x2, "
                             "HTTP 429 rate limit x1); first: HTTP 500")
    assert "last: ReadTimeout: timed out" in detail
    assert p.stats.gaps == 1 and len(sink.rows) == 2
    now[0] = 361_000
    await p.poll(answer(), "BTCUSDT")  # a good answer after a good one: nothing
    now[0] = 421_000
    await p.poll(answer(body=b"{}"), "BTCUSDT")  # a new outage, its own row
    now[0] = 481_000
    await p.poll(answer(), "BTCUSDT")
    assert [(r[3], r[4], r[5]) for r in gaps.rows[1:]] == [(361_000, 481_000,
                                                            "poll failed (bad answer)")]


async def test_an_outage_open_at_the_stop_or_of_a_symbol_dropped_is_written_then(
        autojump_clock: trio.testing.MockClock) -> None:
    sink, gaps, now = Sink(), Gaps(), [5_000]
    harvested = {"BTCUSDT", "ETHUSDT"}
    p = OpenInterestPoller(SIDE, lambda: harvested, sink.put, WeightBudget(100),  # type: ignore[arg-type]
                           lambda: now[0], interval=60.0, put_gap=gaps.put)
    await p.poll(timed_out, "BTCUSDT")  # never answered: the outage starts at its first try
    await p.poll(timed_out, "ETHUSDT")
    harvested.discard("ETHUSDT")  # the listing drops it: its outage ends with the next round
    now[0] = 65_000
    with trio.move_on_after(1):
        await p.run(timed_out)
    assert [(r[1], r[3], r[4], r[5]) for r in gaps.rows] == [
        ("ETHUSDT", 5_000, 65_000, "poll failed (timeout)")]
    assert gaps.rows[0][6].endswith("; the symbol is no longer harvested")
    now[0] = 70_000
    await p.finish()
    assert [(r[1], r[3], r[4]) for r in gaps.rows[1:]] == [("BTCUSDT", 5_000, 70_000)]
    assert "open interest: 2 failed polls (timeout x2)" in gaps.rows[1][6]
    assert gaps.rows[1][6].endswith("; not resumed when the harvester stopped")
    await p.finish()  # nothing open any more
    assert len(gaps.rows) == 2 and not sink.rows


async def test_a_rate_limit_puts_the_rest_of_the_round_in_an_outage_too(
        autojump_clock: trio.testing.MockClock) -> None:
    sink, gaps = Sink(), Gaps()
    limited = {"BTCUSDT"}

    refused, ok = answer(429), answer()

    async def fetch(path: str, params: Params) -> RestResponse:
        if params["symbol"] in limited:
            limited.clear()  # once
            got: RestResponse = await refused(path, params)
        else:
            got = await ok(path, params)
        return got

    p = two_on_the_clock(sink, gaps)
    with trio.move_on_after(100):
        await p.run(fetch)
    # ETHUSDT waited out Retry-After (30 s) behind BTCUSDT's 429: its answer was late, a gap
    assert [(r[1], r[3], r[4], r[5]) for r in gaps.rows] == [
        ("ETHUSDT", 0, 30_000, "poll failed (held by a rate limit)"),
        ("BTCUSDT", 0, 60_000, "poll failed (HTTP 429 rate limit)")]
    assert p.stats.errors == 0 and p.stats.rate_limited == 1


async def test_a_short_pause_that_ends_before_a_poll_is_due_holds_nothing(
        autojump_clock: trio.testing.MockClock) -> None:
    sink, gaps = Sink(), Gaps()
    polls: list[str] = []

    async def fetch(path: str, params: Params) -> RestResponse:
        polls.append(str(params["symbol"]))
        if len(polls) == 3:  # BTCUSDT's second poll: 429, Retry-After 5 s
            return RestResponse(429, {"retry-after": "5"}, b"")
        got: RestResponse = await answer()(path, params)
        return got

    p = two_on_the_clock(sink, gaps)
    with trio.move_on_after(130):
        await p.run(fetch)
    # ETHUSDT was asked 5 s after it was due (60 s after its last answer): on time, no row;
    # BTCUSDT's refused poll is an outage until its next answer
    assert [(r[1], r[3], r[4], r[5]) for r in gaps.rows] == [
        ("BTCUSDT", 0, 120_000, "poll failed (HTTP 429 rate limit)")]


async def test_after_a_crash_a_missed_round_is_a_restart_gap_once() -> None:
    """``resume`` (the journal replayed): a symbol whose last journaled answer is older than one
    and a half intervals gets one ``restart`` row at its first answer; one answered a moment
    before the crash gets none; one whose first poll fails opens its outage from there."""
    now = 1_700_000_000_050
    gaps: list[Row] = []

    async def put_gap(row: Row) -> None:
        gaps.append(row)

    sink = Sink()
    p = OpenInterestPoller(SIDE, lambda: ("BTCUSDT", "ETHUSDT", "SOLUSDT"), sink.put,  # type: ignore[arg-type]
                           WeightBudget(100), lambda: now, interval=60.0, journal=sink,
                           put_gap=put_gap)
    # BTC answered 10 min before, ETH 30 s before; SOL none journaled: from the replay's start
    p.resume({"BTCUSDT": now - 600_000, "ETHUSDT": now - 30_000}, now - 200_000)
    await p.poll(answer(), "BTCUSDT")
    await p.poll(answer(), "ETHUSDT")
    await p.poll(answer(), "BTCUSDT")  # the next round: nothing more
    [row] = gaps
    assert row[1] == "BTCUSDT" and row[2] == "btcusdt@openInterest"
    assert (row[3], row[4]) == (now - 600_000, now) and row[5] == "restart"

    async def refused(path: str, params: Params) -> RestResponse:
        raise RestError("connection refused")

    await p.poll(refused, "SOLUSDT")  # still failing after the restart: the outage starts there
    await p.finish()
    sol = gaps[-1]
    assert sol[1] == "SOLUSDT" and sol[3] == now - 200_000 and sol[5].startswith("poll failed")
    assert len(gaps) == 2 and p.stats.gaps == 2
