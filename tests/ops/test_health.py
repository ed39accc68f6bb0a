"""The health verdict is a pure function of a snapshot; decayed error counts fade."""

from __future__ import annotations

import pytest

from trio_harvest import venues
from trio_harvest.ops.decay import DecayingCount, DecayingCounter
from trio_harvest.ops.health import (
    ConnectionView,
    KindView,
    LaneView,
    Snapshot,
    StreamView,
    Thresholds,
    assess,
    stale_after,
)


def stream(name: str = "btcusdt@depth20@100ms", kind: str = "depth", *, age: float | None = 0.1,
           since_connect: float | None = 60.0, delivered: bool = True) -> StreamView:
    return StreamView("public[1]", "BTCUSDT", name, kind, stale_after(kind), age, since_connect,
                      delivered)


def codes(snap: Snapshot, t: Thresholds | None = None) -> list[tuple[str, str]]:
    return [(p.code, p.subject) for p in assess(snap, t or Thresholds()).problems]


def test_decaying_count_halves_every_half_life() -> None:
    d = DecayingCount(half_life=60.0)
    d.add(8, now=0.0)
    assert d.value(0.0) == 8
    assert d.value(60.0) == pytest.approx(4)
    assert d.value(180.0) == pytest.approx(1)
    d.add(1, now=180.0)
    assert d.value(180.0) == pytest.approx(2)
    with pytest.raises(ValueError):
        DecayingCount(0)


def test_decaying_counter_takes_growth_of_a_cumulative_counter() -> None:
    c = DecayingCounter(half_life=100.0)
    assert c.update(0, 0.0) == 0
    assert c.update(10, 1.0) == pytest.approx(10)
    assert c.update(10, 101.0) == pytest.approx(5)  # no new errors: it fades
    assert c.update(3, 101.0) == pytest.approx(8)  # the counter was replaced: counts from 3


def test_stale_after_follows_each_streams_cadence() -> None:
    assert stale_after("depth", "100ms") == 10.0
    assert stale_after("depth", "500ms") == 50.0
    assert stale_after("bookTicker") == 25.0
    assert stale_after("aggTrade") == 100.0


def test_a_quiet_healthy_harvester_is_healthy() -> None:
    snap = Snapshot(uptime=100.0, streams=(stream(),),
                    connections=(ConnectionView("public[1]", True, 0.0),),
                    lanes=(LaneView("prices", "BTCUSDT", 10, 100, 200),),
                    kinds=(KindView("prices", 10, rows_written=5, since_write=3.0),))
    report = assess(snap)
    assert report.healthy and report.status == "healthy" and report.reasons == []
    assert report.as_dict() == {"status": "healthy", "reasons": [], "problems": [], "notes": []}


def test_stream_that_never_delivered_is_flagged_after_its_cadence_allows() -> None:
    """Binance answers a stream on the wrong route with silence: no error, no frame, ever."""
    early = Snapshot(uptime=5.0, streams=(stream(age=None, since_connect=5.0, delivered=False),))
    assert assess(early).healthy  # a fresh connection gets its grace
    late = Snapshot(uptime=30.0, streams=(stream(age=None, since_connect=30.0, delivered=False),))
    report = assess(late)
    assert codes(late) == [("stream_silent", "btcusdt@depth20@100ms")]
    assert "never delivered" in report.reasons[0] and "wrong route" in report.reasons[0]
    assert report.reconnect == ()  # reconnecting does not fix a wrong route


def test_stale_stream_is_a_problem_and_much_later_a_reconnect_suggestion() -> None:
    snap = Snapshot(uptime=100.0, streams=(stream(age=15.0),))
    assert codes(snap) == [("stream_stale", "btcusdt@depth20@100ms")]
    assert assess(snap).reconnect == ()
    longer = Snapshot(uptime=100.0, streams=(stream(age=25.0),))
    assert assess(longer).reconnect == ("public[1]",)
    quiet_trades = Snapshot(uptime=100.0, streams=(stream("btcusdt@aggTrade", "aggTrade",
                                                          age=60.0),))
    assert assess(quiet_trades).healthy  # trades may pause for a minute


def test_connection_down_for_long_is_reported_once_not_per_stream() -> None:
    snap = Snapshot(uptime=100.0,
                    streams=(stream(since_connect=None, age=90.0),),
                    connections=(ConnectionView("public[1]", False, 50.0,
                                                last_error="OSError: refused"),))
    assert codes(snap) == [("connection_down", "public[1]")]
    assert "refused" in assess(snap).reasons[0]
    brief = Snapshot(uptime=100.0, connections=(ConnectionView("public[1]", False, 5.0),))
    assert assess(brief).healthy


def test_error_bursts_count_while_recent_and_fade_away() -> None:
    """A burst an hour ago is not a failure now."""
    conn = DecayingCounter(half_life=300.0)
    value = conn.update(20, now=0.0)
    assert codes(Snapshot(uptime=10.0, errors={"connection": value})) == [
        ("connection_errors", "connection")]
    hour_later = conn.update(20, now=3600.0)
    assert hour_later < 0.01
    assert assess(Snapshot(uptime=3600.0, errors={"connection": hour_later})).healthy


