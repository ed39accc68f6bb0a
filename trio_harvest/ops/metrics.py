"""Prometheus metrics of one harvester, in its own ``CollectorRegistry`` (never the global one).

Owns the metric names (all prefixed ``trio_harvest_``) and the exposition. Everything except the
write-latency histogram is read from the live stats *at scrape time* by a custom collector, so
nothing is added to the hot path; the histogram is fed by rotation's ``observe`` hook. Never
changes the harvester, never blocks (RSS comes from ``/proc/self/statm``).
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .operations import Operations

P = "trio_harvest_"
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def rss_bytes() -> int:
    """Resident set size now (Linux), else the peak the OS reports."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


class HarvestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.write_seconds = Histogram(
            P + "write_latency_seconds",
            "Time of one partition write (queueing for a writer excluded), by kind and outcome.",
            ["kind", "outcome"],
            buckets=WRITE_BUCKETS,
            registry=self.registry,
        )

    def observe_write(self, kind: str, outcome: str, rows: int, seconds: float) -> None:
        """Rotation's ``observe`` hook: only real write attempts have a latency."""
        if outcome in ("ok", "failed"):
            self.write_seconds.labels(kind, outcome).observe(seconds)

    def bind(self, ops: Operations) -> None:
        self.registry.register(_LiveCollector(ops))

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """(body, content type) for a scrape, negotiated like prometheus-client's own server."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


class _LiveCollector(Collector):
    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    def collect(self) -> Iterator[Metric]:
        ops = self.ops
        h = ops.h
        now = ops.now()
        snap, report = ops.health_now()

        def counter(name: str, doc: str, labels: list[str],
                    items: list[tuple[list[str], float]]) -> CounterMetricFamily:
            m = CounterMetricFamily(P + name, doc, labels=labels)
            for values, v in items:
                m.add_metric(values, v)
            return m

        def gauge(name: str, doc: str, labels: list[str],
                  items: list[tuple[list[str], float]]) -> GaugeMetricFamily:
            m = GaugeMetricFamily(P + name, doc, labels=labels)
            for values, v in items:
                m.add_metric(values, v)
            return m

        conns = h.connections
        yield counter("frames_received", "Frames received, by connection.", ["connection"],
                      [([c.stats.label], c.stats.frames) for c in conns])
        yield counter("decode_errors", "Frames that were malformed, unexpected or rejected "
                      "(values not market data, event times that do not fit the stream).",
                      ["category"],
                      [(["malformed"], h.router.stats.malformed),
                       (["unexpected"], h.router.stats.unexpected),
                       (["rejected"], h.router.stats.rejected)])
        yield counter("reconnects", "Reconnects, by connection.", ["connection"],
                      [([c.stats.label], c.stats.reconnects) for c in conns])
        yield counter("connection_failures", "Ended sessions (errors, stalls, requested "
                      "reconnects), by connection.", ["connection"],
                      [([c.stats.label], c.stats.failures) for c in conns])
        yield gauge("connection_up", "1 while the connection is open.", ["connection"],
                    [([c.stats.label], 1.0 if c.stats.connected else 0.0) for c in conns])

        kinds = sorted(h.rotation.stats.kinds.items())
        per_kind: list[tuple[str, str, Callable[[Any], float]]] = [
            ("rows_written", "Rows written into partitions.", lambda k: k.rows_written),
            ("files_written", "Partition files written.", lambda k: k.files_written),
            ("bytes_written", "Bytes of partition files written.", lambda k: k.bytes_written),
            ("rows_deadlettered", "Rows sent to the dead letter.", lambda k: k.rows_deadlettered),
            ("rows_lost", "Rows lost because the dead letter failed too.", lambda k: k.rows_lost),
            ("write_failures", "Partition writes that failed.", lambda k: k.write_failures),
            ("write_timeouts", "Partition writes that timed out.", lambda k: k.write_timeouts),
        ]
        for name, doc, get in per_kind:
            yield counter(name, doc + " By kind.", ["kind"],
                          [([kind], float(get(ks))) for kind, ks in kinds])
        yield gauge("last_write_age_seconds", "Seconds since the last successful write, by kind.",
                    ["kind"], [([kind], now - ks.last_write_at) for kind, ks in kinds
                               if ks.last_write_at is not None])

        lanes = list(h.lanes)
        yield gauge("lane_depth", "Rows buffered in a lane.", ["kind", "symbol"],
                    [([ln.kind, ln.symbol], ln.level) for ln in lanes])
        yield gauge("lane_high_watermark", "High watermark of a lane (flush now).",
                    ["kind", "symbol"], [([ln.kind, ln.symbol], ln.high) for ln in lanes])
        yield gauge("lane_capacity", "Capacity of a lane (emergency watermark).",
                    ["kind", "symbol"], [([ln.kind, ln.symbol], ln.capacity) for ln in lanes])
        yield counter("lane_spilled", "Preview rows spilled to the dead letter (lane full).",
                      ["kind", "symbol"], [([ln.kind, ln.symbol], ln.stats.spilled) for ln in lanes])
        yield counter("lane_dropped", "Preview rows dropped (lane and spill full).",
                      ["kind", "symbol"], [([ln.kind, ln.symbol], ln.stats.dropped) for ln in lanes])
        yield counter("lane_blocked", "Times a producer waited on a full authoritative lane.",
                      ["kind", "symbol"], [([ln.kind, ln.symbol], ln.stats.blocked) for ln in lanes])

        limiter = h.rotation.limiter
        yield gauge("limiter_in_use", "Writers busy now.", [], [([], limiter.borrowed_tokens)])
        yield gauge("limiter_total", "Writers available (SAVE_CONCURRENCY).", [],
                    [([], limiter.total_tokens)])
        yield counter("rows_rejected", "Rows set aside in the dead letter's _rejected folder "
                      "because their columns cannot hold them.", [],
                      [([], h.writer.rows_rejected)])
        yield gauge("write_threads_running", "Write threads running, including abandoned ones "
                    "still hanging.", [], [([], h.writer.threads_running)])

        yield gauge("stream_staleness_seconds", "Seconds since the stream's last frame (since its "
                    "connection opened if it has not delivered in this session).",
                    ["symbol", "stream"],
                    [([s.symbol, s.stream],
                      (s.age if s.delivered_this_session and s.age is not None
                       else s.since_connect if s.since_connect is not None
                       else s.age if s.age is not None else snap.uptime))
                     for s in snap.streams])
        yield gauge("stream_delivering", "1 if the stream delivered a frame since its connection "
                    "opened.", ["symbol", "stream"],
                    [([s.symbol, s.stream], 1.0 if s.delivered_this_session else 0.0)
                     for s in snap.streams])

        backlog = ops.sampler.backlog
        yield gauge("deadletter_files", "Dead-letter files waiting for recovery.", [],
                    [([], backlog.files)])
        yield gauge("deadletter_rows", "Rows in dead-letter files waiting for recovery.", [],
                    [([], backlog.rows)])
        rec = ops.autorecovery.stats
        yield counter("recovered_files", "Dead-letter files recovered automatically.", [],
                      [([], rec.files)])
        yield counter("recovered_rows", "Rows recovered automatically from the dead letter.", [],
                      [([], rec.rows)])
        yield counter("recovery_failures", "Automatic recoveries that failed (file kept).", [],
                      [([], rec.failures)])
        rep, bf = h.repair, h.repair.backfill.stats  # issue 5: gaps, backfill, handover
        yield counter("gaps_recorded", "Gap rows recorded, by reason.", ["reason"],
                      [([r], n) for r, n in sorted(rep.stats.gaps.items())])
        yield counter("duplicates_dropped", "Records dropped as already written, by kind.",
                      ["kind"], [(["prices"], rep.stats.trade_duplicates),
                                 (["orderbook"], rep.stats.book_duplicates)])
        yield counter("outliers_quarantined", "Records held for an id that jumped, then refuted "
                      "by the stream's next ids, by kind.", ["kind"],
                      [(["prices"], rep.stats.trade_quarantined),
                       (["orderbook"], rep.stats.book_quarantined)])
        yield counter("backfill_requests", "REST requests made by trade backfill.", [],
                      [([], bf.requests)])
        yield counter("backfill_rows", "Trades written from REST backfill.", [], [([], bf.rows)])
        yield counter("backfill_unfilled_ids", "Missing agg ids backfill could not fetch.", [],
                      [([], bf.unfilled_ids)])
        yield counter("handovers", "Connections replaced before the exchange closed them.", [],
                      [([], rep.connector.stats.handovers)])
        if h.journal is not None:  # issue 9: the write-ahead journal
            j = h.journal
            yield gauge("journal_bytes", "Bytes of journal segments on disk.", [],
                        [([], j.disk_bytes)])
            yield gauge("journal_failing", "1 while the journal is not protecting new frames.",
                        [], [([], 1.0 if j.failing else 0.0)])
            yield counter("journal_records", "Records written and fsynced to the journal.", [],
                          [([], j.stats.records)])
            yield counter("journal_unprotected", "Frames routed while journaling was off.", [],
                          [([], j.stats.unprotected)])
        yield gauge("error_rate_decayed", "Recent errors, decaying (half-life per kind).",
                    ["kind"], [([k], v) for k, v in sorted(snap.errors.items())])

        yield gauge("healthy", "1 when /healthz answers 200.", [], [([], 1.0 if report.healthy
                                                                      else 0.0)])
        yield gauge("health_problems", "Current health problems, by code.", ["code"],
                    [([code], float(n)) for code, n in _count_codes(report.problems).items()])
        yield gauge("resident_memory_bytes", "Resident set size of the process.", [],
                    [([], rss_bytes())])
        yield gauge("uptime_seconds", "Seconds since the harvester started.", [],
                    [([], snap.uptime)])


def _count_codes(problems: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in problems:
        out[p.code] = out.get(p.code, 0) + 1
    return out
