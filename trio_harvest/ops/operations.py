"""Operations of one harvester: the health task, automatic dead-letter recovery, the metrics
registry and the HTTP endpoint (the live page ``/``, ``/metrics``, ``/healthz``, ``/status``),
started as tasks in the root nursery.

Owns the wiring between those parts and what each path answers. ``bind()`` runs before the root
nursery opens, so a port in use ends the start-up with a ``ConfigError``. Never stops the
harvester and never touches its buffers: everything here reads stats, except the recovery task,
which reads the dead letter from disk.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CollectorRegistry

from ..journal.report import as_dict as journal_report
from .autorecover import AutoRecovery
from .health import HealthReport, Snapshot
from .metrics import HarvestMetrics, rss_bytes
from .monitor import HealthMonitor
from .page import PAGE
from .progress import Progress
from .rollup import lanes_by_kind, staleness, streams_by_connection, top_lanes, top_streams
from .sampler import Sampler, thresholds_for
from .web import Request, Response, WebServer, bound_port, open_sockets

if TYPE_CHECKING:
    from .allvenues import AllVenues
    from .view import HarvestView

log = logging.getLogger("trio_harvest.ops")

JSON = "application/json"
HTML = "text/html; charset=utf-8"


class Operations:
    def __init__(self, harvester: HarvestView) -> None:
        self.h = harvester
        self.venue = harvester.config.venue  # the ``venue`` of /status and every metric
        self.metrics = HarvestMetrics()
        self.sampler = Sampler(harvester)
        self.autorecovery = AutoRecovery(harvester)
        self._monitor: HealthMonitor | None = None
        self.sockets: list[socket.socket] = []
        self.port: int | None = None  # the bound port, once bound
        self.server = WebServer({"/": self.page, "/metrics": self.scrape, "/healthz": self.healthz,
                                 "/status": self.status_json})
        self.progress = Progress(harvester, interval=harvester.config.progress_interval,
                                 health=self._health_state, backlog=self._backlog_state)
        self.metrics.bind(self, per_symbol=harvester.config.metrics_per_symbol)
        # a run of several venues: the first venue's endpoint answers for all of them
        self.all_venues: AllVenues | None = None

    @property
    def monitor(self) -> HealthMonitor:
        if self._monitor is None:  # thresholds depend on the config only; built on first use
            self._monitor = HealthMonitor(self.h, self.sampler, thresholds_for(self.h),
                                          interval=self.h.config.health_interval)
        return self._monitor

    def observe_write(self, kind: str, outcome: str, rows: int, seconds: float) -> None:
        """Rotation's ``observe`` hook: the latency histogram and the health's write state."""
        self.metrics.observe_write(kind, outcome, rows, seconds)
        self.sampler.on_write(kind, outcome, trio.current_time())

    def _health_state(self) -> tuple[str, int]:
        report = self.monitor.report
        return report.status, len(report.problems)

    def _backlog_state(self) -> tuple[int, int]:
        return self.sampler.backlog.files, self.sampler.backlog.rows

    def now(self) -> float:
        return trio.current_time()

    def health_now(self) -> tuple[Snapshot, HealthReport]:
        return self.monitor.evaluate(self.now())

    def health_report(self) -> HealthReport:
        return self.health_now()[1]

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    # -- tasks ---------------------------------------------------------------------------------

    async def bind(self) -> None:
        """Open the endpoint's socket (if ``metrics_port`` is set). ``ConfigError`` if in use."""
        cfg = self.h.config
        if cfg.metrics_port:
            self.sockets = await open_sockets(cfg.metrics_host, cfg.metrics_port)
            self.port = bound_port(self.sockets)

    def close(self) -> None:
        """Close the endpoint's sockets (idempotent; serving closes them too)."""
        for sock in self.sockets:
            sock.close()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.monitor.run)
            await nursery.start(self.autorecovery.run)
            await nursery.start(self.progress.run)
            if self.sockets:
                await nursery.start(self.server.serve, self.sockets)
                log.info("ops endpoint on http://%s:%d (live page /, /metrics /healthz /status)",
                         self.h.config.metrics_host, self.port)
            task_status.started()

    # -- the endpoint --------------------------------------------------------------------------

    def page(self, req: Request) -> Response:
        return Response(200, PAGE, HTML)

    def scrape(self, req: Request) -> Response:
        source = self.all_venues or self.metrics
        body, content_type = source.exposition(req.headers.get("accept", ""))
        return Response(200, body, content_type)

    def healthz(self, req: Request) -> Response:
        if self.all_venues is not None:
            healthy, doc = self.all_venues.health()
            return Response(200 if healthy else 503, _json(doc), JSON)
        _snap, report = self.health_now()
        return Response(200 if report.healthy else 503, _json(report.as_dict()), JSON)

    def status_json(self, req: Request) -> Response:
        doc = self.all_venues.status() if self.all_venues is not None else self.status()
        return Response(200, _json(doc), JSON)

    def status(self) -> dict[str, Any]:
        """The ``/status`` document: connections, streams, lanes, last writes, dead letter."""
        h = self.h
        snap, report = self.health_now()
        now = self.now()
        conns = []
        for c in h.connections:
            st = c.stats
            conns.append({
                "venue": self.venue, "label": st.label, "url": st.url, "connected": st.connected,
                "connected_for_s": _r(now - st.connected_at)
                if st.connected and st.connected_at is not None else None,
                "frames": st.frames, "connects": st.connects, "reconnects": st.reconnects,
                "failures": st.failures, "last_error": st.last_error,
            })
        kinds = h.rotation.stats.kinds
        writes = {}
        for kv in snap.kinds:
            ks = kinds.get(kv.kind)
            writes[kv.kind] = {
                "pending_rows": kv.pending, "rows_written": kv.rows_written,
                "files_written": ks.files_written if ks else 0,
                "rows_deadlettered": kv.rows_deadlettered, "rows_lost": kv.rows_lost,
                "write_failures": kv.write_failures, "write_timeouts": kv.write_timeouts,
                "last_write_age_s": _r(kv.since_write), "last_error": kv.last_error,
            }
        health = report.as_dict()  # grouped by code: a line per code, never one per symbol
        streams = snap.streams
        return {
            "venue": self.venue,
            "status": report.status,
            "reasons": report.grouped_reasons,
            "problems": health["problems"],
            "notes": health["notes"],
            "uptime_s": _r(snap.uptime),
            "stopping": h.stop_state.requested.is_set(),
            "frames": h.router.stats.frames,
            "malformed": h.router.stats.malformed,
            "unexpected": h.router.stats.unexpected,
            "rejected": h.router.stats.rejected,
            "quarantined": h.router.stats.quarantined,
            "book_errors": h.router.stats.book_errors,
            "hook_errors": h.router.stats.hook_errors,
            "connections": conns,
            # streams and lanes: a roll-up with counts, then the worst few (never all 500)
            "streams_total": len(streams),
            "streams_by_connection": [
                {"connection": c, "stream_kind": k, **r.as_dict()}
                for (c, k), r in streams_by_connection(streams, snap.uptime).items()],
            "streams": [
                {"stream": s.stream, "symbol": s.symbol, "kind": s.kind,
                 "connection": s.connection, "age_s": _r(s.age),
                 "staleness_s": _r(staleness(s, snap.uptime)),
                 "delivering": s.delivered_this_session, "stale_after_s": s.stale_after}
                for s in top_streams(streams, snap.uptime)
            ],
            "lanes_total": len(snap.lanes),
            "lanes_by_kind": {k: r.as_dict() for k, r in lanes_by_kind(snap.lanes).items()},
            "lanes": [
                {"kind": ln.kind, "symbol": ln.symbol, "level": ln.level, "high": ln.high,
                 "capacity": ln.capacity, "spill": ln.spill, "dropped": ln.dropped}
                for ln in top_lanes(snap.lanes)
            ],
            "writes": writes,
            "writers": {"in_use": snap.limiter_in_use, "total": snap.limiter_total,
                        "threads_running": snap.writer_threads,
                        "rows_rejected": h.writer.rows_rejected},
            "errors_decayed": {k: round(v, 3) for k, v in snap.errors.items()},
            "deadletter": {**self.sampler.backlog.as_dict(),
                           "dir": str(h.config.deadletter_path)},
            "recovery": {"auto": h.config.auto_recover, **self.autorecovery.stats.as_dict()},
            "adversity": h.repair.as_dict(),  # gaps, backfill, duplicates, handovers
            "journal": journal_report(h.journal) if h.journal is not None else None,
            "rss_bytes": rss_bytes(),
        }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _json(doc: Any) -> bytes:
    return json.dumps(doc, indent=1).encode() + b"\n"
