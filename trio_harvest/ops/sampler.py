"""Turns the live harvester into a health ``Snapshot``: reads stats, keeps the little state a
verdict needs over time (decayed error counts, since when a connection is down, since when every
writer is busy).

Owns the mapping from the app's counters to ``health.Snapshot``. Cheap and synchronous (no I/O:
the dead-letter backlog is handed in, scanned elsewhere in a thread); safe to call from a request
handler as well as from the health task. Never changes the harvester.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..journal.report import findings as journal_findings
from ..storage.backlog import Backlog
from .decay import DecayingCounter
from .health import (
    CAP,
    ERROR_KINDS,
    HALF_LIFE,
    ConnectionView,
    KindView,
    LaneView,
    Snapshot,
    StreamView,
    Thresholds,
    stale_after,
)

if TYPE_CHECKING:
    from .view import HarvestView


def thresholds_for(h: HarvestView) -> Thresholds:
    cfg = h.config
    return Thresholds(
        connection_down_after=max(40.0, cfg.backoff_max + 10.0),
        limiter_saturated_after=max(60.0, 2 * cfg.write_timeout),
        # a quiet lane is flushed only every max_file_age (unless it reaches min_file_rows)
        write_stale_after=max(180.0, cfg.max_file_age + 2 * cfg.rotate_sec + cfg.write_timeout),
    )


class Sampler:
    def __init__(self, harvester: HarvestView) -> None:
        self.h = harvester
        self.decayed = {name: DecayingCounter(HALF_LIFE[name], CAP[name]) for name in ERROR_KINDS}
        self._failing: dict[str, tuple[float, int]] = {}  # kind -> (first failure at, count)
        self._down_since: dict[str, float] = {}
        self._saturated_since: float | None = None
        self.backlog = Backlog()

    def on_write(self, kind: str, outcome: str, now: float) -> None:
        """Rotation's write outcomes, in order: a success ends a run of failures."""
        if outcome == "ok":
            self._failing.pop(kind, None)
        elif outcome == "failed":
            since, n = self._failing.get(kind, (now, 0))
            self._failing[kind] = (since, n + 1)

    def cumulative(self) -> dict[str, float]:
        """The ever-growing counters behind each decayed error count."""
        h = self.h
        kinds = h.rotation.stats.kinds.values()
        return {
            "connection": float(sum(c.stats.failures for c in h.connections)),
            "decode": float(h.router.stats.malformed + h.router.stats.unexpected),
            "write": float(sum(k.write_failures + k.write_timeouts for k in kinds)),
            "lost": float(sum(k.rows_lost for k in kinds)),
            "dropped": float(sum(lane.stats.dropped for lane in h.lanes)),
        }

    def snapshot(self, now: float) -> Snapshot:
        h = self.h
        started = h.started_at if h.started_at is not None else now
        errors = {name: self.decayed[name].update(value, now)
                  for name, value in self.cumulative().items()}
        last_seen = h.router.stats.last_seen
        depth_speed = h.config.depth_speed
        streams: list[StreamView] = []
        conns: list[ConnectionView] = []
        for conn in h.connections:
            st = conn.stats
            opened = st.connected_at if st.connected else None
            if st.connected:
                self._down_since.pop(st.label, None)
                down_for = 0.0
            else:
                # never connected: down since the start; else since we first saw it down
                since = self._down_since.setdefault(st.label, now if st.connects else started)
                down_for = now - since
            conns.append(ConnectionView(st.label, st.connected, down_for, st.frames, st.connects,
                                        st.reconnects, st.failures, st.last_error))
            for spec in conn.plan.streams:
                last = last_seen.get(spec.name)
                streams.append(StreamView(
                    connection=st.label,
                    symbol=spec.symbol,
                    stream=spec.name,
                    kind=spec.kind,
                    stale_after=stale_after(spec.kind, depth_speed, conn.venue),
                    age=None if last is None else max(0.0, now - last),
                    since_connect=None if opened is None else max(0.0, now - opened),
                    delivered_this_session=last is not None and opened is not None
                    and last >= opened,
                ))
        lanes: list[LaneView] = []
        pending: dict[str, int] = {}
        for lane in h.lanes:
            lanes.append(LaneView(lane.kind, lane.symbol, lane.level, lane.high, lane.capacity,
                                  lane.pending_spill, lane.stats.dropped))
            pending[lane.kind] = pending.get(lane.kind, 0) + lane.pending
        kinds: list[KindView] = []
        stats = h.rotation.stats.kinds
        for kind in sorted(set(stats) | set(pending)):
            ks = stats.get(kind)
            if ks is None:
                kinds.append(KindView(kind, pending.get(kind, 0)))
                continue
            failing_since, in_a_row = self._failing.get(kind, (None, 0))
            kinds.append(KindView(
                kind, pending.get(kind, 0), ks.rows_written, ks.rows_deadlettered, ks.rows_lost,
                ks.write_failures, ks.write_timeouts,
                None if ks.last_write_at is None else max(0.0, now - ks.last_write_at),
                ks.last_error,
                None if failing_since is None else max(0.0, now - failing_since),
                in_a_row,
            ))
        limiter = h.rotation.limiter
        in_use, total = int(limiter.borrowed_tokens), int(limiter.total_tokens)
        adversity = h.repair.findings(now)
        durability = journal_findings(h.journal, now) if h.journal is not None else ([], [])
        durability[0].extend(h.probe.findings())
        if in_use >= total:
            if self._saturated_since is None:
                self._saturated_since = now
        else:
            self._saturated_since = None
        return Snapshot(
            uptime=max(0.0, now - started),
            streams=tuple(streams),
            connections=tuple(conns),
            lanes=tuple(lanes),
            kinds=tuple(kinds),
            errors=errors,
            limiter_in_use=in_use,
            limiter_total=total,
            limiter_saturated_for=0.0 if self._saturated_since is None
            else now - self._saturated_since,
            writer_threads=h.writer.threads_stuck,
            writer_max_stuck=h.writer.max_stuck,
            deadletter_files=self.backlog.files,
            deadletter_rows=self.backlog.rows,
            auto_recover=h.config.auto_recover,
            adversity_problems=tuple(adversity[0]),
            adversity_notes=tuple(adversity[1]),
            stopping=h.stop_state.requested.is_set(),
            durability_problems=tuple(durability[0]),
            durability_notes=tuple(durability[1]),
        )
