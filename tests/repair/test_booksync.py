"""Diff-depth books under trio (MockClock): rows and gaps out of the hot path, resync of one
symbol only, and the snapshot throttle (200 symbols breaking at once stay within the weight
budget, spread over minutes)."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import pytest
import trio

from trio_harvest.gaps import BOOK_SEQUENCE_BREAK
from trio_harvest.ingest.restclient import RestResponse, WeightBudget
from trio_harvest.ingest.tokenbucket import TokenBucket
from trio_harvest.kinds import GAPS_SCHEMA, orderbook_schema
from trio_harvest.repair.booksync import (
    SOURCE,
    DiffBooks,
    RateLimited,
    depth_fetcher,
)
from trio_harvest.venues.binance_usdm.adapter import depth_weight
from trio_harvest.venues.binance_usdm.decode import DepthUpdate

LEVELS = 5
OB = orderbook_schema(LEVELS)
U_ID, BID1, ASK1 = OB.index("update_id"), OB.index("bid_px_1"), OB.index("ask_px_1")


class FakeLane:
    """Stands in for an orderbook ``Lane``: counts rows, keeps the last few."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.count = 0

    def put_nowait(self, row: tuple[Any, ...]) -> bool:
        self.count += 1
        self.rows.append(row)
        if len(self.rows) > 50:
            del self.rows[:25]
        return True

    async def put(self, row: tuple[Any, ...]) -> None:
        self.put_nowait(row)


class Hook:
    def __init__(self) -> None:
        self.books = 0
        self.gaps: list[tuple[int, str]] = []

    def on_book(self, row: tuple[Any, ...]) -> None:
        self.books += 1

    def on_gap(self, ts_ms: int, reason: str) -> None:
        self.gaps.append((ts_ms, reason))


class Exchange:
    """Each tick, 10 updates per symbol (one diff event). A lost event breaks the pu chain.
    Snapshots are taken half-way into the next event's id range, as on Binance."""

    def __init__(self, symbols: list[str]) -> None:
        self.u = dict.fromkeys(symbols, 1_000)
        self.book: dict[str, dict[float, float]] = {s: {100.0: 1.0} for s in symbols}
        self.requests: list[tuple[float, str]] = []
        self.fail: dict[str, int] = {}  # symbol -> failures still to come
        self.stale: set[str] = set()  # symbols whose next snapshot is too old
        self.tick = 0

    def event(self, s: str, now_ms: int) -> DepthUpdate:
        prev = self.u[s]
        u = prev + 10
        self.u[s] = u
        price = 95.0 + (self.tick + hash(s)) % 7
        size = float(u % 13)
        if size:
            self.book[s][price] = size
        else:
            self.book[s].pop(price, None)
        return DepthUpdate(event_ms=now_ms, symbol=s, first_update_id=prev + 1, update_id=u,
                           bids=[(price, size)], asks=[(110.0, 1.0)], trade_ms=now_ms,
                           prev_update_id=prev)

    def lose(self, s: str) -> None:
        self.event(s, 0)  # happens on the exchange, never delivered

    async def fetch(self, symbol: str, limit: int) -> Mapping[str, Any]:
        self.requests.append((trio.current_time(), symbol))
        await trio.sleep(0.2)
        if self.fail.get(symbol):
            self.fail[symbol] -= 1
            raise OSError("connection reset")
        last = self.u[symbol] + 5
        if symbol in self.stale:
            self.stale.discard(symbol)
            last = self.u[symbol] - 50
        bids = sorted(self.book[symbol].items(), reverse=True)
        return {"lastUpdateId": last, "bids": [[str(p), str(q)] for p, q in bids],
                "asks": [["110.0", "1.0"]]}


