"""The progress line and the "cannot reach" line, as pure text and as timing over a stub view."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from trio_harvest.ops.progress import (
    Progress,
    Sample,
    duration,
    endpoint_error,
    progress_line,
)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def test_durations_fit_a_log_line() -> None:
    assert [duration(s) for s in (0, 45, 725, 11_040, 9 * 86400 + 7300)] == \
        ["0s", "45s", "12m05s", "3h04m", "9d02h"]


def test_the_progress_line_says_rate_writes_buffer_lag_dead_letter_and_health() -> None:
    line = progress_line(Sample(0.0, 0, 0, 0), Sample(300.0, 93_600, 91_240, 38), uptime=300.0,
                         lag_ms=4.2, deadletter_files=1, deadletter_rows=20_000,
                         health="degraded", problems=1, buffered=1_200)
    assert line == ("up 5m00s; 312 msg/s; written 91,240 rows in 38 files (+91,240 rows, +38 "
                    "files since 5m00s ago); 1,200 rows buffered; lag 4 ms; dead letter 1 file, "
                    "20,000 rows; degraded (1 problem)")


def test_a_dns_failure_names_its_host() -> None:
    assert endpoint_error("wss://fstream.binanse.com/market/stream?streams=x",
                          "gaierror: [Errno -2] Name or service not known") == \
        "DNS lookup of 'fstream.binanse.com' failed (gaierror: [Errno -2] Name or service not known)"
    assert endpoint_error("ws://127.0.0.1:1", "OSError: refused") == "OSError: refused"


def _view(connected: bool, frames: int = 0) -> Any:
    stats = SimpleNamespace(connected=connected, connects=0, failures=3,
                            last_error="OSError: all attempts to connect to 127.0.0.1:1 failed")
    conn = SimpleNamespace(stats=stats, url="ws://127.0.0.1:1/market/stream?streams=a")
    return SimpleNamespace(
        connections=[conn], started_at=0.0, stop_state=SimpleNamespace(requested=trio.Event()),
        config=SimpleNamespace(health_interval=5.0, backoff_max=30.0),
        router=SimpleNamespace(stats=SimpleNamespace(frames=frames)))


def test_cannot_reach_is_said_after_10s_then_every_minute_while_it_lasts() -> None:
    view = _view(connected=False)
    p = Progress(view, interval=0, health=lambda: ("healthy", 0), backlog=lambda: (0, 0))
    said = [t for t in range(0, 200) if p.check_reach(float(t)) is not None]
    assert said == [10, 70, 130, 190]
    line = p.check_reach(250.0)
    assert line is not None and line.startswith(
        "no frame received yet: cannot reach ws://127.0.0.1:1 for 4m10s (1 connection, 3 failed "
        "attempts; last error: OSError: all attempts to connect to 127.0.0.1:1 failed)")
    view.connections[0].stats.connected = True
    assert p.check_reach(260.0) is None  # it is over: silence, and the clock starts again


async def test_a_new_run_says_its_first_progress_line_within_30s_then_every_interval(
        autojump_clock: trio.testing.MockClock) -> None:
    view = _view(connected=True, frames=10)
    view.rotation = SimpleNamespace(stats=SimpleNamespace(kinds={}))
    view.repair = SimpleNamespace(stats=SimpleNamespace(lag_ms=3.0))
    view.lanes = SimpleNamespace(total_pending=lambda: 0)
    p = Progress(view, interval=300, health=lambda: ("healthy", 0), backlog=lambda: (0, 0))
    said: list[float] = []
    p_report = p.report

    def report(now: float) -> str:
        said.append(now)
        return p_report(now)

    p.report = report  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(p.run)
        await trio.sleep(700)
        nursery.cancel_scope.cancel()
    assert [round(t) for t in said] == [30, 330, 630]
