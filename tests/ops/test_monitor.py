"""The health task under MockClock: it observes, logs changes and may reconnect a stalled
connection; it never stops the harvester (old fault 5)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from trio_harvest.app import Harvester
from trio_harvest.ops.health import ConnectionView, Snapshot, StreamView, Thresholds
from trio_harvest.ops.monitor import HealthMonitor
from trio_harvest.storage.backlog import Backlog

from ..conftest import make_config
from ..opsfakes import FakeDisk, FakeExchange

# The old check stopped the process once connection errors passed its threshold (a handful);
# this test produces a hundred and more.
OLD_THRESHOLD = 10


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_fault5_connection_errors_degrade_health_but_never_stop_the_harvest(
    autojump_clock: trio.testing.MockClock, tmp_path: Path,
) -> None:
    """Old fault 5: the health check set running=False and killed the process with data still
    buffered. Here connections fail three times out of four and every session is reset after
    5 s: health turns degraded, yet the harvester runs until its --duration, every trade that was
    received is written exactly once, and writes keep landing while health is degraded."""
    exchange = FakeExchange(session_frames=100, refuse=lambda route, attempt: attempt % 4 != 0)
    disk = FakeDisk()
    cfg = make_config(tmp_path, min_file_rows=1, symbols=("BTCUSDT",), depth_levels=5, book_ticker=False,
                      rotate_sec=10.0, health_interval=1.0, backoff_initial=0.5, backoff_max=4.0,
                      duration=300.0, auto_recover=False)
    harvester = Harvester(cfg, connect=exchange.connect, save=disk.save,
                          dead_letter=disk.dead_letter)
    await run_without_threads(harvester)

    failures = sum(c.stats.failures for c in harvester.connections)
    assert exchange.refused > OLD_THRESHOLD * 5 and failures > OLD_THRESHOLD * 5
    monitor = harvester.ops.monitor
    degraded = [(t, reasons) for t, status, reasons in monitor.transitions if status == "degraded"]
    assert degraded, "health never noticed the connection errors"
    assert any("connection failures" in r for _, reasons in degraded for r in reasons)
    assert harvester.stop_state.reason == "--duration 300s reached"  # only the duration ended it
    first_degraded = degraded[0][0]
    assert any(t > first_degraded + 60 for t, _ in disk.saved), "writes stopped while degraded"
    sent = exchange.sent_agg_ids("BTCUSDT")
    assert sent > 2000
    assert sorted(disk.agg_ids("BTCUSDT")) == list(range(sent))  # flushed, exactly once
    assert not disk.deadlettered and harvester.lanes.total_pending() == 0


async def test_a_stream_silent_mid_session_gets_its_connection_restarted_once(
    autojump_clock: trio.testing.MockClock, tmp_path: Path,
) -> None:
    """bookTicker keeps the public connection alive (no stall), but its depth stream stops:
    health flags it and asks that connection to reconnect, once per cool-down."""
    exchange = FakeExchange()
    exchange.mute = lambda name, now: "@depth" in name and exchange.attempts["public"] == 1 \
        and now > 5.0
    cfg = make_config(tmp_path, min_file_rows=1, symbols=("BTCUSDT",), depth_levels=5, rotate_sec=10.0,
                      health_interval=1.0, duration=60.0, auto_recover=False)
    disk = FakeDisk()
    harvester = Harvester(cfg, connect=exchange.connect, save=disk.save,
                          dead_letter=disk.dead_letter)
    await run_without_threads(harvester)
    monitor = harvester.ops.monitor
    assert monitor.reconnects_requested == 1
    assert exchange.attempts == {"market": 1, "public": 2}
    statuses = [(status, reasons) for _, status, reasons in monitor.transitions]
    assert statuses[0][0] == "degraded" and "btcusdt@depth5@100ms silent" in statuses[0][1][0]
    assert statuses[-1] == ("healthy", ())
    assert monitor.report.healthy


async def test_a_stream_that_never_delivers_is_flagged_not_reconnected(
    autojump_clock: trio.testing.MockClock, tmp_path: Path,
) -> None:
    """A stream on the wrong route gets no error from Binance, only silence."""
    exchange = FakeExchange(mute=lambda name, now: "@depth" in name)
    cfg = make_config(tmp_path, min_file_rows=1, symbols=("BTCUSDT",), depth_levels=5, rotate_sec=10.0,
                      health_interval=1.0, duration=30.0, auto_recover=False)
    disk = FakeDisk()
    h = Harvester(cfg, connect=exchange.connect, save=disk.save, dead_letter=disk.dead_letter)
    await run_without_threads(h)
    (first, status, reasons), *_ = h.ops.monitor.transitions
    assert status == "degraded" and 10.0 < first <= 12.0
    assert reasons == ("stream btcusdt@depth5@100ms has never delivered since its connection "
                       "opened 11s ago (wrong route or unknown symbol?)",)
    assert h.ops.monitor.report.problems[0].code == "stream_silent"
    assert h.ops.monitor.reconnects_requested == 0 and exchange.attempts["public"] == 1


async def no_scan() -> Backlog:
    return Backlog()


async def run_without_threads(harvester: Harvester) -> None:
    """MockClock jumps to the next deadline while a worker thread runs: keep threads out (the
    dead-letter scan) and leave no extra deadline around the start-up's temp-file sweep."""
    harvester.ops.monitor.scan = no_scan
    await harvester.run()