class Rig:
    def __init__(self, symbols: list[str], **kw: Any) -> None:
        self.symbols = symbols
        self.ex = Exchange(symbols)
        self.gaps: list[tuple[Any, ...]] = []
        self.lanes = {s: FakeLane() for s in symbols}
        self.hooks = {s: Hook() for s in symbols}
        self.books = DiffBooks(symbols, levels=LEVELS, put_gap=self._gap, fetch_depth=self.ex.fetch,
                               **kw)

    async def _gap(self, row: tuple[Any, ...]) -> None:
        self.gaps.append(row)

    async def tick(self, skip: frozenset[str] = frozenset()) -> None:
        self.ex.tick += 1
        now_ms = int(trio.current_time() * 1000)
        for s in self.symbols:
            if s in skip:
                self.ex.lose(s)
            await self.books.on_depth(self.ex.event(s, now_ms), now_ms, self.lanes[s],  # type: ignore[arg-type]
                                      self.hooks[s])

    def live(self) -> set[str]:
        return {s for s, b in self.books.books.items() if b.live}

    async def run_until_live(self, limit_s: float, period: float = 1.0) -> float:
        start = trio.current_time()
        while self.live() != set(self.symbols):
            assert trio.current_time() - start < limit_s, f"{len(self.live())} live"
            await trio.sleep(period)
            await self.tick()
        return trio.current_time() - start

    def assert_books_match_the_exchange(self) -> None:
        for s in self.symbols:
            bids, asks = self.books.books[s].top(LEVELS)
            assert bids == sorted(self.ex.book[s].items(), reverse=True)[:LEVELS], s
            assert asks == [(110.0, 1.0)]


def max_weight_per_minute(times: list[float], weight: int) -> int:
    times = sorted(times)
    worst, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 60.0 + 1e-6:  # requests within (t - 60 s, t]
            j += 1
        worst = max(worst, (i - j + 1) * weight)
    return worst


async def test_mass_resync_of_200_symbols_stays_within_the_weight_budget(
        autojump_clock: trio.abc.Clock) -> None:
    symbols = [f"S{i:03d}USDT" for i in range(200)]
    rig = Rig(symbols, pacer=TokenBucket(per_minute=1200, burst=100))
    w = depth_weight(1000)
    assert w == 20
    async with trio.open_nursery() as nursery:
        await nursery.start(rig.books.run)
        await rig.tick()  # every book is syncing: 200 requests at once
        first = await rig.run_until_live(600)
        rig.assert_books_match_the_exchange()
        before = len(rig.ex.requests)
        rows_before = {s: rig.lanes[s].count for s in symbols}
        # all 200 break at once
        await trio.sleep(30)
        t_break = trio.current_time()
        await rig.tick(skip=frozenset(symbols))
        assert not rig.live() and len(rig.gaps) == 200
        second = await rig.run_until_live(600)
        rig.assert_books_match_the_exchange()
        nursery.cancel_scope.cancel()
    times = [t for t, _ in rig.ex.requests]
    assert len(times) == 400 and before == 200  # one request per symbol per sync, no retries
    worst = max_weight_per_minute(times, w)
    assert worst <= 1200, worst
    # spread out, not a storm: 5 at once (burst 100), then one per 20 / ((1200-100)/60) s
    resync = [t - t_break for t in times[200:]]
    assert max(resync) > 150 and max(resync) < 240, max(resync)
    assert sum(1 for t in resync if t < 1.0) <= 5
    assert 150 < first < 260 and 150 < second < 260, (first, second)
    # a symbol wrote no orderbook rows while it resynced, and resumed afterwards
    for s in symbols:
        assert rig.lanes[s].count > rows_before[s]
    for row in rig.gaps:
        assert row[GAPS_SCHEMA.index("reason")] == BOOK_SEQUENCE_BREAK
    print(f"\n200 symbols: initial sync {first:.0f} s, mass resync {second:.0f} s, "
          f"worst 60 s window {worst} weight of 1200")


