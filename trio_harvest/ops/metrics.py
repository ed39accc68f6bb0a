"""Prometheus metrics of one harvester, in its own ``CollectorRegistry`` (never the global one).

Owns the metric names (all prefixed ``trio_harvest_``) and the exposition. Everything except the
write-latency histogram is read from the live stats *at scrape time* by a custom collector, so
nothing is added to the hot path; the histogram is fed by rotation's ``observe`` hook. Series are
per venue, kind and connection (a few hundred lines at 500 symbols, rolled up by rollup.py); the
``symbol_*`` families, one series per lane or stream, only when asked for (``per_symbol``).
Never changes the harvester, never blocks (RSS comes from ``/proc/self/statm``).
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

from .health import StreamView
from .rollup import lanes_by_kind, staleness, streams_by_connection

if TYPE_CHECKING:
    from ..pipeline.lanes import Lane
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

    def bind(self, ops: Operations, *, per_symbol: bool = False) -> None:
        """Read ``ops`` at every scrape; ``per_symbol`` adds the ``symbol_*`` families."""
        self.registry.register(_LiveCollector(ops, per_symbol))

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """(body, content type) for a scrape, negotiated like prometheus-client's own server."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


class _LiveCollector(Collector):
    def __init__(self, ops: Operations, per_symbol: bool) -> None:
        self.ops = ops
        self.per_symbol = per_symbol

    def collect(self) -> Iterator[Metric]:
        ops = self.ops
        h = ops.h
        now = ops.now()
        snap, report = ops.health_now()

        conns = h.connections
        v = ops.venue  # the venue harvested: every family's ``venue`` label
        yield counter("frames_received", "Frames received, by connection.",
                      ["venue", "connection"], [([v, c.stats.label], c.stats.frames) for c in conns])
        yield counter("decode_errors", "Frames that were malformed, unexpected or rejected "
                      "(values not market data, event times that do not fit the stream).",
                      ["venue", "category"],
                      [([v, "malformed"], h.router.stats.malformed),
                       ([v, "unexpected"], h.router.stats.unexpected),
                       ([v, "rejected"], h.router.stats.rejected)])
        yield counter("reconnects", "Reconnects, by connection.", ["venue", "connection"],
                      [([v, c.stats.label], c.stats.reconnects) for c in conns])
        yield counter("connection_failures", "Ended sessions (errors, stalls, requested "
                      "reconnects), by connection.", ["venue", "connection"],
                      [([v, c.stats.label], c.stats.failures) for c in conns])
        yield gauge("connection_up", "1 while the connection is open.", ["venue", "connection"],
                    [([v, c.stats.label], 1.0 if c.stats.connected else 0.0) for c in conns])
        window = h.connect_window  # None: the venue documents no per-IP connection limit
        yield counter("connect_wait_seconds", "Seconds new connections waited for their turn "
                      "under the venue's per-IP connection limit (0 where it has none).",
                      ["venue"], [([v], window.waited if window is not None else 0.0)])

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
            yield counter(name, doc + " By kind.", ["venue", "kind"],
                          [([v, kind], float(get(ks))) for kind, ks in kinds])
        yield gauge("last_write_age_seconds", "Seconds since the last successful write, by kind.",
                    ["venue", "kind"], [([v, kind], now - ks.last_write_at) for kind, ks in kinds
                                        if ks.last_write_at is not None])

        yield from _lanes(v, list(h.lanes), self.per_symbol)
        yield from _streams(v, snap.streams, snap.uptime, self.per_symbol)

        limiter = h.rotation.limiter
        yield gauge("limiter_in_use", "Writers busy now.", [], [([], limiter.borrowed_tokens)])
        yield gauge("limiter_total", "Writers available (SAVE_CONCURRENCY).", [],
                    [([], limiter.total_tokens)])
        yield counter("rows_rejected", "Rows set aside in the dead letter's _rejected folder "
                      "because their columns cannot hold them.", [],
                      [([], h.writer.rows_rejected)])
        yield gauge("write_threads_running", "Write threads running, including abandoned ones "
                    "still hanging.", [], [([], h.writer.threads_running)])

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
        rep, bf = h.repair, h.repair.backfill.stats  # gaps, backfill, handover
        yield counter("gaps_recorded", "Gap rows recorded, by reason.", ["venue", "reason"],
                      [([v, r], n) for r, n in sorted(rep.stats.gaps.items())])
        yield counter("duplicates_dropped", "Records dropped as already written, by kind.",
                      ["venue", "kind"], [([v, "prices"], rep.stats.trade_duplicates),
                                          ([v, "orderbook"], rep.stats.book_duplicates
                                           - rep.stats.quote_duplicates),
                                          ([v, "quotes"], rep.stats.quote_duplicates)])
        yield counter("outliers_quarantined", "Records held for an id that jumped, then refuted "
                      "by the stream's next ids, by kind.", ["venue", "kind"],
                      [([v, "prices"], rep.stats.trade_quarantined),
                       ([v, "orderbook"], rep.stats.book_quarantined
                        - rep.stats.quote_quarantined),
                       ([v, "quotes"], rep.stats.quote_quarantined)])
        yield counter("backfill_requests", "REST requests made by trade backfill.", ["venue"],
                      [([v], bf.requests)])
        yield counter("backfill_rows", "Trades written from REST backfill.", ["venue"],
                      [([v], bf.rows)])
        yield counter("backfill_unfilled_ids", "Missing agg ids backfill could not fetch.",
                      ["venue"], [([v], bf.unfilled_ids)])
        yield gauge("backfill_missing_ids", "Missing agg ids waiting for backfill now.",
                    ["venue"], [([v], sum(t.missing_ids for t in rep.trackers.values()))])
        yield counter("handovers", "Connections replaced before the exchange closed them.",
                      ["venue"], [([v], rep.connector.stats.handovers)])
        if h.journal is not None:  # the write-ahead journal
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


