"""What an operator sees between ``connected`` and ``stopping``: a periodic one-line progress
report, and a clear, repeated line while no data arrives at all.

Owns the wording and rhythm of those two lines. ``progress_line`` and ``no_data_line`` are pure
(numbers in, text out); ``Progress.run`` is the task that samples the harvester through its
``HarvestView`` and logs them. Observes only: never reconnects, stops or changes anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import trio

from ..hints import plural

if TYPE_CHECKING:
    from .view import HarvestView

log = logging.getLogger("trio_harvest.progress")
reach_log = logging.getLogger("trio_harvest.ingest")  # "cannot reach" is about ingest

# The "cannot reach" line: first after this many health intervals without any connection up
# (10 s by default), then again every NO_DATA_EVERY intervals (a minute) while it lasts.
NO_DATA_FIRST = 2
NO_DATA_EVERY = 12
DNS_MARKS = ("gaierror", "Name or service not known", "nodename nor servname",
             "Temporary failure in name resolution", "No address associated")


@dataclass(frozen=True, slots=True)
class Sample:
    """The counters a progress line compares between two moments."""

    at: float  # trio time
    frames: int
    rows: int
    files: int


def duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h04m``, ``9d02h``: fits a log line."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def progress_line(prev: Sample, now: Sample, *, uptime: float, lag_ms: float | None,
                  deadletter_files: int, deadletter_rows: int, health: str, problems: int,
                  buffered: int = 0) -> str:
    """``up 5m00s; 312 msg/s; written 91,240 rows in 38 files (+…); 1,200 rows buffered; lag
    4 ms; dead letter empty; healthy``."""
    span = max(now.at - prev.at, 1e-9)
    rate = (now.frames - prev.frames) / span
    lag = "lag ?" if lag_ms is None else f"lag {lag_ms:.0f} ms"
    dl = "dead letter empty" if not deadletter_files else \
        f"dead letter {plural(deadletter_files, 'file')}, {plural(deadletter_rows, 'row')}"
    state = health if not problems else f"{health} ({plural(problems, 'problem')})"
    return (f"up {duration(uptime)}; {rate:,.0f} msg/s; "
            f"written {plural(now.rows, 'row')} in {plural(now.files, 'file')} "
            f"(+{now.rows - prev.rows:,} rows, +{now.files - prev.files:,} files since "
            f"{duration(span)} ago); {plural(buffered, 'row')} buffered; {lag}; {dl}; {state}")


def endpoint_error(url: str, error: str) -> str:
    """The last error, naming the host when a DNS lookup failed (the library does not)."""
    if any(mark in error for mark in DNS_MARKS):
        host = urlsplit(url).hostname or url
        return f"DNS lookup of {host!r} failed ({error})"
    return error


def no_data_line(endpoint: str, *, down_for: float, ever_received: bool, connections: int,
                 failures: int, last_error: str, backoff_max: float) -> str:
    what = "no frame received yet" if not ever_received else "no connection up"
    last = f"; last error: {last_error}" if last_error else ""
    return (f"{what}: cannot reach {endpoint} for {duration(down_for)} "
            f"({plural(connections, 'connection')}, {plural(failures, 'failed attempt')}{last}); "
            f"still retrying, at most every {backoff_max:g}s")


class Progress:
    """The task: a progress line every ``interval`` seconds (0 = off) and, while no connection is
    up, a "cannot reach" line after ``NO_DATA_FIRST`` health intervals, then every
    ``NO_DATA_EVERY``."""

    def __init__(self, harvester: HarvestView, *, interval: float,
                 health: Callable[[], tuple[str, int]],
                 backlog: Callable[[], tuple[int, int]]) -> None:
        self.h = harvester
        self.interval = interval
        self.tick = min(1.0, harvester.config.health_interval)
        self.first = NO_DATA_FIRST * harvester.config.health_interval
        self.every = NO_DATA_EVERY * harvester.config.health_interval
        self.health = health  # (status, number of problems) of the last health check
        self.backlog = backlog  # (files, rows) of the last dead-letter scan
        self.lines = 0
        self.no_data_lines = 0
        self._down_since: float | None = None
        self._next_no_data = self.first
        self._prev: Sample | None = None

    def sample(self, now: float) -> Sample:
        kinds = self.h.rotation.stats.kinds.values()
        return Sample(now, self.h.router.stats.frames, sum(k.rows_written for k in kinds),
                      sum(k.files_written for k in kinds))

    def report(self, now: float) -> str:
        cur = self.sample(now)
        prev = self._prev or Sample(self.h.started_at or now, 0, 0, 0)
        self._prev = cur
        status, problems = self.health()
        files, rows = self.backlog()
        started = self.h.started_at if self.h.started_at is not None else now
        return progress_line(prev, cur, uptime=now - started, lag_ms=self.h.repair.stats.lag_ms,
                             deadletter_files=files, deadletter_rows=rows, health=status,
                             problems=problems, buffered=self.h.lanes.total_pending())

    def check_reach(self, now: float) -> str | None:
        """The "cannot reach" line when it is due, else None."""
        conns = self.h.connections
        if not conns:  # none yet (a shard whose share comes with the listing): from now on
            self._down_since, self._next_no_data = now, self.first
            return None
        if any(c.stats.connected for c in conns) or self.h.stop_state.requested.is_set():
            self._down_since, self._next_no_data = None, self.first
            return None
        if self._down_since is None:  # never connected: down since the start
            started = self.h.started_at if self.h.started_at is not None else now
            self._down_since = now if any(c.stats.connects for c in conns) else started
        down_for = now - self._down_since
        if down_for < self._next_no_data:
            return None
        self._next_no_data = down_for + self.every
        last = next((c for c in conns if c.stats.last_error), conns[0])
        return no_data_line(
            _base(last.url), down_for=down_for, ever_received=self.h.router.stats.frames > 0,
            connections=len(conns), failures=sum(c.stats.failures for c in conns),
            last_error=endpoint_error(last.url, last.stats.last_error),
            backoff_max=self.h.config.backoff_max)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        stop = self.h.stop_state.requested
        next_report = trio.current_time() + self.interval
        while not stop.is_set():
            await trio.sleep(self.tick)
            now = trio.current_time()
            line = self.check_reach(now)
            if line is not None:
                self.no_data_lines += 1
                reach_log.warning("%s", line)
            if self.interval > 0 and now >= next_report and not stop.is_set():
                next_report = now + self.interval
                self.lines += 1
                log.info("%s", self.report(now))


def _base(url: str) -> str:
    """``ws://127.0.0.1:1`` of ``ws://127.0.0.1:1/market/stream?streams=…``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url