async def test_a_break_resyncs_that_symbol_only(autojump_clock: trio.abc.Clock) -> None:
    rig = Rig(["AAAUSDT", "BBBUSDT", "CCCUSDT"], cooldown=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(rig.books.run)
        await rig.tick()
        await rig.run_until_live(30, period=0.1)
        for _ in range(20):
            await trio.sleep(0.1)
            await rig.tick()
        counts = {s: rig.lanes[s].count for s in rig.symbols}
        last_a = rig.lanes["AAAUSDT"].rows[-1]
        await trio.sleep(0.1)
        await rig.tick(skip=frozenset({"AAAUSDT"}))
        assert rig.live() == {"BBBUSDT", "CCCUSDT"}
        # the gap row: symbol, stream, interval, reason, ids
        assert len(rig.gaps) == 1
        gap = dict(zip(GAPS_SCHEMA.names, rig.gaps[0], strict=True))
        assert gap["symbol"] == "AAAUSDT" and gap["stream"] == "aaausdt@depth@100ms"
        assert gap["reason"] == BOOK_SEQUENCE_BREAK and gap["ts_ms"] == gap["start_ms"]
        assert gap["start_ms"] == last_a[0] and gap["end_ms"] > gap["start_ms"]
        assert f"expected pu={last_a[U_ID]}" in gap["detail"]
        assert rig.hooks["AAAUSDT"].gaps == [(gap["end_ms"], BOOK_SEQUENCE_BREAK)]
        # while A resyncs (its cooldown is 5 s since its last request), B and C go on
        for _ in range(10):
            await trio.sleep(0.1)
            await rig.tick()
        assert rig.lanes["AAAUSDT"].count == counts["AAAUSDT"]
        assert rig.lanes["BBBUSDT"].count == counts["BBBUSDT"] + 11
        assert rig.lanes["CCCUSDT"].count == counts["CCCUSDT"] + 11
        await rig.run_until_live(30, period=0.1)
        rig.assert_books_match_the_exchange()
        nursery.cancel_scope.cancel()
    a_requests = [t for t, s in rig.ex.requests if s == "AAAUSDT"]
    assert len(a_requests) == 2 and a_requests[1] - a_requests[0] >= 5.0
    rows = rig.lanes["AAAUSDT"].rows
    assert rows[-1][OB.index("source")] == SOURCE
    assert all(a[U_ID] < b[U_ID] for a, b in pairwise(rows))


async def test_failures_and_stale_snapshots_back_off_per_symbol(
        autojump_clock: trio.abc.Clock) -> None:
    rig = Rig(["AAAUSDT", "BBBUSDT"], cooldown=2.0, max_cooldown=60.0)
    rig.ex.fail["AAAUSDT"] = 3
    rig.ex.stale.add("BBBUSDT")
    async with trio.open_nursery() as nursery:
        await nursery.start(rig.books.run)
        await rig.tick()
        await rig.run_until_live(120, period=0.1)
        nursery.cancel_scope.cancel()
    a = [t for t, s in rig.ex.requests if s == "AAAUSDT"]
    b = [t for t, s in rig.ex.requests if s == "BBBUSDT"]
    assert len(a) == 4 and len(b) == 2
    gaps = [round(y - x, 1) for x, y in pairwise(a)]
    assert gaps == [4.0, 8.0, 16.0]  # cooldown 2 s doubling per consecutive failure
    assert b[1] - b[0] >= 4.0  # a stale snapshot counts as a failure too
    assert rig.books.stats.failures == 3 and not rig.gaps  # never live before: no gap
    assert rig.books.books["BBBUSDT"].stats.stale_snapshots == 1
    rig.assert_books_match_the_exchange()


async def test_http_429_pauses_every_request(autojump_clock: trio.abc.Clock) -> None:
    rig = Rig(["AAAUSDT", "BBBUSDT"], concurrency=1)
    calls = 0
    fetch = rig.ex.fetch

    async def limited(symbol: str, limit: int) -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RateLimited(429, 30.0)
        return await fetch(symbol, limit)

    rig.books.fetch_depth = limited
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(rig.books.run)
        await rig.tick()
        await rig.run_until_live(120, period=0.1)
        nursery.cancel_scope.cancel()
    assert rig.books.stats.rate_limited == 1
    assert all(t - start >= 30.0 for t, _ in rig.ex.requests)


async def test_token_bucket_refuses_what_it_can_never_grant() -> None:
    with pytest.raises(ValueError):
        TokenBucket(per_minute=100, burst=100)
    bucket = TokenBucket(per_minute=1200, burst=100)
    with pytest.raises(ValueError):
        await bucket.acquire(101)
    assert depth_weight(5) == 2 and depth_weight(100) == 5 and depth_weight(500) == 10


async def test_snapshots_also_spend_the_shared_rest_budget(autojump_clock: trio.abc.Clock) -> None:
    """With a budget shared with backfill (restclient.WeightBudget, 100 weight per minute here),
    snapshots wait for it too, whatever the pacer would allow."""
    shared = WeightBudget(100)
    rig = Rig([f"S{i}USDT" for i in range(10)], shared_budget=shared)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(rig.books.run)
        await rig.tick()
        await rig.run_until_live(600)
        nursery.cancel_scope.cancel()
    times = sorted(t - start for t, _ in rig.ex.requests)
    assert shared.spent == 200 and len(times) == 10
    assert max_weight_per_minute([t + start for t in times], 20) <= 100
    assert times[-1] >= 60.0  # the second five waited for the next window


async def test_depth_fetcher_over_restclient() -> None:
    answers = [
        RestResponse(200, {"x-mbx-used-weight-1m": "40"},
                     b'{"lastUpdateId":7,"E":1,"T":2,"bids":[["1.5","2"]],"asks":[]}'),
        RestResponse(429, {"retry-after": "12"}, b'{"code":-1003,"msg":"Too many requests"}'),
        RestResponse(400, {}, b'{"code":-1121,"msg":"Invalid symbol."}'),
    ]
    seen: list[tuple[str, Mapping[str, str | int]]] = []

    async def fetch(path: str, params: Mapping[str, str | int]) -> RestResponse:
        seen.append((path, params))
        return answers.pop(0)

    shared = WeightBudget(2400)
    fetch_depth = depth_fetcher(fetch, shared)
    body = await fetch_depth("BTCUSDT", 1000)
    assert body["lastUpdateId"] == 7 and shared.used == 40
    assert seen[0] == ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 1000})
    with pytest.raises(RateLimited) as info:
        await fetch_depth("BTCUSDT", 1000)
    assert info.value.retry_after == 12.0
    with pytest.raises(ValueError, match="HTTP 400"):
        await fetch_depth("NOPE", 1000)


