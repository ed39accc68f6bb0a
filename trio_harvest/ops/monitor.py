"""The health task: every ``health_interval`` it samples the harvester, judges it (``health.assess``),
logs *changes* of the verdict and may ask a stalled connection to reconnect.

Owns the rhythm of health checks, the dead-letter backlog scan (in a worker thread), the log
lines for state changes (healthy → degraded → healthy, and a changed set of problems) and the
reconnect cool-down. Observes and reports only: it never stops the harvester, never cancels
anything but a connection's session through ``Connection.request_reconnect`` (old fault 5).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from ..storage.backlog import Backlog, scan_backlog
from .health import HealthReport, Snapshot, Thresholds, assess, group, group_keys
from .sampler import Sampler

if TYPE_CHECKING:
    from .view import HarvestView

log = logging.getLogger("trio_harvest.health")

RECONNECT_COOLDOWN = 300.0  # per connection
# Across all connections: a forced reconnect is a last resort and can never storm. At most this
# many in a burst, refilled at one per RECONNECT_SPACING seconds (500 symbols on 5 connections
# that all look stale get one reconnect a minute, not 5 at once every check).
RECONNECT_BURST = 1
RECONNECT_SPACING = 60.0


class HealthMonitor:
    def __init__(self, harvester: HarvestView, sampler: Sampler, thresholds: Thresholds, *,
                 interval: float, reconnect_cooldown: float = RECONNECT_COOLDOWN) -> None:
        self.h = harvester
        self.sampler = sampler
        self.thresholds = thresholds
        self.interval = interval
        self.reconnect_cooldown = reconnect_cooldown
        self.report = HealthReport()
        self.checks = 0
        # (time, status, reasons) of the last state changes; bounded for runs of weeks
        self.transitions: deque[tuple[float, str, tuple[str, ...]]] = deque(maxlen=1000)
        self.reconnects_requested = 0
        self._degraded_since: float | None = None
        self._keys: frozenset[tuple[str, str]] = frozenset()
        self._last_reconnect: dict[str, float] = {}
        self._budget = float(RECONNECT_BURST)
        self._budget_at: float | None = None
        self.reconnects_refused = 0  # suggestions the budget turned down
        self.scan: Callable[[], Awaitable[Backlog]] = self._scan_in_thread  # tests replace it

    def evaluate(self, now: float) -> tuple[Snapshot, HealthReport]:
        """A fresh verdict (for /healthz and the metrics); logs and acts on nothing."""
        snap = self.sampler.snapshot(now)
        return snap, assess(snap, self.thresholds)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # never hold up the app (or its stop) on a slow disk scan
        await self.refresh_backlog()
        while True:
            await trio.sleep(self.interval)
            try:
                await self.refresh_backlog()
                if self.stopping():
                    continue  # stopping: streams go quiet on purpose; keep the last verdict
                self.check(trio.current_time())
            except Exception:  # a bug in health must never take the harvester down
                log.exception("health check failed; trying again next interval")

    async def _scan_in_thread(self) -> Backlog:
        return await trio.to_thread.run_sync(scan_backlog, self.h.config.deadletter_path,
                                             abandon_on_cancel=True)

    async def refresh_backlog(self) -> None:
        """Re-read the dead-letter backlog, within one interval (a hung disk keeps the old one)."""
        with trio.move_on_after(max(self.interval, 1.0)):
            try:
                self.sampler.backlog = await self.scan()
            except OSError as exc:
                log.debug("cannot scan the dead letter: %s", exc)

    def check(self, now: float) -> HealthReport:
        """One tick: judge, log what changed, act on reconnect suggestions."""
        _snap, report = self.evaluate(now)
        self.checks += 1
        self.report = report
        self._log_change(now, report)
        for label in report.reconnect:
            self._maybe_reconnect(label, now)
        return report

    def _log_change(self, now: float, report: HealthReport) -> None:
        keys = report.keys()
        was_healthy = not self._keys
        if keys == self._keys:
            return
        if report.healthy:
            since = self._degraded_since if self._degraded_since is not None else now
            log.info("health: healthy again (was degraded for %.0fs)", now - since)
            self._degraded_since = None
        elif was_healthy:
            self._degraded_since = now
            log.warning("health: degraded: %s", "; ".join(report.grouped_reasons))
        else:
            new = [g.message for g in group([p for p in report.problems
                                              if p.key not in self._keys])]
            gone = group_keys(self._keys - keys)
            log.warning("health: still degraded%s%s",
                        f"; new: {'; '.join(new)}" if new else "",
                        f"; resolved: {gone}" if gone else "")
        self._keys = keys
        self.transitions.append((now, report.status, tuple(report.grouped_reasons)))

    def _take_budget(self, now: float) -> bool:
        if self._budget_at is not None:
            self._budget = min(float(RECONNECT_BURST),
                               self._budget + (now - self._budget_at) / RECONNECT_SPACING)
        self._budget_at = now
        if self._budget < 1.0:
            return False
        self._budget -= 1.0
        return True

    def stopping(self) -> bool:
        stop = getattr(self.h, "stop_state", None)  # a bare view (tests) has no stop
        return stop is not None and stop.requested.is_set()

    def _maybe_reconnect(self, label: str, now: float) -> None:
        if self.stopping():
            return
        last = self._last_reconnect.get(label)
        if last is not None and now - last < self.reconnect_cooldown:
            return
        for conn in self.h.connections:
            if conn.stats.label == label and conn.stats.connected:
                if not self._take_budget(now):
                    self.reconnects_refused += 1
                    return
                self._last_reconnect[label] = now
                self.reconnects_requested += 1
                conn.request_reconnect("health: a stream on it went silent")
