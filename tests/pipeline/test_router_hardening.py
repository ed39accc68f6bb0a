"""Values no column holds (class 2), event times that do not fit the
stream (class 4), per-symbol failures (class 8) and stream names nobody subscribed (class 9)."""

from __future__ import annotations

import json
from typing import Any

from trio_harvest.kinds import DEFAULT_WATERMARKS, ORDERBOOK, PRICES, QUOTES
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.pipeline.router import Router
from trio_harvest.pipeline.timeguard import TimeGuard
from trio_harvest.repair.booksync import DiffBooks
from trio_harvest.venues.binance_usdm.diffbook import Snapshot

NOW = 1_700_000_000_000
WEEK = 7 * 86_400_000


def agg(i: int, t: int = NOW, **over: Any) -> str:
    data: dict[str, Any] = {"e": "aggTrade", "E": t, "s": "BTCUSDT", "a": i, "p": "100.5",
                            "q": "0.1", "f": i, "l": i, "T": t, "m": False}
    data.update(over)
    return json.dumps({"stream": over.pop("stream", "btcusdt@aggTrade"), "data": data})


def ticker(u: int, t: int = NOW, stream: str = "btcusdt@bookTicker") -> str:
    return json.dumps({"stream": stream, "data": {
        "e": "bookTicker", "u": u, "s": "BTCUSDT", "b": "100.0", "B": "1", "a": "100.1",
        "A": "2", "T": t, "E": t}})


def make(clock: list[int] | None = None, streams: dict[str, str] | None = None) -> Router:
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    wall = clock if clock is not None else [NOW]
    return Router(lanes, ("BTCUSDT",), depth_levels=5, wall_ms=lambda: wall[0], streams=streams)


def ids(router: Router, kind: str = PRICES) -> list[int]:
    col = 4 if kind in (PRICES, QUOTES) else 5
    return [r[col] for r in router.lanes.get(kind, "BTCUSDT").drain()]


async def test_values_no_column_holds_are_rejected_at_decode() -> None:
    router = make()
    await router.handle(agg(0))
    await router.handle(agg(1))
    bad = [
        agg(2, f=2**63),  # beyond int64: once made a whole batch's Parquet write fail
        agg(2, a=2**64),
        agg(2, p="nan"),
        agg(2, q="inf"),
        agg(2, p="-1"),
        agg(2, q="0"),
        agg(2, T=0),
        agg(2, a=-5),
    ]
    for frame in bad:
        await router.handle(frame)
    await router.handle(agg(2))
    assert ids(router) == [0, 1, 2]
    assert router.stats.rejected == len(bad)
    assert router.stats.unexpected == 0


async def test_one_future_event_time_never_reaches_a_lane_or_the_signals() -> None:
    router = make()
    seen: list[int] = []

    class Hook:  # the signal hooks: decoded messages on the hot path, rows otherwise
        def on_trade_record(self, t: Any) -> None:
            seen.append(t.trade_ms)

        def on_quote(self, b: Any, recv_ms: int) -> None:
            seen.append(b.trade_ms or b.event_ms)

        def on_book_levels(self, d: Any, source: str) -> None:
            seen.append(d.trade_ms or d.event_ms)

        def on_trade(self, row: tuple[Any, ...]) -> None:
            seen.append(row[0])

        def on_book(self, row: tuple[Any, ...]) -> None:
            seen.append(row[0])

    router.hooks = {"BTCUSDT": Hook()}
    for i in range(5):
        await router.handle(agg(i, t=NOW + i))
    await router.handle(agg(5, t=NOW + 3 * WEEK))  # weeks ahead, both E and T
    await router.handle(agg(6, t=NOW + 6, E=NOW + 3 * WEEK))  # E alone far ahead
    await router.handle(agg(7, t=NOW + 7, T=NOW - WEEK))  # T alone far behind E
    for i in range(8, 12):
        await router.handle(agg(i, t=NOW + i))
    assert ids(router) == [0, 1, 2, 3, 4, 8, 9, 10, 11]
    assert max(seen) < NOW + 1000
    assert router.stats.rejected == 3