async def test_the_usual_event_is_done_before_on_depth_returns_and_only_waiting_costs_a_coroutine(
) -> None:
    """``on_depth`` applies the usual event at once (``DONE``: nothing to await); a snapshot to
    apply first, or a full lane, come back as a coroutine that finishes the job in order."""
    from trio_harvest.repair.booksync import DONE
    from trio_harvest.venues.binance_usdm.diffbook import Snapshot

    class FullOnce(FakeLane):
        full = False

        def put_nowait(self, row: tuple[Any, ...]) -> bool:
            if self.full:
                return False
            return super().put_nowait(row)

        async def put(self, row: tuple[Any, ...]) -> None:
            self.full = False
            self.put_nowait(row)

    async def put_gap(row: tuple[Any, ...]) -> None:
        pass

    def ev(u: int) -> DepthUpdate:
        return DepthUpdate(event_ms=1000 + u, symbol="BTCUSDT", first_update_id=u,
                           update_id=u, bids=[(100.0 + u, 1.0)], asks=[(200.0, 1.0)],
                           trade_ms=1000 + u, prev_update_id=u - 1)

    books = DiffBooks(("BTCUSDT",), levels=LEVELS, put_gap=put_gap)
    lane, hook = FullOnce(), Hook()
    first = books.on_depth(ev(1), 1, lane, hook)  # type: ignore[arg-type]
    assert first is DONE  # buffered while the book waits for a snapshot
    books._ready["BTCUSDT"] = Snapshot(0, [(99.0, 1.0)], [(201.0, 1.0)])
    with_snapshot = books.on_depth(ev(2), 2, lane, hook)  # type: ignore[arg-type]
    assert with_snapshot is not DONE and lane.count == 0  # nothing happens until awaited
    await with_snapshot
    assert [r[U_ID] for r in lane.rows] == [1, 2]
    assert books.on_depth(ev(3), 3, lane, hook) is DONE  # type: ignore[arg-type]
    assert [r[U_ID] for r in lane.rows] == [1, 2, 3] and hook.books == 3
    lane.full = True
    waiting = books.on_depth(ev(4), 4, lane, hook)  # type: ignore[arg-type]
    assert waiting is not DONE and hook.books == 3
    await waiting
    assert [r[U_ID] for r in lane.rows] == [1, 2, 3, 4] and hook.books == 4
    assert books.stats.rows == 4