def test_a_kind_whose_writes_fail_now_is_a_problem_until_the_next_success() -> None:
    failing = KindView("prices", 0, last_error="PermissionError: denied", failing_for=12.0,
                       failures_in_a_row=3)
    snap = Snapshot(uptime=10.0, errors={"write": 6.0}, kinds=(failing,))
    report = assess(snap)
    assert codes(snap) == [("writes_failing", "prices")]  # not twice (decayed count too)
    assert "denied" in report.reasons[0] and "3 in a row" in report.reasons[0]
    recovered = KindView("prices", 0, last_error="PermissionError: denied")
    assert codes(Snapshot(uptime=10.0, errors={"write": 4.0}, kinds=(recovered,))) == [
        ("write_errors", "write")]  # recent failures still count for a while...
    assert assess(Snapshot(uptime=10.0, errors={"write": 2.0}, kinds=(recovered,))).healthy


def test_capped_decay_forgets_even_a_long_outage_within_a_half_life() -> None:
    c = DecayingCounter(half_life=60.0, cap=6.0)
    assert c.update(500, now=3600.0) == 6.0  # an hour of failures
    assert c.update(500, now=3660.0) == pytest.approx(3.0)
    assert c.update(500, now=3661.0) < Thresholds().write_errors


def test_lanes_full_is_a_problem_above_high_only_a_note() -> None:
    snap = Snapshot(uptime=10.0, lanes=(LaneView("prices", "BTCUSDT", 200, 100, 200),
                                        LaneView("prices", "ETHUSDT", 150, 100, 200)))
    report = assess(snap)
    assert codes(snap) == [("lane_full", "prices/BTCUSDT")]
    assert [n.code for n in report.notes] == ["lane_high"]


def test_writers_saturated_for_long_means_a_stuck_disk() -> None:
    t = Thresholds(limiter_saturated_after=60.0)
    assert assess(Snapshot(uptime=99.0, limiter_in_use=2, limiter_total=2,
                           limiter_saturated_for=30.0), t).healthy
    assert codes(Snapshot(uptime=99.0, limiter_in_use=2, limiter_total=2,
                          limiter_saturated_for=61.0), t) == [("writers_saturated", "limiter")]
    assert codes(Snapshot(uptime=99.0, writer_threads=8, writer_max_stuck=8)) == [
        ("storage_stuck", "writer")]


def test_no_successful_write_for_long_with_rows_waiting() -> None:
    t = Thresholds(write_stale_after=180.0)
    assert codes(Snapshot(uptime=500.0, kinds=(KindView("prices", 10, since_write=200.0),)),
                 t) == [("no_write", "prices")]
    assert assess(Snapshot(uptime=500.0, kinds=(KindView("prices", 0, since_write=200.0),)),
                  t).healthy  # nothing waiting: nothing to write
    assert codes(Snapshot(uptime=500.0, kinds=(KindView("prices", 10),)), t) == [
        ("no_write", "prices")]  # never wrote since the start


def test_deadletter_backlog_is_a_note_that_says_what_to_do() -> None:
    manual = assess(Snapshot(uptime=1.0, deadletter_files=3, deadletter_rows=30))
    assert manual.healthy and "recover" in manual.notes[0].message
    auto = assess(Snapshot(uptime=1.0, deadletter_files=3, deadletter_rows=30, auto_recover=True))
    assert "automatic" in auto.notes[0].message


def test_derivatives_streams_never_cry_wolf() -> None:
    """markPrice@1s comes every second whatever the market does: stale after 100 s like
    trades; liquidations come in bursts and may be silent for hours: a quiet forceOrder
    stream, even one that never delivered in a day, is no problem; a silent mark price is."""
    assert stale_after("markPrice") == 100.0
    assert stale_after("forceOrder") >= 86_400.0
    day = 86_400.0
    quiet = (stream("btcusdt@forceOrder", "forceOrder", age=None, since_connect=day,
                    delivered=False),
             stream("ethusdt@forceOrder", "forceOrder", age=day - 1, since_connect=day))
    snap = Snapshot(uptime=day, streams=quiet,
                    connections=(ConnectionView("public[1]", True, 0.0),))
    assert codes(snap) == []
    silent = stream("btcusdt@markPrice@1s", "markPrice", age=None, since_connect=120.0,
                    delivered=False)
    assert codes(Snapshot(uptime=120.0, streams=(silent,), connections=(
        ConnectionView("public[1]", True, 0.0),))) == [("stream_silent", "btcusdt@markPrice@1s")]


def test_bybit_tickers_and_liquidation_topics_never_cry_wolf() -> None:
    """Bybit linear's tickers change within a second on a listed contract: stale after 100 s;
    its allLiquidation topic may be silent for hours, even never deliver in a day."""
    bybit = venues.get("bybit-linear")
    assert stale_after("tickers", venue=bybit) == 100.0
    day = 86_400.0
    quiet = StreamView("linear[4]", "BTCUSDT", "allLiquidation.BTCUSDT", "allLiquidation",
                       stale_after("allLiquidation", venue=bybit), None, day, False)
    assert codes(Snapshot(uptime=day, streams=(quiet,), connections=(
        ConnectionView("linear[4]", True, 0.0),))) == []
    silent = StreamView("linear[4]", "BTCUSDT", "tickers.BTCUSDT", "tickers",
                        stale_after("tickers", venue=bybit), 150.0, 200.0, True)
    assert codes(Snapshot(uptime=200.0, streams=(silent,), connections=(
        ConnectionView("linear[4]", True, 0.0),))) == [("stream_stale", "tickers.BTCUSDT")]