async def test_a_lone_outlier_as_the_very_first_frame_never_becomes_the_reference() -> None:
    router = make()
    await router.handle(agg(100, t=NOW + 3 * WEEK))
    for i in range(5):
        await router.handle(agg(i, t=NOW + i))
    assert ids(router) == [0, 1, 2, 3, 4]
    assert router.stats.quarantined == 1


async def test_a_clock_that_really_moved_moves_the_reference_without_losing_frames() -> None:
    clock = [NOW]
    router = make(clock)
    for i in range(3):
        await router.handle(agg(i, t=NOW + i))
    clock[0] = NOW + 2 * 3_600_000  # the host clock was stepped two hours ahead
    for i in range(3, 8):
        await router.handle(agg(i, t=NOW + i))
    assert ids(router) == list(range(8))
    assert router.stats.rejected == 0
    assert router.time_guards["btcusdt@aggTrade"].reanchored == 1


async def test_frames_still_held_at_a_stop_are_routed_when_nothing_speaks_against_them() -> None:
    router = make()
    await router.handle(agg(0))
    assert ids(router) == []  # one frame: not yet a reference
    await router.release_held()
    assert ids(router) == [0]


async def test_state_exists_only_for_subscribed_streams() -> None:
    router = make(streams={"btcusdt@aggTrade": "BTCUSDT", "btcusdt@bookTicker": "BTCUSDT"})
    for u in range(1, 4):
        await router.handle(ticker(u))
    for n in range(500):  # a peer inventing stream names: no state, no bypassed dedup
        await router.handle(ticker(2, stream=f"btcusdt@x{n}"))
    await router.handle(ticker(2, stream="ethusdt@bookTicker"))
    await router.handle(agg(0, stream="btcusdt@bookTicker"))  # a trade on a book stream: kept
    assert ids(router, QUOTES) == [1, 2, 3] and ids(router, ORDERBOOK) == []
    assert set(router.stats.last_seen) <= {"btcusdt@aggTrade", "btcusdt@bookTicker"}
    assert router.stats.unexpected == 501


async def test_without_a_subscription_list_stream_names_are_bounded_per_symbol() -> None:
    router = make()
    for n in range(100):
        await router.handle(ticker(n + 1, stream=f"btcusdt@x{n}"))
    assert len(router.stats.last_seen) <= 8


def _depth(symbol: str, u: int, bid: str = "100.0") -> str:
    return json.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": {
        "e": "depthUpdate", "E": NOW + u, "T": NOW + u, "s": symbol, "U": u, "u": u,
        "pu": u - 1, "b": [[bid, "1"]], "a": [["100.1", "2"]]}})


async def test_a_nan_level_in_a_diff_book_costs_nothing_else() -> None:
    """It used to enter the book and raise KeyError out of the router on every later event
    (reconnecting a whole connection); now it is rejected and only that book resyncs."""
    symbols = ("BTCUSDT", "ETHUSDT")
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    router = Router(lanes, symbols, depth_levels=5, book="diff", wall_ms=lambda: NOW)
    gaps: list[tuple[Any, ...]] = []

    async def put_gap(row: tuple[Any, ...]) -> None:
        gaps.append(row)

    books = DiffBooks(symbols, levels=5, put_gap=put_gap)
    for s in symbols:
        books._ready[s] = Snapshot(1, [(99.0, 1.0)], [(101.0, 1.0)])
        books._pending.add(s)
    router.diff_books = books
    for u in range(2, 5):
        for s in symbols:
            await router.handle(_depth(s, u))
    await router.handle(_depth("BTCUSDT", 5, bid="nan"))
    for u in range(5, 9):
        await router.handle(_depth("ETHUSDT", u))
        await router.handle(_depth("BTCUSDT", u + 1))
    await router.release_held()
    eth = [r[5] for r in lanes.get(ORDERBOOK, "ETHUSDT").drain()]
    assert eth == list(range(2, 9))
    assert router.stats.rejected == 1 and router.stats.book_errors == 0
    assert len(gaps) == 1 and gaps[0][1] == "BTCUSDT"  # the one book resyncs, with a record


