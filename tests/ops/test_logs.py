"""Log output: one readable line by default, JSON on request; repeated errors rate-limited with
a count."""

from __future__ import annotations

import io
import json
import logging

import pytest
import trio
import trio.testing

from trio_harvest.ingest.connection import make_connections
from trio_harvest.ops.logs import setup_logging
from trio_harvest.ratelimit import RateLimitedLog
from trio_harvest.venues.binance_usdm.streams import MARKET, ConnectionPlan, StreamSpec

from ..opsfakes import FakeExchange, logging_restored


def test_text_lines_are_one_readable_line() -> None:
    out = io.StringIO()
    with logging_restored():
        setup_logging("INFO", "text", out)
        logging.getLogger("trio_harvest.health").warning("health: degraded: %s", "x")
    line = out.getvalue()
    assert line.count("\n") == 1
    assert line.split(" ", 1)[1] == "WARNING health: health: degraded: x\n"
    assert line[:24].endswith("Z")


def test_json_lines_are_one_object_per_line() -> None:
    out = io.StringIO()
    with logging_restored():
        setup_logging("INFO", "json", out)
        log = logging.getLogger("trio_harvest.rotation")
        log.info("wrote %d rows", 5)
        try:
            raise OSError("disk")
        except OSError:
            log.exception("write failed")
    docs = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [d["msg"] for d in docs] == ["wrote 5 rows", "write failed"]
    assert docs[0]["level"] == "INFO" and docs[0]["logger"] == "trio_harvest.rotation"
    assert "OSError: disk" in docs[1]["exc"]


def test_repeats_are_counted_and_reported_with_the_next_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    logger = logging.getLogger("test.ratelimit")
    rl = RateLimitedLog(logger, interval=10.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="test.ratelimit")
    for t in range(25):
        now[0] = float(t)
        rl.log(logging.WARNING, "k", "disk full")
    assert [r.getMessage() for r in caplog.records] == [
        "disk full", "disk full (and 9 more like it since the last report)",
        "disk full (and 9 more like it since the last report)"]
    assert rl.suppressed("k") == 4


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_flapping_connection_is_logged_once_a_minute_with_a_count(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture,
) -> None:
    exchange = FakeExchange(refuse=lambda route, attempt: True)
    plan = ConnectionPlan(MARKET, (StreamSpec("BTCUSDT", "aggTrade", "btcusdt@aggTrade"),))

    async def handle(frame: str | bytes) -> None:
        pass

    (conn,) = make_connections([plan], "ws://x", exchange.connect, handle, stall_timeout=30,
                               backoff_initial=0.5, backoff_max=2.0)
    logger = logging.getLogger("trio_harvest.ingest")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="trio_harvest.ingest")
    try:
        with trio.move_on_after(300):  # five minutes of mock time
            await conn.run()
    finally:
        logger.removeHandler(caplog.handler)
    lines = list(dict.fromkeys(r.getMessage() for r in caplog.records))
    assert conn.stats.failures > 200
    assert 5 <= len(lines) <= 6, lines  # once a minute
    assert "more like it since the last report" in lines[1]