Items = list[tuple[list[str], float]]


def counter(name: str, doc: str, labels: list[str], items: Items) -> CounterMetricFamily:
    m = CounterMetricFamily(P + name, doc, labels=labels)
    for values, value in items:
        m.add_metric(values, value)
    return m


def gauge(name: str, doc: str, labels: list[str], items: Items) -> GaugeMetricFamily:
    m = GaugeMetricFamily(P + name, doc, labels=labels)
    for values, value in items:
        m.add_metric(values, value)
    return m


def _lanes(v: str, lanes: list[Lane], per_symbol: bool) -> Iterator[Metric]:
    """Lanes by kind (a handful of series); each lane's own with ``per_symbol``."""
    by_kind = lanes_by_kind(lanes)
    counts: dict[str, list[int]] = {kind: [0, 0, 0] for kind in by_kind}
    for ln in lanes:
        c = counts[ln.kind]
        c[0] += ln.stats.spilled
        c[1] += ln.stats.dropped
        c[2] += ln.stats.blocked
    yield gauge("lanes", "Lanes (one per kind and symbol), by kind.", ["venue", "kind"],
                [([v, k], r.lanes) for k, r in by_kind.items()])
    yield gauge("lane_depth", "Rows buffered in the lanes of a kind.", ["venue", "kind"],
                [([v, k], r.rows) for k, r in by_kind.items()])
    yield gauge("lane_capacity", "Capacity of the lanes of a kind, summed (emergency "
                "watermarks).", ["venue", "kind"], [([v, k], r.capacity) for k, r in by_kind.items()])
    yield gauge("lane_fill_max", "Fill of the fullest lane of a kind (0..1 of its capacity).",
                ["venue", "kind"], [([v, k], r.fill_max) for k, r in by_kind.items()])
    yield gauge("lanes_above_high", "Lanes at or above their high watermark, by kind.",
                ["venue", "kind"], [([v, k], r.above_high) for k, r in by_kind.items()])
    yield gauge("lanes_full", "Lanes at capacity, by kind.", ["venue", "kind"],
                [([v, k], r.full) for k, r in by_kind.items()])
    yield counter("lane_spilled", "Preview rows spilled to the dead letter (lane full), by kind.",
                  ["venue", "kind"], [([v, k], c[0]) for k, c in counts.items()])
    yield counter("lane_dropped", "Preview rows dropped (lane and spill full), by kind.",
                  ["venue", "kind"], [([v, k], c[1]) for k, c in counts.items()])
    yield counter("lane_blocked", "Times a producer waited on a full authoritative lane, by "
                  "kind.", ["venue", "kind"], [([v, k], c[2]) for k, c in counts.items()])
    if not per_symbol:
        return
    labels = ["venue", "kind", "symbol"]
    yield gauge("symbol_lane_depth", "Rows buffered in a lane.", labels,
                [([v, ln.kind, ln.symbol], ln.level) for ln in lanes])
    yield gauge("symbol_lane_high_watermark", "High watermark of a lane (flush now).", labels,
                [([v, ln.kind, ln.symbol], ln.high) for ln in lanes])
    yield gauge("symbol_lane_capacity", "Capacity of a lane (emergency watermark).", labels,
                [([v, ln.kind, ln.symbol], ln.capacity) for ln in lanes])
    yield counter("symbol_lane_spilled", "Preview rows spilled to the dead letter (lane full).",
                  labels, [([v, ln.kind, ln.symbol], ln.stats.spilled) for ln in lanes])
    yield counter("symbol_lane_dropped", "Preview rows dropped (lane and spill full).", labels,
                  [([v, ln.kind, ln.symbol], ln.stats.dropped) for ln in lanes])
    yield counter("symbol_lane_blocked", "Times a producer waited on a full authoritative lane.",
                  labels, [([v, ln.kind, ln.symbol], ln.stats.blocked) for ln in lanes])


def _streams(v: str, streams: tuple[StreamView, ...], uptime: float, per_symbol: bool
             ) -> Iterator[Metric]:
    """Streams by connection and stream kind; each stream's own with ``per_symbol``."""
    labels = ["venue", "connection", "stream_kind"]
    rolled = streams_by_connection(streams, uptime)
    yield gauge("streams", "Subscribed streams, by connection and stream kind.", labels,
                [([v, c, k], r.streams) for (c, k), r in rolled.items()])
    yield gauge("streams_delivering", "Streams that delivered a frame since their connection "
                "opened.", labels, [([v, c, k], r.delivering) for (c, k), r in rolled.items()])
    yield gauge("streams_stale", "Streams silent for longer than their kind's stale_after.",
                labels, [([v, c, k], r.stale) for (c, k), r in rolled.items()])
    yield gauge("stream_staleness_max_seconds", "Seconds the stalest stream has gone without a "
                "frame (since its connection opened if it has not delivered in this session).",
                labels, [([v, c, k], r.staleness_max) for (c, k), r in rolled.items()])
    if not per_symbol:
        return
    labels = ["venue", "connection", "symbol", "stream"]
    yield gauge("symbol_stream_staleness_seconds", "Seconds since the stream's last frame (since "
                "its connection opened if it has not delivered in this session).", labels,
                [([v, s.connection, s.symbol, s.stream], staleness(s, uptime)) for s in streams])
    yield gauge("symbol_stream_delivering", "1 if the stream delivered a frame since its "
                "connection opened.", labels,
                [([v, s.connection, s.symbol, s.stream], 1.0 if s.delivered_this_session else 0.0)
                 for s in streams])


def _count_codes(problems: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in problems:
        out[p.code] = out.get(p.code, 0) + 1
    return out