def test_the_time_guard_hot_path_follows_a_drifting_stream() -> None:
    guard: TimeGuard[int] = TimeGuard(tolerance_ms=1000)
    assert not guard.fits(0)
    assert guard.judge(0, 0) == []
    assert guard.judge(10, 1) == [0, 1]
    lag = 10
    for i in range(100):  # a slow drift is followed, never judged
        lag += 500
        assert guard.fits(lag), i


async def test_an_unexpected_failure_in_one_diff_book_stays_in_that_book() -> None:
    lanes = Lanes(dict(DEFAULT_WATERMARKS), wake=lambda lane: None)
    router = Router(lanes, ("BTCUSDT",), depth_levels=5, book="diff", wall_ms=lambda: NOW)

    async def put_gap(row: tuple[Any, ...]) -> None:
        pass

    books = DiffBooks(("BTCUSDT",), levels=5, put_gap=put_gap)
    calls: list[int] = []

    async def broken(ev: Any, recv_ms: int, lane: Any, hook: Any) -> None:
        calls.append(ev.update_id)
        raise KeyError(float("nan"))

    books.on_depth = broken  # type: ignore[method-assign]
    router.diff_books = books
    for u in range(1, 4):
        await router.handle(json.dumps({"stream": "btcusdt@depth@100ms", "data": {
            "e": "depthUpdate", "E": NOW, "T": NOW, "s": "BTCUSDT", "U": u, "u": u,
            "pu": u - 1, "b": [["100", "1"]], "a": []}}))
    await router.release_held()
    await router.handle(agg(0))
    await router.handle(agg(1))
    assert calls == [1, 2, 3] and router.stats.book_errors == 3
    assert ids(router) == [0, 1]


def test_at_a_stop_the_frames_that_agree_win_when_there_is_no_reference_yet() -> None:
    guard: TimeGuard[str] = TimeGuard(tolerance_ms=1000)
    assert guard.judge(0, "real") == []
    assert guard.judge(3 * WEEK, "outlier") == []
    assert guard.release() in (["real"], ["outlier"])  # one against one: either, never both
    assert len(guard.quarantined) == 1
    guard = TimeGuard(tolerance_ms=1000)
    guard.judge(3 * WEEK, "outlier")
    guard.judge(0, "a")
    guard.held.append((10, "b"))  # (judged, two that agree would have made the reference)
    assert guard.release() == ["a", "b"]


async def test_the_exchange_clock_estimate_moves_by_a_bounded_step(tmp_path: Any) -> None:
    from contextlib import asynccontextmanager

    from trio_harvest.repair.coordinator import LAG_STEP_MS, Repair

    from ..conftest import make_config

    @asynccontextmanager
    async def no_socket(url: str) -> Any:
        raise AssertionError(url)
        yield

    cfg = make_config(tmp_path, symbols=["BTCUSDT"])
    lanes = Lanes(dict(cfg.watermarks), wake=lambda lane: None)
    router = Router(lanes, cfg.symbols, depth_levels=cfg.depth_levels, wall_ms=lambda: NOW + 50)
    repair = Repair(cfg, lanes, no_socket, wall_ms=lambda: NOW + 50, use_http=False)
    router.gate = repair
    for i in range(20):
        await router.handle(agg(i, t=NOW + i))
    before = repair.stats.lag_ms
    assert before is not None
    # one trade whose E is weeks ahead, past every other check (as if the guard were not there)
    from trio_harvest.venues.binance_usdm.decode import decode_frame

    t = decode_frame(agg(20, t=NOW + 3 * WEEK)).data
    repair.trade(t, NOW + 50)  # type: ignore[arg-type]
    assert repair.stats.lag_ms is not None
    assert abs(repair.stats.lag_ms - before) <= LAG_STEP_MS


async def test_a_failing_signal_hook_costs_only_that_symbols_signals() -> None:
    router = make()

    class Broken:
        def on_trade(self, row: tuple[Any, ...]) -> None:
            raise ZeroDivisionError("a bug in a preview signal")

        def on_book(self, row: tuple[Any, ...]) -> None:
            raise ZeroDivisionError("a bug in a preview signal")

    router.hooks = {"BTCUSDT": Broken()}
    for i in range(5):
        await router.handle(agg(i, t=NOW + i))  # would raise out of the router (a reconnect)
    await router.release_held()
    assert ids(router) == list(range(5)) and router.stats.hook_errors == 5