def _stream(age: float) -> StreamView:
    return StreamView("public[1]", "BTCUSDT", "btcusdt@bookTicker", "bookTicker", 25.0, age, 100.0,
                      True)


async def test_health_logs_state_changes_not_every_tick(caplog: pytest.LogCaptureFixture) -> None:
    class Stub:
        backlog = Backlog()
        snap = Snapshot(uptime=0.0)

        def snapshot(self, now: float) -> Snapshot:
            return self.snap

    stub = Stub()
    monitor = HealthMonitor(SimpleNamespace(connections=[]), stub,  # type: ignore[arg-type]
                            Thresholds(), interval=1.0)
    caplog.set_level(logging.INFO, logger="trio_harvest.health")
    logging.getLogger("trio_harvest.health").addHandler(caplog.handler)  # even if not propagating
    now = 0.0
    timeline = [Snapshot(uptime=1.0)] * 3 + [Snapshot(uptime=1.0, streams=(_stream(30.0 + i),))
                                             for i in range(5)]
    timeline += [Snapshot(uptime=1.0, streams=(_stream(40.0),),
                          connections=(ConnectionView("market[1]", False, 100.0),))]
    timeline += [Snapshot(uptime=1.0)] * 4
    for snap in timeline:
        stub.snap = snap
        now += 1.0
        monitor.check(now)
    logging.getLogger("trio_harvest.health").removeHandler(caplog.handler)
    messages = list(dict.fromkeys(r.getMessage() for r in caplog.records))
    assert len(messages) == 3, messages
    assert messages[0].startswith("health: degraded: stream btcusdt@bookTicker silent for 30s")
    assert messages[1].startswith("health: still degraded; new: connection market[1] down")
    assert messages[2] == "health: healthy again (was degraded for 6s)"
    assert [s for _, s, _ in monitor.transitions] == ["degraded", "degraded", "healthy"]
    assert monitor.checks == len(timeline)


async def test_a_hung_dead_letter_scan_never_holds_up_the_app(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The health task reports started before it first scans the dead letter, and a scan that
    hangs (a dead disk) is abandoned after an interval: the app can always reach its stop."""

    class Stub:
        backlog = Backlog()

        def snapshot(self, now: float) -> Snapshot:
            return Snapshot(uptime=now)

    monitor = HealthMonitor(SimpleNamespace(connections=[]), Stub(),  # type: ignore[arg-type]
                            Thresholds(), interval=0.05)
    scans = 0

    async def hang() -> Backlog:
        nonlocal scans
        scans += 1
        await trio.sleep_forever()
        raise AssertionError

    monitor.scan = hang
    async with trio.open_nursery() as nursery:
        t0 = trio.current_time()
        await nursery.start(monitor.run)
        assert trio.current_time() == t0  # started before scanning
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert scans >= 3 and monitor.checks >= 2  # each hung scan gave up after about a second
